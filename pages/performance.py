"""Performance: each metric over time, one line per version, with confidence band, label coverage and actions."""
import streamlit as st

from mlops_core import metrics
from ui import charts, context, data, frame, serving, widgets

frame.enter()
st.title("Performance")
ctx = context.require()
info = data.model_info(ctx.db, ctx.model)
st.caption(f"{ctx.model} · {ctx.first_day} to {ctx.last_day} · one point per {ctx.window}. "
           "Dotted lines mark promotions, rollbacks and new versions.")

choices = metrics.names(info.task, info.binary)
headline = metrics.headline(info.task)
choices.insert(0, choices.pop(choices.index(headline)))  # the headline first: the default choice
c1, c2 = st.columns([2, 3])
metric = c1.selectbox("Metric", choices, format_func=lambda m: metrics.label(m, info.unit),
                      key=f"perf_metric_{info.task}")
frame = None
with widgets.guard("Performance over time"):
    frame = data.performance(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end, auc=metric == "roc_auc")

if frame is not None:
    all_versions = sorted(int(v) for v in frame["version"].dropna().unique()) if "version" in frame.columns else []
    chosen = c2.multiselect("Versions", all_versions, default=all_versions, format_func=lambda v: f"v{v}",
                            key=f"perf_versions_{ctx.model}_{'-'.join(map(str, all_versions))}")
    shown = frame[frame["version"].isin(chosen)] if all_versions else frame
    actions = None
    with widgets.guard("Registry actions"):
        log = data.audit(ctx.db, ctx.model)
        when = log["occurred_at"]
        actions = log[(when >= ctx.start) & (when < ctx.end)
                      & log["action"].isin(["promote", "rollback", "register_version", "retrain"])]
    widgets.chart(charts.metric_over_time(shown, metric, actions), key="perf_chart")
    with st.expander("Numbers per window"):
        st.dataframe(shown, hide_index=True)
    serving.arms_panel(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end)

    st.subheader("Errors in one window" if info.task == "classification" else "Residuals in one window")
    starts = sorted(frame["window_start"].dropna().unique(), reverse=True) if len(frame) else []
    if not starts:
        widgets.no_data("predictions", "widen the date range in the sidebar, or log predictions with "
                        f"`mlops ingest predictions FILE --model {ctx.model}`.")
    else:
        c1, c2 = st.columns(2)
        labelled = set(frame.loc[frame["n_labelled"] > 0, "window_start"]) if "n_labelled" in frame else set()
        first = next((i for i, t in enumerate(starts) if t in labelled), 0)  # the newest window with labels
        # keys carry what the options depend on, so a kept selection is never one the options lost
        scope = f"{ctx.model}_{ctx.window}_{ctx.first_day}_{ctx.last_day}"
        pick = c1.selectbox("Window starting", starts, index=first, key=f"perf_window_{scope}",
                            format_func=lambda t: str(t)[:16] if ctx.window == "hour" else str(t)[:10])
        version = c2.selectbox("Version", [None] + all_versions, key=f"perf_version_{scope}_{len(all_versions)}",
                               format_func=lambda v: "all versions" if v is None else f"v{v}")
        w_start, w_end = widgets.window_bounds(pick, ctx.window)
        with widgets.guard("Confusion matrix" if info.task == "classification" else "Residuals"):
            if info.task == "classification":
                widgets.chart(charts.confusion_matrix(data.confusion(ctx.db, ctx.model, w_start, w_end, version)),
                              key="perf_confusion")
            else:
                widgets.chart(charts.residuals(data.residuals(ctx.db, ctx.model, w_start, w_end, version)),
                              key="perf_residuals")

"""Performance: each metric over time, one line per version, with its 95% band, label coverage, the estimate
where labels are missing (binary classifiers), registry actions, and the errors of one window."""
import pandas as pd
import streamlit as st

from mlops_core import metrics
from mlops_core.monitoring.estimation import METRICS as ESTIMABLE
from mlops_core.monitoring.performance import MIN_LABELLED_ROWS
from ui import charts, context, data, frame, serving, tables, widgets
from ui.tables import Column

frame.enter()
st.title("Performance")
ctx = context.require()
info = data.model_info(ctx.db, ctx.model)
st.caption(f"{ctx.model} · {ctx.first_day:%-d %b %Y} to {ctx.last_day:%-d %b %Y} · one point per {ctx.window}. "
           f"A filled point has at least {MIN_LABELLED_ROWS} labelled predictions; a hollow one has fewer, or its "
           f"{ctx.window} is still in progress, and decides nothing. Dotted lines mark promotions, rollbacks and "
           "new versions.")

choices = metrics.names(info.task, info.binary)
headline = metrics.headline(info.task)
choices.insert(0, choices.pop(choices.index(headline)))  # the headline first: the default choice
c1, c2 = st.columns([2, 3])
metric = c1.selectbox("Metric", choices, format_func=lambda m: metrics.label(m, info.unit),
                      key=f"perf_metric_{ctx.model}",
                      help="↑ higher is better, ↓ lower is better: " + ", ".join(
                          f"{metrics.label(m, info.unit)} {'↓' if metrics.get(m).lower_is_better else '↑'}"
                          for m in choices if metrics.get(m).direction))
perf = None
with widgets.guard("Performance over time"):
    perf = data.performance(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end, auc=metric == "roc_auc")

if perf is not None:
    all_versions = sorted(int(v) for v in perf["version"].dropna().unique()) if "version" in perf.columns else []
    chosen = c2.multiselect("Versions", all_versions, default=all_versions, format_func=lambda v: f"v{v}",
                            key=f"perf_versions_{ctx.model}_{'-'.join(map(str, all_versions))}")
    shown = perf[perf["version"].isin(chosen)] if all_versions else perf

    estimates, why_not = None, ""
    if info.task == "regression":
        why_not = ("No estimate is available while labels are missing: estimating a regression model's error "
                   "without labels is not implemented (confidence-based estimation needs class probabilities). "
                   "Its error metrics appear as the labels arrive.")
    elif metric in ESTIMABLE:
        with widgets.guard("Estimated performance"):
            est, why_not = data.estimated_performance(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end)
            if len(est):
                estimates = est[(est["metric"] == metric) & est["version"].isin(chosen)]
    else:
        why_not = f"{metrics.label(metric)} has no estimate from scores alone; it appears as labels arrive."

    actions = None
    with widgets.guard("Registry actions"):
        log = data.audit(ctx.db, ctx.model)
        when = log["occurred_at"]
        actions = log[(when >= ctx.start) & (when < ctx.end)
                      & log["action"].isin(["promote", "rollback", "register_version", "retrain"])]
    widgets.chart(charts.metric_over_time(shown, metric, actions, unit=info.unit, window=ctx.window,
                                          estimates=estimates, min_labelled=MIN_LABELLED_ROWS), key="perf_chart")
    if estimates is not None and len(estimates):
        st.caption("Dashed: the value estimated from the model's scores (confidence-based performance estimation, "
                   "calibrated on the version's holdout) with its 95% band, where too few labels have arrived; "
                   "the solid line takes over as they do.")
    elif why_not:
        st.caption(widgets.md(why_not))

    with st.expander("Numbers per window"):
        m = metrics.get(metric)
        unit = m.unit_label(info.unit)
        rows = shown.assign(
            trusted=[("window in progress" if p else (f"only {n} labelled" if n < MIN_LABELLED_ROWS else "yes"))
                     for p, n in zip(shown.get("partial", pd.Series(False, index=shown.index)).fillna(False),
                                     shown["n_labelled"], strict=True)],
            interval=[f"{tables.decimal(lo)}–{tables.decimal(hi)}" if pd.notna(lo) and pd.notna(hi) else tables.MISSING
                      for lo, hi in zip(shown.get(f"{metric}_low", pd.Series(dtype=float)).reindex(shown.index),
                                        shown.get(f"{metric}_high", pd.Series(dtype=float)).reindex(shown.index),
                                        strict=True)])
        tables.show(rows.iloc[::-1], [
            Column("window_start", "Window starting", "time" if ctx.window == "hour" else "day"),
            Column("version", "Version", "version"), Column("n", "Predictions", "int"),
            Column("n_labelled", "Labelled", "int"), Column("label_coverage", "Labelled share", "percent"),
            Column(metric, m.display(info.unit), "decimal"), Column("interval", "95% interval" + (
                f" ({unit})" if unit else "")), Column("trusted", "Trusted")], empty="No windows in this range.")
    serving.arms_panel(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end)

    st.subheader("Errors in one window" if info.task == "classification" else "Residuals in one window")
    per_window = perf.groupby("window_start").agg(n_labelled=("n_labelled", "sum"),
                                                  partial=("partial", "any")).sort_index(ascending=False) \
        if len(perf) else pd.DataFrame(columns=["n_labelled", "partial"])
    starts = list(per_window.index)
    if not starts:
        widgets.no_data("predictions", "widen the date range in the sidebar, or log predictions with "
                        f"`mlops ingest predictions FILE --model {ctx.model}`.")
    else:
        c1, c2 = st.columns(2)
        full = [i for i, t in enumerate(starts) if not per_window.loc[t, "partial"]
                and per_window.loc[t, "n_labelled"] >= MIN_LABELLED_ROWS]
        first = full[0] if full else 0  # the newest full window with enough labels

        def window_name(t) -> str:
            row = per_window.loc[t]
            when = f"{pd.Timestamp(t):%Y-%m-%d %H:00} UTC" if ctx.window == "hour" else f"{pd.Timestamp(t):%-d %b %Y}"
            note = "in progress" if row["partial"] else f"{int(row['n_labelled']):,} labelled"
            return f"{when} ({note})"

        # keys carry what the options depend on, so a kept selection is never one the options lost
        scope = f"{ctx.model}_{ctx.window}_{ctx.first_day}_{ctx.last_day}"
        pick = c1.selectbox(f"{ctx.window.capitalize()} starting", starts, index=first, key=f"perf_window_{scope}",
                            format_func=window_name)
        version = c2.selectbox("Version", [None, *all_versions], key=f"perf_version_{scope}_{len(all_versions)}",
                               format_func=lambda v: "all versions" if v is None else f"v{v}")
        w_start, w_end = widgets.window_bounds(pick, ctx.window)
        with widgets.guard("Confusion matrix" if info.task == "classification" else "Residuals"):
            if info.task == "classification":
                widgets.chart(charts.confusion_matrix(data.confusion(ctx.db, ctx.model, w_start, w_end, version)),
                              key="perf_confusion")
            else:
                widgets.chart(charts.residuals(data.residuals(ctx.db, ctx.model, w_start, w_end, version),
                                               unit=info.unit), key="perf_residuals")

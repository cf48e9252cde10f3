"""Versions: compare two or more versions side by side; promote one, or roll back production."""
import pandas as pd
import streamlit as st

from mlops_core import charts
from ui import context, data, dialogs, state, widgets

st.title("Versions")
ctx = context.require()
info = data.model_info(ctx.db, ctx.model)
all_versions = data.versions(ctx.db, ctx.model)
prod = data.production(ctx.db, ctx.model)
by_number = {v.version: v for v in all_versions}
HEADLINE = "roc_auc" if info.task == "classification" and len(info.classes) <= 2 else (
    "f1" if info.task == "classification" else "rmse")

st.caption(f"{ctx.model}: {len(all_versions)} versions; production is "
           f"{'v' + str(prod) if prod is not None else 'not set'}.")

table = pd.DataFrame([{
    "version": v.version, "status": v.status, "algorithm": v.algorithm, "created": v.created_at,
    "by": v.created_by, "train rows": v.train_rows, **{f"holdout {k}": v.holdout_metrics.get(k)
                                                       for k in (HEADLINE, "accuracy", "mae") if k in v.holdout_metrics},
    "gate": None if not v.gate else ("passed" if v.gate.get("passed") else "failed"),
} for v in reversed(all_versions)])
st.dataframe(table, hide_index=True, column_config={"status": st.column_config.TextColumn("status")})


# --- actions --------------------------------------------------------------------------------

def rollback_targets() -> list[int]:
    """Earlier production versions, newest first (what a rollback can go back to)."""
    history = data.deployment_history(ctx.db, ctx.model)
    stack = data.fn("registry", "production_stack")(history)
    return list(dict.fromkeys(reversed(stack[:-1])))


st.subheader("Change production")
a, b = st.columns(2)
with a:
    promotable = [v.version for v in reversed(all_versions) if v.version != prod]
    if promotable:
        choice = st.selectbox("Version to promote", promotable, key="promote_version",
                              format_func=lambda n: f"v{n} ({by_number[n].status})")
        if st.button("Promote", key="promote", type="primary"):
            v = by_number[choice]
            dialogs.promote(ctx.db, ctx.model, choice, prod, v.status, v.gate)
    else:
        st.caption("No other version to promote.")
with b:
    with widgets.guard("Rollback"):
        targets = rollback_targets()
        if targets:
            to = st.selectbox("Roll back to", targets, key="rollback_to",
                              format_func=lambda n: f"v{n}" + (" (previous production)" if n == targets[0] else ""))
        else:
            to = None
            st.caption("No earlier production version: nothing to roll back to.")
        if st.button("Roll back", key="rollback", disabled=not targets):
            dialogs.rollback(ctx.db, ctx.model, prod, to, explicit=to != targets[0])


# --- comparison -----------------------------------------------------------------------------

st.subheader("Compare versions")
numbers = [v.version for v in all_versions]
default = [n for n in (prod, max(numbers) if numbers else None) if n is not None]
if len(set(default)) < 2 and len(numbers) >= 2:
    default = numbers[-2:]
chosen = st.multiselect("Versions", numbers, default=sorted(set(default)), format_func=lambda n: f"v{n}",
                        key=f"{state.COMPARE}_{ctx.model}")
if len(chosen) < 2:
    st.info("Pick at least two versions to compare them.")
    st.stop()
picked = [by_number[n] for n in sorted(chosen)]

metric_names = sorted({k for v in picked for k in v.holdout_metrics if isinstance(v.holdout_metrics.get(k), (int, float))})
holdout = pd.DataFrame([{"version": v.version, **{k: v.holdout_metrics.get(k) for k in metric_names}} for v in picked])
left, right = st.columns(2)
with left:
    widgets.chart(charts.metrics_side_by_side(holdout, metric_names, title="Holdout metrics (each version's own holdout)"),
                  key="versions_holdout")
with right:
    with widgets.guard("Metrics on the same windows"):
        same = data.compare(ctx.db, ctx.model, tuple(sorted(chosen)))
        frame = same.get("holdout") if isinstance(same, dict) else None
        if frame is not None and len(frame):
            widgets.chart(charts.metrics_side_by_side(pd.DataFrame(frame), metric_names,
                                                      title="On the same recent holdout"), key="versions_same")
        else:
            st.caption("No shared holdout evaluation is available for these versions.")

with widgets.guard("Live metrics of the chosen versions"):
    perf = data.performance(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end, tuple(sorted(chosen)))
    widgets.chart(charts.metric_over_time(perf, HEADLINE, title=f"{charts.label(HEADLINE)} on live traffic, "
                                                                f"same windows"), key="versions_live")

st.markdown("**Hyperparameters**")
diff_only = st.toggle("Differences only", value=True, key="versions_diff_only")
params = pd.DataFrame({f"v{v.version}": pd.Series({k: str(x) for k, x in v.hyperparameters.items()}) for v in picked})
if diff_only and len(params):
    params = params[params.nunique(axis=1, dropna=False) > 1]
if len(params) == 0:
    st.caption("The chosen versions have the same hyperparameters.")
else:
    st.dataframe(params, width="stretch")

st.markdown("**Lineage**")
st.dataframe(pd.DataFrame([{
    "version": v.version, "status": v.status, "run": v.run_id, "data": v.data_source, "train from": v.train_start,
    "train to": v.train_end, "train rows": v.train_rows, "holdout rows": v.holdout_rows, "created by": v.created_by,
    "created": v.created_at, "artifact sha256": (v.artifact_sha256 or "")[:12],
} for v in picked]), hide_index=True)

"""Versions: compare two or more versions side by side; promote one, or roll back production."""
import streamlit as st

from mlops_core import charts
from ui import context, data, dialogs, state, widgets

st.title("Versions")
ctx = context.require()
info = data.model_info(ctx.db, ctx.model)
all_versions = data.versions(ctx.db, ctx.model)
prod = data.production(ctx.db, ctx.model)
by_number = {v.version: v for v in all_versions}
HEADLINE = ("rmse" if info.task == "regression" else "roc_auc" if info.positive_class is not None else "f1")

st.caption(f"{ctx.model}: {len(all_versions)} versions; production is "
           f"{'v' + str(prod) if prod is not None else 'not set'}.")
with widgets.guard("Version list"):
    table = data.versions_frame(ctx.db, ctx.model)
    st.dataframe(table.iloc[::-1], hide_index=True)

# --- actions --------------------------------------------------------------------------------

st.subheader("Change production")
a, b = st.columns(2)
with a:
    promotable = [v.version for v in reversed(all_versions) if v.version != prod]
    if promotable:
        choice = st.selectbox("Version to promote", promotable, key="promote_version",
                              format_func=lambda n: f"v{n} ({by_number[n].status})")
        if st.button("Promote", key="promote", type="primary"):
            v = by_number[choice]
            dialogs.request("promote", db=ctx.db, model=ctx.model, version=choice, current=prod, status=v.status,
                            gate=v.gate)
    else:
        st.caption("No other version to promote.")
with b:
    with widgets.guard("Rollback"):
        target = data.rollback_target(ctx.db, ctx.model)
        if target is None:
            st.caption("No earlier production version: nothing to roll back to.")
        else:
            st.caption(f"Roll back puts v{target} (the previous production version) back in production.")
        if st.button("Roll back", key="rollback", disabled=target is None):
            dialogs.request("rollback", db=ctx.db, model=ctx.model, current=prod, target=target)
dialogs.show_pending(ctx.db, ctx.model)

# --- comparison -----------------------------------------------------------------------------

st.subheader("Compare versions")
numbers = [v.version for v in all_versions]
default = sorted({n for n in (prod, max(numbers) if numbers else None) if n is not None})
if len(default) < 2 and len(numbers) >= 2:
    default = numbers[-2:]
chosen = st.multiselect("Versions", numbers, default=default, format_func=lambda n: f"v{n}",
                        key=f"{state.COMPARE}_{ctx.model}")
if len(chosen) < 2:
    st.info("Pick at least two versions to compare them.")
    st.stop()
chosen = tuple(sorted(chosen))

with widgets.guard("Comparison"):
    comp = data.compare(ctx.db, ctx.model, chosen)
    for what, err in (comp.errors or {}).items():
        st.warning(f"{what}: {err}")
    left, right = st.columns(2)
    with left:
        widgets.chart(charts.metrics_side_by_side(comp.holdout, title="On the same recent labelled rows"),
                      key="versions_same")
        st.caption(f"Re-scored on {comp.holdout_source}.")
    with right:
        widgets.chart(charts.metrics_side_by_side(comp.recorded, title="At registration (each on its own holdout)"),
                      key="versions_recorded")

    with widgets.guard("Live metrics of the chosen versions"):
        perf = data.performance(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end, chosen)
        widgets.chart(charts.metric_over_time(perf, HEADLINE, title=f"{charts.label(HEADLINE)} on live traffic, "
                                                                    "same windows"), key="versions_live")

    st.markdown("**Hyperparameters**")
    diff_only = st.toggle("Differences only", value=True, key="versions_diff_only")
    params = comp.hyperparameter_differences() if diff_only else comp.hyperparameters
    if len(params) == 0:
        st.caption("The chosen versions have the same hyperparameters." if diff_only else "No hyperparameters.")
    else:
        st.dataframe(params.astype(str), width="stretch")

    st.markdown("**Lineage**")
    st.dataframe(comp.lineage, hide_index=True)

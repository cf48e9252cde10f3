"""Versions: compare two or more versions side by side; promote one, or roll back production."""
import pandas as pd
import streamlit as st

from mlops_core import metrics
from ui import auth, charts, context, data, dialogs, frame, serving, state, widgets

frame.enter()
st.title("Versions")
ctx = context.require()
info = data.model_info(ctx.db, ctx.model)
all_versions = data.versions(ctx.db, ctx.model)
prod = data.production(ctx.db, ctx.model)
by_number = {v.version: v for v in all_versions}
HEADLINE = metrics.headline(info.task)

st.caption(f"{ctx.model}: {len(all_versions)} versions; production is "
           f"{'v' + str(prod) if prod is not None else 'not set'}.")
with widgets.guard("Version list"):
    table = data.versions_frame(ctx.db, ctx.model)
    st.dataframe(table.iloc[::-1], hide_index=True)

# --- actions --------------------------------------------------------------------------------

st.subheader("Change production")
if not auth.can("operator"):
    auth.read_only_note("promoting or rolling back")
else:
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
serving.deployment_form(ctx.db, ctx.model, prod, all_versions)

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

picked = [by_number[n] for n in chosen]
names = [f"v{n}" for n in chosen]

with widgets.guard("Live metrics of the chosen versions"):
    perf = data.performance(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end, chosen)
    widgets.chart(charts.metric_over_time(perf, HEADLINE, title=f"{charts.label(HEADLINE)} on live traffic, "
                                                                "same windows"), key="versions_live")

left, right = st.columns(2)
with left:
    recorded = pd.DataFrame({n: v.holdout_metrics for n, v in zip(names, picked)}, columns=names)
    widgets.chart(charts.metrics_side_by_side(recorded, title="At registration (each on its own holdout)"),
                  key="versions_recorded")
with right:
    # Re-scoring loads every chosen model and scikit-learn (seconds), so it runs when asked, then stays cached.
    if st.toggle("Score the versions on the same recent labelled rows", key="versions_rescore"):
        with widgets.guard("Comparison on the same rows"):
            comp = data.compare(ctx.db, ctx.model, chosen)
            for what, err in (comp.errors or {}).items():
                st.warning(f"{widgets.md(what)}: {widgets.md(err)}")
            widgets.chart(charts.metrics_side_by_side(comp.holdout, title="On the same recent labelled rows"),
                          key="versions_same")
            st.caption(f"Re-scored on {widgets.md(comp.holdout_source)}.")
    else:
        st.caption("Turn on the switch above to re-score the chosen versions on the same most recent labelled rows "
                   "of the log (a fair side-by-side: each version's recorded metrics come from its own holdout).")

st.markdown("**Hyperparameters**")
diff_only = st.toggle("Differences only", value=True, key="versions_diff_only")
params = pd.DataFrame({n: {k: str(x) for k, x in v.hyperparameters.items()} for n, v in zip(names, picked)},
                      columns=names)
if diff_only and len(params):
    params = params[params.nunique(axis=1, dropna=False) > 1]
if len(params) == 0:
    st.caption("The chosen versions have the same hyperparameters." if diff_only else "No hyperparameters.")
else:
    st.dataframe(params, width="stretch")

st.markdown("**Lineage**")
st.dataframe(pd.DataFrame([{
    "version": v.version, "status": v.status, "algorithm": v.algorithm, "data": v.data_source,
    "train from": v.train_start, "train to": v.train_end, "train rows": v.train_rows, "holdout rows": v.holdout_rows,
    "run": v.run_id, "created by": v.created_by, "created": v.created_at,
    "gate": None if not v.gate else ("passed" if v.gate.get("passed") else "failed"),
    "artifact sha256": (v.artifact_sha256 or "")[:12],
} for v in picked]), hide_index=True)

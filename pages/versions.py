"""Versions: every version with its status and gate; promote one or roll back production; compare versions side
by side (live traffic in the same windows, recorded holdout metrics, hyperparameters, lineage)."""
import pandas as pd
import streamlit as st

from mlops_core import metrics
from ui import auth, charts, context, data, dialogs, frame, serving, state, tables, widgets
from ui.tables import Column

frame.enter()
st.title("Versions")
ctx = context.require()
info = data.model_info(ctx.db, ctx.model)
all_versions = data.versions(ctx.db, ctx.model)
prod = data.production(ctx.db, ctx.model)
by_number = {v.version: v for v in all_versions}
HEADLINE = metrics.headline(info.task)
headline_label = metrics.label(HEADLINE, info.unit)


def gate_word(v) -> str:
    if not v.gate:
        return tables.MISSING
    return "passed" if v.gate.get("passed") else "failed"


def passing(v) -> bool:
    return v.status == "candidate" and bool((v.gate or {}).get("passed", True))


st.caption(f"{ctx.model}: {len(all_versions)} versions; production is "
           f"{'v' + str(prod) if prod is not None else 'not set'}.")
with widgets.guard("Version list"):
    listing = pd.DataFrame([{
        "version": v.version, "status": v.status, "algorithm": v.algorithm, "created_at": v.created_at,
        "created_by": v.created_by, "train_start": v.train_start, "train_end": v.train_end, "train_rows": v.train_rows,
        "holdout_rows": v.holdout_rows, "headline": (v.holdout_metrics or {}).get(HEADLINE), "gate": gate_word(v),
    } for v in reversed(all_versions)])
    tables.show(listing, [
        Column("version", "Version", "version"), Column("status", "Status"), Column("gate", "Gate"),
        Column("headline", f"Holdout {headline_label}", "decimal"), Column("algorithm", "Algorithm"),
        Column("created_at", "Created", "time"), Column("created_by", "By"),
        Column("train_start", "Trained on data from", "day"), Column("train_end", "to", "day"),
        Column("train_rows", "Training rows", "int"), Column("holdout_rows", "Holdout rows", "int")])

# --- actions --------------------------------------------------------------------------------

st.subheader("Change production")
if not auth.can("operator"):
    auth.read_only_note("promoting or rolling back")
else:
    a, b = st.columns(2)
    with a:
        others = [v for v in reversed(all_versions) if v.version != prod]
        # a candidate that passed its gate first, then earlier production versions, a rejected one last
        def rank(v) -> tuple[int, int]:
            place = 0 if passing(v) else 1 if v.status == "archived" else 3 if v.status == "rejected" else 2
            return place, -v.version

        promotable = [v.version for v in sorted(others, key=rank)]
        labels = {"candidate": "candidate, passed its gate", "archived": "archived, served before",
                  "rejected": "rejected by its gate"}
        if promotable:
            choice = st.selectbox("Version to promote", promotable, key=f"promote_version_{ctx.model}",
                                  format_func=lambda n: f"v{n} ({labels.get(by_number[n].status, by_number[n].status)})")
            chosen_v = by_number[choice]
            if chosen_v.status == "rejected":
                st.caption(f"v{choice} failed its gate; promoting it overrides the gate (the audit log records it).")
            if st.button("Promote", key="promote", type="primary" if passing(chosen_v) else "secondary"):
                dialogs.request("promote", db=ctx.db, model=ctx.model, version=choice, current=prod,
                                status=chosen_v.status, gate=chosen_v.gate)
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
serving.deployment_form(ctx.db, ctx.model, prod, all_versions)

# --- comparison -----------------------------------------------------------------------------

st.subheader("Compare versions")
numbers = [v.version for v in all_versions]
perf_all = None
with widgets.guard("Traffic of the versions"):
    perf_all = data.performance(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end, auc=False)
traffic = perf_all.groupby("version")["n"].sum().to_dict() if perf_all is not None and len(perf_all) else {}
served = sorted((n for n in numbers if traffic.get(n) and n != prod), key=lambda n: -traffic[n])
if served:
    partner = served[0]  # the other version with the most traffic in range: the comparison has data
else:
    partner = next((n for n in reversed(numbers) if n != prod), None)
default = sorted({n for n in (prod, partner) if n is not None})
chosen = st.multiselect("Versions", numbers, default=default, format_func=lambda n: f"v{n}",
                        key=f"{state.COMPARE}_{ctx.model}")
if len(chosen) < 2:
    st.info("Pick at least two versions to compare them.")
    st.stop()
chosen = tuple(sorted(chosen))

picked = [by_number[n] for n in chosen]
names = [f"v{n}" for n in chosen]

with widgets.guard("Live metrics of the chosen versions"):
    silent = [f"v{n}" for n in chosen if not traffic.get(n)]
    perf = perf_all[perf_all["version"].isin(chosen)] if perf_all is not None and len(perf_all) else perf_all
    widgets.chart(charts.metric_over_time(perf, HEADLINE, title=f"{headline_label} on live traffic, same windows",
                                          unit=info.unit, window=ctx.window), key="versions_live")
    if silent:
        st.caption(f"{', '.join(silent)} served no traffic between {ctx.first_day:%-d %b} and {ctx.last_day:%-d %b} "
                   "(nothing to draw for them): compare them on the same recorded rows below, or on the same recent "
                   "labelled rows with the switch.")

left, right = st.columns(2)
with left:
    recorded = pd.DataFrame({n: v.holdout_metrics for n, v in zip(names, picked, strict=True)}, columns=names)
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
params = pd.DataFrame({n: {k: str(x) for k, x in v.hyperparameters.items()} for n, v in zip(names, picked, strict=True)},
                      columns=names)
if diff_only and len(params):
    params = params[params.nunique(axis=1, dropna=False) > 1]
if len(params) == 0:
    st.caption("The chosen versions have the same hyperparameters." if diff_only else "No hyperparameters.")
else:
    st.dataframe(params.fillna(tables.MISSING).rename_axis("Parameter"), width="stretch")

st.markdown("**Lineage**")
tables.show(pd.DataFrame([{
    "version": v.version, "status": v.status, "data": v.data_source, "train_start": v.train_start,
    "train_end": v.train_end, "train_rows": v.train_rows, "holdout_rows": v.holdout_rows,
    "created_by": v.created_by, "created_at": v.created_at, "gate": gate_word(v),
} for v in picked]), [
    Column("version", "Version", "version"), Column("status", "Status"), Column("data", "Trained on"),
    Column("train_start", "Data from", "day"), Column("train_end", "Data to", "day"),
    Column("train_rows", "Training rows", "int"), Column("holdout_rows", "Holdout rows", "int"),
    Column("gate", "Gate"), Column("created_by", "Created by"), Column("created_at", "Created", "time")])

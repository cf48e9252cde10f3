"""Runs & audit: pipeline run history and the audit log, with filters and CSV download."""
import json

import streamlit as st

from mlops_core.exports import safe_csv
from ui import charts, context, data, frame, tables, widgets
from ui.tables import Column

frame.enter()
st.title("Runs & audit")
ctx = context.require()
every = st.toggle("All models", value=False, key="runs_all_models")
model = None if every else ctx.model
st.caption(("Every model" if every else ctx.model) + f" · {ctx.first_day:%-d %b %Y} to {ctx.last_day:%-d %b %Y}.")

tab_runs, tab_audit = st.tabs(["Pipeline runs", "Audit log"])


def unusual(text) -> str:
    """What was unusual about a run (its ``anomalies`` JSON list) in words."""
    try:
        found = json.loads(text) if isinstance(text, str) and text else []
    except ValueError:
        return tables.MISSING
    return "; ".join(str(f.get("message", "")) for f in found if isinstance(f, dict)) or tables.MISSING


with tab_runs, widgets.guard("Run history"):
    runs = data.runs(ctx.db, model)
    if len(runs):
        runs = runs[(runs["created_at"] >= ctx.start) & (runs["created_at"] < ctx.end)]
    c1, c2 = st.columns(2)
    kinds = c1.multiselect("Kind", sorted(runs["kind"].dropna().unique()) if len(runs) else [], key="runs_kind")
    statuses = c2.multiselect("Status", sorted(runs["status"].dropna().unique()) if len(runs) else [],
                              key="runs_status")
    if kinds:
        runs = runs[runs["kind"].isin(kinds)]
    if statuses:
        runs = runs[runs["status"].isin(statuses)]
    widgets.chart(charts.run_durations(runs), key="runs_durations")
    failed = runs[runs["status"] == "failed"] if len(runs) else runs
    if len(failed):
        st.warning(f"{len(failed)} failed run{'s' if len(failed) != 1 else ''} in this range (crosses on the chart); "
                   "what went wrong is in the Error column.")
    odd = runs[runs["anomalies"] != "[]"] if "anomalies" in runs.columns else runs.iloc[:0]
    if len(odd):
        st.info(f"{len(odd)} run(s) unlike the recent runs of their kind (rings on the chart); what was unusual is in "
                "the Unusual column.")
    tables.show(runs.assign(unusual=runs["anomalies"].map(unusual) if "anomalies" in runs.columns else None), [
        Column("created_at", "Started", "time"), Column("model", "Model"), Column("kind", "Kind", "words"),
        Column("trigger", "Trigger", "words"), Column("actor", "By"), Column("status", "Status"),
        Column("progress", "Progress", "progress"), Column("duration_s", "Took", "seconds"),
        Column("message", "Message"), Column("error", "Error"), Column("unusual", "Unusual"),
        Column("params", "Settings", "readable"), Column("metrics", "Figures", "readable"),
        Column("statistics", "Statistics", "readable")], empty="No runs in this range.")
    st.download_button("Download runs as CSV", safe_csv(runs).encode(), file_name="runs.csv",
                       mime="text/csv", key="runs_csv")

with tab_audit, widgets.guard("Audit log"):
    log = data.audit(ctx.db, model)
    if len(log):
        log = log[(log["occurred_at"] >= ctx.start) & (log["occurred_at"] < ctx.end)]
    c1, c2 = st.columns(2)
    acts = c1.multiselect("Action", sorted(log["action"].dropna().unique()) if len(log) else [], key="audit_action",
                          format_func=tables.words)
    actors = c2.multiselect("Actor", sorted(log["actor"].dropna().unique()) if len(log) else [], key="audit_actor")
    if acts:
        log = log[log["action"].isin(acts)]
    if actors:
        log = log[log["actor"].isin(actors)]
    tables.show(log, [
        Column("occurred_at", "When", "time"), Column("actor", "By"), Column("action", "Action", "words"),
        Column("model", "Model"), Column("from_version", "From", "version"), Column("to_version", "To", "version"),
        Column("reason", "Reason"), Column("details", "Details", "readable")], empty="No actions in this range.")
    st.download_button("Download audit log as CSV", safe_csv(log).encode(), file_name="audit.csv",
                       mime="text/csv", key="audit_csv")

"""Runs & audit: pipeline run history and the audit log, with filters and CSV download."""
import streamlit as st

from mlops_core.exports import safe_csv
from ui import charts
from ui import context, data, frame, widgets

frame.enter()
st.title("Runs & audit")
ctx = context.require()
every = st.toggle("All models", value=False, key="runs_all_models")
model = None if every else ctx.model
st.caption(("Every model" if every else ctx.model) + f" · {ctx.first_day} to {ctx.last_day}.")

tab_runs, tab_audit = st.tabs(["Pipeline runs", "Audit log"])

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
        st.warning(f"{len(failed)} failed run(s) in this range; their errors are in the `error` column.")
    unusual = runs[runs["anomalies"] != "[]"] if "anomalies" in runs.columns else runs.iloc[:0]
    if len(unusual):
        st.info(f"{len(unusual)} run(s) unlike the recent runs of their kind (rings on the chart); what was unusual "
                "is in the `anomalies` column.")
    st.dataframe(widgets.pick(runs, ["created_at", "model", "kind", "trigger", "actor", "status", "progress",
                                     "duration_s", "message", "error", "anomalies", "params", "metrics", "statistics",
                                     "id"]),
                 hide_index=True, column_config={"duration_s": st.column_config.NumberColumn("duration (s)",
                                                                                             format="%.1f"),
                                                 "progress": st.column_config.ProgressColumn("progress")})
    st.download_button("Download runs as CSV", safe_csv(runs).encode(), file_name="runs.csv",
                       mime="text/csv", key="runs_csv")

with tab_audit, widgets.guard("Audit log"):
    log = data.audit(ctx.db, model)
    if len(log):
        log = log[(log["occurred_at"] >= ctx.start) & (log["occurred_at"] < ctx.end)]
    c1, c2 = st.columns(2)
    acts = c1.multiselect("Action", sorted(log["action"].dropna().unique()) if len(log) else [], key="audit_action")
    actors = c2.multiselect("Actor", sorted(log["actor"].dropna().unique()) if len(log) else [], key="audit_actor")
    if acts:
        log = log[log["action"].isin(acts)]
    if actors:
        log = log[log["actor"].isin(actors)]
    st.dataframe(widgets.pick(log, ["occurred_at", "actor", "action", "model", "from_version", "to_version",
                                    "reason", "run_id", "details"]), hide_index=True)
    st.download_button("Download audit log as CSV", safe_csv(log).encode(), file_name="audit.csv",
                       mime="text/csv", key="audit_csv")

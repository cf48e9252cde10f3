"""Checking a finished run for anomalies: read its history, apply the rule, store the findings, raise alerts.

``check_finished_run(con, run_id)`` is called by the code that marks a run succeeded, inside
the same transaction (ingest, retrain and the monitor call it), so the history it reads and
the findings it writes belong to the visit that records the run: a run is checked once,
against the runs that had finished before it. Failed runs are neither checked nor part of
any history (their durations and counts describe a break, not the normal run). The rule
itself is ``run_anomalies`` (pure); findings go to the ``run_anomalies`` table, and each
finding opens or updates the incident of kind ``run_anomaly`` of its series and statistic (``raise_alert``).
"""
from __future__ import annotations

import duckdb

from mlops_core.clock import utcnow
from mlops_core.entities import RunAnomaly
from mlops_core.monitoring import run_anomalies as rule
from mlops_core.monitoring.incidents import raise_incident
from mlops_core.store import run_anomalies as anomstore
from mlops_core.store import runs as runstore

ALERT_KIND = "run_anomaly"
ALERT_SEVERITY = "warning"
#: Runs of the same model and kind read to find HISTORY_RUNS of the run's series (ingest mixes two series).
HISTORY_SCAN = 4 * rule.HISTORY_RUNS


def check_finished_run(con: duckdb.DuckDBPyConnection, run_id: str) -> list[RunAnomaly]:
    """Compare the succeeded run ``run_id`` with the earlier succeeded runs of its model and series; store what
    is unusual and raise its alerts, on the write visit ``con``. Returns the findings (empty when the run is
    not succeeded, has no model, or nothing is unusual). Raises NotFoundError (run)."""
    run = runstore.get_run(con, run_id)
    if run.status != "succeeded" or not run.model:
        return []
    which = rule.series(run)
    earlier = [r for r in runstore.find_runs(con, run.model, kind=run.kind, statuses=("succeeded",),
                                             limit=HISTORY_SCAN, before=run.created_at)
               if r.id != run.id and rule.series(r) == which]
    found = rule.check(run, earlier)
    at = run.finished_at or utcnow()
    for finding in found:
        finding.detected_at = at
        finding.alert_id = raise_alert(con, finding)
    anomstore.insert(con, found)
    return found


def raise_alert(con: duckdb.DuckDBPyConnection, finding: RunAnomaly) -> int:
    """Open, update or reopen the ``run_anomaly`` incident of a finding's (model, series, statistic).

    The one place a finding becomes an incident. Returns the incident's id.
    """
    at = finding.detected_at or utcnow()
    alert_id, _ = raise_incident(
        con, model=finding.model, kind=ALERT_KIND, severity=ALERT_SEVERITY,
        key=f"{ALERT_KIND}:{finding.series}:{finding.statistic}", subject=f"{finding.series}:{finding.statistic}",
        title=f"Unusual {finding.series.replace(':', ' ')} runs ({finding.statistic.replace('_', ' ')})",
        message=f"Unusual {finding.series.replace(':', ' ')} run: {finding.message}.", occurred=at, at=at,
        value=finding.value, value_text=f"{finding.value:.4g} (median {finding.median:.4g})",
        details={"run_id": finding.run_id, "statistic": finding.statistic, "value": finding.value,
                 "median": finding.median, "robust_z": finding.robust_z, "history": finding.history})
    return alert_id


__all__ = ["ALERT_KIND", "check_finished_run", "raise_alert"]

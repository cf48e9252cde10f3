"""SQL for alert rules and incidents (``alert_rules``; ``alerts``, one row per incident since migration 055)."""
from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pandas as pd

from mlops_core.clock import utcnow
from mlops_core.errors import NotFoundError

RULE_COLUMNS = ["id", "model", "kind", "target", "threshold", "severity", "params", "enabled", "created_at"]
ALERT_COLUMNS = ["id", "model", "raised_at", "kind", "severity", "message", "rule_id", "window_start", "dedup_key",
                 "details", "acknowledged", "acknowledged_at", "acknowledged_by", "status", "subject", "title",
                 "first_seen", "last_seen", "windows", "current_value", "current_text", "snoozed_until", "snoozed_by",
                 "resolved_at", "resolved_by", "reopened", "updated_at"]


def list_rules(con: duckdb.DuckDBPyConnection, model: str, enabled_only: bool = False) -> pd.DataFrame:
    sql = f"SELECT {', '.join(RULE_COLUMNS)} FROM alert_rules WHERE model = ?"
    if enabled_only:
        sql += " AND enabled"
    return con.execute(sql + " ORDER BY id", [model]).df()


def upsert_rule(con, model: str, kind: str, target: str | None, threshold: float | None, severity: str,
                params: dict | None, enabled: bool = True) -> int:
    """Insert or update the rule identified by (model, kind, target); return its id."""
    row = con.execute(
        "SELECT id FROM alert_rules WHERE model = ? AND kind = ? AND target IS NOT DISTINCT FROM ? ORDER BY id LIMIT 1",
        [model, kind, target]).fetchone()
    p = json.dumps(params or {})
    if row is not None:
        con.execute("UPDATE alert_rules SET threshold = ?, severity = ?, params = ?, enabled = ? WHERE id = ?",
                    [threshold, severity, p, enabled, row[0]])
        return int(row[0])
    return int(con.execute(
        "INSERT INTO alert_rules (model, kind, target, threshold, severity, params, enabled, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [model, kind, target, threshold, severity, p, enabled, utcnow()]).fetchone()[0])


def delete_rule(con, rule_id: int) -> None:
    if con.execute("SELECT count(*) FROM alert_rules WHERE id = ?", [rule_id]).fetchone()[0] == 0:
        raise NotFoundError(f"No alert rule with id {rule_id}.", rule_id=rule_id)
    con.execute("DELETE FROM alert_rules WHERE id = ?", [rule_id])


def _incident_row(con, model: str, key: str):
    return con.execute(
        "SELECT id, status, first_seen, last_seen, windows, snoozed_until FROM alerts "
        "WHERE model = ? AND incident_key = ? AND status <> 'merged' ORDER BY id DESC LIMIT 1", [model, key]).fetchone()


def upsert_incident(con: duckdb.DuckDBPyConnection, *, model: str, kind: str, severity: str, key: str, subject: str,
                    title: str, message: str, occurred: datetime, value: float | None, value_text: str | None,
                    details: dict | None, at: datetime, rule_id: int | None = None) -> tuple[int, str | None]:
    """Record one occurrence (a window, a run, an evaluation at ``occurred``) of the incident ``key`` of ``model``.

    The incident is the newest row of the key that is not merged: a new row when there is none
    (``"new"``); an occurrence after its last one updates it (last seen, windows + 1, current value,
    message: ``"updated"``), and reopens it when it was resolved (``"reopened"``); an occurrence of an
    already counted time refreshes the current value and message only (None), and one a resolved incident
    had already seen changes nothing (None). Returns (incident id, what happened). Call inside a transaction.
    """
    row = _incident_row(con, model, key)
    payload = json.dumps(details or {}, default=str)
    if row is None:
        alert_id = int(con.execute(
            "INSERT INTO alerts (model, raised_at, kind, severity, message, rule_id, window_start, dedup_key, details, "
            "incident_key, subject, title, status, first_seen, last_seen, windows, current_value, current_text, "
            "updated_at, reopened) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, 1, ?, ?, ?, 0) RETURNING id",
            [model, at, kind, severity, message, rule_id, occurred, key, payload, key, subject, title, occurred, occurred,
             value, value_text, at]).fetchone()[0])
        return alert_id, "new"
    alert_id, status, first_seen, last_seen, _windows, _ = row
    alert_id = int(alert_id)
    later = last_seen is None or occurred > last_seen
    if status == "resolved":
        if not later:
            return alert_id, None
        con.execute(
            "UPDATE alerts SET status = 'open', acknowledged = FALSE, acknowledged_at = NULL, acknowledged_by = NULL, "
            "snoozed_until = NULL, snoozed_by = NULL, reopened = coalesce(reopened, 0) + 1, last_seen = ?, "
            "windows = coalesce(windows, 0) + 1, window_start = ?, current_value = ?, current_text = ?, message = ?, "
            "details = ?, severity = ?, title = ?, updated_at = ? WHERE id = ?",
            [occurred, occurred, value, value_text, message, payload, severity, title, at, alert_id])
        return alert_id, "reopened"
    if later:
        con.execute(
            "UPDATE alerts SET last_seen = ?, windows = coalesce(windows, 0) + 1, window_start = ?, current_value = ?, "
            "current_text = ?, message = ?, details = ?, severity = ?, title = ?, updated_at = ? WHERE id = ?",
            [occurred, occurred, value, value_text, message, payload, severity, title, at, alert_id])
        return alert_id, "updated"
    if first_seen is not None and occurred < first_seen:  # an earlier window that now qualifies (late labels)
        con.execute("UPDATE alerts SET first_seen = ?, windows = coalesce(windows, 0) + 1, updated_at = ? WHERE id = ?",
                    [occurred, at, alert_id])
        return alert_id, None
    if occurred == last_seen:  # the newest window recomputed (more labels): its figures, not a new occurrence
        con.execute("UPDATE alerts SET current_value = ?, current_text = ?, message = ?, details = ? WHERE id = ?",
                    [value, value_text, message, payload, alert_id])
    return alert_id, None


def list_alerts(con, model: str | None = None, open_only: bool = False, *, now: datetime | None = None,
                statuses: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Incidents, the most recently seen first (merged rows never). ``open_only``: status open and not snoozed
    at ``now``; ``statuses``: only these (open, acknowledged, resolved)."""
    sql, params = f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE status <> 'merged'", []
    if model is not None:
        sql += " AND model = ?"
        params.append(model)
    if open_only:
        sql += " AND status = 'open' AND (snoozed_until IS NULL OR snoozed_until <= ?)"
        params.append(now or utcnow())
    if statuses:
        sql += f" AND status IN ({', '.join('?' for _ in statuses)})"
        params += list(statuses)
    return con.execute(sql + " ORDER BY coalesce(last_seen, raised_at) DESC, id DESC", params).df()


def get_alert(con, alert_id: int) -> tuple[str, str, datetime | None]:
    """(model, status, snoozed_until) of an incident; raise NotFoundError."""
    row = con.execute("SELECT model, status, snoozed_until FROM alerts WHERE id = ? AND status <> 'merged'",
                      [alert_id]).fetchone()
    if row is None:
        raise NotFoundError(f"No alert with id {alert_id}. List them with `mlops alerts --model NAME --all`.",
                            alert_id=alert_id)
    return row[0], row[1], row[2]


def acknowledge(con: duckdb.DuckDBPyConnection, alert_id: int, actor: str, at: datetime) -> str | None:
    """Mark an open incident acknowledged; return its model, or None when it was not open; raise NotFoundError."""
    model, status, _ = get_alert(con, alert_id)
    if status != "open":
        return None
    con.execute("UPDATE alerts SET status = 'acknowledged', acknowledged = TRUE, acknowledged_at = ?, "
                "acknowledged_by = ?, updated_at = ? WHERE id = ?", [at, actor, at, alert_id])
    return model


def resolve(con: duckdb.DuckDBPyConnection, alert_id: int, actor: str, at: datetime) -> str | None:
    """Mark an incident resolved; return its model, or None when it already was; raise NotFoundError."""
    model, status, _ = get_alert(con, alert_id)
    if status == "resolved":
        return None
    con.execute("UPDATE alerts SET status = 'resolved', resolved_at = ?, resolved_by = ?, snoozed_until = NULL, "
                "updated_at = ? WHERE id = ?", [at, actor, at, alert_id])
    return model


def snooze(con: duckdb.DuckDBPyConnection, alert_id: int, until: datetime, actor: str, at: datetime) -> str:
    """Hide an incident from the open list (and from notifications) until ``until``; return its model; raise
    NotFoundError."""
    model, _, _ = get_alert(con, alert_id)
    con.execute("UPDATE alerts SET snoozed_until = ?, snoozed_by = ?, updated_at = ? WHERE id = ?",
                [until, actor, at, alert_id])
    return model


def validation_anomaly_counts(con, model: str, start, end) -> int:
    """Anomalies recorded by validation reports of ``model`` checked in [start, end)."""
    return int(con.execute(
        "SELECT count(a.report_id) FROM validation_reports r JOIN validation_anomalies a ON a.report_id = r.id "
        "WHERE r.model = ? AND r.checked_at >= ? AND r.checked_at < ?", [model, start, end]).fetchone()[0])

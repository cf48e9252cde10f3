"""SQL for alert rules and alerts (``alert_rules``, ``alerts``)."""
from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pandas as pd

from mlops_core.errors import NotFoundError
from mlops_core.clock import utcnow

RULE_COLUMNS = ["id", "model", "kind", "target", "threshold", "severity", "params", "enabled", "created_at"]
ALERT_COLUMNS = ["id", "model", "raised_at", "kind", "severity", "message", "rule_id", "window_start", "dedup_key",
                 "details", "acknowledged", "acknowledged_at", "acknowledged_by"]


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


def insert_alert(con, *, model: str, kind: str, severity: str, message: str, rule_id: int | None,
                 window_start: datetime | None, dedup_key: str, details: dict | None, raised_at: datetime) -> int | None:
    """Insert an alert unless one with ``dedup_key`` exists; return the new id or None."""
    if con.execute("SELECT count(*) FROM alerts WHERE model = ? AND dedup_key = ?", [model, dedup_key]).fetchone()[0]:
        return None
    return int(con.execute(
        "INSERT INTO alerts (model, raised_at, kind, severity, message, rule_id, window_start, dedup_key, details) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [model, raised_at, kind, severity, message, rule_id, window_start, dedup_key,
         json.dumps(details or {}, default=str)]).fetchone()[0])


def list_alerts(con, model: str | None = None, open_only: bool = False) -> pd.DataFrame:
    sql, params = f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE 1 = 1", []
    if model is not None:
        sql += " AND model = ?"
        params.append(model)
    if open_only:
        sql += " AND NOT acknowledged"
    return con.execute(sql + " ORDER BY raised_at DESC, id DESC", params).df()


def acknowledge(con: duckdb.DuckDBPyConnection, alert_id: int, actor: str, at: datetime) -> str | None:
    """Mark an alert acknowledged; return its model, or None when it already was; raise NotFoundError."""
    row = con.execute("SELECT acknowledged, model FROM alerts WHERE id = ?", [alert_id]).fetchone()
    if row is None:
        raise NotFoundError(f"No alert with id {alert_id}. List them with `mlops alerts --model NAME --all`.",
                            alert_id=alert_id)
    if row[0]:
        return None
    con.execute("UPDATE alerts SET acknowledged = TRUE, acknowledged_at = ?, acknowledged_by = ? WHERE id = ?",
                [at, actor, alert_id])
    return row[1]


def validation_anomaly_counts(con, model: str, start, end) -> int:
    """Anomalies recorded by validation reports of ``model`` checked in [start, end)."""
    return int(con.execute(
        "SELECT count(a.report_id) FROM validation_reports r JOIN validation_anomalies a ON a.report_id = r.id "
        "WHERE r.model = ? AND r.checked_at >= ? AND r.checked_at < ?", [model, start, end]).fetchone()[0])


def raise_policy_alert(con: duckdb.DuckDBPyConnection, model: str, message: str, *, severity: str = "warning",
                       dedup_key: str, details: dict | None = None, at: datetime | None = None) -> int | None:
    """Insert an alert of kind ``policy_trigger`` unless an unacknowledged one with ``dedup_key`` exists.

    Returns the new alert's id, or None when it was a duplicate.
    """
    dup = con.execute(
        "SELECT id FROM alerts WHERE model = ? AND dedup_key = ? AND NOT acknowledged", [model, dedup_key]
    ).fetchone()
    if dup:
        return None
    return int(con.execute(
        "INSERT INTO alerts (model, raised_at, kind, severity, message, dedup_key, details) "
        "VALUES (?, ?, 'policy_trigger', ?, ?, ?, ?) RETURNING id",
        [model, at or utcnow(), severity, message, dedup_key, json.dumps(details or {}, default=str)],
    ).fetchone()[0])


def raise_open_alert(con: duckdb.DuckDBPyConnection, *, model: str, kind: str, severity: str, message: str,
                     dedup_key: str, details: dict | None = None, at: datetime) -> tuple[int, bool]:
    """Insert an alert of ``kind`` unless an unacknowledged alert of ``model`` with ``dedup_key`` is open.

    Returns (the id of the new alert or of the open one, True when it is new).
    """
    open_id = con.execute(
        "SELECT id FROM alerts WHERE model = ? AND dedup_key = ? AND NOT acknowledged ORDER BY id LIMIT 1",
        [model, dedup_key]).fetchone()
    if open_id:
        return int(open_id[0]), False
    return int(con.execute(
        "INSERT INTO alerts (model, raised_at, kind, severity, message, dedup_key, details) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [model, at, kind, severity, message, dedup_key, json.dumps(details or {}, default=str)]).fetchone()[0]), True

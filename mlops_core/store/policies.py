"""SQL for per-model automation policies (``policies``) and the alerts a policy raises."""
from __future__ import annotations

import json
from datetime import datetime

import duckdb

from mlops_core.store.clock import utcnow


def get_policy_row(con: duckdb.DuckDBPyConnection, model: str) -> tuple[str, dict, datetime, str] | None:
    """Return (mode, config, updated_at, updated_by) of the model's stored policy, or None."""
    row = con.execute("SELECT mode, config, updated_at, updated_by FROM policies WHERE model = ?", [model]).fetchone()
    if row is None:
        return None
    return row[0], json.loads(row[1]) if row[1] else {}, row[2], row[3]


def upsert_policy(con: duckdb.DuckDBPyConnection, model: str, mode: str, config: dict, actor: str,
                  at: datetime | None = None) -> None:
    """Insert or replace the model's policy (call inside the caller's transaction)."""
    con.execute("DELETE FROM policies WHERE model = ?", [model])
    con.execute("INSERT INTO policies VALUES (?, ?, ?, ?, ?)", [model, mode, json.dumps(config), at or utcnow(), actor])


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

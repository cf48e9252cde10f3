"""SQL for per-model automation policies (``policies``)."""
from __future__ import annotations

import json
from datetime import datetime

import duckdb

from mlops_core.clock import utcnow


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

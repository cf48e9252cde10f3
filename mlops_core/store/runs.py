"""SQL for pipeline runs and the append-only audit log."""
from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from mlops_core.clock import utcnow
from mlops_core.entities import RunInfo, dumps
from mlops_core.errors import NotFoundError

if TYPE_CHECKING:  # frames come from DuckDB's .df(); pandas loads when one is asked for
    import pandas as pd

RUN_KINDS = ("train", "retrain", "evaluate", "validate", "promote", "rollback", "ingest", "monitor", "materialize")
RUN_TRIGGERS = ("manual", "automated", "schedule", "api")
RUN_STATUSES = ("queued", "running", "succeeded", "failed")


_RUN_COLS = (
    "id, model, kind, trigger, actor, status, progress, message, params, metrics, statistics, error, created_at, "
    "started_at, finished_at, duration_s, pid, host, heartbeat_at"
)


def _dumps(d) -> str | None:
    return dumps(d) if d is not None else None


def insert_run(
    con: duckdb.DuckDBPyConnection,
    *,
    model: str | None,
    kind: str,
    trigger: str = "manual",
    actor: str = "cli",
    status: str = "queued",
    params: dict | None = None,
    message: str | None = None,
    run_id: str | None = None,
    created_at: datetime | None = None,
    unclaimed: bool = False,
) -> str:
    """Insert a run row (this process as its owner; no owner with ``unclaimed``: a queued job that the job worker
    claims, see ``jobs.claim_next``) and return its id."""
    run_id = run_id or uuid.uuid4().hex[:12]
    now = created_at or utcnow()
    started = now if status == "running" else None
    con.execute(
        f"INSERT INTO runs ({_RUN_COLS}) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, NULL, NULL, NULL, ?, ?, NULL, NULL, ?, ?, ?)",
        [run_id, model, kind, trigger, actor, status, message, _dumps(params or {}), now, started,
         None if unclaimed else os.getpid(), socket.gethostname(), now],
    )
    return run_id


def update_run(con: duckdb.DuckDBPyConnection, run_id: str, **fields) -> None:
    """Set the given columns of a run (dicts are stored as JSON); always refreshes the heartbeat."""
    if not fields:
        return
    sets, params = [], []
    for k, v in fields.items():
        sets.append(f"{k} = ?")
        params.append(_dumps(v) if k in ("params", "metrics", "statistics") else v)
    if "heartbeat_at" not in fields:
        sets.append("heartbeat_at = ?")
        params.append(utcnow())
    con.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", [*params, run_id])


def heartbeat(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Refresh a running job's heartbeat (it proves the job's process is alive)."""
    con.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", [utcnow(), run_id])


_RUN_FIELDS = [c.strip() for c in _RUN_COLS.split(",")]


def _run_from_row(row) -> RunInfo:
    r = dict(zip(_RUN_FIELDS, row, strict=False))
    for k in ("params", "metrics", "statistics"):
        r[k] = json.loads(r[k]) if r[k] else {}
    return RunInfo(**r)


def get_run(con: duckdb.DuckDBPyConnection, run_id: str) -> RunInfo:
    row = con.execute(f"SELECT {_RUN_COLS} FROM runs WHERE id = ?", [run_id]).fetchone()
    if row is None:
        raise NotFoundError(f"No run with id {run_id!r}.", run_id=run_id)
    return _run_from_row(row)


def find_runs(
    con: duckdb.DuckDBPyConnection, model: str | None = None, kind: str | None = None, statuses: tuple[str, ...] | None = None,
    limit: int | None = None, before: datetime | None = None,
) -> list[RunInfo]:
    """Runs (of one model, kind and statuses; created at or before ``before``), newest first."""
    sql, params = f"SELECT {_RUN_COLS} FROM runs WHERE 1=1", []
    if model is not None:
        sql += " AND model = ?"
        params.append(model)
    if kind is not None:
        sql += " AND kind = ?"
        params.append(kind)
    if statuses:
        sql += f" AND status IN ({', '.join('?' for _ in statuses)})"
        params.extend(statuses)
    if before is not None:
        sql += " AND created_at <= ?"
        params.append(before)
    sql += " ORDER BY created_at DESC, id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [_run_from_row(r) for r in con.execute(sql, params).fetchall()]


def runs_frame(con: duckdb.DuckDBPyConnection, model: str | None = None) -> pd.DataFrame:
    """Return the run history (newest first) as a DataFrame; JSON columns stay text."""
    sql, params = f"SELECT {_RUN_COLS} FROM runs", []
    if model is not None:
        sql += " WHERE model = ?"
        params.append(model)
    return con.execute(sql + " ORDER BY created_at DESC, id DESC", params).df()


def insert_audit(
    con: duckdb.DuckDBPyConnection,
    *,
    actor: str,
    action: str,
    model: str | None,
    from_version: int | None = None,
    to_version: int | None = None,
    reason: str | None = None,
    run_id: str | None = None,
    details: dict | None = None,
    at: datetime | None = None,
) -> int:
    """Append an audit event and return its id. Call inside the transaction of the change it records."""
    return int(
        con.execute(
            "INSERT INTO audit_events (occurred_at, actor, action, model, from_version, to_version, reason, run_id, details) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [at or utcnow(), actor, action, model, from_version, to_version, reason, run_id, _dumps(details)],
        ).fetchone()[0]
    )


def audit_frame(con: duckdb.DuckDBPyConnection, model: str | None = None) -> pd.DataFrame:
    """Return the audit log (newest first) as a DataFrame."""
    sql, params = "SELECT id, occurred_at, actor, action, model, from_version, to_version, reason, run_id, details FROM audit_events", []
    if model is not None:
        sql += " WHERE model = ?"
        params.append(model)
    return con.execute(sql + " ORDER BY occurred_at DESC, id DESC", params).df()

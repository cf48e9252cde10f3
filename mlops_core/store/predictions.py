"""The per-model prediction logs and labels: appending rows already in their layout, counts, traffic.

``append`` writes a DataFrame or Arrow table already in the log's column layout (what
``ingest`` produces after its checks, or a trusted bulk load) as Parquet files and lists
them in one metadata transaction (see ``logs``). Counts and time spans come from the
listing; traffic in a window is counted on the log engine.
"""
from __future__ import annotations

import uuid
from datetime import datetime

import duckdb

from mlops_core.config import lock_timeout_seconds
from mlops_core.entities import ModelInfo
from mlops_core.store import logs
from mlops_core.store.conditions import time_range
from mlops_core.store.connection import Store, engine
from mlops_core.store.logs import LogView
from mlops_core.store.models import quote_ident


def append(store: Store, info: ModelInfo, kind: str, rows, *, batch_id: str | None = None) -> int:
    """Append ``rows`` (a DataFrame or pyarrow Table with the kind's columns; ``batch_id`` fills a missing
    one) to the model's log or labels without checks; return the count. For rows a caller already
    validated (ingest does its own checks first)."""
    batch_id = batch_id or uuid.uuid4().hex[:16]
    names = set(rows.column_names if hasattr(rows, "column_names") else rows.columns)
    # A model bound to the feature store logs its entity key; rows without it get NULL there.
    keys = "".join(f", CAST(NULL AS {k.sql_type}) AS {quote_ident(k.name)}" for k in info.entity_keys
                   if k.name not in names)
    select = "SELECT *" + keys + ("" if "batch_id" in names else ", $batch_id AS batch_id") + " FROM _append_rows"
    with logs.writer_lock(store.logs, info.name, lock_timeout_seconds()), engine() as con:
        predictions = None
        if kind == "labels":  # each label file records the span of the predictions it labels
            with store.connect() as meta:
                predictions = logs.view(meta, store.logs, info).predictions
        con.register("_append_rows", rows)
        try:
            files = logs.write(con, store.logs, info, kind, select, {"batch_id": batch_id}
                               if "batch_id" not in names else None, batch_id=batch_id, predictions=predictions)
        finally:
            con.unregister("_append_rows")
        try:
            with store.transaction() as meta:
                logs.register(meta, files)
        except BaseException:
            logs.discard(store.logs, files)
            raise
    return sum(f.rows for f in files)


def count_predictions(con: duckdb.DuckDBPyConnection, info: ModelInfo) -> int:
    return logs.facts(con, info.name).predictions


def count_labels(con: duckdb.DuckDBPyConnection, info: ModelInfo) -> int:
    return logs.facts(con, info.name).labels


def last_prediction_at(con: duckdb.DuckDBPyConnection, info: ModelInfo) -> datetime | None:
    return logs.facts(con, info.name).last_ts


def log_time_range(con: duckdb.DuckDBPyConnection, info: ModelInfo) -> tuple[datetime | None, datetime | None]:
    """(first, last) prediction timestamp of the model's log (from the listing)."""
    f = logs.facts(con, info.name)
    return f.first_ts, f.last_ts


def traffic(con: duckdb.DuckDBPyConnection, log: LogView, start=None, end=None) -> tuple[int, int]:
    """(predictions, labelled predictions) with ts in [start, end); ``con``: the log engine."""
    rng, p1 = time_range("l.ts", start, end)
    row = con.execute(
        f"SELECT count(*), count(lb.label) FROM {log.predictions} l "
        f"LEFT JOIN {log.labels} lb ON l.request_id = lb.request_id WHERE 1 = 1 {rng}", p1
    ).fetchone()
    return int(row[0]), int(row[1])


def stored_request_ids(con: duckdb.DuckDBPyConnection, log: LogView, ids) -> set[str]:
    """The request ids among ``ids`` (an Arrow array or list of strings) that the log ``log`` already holds;
    ``con``: the log engine."""
    import pyarrow as pa

    con.register("_candidate_ids", pa.table({"request_id": pa.array(ids, type=pa.string())}))
    try:
        rows = con.execute(f"SELECT DISTINCT c.request_id FROM _candidate_ids c WHERE EXISTS "
                           f"(SELECT 1 FROM {log.predictions} p WHERE p.request_id = c.request_id)").fetchall()
    finally:
        con.unregister("_candidate_ids")
    return {r[0] for r in rows}

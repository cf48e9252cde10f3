"""SQL for the per-model prediction logs and label tables (bulk appends and counts).

``append_*`` take a DataFrame or Arrow table already in the table's column layout
(validated by ``mlops_core.ingest``) and insert it with one ``INSERT ... BY NAME``,
so the rows go from Arrow to DuckDB without a Python loop.
"""
from __future__ import annotations

from datetime import datetime

import duckdb

from mlops_core.entities import ModelInfo
from mlops_core.store.conditions import time_range
from mlops_core.store.models import quote_ident


def append_predictions(con: duckdb.DuckDBPyConnection, model: ModelInfo, rows) -> int:
    """Append ``rows`` (DataFrame or pyarrow Table with the log's columns) to the model's log; return the count."""
    con.register("_pred_batch", rows)
    try:
        con.execute(f"INSERT INTO {quote_ident(model.log_table)} BY NAME SELECT * FROM _pred_batch")
    finally:
        con.unregister("_pred_batch")
    return len(rows)


def append_labels(con: duckdb.DuckDBPyConnection, model: ModelInfo, rows) -> int:
    """Append ``rows`` (request_id, label, label_ts, batch_id) to the model's label table; return the count."""
    con.register("_label_batch", rows)
    try:
        con.execute(f"INSERT INTO {quote_ident(model.label_table)} BY NAME SELECT * FROM _label_batch")
    finally:
        con.unregister("_label_batch")
    return len(rows)


def count_predictions(con: duckdb.DuckDBPyConnection, model: ModelInfo) -> int:
    return int(con.execute(f"SELECT count(*) FROM {quote_ident(model.log_table)}").fetchone()[0])


def count_labels(con: duckdb.DuckDBPyConnection, model: ModelInfo) -> int:
    return int(con.execute(f"SELECT count(*) FROM {quote_ident(model.label_table)}").fetchone()[0])


def last_prediction_at(con: duckdb.DuckDBPyConnection, model: ModelInfo) -> datetime | None:
    return con.execute(f"SELECT max(ts) FROM {quote_ident(model.log_table)}").fetchone()[0]


def traffic(con: duckdb.DuckDBPyConnection, info: ModelInfo, start=None, end=None) -> tuple[int, int]:
    """(predictions, labelled predictions) with ts in [start, end)."""
    rng, p1 = time_range("l.ts", start, end)
    row = con.execute(
        f"SELECT count(*), count(lb.label) FROM {quote_ident(info.log_table)} l "
        f"LEFT JOIN {quote_ident(info.label_table)} lb ON l.request_id = lb.request_id WHERE 1 = 1 {rng}", p1
    ).fetchone()
    return int(row[0]), int(row[1])


def log_time_range(con: duckdb.DuckDBPyConnection, info: ModelInfo) -> tuple[datetime | None, datetime | None]:
    """(first, last) prediction timestamp of the model's log."""
    first, last = con.execute(f"SELECT min(ts), max(ts) FROM {quote_ident(info.log_table)}").fetchone()
    return first, last

"""SQL that turns the prediction log and its late labels into a labelled training set.

A labelled row is a logged prediction whose ``request_id`` has a label. When a label
was sent more than once, the one that arrived last wins. Rows are windowed on the
prediction time ``ts`` (``start`` inclusive, ``end`` exclusive) and come back oldest
first, so the most recent rows can serve as a time-based holdout.
"""
from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd
import pyarrow as pa

from mlops_core.store.conditions import time_range
from mlops_core.store.connection import cursor
from mlops_core.store.logs import LogView
from mlops_core.store.models import quote_ident


def labelled_rows(con: duckdb.DuckDBPyConnection, log: LogView, start: datetime | None, end: datetime | None,
                  *, limit: int | None = None, with_ids: bool = True) -> pd.DataFrame:
    """Return ``request_id`` (unless ``with_ids=False``), ``ts``, ``version``, the feature columns and ``label``
    of labelled predictions in [start, end), oldest first.

    With ``limit`` only the most recent ``limit`` rows are returned (still oldest first).
    """
    frame = labelled_table(con, log, start, end, limit=limit, with_ids=with_ids).to_pandas()
    return frame.iloc[::-1].reset_index(drop=True) if limit else frame


def labelled_table(con: duckdb.DuckDBPyConnection, log: LogView, start: datetime | None, end: datetime | None,
                   *, limit: int | None = None, with_ids: bool = True, keys: bool = False) -> pa.Table:
    """``labelled_rows`` as an Arrow table (newest first when ``limit`` is given); ``keys``: also the entity key
    columns of a model bound to the feature store (after the features).

    DuckDB hands a result to Arrow column by column, about twice as fast as to pandas
    directly; Arrow's own conversion to pandas then gives the same frame.
    """
    names = log.info.feature_names + ([k.name for k in log.info.entity_keys] if keys else [])
    feats = ", ".join(f"p.{quote_ident(f)}" for f in names)
    rng, params = time_range("p.ts", start, end)
    order = "DESC" if limit else "ASC"
    sql = f"""
        SELECT {"p.request_id, " if with_ids else ""}p.ts, p.version, {feats}, l.label
        FROM {log.predictions} p
        JOIN (
            SELECT request_id, arg_max(label, label_ts) AS label
            FROM {log.labels}
            WHERE label IS NOT NULL
            GROUP BY request_id
        ) l ON l.request_id = p.request_id
        WHERE 1 = 1{rng}
        ORDER BY p.ts {order}, p.request_id {order}
    """
    if limit:
        sql += f" LIMIT {int(limit)}"
    # A cursor of its own: the relation API refuses a connection that still holds an unfinished result.
    cur = cursor(con)
    try:
        return cur.sql(sql, params=params).to_arrow_table()
    finally:
        cur.close()


def labelled_count(con: duckdb.DuckDBPyConnection, log: LogView, start: datetime | None, end: datetime | None) -> int:
    """Number of distinct labelled predictions in [start, end)."""
    cond, params = time_range("p.ts", start, end)
    return int(con.execute(
        f"SELECT count(DISTINCT p.request_id) FROM {log.predictions} p "
        f"WHERE p.request_id IN (SELECT request_id FROM {log.labels} WHERE label IS NOT NULL) {cond}",
        params,
    ).fetchone()[0])


def arm_outcomes(con: duckdb.DuckDBPyConnection, log: LogView, arms: list[int], start: datetime | None,
                 end: datetime | None, by: str = "version") -> pd.DataFrame:
    """Per arm (``version`` or ``variant`` value) of labelled predictions in [start, end): n, and
    classification: ``correct`` (prediction equals label); regression: ``sum_abs`` and ``sum_abs2``
    of the absolute error (for a mean and a variance). Standard SQL (CASE WHEN, sum, count).
    """
    col = "p.version" if by == "version" else "p.variant"
    rng, rng_params = time_range("p.ts", start, end)
    where, params = f"{col} IN ({', '.join('?' for _ in arms)}){rng}", [*arms, *rng_params]
    if log.info.task == "classification":
        agg = "sum(CASE WHEN p.prediction = l.label THEN 1 ELSE 0 END) AS correct"
    else:
        agg = ("sum(abs(p.prediction - l.label)) AS sum_abs, "
               "sum((p.prediction - l.label) * (p.prediction - l.label)) AS sum_abs2")
    sql = f"""
        SELECT {col} AS arm, count(*) AS n, {agg}
        FROM {log.predictions} p
        JOIN (
            SELECT request_id, label FROM (
                SELECT request_id, label,
                       ROW_NUMBER() OVER (PARTITION BY request_id ORDER BY label_ts DESC) AS rn
                FROM {log.labels} WHERE label IS NOT NULL
            ) ranked WHERE rn = 1
        ) l ON l.request_id = p.request_id
        WHERE {where}
        GROUP BY {col}
    """
    return con.execute(sql, params).df()


def prediction_count(con: duckdb.DuckDBPyConnection, log: LogView, start: datetime | None,
                     end: datetime | None) -> int:
    """Number of logged predictions with ``ts`` in [start, end), labelled or not."""
    cond, params = time_range("p.ts", start, end)
    return int(con.execute(f"SELECT count(*) FROM {log.predictions} p WHERE 1 = 1 {cond}", params).fetchone()[0])

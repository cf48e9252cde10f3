"""SQL over a feature view's Parquet files, on the log engine: ingest's checks and supersession, the
point-in-time join, online snapshots, statistics and samples, and reading a source table.

The metadata (definitions, the listing of files, batches, snapshots) is ``store.features``; this module
reads and writes the files that listing names. What a query reads of a view is a ``ViewRows`` (the
listed files, from one metadata visit: ``view_rows``), as a ``LogView`` is for a model's log. ``eng``:
a cursor of ``Store.engine()`` (in-memory DuckDB, no database lock).

Ingest stages its batch as ``_batch`` (``store.validation.stage``), keeps the last row per entity key
and event time in the temporary table ``_feature_batch``, and writes that table's rows. The join
registers the entity rows as ``_pit_entities`` with their order in ``__row``.

Column names from a user's file only appear quoted (``quote_ident``); values are bound parameters.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from mlops_core.entities import FeatureViewDef
from mlops_core.store import logs
from mlops_core.store import validation as vstore
from mlops_core.store.conditions import check_window
from mlops_core.store.features import BATCH, EVENT_TS, ORDER, ORDER_STRIDE, file_columns, view_files
from mlops_core.store.logs import WrittenFile
from mlops_core.store.models import quote_ident
from mlops_core.store.validation import BatchCounts, Column, RowTest, typed_column

#: The entity rows' order, a column the join adds to them (a name the rows may not have).
ENTITY_ROW = "__row"
_ENTITIES = "_pit_entities"
_BATCH_TABLE = "_feature_batch"


def _literal(text: str | Path) -> str:
    return "'" + str(text).replace("'", "''") + "'"


# --- what a query reads of a view -------------------------------------------------------------------


@dataclass(frozen=True)
class ViewRows:
    """What one query reads of a view: its definition, the listed row files (absolute paths) and the files of
    superseded orders."""

    view: FeatureViewDef
    files: tuple[str, ...]
    superseded: tuple[str, ...]

    @property
    def relation(self) -> str:
        """SQL for the view's current rows: the files' rows, cast to the view's current types (a feature added by
        a later version reads as NULL in older files), less the superseded ones."""
        cols = [c for c in file_columns(self.view) if c[0] != BATCH]
        if not self.files:
            return "(SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {quote_ident(c)}" for c, t in cols) + " WHERE FALSE)"
        listed = ", ".join(_literal(f) for f in self.files)
        exprs = ", ".join(f"CAST({quote_ident(c)} AS {t}) AS {quote_ident(c)}" for c, t in cols)
        scan = f"read_parquet([{listed}], union_by_name = true, hive_partitioning = false)"
        if self.superseded:
            gone = ", ".join(_literal(f) for f in self.superseded)
            scan += f" WHERE {ORDER} NOT IN (SELECT {ORDER} FROM read_parquet([{gone}], hive_partitioning = false))"
        return f"(SELECT {exprs} FROM {scan})"


def view_rows(con: duckdb.DuckDBPyConnection, root: Path, view: FeatureViewDef, start: datetime | None = None,
              end: datetime | None = None) -> ViewRows:
    """The view's files whose rows may have event times in [start, end] (files are pruned by their time span) and
    every superseded file; ``con``: a metadata visit."""
    return ViewRows(view, tuple(view_files(con, root, view.name, start=start, end=end)),
                    tuple(view_files(con, root, view.name, kind="superseded")))


def _window(start: datetime | None, end: datetime | None) -> tuple[list[str], list]:
    """Conditions (and parameters) for event time in [start, end)."""
    where: list[str] = []
    params: list = []
    if start is not None:
        where.append(f"{EVENT_TS} >= ?")
        params.append(start)
    if end is not None:
        where.append(f"{EVENT_TS} < ?")
        params.append(end)
    return where, params


# --- ingest ----------------------------------------------------------------------------------------------


def batch_columns(view: FeatureViewDef, types: dict[str, pa.DataType]) -> list[Column]:
    """The normalising expressions that turn a staged batch (``_batch``) into the view's columns; every key,
    the timestamp and every feature column must be in ``types`` (the caller checks)."""
    cols = [typed_column(k.name, k.name, k.dtype, types[k.name]) for k in view.keys]
    cols.append(typed_column(EVENT_TS, view.timestamp, "timestamp", types[view.timestamp]))
    cols += [typed_column(f.name, f.name, f.dtype, types[f.name]) for f in view.features]
    return cols


@dataclass(frozen=True)
class BatchCheck:
    """The checks of a staged batch against a view and their counts (one pass over the batch)."""

    columns: list[Column]
    tests: list[RowTest]
    counts: BatchCounts


def check_batch(eng: duckdb.DuckDBPyConnection, view: FeatureViewDef, types: dict[str, pa.DataType]) -> BatchCheck:
    """Count the staged batch's values that are not of the view's types, and its empty keys and event times;
    ``types``: the batch's column types (every column of the view among them)."""
    cols = batch_columns(view, types)
    tests = vstore.row_tests(cols, (*view.key_names, EVENT_TS))
    return BatchCheck(cols, tests, vstore.batch_counts(eng, vstore.normalised(cols, tests), tests=tests, params={}))


def keep_latest_batch_rows(eng: duckdb.DuckDBPyConnection, view: FeatureViewDef, types: dict[str, pa.DataType], *,
                           seq: int, batch_id: str) -> tuple[int, datetime | None, datetime | None]:
    """Put the staged batch's rows in the view's columns (with their ingest order and ``batch_id``) into
    ``_feature_batch``, keeping of rows that share an entity key and event time the last one; return (rows kept,
    oldest event time, newest event time). ``drop_batch`` forgets the table."""
    cols = batch_columns(view, types)
    exprs = ", ".join(f"{c.expr} AS {quote_ident(c.name)}" for c in cols)
    normalised = (f"(SELECT {exprs}, CAST($seq AS BIGINT) * {ORDER_STRIDE} + {vstore.ROW} AS {ORDER}, "
                  f"$batch_id AS {BATCH} FROM {vstore.STAGE})")
    part = ", ".join(quote_ident(c) for c in [*view.key_names, EVENT_TS])
    eng.execute(f"CREATE OR REPLACE TEMP TABLE {_BATCH_TABLE} AS SELECT * FROM {normalised} "
                f"QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY {ORDER} DESC) = 1",
                {"seq": seq, "batch_id": batch_id})
    kept, lo, hi = eng.execute(f"SELECT count(*), min({EVENT_TS}), max({EVENT_TS}) FROM {_BATCH_TABLE}"
                               ).fetchall()[0]
    return int(kept), lo, hi


def _superseded_orders_sql(stored: ViewRows) -> str:
    """SQL for the orders of ``stored`` rows that share an entity key and event time with a row of the batch."""
    on = " AND ".join(f"s.{quote_ident(c)} = b.{quote_ident(c)}" for c in [*stored.view.key_names, EVENT_TS])
    return f"SELECT s.{ORDER} AS {ORDER} FROM {stored.relation} AS s SEMI JOIN {_BATCH_TABLE} AS b ON {on}"


def count_superseded(eng: duckdb.DuckDBPyConnection, stored: ViewRows) -> int:
    """How many ``stored`` rows share an entity key and event time with a row of ``_feature_batch``."""
    return int(eng.execute(f"SELECT count(*) FROM ({_superseded_orders_sql(stored)})").fetchall()[0][0])


def write_superseded(eng: duckdb.DuckDBPyConnection, stored: ViewRows, path: Path) -> None:
    """Write the orders of the ``stored`` rows that ``_feature_batch`` supersedes to the Parquet file ``path``."""
    eng.execute(f"COPY ({_superseded_orders_sql(stored)}) TO {_literal(path)} (FORMAT PARQUET)")


def write_batch(eng: duckdb.DuckDBPyConnection, root: Path, folder: Path, view: FeatureViewDef, *,
                batch_id: str) -> list[WrittenFile]:
    """Write the rows of ``_feature_batch`` into ``folder`` as Parquet files by event day (``logs.write_partitioned``);
    nothing lists them."""
    return logs.write_partitioned(eng, root, folder, file_columns(view), EVENT_TS, f"SELECT * FROM {_BATCH_TABLE}",
                                  tag=batch_id)


def drop_batch(eng: duckdb.DuckDBPyConnection) -> None:
    """Forget ``_feature_batch``."""
    eng.execute(f"DROP TABLE IF EXISTS {_BATCH_TABLE}")


# --- the point-in-time join --------------------------------------------------------------------------------


@contextmanager
def entity_rows(eng: duckdb.DuckDBPyConnection, table: pa.Table) -> Iterator[None]:
    """Make ``table`` (the entity rows, with their order in ``ENTITY_ROW``) what the entity queries below read,
    under a UTC session zone, for the duration of the block."""
    eng.execute("SET TimeZone = 'UTC'")
    eng.register(_ENTITIES, table)
    try:
        yield
    finally:
        eng.unregister(_ENTITIES)


@dataclass(frozen=True)
class BadValues:
    """Entity values that cannot be converted: how many, and the first few as (1-based row, value as text)."""

    count: int
    first: list[tuple[int, str | None]]


def bad_entity_values(eng: duckdb.DuckDBPyConnection, column: Column, *, shown: int = 3) -> BadValues | None:
    """The values of the entity column ``column.source`` that are not of its type; None when all are (or the column
    needs no conversion)."""
    if column.bad is None:
        return None
    n = eng.execute(f"SELECT count(*) FROM {_ENTITIES} WHERE {column.bad}").fetchall()[0][0]
    if not n:
        return None
    first = eng.execute(f"SELECT {ENTITY_ROW} + 1, CAST({quote_ident(column.source or column.name)} AS VARCHAR) "
                        f"FROM {_ENTITIES} WHERE {column.bad} ORDER BY {ENTITY_ROW} LIMIT {int(shown)}").fetchall()
    return BadValues(int(n), [(r, v) for r, v in first])


def entities_without_time(eng: duckdb.DuckDBPyConnection, ts: Column) -> int:
    """How many entity rows have no time (``ts``: the time column's normalising expression)."""
    return int(eng.execute(f"SELECT count(*) FROM {_ENTITIES} WHERE {ts.expr} IS NULL").fetchall()[0][0])


def entity_time_span(eng: duckdb.DuckDBPyConnection, ts: Column) -> tuple[datetime | None, datetime | None]:
    """The earliest and latest time of the entity rows (None, None when there are none)."""
    lo, hi = eng.execute(f"SELECT min({ts.expr}), max({ts.expr}) FROM {_ENTITIES}").fetchall()[0]
    return lo, hi


@dataclass(frozen=True)
class JoinPart:
    """One view of a point-in-time join: its rows, and which features to take under which output names."""

    rows: ViewRows
    features: tuple[tuple[str, str], ...]  # (feature, output column)


def _point_in_time_sql(ts_expr: str, key_exprs: dict[str, str], parts: list[JoinPart], *,
                       passthrough: list[str], event_times: bool) -> str:
    keys_needed = list(dict.fromkeys(k for p in parts for k in p.rows.view.key_names))
    inner = [f"{quote_ident(c)}" for c in passthrough] + [f"{key_exprs[k]} AS {quote_ident('__k_' + k)}"
                                                           for k in keys_needed]
    sql_from = f"(SELECT {ENTITY_ROW}, {ts_expr} AS __t, {', '.join(inner)} FROM {_ENTITIES}) AS e"
    selects = [f"e.{quote_ident(c)}" for c in passthrough]
    for i, p in enumerate(parts):
        view, a = p.rows.view, f"v{i}"
        on = " AND ".join(f"e.{quote_ident('__k_' + k)} = {a}.{quote_ident(k)}" for k in view.key_names)
        sql_from += f" ASOF LEFT JOIN {p.rows.relation} AS {a} ON {on} AND e.__t >= {a}.{EVENT_TS}"
        fresh = (f"{a}.{EVENT_TS} > e.__t - to_microseconds(CAST({round(view.ttl_s * 1e6)} AS BIGINT))"
                 if view.ttl_s else None)
        for feature, out in p.features:
            value = f"{a}.{quote_ident(feature)}"
            selects.append(f"CASE WHEN {fresh} THEN {value} END AS {quote_ident(out)}" if fresh else
                           f"{value} AS {quote_ident(out)}")
        if event_times:
            ts = f"{a}.{EVENT_TS}"
            selects.append(f"CASE WHEN {fresh} THEN {ts} END AS {quote_ident(view.name + '__event_ts')}"
                           if fresh else f"{ts} AS {quote_ident(view.name + '__event_ts')}")
    return f"SELECT {', '.join(selects)} FROM {sql_from} ORDER BY e.{ENTITY_ROW}"


def point_in_time_join(eng: duckdb.DuckDBPyConnection, ts: Column, keys: dict[str, Column], parts: list[JoinPart],
                       *, passthrough: list[str], event_times: bool = False) -> pa.Table:
    """Every entity row (in ``ENTITY_ROW`` order) with its ``passthrough`` columns and, per part, the features of
    the view's row with the greatest event time at or before the row's time ``ts`` and within the view's TTL
    (NULL when there is none); ``event_times``: also a ``<view>__event_ts`` column per part.

    ``keys`` maps each key column name to its normalising expression over the entity rows. One ASOF LEFT JOIN per
    view on the key columns and ``event time <= t``; ties cannot occur (ingest supersedes equal key and event
    time, see ``store.features``).
    """
    sql = _point_in_time_sql(ts.expr, {k: c.expr for k, c in keys.items()}, parts, passthrough=passthrough,
                             event_times=event_times)
    return eng.sql(sql).to_arrow_table()


# --- online snapshots ---------------------------------------------------------------------------------------


def _latest_rows_sql(rows: ViewRows) -> str:
    """SQL for the newest row per entity key with event time at or before ``$as_of`` (the online store's
    content)."""
    keys = ", ".join(quote_ident(k) for k in rows.view.key_names)
    return (f"SELECT * FROM {rows.relation} WHERE {EVENT_TS} <= $as_of "
            f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {EVENT_TS} DESC, {ORDER} DESC) = 1")


def latest_rows_facts(eng: duckdb.DuckDBPyConnection, rows: ViewRows, as_of: datetime) -> tuple[int, datetime | None]:
    """(entities, newest event time) of the newest rows per entity key as of ``as_of``."""
    n, newest = eng.execute(f"SELECT count(*), max({EVENT_TS}) FROM ({_latest_rows_sql(rows)})",
                            {"as_of": as_of}).fetchall()[0]
    return int(n), newest


def write_latest_rows(eng: duckdb.DuckDBPyConnection, rows: ViewRows, as_of: datetime, path: Path) -> None:
    """Write the newest row per entity key as of ``as_of`` to the Parquet file ``path`` (zstd)."""
    eng.execute(f"COPY ({_latest_rows_sql(rows)}) TO {_literal(path)} (FORMAT PARQUET, COMPRESSION zstd)",
                {"as_of": as_of})


# --- statistics and samples --------------------------------------------------------------------------------


def window_stats(eng: duckdb.DuckDBPyConnection, rows: ViewRows, window: str, start: datetime | None = None,
                 end: datetime | None = None) -> pd.DataFrame:
    """Per window of event time in [start, end) (``window``: one of ``conditions.WINDOWS``):
    ``window_start``, ``rows`` and, per feature, its non-null count (``n_<feature>``) and for numeric features
    the mean (``mean_<feature>``); what the Features page charts. Standard SQL (date_trunc, count, avg)."""
    window = check_window(window)
    relation = rows.relation
    where, params = _window(start, end)
    if where:
        relation = f"(SELECT * FROM {relation} WHERE {' AND '.join(where)})"
    parts = [f"date_trunc('{window}', {EVENT_TS}) AS window_start", "count(*) AS rows"]
    for f in rows.view.features:
        q = quote_ident(f.name)
        parts.append(f"count({q}) AS {quote_ident('n_' + f.name)}")
        if f.dtype in ("float", "int"):
            parts.append(f"avg(CAST({q} AS DOUBLE)) AS {quote_ident('mean_' + f.name)}")
    return eng.execute(f"SELECT {', '.join(parts)} FROM {relation} GROUP BY 1 ORDER BY 1", params).df()


def sample_features(eng: duckdb.DuckDBPyConnection, rows: ViewRows, start: datetime | None, end: datetime | None,
                    *, limit: int, seed: int) -> pd.DataFrame:
    """The view's feature values with event time in [start, end): a repeatable reservoir sample of at most
    ``limit`` rows (``seed``)."""
    cols = ", ".join(quote_ident(f) for f in rows.view.feature_names)
    where, params = _window(start, end)
    cond = f"WHERE {' AND '.join(where)}" if where else ""
    # USING SAMPLE applies before WHERE in its own SELECT: filter first, then sample.
    return eng.execute(f"SELECT * FROM (SELECT {cols} FROM {rows.relation} {cond}) USING SAMPLE "
                       f"reservoir({int(limit)} ROWS) REPEATABLE ({int(seed)})", params).df()


# --- source tables -----------------------------------------------------------------------------------------


def open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the DuckDB file ``path`` (a feature view's source); the caller closes it. Raises
    duckdb.Error when it cannot be opened."""
    return duckdb.connect(str(path), read_only=True)


def whole_table(con: duckdb.DuckDBPyConnection, table: str) -> pa.Table:
    """Every row of ``table`` as an Arrow table. Raises duckdb.Error (no such table, unreadable)."""
    return con.sql(f"SELECT * FROM {quote_ident(table)}").to_arrow_table()

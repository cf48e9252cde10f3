"""SQL for staged batches, their checks, ingest batches and validation reports.

A batch (a file or DataFrame read into an Arrow table with a 1-based ``__row``
column) is registered on the connection as ``_batch``. Every check then runs as
DuckDB SQL over it: one aggregate pass for the per-column counts, a GROUP BY for
duplicate request ids, a semi-join against the stored log, and the final
``INSERT ... SELECT`` with the same normalising expressions. Column names coming
from a user's file only ever appear quoted with ``quote_ident``; values (categories,
ranges, batch ids, times) are always bound parameters, never spliced into SQL text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pandas as pd
import pyarrow as pa

from mlops_core.entities import Anomaly, ModelInfo
from mlops_core.store.conditions import check_window, time_range
from mlops_core.store.logs import LogView
from mlops_core.store.models import quote_ident

STAGE = "_batch"
ROW = "__row"


# --- staging -------------------------------------------------------------------------------

def stage(con: duckdb.DuckDBPyConnection, *, table: pa.Table | None = None, parquet: str | None = None) -> None:
    """Make the batch visible as ``_batch`` with a 1-based ``__row``: a registered Arrow ``table``
    (which has ``__row``) or a temporary view over the ``parquet`` file; timestamps become UTC."""
    # Timestamps with a zone become naive UTC when cast to TIMESTAMP only under a UTC session zone.
    con.execute("SET TimeZone = 'UTC'")
    if parquet is not None:
        rel = con.read_parquet(parquet, file_row_number=True)
        rel.project(f"* EXCLUDE (file_row_number), file_row_number + 1 AS {ROW}").create_view(STAGE, replace=True)
    else:
        con.register(STAGE, table)


def unstage(con: duckdb.DuckDBPyConnection) -> None:
    """Forget ``_batch`` (a temporary name: nothing in the database file)."""
    for statement in (lambda: con.unregister(STAGE), lambda: con.execute(f"DROP VIEW IF EXISTS {STAGE}")):
        try:
            statement()
        except Exception:  # noqa: BLE001, S110 - not registered that way, or the connection failed already
            pass


def raw_kind(t: pa.DataType) -> str:
    """Classify an Arrow type: number | bool | string | timestamp | date | null | other."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t):
        return "string"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_null(t):
        return "null"
    return "other"


def _is_integer_type(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_integer(t)


@dataclass
class Column:
    """One column of the normalised batch: its SQL expression and, when values can fail, the failing test."""

    name: str            # column name in the normalised relation (the log's name)
    expr: str            # SQL over _batch giving the normalised value
    source: str | None   # the batch column it comes from (None: a default)
    bad: str | None = None   # SQL over _batch, TRUE where a present value cannot be converted
    what: str = ""       # what the values must be, for messages ("numbers", "timestamps", ...)
    raw_type: pa.DataType | None = None  # Arrow type of the source column
    check: str | None = None  # cheaper SQL for the checks where the value needs no conversion (default: expr)


def _double(r: str, kind: str, t: pa.DataType | None = None) -> tuple[str, str | None]:
    # NaN is a missing value here, as in pandas and in the training null rates.
    if kind == "bool" or (kind == "number" and t is not None and _is_integer_type(t)):
        return f"CAST({r} AS DOUBLE)", None
    if kind == "number":
        v = f"CAST({r} AS DOUBLE)"
        return f"CASE WHEN isnan({v}) THEN NULL ELSE {v} END", None
    if kind == "null":
        return "CAST(NULL AS DOUBLE)", None
    v = f"TRY_CAST({r} AS DOUBLE)"
    return f"CASE WHEN isnan({v}) THEN NULL ELSE {v} END", f"({r} IS NOT NULL AND TRY_CAST({r} AS DOUBLE) IS NULL)"


def _text(r: str, kind: str) -> str:
    if kind == "bool":  # the way pandas/str() spells booleans in the training categories
        return f"CASE WHEN {r} THEN 'True' WHEN NOT {r} THEN 'False' END"
    if kind == "string":
        return f"CAST({r} AS VARCHAR)"
    return f"CAST({r} AS VARCHAR)"


def _class_label(r: str, kind: str, t: pa.DataType) -> str:
    """Class labels as the registry stores them: integral numbers without '.0' (see training.prepare_target)."""
    if kind == "bool":
        return _text(r, kind)
    if kind == "number" and _is_integer_type(t):
        return f"CAST({r} AS VARCHAR)"
    d = f"TRY_CAST({r} AS DOUBLE)"
    integral = f"({d} = round({d}) AND abs({d}) < 1e15)"
    keep = f"CAST({r} AS VARCHAR)"
    if kind == "string":
        return (f"CASE WHEN list_contains($classes, {r}) THEN {r} "
                f"WHEN {integral} THEN CAST(CAST({d} AS BIGINT) AS VARCHAR) ELSE {r} END")
    return f"CASE WHEN {integral} THEN CAST(CAST({d} AS BIGINT) AS VARCHAR) ELSE {keep} END"


def _timestamp(r: str, kind: str) -> tuple[str, str | None]:
    if kind in ("timestamp", "date"):
        return f"CAST({r} AS TIMESTAMP)", None
    if kind == "string":
        v = f"CAST(TRY_CAST({r} AS TIMESTAMPTZ) AS TIMESTAMP)"
        return v, f"({r} IS NOT NULL AND {v} IS NULL)"
    if kind == "null":
        return "CAST(NULL AS TIMESTAMP)", None
    return f"TRY_CAST({r} AS TIMESTAMP)", f"({r} IS NOT NULL AND TRY_CAST({r} AS TIMESTAMP) IS NULL)"


def _integer(r: str, kind: str, t: pa.DataType) -> tuple[str, str | None]:
    # TRY_CAST throughout: the checks evaluate this expression on every row, including the rows its test refuses
    # (a version of 2**31 must be reported, not raise a conversion error).
    if kind == "number" and _is_integer_type(t):
        return f"TRY_CAST({r} AS INTEGER)", f"({r} IS NOT NULL AND TRY_CAST({r} AS INTEGER) IS NULL)"
    if kind == "null":
        return "CAST(NULL AS INTEGER)", None
    v = f"TRY_CAST({r} AS DOUBLE)"
    return (f"TRY_CAST({v} AS INTEGER)",
            f"({r} IS NOT NULL AND ({v} IS NULL OR {v} <> round({v}) OR abs({v}) > 2147483647))")


def prediction_columns(info: ModelInfo, types: dict[str, pa.DataType], *, ts_column: str,
                       default_version: int | None) -> list[Column]:
    """The normalising expressions that turn a prediction batch into the log's columns.

    ``types`` maps the batch's column names to Arrow types; every required column must be
    present (the caller checks). ``default_version`` fills a missing or empty ``version``.
    """
    cols: list[Column] = []
    q = quote_ident
    rid = q("request_id")
    cols.append(Column("request_id", f"CAST({rid} AS VARCHAR)", "request_id", raw_type=types["request_id"]))
    if "version" in types:
        e, bad = _integer(q("version"), raw_kind(types["version"]), types["version"])
        dv = "NULL" if default_version is None else str(int(default_version))
        cols.append(Column("version", f"coalesce({e}, CAST({dv} AS INTEGER))", "version", bad, "whole version numbers"))
    else:
        dv = "NULL" if default_version is None else str(int(default_version))
        cols.append(Column("version", f"CAST({dv} AS INTEGER)", None))
    if "variant" in types:
        cols.append(Column("variant", _text(q("variant"), raw_kind(types["variant"])), "variant"))
    else:
        cols.append(Column("variant", "CAST(NULL AS VARCHAR)", None))
    e, bad = _timestamp(q(ts_column), raw_kind(types[ts_column]))
    cols.append(Column("ts", e, ts_column, bad, "timestamps"))
    cols += feature_columns(info, types)
    cols += [typed_column(key.name, key.name, key.dtype, types[key.name]) if key.name in types else
             Column(key.name, f"CAST(NULL AS {key.sql_type})", None) for key in info.entity_keys]
    r, k = q("prediction"), raw_kind(types["prediction"])
    if info.task == "classification":
        cols.append(Column("prediction", _class_label(r, k, types["prediction"]), "prediction"))
    else:
        e, bad = _double(r, k)
        cols.append(Column("prediction", e, "prediction", bad, "numbers"))
    if "score" in types:
        k = raw_kind(types["score"])
        e, bad = _double(q("score"), k, types["score"])
        cols.append(Column("score", e, "score", bad, "numbers", check=q("score") if k == "number" else None))
    else:
        cols.append(Column("score", "CAST(NULL AS DOUBLE)", None))
    return cols


def label_columns(info: ModelInfo, types: dict[str, pa.DataType], *, label_column: str,
                  ts_column: str | None) -> list[Column]:
    """The normalising expressions that turn a label batch into ``request_id, label, label_ts``."""
    q = quote_ident
    cols = [Column("request_id", f"CAST({q('request_id')} AS VARCHAR)", "request_id", raw_type=types["request_id"])]
    r, k = q(label_column), raw_kind(types[label_column])
    if info.task == "classification":
        cols.append(Column("label", _class_label(r, k, types[label_column]), label_column))
    else:
        e, bad = _double(r, k)
        cols.append(Column("label", e, label_column, bad, "numbers"))
    if ts_column is not None:
        e, bad = _timestamp(q(ts_column), raw_kind(types[ts_column]))
        cols.append(Column("label_ts", e, ts_column, bad, "timestamps"))
    else:
        cols.append(Column("label_ts", "CAST(NULL AS TIMESTAMP)", None))
    return cols


@dataclass(frozen=True)
class RowTest:
    """A test of every row of the staged batch: ``bad`` (a present value that cannot be converted) or ``empty``
    (a required value missing), on the log column ``column`` that comes from the batch column ``source``."""

    kind: str  # bad | empty | out_of_bounds | nonfinite
    column: str
    source: str | None
    condition: str  # SQL over _batch, TRUE where the row fails

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.column}"


def row_tests(cols: list[Column], required_not_null: tuple[str, ...] = (), *, bounded: tuple[str, ...] = (),
              finite: tuple[str, ...] = ()) -> list[RowTest]:
    """The row tests of a normalised batch: unconvertible values of every column, empty values of required ones,
    times outside [``$time_lo``, ``$time_hi``] in the ``bounded`` columns, infinite numbers in the ``finite`` ones."""
    out = [RowTest("bad", c.name, c.source, c.bad) for c in cols if c.bad is not None]
    for c in cols:
        if c.source is None:
            continue
        if c.name in bounded:
            out.append(RowTest("out_of_bounds", c.name, c.source, f"(({c.expr}) < $time_lo OR ({c.expr}) > $time_hi)"))
        if c.name in finite:
            out.append(RowTest("nonfinite", c.name, c.source, f"isinf(CAST({c.check or c.expr} AS DOUBLE))"))
    for c in cols:
        if c.name in required_not_null and c.source is not None:
            r = quote_ident(c.source)
            cond = f"{r} IS NULL"
            if c.name == "request_id" and raw_kind(c.raw_type) == "string":
                cond = f"({r} IS NULL OR {r} = '')"
            out.append(RowTest("empty", c.name, c.source, cond))
    return out


def normalised(cols: list[Column], tests: list[RowTest] = ()) -> str:
    """The batch as a relation (subquery) with the log's column names, ``__row`` and one boolean per row test."""
    exprs = [f"{c.check or c.expr} AS {quote_ident(c.name)}" for c in cols]
    exprs += [f"({t.condition}) AS {quote_ident(t.key)}" for t in tests]
    return f"(SELECT {ROW}, {', '.join(exprs)} FROM {STAGE})"


#: What the values of each feature-store type must be, for messages.
_TYPE_WORDS = {"float": "numbers", "int": "whole numbers", "bool": "true/false values", "string": "text",
               "timestamp": "timestamps"}


def typed_column(name: str, source: str, dtype: str, raw_type: pa.DataType) -> Column:
    """The normalising expression of the batch column ``source`` as the column ``name`` of a feature-store type
    (``float``, ``int``, ``bool``, ``string``, or ``timestamp`` for an event time), with its failing test."""
    r, k = quote_ident(source), raw_kind(raw_type)
    bad = None
    if dtype == "float":
        e, bad = _double(r, k, raw_type)
    elif dtype == "int":
        if k == "bool" or (k == "number" and _is_integer_type(raw_type)):
            e = f"CAST({r} AS BIGINT)"
        elif k == "null":
            e = "CAST(NULL AS BIGINT)"
        else:
            v = f"TRY_CAST({r} AS DOUBLE)"
            e = f"CAST({v} AS BIGINT)"
            bad = f"({r} IS NOT NULL AND ({v} IS NULL OR isnan({v}) OR {v} <> round({v}) OR abs({v}) > 9e18))"
    elif dtype == "bool":
        if k == "bool":
            e = r
        elif k == "null":
            e = "CAST(NULL AS BOOLEAN)"
        elif k == "number":
            e = f"CASE WHEN {r} = 1 THEN TRUE WHEN {r} = 0 THEN FALSE END"
            bad = f"({r} IS NOT NULL AND {r} NOT IN (0, 1))"
        else:
            e = f"TRY_CAST(lower(trim(CAST({r} AS VARCHAR))) AS BOOLEAN)"
            bad = f"({r} IS NOT NULL AND {e} IS NULL)"
    elif dtype == "timestamp":
        if k in ("number", "bool"):  # epoch numbers are ambiguous (seconds? milliseconds?): refuse them
            e, bad = "CAST(NULL AS TIMESTAMP)", f"({r} IS NOT NULL)"
        else:
            e, bad = _timestamp(r, k)
    else:
        e = _text(r, k)
    return Column(name, e, source, bad, _TYPE_WORDS.get(dtype, dtype), raw_type=raw_type)


def feature_columns(info: ModelInfo, types: dict[str, pa.DataType]) -> list[Column]:
    """Normalising expressions for the model's feature columns only."""
    cols = []
    for f in info.features:
        r, k = quote_ident(f.name), raw_kind(types[f.name])
        if f.kind == "numeric":
            e, bad = _double(r, k, types[f.name])
            # Numbers are checked as they are: no cast, so DuckDB can use Parquet statistics and
            # skip per-row work; NaN is found by the range pass (NaN is the largest DOUBLE).
            cols.append(Column(f.name, e, f.name, bad, "numbers", check=r if k == "number" else None))
        else:
            cols.append(Column(f.name, _text(r, k), f.name))
    return cols


# --- aggregate checks ----------------------------------------------------------------------

@dataclass(frozen=True)
class NumericCheck:
    """A numeric column to count: its training range [low, high] and the far bounds beyond it (None: no range)."""

    column: str
    low: float | None = None
    high: float | None = None
    far_low: float | None = None
    far_high: float | None = None


@dataclass(frozen=True)
class CategoricalCheck:
    """A categorical column to count, with the values it may take (None: any)."""

    column: str
    allowed: tuple[str, ...] | None = None


@dataclass
class BatchCounts:
    """What one aggregate pass over a normalised batch (or a log window) counted."""

    rows: int
    failed: dict[str, int] = field(default_factory=dict)  # RowTest.key -> rows failing it
    nonnull: dict[str, int] = field(default_factory=dict)
    minimum: dict[str, float | None] = field(default_factory=dict)
    maximum: dict[str, float | None] = field(default_factory=dict)
    unseen: dict[str, int] = field(default_factory=dict)  # categorical: values outside ``allowed``
    ids_nonnull: int | None = None
    ids_distinct: int | None = None  # distinct 64-bit hashes of the request ids
    version_min: int | None = None
    version_max: int | None = None
    version_nulls: int = 0
    positives: int | None = None  # rows whose ``positive`` column holds the positive class


@dataclass
class RangeCounts:
    """A numeric column's values outside its training range (a second pass over suspect columns only)."""

    outside: int
    far: int
    nan: int
    minimum: float | None
    maximum: float | None


_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def _bind(sql: str, params: dict | None) -> dict:
    """Only the named parameters that ``sql`` uses (DuckDB refuses unused ones)."""
    if not params:
        return {}
    used = set(_PARAM.findall(sql))
    return {k: v for k, v in params.items() if k in used}


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None):
    return con.execute(sql, _bind(sql, params))


def _aggregate(con: duckdb.DuckDBPyConnection, relation: str, aggregates: list[str], params: dict | None) -> tuple:
    """Evaluate the aggregate expressions in one pass over ``relation`` (aliased ``b``); return their values."""
    sql = "SELECT " + ", ".join(f"{a} AS a{i}" for i, a in enumerate(aggregates)) + f" FROM {relation} AS b"
    return _run(con, sql, params).fetchone()


def batch_counts(con: duckdb.DuckDBPyConnection, relation: str, *, tests: list[RowTest] = (),
                 numeric: list[NumericCheck] = (), categorical: list[CategoricalCheck] = (), ids: bool = False,
                 versions: bool = False, positive: tuple[str, str] | None = None,
                 params: dict | None = None) -> BatchCounts:
    """One aggregate pass: rows, failing rows per test, non-null counts, min and max per numeric column,
    values outside the allowed ones per categorical column, and (``ids``) the non-null and distinct-hash
    counts of the request ids, (``versions``) the version range, (``positive``: a column and the positive
    class) the rows holding that class. Values outside a numeric range are
    counted by ``range_counts`` only when min/max show there are any, which keeps the common clean
    batch to one cheap pass. Counting distinct hashes is about twice as fast as distinct strings; when
    the two id counts differ (a duplicate, or a hash collision) ``duplicate_ids`` finds the exact rows.
    """
    p = dict(params or {})
    aggs: list[str] = ["count(*)"]
    slots: list[tuple[str, str]] = [("rows", "")]

    def add(expr: str, what: str, key: str) -> None:
        aggs.append(expr)
        slots.append((what, key))

    for t in tests:
        add(f"count(*) FILTER (WHERE b.{quote_ident(t.key)})", "failed", t.key)
    for check in numeric:
        c = f"b.{quote_ident(check.column)}"
        add(f"count({c})", "nonnull", check.column)
        add(f"min({c})", "minimum", check.column)
        add(f"max({c})", "maximum", check.column)
    for i, check in enumerate(categorical):
        c = f"b.{quote_ident(check.column)}"
        add(f"count({c})", "nonnull", check.column)
        if check.allowed is not None:
            p[f"cats{i}"] = list(check.allowed)
            add(f"count(*) FILTER (WHERE {c} NOT IN (SELECT unnest($cats{i})))", "unseen", check.column)
    if ids:
        add("count(b.request_id)", "ids_nonnull", "")
        add("count(DISTINCT hash(b.request_id))", "ids_distinct", "")
    if versions:
        add("min(b.version)", "version_min", "")
        add("max(b.version)", "version_max", "")
        add("count(*) FILTER (WHERE b.version IS NULL)", "version_nulls", "")
    if positive is not None:
        p["positive_class"] = positive[1]
        add(f"count(*) FILTER (WHERE b.{quote_ident(positive[0])} = $positive_class)", "positives", "")
    values = _aggregate(con, relation, aggs, p)
    out = BatchCounts(rows=int(values[0]))
    for (what, key), value in zip(slots[1:], values[1:], strict=False):
        if key:
            getattr(out, what)[key] = value
        else:
            setattr(out, what, value)
    return out


def range_counts(con: duckdb.DuckDBPyConnection, relation: str, numeric: list[NumericCheck],
                 params: dict | None = None) -> dict[str, RangeCounts]:
    """Per numeric column (each with a range): NaN values, values outside [low, high] and outside the far
    bounds, and the observed min and max without NaN."""
    p = dict(params or {})
    aggs = []
    for i, check in enumerate(numeric):
        c = f"b.{quote_ident(check.column)}"
        p[f"lo{i}"], p[f"hi{i}"] = float(check.low), float(check.high)
        p[f"flo{i}"], p[f"fhi{i}"] = float(check.far_low), float(check.far_high)
        # NaN sorts above every number in DuckDB; keep it out of the range counts.
        aggs += [f"count(*) FILTER (WHERE NOT isnan({c}) AND ({c} < $lo{i} OR {c} > $hi{i}))",
                 f"count(*) FILTER (WHERE NOT isnan({c}) AND ({c} < $flo{i} OR {c} > $fhi{i}))",
                 f"count(*) FILTER (WHERE isnan({c}))",
                 f"min({c}) FILTER (WHERE NOT isnan({c}))",
                 f"max({c}) FILTER (WHERE NOT isnan({c}))"]
    if not aggs:
        return {}
    values = _aggregate(con, relation, aggs, p)
    return {check.column: RangeCounts(int(values[5 * i]), int(values[5 * i + 1]), int(values[5 * i + 2]),
                                      values[5 * i + 3], values[5 * i + 4]) for i, check in enumerate(numeric)}


def time_span(con: duckdb.DuckDBPyConnection, relation: str, params: dict | None = None,
              column: str = "ts") -> tuple[datetime | None, datetime | None]:
    """(earliest, latest) of a time column of a staged, normalised batch."""
    row = _run(con, f"SELECT min(b.{column}), max(b.{column}) FROM {relation} b", params).fetchone()
    return (row[0], row[1]) if row else (None, None)


def row_count(con: duckdb.DuckDBPyConnection, relation: str, params: dict | None = None, where: str = "TRUE") -> int:
    """Rows of ``relation`` (aliased ``b``) where the SQL condition ``where`` holds."""
    return int(_aggregate(con, relation, [f"count(*) FILTER (WHERE {where})"], params)[0])


def unseen_values(con, relation: str, column: str, categories: list[str], params: dict | None = None,
                  limit: int = 5) -> list[tuple[str, int]]:
    """The most frequent values of ``column`` not in ``categories``: [(value, count)]."""
    c = f"b.{quote_ident(column)}"
    p = dict(params or {})
    p["_allowed"] = list(categories)
    sql = (f"SELECT {c} AS v, count(*) AS n FROM {relation} AS b WHERE {c} IS NOT NULL AND NOT list_contains($_allowed, {c}) "
           f"GROUP BY {c} ORDER BY n DESC, v LIMIT {int(limit)}")
    return [(v, int(n)) for v, n in _run(con, sql, p).fetchall()]


# --- row-level details (only run when a check failed) --------------------------------------

def offending_rows(con: duckdb.DuckDBPyConnection, condition: str, source: str | None, params: dict | None = None,
                   limit: int = 3) -> list[tuple[int, object]]:
    """The first rows of ``_batch`` where ``condition`` holds: [(row, value of ``source`` as text)]."""
    value = f"CAST({quote_ident(source)} AS VARCHAR)" if source else "NULL"
    sql = f"SELECT {ROW}, {value} FROM {STAGE} WHERE {condition} ORDER BY {ROW} LIMIT {int(limit)}"
    return [(int(r), v) for r, v in _run(con, sql, params).fetchall()]


def duplicate_ids(con: duckdb.DuckDBPyConnection, relation: str, params: dict | None = None,
                  limit: int = 3) -> tuple[int, list[tuple[str, list[int]]]]:
    """Request ids that occur more than once in the batch: (number of such ids, first examples with their rows)."""
    base = (f"SELECT request_id, count(*) AS n, min({ROW}) AS first FROM {relation} AS b "
            "WHERE request_id IS NOT NULL GROUP BY request_id HAVING count(*) > 1")
    total = int(_run(con, f"SELECT count(*) FROM ({base})", params).fetchone()[0])
    if not total:
        return 0, []
    ids = [r[0] for r in _run(con, f"SELECT request_id FROM ({base}) ORDER BY first LIMIT {int(limit)}", params).fetchall()]
    rows = _run(
        con, f"SELECT request_id, list({ROW} ORDER BY {ROW}) FROM {relation} AS b WHERE list_contains($ids, request_id) "
        "GROUP BY request_id", {**(params or {}), "ids": ids}
    ).fetchall()
    by_id = {r: list(v)[:5] for r, v in rows}
    return total, [(i, by_id[i]) for i in ids]


def ids_in(con: duckdb.DuckDBPyConnection, relation: str, stored: str, *, present: bool, params: dict | None = None,
           limit: int = 3) -> tuple[int, list[tuple[int, str]]]:
    """Batch rows whose request id is (``present=True``) or is not (``False``) in the relation ``stored``
    (e.g. a log's files): (count, first rows)."""
    neg = "" if present else "NOT "
    where = f"{neg}EXISTS (SELECT 1 FROM {stored} AS t WHERE t.request_id = b.request_id)"
    total = int(_run(con, f"SELECT count(*) FROM {relation} AS b WHERE {where}", params).fetchone()[0])
    if not total:
        return 0, []
    rows = _run(con, f"SELECT {ROW}, request_id FROM {relation} AS b WHERE {where} ORDER BY {ROW} LIMIT {int(limit)}",
                params).fetchall()
    return total, [(int(r), i) for r, i in rows]


def label_conflicts(con: duckdb.DuckDBPyConnection, relation: str, labels: str, params: dict | None = None,
                    limit: int = 3) -> tuple[int, int, list[tuple[int, str, object, object]]]:
    """Compare a label batch with the stored labels (the relation ``labels``).

    Returns (rows whose request id already has the same label, rows whose stored label
    differs, first differing rows as (row, request_id, stored, new)).
    """
    t = labels
    same = int(_run(
        con, f"SELECT count(*) FROM {relation} AS b WHERE EXISTS (SELECT 1 FROM {t} AS l WHERE l.request_id = b.request_id "
        "AND l.label IS NOT DISTINCT FROM b.label)", params).fetchone()[0])
    cond = (f"EXISTS (SELECT 1 FROM {t} AS l WHERE l.request_id = b.request_id AND l.label IS DISTINCT FROM b.label)")
    differ = int(_run(con, f"SELECT count(*) FROM {relation} AS b WHERE {cond}", params).fetchone()[0])
    examples = []
    if differ:
        examples = [(int(r), i, s, n) for r, i, s, n in _run(
            con, f"SELECT b.{ROW}, b.request_id, l.label, b.label FROM {relation} AS b JOIN {t} AS l USING (request_id) "
            f"WHERE l.label IS DISTINCT FROM b.label ORDER BY b.{ROW} LIMIT {int(limit)}", params).fetchall()]
    return same, differ, examples


def distinct_values(con: duckdb.DuckDBPyConnection, relation: str, column: str, params: dict | None = None) -> list:
    return [r[0] for r in _run(
        con, f"SELECT DISTINCT b.{quote_ident(column)} FROM {relation} AS b WHERE b.{quote_ident(column)} IS NOT NULL",
        params).fetchall()]


def known_versions(con: duckdb.DuckDBPyConnection, model: str) -> list[int]:
    return [int(r[0]) for r in con.execute("SELECT version FROM model_versions WHERE model = ? ORDER BY version", [model]).fetchall()]


def sample_frame(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str], n: int, params: dict | None = None,
                 seed: int = 0) -> pd.DataFrame:
    """At most ``n`` rows of ``columns`` (a repeatable reservoir sample when there are more)."""
    cols = ", ".join(f"b.{quote_ident(c)}" for c in columns)
    sql = f"SELECT {cols} FROM {relation} AS b USING SAMPLE reservoir({int(n)} ROWS) REPEATABLE ({int(seed)})"
    return _run(con, sql, params).df()


# --- the rows a batch appends ------------------------------------------------------------

def normalised_frame(con: duckdb.DuckDBPyConnection, cols: list[Column], params: dict | None = None) -> pd.DataFrame:
    """The staged batch's columns ``cols`` after their normalising expressions (text to numbers, ...), in batch
    order: the values ingest would write."""
    exprs = ", ".join(f"{c.expr} AS {quote_ident(c.name)}" for c in cols)
    return _run(con, f"SELECT {exprs} FROM {STAGE} ORDER BY {ROW}", params).df()


def prediction_rows(info: ModelInfo, cols: list[Column], batch_id: str) -> tuple[str, dict]:
    """(SELECT of the normalised prediction batch with its ``batch_id``, its parameters), for ``logs.write``."""
    exprs = ", ".join(f"{c.expr} AS {quote_ident(c.name)}" for c in cols)
    sql = f"SELECT {exprs}, $batch_id AS batch_id FROM {STAGE}"
    return sql, _bind(sql, {"batch_id": batch_id, "classes": list(info.classes)})


def label_rows(relation: str, labels: str, batch_id: str, now: datetime, params: dict | None = None) -> tuple[str, dict]:
    """(SELECT of the batch's labels whose request id has no stored label yet (arrival time defaulting to ``now``),
    its parameters), for ``logs.write``."""
    sql = (f"SELECT b.request_id, b.label, coalesce(b.label_ts, $now) AS label_ts, $batch_id AS batch_id "
           f"FROM {relation} AS b WHERE NOT EXISTS (SELECT 1 FROM {labels} AS l WHERE l.request_id = b.request_id)")
    p = dict(params or {})
    p.update(now=now, batch_id=batch_id)
    return sql, _bind(sql, p)


@dataclass
class IngestedBatch:
    """A batch stored earlier (found by its fingerprint)."""

    batch_id: str
    source: str | None
    rows: int
    rows_written: int
    ingested_at: datetime


def find_batch(con: duckdb.DuckDBPyConnection, model: str, kind: str, fingerprint: str) -> IngestedBatch | None:
    """The stored ingest batch of ``model`` and ``kind`` with this fingerprint, or None."""
    row = con.execute(
        "SELECT batch_id, source, rows, rows_written, ingested_at FROM ingest_batches "
        "WHERE model = ? AND kind = ? AND fingerprint = ? ORDER BY ingested_at LIMIT 1",
        [model, kind, fingerprint],
    ).fetchone()
    return IngestedBatch(*row) if row is not None else None


def insert_batch(con, *, batch_id: str, model: str, kind: str, source: str | None, fingerprint: str, rows: int,
                 rows_written: int, actor: str, at: datetime) -> None:
    con.execute("INSERT INTO ingest_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [batch_id, model, kind, source, fingerprint, rows, rows_written, actor, at])


def insert_report(con, *, model: str, batch_id: str | None, source: str | None, at: datetime, rows: int, status: str,
                  summary: str | None, skew: str | None, window_start: datetime | None = None,
                  window_end: datetime | None = None, anomalies: list[Anomaly] = (),
                  fingerprint: str | None = None) -> int:
    """Store a validation report and its anomalies; return the report id. A report of a file not ingested
    (``batch_id`` None) with a ``fingerprint`` replaces the earlier such reports of the same file. Call inside a
    transaction."""
    if batch_id is None and fingerprint is not None:
        old = [r[0] for r in con.execute("SELECT id FROM validation_reports WHERE model = ? AND batch_id IS NULL "
                                         "AND fingerprint = ?", [model, fingerprint]).fetchall()]
        if old:
            marks = ", ".join("?" for _ in old)
            con.execute(f"DELETE FROM validation_anomalies WHERE report_id IN ({marks})", old)
            con.execute(f"DELETE FROM validation_reports WHERE id IN ({marks})", old)
    report_id = int(con.execute(
        "INSERT INTO validation_reports (model, batch_id, source, checked_at, window_start, window_end, rows, status, "
        "summary, skew, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [model, batch_id, source, at, window_start, window_end, rows, status, summary, skew, fingerprint],
    ).fetchone()[0])
    if anomalies:
        con.executemany(
            "INSERT INTO validation_anomalies (report_id, feature, kind, severity, count, share, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [[report_id, a.feature, a.kind, a.severity, a.count, a.share, a.detail] for a in anomalies],
        )
    return report_id


# --- reading back ---------------------------------------------------------------------------

def _range(sql: str, params: list, column: str, start, end) -> tuple[str, list]:
    cond, more = time_range(column, start, end)
    return sql + cond, params + more


def reports_frame(con, model: str, start=None, end=None) -> pd.DataFrame:
    """Validation reports of ``model`` about [start, end) (window start, else check time), oldest first,
    with their anomaly counts."""
    sql, params = _range(
        "SELECT r.id AS report_id, r.checked_at, r.batch_id, r.source, r.window_start, r.window_end, r.rows, r.status, "
        "r.summary, r.skew, (SELECT count(*) FROM validation_anomalies a WHERE a.report_id = r.id) AS anomalies "
        "FROM validation_reports r WHERE r.model = ?", [model], "coalesce(r.window_start, r.checked_at)", start, end)
    return con.execute(sql + " ORDER BY coalesce(r.window_start, r.checked_at), r.id", params).df()


def anomalies_frame(con, model: str, start=None, end=None) -> pd.DataFrame:
    """Anomalies of the reports of ``model`` about [start, end): report_id, at (window start, else check time),
    checked_at, batch_id, source, feature, kind, severity, count, share, detail."""
    at = "coalesce(r.window_start, r.checked_at)"
    sql, params = _range(
        f"SELECT a.report_id, {at} AS at, r.checked_at, r.batch_id, r.source, a.feature, a.kind, a.severity, a.count, "
        "a.share, a.detail FROM validation_anomalies a JOIN validation_reports r ON r.id = a.report_id WHERE r.model = ?",
        [model], at, start, end)
    return con.execute(sql + f" ORDER BY {at}, a.report_id, a.feature, a.kind", params).df()


def null_rates_frame(con, log: LogView, window: str, start=None, end=None) -> pd.DataFrame:
    """Null rate per window and feature of the model's log: window_start, feature, rows, null_rate."""
    check_window(window)
    parts = []
    for f in log.info.features:
        c = quote_ident(f.name)
        isnull = f"{c} IS NULL OR isnan({c})" if f.kind == "numeric" else f"{c} IS NULL"
        parts.append(f"sum(CASE WHEN {isnull} THEN 1 ELSE 0 END) / count(*) AS {quote_ident('n_' + f.name)}")
    sql = (f"SELECT date_trunc('{window}', ts) AS window_start, count(*) AS rows, {', '.join(parts)} "
           f"FROM {log.predictions} WHERE 1=1")
    sql, params = _range(sql, [], "ts", start, end)
    wide = con.execute(sql + " GROUP BY 1 ORDER BY 1", params).df()
    if wide.empty:
        return pd.DataFrame(columns=["window_start", "feature", "rows", "null_rate"])
    long = wide.melt(id_vars=["window_start", "rows"], var_name="feature", value_name="null_rate")
    long["feature"] = long["feature"].str.slice(2)
    long["null_rate"] = long["null_rate"].astype(float)
    return long[["window_start", "feature", "rows", "null_rate"]].sort_values(["window_start", "feature"]).reset_index(drop=True)


def window_relation(log: LogView) -> str:
    """The model's log between ``$start`` (inclusive) and ``$end`` (exclusive), as a relation."""
    return f"(SELECT * FROM {log.predictions} WHERE ts >= $start AND ts < $end)"

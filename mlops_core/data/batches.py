"""Batches of predictions or labels: reading them, and checking them against the model's schema.

Two kinds of finding, treated differently on purpose:

**Structural problems** make a batch unusable, so ingest refuses it whole and writes
nothing (``BatchRejectedError``, CLI exit 2): unreadable or empty file, a missing
``request_id``/``timestamp``/``prediction``/feature column, values of the wrong type
(text in a numeric feature, an unparseable timestamp or version), empty request ids,
timestamps or predictions (and label values; a label file's optional ``timestamp``
column, when present, must be filled), duplicate request ids, a ``version`` the model does not have, and for
ingest only: request ids already stored (predictions) or never logged (labels), a
second, different label for a request id. Messages name the column, the number of
offending rows and the first of them (rows count from 1 at the first data row; in a
CSV file that is line ``row + 1``).

**Content anomalies** are production data: they are stored exactly as given and
flagged in a validation report, because refusing them would lose the evidence
monitoring exists to see:

==================  ========  ===============================================================
kind                severity  rule (defaults are module constants)
==================  ========  ===============================================================
out_of_range        warning   values outside the training [min, max]; flagged when their share
                              of non-null values exceeds ``OUT_OF_RANGE_SHARE`` (1%) with at least
                              ``OUT_OF_RANGE_MIN_COUNT`` (3) such values, or when any value
                              lies more than ``FAR_FRACTION`` (25%) of the training span beyond
                              it (and always for +-inf). A fresh sample of the training
                              distribution exceeds its own min/max in about 2/(n+1) of rows, so
                              the plain min/max test would cry wolf on every clean batch.
                              Scores of a binary classifier must lie in [0, 1].
unseen_category     warning   any non-null value not among the training categories (or, for a
                              classifier's prediction/label, its classes); detail lists the most
                              frequent ones with their counts; share = unseen / rows
null_rate_jump      warning   null rate > training null rate + ``NULL_RATE_MARGIN`` (0.10) and
                              > ``NULL_RATE_FACTOR`` (2) x the training null rate, with at least
                              3 nulls (one empty cell in a 2-row batch is not a trend)
new_column          info      a column that is not part of the model (ignored, not stored)
==================  ========  ===============================================================

NaN in a numeric feature counts as a missing value (as in pandas and the training null
rates). Every check runs as DuckDB SQL over the staged batch (``store.validation``).
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from mlops_core.clock import utcnow
from mlops_core.config import timestamp_bounds
from mlops_core.entities import TARGET, Anomaly, ModelInfo
from mlops_core.errors import BatchRejectedError, InvalidInputError, NotFoundError
from mlops_core.store import logs
from mlops_core.store import models as mstore
from mlops_core.store import references as rstore
from mlops_core.store import validation as vstore
from mlops_core.store.logs import LogView
from mlops_core.store.validation import BatchCounts, CategoricalCheck, Column, NumericCheck, RowTest

OUT_OF_RANGE_SHARE = 0.01
OUT_OF_RANGE_MIN_COUNT = 3
FAR_FRACTION = 0.25
NULL_RATE_MARGIN = 0.10
NULL_RATE_FACTOR = 2.0
#: How many offending rows a message quotes.
SHOW_ROWS = 3
#: Null markers of CSV files besides the empty cell (as pandas reads them).
CSV_NULLS = ["", "NA", "N/A", "NaN", "nan", "NULL", "null"]


@dataclass
class Problem:
    """A structural problem: the batch cannot be ingested as it is."""

    kind: str  # missing_column | wrong_type | empty_value | duplicate_id | duplicate_of_stored | unknown_request_id | unknown_version | label_conflict
    column: str | None
    count: int
    message: str

    def as_anomaly(self) -> Anomaly:
        return Anomaly(kind=self.kind, severity="critical", detail=self.message, feature=self.column, count=self.count)


@dataclass(frozen=True)
class Against:
    """What a batch is checked against: the model, its versions and production version, and its log as it is
    (read from the metadata before the checks run on the log engine)."""

    log: LogView
    versions: tuple[int, ...]
    production: int | None
    target_range: tuple[float, float] | None = None  # regression: the training target's [min, max]

    @property
    def info(self) -> ModelInfo:
        return self.log.info


def against(con, root, info: ModelInfo, kind: str = "predictions") -> Against:
    """Read what a batch of ``info`` is checked against, on a metadata visit ``con``; ``root``: the log folder.
    ``kind``: the batch's kind; a ``shadow`` batch's request ids are checked against the shadow rows."""
    kinds = ("shadow",) if kind == "shadow" else ("predictions",)
    production = mstore.current_alias(con, info.name)
    target_range = None
    if info.task == "regression" and production is not None:
        try:
            target_range = rstore.feature_range(con, rstore.latest_training_reference_id(con, info.name, production),
                                                TARGET)
        except NotFoundError:
            target_range = None
    return Against(logs.view(con, root, info, kinds=kinds), tuple(vstore.known_versions(con, info.name)),
                   production, target_range)


@dataclass
class ContentPlan:
    """The content checks of a batch's columns: numeric ranges, allowed categories, training null rates."""

    numeric: list[NumericCheck] = field(default_factory=list)
    categorical: list[CategoricalCheck] = field(default_factory=list)
    null_rates: dict[str, float] = field(default_factory=dict)


@dataclass
class BatchCheck:
    """The result of checking a staged batch (see ``check_predictions`` / ``check_labels``)."""

    rows: int
    problems: list[Problem]
    anomalies: list[Anomaly]
    columns: list[Column] = field(default_factory=list)  # the normalised batch's columns
    relation: str = ""
    params: dict = field(default_factory=dict)
    null_rates: dict[str, float] = field(default_factory=dict)  # per feature present (NaN counts as missing)
    positive_rate: float | None = None  # binary classifier: share of predictions (labels) of the positive class


# --- reading a batch -----------------------------------------------------------------------

@dataclass
class Batch:
    """A batch read for checking: an Arrow table (CSV, DataFrame) or a Parquet file DuckDB scans itself."""

    name: str
    types: dict[str, pa.DataType]  # column -> Arrow type, in file order
    num_rows: int
    table: pa.Table | None = None  # with the 1-based ``__row`` column
    parquet: str | None = None

    def stage(self, con) -> None:
        vstore.stage(con, table=self.table, parquet=self.parquet)


def read_batch(source, *, what: str = "batch") -> Batch:
    """Read a CSV/Parquet path, a DataFrame or an Arrow table for checking.

    CSV columns are read as text (values stay exactly as written; conversion and its
    errors happen in the checks). A Parquet file is only opened for its schema here:
    DuckDB scans it in the checks and the insert, which lets it write the new rows
    straight into the database file. Raises BatchRejectedError for a missing, empty or
    unreadable file and for a batch without rows.
    """
    if isinstance(source, pd.DataFrame):
        table, name = _from_frame(source), "DataFrame"
    elif isinstance(source, pa.Table):
        table, name = source, "Arrow table"
    else:
        path = Path(os.fspath(source))
        name = os.fspath(source)
        read = _from_file(path, what)
        if isinstance(read, Batch):
            return read
        table = read
    _check_names(table.column_names, name, what)
    if table.num_rows == 0:
        raise BatchRejectedError(f"The {what} {name} has no rows; nothing was written.", source=name)
    rows = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
    table = table.append_column(vstore.ROW, rows)
    return Batch(name, {n: t for n, t in zip(table.column_names, table.schema.types, strict=False) if n != vstore.ROW},
                 table.num_rows, table=table)


def _check_names(names: list[str], name: str, what: str) -> None:
    if vstore.ROW in names:
        raise BatchRejectedError(f"The {what} {name} has a column named {vstore.ROW!r}, which is reserved; rename it.",
                                 source=name)
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise BatchRejectedError(f"The {what} {name} has the column(s) {', '.join(map(repr, dupes))} more than once.",
                                 source=name, columns=dupes)


def _from_frame(df: pd.DataFrame) -> pa.Table:
    df = df.reset_index(drop=True)
    df.columns = [str(c) for c in df.columns]
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        # Mixed object columns (numbers and text): hand them over as text, the checks decide.
        fixed = df.copy()
        for c in fixed.columns:
            if fixed[c].dtype == object:
                col = fixed[c]
                fixed[c] = col.where(col.isna(), col.astype(str))
        return pa.Table.from_pandas(fixed, preserve_index=False)


def _from_file(path: Path, what: str) -> pa.Table | Batch:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from mlops_core.data.files import file_format

    if not path.exists():
        raise BatchRejectedError(f"The {what} {path} does not exist.", path=str(path))
    if path.is_dir():
        raise BatchRejectedError(f"The {what} {path} is a folder; give a .csv or .parquet file.", path=str(path))
    try:
        fmt = file_format(path)
    except InvalidInputError as exc:
        raise BatchRejectedError(str(exc), path=str(path)) from exc
    if path.stat().st_size == 0:
        raise BatchRejectedError(f"The {what} {path} is empty (0 bytes); nothing was written.", path=str(path))
    try:
        if fmt == "parquet":
            meta = pq.read_metadata(path)
            schema = meta.schema.to_arrow_schema()
            _check_names(schema.names, str(path), what)
            if meta.num_rows == 0:
                raise BatchRejectedError(f"The {what} {path} has no rows; nothing was written.", path=str(path))
            return Batch(str(path), dict(zip(schema.names, schema.types, strict=False)), meta.num_rows, parquet=str(path))
        with open(path, newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(io.StringIO(fh.readline())), [])
        if not header or all(not h.strip() for h in header):
            raise BatchRejectedError(f"The {what} {path} has no header line.", path=str(path))
        return pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                 strings_can_be_null=True, null_values=CSV_NULLS),
        )
    except BatchRejectedError:
        raise
    except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as exc:
        raise BatchRejectedError(f"Cannot read the {what} {path} as {fmt.upper()}: {reader_error(exc)}",
                                 path=str(path)) from exc


_ROW_ECHO = re.compile(r"^(.*?(?:columns, got \d+|row \d+|line \d+)):.*$", re.DOTALL)


def reader_error(exc: BaseException) -> str:
    """The reader's complaint without the offending line's text.

    The CSV reader quotes the line it could not parse; that line may come from a file the user did not mean
    to hand over (a link to a system file), so only the position and the kind of fault are repeated.
    """
    text = str(exc).strip()
    m = _ROW_ECHO.match(text)
    if m:
        return m.group(1) + " (the line's content is not repeated)"
    return text if len(text) <= 200 else text[:200] + "…"


def fingerprint(source, model: str, kind: str) -> str:
    """The batch's fingerprint: sha256 over model, kind and the file's bytes (a DataFrame: its row hashes).

    Hashing the bytes as read is cheap (hashlib releases the GIL, so ingest runs it next
    to the checks) and exact; the same rows in another file format are a different batch
    and their request ids are then refused as already stored.
    """
    h = hashlib.sha256(f"{model}|{kind}|".encode())
    if isinstance(source, pd.DataFrame):
        h.update(repr([(str(c), str(t)) for c, t in source.dtypes.items()]).encode())
        h.update(pd.util.hash_pandas_object(source, index=False).to_numpy().tobytes())
    elif isinstance(source, pa.Table):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, source.schema) as w:
            w.write_table(source)
        h.update(sink.getvalue())
    else:
        with open(os.fspath(source), "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


# --- messages --------------------------------------------------------------------------------

def _rows_text(rows: list[int], total: int) -> str:
    word = "row" if len(rows) == 1 else "rows"
    return f"first at {word} {', '.join(map(str, rows))}" if total > 1 else f"at row {rows[0]}"


#: At most this many characters of a value are quoted in a message (a huge cell is not echoed whole).
QUOTE_CHARS = 60


def quote(value) -> str:
    """A value as a message quotes it: repr of its text, cut to ``QUOTE_CHARS`` characters."""
    text = str(value)
    if len(text) > QUOTE_CHARS:
        return repr(text[:QUOTE_CHARS]) + f"… ({len(text):,} characters)"
    return repr(text)


def _values_text(values) -> str:
    return ", ".join("''" if v is None else quote(v) for v in values)


def percent(share: float) -> str:
    return f"{share * 100:.2f}%" if share < 0.001 else f"{share * 100:.1f}%"


def rejection_message(source: str | None, problems: list[Problem]) -> str:
    head = f"Batch {source} refused, nothing was written:" if source else "Batch refused, nothing was written:"
    return "\n".join([head] + [f"  - {p.message}" for p in problems])


# --- structural checks -----------------------------------------------------------------------

def missing_columns(present: set[str], required: list[str], what: str) -> Problem | None:
    """A problem naming the required columns ``present`` lacks, or None."""
    missing = [c for c in required if c not in present]
    if not missing:
        return None
    msg = (f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}: a {what} needs "
           f"{', '.join(required)}. The file has: {', '.join(sorted(present)) or 'no columns'}.")
    return Problem("missing_column", missing[0], len(missing), msg)


def _new_columns(names: list[str]) -> list[Anomaly]:
    return [Anomaly(kind="new_column", severity="info", feature=n,
                    detail=f"column {quote(n)} is not part of the model; it was ignored") for n in names]


def failed_tests(con, tests: list[RowTest], counts: BatchCounts, cols: list[Column], params) -> list[Problem]:
    """A problem per row test that some rows fail, quoting the first of them."""
    out = []
    what = {c.name: c.what for c in cols}
    for t in tests:
        n = int(counts.failed.get(t.key) or 0)
        if not n:
            continue
        examples = vstore.offending_rows(con, t.condition, t.source, params, SHOW_ROWS)
        rows = [r for r, _ in examples]
        if t.kind == "bad":
            msg = (f"column {t.source!r}: {n} value{'s are' if n > 1 else ' is'} not {what[t.column]}, "
                   f"{_rows_text(rows, n)}: {_values_text(v for _, v in examples)}")
            out.append(Problem("wrong_type", t.source, n, msg))
        elif t.kind == "out_of_bounds":
            lo, hi = params["time_lo"], params["time_hi"]
            msg = (f"column {t.source!r}: {n} time{'s are' if n > 1 else ' is'} outside {lo:%Y-%m-%d} .. "
                   f"{hi:%Y-%m-%d %H:%M} UTC, {_rows_text(rows, n)}: {_values_text(v for _, v in examples)}. "
                   "Fix the clock of the system that logged them (the accepted range is set by MLOPS_MIN_TIMESTAMP "
                   "and MLOPS_MAX_FUTURE_HOURS)")
            out.append(Problem("time_out_of_bounds", t.source, n, msg))
        elif t.kind == "nonfinite":
            msg = (f"column {t.source!r}: {n} value{'s are' if n > 1 else ' is'} infinite, {_rows_text(rows, n)}: "
                   f"{_values_text(v for _, v in examples)}; give finite numbers (or leave the cell empty where "
                   "that is allowed)")
            out.append(Problem("non_finite", t.source, n, msg))
        else:
            msg = f"column {t.source!r}: {n} empty value{'s' if n > 1 else ''}, {_rows_text(rows, n)}; every row needs one"
            out.append(Problem("empty_value", t.source, n, msg))
    return out


def _duplicate_problem(con, relation, params, counts: BatchCounts) -> Problem | None:
    if counts.ids_distinct == counts.ids_nonnull:
        return None
    total, examples = vstore.duplicate_ids(con, relation, params, SHOW_ROWS)
    if not total:
        return None
    shown = "; ".join(f"{quote(rid)} at rows {', '.join(map(str, rows))}" for rid, rows in examples)
    return Problem("duplicate_id", "request_id", total,
                   f"column 'request_id': {total} request id{'s occur' if total > 1 else ' occurs'} more than once "
                   f"in the batch: {shown}")


def _version_problems(con, info: ModelInfo, known: tuple[int, ...], relation, params, default_version,
                      has_column) -> list[Problem]:
    versions = vstore.distinct_values(con, relation, "version", params)
    out = []
    unknown = sorted(v for v in versions if v not in known)
    if unknown:
        out.append(Problem("unknown_version", "version", len(unknown),
                           f"column 'version': model {info.name!r} has no version {', '.join(map(str, unknown))} "
                           f"(versions: {', '.join(map(str, known)) or 'none'})"))
    if default_version is None:
        n_null = vstore.row_count(con, relation, params, "b.version IS NULL")
        if n_null:
            where = "rows without a 'version'" if has_column else "the batch has no 'version' column"
            out.append(Problem("unknown_version", "version", n_null,
                               f"{where} and model {info.name!r} has no production version to assume; "
                               "give the version that made each prediction"))
    return out


# --- content checks --------------------------------------------------------------------------

def _numeric_check(name: str, lo: float, hi: float) -> NumericCheck:
    span = hi - lo
    margin = FAR_FRACTION * (span if span > 0 else max(abs(lo), abs(hi), 1.0))
    return NumericCheck(name, lo, hi, lo - margin, hi + margin)


def content_plan(info: ModelInfo, present: set[str], outputs: str | None,
                 target_range: tuple[float, float] | None = None) -> ContentPlan:
    """The content checks of the columns in ``present``.

    ``outputs``: "predictions" also checks prediction classes and scores (and a regression model's predictions
    against the training target's range ``target_range``), "labels" the label classes (or range).
    """
    plan = ContentPlan()
    for f in info.features:
        if f.name not in present:
            continue
        plan.null_rates[f.name] = f.null_rate or 0.0
        if f.kind == "numeric":
            plan.numeric.append(_numeric_check(f.name, float(f.min), float(f.max)) if f.min is not None
                                and f.max is not None else NumericCheck(f.name))
        else:
            plan.categorical.append(CategoricalCheck(f.name, tuple(f.categories) if f.categories else None))
    if outputs == "predictions":
        if info.task == "classification" and info.classes:
            plan.categorical.append(CategoricalCheck("prediction", tuple(info.classes)))
        if info.positive_class is not None and "score" in present:
            plan.numeric.append(NumericCheck("score", 0.0, 1.0, 0.0, 1.0))
        if info.task == "regression" and target_range is not None:
            plan.numeric.append(_numeric_check("prediction", *target_range))
    elif outputs == "labels":
        if info.task == "classification" and info.classes:
            plan.categorical.append(CategoricalCheck("label", tuple(info.classes)))
        elif info.task == "regression" and target_range is not None:
            plan.numeric.append(_numeric_check("label", *target_range))
    return plan


def content_anomalies(con, relation: str, params: dict, counts: BatchCounts, plan: ContentPlan) -> list[Anomaly]:
    """Out-of-range values, unseen categories and null-rate jumps, from one pass's counts (and a second pass
    over the numeric columns whose min or max leaves the training range)."""
    return content_findings(con, relation, params, counts, plan)[0]


def content_findings(con, relation: str, params: dict, counts: BatchCounts,
                     plan: ContentPlan) -> tuple[list[Anomaly], dict[str, float]]:
    """``content_anomalies`` and the null rate of every feature of ``plan`` (0.0 for an empty batch)."""
    out: list[Anomaly] = []
    rates: dict[str, float] = {}
    n = counts.rows
    # NaN is the largest DOUBLE in DuckDB, so a NaN also makes its column a suspect (and is counted there).
    suspect = [c for c in plan.numeric if c.low is not None and counts.maximum.get(c.column) is not None
               and (counts.minimum[c.column] < c.low or not counts.maximum[c.column] <= c.high)]
    ranges = vstore.range_counts(con, relation, suspect, params) if suspect else {}
    for check in suspect:
        r = ranges[check.column]
        present_n = int(counts.nonnull.get(check.column) or 0) - r.nan
        if not present_n:
            continue
        share = r.outside / present_n
        if r.far or (share > OUT_OF_RANGE_SHARE and r.outside >= OUT_OF_RANGE_MIN_COUNT):
            detail = (f"{r.outside} value{'s' if r.outside != 1 else ''} ({percent(share)}) outside the training range "
                      f"[{check.low:g}, {check.high:g}]; observed min {r.minimum:g}, max {r.maximum:g}")
            out.append(Anomaly(kind="out_of_range", severity="warning", detail=detail, feature=check.column,
                               count=r.outside, share=share))
    for check in plan.categorical:
        unseen = int(counts.unseen.get(check.column) or 0)
        if check.allowed is None or not unseen:
            continue
        top = vstore.unseen_values(con, relation, check.column, list(check.allowed), params, limit=5)
        shown = ", ".join(f"{quote(v)} ({c})" for v, c in top)
        share = unseen / n if n else 0.0
        known = ", ".join(quote(k) if len(str(k)) > QUOTE_CHARS else str(k) for k in check.allowed[:12])
        known += ", ..." if len(check.allowed) > 12 else ""
        out.append(Anomaly(kind="unseen_category", severity="warning", feature=check.column, count=unseen, share=share,
                           detail=f"{unseen} value{'s' if unseen != 1 else ''} ({percent(share)}) not seen in "
                                  f"training: {shown}; known: {known}"))
    for name, base in plan.null_rates.items():
        nan = ranges[name].nan if name in ranges else 0
        nulls = n - int(counts.nonnull.get(name) or 0) + nan
        rate = nulls / n if n else 0.0
        rates[name] = rate
        if rate > base + NULL_RATE_MARGIN and rate > NULL_RATE_FACTOR * base and nulls >= OUT_OF_RANGE_MIN_COUNT:
            out.append(Anomaly(kind="null_rate_jump", severity="warning", feature=name, count=nulls, share=rate,
                               detail=f"null rate {percent(rate)} against {percent(base)} in training"))
    return out, rates


def _positive(info: ModelInfo, column: str) -> tuple[str, str] | None:
    return (column, info.positive_class) if info.binary else None


def _share(part: int | None, rows: int) -> float | None:
    return part / rows if part is not None and rows else None


# --- the checks of a staged batch ----------------------------------------------------------------

def _time_bounds() -> dict:
    """The accepted range of logged times (``config.timestamp_bounds``) as the row tests' parameters."""
    lo, hi = timestamp_bounds(utcnow())
    return {"time_lo": lo, "time_hi": hi}



def check_predictions(con, facts: Against, batch: Batch) -> BatchCheck:
    """Check a staged prediction batch (``Batch.stage`` done on the log engine ``con``) against ``facts``.

    Returns the structural problems (empty when the batch can be ingested) and the content
    anomalies. Request ids are not compared with the log here (see ``stored_duplicates``).
    """
    info = facts.info
    types = dict(batch.types)
    present = set(types)
    ts_column = "timestamp" if "timestamp" in present else ("ts" if "ts" in present else "timestamp")
    keys = [k.name for k in info.entity_keys]
    required = ["request_id", ts_column, *info.feature_names, "prediction"]
    missing = missing_columns(present, required, "prediction batch")
    if missing:
        return BatchCheck(batch.num_rows, [missing], [])
    known = {"request_id", ts_column, "version", "variant", "prediction", "score", *info.feature_names, *keys}
    anomalies = _new_columns([c for c in types if c not in known])
    absent = [k for k in keys if k not in present]
    if absent:  # a model bound to the feature store: without its key a prediction cannot be rebuilt from the store
        anomalies.append(Anomaly(kind="missing_entity_key", severity="info", feature=absent[0],
                                 detail=f"no entity key column {', '.join(map(repr, absent))}: model {info.name!r} takes "
                                        "features from the feature store, and a retrain keeps the logged values of "
                                        "predictions without their key"))
    default_version = facts.production
    cols = vstore.prediction_columns(info, types, ts_column=ts_column, default_version=default_version)
    tests = vstore.row_tests(cols, ("request_id", "ts", "prediction"), bounded=("ts",),
                             finite=("score", "prediction") if info.task == "regression" else ("score",))
    relation = vstore.normalised(cols, tests)
    params = {"classes": list(info.classes), **_time_bounds()}
    plan = content_plan(info, present, "predictions", facts.target_range)
    counts = vstore.batch_counts(con, relation, tests=tests, numeric=plan.numeric, categorical=plan.categorical,
                                 ids=True, versions=True, positive=_positive(info, "prediction"), params=params)
    problems = failed_tests(con, tests, counts, cols, params)
    dup = _duplicate_problem(con, relation, params, counts)
    if dup:
        problems.append(dup)
    vmin, vmax = counts.version_min, counts.version_max
    if counts.version_nulls or vmin != vmax or (vmin is not None and vmin not in facts.versions):
        problems += _version_problems(con, info, facts.versions, relation, params, default_version,
                                      "version" in present)
    null_rates: dict[str, float] = {}
    if not problems:
        found, null_rates = content_findings(con, relation, params, counts, plan)
        anomalies += found
    return BatchCheck(counts.rows, problems, anomalies, cols, relation, params, null_rates,
                      _share(counts.positives, counts.rows))


def check_labels(con, facts: Against, batch: Batch, *, against_log: bool = True) -> BatchCheck:
    """Check a staged label batch: columns, types, empty values, duplicates; with ``against_log`` also that every
    request id was logged."""
    info = facts.info
    types = dict(batch.types)
    present = set(types)
    label_column = "label" if "label" in present else (info.target if info.target in present else "label")
    ts_column = "timestamp" if "timestamp" in present else ("label_ts" if "label_ts" in present else None)
    missing = missing_columns(present, ["request_id", label_column], "label batch")
    if missing:
        missing.message += f" (the label column may also be called {info.target!r}, the model's target)"
        return BatchCheck(batch.num_rows, [missing], [])
    known = {"request_id", label_column, *([ts_column] if ts_column else [])}
    anomalies = _new_columns([c for c in types if c not in known])
    cols = vstore.label_columns(info, types, label_column=label_column, ts_column=ts_column)
    tests = vstore.row_tests(cols, ("request_id", "label", "label_ts"), bounded=("label_ts",),
                             finite=("label",) if info.task == "regression" else ())
    relation = vstore.normalised(cols, tests)
    params = {"classes": list(info.classes), **_time_bounds()}
    plan = content_plan(info, set(), "labels", facts.target_range)
    counts = vstore.batch_counts(con, relation, tests=tests, numeric=plan.numeric, categorical=plan.categorical,
                                 ids=True, positive=_positive(info, "label"), params=params)
    problems = failed_tests(con, tests, counts, cols, params)
    dup = _duplicate_problem(con, relation, params, counts)
    if dup:
        problems.append(dup)
    if against_log and not problems:
        total, rows = vstore.ids_in(con, relation, facts.log.predictions, present=False, params=params,
                                    limit=SHOW_ROWS)
        if total:
            shown = ", ".join(f"{rid!r} (row {r})" for r, rid in rows)
            problems.append(Problem("unknown_request_id", "request_id", total,
                                    f"column 'request_id': {total} label{'s are' if total > 1 else ' is'} for request ids "
                                    f"never logged for model {info.name!r}: {shown}. Ingest the predictions first"))
    if not problems:
        anomalies += content_anomalies(con, relation, params, counts, plan)
    return BatchCheck(counts.rows, problems, anomalies, cols, relation, params,
                      positive_rate=_share(counts.positives, counts.rows))


def check_features(con, info: ModelInfo, batch: Batch) -> BatchCheck:
    """Check a staged frame of feature values only (e.g. a retraining window): types and content."""
    types = dict(batch.types)
    missing = missing_columns(set(types), info.feature_names, "feature frame")
    if missing:
        return BatchCheck(batch.num_rows, [missing], [])
    cols = vstore.feature_columns(info, types)
    tests = vstore.row_tests(cols)
    relation = vstore.normalised(cols, tests)
    params: dict = {}
    plan = content_plan(info, set(types), None)
    counts = vstore.batch_counts(con, relation, tests=tests, numeric=plan.numeric, categorical=plan.categorical,
                                 params=params)
    problems = failed_tests(con, tests, counts, cols, params)
    return BatchCheck(counts.rows, problems, content_anomalies(con, relation, params, counts, plan), cols, relation,
                      params)


def stored_duplicates(con, facts: Against, check: BatchCheck) -> Problem | None:
    """A problem when request ids of the batch are already in the model's log, else None."""
    info = facts.info
    total, rows = vstore.ids_in(con, check.relation, facts.log.predictions, present=True, params=check.params,
                                limit=SHOW_ROWS)
    if not total:
        return None
    shown = ", ".join(f"{rid!r} (row {r})" for r, rid in rows)
    return Problem("duplicate_of_stored", "request_id", total,
                   f"column 'request_id': {total} request id{'s are' if total > 1 else ' is'} already stored for "
                   f"model {info.name!r}: {shown}. A request is logged once; drop those rows or give new ids")


def label_conflicts(con, facts: Against, check: BatchCheck) -> tuple[int, Problem | None]:
    """(rows whose identical label is already stored, a problem when a stored label differs)."""
    same, differ, examples = vstore.label_conflicts(con, check.relation, facts.log.labels, check.params, SHOW_ROWS)
    if not differ:
        return same, None
    shown = "; ".join(f"{rid!r} at row {r}: stored {old!r}, new {new!r}" for r, rid, old, new in examples)
    return same, Problem("label_conflict", "label", differ,
                         f"column 'label': {differ} request id{'s already have' if differ > 1 else ' already has'} a "
                         f"different label: {shown}. A label is final once stored")


def report_status(anomalies: list[Anomaly], rejected: bool = False) -> str:
    """``rejected`` (structural problem), ``anomalies`` (any warning or critical finding) or ``clean``."""
    if rejected:
        return "rejected"
    return "anomalies" if any(a.severity in ("warning", "critical") for a in anomalies) else "clean"


def report_summary(status: str, rows: int, anomalies: list[Anomaly]) -> str:
    """One line for a stored report: rows and the kinds of anomaly found."""
    if status == "clean":
        return f"{rows} rows, no anomalies"
    kinds = sorted({a.kind for a in anomalies if a.severity != "info"})
    return f"{rows} rows, {len(anomalies)} finding(s): {', '.join(kinds) or 'info only'}"

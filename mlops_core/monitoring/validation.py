"""Data validation: a batch or a window of the log against the model's stored schema.

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
flagged in a validation report (``validation_reports`` + ``validation_anomalies``),
because refusing them would lose the evidence monitoring exists to see:

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
too_few_rows        warning   (``validate`` only) fewer than ``MIN_ROWS`` (100) rows: rates
                              and the skew test mean little on so few
skew                warning   training-serving skew: the feature's serving distribution
                              drifted from its training reference according to
                              ``mlops_core.drift.compare_with_reference`` (its default method and
                              threshold per feature), against the training reference of
                              the production version, on a repeatable sample of at most
                              ``SKEW_SAMPLE_ROWS`` (50,000) rows; computed by ``validate``,
                              ``validate_window`` and ``skew()``, not at ingest
==================  ========  ===============================================================

NaN in a numeric feature counts as a missing value (as in pandas and the training null
rates). ``validate`` (CLI exit 0 clean, 1 warnings, 2 structural problem or unreadable
file) checks a file against the schema only; whether its request ids are already in the
log is checked by ``ingest``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from mlops_core.errors import BatchRejectedError, InvalidInputError, MlopsError, NotFoundError
from mlops_core.store import connect, transaction, utcnow
from mlops_core.store import models as mstore
from mlops_core.store import references as rstore
from mlops_core.store import validation as vstore

OUT_OF_RANGE_SHARE = 0.01
OUT_OF_RANGE_MIN_COUNT = 3
FAR_FRACTION = 0.25
NULL_RATE_MARGIN = 0.10
NULL_RATE_FACTOR = 2.0
MIN_ROWS = 100
SKEW_SAMPLE_ROWS = 50_000
#: How many offending rows a message quotes.
SHOW_ROWS = 3

#: Null markers of CSV files besides the empty cell (as pandas reads them).
CSV_NULLS = ["", "NA", "N/A", "NaN", "nan", "NULL", "null"]


@dataclass
class Problem:
    """A structural problem: the batch cannot be ingested as it is."""

    kind: str        # missing_column | wrong_type | empty_value | duplicate_id | duplicate_of_stored | unknown_request_id | unknown_version | label_conflict | no_rows
    column: str | None
    count: int
    message: str


@dataclass
class ValidationReport:
    """What ``validate_*`` found; ``status`` is clean, anomalies (some warning) or rejected (structural)."""

    model: str
    source: str | None
    rows: int
    status: str
    anomalies: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skew: list[dict] | None = None
    skew_note: str | None = None
    report_id: int | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BatchCheck:
    """The result of checking a staged batch (see ``check_predictions`` / ``check_labels``)."""

    rows: int
    problems: list[Problem]
    anomalies: list[dict]
    fingerprint: str | None       # filled by ingest (see ``fingerprint``)
    columns: list = field(default_factory=list)   # store.validation.Column of the normalised batch
    relation: str = ""
    params: dict = field(default_factory=dict)


# --- reading a batch -----------------------------------------------------------------------

@dataclass
class Batch:
    """A batch read for checking: an Arrow table (CSV, DataFrame) or a Parquet file DuckDB scans itself."""

    name: str
    types: dict[str, pa.DataType]   # column -> Arrow type, in file order
    num_rows: int
    table: pa.Table | None = None   # with the 1-based ``__row`` column
    parquet: str | None = None

    def stage(self, con) -> None:
        vstore.stage(con, table=self.table, parquet=self.parquet)


def read_batch(source, *, what: str = "batch") -> Batch:
    """Read a CSV/Parquet path or a DataFrame for checking.

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
        table = _from_file(path, what)
        if isinstance(table, Batch):
            return table
    _check_names(table.column_names, name, what)
    if table.num_rows == 0:
        raise BatchRejectedError(f"The {what} {name} has no rows; nothing was written.", source=name)
    rows = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
    table = table.append_column(vstore.ROW, rows)
    return Batch(name, {n: t for n, t in zip(table.column_names, table.schema.types) if n != vstore.ROW},
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
            return Batch(str(path), dict(zip(schema.names, schema.types)), meta.num_rows, parquet=str(path))
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
        raise BatchRejectedError(f"Cannot read the {what} {path} as {fmt.upper()}: {exc}", path=str(path)) from exc


# --- messages --------------------------------------------------------------------------------

def _rows_text(rows: list[int], total: int) -> str:
    word = "row" if len(rows) == 1 else "rows"
    return f"first at {word} {', '.join(map(str, rows))}" if total > 1 else f"at row {rows[0]}"


def _values_text(values) -> str:
    return ", ".join("''" if v is None else repr(str(v)) for v in values)


def _pct(share: float) -> str:
    return f"{share * 100:.2f}%" if share < 0.001 else f"{share * 100:.1f}%"


def rejection_message(source: str | None, problems: list[Problem]) -> str:
    head = f"Batch {source} refused, nothing was written:" if source else "Batch refused, nothing was written:"
    return "\n".join([head] + [f"  - {p.message}" for p in problems])


# --- the checks ------------------------------------------------------------------------------

def _types(batch: Batch) -> dict[str, pa.DataType]:
    return dict(batch.types)


def _missing(info: mstore.ModelInfo, present: set[str], required: list[str], what: str) -> Problem | None:
    missing = [c for c in required if c not in present]
    if not missing:
        return None
    msg = (f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}: a {what} needs "
           f"{', '.join(required)}. The file has: {', '.join(sorted(present)) or 'no columns'}.")
    return Problem("missing_column", missing[0], len(missing), msg)


def _new_columns(names: list[str], known: set[str]) -> list[dict]:
    return [{"feature": n, "kind": "new_column", "severity": "info", "count": None, "share": None,
             "detail": f"column {n!r} is not part of the model; it was ignored"} for n in names if n not in known]


def _structural_problems(con, relation, row_flags, counts, cols, params) -> list:
    """The flagged-row problems of a staged batch plus its duplicate-request-id problem, if any."""
    problems = _flag_problems(con, row_flags, counts, cols, params)
    dup = _duplicate_problem(con, relation, params, counts)
    if dup:
        problems.append(dup)
    return problems


def _flag_problems(con, row_flags, counts, cols, params) -> list[Problem]:
    out = []
    what = {c.name: c.what for c in cols}
    for key, (cond, src) in row_flags.items():
        n = int(counts.get(key) or 0)
        if not n:
            continue
        kind, name = key.split(":", 1)
        examples = vstore.offending_rows(con, cond, src, params, SHOW_ROWS)
        rows = [r for r, _ in examples]
        if kind == "bad":
            msg = (f"column {src!r}: {n} value{'s are' if n > 1 else ' is'} not {what[name]}, "
                   f"{_rows_text(rows, n)}: {_values_text(v for _, v in examples)}")
            out.append(Problem("wrong_type", src, n, msg))
        else:
            msg = f"column {src!r}: {n} empty value{'s' if n > 1 else ''}, {_rows_text(rows, n)}; every row needs one"
            out.append(Problem("empty_value", src, n, msg))
    return out


def _duplicate_problem(con, relation, params, counts) -> Problem | None:
    if counts["ids:distinct"] == counts["ids:nonnull"]:
        return None
    total, examples = vstore.duplicate_ids(con, relation, params, SHOW_ROWS)
    if not total:
        return None
    shown = "; ".join(f"{rid!r} at rows {', '.join(map(str, rows))}" for rid, rows in examples)
    return Problem("duplicate_id", "request_id", total,
                   f"column 'request_id': {total} request id{'s occur' if total > 1 else ' occurs'} more than once "
                   f"in the batch: {shown}")


def _numeric_bounds(name, lo, hi):
    span = hi - lo
    margin = FAR_FRACTION * (span if span > 0 else max(abs(lo), abs(hi), 1.0))
    return (name, lo, hi, lo - margin, hi + margin)


def _content_plan(info: mstore.ModelInfo, present: set[str], outputs: str | None):
    """(numeric specs, categorical specs, training null rates) of the columns to check.

    ``outputs``: "predictions" also checks prediction classes and scores, "labels" the label classes.
    """
    numeric, categorical, null_rates = [], [], {}
    for f in info.features:
        if f.name not in present:
            continue
        null_rates[f.name] = f.null_rate or 0.0
        if f.kind == "numeric":
            if f.min is not None and f.max is not None:
                numeric.append(_numeric_bounds(f.name, float(f.min), float(f.max)))
            else:
                numeric.append((f.name, None, None, None, None))
        else:
            categorical.append((f.name, list(f.categories) if f.categories else None))
    if outputs == "predictions":
        if info.task == "classification" and info.classes:
            categorical.append(("prediction", list(info.classes)))
        if info.positive_class is not None and "score" in present:
            numeric.append(("score", 0.0, 1.0, 0.0, 1.0))
    elif outputs == "labels" and info.task == "classification" and info.classes:
        categorical.append(("label", list(info.classes)))
    return numeric, categorical, null_rates


def _content_anomalies(con, relation, params, counts, n, numeric, categorical, null_rates) -> list[dict]:
    out = []
    # Second pass only over the columns whose min or max leaves the training range.
    # NaN is the largest DOUBLE in DuckDB, so a NaN also makes its column a suspect (and is counted there).
    suspect = [spec for spec in numeric if spec[1] is not None and counts.get(f"max:{spec[0]}") is not None
               and (counts[f"min:{spec[0]}"] < spec[1] or not counts[f"max:{spec[0]}"] <= spec[2])]
    if suspect:
        p = dict(params)
        counts = {**counts, **vstore.aggregate(con, relation, vstore.range_aggregates(suspect, p), p)}
    for name, lo, hi, _, _ in suspect:
        present_n = int(counts.get(f"nonnull:{name}") or 0) - int(counts.get(f"nan:{name}") or 0)
        if not present_n:
            continue
        outside, far = int(counts.get(f"out:{name}") or 0), int(counts.get(f"far:{name}") or 0)
        share = outside / present_n
        if far or (share > OUT_OF_RANGE_SHARE and outside >= OUT_OF_RANGE_MIN_COUNT):
            vmin, vmax = counts.get(f"rmin:{name}"), counts.get(f"rmax:{name}")
            detail = (f"{outside} value{'s' if outside != 1 else ''} ({_pct(share)}) outside the training range "
                      f"[{lo:g}, {hi:g}]; observed min {vmin:g}, max {vmax:g}")
            out.append({"feature": name, "kind": "out_of_range", "severity": "warning", "count": outside,
                        "share": share, "detail": detail})
    for name, cats in categorical:
        unseen = int(counts.get(f"unseen:{name}") or 0)
        if cats is None or not unseen:
            continue
        top = vstore.unseen_values(con, relation, name, cats, params, limit=5)
        shown = ", ".join(f"{v!r} ({c})" for v, c in top)
        share = unseen / n if n else 0.0
        known = ", ".join(cats[:12]) + (", ..." if len(cats) > 12 else "")
        out.append({"feature": name, "kind": "unseen_category", "severity": "warning", "count": unseen, "share": share,
                    "detail": f"{unseen} value{'s' if unseen != 1 else ''} ({_pct(share)}) not seen in training: {shown}; "
                              f"known: {known}"})
    for name, base in null_rates.items():
        nulls = n - int(counts.get(f"nonnull:{name}") or 0) + int(counts.get(f"nan:{name}") or 0)
        rate = nulls / n if n else 0.0
        if rate > base + NULL_RATE_MARGIN and rate > NULL_RATE_FACTOR * base and nulls >= OUT_OF_RANGE_MIN_COUNT:
            out.append({"feature": name, "kind": "null_rate_jump", "severity": "warning", "count": nulls, "share": rate,
                        "detail": f"null rate {_pct(rate)} against {_pct(base)} in training"})
    return out


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


def _production(con, model: str) -> int | None:
    return mstore.current_alias(con, model)


def check_predictions(con, info: mstore.ModelInfo, table: Batch) -> BatchCheck:
    """Check a staged prediction batch (``store.validation.stage`` done) in DuckDB.

    Returns the structural problems (empty when the batch can be ingested), the content
    anomalies and the content fingerprint. Request ids are not compared with the log
    here (see ``stored_duplicates``).
    """
    types = _types(table)
    present = set(types)
    ts_column = "timestamp" if "timestamp" in present else ("ts" if "ts" in present else "timestamp")
    required = ["request_id", ts_column, *info.feature_names, "prediction"]
    missing = _missing(info, present, required, "prediction batch")
    if missing:
        return BatchCheck(table.num_rows, [missing], [], None)
    known = {"request_id", ts_column, "version", "variant", "prediction", "score", *info.feature_names}
    anomalies = _new_columns([c for c in types if c not in known], known)
    default_version = _production(con, info.name)
    cols = vstore.prediction_columns(info, types, ts_column=ts_column, default_version=default_version)
    row_flags = vstore.flags(cols, ("request_id", "ts", "prediction"))
    relation = vstore.normalised(cols, row_flags)
    params = {"classes": list(info.classes)}
    numeric, categorical, null_rates = _content_plan(info, present, "predictions")
    aggs = {**vstore.flag_aggregates(row_flags), **vstore.content_aggregates(numeric, categorical, params),
            **vstore.id_aggregates(), **vstore.version_aggregates()}
    counts = vstore.aggregate(con, relation, aggs, params)
    n = int(counts["rows"])
    problems = _structural_problems(con, relation, row_flags, counts, cols, params)
    known_versions = vstore.known_versions(con, info.name)
    vmin, vmax = counts["version:min"], counts["version:max"]
    if counts["version:null"] or vmin != vmax or (vmin is not None and vmin not in known_versions):
        problems += _version_problems(con, info, relation, params, default_version, "version" in present)
    if not problems:
        anomalies += _content_anomalies(con, relation, params, counts, n, numeric, categorical, null_rates)
    return BatchCheck(n, problems, anomalies, None, cols, relation, params)


def _version_problems(con, info, relation, params, default_version, has_column) -> list[Problem]:
    versions = vstore.distinct_values(con, relation, "version", params)
    known = vstore.known_versions(con, info.name)
    out = []
    unknown = sorted(v for v in versions if v not in known)
    if unknown:
        out.append(Problem("unknown_version", "version", len(unknown),
                           f"column 'version': model {info.name!r} has no version {', '.join(map(str, unknown))} "
                           f"(versions: {', '.join(map(str, known)) or 'none'})"))
    if default_version is None:
        n_null = int(vstore.aggregate(con, relation, {"n": "count(*) FILTER (WHERE b.version IS NULL)"}, params)["n"])
        if n_null:
            where = "rows without a 'version'" if has_column else "the batch has no 'version' column"
            out.append(Problem("unknown_version", "version", n_null,
                               f"{where} and model {info.name!r} has no production version to assume; "
                               "give the version that made each prediction"))
    return out


def stored_duplicates(con, info: mstore.ModelInfo, check: BatchCheck) -> Problem | None:
    """A problem when request ids of the batch are already in the model's log, else None."""
    total, rows = vstore.ids_in_table(con, check.relation, info.log_table, present=True, params=check.params,
                                      limit=SHOW_ROWS)
    if not total:
        return None
    shown = ", ".join(f"{rid!r} (row {r})" for r, rid in rows)
    return Problem("duplicate_of_stored", "request_id", total,
                   f"column 'request_id': {total} request id{'s are' if total > 1 else ' is'} already stored for "
                   f"model {info.name!r}: {shown}. A request is logged once; drop those rows or give new ids")


def check_labels(con, info: mstore.ModelInfo, table: Batch, *, against_log: bool = True) -> BatchCheck:
    """Check a staged label batch: columns, types, empty values, duplicates; with ``against_log`` also that every
    request id was logged and that no stored label differs."""
    types = _types(table)
    present = set(types)
    label_column = "label" if "label" in present else (info.target if info.target in present else "label")
    ts_column = "timestamp" if "timestamp" in present else ("label_ts" if "label_ts" in present else None)
    missing = _missing(info, present, ["request_id", label_column], "label batch")
    if missing:
        missing.message += f" (the label column may also be called {info.target!r}, the model's target)"
        return BatchCheck(table.num_rows, [missing], [], None)
    known = {"request_id", label_column, *([ts_column] if ts_column else [])}
    anomalies = _new_columns([c for c in types if c not in known], known)
    cols = vstore.label_columns(info, types, label_column=label_column, ts_column=ts_column)
    row_flags = vstore.flags(cols, ("request_id", "label", "label_ts"))
    relation = vstore.normalised(cols, row_flags)
    params = {"classes": list(info.classes)}
    numeric, categorical, _ = _content_plan(info, set(), "labels")
    aggs = {**vstore.flag_aggregates(row_flags), **vstore.content_aggregates(numeric, categorical, params),
            **vstore.id_aggregates()}
    counts = vstore.aggregate(con, relation, aggs, params)
    n = int(counts["rows"])
    problems = _structural_problems(con, relation, row_flags, counts, cols, params)
    check = BatchCheck(n, problems, anomalies, None, cols, relation, params)
    if against_log and not problems:
        total, rows = vstore.ids_in_table(con, relation, info.log_table, present=False, params=params, limit=SHOW_ROWS)
        if total:
            shown = ", ".join(f"{rid!r} (row {r})" for r, rid in rows)
            problems.append(Problem("unknown_request_id", "request_id", total,
                                    f"column 'request_id': {total} label{'s are' if total > 1 else ' is'} for request ids "
                                    f"never logged for model {info.name!r}: {shown}. Ingest the predictions first"))
    if not problems:
        anomalies += _content_anomalies(con, relation, params, counts, n, numeric, categorical, {})
    return check


def label_conflicts(con, info: mstore.ModelInfo, check: BatchCheck) -> tuple[int, Problem | None]:
    """(rows whose identical label is already stored, a problem when a stored label differs)."""
    same, differ, examples = vstore.label_conflicts(con, check.relation, info, check.params, SHOW_ROWS)
    if not differ:
        return same, None
    shown = "; ".join(f"{rid!r} at row {r}: stored {old!r}, new {new!r}" for r, rid, old, new in examples)
    return same, Problem("label_conflict", "label", differ,
                         f"column 'label': {differ} request id{'s already have' if differ > 1 else ' already has'} a "
                         f"different label: {shown}. A label is final once stored")


# --- skew -------------------------------------------------------------------------------------

def _skew(con, info: mstore.ModelInfo, relation: str, params: dict, n: int) -> tuple[list[dict] | None, str | None, list[dict]]:
    """(skew rows, note when not computed, skew anomalies) of the relation's features against training."""
    try:
        from mlops_core.monitoring.drift import compare_with_reference
    except ImportError:
        return None, "skew not computed: mlops_core.drift.compare_with_reference is not available", []
    if n < MIN_ROWS:
        return None, f"skew not computed: fewer than {MIN_ROWS} rows", []
    version = _production(con, info.name)
    if version is None:
        return None, "skew not computed: the model has no production version", []
    try:
        ref_id = rstore.latest_training_reference_id(con, info.name, version)
    except NotFoundError:
        return None, f"skew not computed: no training reference stored for version {version}", []
    names = set(info.feature_names)
    reference = [r for r in rstore.load_reference(con, ref_id) if r.feature in names]
    current = vstore.sample_frame(con, relation, info.feature_names, SKEW_SAMPLE_ROWS, params)
    try:
        result = compare_with_reference(reference, current)
    except (MlopsError, ValueError, TypeError, KeyError) as exc:  # skew is advisory: never fail a validation on it
        return None, f"skew not computed: {exc}", []
    rows = [{k: (None if isinstance(v, float) and not np.isfinite(v) else (v.item() if hasattr(v, "item") else v))
             for k, v in rec.items()} for rec in result.to_dict(orient="records")]
    anomalies = []
    for feature, part in result.groupby("feature", sort=True):
        hit = part[part["drifted"].astype(bool)]
        if len(hit):
            desc = ", ".join(f"{r.method} {r.statistic:.3g} > {r.threshold:.3g}" for r in hit.itertuples())
            anomalies.append({"feature": feature, "kind": "skew", "severity": "warning", "count": None, "share": None,
                              "detail": f"serving distribution differs from training ({desc}; sample of {len(current)} rows)"})
    return rows, None, anomalies


# --- public API -------------------------------------------------------------------------------

def report_status(anomalies: list[dict], rejected: bool = False) -> str:
    """``rejected`` (structural problem), ``anomalies`` (any warning or critical finding) or ``clean``."""
    if rejected:
        return "rejected"
    return "anomalies" if any(a["severity"] in ("warning", "critical") for a in anomalies) else "clean"


def report_summary(status: str, rows: int, anomalies: list[dict]) -> str:
    """One line for a stored report: rows and the kinds of anomaly found."""
    if status == "clean":
        return f"{rows} rows, no anomalies"
    kinds = sorted({a["kind"] for a in anomalies if a["severity"] != "info"})
    return f"{rows} rows, {len(anomalies)} finding(s): {', '.join(kinds) or 'info only'}"


def _problem_anomalies(problems: list[Problem]) -> list[dict]:
    return [{"feature": p.column, "kind": p.kind, "severity": "critical", "count": p.count, "share": None,
             "detail": p.message} for p in problems]


def validate_batch(model: str, source, *, db=None, kind: str = "predictions", store: bool = True,
                   skew: bool = True) -> ValidationReport:
    """Validate a prediction (or ``kind="labels"``) batch, a CSV/Parquet path or DataFrame, against the schema.

    Nothing is ingested. Structural problems make the report ``rejected`` (they are listed
    as critical anomalies); content anomalies make it ``anomalies``. With ``store`` the
    report is saved (``batch_id`` NULL). Returns the report; raises BatchRejectedError for
    an unreadable or empty file, NotFoundError for an unknown model or database.
    """
    if kind not in ("predictions", "labels"):
        raise InvalidInputError(f"Unknown batch kind {kind!r}; choose predictions or labels.", kind=kind)
    table = read_batch(source, what=f"{kind[:-1]} batch")
    name = table.name
    with connect(db, create=False) as con:
        info = mstore.get_model(con, model)
        table.stage(con)
        try:
            check = check_predictions(con, info, table) if kind == "predictions" else \
                check_labels(con, info, table, against_log=False)
            anomalies = list(check.anomalies)
            skew_rows, note = None, None
            if check.problems:
                anomalies = _problem_anomalies(check.problems) + anomalies
            else:
                if check.rows < MIN_ROWS:
                    anomalies.append(_too_few(check.rows))
                if skew and kind == "predictions":
                    skew_rows, note, skew_anoms = _skew(con, info, check.relation, check.params, check.rows)
                    anomalies += skew_anoms
            status = report_status(anomalies, bool(check.problems))
            report = ValidationReport(model, name, check.rows, status, anomalies, [p.message for p in check.problems],
                                      skew_rows, note)
            if store:
                with transaction(con):
                    report.report_id = vstore.insert_report(
                        con, model=model, batch_id=None, source=name, at=utcnow(), rows=check.rows, status=status,
                        summary=report_summary(status, check.rows, anomalies), skew=_skew_json(skew_rows), anomalies=anomalies)
            return report
        finally:
            vstore.unstage(con)


def validate_frame(model: str, frame: pd.DataFrame | pa.Table, *, db=None,
                   con: duckdb.DuckDBPyConnection | None = None) -> ValidationReport:
    """Validate a frame (or Arrow table) of feature values, e.g. a retraining set, against the schema; nothing is stored.

    Missing feature columns and values of the wrong type are critical anomalies; content
    anomalies are warnings as in ``validate_batch``. ``con``: an open connection to use
    instead of opening ``db``. Raises NotFoundError for an unknown model.
    """
    if len(frame) == 0:
        return ValidationReport(model, "DataFrame", 0, "rejected",
                                [{"feature": None, "kind": "too_few_rows", "severity": "critical", "count": 0,
                                  "share": None, "detail": "the frame has no rows"}])
    table = read_batch(frame)
    name = table.name
    with (nullcontext(con) if con is not None else connect(db, create=False)) as con:
        info = mstore.get_model(con, model)
        types = _types(table)
        present = set(types)
        missing = _missing(info, present, info.feature_names, "feature frame")
        if missing:
            return ValidationReport(model, name, table.num_rows, "rejected", _problem_anomalies([missing]), [missing.message])
        table.stage(con)
        try:
            cols = vstore.feature_columns(info, types)
            row_flags = vstore.flags(cols)
            relation = vstore.normalised(cols, row_flags)
            params: dict = {}
            numeric, categorical, null_rates = _content_plan(info, present, None)
            aggs = {**vstore.flag_aggregates(row_flags), **vstore.content_aggregates(numeric, categorical, params)}
            counts = vstore.aggregate(con, relation, aggs, params)
            n = int(counts["rows"])
            problems = _flag_problems(con, row_flags, counts, cols, params)
            anomalies = _problem_anomalies(problems)
            anomalies += _content_anomalies(con, relation, params, counts, n, numeric, categorical, null_rates)
            return ValidationReport(model, name, n, report_status(anomalies, bool(problems)), anomalies,
                                    [p.message for p in problems])
        finally:
            vstore.unstage(con)


def _too_few(n: int) -> dict:
    return {"feature": None, "kind": "too_few_rows", "severity": "warning", "count": n, "share": None,
            "detail": f"only {n} row{'s' if n != 1 else ''}; at least {MIN_ROWS} are needed for rates and skew to mean much"}


def _skew_json(rows) -> str | None:
    return json.dumps(rows, default=str) if rows is not None else None


def validate_window(model: str, start: datetime, end: datetime, *, db=None, store: bool = True,
                    skew: bool = True) -> ValidationReport:
    """Validate the logged predictions of ``model`` with ``start <= ts < end`` against the schema.

    Checks ranges, categories, null rates, row count and training-serving skew; types
    were enforced at ingest. With ``store`` the report is saved with the window bounds.
    Raises NotFoundError (model, database), InvalidInputError (start >= end).
    """
    if start is None or end is None or start >= end:
        raise InvalidInputError(f"The window must have start < end (got {start} .. {end}).")
    with connect(db, create=False) as con:
        info = mstore.get_model(con, model)
        return _validate_window(con, info, start, end, store=store, skew=skew)


def validate_windows(model: str, start: datetime, end: datetime, *, window: str = "day", db=None,
                     skew: bool = False) -> list[ValidationReport]:
    """Validate and store one report per ``window`` (hour, day, week) from ``start`` to ``end``.

    Fills the data-quality history of a log that was not ingested batch by batch (e.g. a
    backfill). Skew is off by default: it samples every window. Returns the reports.
    Raises NotFoundError, InvalidInputError (window, start >= end).
    """
    steps = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
    if window not in steps:
        raise InvalidInputError(f"Unknown window {window!r}; choose one of: {', '.join(steps)}.", window=window)
    if start is None or end is None or start >= end:
        raise InvalidInputError(f"The range must have start < end (got {start} .. {end}).")
    out = []
    with connect(db, create=False) as con:
        info = mstore.get_model(con, model)
        t = start
        while t < end:
            out.append(_validate_window(con, info, t, min(t + steps[window], end), store=True, skew=skew))
            t += steps[window]
    return out


def _validate_window(con, info: mstore.ModelInfo, start: datetime, end: datetime, *, store: bool,
                     skew: bool) -> ValidationReport:
    relation = vstore.window_relation(info)
    params = {"start": start, "end": end}
    present = {*info.feature_names, "prediction", "score"}
    numeric, categorical, null_rates = _content_plan(info, present, "predictions")
    counts = vstore.aggregate(con, relation, vstore.content_aggregates(numeric, categorical, params), params)
    n = int(counts["rows"])
    anomalies = _content_anomalies(con, relation, params, counts, n, numeric, categorical, null_rates)
    if n < MIN_ROWS:
        anomalies.append(_too_few(n))
    skew_rows, note = None, None
    if skew:
        skew_rows, note, skew_anoms = _skew(con, info, relation, params, n)
        anomalies += skew_anoms
    status = report_status(anomalies)
    report = ValidationReport(info.name, f"log {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M}", n, status, anomalies,
                              [], skew_rows, note, window_start=start, window_end=end)
    if store:
        with transaction(con):
            report.report_id = vstore.insert_report(
                con, model=info.name, batch_id=None, source=report.source, at=utcnow(), rows=n, status=status,
                summary=report_summary(status, n, anomalies), skew=_skew_json(skew_rows), window_start=start,
                window_end=end, anomalies=anomalies)
    return report


def skew(model: str, *, start: datetime | None = None, end: datetime | None = None, db=None) -> pd.DataFrame:
    """Training-serving skew of the logged features in [start, end) (default: the whole log), not stored.

    Returns one row per (feature, method): feature, method, statistic, p_value, threshold,
    drifted (empty when there are no rows or no drift module). Raises NotFoundError.
    """
    with connect(db, create=False) as con:
        info = mstore.get_model(con, model)
        relation = vstore.window_relation(info)
        params = {"start": start or datetime(1, 1, 1), "end": end or datetime(9999, 12, 31)}
        n = int(vstore.aggregate(con, relation, {"rows": "count(*)"}, params)["rows"])
        rows, _, _ = _skew(con, info, relation, params, n) if n else (None, None, [])
    cols = ["feature", "method", "statistic", "p_value", "threshold", "drifted"]
    return pd.DataFrame(rows, columns=None if rows else cols) if rows else pd.DataFrame(columns=cols)


def reports(model: str, *, start: datetime | None = None, end: datetime | None = None, db=None) -> pd.DataFrame:
    """Validation reports of ``model`` about [start, end), oldest first: a window report by its window
    start, a batch report by when it was checked.

    Columns: report_id, checked_at, batch_id, source, window_start, window_end, rows,
    status, summary, skew (JSON text), anomalies (count). Raises NotFoundError.
    """
    with connect(db, create=False) as con:
        mstore.get_model(con, model)
        return vstore.reports_frame(con, model, start, end)


def anomalies(model: str, *, start: datetime | None = None, end: datetime | None = None, db=None) -> pd.DataFrame:
    """Anomalies of the reports of ``model`` about [start, end).

    Columns: report_id, at (the window start of a window report, else when it was
    checked), checked_at, batch_id, source, feature, kind, severity, count, share,
    detail. Raises NotFoundError.
    """
    with connect(db, create=False) as con:
        mstore.get_model(con, model)
        return vstore.anomalies_frame(con, model, start, end)


def null_rates(model: str, *, window: str = "day", start: datetime | None = None, end: datetime | None = None,
               db=None) -> pd.DataFrame:
    """Null rate per window and feature of the logged predictions, computed in SQL.

    Columns: window_start, feature, rows, null_rate. Raises InvalidInputError for an
    unknown window, NotFoundError for an unknown model.
    """
    if window not in vstore.WINDOWS:
        raise InvalidInputError(f"Unknown window {window!r}; choose one of: {', '.join(vstore.WINDOWS)}.", window=window)
    with connect(db, create=False) as con:
        info = mstore.get_model(con, model)
        return vstore.null_rates_frame(con, info, window, start, end)


__all__ = [
    "ValidationReport", "Problem", "Batch", "BatchCheck", "read_batch", "check_predictions", "check_labels", "stored_duplicates",
    "label_conflicts", "fingerprint", "report_status", "report_summary", "validate_batch", "validate_frame", "validate_window", "validate_windows", "skew", "reports", "anomalies",
    "null_rates", "rejection_message",
]

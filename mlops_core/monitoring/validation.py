"""Data validation reports: a batch file or a window of the log against the model's schema and training data.

The checks themselves (structural problems that refuse a batch, content anomalies that
are stored and flagged) are in ``mlops_core.data.batches``. On top of them this module adds:

==================  ========  ===============================================================
kind                severity  rule (defaults are module constants)
==================  ========  ===============================================================
too_few_rows        warning   fewer than ``MIN_ROWS`` (100) rows: rates and the skew test mean
                              little on so few
skew                warning   training-serving skew: the feature's serving distribution
                              drifted from its training reference according to
                              ``mlops_core.monitoring.drift.compare_with_reference`` (its default
                              method and threshold per feature), against the training reference
                              of the production version, on a repeatable sample of at most
                              ``SKEW_SAMPLE_ROWS`` (50,000) rows
==================  ========  ===============================================================

``validate`` (CLI exit 0 clean, 1 warnings, 2 structural problem or unreadable file)
checks a file against the schema only; whether its request ids are already in the log is
checked by ``ingest``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from mlops_core.data import batches
from mlops_core.entities import Anomaly, FeatureReference, ModelInfo, dumps
from mlops_core.errors import InvalidInputError, MlopsError, NotFoundError
from mlops_core.monitoring.drift import compare_with_reference
from mlops_core.store import Store, cursor, logs, utcnow
from mlops_core.store import models as mstore
from mlops_core.store import references as rstore
from mlops_core.store import validation as vstore
from mlops_core.store.conditions import WINDOW_LENGTH, check_window

MIN_ROWS = 100
SKEW_SAMPLE_ROWS = 50_000


@dataclass
class ValidationReport:
    """What a validation found; ``status`` is clean, anomalies (some warning) or rejected (structural)."""

    model: str
    source: str | None
    rows: int
    status: str
    anomalies: list[Anomaly] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skew: list[dict] | None = None
    skew_note: str | None = None
    report_id: int | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    fingerprint: str | None = None
    ingested_as: str | None = None  # the batch id, when the file was ingested already (its report is the ingest's)


@dataclass
class _SkewBasis:
    """The training reference skew is measured against (read on a metadata visit), or why there is none."""

    reference: list[FeatureReference] | None
    note: str | None = None


def _skew_basis(con, info: ModelInfo) -> _SkewBasis:
    version = mstore.current_alias(con, info.name)
    if version is None:
        return _SkewBasis(None, "skew not computed: the model has no production version")
    try:
        ref_id = rstore.latest_training_reference_id(con, info.name, version)
    except NotFoundError:
        return _SkewBasis(None, f"skew not computed: no training reference stored for version {version}")
    names = set(info.feature_names)
    return _SkewBasis([r for r in rstore.load_reference(con, ref_id) if r.feature in names])


def _skew(con, info: ModelInfo, basis: _SkewBasis, relation: str, params: dict,
          n: int) -> tuple[list[dict] | None, str | None, list[Anomaly]]:
    """(skew rows, note when not computed, skew anomalies) of the relation's features against training;
    ``con``: the log engine."""
    if n < MIN_ROWS:
        return None, f"skew not computed: fewer than {MIN_ROWS} rows", []
    if basis.reference is None:
        return None, basis.note, []
    current = vstore.sample_frame(con, relation, info.feature_names, SKEW_SAMPLE_ROWS, params)
    try:
        result = compare_with_reference(basis.reference, current)
    except (MlopsError, ValueError, TypeError, KeyError) as exc:  # skew is advisory: never fail a validation on it
        return None, f"skew not computed: {exc}", []
    rows = [{k: (None if isinstance(v, float) and not np.isfinite(v) else (v.item() if hasattr(v, "item") else v))
             for k, v in rec.items()} for rec in result.to_dict(orient="records")]
    anomalies = []
    for feature, part in result.groupby("feature", sort=True):
        hit = part[part["drifted"].astype(bool)]
        if len(hit):
            desc = ", ".join(f"{r.method} {r.statistic:.3g} > {r.threshold:.3g}" for r in hit.itertuples())
            anomalies.append(Anomaly(kind="skew", severity="warning", feature=feature,
                                     detail=f"serving distribution differs from training ({desc}; sample of "
                                            f"{len(current)} rows)"))
    return rows, None, anomalies


def _too_few(n: int) -> Anomaly:
    return Anomaly(kind="too_few_rows", severity="warning", count=n,
                   detail=f"only {n} row{'s' if n != 1 else ''}; at least {MIN_ROWS} are needed for rates and skew to "
                          "mean much")


def _skew_json(rows) -> str | None:
    return dumps(rows) if rows is not None else None


def _store(store: Store, report: ValidationReport) -> int:
    with store.transaction() as con:
        return vstore.insert_report(
            con, model=report.model, batch_id=None, source=report.source, at=utcnow(), rows=report.rows,
            status=report.status, summary=batches.report_summary(report.status, report.rows, report.anomalies),
            skew=_skew_json(report.skew), window_start=report.window_start, window_end=report.window_end,
            anomalies=report.anomalies, fingerprint=report.fingerprint)


def validate_batch(store: Store, info: ModelInfo, source, *, kind: str = "predictions", store_report: bool = True,
                   skew: bool = True) -> ValidationReport:
    """Validate a prediction (or ``kind="labels"``) batch, a CSV/Parquet path or DataFrame, against the schema.

    Nothing is ingested. Structural problems make the report ``rejected`` (they are listed
    as critical anomalies); content anomalies make it ``anomalies``. A prediction batch's report
    is dated by the time span of its predictions (``window_start``/``window_end``), not by when it
    was checked. With ``store_report`` the report is saved (``batch_id`` NULL), replacing an earlier
    report of the same file (same fingerprint as ``ingest`` computes it); a file that was ingested
    already is not stored again: its ingest's report describes it (``ingested_as``). Raises
    BatchRejectedError for an unreadable or empty file.
    """
    if kind not in ("predictions", "labels"):
        raise InvalidInputError(f"Unknown batch kind {kind!r}; choose predictions or labels.", kind=kind)
    batch = batches.read_batch(source, what=f"{kind[:-1]} batch")
    fingerprint = batches.fingerprint(source, info.name, kind) if store_report else None
    with store.connect() as con:
        facts = batches.against(con, store.logs, info)
        basis = _skew_basis(con, info) if skew and kind == "predictions" else _SkewBasis(None, None)
        ingested = vstore.find_batch(con, info.name, kind, fingerprint) if fingerprint else None
    with store.engine() as con:
        batch.stage(con)
        try:
            check = batches.check_predictions(con, facts, batch) if kind == "predictions" else \
                batches.check_labels(con, facts, batch, against_log=False)
            anomalies = list(check.anomalies)
            skew_rows, note = None, None
            first = last = None
            if check.problems:
                anomalies = [p.as_anomaly() for p in check.problems] + anomalies
            else:
                if kind == "predictions":
                    first, last = vstore.time_span(con, check.relation, check.params)
                if check.rows < MIN_ROWS:
                    anomalies.append(_too_few(check.rows))
                if skew and kind == "predictions":
                    skew_rows, note, skew_anoms = _skew(con, info, basis, check.relation, check.params, check.rows)
                    anomalies += skew_anoms
        finally:
            vstore.unstage(con)
    status = batches.report_status(anomalies, bool(check.problems))
    report = ValidationReport(info.name, batch.name, check.rows, status, anomalies,
                              [p.message for p in check.problems], skew_rows, note, window_start=first,
                              window_end=last, fingerprint=fingerprint,
                              ingested_as=ingested.batch_id if ingested is not None else None)
    if store_report and ingested is None:
        report.report_id = _store(store, report)
    return report


def validate_frame(con: duckdb.DuckDBPyConnection, info: ModelInfo, frame: pd.DataFrame | pa.Table) -> ValidationReport:
    """Validate a frame (or Arrow table) of feature values, e.g. a retraining set, against the schema; nothing is stored.

    Missing feature columns and values of the wrong type are critical anomalies; content
    anomalies are warnings as in ``validate_batch``. ``con``: the log engine; the checks run on a cursor
    of their own, so this may run in another thread than ``con``'s.
    """
    if len(frame) == 0:
        return ValidationReport(info.name, "DataFrame", 0, "rejected",
                                [Anomaly(kind="too_few_rows", severity="critical", count=0,
                                         detail="the frame has no rows")])
    batch = batches.read_batch(frame)
    cur = cursor(con)
    try:
        batch.stage(cur)
        try:
            check = batches.check_features(cur, info, batch)
        finally:
            vstore.unstage(cur)
    finally:
        cur.close()
    anomalies = [p.as_anomaly() for p in check.problems] + check.anomalies
    return ValidationReport(info.name, batch.name, check.rows, batches.report_status(anomalies, bool(check.problems)),
                            anomalies, [p.message for p in check.problems])


def _window_report(store: Store, info: ModelInfo, start: datetime, end: datetime, log, basis: _SkewBasis | None,
                   store_report: bool) -> ValidationReport:
    relation = vstore.window_relation(log)
    params = {"start": start, "end": end}
    plan = batches.content_plan(info, {*info.feature_names, "prediction", "score"}, "predictions")
    with store.engine() as con:
        counts = vstore.batch_counts(con, relation, numeric=plan.numeric, categorical=plan.categorical, params=params)
        n = counts.rows
        anomalies = batches.content_anomalies(con, relation, params, counts, plan)
        skew_rows, note = None, None
        if basis is not None:
            skew_rows, note, skew_anoms = _skew(con, info, basis, relation, params, n)
            anomalies += skew_anoms
    if n < MIN_ROWS:
        anomalies.append(_too_few(n))
    report = ValidationReport(info.name, f"log {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M}", n,
                              batches.report_status(anomalies), anomalies, [], skew_rows, note,
                              window_start=start, window_end=end)
    if store_report:
        report.report_id = _store(store, report)
    return report


def validate_window(store: Store, info: ModelInfo, start: datetime, end: datetime, *, store_report: bool = True,
                    skew: bool = True) -> ValidationReport:
    """Validate the logged predictions of the model with ``start <= ts < end`` against the schema.

    Checks ranges, categories, null rates, row count and training-serving skew; types
    were enforced at ingest. With ``store_report`` the report is saved with the window bounds.
    Raises InvalidInputError (start >= end).
    """
    if start is None or end is None or start >= end:
        raise InvalidInputError(f"The window must have start < end (got {start} .. {end}).")
    with store.connect() as con:
        log = logs.view(con, store.logs, info, start, end)
        basis = _skew_basis(con, info) if skew else None
    return _window_report(store, info, start, end, log, basis, store_report)


def validate_windows(store: Store, info: ModelInfo, start: datetime, end: datetime, *,
                     window: str = "day", skew: bool = False) -> list[ValidationReport]:
    """Validate and store one report per ``window`` (hour, day, week) from ``start`` to ``end``.

    Fills the data-quality history of a log that was not ingested batch by batch (e.g. a
    backfill). Skew is off by default: it samples every window. Raises InvalidInputError.
    """
    step = WINDOW_LENGTH[check_window(window)]
    if start is None or end is None or start >= end:
        raise InvalidInputError(f"The range must have start < end (got {start} .. {end}).")
    with store.connect() as con:
        log = logs.view(con, store.logs, info, start, end)
        basis = _skew_basis(con, info) if skew else None
    out = []
    t = start
    while t < end:
        out.append(_window_report(store, info, t, min(t + step, end), log, basis, True))
        t += step
    return out


def skew(store: Store, info: ModelInfo, *, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
    """Training-serving skew of the logged features in [start, end) (default: the whole log), not stored.

    Returns one row per (feature, method): feature, method, statistic, p_value, threshold,
    drifted (empty when there are no rows).
    """
    with store.connect() as con:
        log = logs.view(con, store.logs, info, start, end)
        basis = _skew_basis(con, info)
    relation = vstore.window_relation(log)
    params = {"start": start or datetime(1, 1, 1), "end": end or datetime(9999, 12, 31)}
    with store.engine() as con:
        n = vstore.row_count(con, relation, params)
        rows, _, _ = _skew(con, info, basis, relation, params, n) if n else (None, None, [])
    cols = ["feature", "method", "statistic", "p_value", "threshold", "drifted"]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=cols)


def reports(con: duckdb.DuckDBPyConnection, info: ModelInfo, *, start: datetime | None = None,
            end: datetime | None = None) -> pd.DataFrame:
    """Validation reports of the model about [start, end), oldest first: a report by the start of the data it
    describes (its window, or its batch's time span), else by when it was checked.

    Columns: report_id, checked_at, batch_id, source, window_start, window_end, rows,
    status, summary, skew (JSON text), anomalies (count).
    """
    return vstore.reports_frame(con, info.name, start, end)


def anomalies(con: duckdb.DuckDBPyConnection, info: ModelInfo, *, start: datetime | None = None,
              end: datetime | None = None) -> pd.DataFrame:
    """Anomalies of the reports of the model about [start, end).

    Columns: report_id, at (the start of the data the report describes, else when it was
    checked), checked_at, batch_id, source, feature, kind, severity, count, share, detail.
    """
    return vstore.anomalies_frame(con, info.name, start, end)


def null_rates(con: duckdb.DuckDBPyConnection, log, *, window: str = "day", start: datetime | None = None,
               end: datetime | None = None) -> pd.DataFrame:
    """Null rate per window and feature of the logged predictions, computed in SQL on the log engine ``con``.

    Columns: window_start, feature, rows, null_rate. Raises InvalidInputError for an unknown window.
    """
    return vstore.null_rates_frame(con, log, check_window(window), start, end)


__all__ = [
    "ValidationReport",
    "anomalies",
    "null_rates",
    "reports",
    "skew",
    "validate_batch",
    "validate_frame",
    "validate_window",
    "validate_windows",
]

"""Ingest: append a batch of logged predictions, or of late labels, all or nothing.

``ingest_predictions(model, source)`` / ``ingest_labels(model, source)`` take a CSV or
Parquet path or a DataFrame. Prediction batches hold ``request_id``, ``timestamp``
(or ``ts``), every feature of the model and ``prediction``; optionally ``score``,
``version`` (default: the production version) and ``variant``. Label batches hold
``request_id`` and ``label`` (or the model's target column name), optionally
``timestamp``, the time the label arrived (default: now). Classification predictions
and labels are stored as class strings the way the registry stores classes (``0``/
``1``, ``1.0`` -> ``1``); times with a zone become naive UTC.

Every check runs in DuckDB SQL over the staged batch (see ``validation``): a Parquet
file is scanned by DuckDB directly, CSV files and DataFrames as Arrow tables.
A batch with a structural problem raises ``BatchRejectedError`` and writes nothing at
all. A valid batch is written in ONE transaction: the rows, the ``ingest_batches`` row,
its validation report and anomalies, a ``runs`` row (kind ``ingest``, succeeded, with
duration, row counts, the null rate of each feature and, for a binary classifier, the
positive rate of the predictions or labels) and an audit event. The caller's
``on_recorded(con, run_id)`` runs last in that transaction (the public API checks the run
for anomalies there, see ``monitoring.run_checks``).

Idempotence: each batch gets a fingerprint, the sha256 of (model, kind, the file's
bytes; for a DataFrame its column types and pandas row hashes), computed in a thread
while DuckDB runs the checks. Ingesting a batch whose fingerprint is already stored
writes nothing and says "already ingested on <date> as batch <id>; 0 rows written"
(exit 0). Any other batch that reuses stored request ids, including the same rows
re-saved in another format, is refused as a duplicate: a request is logged once.

Labels: a request id gets one label. A label batch that repeats a stored label with
the same value skips that row (reported, not an error); a different value for a stored
label refuses the batch, since a silently changed ground truth would rewrite history.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from mlops_core.config import lock_timeout_seconds
from mlops_core.data import batches
from mlops_core.entities import Anomaly, ModelInfo, RunAnomaly
from mlops_core.errors import BatchRejectedError
from mlops_core.store import Store, logs, utcnow
from mlops_core.store import runs as runstore
from mlops_core.store import validation as vstore


@dataclass
class IngestResult:
    """What one ingest call did."""

    batch_id: str | None
    model: str
    kind: str                      # predictions | labels | shadow
    rows: int
    rows_written: int
    already_ingested: bool
    report_id: int | None
    anomalies: list[Anomaly] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    source: str | None = None
    run_id: str | None = None
    ingested_at: datetime | None = None
    duration_s: float | None = None
    run_anomalies: list[RunAnomaly] = field(default_factory=list)  # what was unusual about the run


#: ``shadow``: predictions of a challenger in shadow mode (checked like predictions, kept apart; see ``store.logs``).
KINDS = ("predictions", "labels", "shadow")

#: Called with the write visit and the run's id once the run is recorded as succeeded, inside its transaction;
#: returns what it found unusual about the run.
RunRecorded = Callable[[duckdb.DuckDBPyConnection, str], list[RunAnomaly]]


def ingest(store: Store, info: ModelInfo, source, kind: str, *, actor: str,
           source_name: str | None = None, on_recorded: RunRecorded | None = None) -> IngestResult:
    """Validate a batch of ``kind`` (predictions, labels, or shadow: predictions of a challenger scored in
    shadow mode, checked like predictions and kept apart) for the model ``info`` and append it; return what
    happened.

    Predictions: raises BatchRejectedError (nothing written) for an unreadable or empty file,
    missing columns, wrong types, empty request ids or timestamps, duplicate request ids (in
    the batch or already stored) or an unknown version. Labels: the same for a missing
    ``request_id``/``label`` column, empty or duplicate request ids, request ids never
    logged, or a label that differs from one already stored. An exception of ``on_recorded`` rolls the
    whole batch back.
    """
    if kind not in KINDS:
        raise BatchRejectedError(f"Unknown batch kind {kind!r}; choose predictions or labels.", kind=kind)
    return _ingest(store, info, source, kind, actor=actor, source_name=source_name, on_recorded=on_recorded)


_executor = None


def _pool():
    """One worker thread that hashes batch files while DuckDB checks them."""
    global _executor  # noqa: PLW0603 - one hashing thread per process, started on first use
    if _executor is None:
        from concurrent.futures import ThreadPoolExecutor

        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-hash")
    return _executor


def _ingest(store: Store, info: ModelInfo, source, kind: str, *, actor: str, source_name: str | None,
            on_recorded: RunRecorded | None) -> IngestResult:
    t0 = time.perf_counter()
    started = utcnow()
    batch = batches.read_batch(source, what={"predictions": "prediction batch", "labels": "label batch"}.get(
        kind, f"{kind} batch"))
    name = source_name or batch.name
    hashing = _pool().submit(batches.fingerprint, source, info.name, kind)
    # One writer of a model's log at a time (across processes): a batch's duplicate checks and its commit must not
    # interleave with another batch's, or both could pass. Readers are never held up by it.
    with logs.writer_lock(store.logs, info.name, lock_timeout_seconds()):
        with store.connect() as meta:
            facts = batches.against(meta, store.logs, info, kind)
        with store.engine() as con:
            batch.stage(con)
            try:
                outcome = _check_and_write(store, con, facts, batch, kind, name, hashing)
            finally:
                vstore.unstage(con)
        if isinstance(outcome, IngestResult):  # already ingested
            outcome.duration_s = time.perf_counter() - t0
            return outcome
        check, files, fingerprint, batch_id, warnings = outcome
        try:
            with store.transaction() as meta:
                result = _record(meta, store, info, check, files, fingerprint, batch_id, warnings, kind, name,
                                 actor, started, t0)
                if on_recorded is not None:
                    result.run_anomalies = on_recorded(meta, result.run_id)
                return result
        except BaseException:
            logs.discard(store.logs, files)
            raise


def _check_and_write(store: Store, con, facts: batches.Against, batch, kind: str, name: str, hashing):
    """Check the staged batch on the log engine and write its rows as (not yet listed) Parquet files.

    Returns an IngestResult when the batch was ingested before, else (check, files, fingerprint, batch id,
    warnings). Raises BatchRejectedError with every structural problem; nothing is written then.
    """
    info = facts.info
    check = batches.check_labels(con, facts, batch) if kind == "labels" else \
        batches.check_predictions(con, facts, batch)
    fingerprint = hashing.result()
    if check.problems:
        raise BatchRejectedError(batches.rejection_message(name, check.problems), source=name,
                                 problems=[p.kind for p in check.problems])
    with store.connect() as meta:
        existing = vstore.find_batch(meta, info.name, kind, fingerprint)
    if existing is not None:
        when = existing.ingested_at
        note = f"already ingested on {when:%Y-%m-%d %H:%M:%S} UTC as batch {existing.batch_id}; 0 rows written"
        return IngestResult(existing.batch_id, info.name, kind, check.rows, 0, True, None, [], [note], name,
                            None, when)
    warnings = []
    if kind != "labels":
        problem = batches.stored_duplicates(con, facts, check)
    else:
        same, problem = batches.label_conflicts(con, facts, check)
        if same:
            warnings.append(f"{same} label{'s were' if same > 1 else ' was'} already stored with the same value; "
                            "skipped")
    if problem:
        raise BatchRejectedError(batches.rejection_message(name, [problem]), source=name, problems=[problem.kind])
    batch_id = uuid.uuid4().hex[:16]
    if kind != "labels":
        sql, params = vstore.prediction_rows(info, check.columns, batch_id)
    else:
        sql, params = vstore.label_rows(check.relation, facts.log.labels, batch_id, utcnow(), check.params)
    files = logs.write(con, store.logs, info, kind, sql, params, batch_id=batch_id,
                       predictions=facts.log.predictions if kind == "labels" else None)
    return check, files, fingerprint, batch_id, warnings


def _record(con, store: Store, info: ModelInfo, check, files, fingerprint: str, batch_id: str, warnings: list[str],
            kind: str, name: str, actor: str, started, t0: float) -> IngestResult:
    """In the metadata transaction: list the files, store the report, the batch, the run and the audit row."""
    now = utcnow()
    written = sum(f.rows for f in files)
    logs.register(con, files)
    logs.remove_orphans(con, store.logs, info.name)
    anomalies = check.anomalies
    warnings = [a.describe() for a in anomalies if a.severity != "info"] + \
               [f"note: {a.detail}" for a in anomalies if a.severity == "info"] + warnings
    status = batches.report_status(anomalies)
    # The report is dated by the data it describes (the batch's time span), not by when it was checked.
    spans = [t for f in files for t in (f.min_ts, f.max_ts) if t is not None]
    report_id = vstore.insert_report(
        con, model=info.name, batch_id=batch_id, source=name, at=now, rows=check.rows, status=status,
        summary=batches.report_summary(status, check.rows, anomalies), skew=None, anomalies=anomalies,
        window_start=min(spans) if spans else None, window_end=max(spans) if spans else None)
    vstore.insert_batch(con, batch_id=batch_id, model=info.name, kind=kind, source=name, fingerprint=fingerprint,
                        rows=check.rows, rows_written=written, actor=actor, at=now)
    run_id = runstore.insert_run(con, model=info.name, kind="ingest", trigger="manual" if actor == "cli" else "api",
                                 actor=actor, status="running", params={"source": name, "kind": kind, "batch_id": batch_id},
                                 created_at=started)
    finished = utcnow()
    duration = time.perf_counter() - t0
    statistics = {"rows": check.rows, "rows_written": written, "anomalies": len(anomalies), "batch_id": batch_id,
                  "report_id": report_id, "files": len(files)}
    if check.positive_rate is not None:
        statistics["positive_rate"] = check.positive_rate
    if check.null_rates:
        statistics["null_rates"] = check.null_rates
    runstore.update_run(con, run_id, status="succeeded", progress=1.0,
                        message=f"ingested {written} {kind} from {name}", statistics=statistics,
                        started_at=started, finished_at=finished, duration_s=duration)
    runstore.insert_audit(con, actor=actor, action=f"ingest_{kind}", model=info.name, run_id=run_id, at=finished,
                          reason=f"{written} {kind} from {name}",
                          details={"batch_id": batch_id, "rows": check.rows, "rows_written": written,
                                   "anomalies": len(anomalies), "report_id": report_id})
    return IngestResult(batch_id, info.name, kind, check.rows, written, False, report_id, anomalies, warnings, name,
                        run_id, now, duration)


__all__ = ["KINDS", "IngestResult", "ingest"]

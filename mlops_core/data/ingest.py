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
duration and row counts) and an audit event.

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

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from mlops_core.data import batches
from mlops_core.entities import Anomaly, ModelInfo
from mlops_core.errors import BatchRejectedError
from mlops_core.store import Store, transaction, utcnow
from mlops_core.store import runs as runstore
from mlops_core.store import validation as vstore


@dataclass
class IngestResult:
    """What one ingest call did."""

    batch_id: str | None
    model: str
    kind: str                      # predictions | labels
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


KINDS = ("predictions", "labels")


def ingest(store: Store, info: ModelInfo, source, kind: str, *, actor: str,
           source_name: str | None = None) -> IngestResult:
    """Validate a batch of ``kind`` (predictions or labels) for the model ``info`` and append it; return what
    happened.

    Predictions: raises BatchRejectedError (nothing written) for an unreadable or empty file,
    missing columns, wrong types, empty request ids or timestamps, duplicate request ids (in
    the batch or already stored) or an unknown version. Labels: the same for a missing
    ``request_id``/``label`` column, empty or duplicate request ids, request ids never
    logged, or a label that differs from one already stored.
    """
    if kind not in KINDS:
        raise BatchRejectedError(f"Unknown batch kind {kind!r}; choose predictions or labels.", kind=kind)
    return _ingest(store, info, source, kind, actor=actor, source_name=source_name)


_executor = None
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def _pool():
    """One worker thread that hashes batch files while DuckDB checks them."""
    global _executor
    if _executor is None:
        from concurrent.futures import ThreadPoolExecutor

        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-hash")
    return _executor


def _ingest(store: Store, info: ModelInfo, source, kind: str, *, actor: str, source_name: str | None) -> IngestResult:
    t0 = time.perf_counter()
    started = utcnow()
    table = batches.read_batch(source, what=f"{kind[:-1]} batch")
    name = source_name or table.name
    hashing = _pool().submit(batches.fingerprint, source, info.name, kind)
    # Threads of one process share the database; checks and insert of one batch must not interleave
    # with another's, or both could pass the duplicate check. (Other processes wait for the file lock.)
    with _lock_for(str(store.path)), store.connect() as con:
        table.stage(con)
        try:
            with transaction(con):
                return _checked_write(con, info, table, kind, name, actor, started, t0, hashing)
        finally:
            vstore.unstage(con)


def _checked_write(con, info, table, kind, name, actor, started, t0, hashing) -> IngestResult:
    if kind == "predictions":
        check = batches.check_predictions(con, info, table)
    else:
        check = batches.check_labels(con, info, table)
    fingerprint = hashing.result()
    if check.problems:
        raise BatchRejectedError(batches.rejection_message(name, check.problems), source=name,
                                 problems=[p.kind for p in check.problems])
    existing = vstore.find_batch(con, info.name, kind, fingerprint)
    if existing is not None:
        when = existing.ingested_at
        note = f"already ingested on {when:%Y-%m-%d %H:%M:%S} UTC as batch {existing.batch_id}; 0 rows written"
        return IngestResult(existing.batch_id, info.name, kind, check.rows, 0, True, None, [], [note], name,
                            None, when, time.perf_counter() - t0)
    warnings = []
    if kind == "predictions":
        problem = batches.stored_duplicates(con, info, check)
        if problem:
            raise BatchRejectedError(batches.rejection_message(name, [problem]), source=name,
                                     problems=[problem.kind])
    else:
        same, problem = batches.label_conflicts(con, info, check)
        if problem:
            raise BatchRejectedError(batches.rejection_message(name, [problem]), source=name,
                                     problems=[problem.kind])
        if same:
            warnings.append(f"{same} label{'s were' if same > 1 else ' was'} already stored with the same value; "
                            "skipped")

    batch_id = uuid.uuid4().hex[:16]
    now = utcnow()
    if kind == "predictions":
        written = vstore.insert_predictions(con, info, check.columns, batch_id)
    else:
        written = vstore.insert_labels(con, info, check.relation, batch_id, now, check.params)
    anomalies = check.anomalies
    warnings = [a.describe() for a in anomalies if a.severity != "info"] + \
               [f"note: {a.detail}" for a in anomalies if a.severity == "info"] + warnings
    status = batches.report_status(anomalies)
    report_id = vstore.insert_report(
        con, model=info.name, batch_id=batch_id, source=name, at=now, rows=check.rows, status=status,
        summary=batches.report_summary(status, check.rows, anomalies), skew=None, anomalies=anomalies)
    vstore.insert_batch(con, batch_id=batch_id, model=info.name, kind=kind, source=name, fingerprint=fingerprint,
                        rows=check.rows, rows_written=written, actor=actor, at=now)
    run_id = runstore.insert_run(con, model=info.name, kind="ingest", trigger="manual" if actor == "cli" else "api",
                                 actor=actor, status="running", params={"source": name, "kind": kind, "batch_id": batch_id},
                                 created_at=started)
    finished = utcnow()
    duration = time.perf_counter() - t0
    runstore.update_run(con, run_id, status="succeeded", progress=1.0,
                        message=f"ingested {written} {kind} from {name}",
                        statistics={"rows": check.rows, "rows_written": written, "anomalies": len(anomalies),
                                    "batch_id": batch_id, "report_id": report_id},
                        started_at=started, finished_at=finished, duration_s=duration)
    runstore.insert_audit(con, actor=actor, action=f"ingest_{kind}", model=info.name, run_id=run_id, at=finished,
                          reason=f"{written} {kind} from {name}",
                          details={"batch_id": batch_id, "rows": check.rows, "rows_written": written,
                                   "anomalies": len(anomalies), "report_id": report_id})
    return IngestResult(batch_id, info.name, kind, check.rows, written, False, report_id, anomalies, warnings, name,
                        run_id, now, duration)


__all__ = ["IngestResult", "ingest", "KINDS"]

"""The offline store: appending rows to a feature view, all or nothing, with the rules of prediction ingest.

``ingest(store, view, source)`` reads a file, folder, table or DataFrame (``sources``), checks it
against the view's definition on the log engine and appends it as Parquet files listed in the
metadata (``store.features``). The rules are those of prediction ingest:

- refused whole (BatchRejectedError, CLI exit 2, nothing written): an unreadable or empty source, a
  missing key, timestamp or feature column, values that are not of the declared type (the message
  names the column, the count and the first rows), an empty key or event time;
- noted, not refused: columns that are not part of the view (ignored), null feature values;
- idempotent: a batch whose fingerprint (sha256 of its bytes, see ``batches.fingerprint``) is stored
  writes nothing and says when it was ingested.

Rows are never updated in place. A row whose entity key and event time equal those of a stored row
(a correction, or a late copy) supersedes it: the stored row's ingest order is written to the
batch's ``superseded`` file, listed with the batch, and every reader leaves it out. Within one batch
the last of such rows wins. So "ties on equal event time are broken by the latest ingested" holds
for every reader, and the point-in-time join can be a plain ASOF JOIN. Late rows (ingested after
newer ones, with an older event time) are simply appended: event time, not ingest time, decides
what a point-in-time join sees.

One writer per view at a time (a lock file, across processes): the duplicate check against stored
rows and the commit must not interleave with another batch's. The files are written outside the
metadata lock and listed in one short transaction with the batch row, a run row (kind ``ingest``)
and an audit row.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

import pyarrow as pa

from mlops_core.clock import utcnow
from mlops_core.config import lock_timeout_seconds
from mlops_core.data import batches
from mlops_core.entities import FeatureIngestResult, FeatureViewDef
from mlops_core.errors import BatchRejectedError, InvalidInputError
from mlops_core.features import sources
from mlops_core.store import Store, logs
from mlops_core.store import feature_queries as fqueries
from mlops_core.store import features as fstore
from mlops_core.store import runs as runstore
from mlops_core.store import validation as vstore
from mlops_core.store.logs import WrittenFile


def count_bad_values(con, view: FeatureViewDef, types: dict[str, pa.DataType]) -> list[tuple[str, int, str]]:
    """(source column, count, what the values must be) of the staged batch's values that are not of the view's
    types, or empty keys and event times; ``con``: the log engine with the batch staged."""
    check = fqueries.check_batch(con, view, types)
    what = {c.name: c.what for c in check.columns}
    return [(t.source or t.column, int(check.counts.failed.get(t.key) or 0),
             what[t.column] if t.kind == "bad" else "empty")
            for t in check.tests if check.counts.failed.get(t.key)]


def _check(con, view: FeatureViewDef, batch: batches.Batch, name: str) -> tuple[int, list[str]]:
    """(rows, notes) of the staged batch; raises BatchRejectedError with every structural problem."""
    types = dict(batch.types)
    needed = [*view.key_names, view.timestamp, *view.feature_names]
    missing = batches.missing_columns(set(types), needed, f"batch of view {view.name!r}")
    if missing:
        raise BatchRejectedError(batches.rejection_message(name, [missing]), source=name, problems=[missing.kind])
    check = fqueries.check_batch(con, view, types)
    problems = batches.failed_tests(con, check.tests, check.counts, check.columns, {})
    if problems:
        raise BatchRejectedError(batches.rejection_message(name, problems), source=name,
                                 problems=[p.kind for p in problems])
    extra = [c for c in types if c not in needed]
    notes = [f"column(s) {', '.join(map(repr, extra))} are not part of view {view.name!r}; ignored"] if extra else []
    return check.counts.rows, notes


def ingest(store: Store, view_name: str, source: Any = None, *, actor: str,
           source_name: str | None = None) -> FeatureIngestResult:
    """Check a batch of rows of the view ``view_name`` and append it; return what happened.

    ``source``: a path (file or folder), a FeatureSource, a DataFrame or an Arrow table; None reads the
    view's defined source. Raises NotFoundError (view), InvalidInputError (no source), BatchRejectedError.
    """
    t0, started = time.perf_counter(), utcnow()
    with store.connect() as con:
        view = fstore.get_view(con, view_name)
    if source is None:
        if view.source is None:
            raise InvalidInputError(f"View {view.name!r} has no source; give the file to ingest.", view=view.name)
        source = view.source
    rows = sources.read_rows(source)
    name = source_name or rows.name
    fingerprint = batches.fingerprint(rows.fingerprint_of, f"view={view.name}", "features")
    root = store.logs
    with logs.writer_lock(root, f"view={view.name}", lock_timeout_seconds(), what=f"the feature view {view.name!r}"):
        with store.connect() as con:
            seq = fstore.next_batch_seq(con, view.name)
            existing = fstore.find_batch(con, view.name, fingerprint)
        if existing is not None:
            note = (f"already ingested on {existing.ingested_at:%Y-%m-%d %H:%M:%S} UTC as batch {existing.batch_id}; "
                    "0 rows written")
            return FeatureIngestResult(view.name, existing.batch_id, existing.rows, 0, 0, True, notes=[note],
                                       source=name, ingested_at=existing.ingested_at,
                                       duration_s=time.perf_counter() - t0)
        batch_id = uuid.uuid4().hex[:16]
        with store.engine() as eng:
            rows.batch.stage(eng)
            try:
                n, notes = _check(eng, view, rows.batch, name)
                written, superseded, gone, dropped = _write(store, eng, view, rows.batch, seq=seq, batch_id=batch_id)
            finally:
                vstore.unstage(eng)
                fqueries.drop_batch(eng)
        if dropped:
            notes.append(f"{dropped} row(s) repeat an entity key and event time of a later row of the batch; the "
                         "later row was kept")
        if gone:
            notes.append(f"{gone} stored row(s) had the same entity key and event time as a row of this batch; the "
                         "new rows replace them")
        all_files = written + ([superseded] if superseded else [])
        try:
            with store.transaction() as con:
                now = utcnow()
                fstore.record_batch(con, view=view.name, batch_id=batch_id, seq=seq, source=name,
                                    fingerprint=fingerprint, rows=n, files=written, superseded=superseded,
                                    superseded_rows=gone, actor=actor, at=now)
                rows_written = sum(f.rows for f in written)
                spans = [t for f in written for t in (f.min_ts, f.max_ts) if t is not None]
                run_id = runstore.insert_run(con, model=None, kind="ingest", trigger="api", actor=actor,
                                             status="running", created_at=started,
                                             params={"view": view.name, "source": name, "batch_id": batch_id})
                duration = time.perf_counter() - t0
                runstore.update_run(con, run_id, status="succeeded", progress=1.0,
                                    message=f"ingested {rows_written} rows of feature view {view.name} from {name}",
                                    statistics={"view": view.name, "rows": n, "rows_written": rows_written,
                                                "superseded": gone, "files": len(written), "batch_id": batch_id},
                                    started_at=started, finished_at=now, duration_s=duration)
                runstore.insert_audit(con, actor=actor, action="ingest_features", model=None, run_id=run_id, at=now,
                                      reason=f"{rows_written} rows of feature view {view.name} from {name}",
                                      details={"view": view.name, "batch_id": batch_id, "rows": n,
                                               "rows_written": rows_written, "superseded": gone})
        except BaseException:
            logs.discard(root, all_files)
            raise
    return FeatureIngestResult(view.name, batch_id, n, rows_written, gone, False, min(spans) if spans else None,
                               max(spans) if spans else None, notes, name, run_id, now, duration)


def _write(store: Store, eng, view: FeatureViewDef, batch: batches.Batch, *, seq: int,
           batch_id: str) -> tuple[list[WrittenFile], WrittenFile | None, int, int]:
    """Write the staged batch's rows (the last of rows sharing a key and event time) and the orders of the stored
    rows they supersede; return (row files, superseded file or None, superseded count, rows dropped in the batch).
    The files are not listed yet."""
    root = store.logs
    kept, lo, hi = fqueries.keep_latest_batch_rows(eng, view, dict(batch.types), seq=seq, batch_id=batch_id)
    dropped = batch.num_rows - kept
    with store.connect() as con:
        stored = fqueries.view_rows(con, root, view, lo, hi)
    superseded, gone = None, 0
    if stored.files:
        gone = fqueries.count_superseded(eng, stored)
        if gone:
            folder = fstore.view_folder(root, view.name) / "superseded"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{batch_id}.parquet"
            fqueries.write_superseded(eng, stored, path)
            superseded = WrittenFile(str(path.relative_to(root)), None, gone, None, None, path.stat().st_size)
    try:
        written = fqueries.write_batch(eng, root, fstore.view_folder(root, view.name), view, batch_id=batch_id)
    except BaseException:
        if superseded is not None:
            logs.discard(root, [superseded])
        raise
    return written, superseded, gone, dropped

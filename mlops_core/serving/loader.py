"""The loader: moves sealed spool segments into the prediction log, in the background, through ingest.

Each pass (``run_once``) seals the open segments of dead writers (``spool.seal_orphans``), then, when
the sealed segments hold ``batch_rows`` rows or the oldest is ``max_delay_s`` old (or when draining),
combines them in name order into one Parquet file per kind (the served ``predictions`` and the
``shadow`` rows) and ingests each with ``data.ingest.ingest``: the same validation, all-or-nothing
write and idempotence as ``mlops ingest``. Only when every kind is in the log are the segments deleted.

Idempotence: a pass that died after its ingest committed but before it deleted the segments is
repeated by the next pass with the same segments, whose Parquet file has the same bytes and thus the
same fingerprint: ingest answers "already ingested" and writes nothing. When more segments came in
meanwhile, the file differs and ingest refuses it for its stored request ids; the loader then drops
the rows already in the log (counted as ``already_logged``) and ingests the rest.

A batch refused for any other reason (it should not happen: the service builds the rows itself) is
moved to ``rejected/`` beside the segments with a text file saying why, and counted in
``rows_rejected``; a busy database is retried on the next pass. The loader never touches the
serving path: requests are answered while it ingests.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlops_core.data import ingest as ingestmod
from mlops_core.entities import ModelInfo
from mlops_core.errors import BatchRejectedError, MlopsError
from mlops_core.lifecycle import deployments
from mlops_core.serving import spool as spoolmod
from mlops_core.store import Store, logs
from mlops_core.store import predictions as pstore

log = logging.getLogger("mlops.serving")

#: Load when the sealed segments hold this many rows, or when the oldest is this old (seconds).
BATCH_ROWS = 5000
MAX_DELAY_S = 5.0
#: At most this many rows go into one ingest (a backlog is loaded in several).
MAX_BATCH_ROWS = 100_000
POLL_S = 0.5


@dataclass
class LoaderStats:
    """What a loader has done since it started."""

    rows_loaded: int = 0
    shadow_rows_loaded: int = 0
    batches: int = 0
    rows_already_logged: int = 0
    rows_rejected: int = 0
    errors: int = 0
    last_error: str | None = None
    last_batch_seconds: float | None = None


@dataclass
class Pass:
    """What one loader pass did: segments moved into the log and the rows of each kind written."""

    segments: int = 0
    rows: int = 0
    shadow_rows: int = 0


class Loader:
    """Moves the sealed segments of one model's spool folder into its log (see the module docstring)."""

    def __init__(self, store: Store, info: ModelInfo, folder: Path, *, actor: str, spool: spoolmod.Spool | None = None,
                 batch_rows: int = BATCH_ROWS, max_delay_s: float = MAX_DELAY_S, poll_s: float = POLL_S):
        self.store, self.info, self.folder = store, info, Path(folder)
        self.actor, self.spool = actor, spool
        self.batch_rows, self.max_delay_s, self.poll_s = int(batch_rows), float(max_delay_s), float(poll_s)
        self.stats = LoaderStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pass_lock = threading.Lock()

    # --- one pass ---------------------------------------------------------------------------------

    def sealed(self) -> list[Path]:
        return sorted(self.folder.glob(f"*{spoolmod.SEALED}"))

    def backlog(self) -> int:
        """Rows sealed but not loaded yet."""
        return sum(t.num_rows for t in (spoolmod.read_segment(p) for p in self.sealed()) if t is not None)

    def run_once(self, *, force: bool = False) -> Pass:
        """One pass (see the module docstring); ``force`` loads whatever is sealed, however little. Raises
        MlopsError when the database stays busy (the segments stay for the next pass)."""
        with self._pass_lock:
            if self.spool is not None:
                self.spool.seal_if_due()
            spoolmod.seal_orphans(self.folder, self.spool.prefix if self.spool is not None else None)
            paths = self.sealed()
            if not paths:
                return Pass()
            tables, chosen, rows = [], [], 0
            for p in paths:
                t = spoolmod.read_segment(p)
                if t is None or t.num_rows == 0:
                    p.unlink(missing_ok=True)  # an empty or unreadable stub of a writer that died at once
                    continue
                if chosen and rows + t.num_rows > MAX_BATCH_ROWS:
                    break
                tables.append(t)
                chosen.append(p)
                rows += t.num_rows
            if not chosen:
                return Pass()
            oldest = min(p.stat().st_mtime for p in chosen)
            if not force and rows < self.batch_rows and time.time() - oldest < self.max_delay_s:
                return Pass()
            return self._load(chosen, pa.concat_tables(tables))

    def _load(self, paths: list[Path], table: pa.Table) -> Pass:
        started = time.perf_counter()
        is_shadow = pc.fill_null(pc.equal(table["variant"], deployments.SHADOW), False)
        served, shadow = table.filter(pc.invert(is_shadow)), table.filter(is_shadow)
        name = f"spool {paths[0].stem}" + (f"..{paths[-1].stem}" if len(paths) > 1 else "")
        done = Pass(segments=len(paths))
        for kind, part in (("predictions", served), ("shadow", shadow)):
            if part.num_rows:
                written = self._ingest(part, kind, f"{name} ({len(paths)} segment{'s' if len(paths) > 1 else ''})",
                                       paths[0].stem)
                if kind == "predictions":
                    done.rows += written
                else:
                    done.shadow_rows += written
        for p in paths:
            p.unlink(missing_ok=True)
        self.stats.rows_loaded += done.rows
        self.stats.shadow_rows_loaded += done.shadow_rows
        self.stats.batches += 1
        self.stats.last_batch_seconds = time.perf_counter() - started
        return done

    def _ingest(self, part: pa.Table, kind: str, source: str, stem: str) -> int:
        """Ingest ``part`` as ``kind``; return the rows written (see the module docstring for refusals)."""
        work = self.folder / "loading"
        work.mkdir(exist_ok=True)
        path = work / f"{stem}.{kind}.{os.getpid()}.parquet"  # two loaders of one folder never share a file
        try:
            pq.write_table(part, path, compression="zstd")
            try:
                result = ingestmod.ingest(self.store, self.info, path, kind, actor=self.actor, source_name=source)
            except BatchRejectedError as exc:
                if set(exc.details.get("problems") or []) != {"duplicate_of_stored"}:
                    self._reject(part, kind, stem, str(exc))
                    return 0
                rest = self._without_stored(part, kind)
                if rest.num_rows == 0:
                    return 0
                pq.write_table(rest, path, compression="zstd")
                result = ingestmod.ingest(self.store, self.info, path, kind, actor=self.actor,
                                          source_name=f"{source}, rows not yet logged")
            return result.rows_written
        finally:
            path.unlink(missing_ok=True)

    def _without_stored(self, part: pa.Table, kind: str) -> pa.Table:
        with self.store.connect() as con:
            view = logs.view(con, self.store.logs, self.info, kinds=(kind,))
        with self.store.engine() as con:
            stored = pstore.stored_request_ids(con, view, part["request_id"])
        self.stats.rows_already_logged += len(stored)
        keep = pc.invert(pc.is_in(part["request_id"], value_set=pa.array(sorted(stored), type=pa.string())))
        return part.filter(keep)

    def _reject(self, part: pa.Table, kind: str, stem: str, why: str) -> None:
        folder = self.folder / "rejected"
        folder.mkdir(exist_ok=True)
        pq.write_table(part, folder / f"{stem}.{kind}.parquet", compression="zstd")
        (folder / f"{stem}.{kind}.txt").write_text(why + "\n")
        self.stats.rows_rejected += part.num_rows
        log.error("spool batch %s (%s) refused and moved to %s: %s", stem, kind, folder, why)

    def drain(self, timeout: float = 60.0) -> Pass:
        """Load every sealed segment now (after a clean stop sealed the open one); return the total.
        Raises MlopsError when the log cannot be written before ``timeout``."""
        total = Pass()
        deadline = time.monotonic() + timeout
        while self.sealed():
            try:
                step = self.run_once(force=True)
            except MlopsError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
                continue
            total.segments += step.segments
            total.rows += step.rows
            total.shadow_rows += step.shadow_rows
        return total

    # --- in the background ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001  (the loader retries on its next pass; it must not die)
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.error("loading the spool of %s: %s", self.info.name, self.stats.last_error)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"loader-{self.info.name}", daemon=True)
        self._thread.start()

    def stop(self, *, drain: bool = True, timeout: float = 60.0) -> Pass:
        """Stop the background passes; with ``drain`` seal the spool and load everything left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        if not drain:
            return Pass()
        if self.spool is not None:
            self.spool.close()
        return self.drain(timeout)

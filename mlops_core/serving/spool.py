"""The local spool: scored rows are appended to files on the serving path, never to the database.

The service appends every scored batch to the **open segment** of its spool folder before it answers
(an Arrow IPC stream, ``<pid>-<start>-<seq>.open``: one record batch per scored batch, written with
plain ``write`` calls, so a row is in the operating system's hands once its request is answered). A
segment is **sealed** (renamed ``.arrows``) when it holds ``segment_rows`` rows or is
``segment_seconds`` old, and at a clean stop. The loader (``serving.loader``) moves sealed segments
into the log; it also seals the open segment of a process that died (``kill -9``), reading every whole
record batch in it.

What a crash can lose: the rows of a batch whose write was under way when the process died, whose
requests were not answered (not acknowledged). Every answered request's row is in a segment file.
``segment_rows`` (default 1,000) bounds what a crash can leave unsealed, and so how far the log can
lag behind the answers until the next start; a disk failure before the loader ran loses the
unloaded segments.

The spool folder is ``<database>_spool/<model>/`` beside the database (``$MLOPS_SPOOL_DIR`` moves the
root). Appending takes a lock held for the length of one write (microseconds); reading segments
needs none.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from mlops_core.entities import ModelInfo
from mlops_core.serving.scorer import log_schema

OPEN, SEALED = ".open", ".arrows"
#: Rotation: a segment is sealed at this many rows or this age (seconds), whichever comes first.
SEGMENT_ROWS = 1000
SEGMENT_SECONDS = 5.0


def spool_dir(db_path: str | os.PathLike | None, model: str, *, artifacts: Path | None = None) -> Path:
    """The spool folder of ``model`` for the database at ``db_path`` (``$MLOPS_SPOOL_DIR`` overrides the root);
    a store with no file (metadata on PostgreSQL: ``db_path`` None) spools into ``spool/`` beside its
    ``artifacts`` folder."""
    root = os.environ.get("MLOPS_SPOOL_DIR")
    if root:
        return Path(root).expanduser().resolve() / model
    if db_path is None:
        if artifacts is None:
            raise ValueError("spool_dir needs the database path or the artifacts folder")
        return artifacts.parent / "spool" / model
    p = Path(db_path)
    return p.parent / f"{p.stem}_spool" / model


def pid_of(path: Path) -> int | None:
    """The id of the process that wrote a segment (from its name), or None."""
    head = path.name.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class SpoolStats:
    """What a spool has taken in since it was opened."""

    rows: int = 0
    segments_sealed: int = 0


class Spool:
    """The open segment of one serving process (see the module docstring); thread-safe."""

    def __init__(self, folder: Path, info: ModelInfo, *, segment_rows: int = SEGMENT_ROWS,
                 segment_seconds: float = SEGMENT_SECONDS):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.schema = log_schema(info)
        self.segment_rows, self.segment_seconds = int(segment_rows), float(segment_seconds)
        self.stats = SpoolStats()
        self._lock = threading.Lock()
        self._seq = 0
        self._stamp = time.time_ns() // 1000
        self._path: Path | None = None
        self._sink = None
        self._writer = None
        self._rows = 0
        self._opened = 0.0
        self._closed = False

    @property
    def prefix(self) -> str:
        """The name prefix of this spool's segments (``<pid>-<start>-``)."""
        return f"{os.getpid()}-{self._stamp}-"

    def _open(self) -> None:
        self._seq += 1
        self._path = self.folder / f"{self.prefix}{self._seq:06d}{OPEN}"
        self._sink = pa.OSFile(str(self._path), "wb")
        self._writer = pa.ipc.new_stream(self._sink, self.schema)
        self._rows = 0
        self._opened = time.monotonic()

    def _seal(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._sink.close()
        path, self._writer, self._sink, self._path = self._path, None, None, None
        if self._rows:
            path.rename(path.with_suffix(SEALED))
            self.stats.segments_sealed += 1
        else:
            path.unlink(missing_ok=True)

    def append(self, table: pa.Table) -> None:
        """Write ``table`` (rows of ``scorer.log_schema``) to the open segment; seal it when it is full."""
        if table.num_rows == 0:
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("the spool is closed")
            if self._writer is None:
                self._open()
            self._writer.write_table(table)
            self._rows += table.num_rows
            self.stats.rows += table.num_rows
            if self._rows >= self.segment_rows:
                self._seal()

    def seal_if_due(self) -> bool:
        """Seal the open segment when it is older than ``segment_seconds``; return whether it did."""
        with self._lock:
            if self._writer is not None and time.monotonic() - self._opened >= self.segment_seconds:
                self._seal()
                return True
            return False

    def seal(self) -> None:
        """Seal the open segment now (it is picked up by the loader's next pass)."""
        with self._lock:
            self._seal()

    def close(self) -> None:
        """Seal the open segment and refuse further rows (a clean stop)."""
        with self._lock:
            self._seal()
            self._closed = True


def read_segment(path: Path) -> pa.Table | None:
    """Every whole record batch of a segment (a torn last batch of a crashed writer is left out); None when the
    file holds no readable stream at all."""
    try:
        reader = pa.ipc.open_stream(pa.memory_map(str(path)))
    except (pa.ArrowInvalid, OSError):
        return None
    batches = []
    while True:
        try:
            batches.append(reader.read_next_batch())
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError):  # the torn end of a segment whose writer died mid-write
            break
    return pa.Table.from_batches(batches, schema=reader.schema)


def seal_orphans(folder: Path, live_prefix: str | None = None) -> list[Path]:
    """Seal the open segments of writers that are gone (a process killed while serving); return the sealed paths.

    ``live_prefix``: the name prefix of this process's own spool (``Spool.prefix``), whose open segment is in use.
    A segment of this process id under another prefix is from an earlier process that had the same id."""
    sealed = []
    for path in sorted(Path(folder).glob(f"*{OPEN}")):
        pid = pid_of(path)
        if pid is None or (live_prefix and path.name.startswith(live_prefix)):
            continue
        if pid != os.getpid() and process_alive(pid):
            continue
        target = path.with_suffix(SEALED)
        try:
            path.rename(target)
        except FileNotFoundError:
            continue
        sealed.append(target)
    return sealed

"""Opening the metadata database: short visits, readers in parallel, writers first, migrations; the log engine.

DuckDB lets many processes open a database file read-only at once, but a process that
opens it for writing excludes every other. So every operation opens the file for the
length of one visit (``connect()`` is a context manager) and in the mode it needs:
read-only for reads (many processes at once), read-write for writes (one at a time).
Writes are short (the big data, the prediction logs, live in Parquet files outside this
file, see ``logs``), so a reader waits for a write visit, never for an ingest.

Fair turns between processes: a lock file beside the database (``<name>.duckdb.lock``)
holds two POSIX record locks, a *gate* and the *room*. A writer takes the gate, then the
room exclusively, then lets go of the gate; a reader passes the gate (taking and
releasing it), then takes the room shared. A waiting writer thus holds the gate, new
readers queue behind it, and the writer gets in as soon as the readers already inside
leave: readers cannot starve a writer. A reader therefore waits at most for the visits that
were inside when a writer arrived plus the writer's own visit. Waiting is polling: a try is one
system call, and the sleeps between tries stay short (``TURN_POLL_S``) because everyone queued
behind a waiter also waits for it to notice its turn. Anyone who waits longer than
``MLOPS_LOCK_TIMEOUT`` seconds (default 30) gets ``DatabaseBusyError``; ``turn_wait_seconds()``
says how long the calling thread has waited so far. A process's first visit (every CLI command's)
checks the schema and looks for dead jobs on a read visit, and writes only when it finds work.

Inside one process all visits share one in-memory DuckDB instance, built once: the file
is ATTACHed to it (read-only or read-write) when the first visit opens it and DETACHed
(checkpointed, locks released) when the last one closes; a visit that needs to write
while the file is attached read-only waits for the readers of this process to leave,
then reattaches it read-write. Threads (Streamlit sessions, a job's threads) share the
attachment. The same instance, without any file attached, is the *log engine*
(``engine()``): it scans the Parquet prediction logs and holds no lock on the database.

A ``Store`` whose location is a PostgreSQL URL keeps the metadata there instead (see
``postgres``): the same visits, the same SQL, no file and no lock file; the log engine is the
same in-memory DuckDB instance over the same Parquet files.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from mlops_core.config import engine_memory_limit, lock_timeout_seconds, redact_url, resolve_db_path, resolve_location
from mlops_core.errors import DatabaseBusyError, InvalidInputError, MlopsError, NotFoundError, storage_error

_instance_lock = threading.Lock()
_instance: duckdb.DuckDBPyConnection | None = None  # the process's in-memory instance (its first connection)

GATE, ROOM = 0, 1  # byte offsets of the two record locks in the lock file


def _engine() -> duckdb.DuckDBPyConnection:
    """The process's in-memory DuckDB instance (built on first use)."""
    global _instance  # noqa: PLW0603 - one in-memory engine per process, built on first use
    with _instance_lock:
        if _instance is None:
            # Spills of big sorts and joins go to the system's temporary folder (an in-memory instance would use
            # ".tmp" in whatever folder the process was started from).
            spill = os.path.join(tempfile.gettempdir(), f"mlops-duckdb-{os.getpid()}")
            config = {"temp_directory": spill}
            limit = engine_memory_limit()
            if limit:
                config["memory_limit"] = limit
            try:
                _instance = duckdb.connect(config=config)
            except duckdb.Error as exc:
                raise InvalidInputError(f"MLOPS_ENGINE_MEMORY={limit!r} is not a memory size DuckDB accepts "
                                        f"(e.g. 400MB, 2GB): {exc}") from exc
        return _instance


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("could not set lock" in text or "conflicting lock" in text
                               or "resource temporarily unavailable" in text)


class _Busy(Exception):
    """Another process holds what we need; try again."""


#: Polling steps of a wait for a turn (first, longest): a record lock costs one system call to try, and a waiter
#: that sleeps long after the turn came free keeps every process queued behind it waiting as well.
TURN_POLL_S = (0.001, 0.01)
#: Polling steps of a wait to open the file itself (another program holds DuckDB's own lock): each try is an ATTACH.
OPEN_POLL_S = (0.005, 0.25)


def _backoff(what: str, path: Path, deadline: float, step, poll: tuple[float, float]) -> object:
    """Call ``step()`` until it stops raising _Busy (or a DuckDB lock error), sleeping from ``poll[0]`` doubling to
    ``poll[1]`` (jittered) between tries; raise DatabaseBusyError at ``deadline``."""
    delay, longest = poll
    last: Exception | None = None
    while True:
        try:
            return step()
        except _Busy as exc:
            last = exc
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise storage_error(exc, f"opening database {path}") from exc
            last = exc
        if time.monotonic() >= deadline:
            raise DatabaseBusyError(
                f"Database {path} is held by another process (waited {lock_timeout_seconds():.0f} s to {what}). "
                "Wait for the other command to finish, or raise MLOPS_LOCK_TIMEOUT.", path=str(path)) from last
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, longest)


@dataclass
class _Attachment:
    """One database file in this process: how it is attached and who uses it."""

    path: Path
    alias: str
    mode: str | None = None  # None (detached), "attaching", "read" or "write"
    users: int = 0
    lock_fd: int | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)
    ready: threading.Event = field(default_factory=threading.Event)  # migrated in this process
    init: threading.Lock = field(default_factory=threading.Lock)


_files: dict[str, _Attachment] = {}
_files_lock = threading.Lock()
_waited = threading.local()  # seconds each thread has waited for turns (see turn_wait_seconds)


def turn_wait_seconds() -> float:
    """Seconds the calling thread has spent so far waiting for its turn at a database: behind a writer (or, to
    write, behind the visits already under way), in this process or another. Take the difference around an
    operation to see how long it waited; the rest of its time was its own work."""
    return getattr(_waited, "seconds", 0.0)


def _count_wait(since: float) -> None:
    _waited.seconds = turn_wait_seconds() + (time.monotonic() - since)


def _attachment(path: Path) -> _Attachment:
    key = os.path.realpath(path)
    with _files_lock:
        att = _files.get(key)
        if att is None:
            alias = "db_" + hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:16]
            att = _files[key] = _Attachment(Path(key), alias)
        return att


def _lock_file(path: Path) -> int | None:
    """Open the lock file beside the database (None when its folder is read-only: no coordination possible)."""
    try:
        return os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            return None
        raise


def _try_lock(fd: int, offset: int, exclusive: bool) -> None:
    try:
        fcntl.lockf(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB, 1, offset)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            raise _Busy() from exc
        raise


def _unlock(fd: int, offset: int) -> None:
    fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset)


def _enter(att: _Attachment, write: bool, deadline: float) -> None:
    """Take this process's turn (the record locks) and attach the file in the mode asked for."""
    fd = _lock_file(att.path)
    if fd is not None:
        since = time.monotonic()
        try:
            _backoff("pass the gate", att.path, deadline, lambda: _try_lock(fd, GATE, True), TURN_POLL_S)
            try:
                _backoff("get a turn", att.path, deadline, lambda: _try_lock(fd, ROOM, write), TURN_POLL_S)
            finally:
                _unlock(fd, GATE)
        except BaseException:
            os.close(fd)
            raise
        finally:
            _count_wait(since)
    quoted = str(att.path).replace("'", "''")
    mode = "" if write else " (READ_ONLY)"
    try:
        _backoff("open it", att.path, deadline, lambda: _engine().execute(f"ATTACH '{quoted}' AS {att.alias}{mode}"),
                 OPEN_POLL_S)
    except BaseException:
        if fd is not None:
            os.close(fd)  # closing the file releases its record locks
        raise
    att.lock_fd = fd


def _leave(att: _Attachment) -> None:
    """Detach the file (checkpointing it when it was written) and release this process's turn."""
    try:
        _engine().execute(f"DETACH {att.alias}")
    finally:
        if att.lock_fd is not None:
            os.close(att.lock_fd)
            att.lock_fd = None


def _writable(path: Path) -> bool:
    return (not path.exists() or os.access(path, os.W_OK)) and os.access(path.parent, os.W_OK)


def _open(att: _Attachment, write: bool) -> duckdb.DuckDBPyConnection:
    """A new cursor using the file attached in a mode that allows ``write`` (attaching or reattaching it)."""
    deadline = time.monotonic() + lock_timeout_seconds()
    with att.cond:
        while True:
            if att.mode == "write" or (att.mode == "read" and not write):
                att.users += 1
                break
            if att.mode is None or (att.mode == "read" and att.users == 0):
                if att.mode == "read":
                    _leave(att)
                att.mode = "attaching"
                try:
                    _enter(att, write, deadline)
                except BaseException:
                    att.mode = None
                    att.cond.notify_all()
                    raise
                att.mode, att.users = ("write" if write else "read"), 1
                att.cond.notify_all()
                break
            since = time.monotonic()
            woken = att.cond.wait(timeout=max(0.0, deadline - time.monotonic()))
            _count_wait(since)
            if not woken:
                raise DatabaseBusyError(f"Database {att.path} is busy in this process (waited "
                                        f"{lock_timeout_seconds():.0f} s).", path=str(att.path))
    try:
        con = _engine().cursor()
        con.execute(f"USE {att.alias}")
        # No progress bar: a long query must not print to the dashboard server's or a cron job's console.
        con.execute("SET enable_progress_bar = false")
    except BaseException:
        _close(att, None)
        raise
    return con


def _close(att: _Attachment, con: duckdb.DuckDBPyConnection | None) -> None:
    try:
        if con is not None:
            con.close()
    finally:
        with att.cond:
            att.users -= 1
            if att.users == 0:
                try:
                    _leave(att)
                finally:
                    att.mode = None
                    att.cond.notify_all()


def _first_open(att: _Attachment) -> None:
    """Once per process and database: apply pending migrations, then mark jobs whose process died as failed.

    A read visit looks first; the write visit (which excludes every other process for its length) happens only
    when a migration is pending or a dead job needs reaping, so a read-only command never waits for the writer's
    turn. A database this process may not write is checked instead: it must already be at the latest schema.
    """
    from mlops_core.store import jobs
    from mlops_core.store.migrations import available, current_version, migrate, pending

    writable = _writable(att.path)
    con = _open(att, write=False) if att.path.exists() else None
    try:
        if con is not None:
            todo = pending(con)
            if not writable and todo:
                raise MlopsError(
                    f"Database {att.path} is read-only here and needs an upgrade to schema "
                    f"{available()[-1][0]:03d} (it is at {current_version(con):03d}); open it once with write access.",
                    path=str(att.path))
            if not writable or (not todo and not _has_dead_jobs(con, jobs)):
                return
    finally:
        if con is not None:
            _close(att, con)
    con = _open(att, write=True)
    try:
        migrate(con, att.path)
        try:
            jobs.reap_dead_runs(con)
        except duckdb.Error:  # a database written by another tool may lack the runs table: never block opening it
            pass
    finally:
        _close(att, con)


def _has_dead_jobs(con: duckdb.DuckDBPyConnection, jobs) -> bool:
    """Whether a queued or running job of the database has lost its process (False when there is no runs table)."""
    try:
        return jobs.any_dead(con)
    except duckdb.Error:
        return False


def connect(db: str | os.PathLike | None = None, *, create: bool = False, write: bool = False):
    """A visit of the metadata at ``db`` (a context manager yielding a connection, migrated to the latest schema).

    ``write``: the visit writes (one process at a time); else it only reads (many processes at once).
    ``create``: a missing database is created (implies ``write``); otherwise it raises NotFoundError.
    ``db`` follows ``config.resolve_location`` (a DuckDB file or a PostgreSQL URL). Raises DatabaseBusyError
    when another process holds the database past the lock timeout.
    """
    return Store(db).connect(create=create, write=write)


@contextmanager
def _connect_file(path: Path, *, create: bool = False, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A visit of the DuckDB file at ``path`` (see ``connect``)."""
    if path.exists() and path.is_dir():
        raise InvalidInputError(f"Database path {path} is a folder; give a file path such as {path / 'mlops.duckdb'}.")
    if not path.exists():
        if not create:
            raise NotFoundError(
                f"No database at {path}. Build the demo with `mlops demo --db {path}` or register a model first.",
                path=str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        write = True
    att = _attachment(path)
    if not att.ready.is_set():
        with att.init:
            if not att.ready.is_set():
                _first_open(att)
                att.ready.set()
    con = _open(att, write)
    try:
        yield con
    finally:
        _close(att, con)


@contextmanager
def engine() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor of the process's in-memory DuckDB instance with no database file in use: the log engine."""
    con = _engine().cursor()
    try:
        con.execute("USE memory")
        con.execute("SET enable_progress_bar = false")
        yield con
    finally:
        con.close()


def limit_threads(threads: int) -> None:
    """Let this process's DuckDB instance use at most ``threads`` threads (a process that serves requests keeps
    the other cores for them)."""
    _engine().execute(f"SET threads = {max(1, int(threads))}")


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A second connection on ``con``'s database (for another thread, or beside an unfinished result); close it
    before ``con``'s visit ends."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return con.cursor()  # a PostgreSQL visit: another cursor of the same session
    name = con.execute("SELECT current_database()").fetchone()[0]
    cur = con.cursor()
    cur.execute(f'USE "{name}"')
    cur.execute("SET enable_progress_bar = false")
    return cur


def database_path(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The file of the database ``con`` uses (None for the log engine and for a PostgreSQL visit)."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return None
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return Path(row[0]) if row and row[0] else None


def location_of(con: duckdb.DuckDBPyConnection) -> str | None:
    """Where the metadata ``con`` visits lives, as ``--db`` takes it: the DuckDB file's path or the PostgreSQL URL
    (None for the log engine)."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return con.url
    path = database_path(con)
    return str(path) if path else None


def artifacts_folder(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The artifacts folder of the metadata ``con`` visits (None for the log engine)."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return con.artifacts
    from mlops_core.config import artifacts_dir

    path = database_path(con)
    return artifacts_dir(path) if path else None


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction: commit on success, roll back on any exception."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")


def forget_database(db: str | os.PathLike) -> None:
    """Forget that ``db`` was migrated in this process (after the file was deleted or replaced)."""
    location = resolve_location(db)
    if isinstance(location, str):
        from mlops_core.store import postgres

        postgres.forget(location)
        return
    key = os.path.realpath(resolve_db_path(db))
    with _files_lock:
        att = _files.get(key)
        if att is not None and att.users == 0:
            del _files[key]


class Store:
    """One location's metadata database, prediction logs and artifacts folder.

    Built once from a location (a DuckDB file path or a PostgreSQL URL; ``None`` follows
    ``config.resolve_location``: ``$MLOPS_METADATA_URL``, ``$MLOPS_DB``, else ``./mlops.duckdb``) and
    handed to the domain functions that need more than one visit (a retrain job, a registration
    that trains between its visits). Every visit is a short ``connect()`` block; log analytics run
    on ``engine()`` over the Parquet files that ``logs`` lists.
    """

    def __init__(self, location: str | os.PathLike | None = None):
        resolved = resolve_location(location)
        #: The PostgreSQL URL of the metadata (None for a DuckDB file).
        self.url: str | None = resolved if isinstance(resolved, str) else None
        #: The DuckDB file of the metadata (None on PostgreSQL).
        self.path: Path | None = None if isinstance(resolved, str) else resolved

    @property
    def location(self) -> str:
        """What this store was built from, as a client passes it again (``--db``): the file path or the URL."""
        return self.url if self.url is not None else str(self.path)

    @property
    def display(self) -> str:
        """The location for messages (a URL without its password)."""
        return redact_url(self.url) if self.url is not None else str(self.path)

    @property
    def backend(self) -> str:
        """``duckdb`` or ``postgres``: where the metadata lives."""
        return "duckdb" if self.url is None else "postgres"

    @property
    def artifacts(self) -> Path:
        """The folder of model artifacts and job logs (``<name>_artifacts`` beside a DuckDB file;
        ``$MLOPS_ARTIFACTS_DIR`` or a folder per database under the user's data folder on PostgreSQL)."""
        from mlops_core.config import artifacts_dir

        return artifacts_dir(self.location)

    @property
    def logs(self) -> Path:
        """The folder of the Parquet prediction logs and labels (``<name>_logs`` beside a DuckDB file;
        ``$MLOPS_LOG_DIR`` overrides it, see ``config.logs_dir``)."""
        from mlops_core.config import logs_dir

        return logs_dir(self.location)

    def exists(self) -> bool:
        """Whether the metadata exists (the file; on PostgreSQL the schema the migrations make)."""
        if self.url is not None:
            from mlops_core.store import postgres

            return postgres.exists(self.url)
        return self.path.exists()

    def connect(self, *, create: bool = False, write: bool = False):
        """A short read visit (context manager yielding a connection); ``write`` for a visit that writes,
        ``create`` to make a missing database."""
        if self.url is not None:
            from mlops_core.store import postgres

            return postgres.connect(self.url, create=create, write=write, artifacts=self.artifacts, logs=self.logs)
        return _connect_file(self.path, create=create, write=write)

    @contextmanager
    def transaction(self, *, create: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short write visit whose statements commit together (or roll back on any exception)."""
        with self.connect(create=create, write=True) as con, transaction(con):
            yield con

    def engine(self):
        """The log engine (context manager yielding an in-memory DuckDB cursor that holds no database lock)."""
        return engine()

    def forget(self) -> None:
        """Forget that this database was migrated in this process (after it was deleted or replaced)."""
        forget_database(self.location)

    @contextmanager
    def kept_open(self) -> Iterator[None]:
        """Hold the database file attached to this process for the block (creating it when missing).

        Every visit inside the block then skips attaching the file and checkpointing it on the
        way out, which adds up over hundreds of short operations in a row. The file is held for
        writing, so other processes wait for it meanwhile. On PostgreSQL visits are cheap already
        (pooled connections): the block only creates the schema when missing and holds nothing.
        """
        if self.url is not None:
            with self.connect(create=True):
                pass
            yield
            return
        with _connect_file(self.path, create=True):
            yield

    def destroy(self) -> None:
        """Delete the metadata (the database file, its write-ahead log and lock file; on PostgreSQL the tables and
        sequences the migrations made, nothing else of the database), the prediction logs and the artifacts folder.

        Raises ConflictError while a visit of this process still has the database open for writing.
        """
        from mlops_core.errors import ConflictError

        if self.url is not None:
            from mlops_core.store import postgres

            postgres.drop_schema(self.url)
        else:
            with _files_lock:
                att = _files.get(os.path.realpath(self.path))
            if att is not None and att.mode is not None:
                raise ConflictError(f"Database {self.path} is still open in this process; close it before deleting "
                                    "it.", path=str(self.path))
            for p in (self.path, Path(str(self.path) + ".wal"), Path(str(self.path) + ".lock")):
                p.unlink(missing_ok=True)
        shutil.rmtree(self.artifacts, ignore_errors=True)
        shutil.rmtree(self.logs, ignore_errors=True)
        self.forget()

    def __repr__(self) -> str:
        return f"Store({self.display!r})"

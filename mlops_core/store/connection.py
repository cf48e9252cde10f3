"""Opening the DuckDB file: short-lived connections, retry on a foreign lock, migrations.

DuckDB lets one process at a time hold a database file for writing. The dashboard,
a cron ingest and a background retrain all use the same file, so every operation
opens a connection, does its work and closes it (``connect()`` is a context manager);
nothing holds the file while it trains a model or renders a page. When another
process holds the file, we retry with backoff for ``MLOPS_LOCK_TIMEOUT`` seconds
(default 30) and then raise ``DatabaseBusyError``.

Inside one process all connections come from one in-memory DuckDB instance, built once:
a database file is ATTACHed to it (taking the file's lock) when the first ``connect()``
block of the process opens it, and DETACHed (checkpointed, lock released) when the last
one closes. Threads (Streamlit sessions, a job's threads) share the attachment, so they
do not lock each other out. Building an instance costs DuckDB about 13 ms (it registers
its built-in functions); attaching a file to the built one costs about 1 ms, so the short
visits stay cheap.
"""
from __future__ import annotations

import hashlib
import os
import random
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from mlops_core.config import lock_timeout_seconds, resolve_db_path
from mlops_core.errors import DatabaseBusyError, InvalidInputError, MlopsError

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("could not set lock" in text or "conflicting lock" in text or "resource temporarily unavailable" in text)


_instance_lock = threading.Lock()
_instance: duckdb.DuckDBPyConnection | None = None  # the process's in-memory instance (its first connection)
_attached: dict[str, list] = {}  # real path -> [catalog alias, number of open connect() blocks]


def _attach(path: Path, timeout: float) -> duckdb.DuckDBPyConnection:
    """A new connection of the process's instance, using ``path`` (attached first when no block has it open).

    Retries with backoff while another process holds the file, then raises DatabaseBusyError.
    """
    global _instance
    key = os.path.realpath(path)
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        with _instance_lock:
            if _instance is None:
                # Spills of big sorts and joins go to the system's temporary folder (an in-memory instance would use
                # ".tmp" in whatever folder the process was started from).
                spill = os.path.join(tempfile.gettempdir(), f"mlops-duckdb-{os.getpid()}")
                _instance = duckdb.connect(config={"temp_directory": spill})
            entry = _attached.get(key)
            if entry is None:
                alias = "db_" + hashlib.sha1(key.encode()).hexdigest()[:16]
                quoted = key.replace("'", "''")
                try:
                    _instance.execute(f"ATTACH '{quoted}' AS {alias}")
                except duckdb.IOException as exc:
                    if not _is_lock_error(exc):
                        raise MlopsError(f"Cannot open database {path}: {exc}", path=str(path)) from exc
                    busy = exc
                else:
                    entry = _attached[key] = [alias, 0]
            if entry is not None:
                entry[1] += 1
                try:
                    con = _instance.cursor()
                    con.execute(f"USE {entry[0]}")
                    # No progress bar: a long query must not print to the dashboard server's or a cron job's console.
                    con.execute("SET enable_progress_bar = false")
                except BaseException:
                    entry[1] -= 1
                    raise
                return con
        if time.monotonic() >= deadline:
            raise DatabaseBusyError(
                f"Database {path} is held by another process (waited {timeout:.0f} s). "
                "Wait for the other command to finish, or raise MLOPS_LOCK_TIMEOUT.",
                path=str(path),
            ) from busy
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.5)


def _release(path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Close ``con``; detach its database file when no other block of this process uses it."""
    key = os.path.realpath(path)
    try:
        con.close()
    finally:
        with _instance_lock:
            entry = _attached[key]
            entry[1] -= 1
            if entry[1] == 0:
                _instance.execute(f"DETACH {entry[0]}")  # checkpoints the file and releases its lock
                del _attached[key]


@contextmanager
def connect(db: str | os.PathLike | None = None, *, create: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a connection to the database (migrated to the latest schema) and close it afterwards.

    ``db`` follows ``config.resolve_db_path``. With ``create=False`` a missing file raises
    ``NotFoundError`` instead of creating an empty database.
    Raises ``DatabaseBusyError`` when another process holds the file past the lock timeout.
    """
    from mlops_core.errors import NotFoundError

    path = resolve_db_path(db)
    if not create and not path.exists():
        raise NotFoundError(
            f"No database at {path}. Build the demo with `python -m mlops_core demo --db {path}` "
            "or register a model first.",
            path=str(path),
        )
    if path.exists() and path.is_dir():
        raise InvalidInputError(f"Database path {path} is a folder; give a file path such as {path / 'mlops.duckdb'}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _attach(path, lock_timeout_seconds())
    try:
        key = str(path)
        if key not in _migrated:
            with _migrate_lock:
                if key not in _migrated:
                    _first_open(con)
                    _migrated.add(key)
        yield con
    finally:
        _release(path, con)


def _first_open(con: duckdb.DuckDBPyConnection) -> None:
    """Once per process and database: apply pending migrations, then mark jobs whose process died as failed."""
    from mlops_core.store import jobs
    from mlops_core.store.migrations import migrate

    migrate(con)
    try:
        jobs.reap_dead_runs(con)
    except duckdb.Error:  # a database written by another tool may lack the runs table: never block opening it
        pass


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A second connection on ``con``'s database (for another thread, or beside an unfinished result); close it
    before ``con``'s ``connect()`` block ends."""
    name = con.execute("SELECT current_database()").fetchone()[0]
    cur = con.cursor()
    cur.execute(f'USE "{name}"')
    cur.execute("SET enable_progress_bar = false")
    return cur


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
    _migrated.discard(str(resolve_db_path(db)))


class Store:
    """One location's metadata database and artifacts folder: today a DuckDB file and the folder beside it.

    Built once from a location (a path; ``None`` means ``$MLOPS_DB``, else ``./mlops.duckdb``) and
    handed to the domain functions that need more than one visit to the database (a retrain job,
    a registration that trains between its visits). Every visit is a short ``connect()`` block.
    """

    def __init__(self, location: str | os.PathLike | None = None):
        self.path = resolve_db_path(location)

    @property
    def artifacts(self) -> Path:
        """The folder of model artifacts and job logs (``<name>_artifacts`` beside the database file)."""
        from mlops_core.config import artifacts_dir

        return artifacts_dir(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def connect(self, *, create: bool = False):
        """A short visit (context manager yielding a connection); ``create`` makes a missing database."""
        return connect(self.path, create=create)

    @contextmanager
    def transaction(self, *, create: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short visit whose statements commit together (or roll back on any exception)."""
        with connect(self.path, create=create) as con, transaction(con):
            yield con

    def forget(self) -> None:
        """Forget that this database was migrated in this process (after it was deleted or replaced)."""
        forget_database(self.path)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

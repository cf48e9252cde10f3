"""Opening the DuckDB file: short-lived connections, retry on a foreign lock, migrations.

DuckDB lets one process at a time hold a database file for writing. The dashboard,
a cron ingest and a background retrain all use the same file, so every operation
opens a connection, does its work and closes it (``connect()`` is a context manager);
nothing holds the file while it trains a model or renders a page. When another
process holds the file, we retry with backoff for ``MLOPS_LOCK_TIMEOUT`` seconds
(default 30) and then raise ``DatabaseBusyError``.

Inside one process DuckDB shares one database instance between connections to the
same path, so threads (Streamlit sessions, a job thread) do not lock each other out.
"""
from __future__ import annotations

import os
import random
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from ..config import lock_timeout_seconds, resolve_db_path
from ..errors import DatabaseBusyError, InvalidInputError, MlopsError

_migrated: set[str] = set()
_migrate_lock = threading.Lock()
_on_first_open = []  # callables(con) run once per process per database after migrations


def on_first_open(func):
    """Register ``func(con)`` to run once per process and database after migrations (e.g. reaping dead jobs)."""
    _on_first_open.append(func)
    return func


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("could not set lock" in text or "conflicting lock" in text or "resource temporarily unavailable" in text)


def _open(path: Path, timeout: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            con = duckdb.connect(str(path))
            # No progress bar: a long query must not print to the dashboard server's or a cron job's console.
            con.execute("SET enable_progress_bar = false")
            return con
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise MlopsError(f"Cannot open database {path}: {exc}", path=str(path)) from exc
            if time.monotonic() >= deadline:
                raise DatabaseBusyError(
                    f"Database {path} is held by another process (waited {timeout:.0f} s). "
                    "Wait for the other command to finish, or raise MLOPS_LOCK_TIMEOUT.",
                    path=str(path),
                ) from exc
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.5)


@contextmanager
def connect(db: str | os.PathLike | None = None, *, create: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a connection to the database (migrated to the latest schema) and close it afterwards.

    ``db`` follows ``config.resolve_db_path``. With ``create=False`` a missing file raises
    ``NotFoundError`` instead of creating an empty database.
    Raises ``DatabaseBusyError`` when another process holds the file past the lock timeout.
    """
    from ..errors import NotFoundError

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
    con = _open(path, lock_timeout_seconds())
    try:
        key = str(path)
        if key not in _migrated:
            with _migrate_lock:
                if key not in _migrated:
                    from .migrations import migrate

                    migrate(con)
                    for func in _on_first_open:
                        func(con)
                    _migrated.add(key)
        yield con
    finally:
        con.close()


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

"""Where things live: the database file and the artifacts folder beside it.

The database path is, in order: an explicit argument (the CLI's ``--db``), the
``MLOPS_DB`` environment variable, else ``./mlops.duckdb``. Model artifacts are kept
under ``<database folder>/artifacts/`` so that a copy of the folder is a complete copy
of the state.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

DEFAULT_DB = "mlops.duckdb"


def resolve_db_path(db: str | os.PathLike | None = None) -> Path:
    """Return the database path to use: ``db`` if given, else ``$MLOPS_DB``, else ``./mlops.duckdb``."""
    if db:
        return Path(db).expanduser().resolve()
    env = os.environ.get("MLOPS_DB")
    if env:
        return Path(env).expanduser().resolve()
    return Path(DEFAULT_DB).resolve()


def artifacts_dir(db_path: str | os.PathLike) -> Path:
    """Return the folder holding the model artifacts of the database at ``db_path``."""
    p = Path(db_path)
    return p.parent / f"{p.stem}_artifacts"


def logs_dir(db_path: str | os.PathLike) -> Path:
    """Return the folder of the Parquet prediction logs of the database at ``db_path`` (``$MLOPS_LOG_DIR``
    overrides it: any path DuckDB and Spark can read)."""
    env = os.environ.get("MLOPS_LOG_DIR")
    if env:
        return Path(env).expanduser().resolve()
    p = Path(db_path)
    return p.parent / f"{p.stem}_logs"


def lock_timeout_seconds() -> float:
    """How long to keep retrying when another process holds the database (``MLOPS_LOCK_TIMEOUT``, default 30 s)."""
    try:
        return float(os.environ.get("MLOPS_LOCK_TIMEOUT", "30"))
    except ValueError:
        return 30.0


#: Logged times must lie in [MLOPS_MIN_TIMESTAMP, now + MLOPS_MAX_FUTURE_HOURS]: a batch with a time outside is refused.
DEFAULT_MIN_TIMESTAMP = "1970-01-01"
DEFAULT_MAX_FUTURE_HOURS = 24.0


def timestamp_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The range of times a batch may carry: ``$MLOPS_MIN_TIMESTAMP`` (default 1970-01-01) to ``now`` plus
    ``$MLOPS_MAX_FUTURE_HOURS`` (default 24; clocks of logging systems drift, time zones get mixed up)."""
    try:
        lo = datetime.fromisoformat(os.environ.get("MLOPS_MIN_TIMESTAMP") or DEFAULT_MIN_TIMESTAMP)
    except ValueError:
        lo = datetime.fromisoformat(DEFAULT_MIN_TIMESTAMP)
    try:
        ahead = float(os.environ.get("MLOPS_MAX_FUTURE_HOURS") or DEFAULT_MAX_FUTURE_HOURS)
    except ValueError:
        ahead = DEFAULT_MAX_FUTURE_HOURS
    try:
        hi = now + timedelta(hours=max(ahead, 0.0))
    except OverflowError:
        hi = datetime.max
    return lo.replace(tzinfo=None), hi


def engine_memory_limit() -> str | None:
    """DuckDB's memory limit for the process's log engine (``$MLOPS_ENGINE_MEMORY``, e.g. ``400MB``), or None for
    DuckDB's default (80% of the machine's memory). Under the limit, big joins and sorts spill to the temporary
    folder: a smaller peak for some more time."""
    return os.environ.get("MLOPS_ENGINE_MEMORY") or None

"""Where things live: the database file and the artifacts folder beside it.

The database path is, in order: an explicit argument (the CLI's ``--db``), the
``MLOPS_DB`` environment variable, else ``./mlops.duckdb``. Model artifacts are kept
under ``<database folder>/artifacts/`` so that a copy of the folder is a complete copy
of the state.
"""
from __future__ import annotations

import os
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

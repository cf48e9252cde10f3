"""Where things live: the metadata database, the artifacts folder and the prediction logs.

The location of the metadata is, in order: an explicit argument (the CLI's ``--db``), the
``MLOPS_METADATA_URL`` environment variable, the ``MLOPS_DB`` environment variable, else
``./mlops.duckdb``. It is either a DuckDB file path or a PostgreSQL URL
(``postgresql://user@host:port/db``). Beside a DuckDB file, model artifacts live in
``<name>_artifacts/`` and the Parquet logs in ``<name>_logs/``, so that a copy of the folder is
a complete copy of the state. With PostgreSQL there is no file to put them beside: they go to
``$MLOPS_ARTIFACTS_DIR`` and ``$MLOPS_LOG_DIR`` (shared folders every process of a deployment
reads), by default to a folder per database under the user's data folder (see ``data_home``).
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

DEFAULT_DB = "mlops.duckdb"


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: str | os.PathLike | None) -> bool:
    """Whether ``location`` names a PostgreSQL database (a ``postgresql://`` or ``postgres://`` URL)."""
    return isinstance(location, str) and location.strip().lower().startswith(POSTGRES_SCHEMES)


def resolve_location(db: str | os.PathLike | None = None) -> str | Path:
    """Return where the metadata lives: a PostgreSQL URL (as given) or a DuckDB file path (resolved).

    In order: ``db`` if given, else ``$MLOPS_METADATA_URL``, else ``$MLOPS_DB``, else ``./mlops.duckdb``.
    """
    for value in (db, os.environ.get("MLOPS_METADATA_URL"), os.environ.get("MLOPS_DB")):
        if value:
            if is_postgres_url(value):
                return str(value).strip()
            return Path(value).expanduser().resolve()
    return Path(DEFAULT_DB).resolve()


def resolve_db_path(db: str | os.PathLike | None = None) -> Path:
    """Return the DuckDB file to use (``resolve_location`` when it is a path).

    Raises InvalidInputError when the location is a PostgreSQL URL: the caller needs a file.
    """
    location = resolve_location(db)
    if isinstance(location, str):
        from mlops_core.errors import InvalidInputError

        raise InvalidInputError(f"{redact_url(location)} is a PostgreSQL database, not a DuckDB file; this needs a "
                                "file path (--db PATH).", location=redact_url(location))
    return location


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def data_home() -> Path:
    """The user's data folder (``$XDG_DATA_HOME``, else ``~/.local/share``) + ``/mlops``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "mlops"


def _database_key(url: str) -> str:
    """A folder name for a PostgreSQL database: host, port and database name."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    name = parts.path.lstrip("/") or (parts.username or "postgres")
    raw = f"{parts.hostname or 'localhost'}_{parts.port or 5432}_{name}"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in raw)


def _folder_setting(variable: str, default: Path) -> Path:
    """The folder named by ``$variable`` (or ``default``); raises InvalidInputError when it is not a folder."""
    from mlops_core.errors import InvalidInputError

    value = os.environ.get(variable)
    folder = Path(value).expanduser().resolve() if value else default
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"{variable} points at {folder}, which is a file; set it to a folder.", path=str(folder))
    if value and not folder.exists() and not folder.parent.is_dir():
        raise InvalidInputError(
            f"{variable} points at {folder}, whose parent folder does not exist (an unmounted share?); create it "
            f"or set {variable} to a folder every process of the deployment can read and write.", path=str(folder))
    return folder


def artifacts_dir(location: str | os.PathLike) -> Path:
    """Return the folder holding the model artifacts of the metadata at ``location``: ``<name>_artifacts`` beside
    a DuckDB file; for a PostgreSQL URL ``$MLOPS_ARTIFACTS_DIR``, else ``data_home()/<host>_<port>_<db>/artifacts``.

    Raises InvalidInputError when ``$MLOPS_ARTIFACTS_DIR`` is a file or its parent folder is missing."""
    if is_postgres_url(location):
        return _folder_setting("MLOPS_ARTIFACTS_DIR", data_home() / _database_key(str(location)) / "artifacts")
    p = Path(location)
    return p.parent / f"{p.stem}_artifacts"


def logs_dir(location: str | os.PathLike) -> Path:
    """Return the folder of the Parquet prediction logs of the metadata at ``location`` (``$MLOPS_LOG_DIR``
    overrides it: any path DuckDB and Spark can read): ``<name>_logs`` beside a DuckDB file; for a PostgreSQL
    URL ``data_home()/<host>_<port>_<db>/logs``.

    Raises InvalidInputError when ``$MLOPS_LOG_DIR`` is a file or its parent folder is missing."""
    if is_postgres_url(location):
        return _folder_setting("MLOPS_LOG_DIR", data_home() / _database_key(str(location)) / "logs")
    env = os.environ.get("MLOPS_LOG_DIR")
    if env:
        return Path(env).expanduser().resolve()
    p = Path(location)
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

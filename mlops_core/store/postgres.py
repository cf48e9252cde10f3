"""Metadata on PostgreSQL: visits, the writer lock, and a connection with the DuckDB surface the store uses.

A location ``postgresql://user@host:port/db`` keeps every metadata table (models, versions,
runs, audit, alerts, policies, users, the log listing...) in that database, through psycopg 3.
The store's modules do not change: ``PgConnection`` offers what they call on a DuckDB
connection (``execute`` with ``?`` or ``$name`` parameters returning itself, ``fetchone``,
``fetchall``, ``df``/``fetchdf``, ``fetchnumpy``, ``description``, ``executemany``,
``register``/``unregister`` of a DataFrame or Arrow table, ``BEGIN``/``COMMIT``/``ROLLBACK``)
and runs each statement as ``dialect.to_postgres`` translates it. The prediction logs stay
Parquet files read by the in-process DuckDB log engine; only their listing lives here.

Visits keep the guarantees the DuckDB file gives the domain code:

- a read visit (``connect()``) is one ``REPEATABLE READ READ ONLY`` transaction: a consistent
  snapshot for the whole visit, which never waits for a writer and never blocks one;
- a write visit (``connect(write=True)``, ``transaction()``) holds the *writer lock*, a
  session-level advisory lock of the database, for its length. The domain code was written for
  one writer at a time (next version number then insert, close the open alias row then open
  another, insert an alert unless one is open...), and DuckDB gave it that; the lock gives it on
  PostgreSQL, across processes and hosts, without blocking readers. Write visits are short by
  the store's contract (slow work happens between visits), so writers queue for milliseconds.
  As with the DuckDB file, the threads of one process share the process's turn (the lock is
  counted per process, held on a connection of its own). A writer that waits longer than
  ``MLOPS_LOCK_TIMEOUT`` seconds gets ``DatabaseBusyError``; so does a statement that meets a
  serialization failure, a deadlock or a lock timeout (none occur under the writer lock, but a
  database shared with other tools may cause them).
- migrations run once per process and database, in a write visit (so two processes that open
  a new database at once apply them once).

Connections are pooled per process and URL (a visit costs a round trip, not a login).
Passwords never appear in messages (``config.redact_url``).
"""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_core.config import lock_timeout_seconds, redact_url
from mlops_core.errors import DatabaseBusyError, DiskFullError, MlopsError, NotFoundError, ReadOnlyError
from mlops_core.store.dialect import statement_kind, to_postgres

if TYPE_CHECKING:  # loaded on first use: a quick look (`mlops status`) needs neither, on either backend
    import numpy as np
    import pandas as pd

#: The advisory lock key of the writer lock (any constant: advisory locks are per database).
WRITER_LOCK_KEY = 0x6D6C6F7073
#: Idle connections kept per URL.
POOL_SIZE = 8

_INT32 = {21, 23}          # int2, int4
_INT64 = {20, 26}          # int8, oid
_FLOAT = {700, 701, 1700}  # float4, float8, numeric
_BOOL = {16}
_TIMESTAMP = {1114, 1184, 1082}  # timestamp, timestamptz, date (DuckDB's df() gives dates as datetime64 too)


def _require_psycopg():
    try:
        import psycopg
    except ImportError as exc:  # the optional extra
        raise MlopsError("A PostgreSQL location needs psycopg 3: pip install 'mlops-control-room[postgres]' "
                         "(or pip install -r requirements-postgres.txt).") from exc
    return psycopg


def _numeric_loader():
    """A loader of ``numeric`` (what PostgreSQL's sum of BIGINT gives): an int when integral, else a float, as
    DuckDB returns its HUGEINT sums and decimals."""
    from psycopg.adapt import Loader

    class NumericAsNumber(Loader):
        def load(self, data):
            text = bytes(data).decode()
            if text in ("NaN", "Infinity", "-Infinity"):
                return float(text.replace("Infinity", "inf"))
            return int(text) if "." not in text and "e" not in text.lower() else float(text)

    return NumericAsNumber


# --- errors ---------------------------------------------------------------------------------------


def translate_error(exc: Exception, url: str) -> Exception:
    """The domain error for a psycopg error met on ``url`` (the error itself when it has none)."""
    psycopg = _require_psycopg()
    e = psycopg.errors
    where = redact_url(url)
    if isinstance(exc, (e.SerializationFailure, e.DeadlockDetected, e.LockNotAvailable)):
        return DatabaseBusyError(
            f"The metadata database {where} is busy ({type(exc).__name__}: another writer holds what this needs; "
            f"waited up to {lock_timeout_seconds():.0f} s). Run it again, or raise MLOPS_LOCK_TIMEOUT.",
            path=where)
    if isinstance(exc, e.DiskFull):
        return DiskFullError(f"The disk of the metadata database {where} is full; nothing was changed. Free some "
                             "space on the server and run it again.", path=where)
    if isinstance(exc, (e.ReadOnlySqlTransaction, e.InsufficientPrivilege)):
        return ReadOnlyError(f"Cannot write the metadata database {where}: {str(exc).strip()}. Read commands still "
                             "work; connect as a role that may write it.", path=where)
    if isinstance(exc, psycopg.OperationalError):
        return MlopsError(f"Lost the connection to the metadata database {where}: {str(exc).strip()}", path=where)
    return exc


# --- the connection -------------------------------------------------------------------------------


class PgConnection:
    """One visit's connection to the metadata on PostgreSQL, with the DuckDB connection surface the store uses.

    ``execute`` returns the connection itself, as DuckDB's does, so that ``con.execute(...).fetchone()``
    reads the result of that statement.
    """

    def __init__(self, raw, url: str, *, write: bool, artifacts: Path, logs: Path):
        self._raw = raw
        self._cur = raw.cursor()
        self.url = url
        self.write = write
        self.artifacts = artifacts
        self.logs = logs
        self._registered: set[str] = set()

    # -- statements --

    def execute(self, sql: str, parameters=None) -> PgConnection:
        kind = statement_kind(sql)
        if kind == "begin":
            sql = "BEGIN ISOLATION LEVEL READ COMMITTED"
        elif kind is not None:
            sql = kind.upper()
        else:
            sql = to_postgres(sql)
        params = _params(parameters)
        try:
            self._cur.execute(sql, params)
        except Exception as exc:
            raise translate_error(exc, self.url) from exc
        return self

    def executemany(self, sql: str, rows) -> PgConnection:
        try:
            self._cur.executemany(to_postgres(sql), [_params(r) for r in rows])
        except Exception as exc:
            raise translate_error(exc, self.url) from exc
        return self

    # -- results --

    @property
    def description(self):
        return self._cur.description

    def fetchone(self):
        return self._cur.fetchone()

    def fetchall(self) -> list:
        return self._cur.fetchall()

    def fetchmany(self, size: int = 1) -> list:
        return self._cur.fetchmany(size)

    def df(self) -> pd.DataFrame:
        """The result as a DataFrame typed as DuckDB's ``df()`` types it (nullable integers and booleans only
        where a NULL occurs, timestamps and dates as ``datetime64[us]``)."""
        import pandas as pd

        desc = self._cur.description or []
        rows = self._cur.fetchall()
        return pd.DataFrame({d.name: _column([r[i] for r in rows], d.type_code) for i, d in enumerate(desc)},
                            columns=[d.name for d in desc])

    fetchdf = df

    def fetchnumpy(self) -> dict[str, np.ndarray]:
        """The result as {column: numpy array}, masked where NULL (as DuckDB's ``fetchnumpy``)."""
        import numpy as np
        import pandas as pd

        frame = self.df()
        out = {}
        for name in frame.columns:
            col = frame[name]
            mask = col.isna().to_numpy()
            if mask.any() and not pd.api.types.is_float_dtype(col.dtype):
                values = col.astype(object).where(~col.isna(), None).to_numpy()
                out[name] = np.ma.masked_array(values, mask=mask)
            else:
                out[name] = col.to_numpy()
        return out

    # -- registered frames --

    def register(self, name: str, data) -> None:
        """Make a DataFrame or Arrow table readable as the table ``name`` (a temporary table, dropped by
        ``unregister`` or when the visit ends)."""
        import pyarrow as pa

        table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        cols = [f'"{f.name}" {_pg_type(f.type)}' for f in table.schema]
        self.unregister(name)
        self._raw.execute(f'CREATE TEMP TABLE "{name}" ({", ".join(cols)})')
        self._registered.add(name)
        if table.num_rows:
            names = ", ".join(f'"{n}"' for n in table.column_names)
            columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
            with self._cur.copy(f'COPY "{name}" ({names}) FROM STDIN') as copy:
                for row in zip(*columns, strict=True):
                    copy.write_row(row)

    def unregister(self, name: str) -> None:
        self._raw.execute(f'DROP TABLE IF EXISTS pg_temp."{name}"')
        self._registered.discard(name)

    # -- the visit --

    def cursor(self) -> PgConnection:
        """Another cursor in this visit (same session and transaction)."""
        return PgConnection(self._raw, self.url, write=self.write, artifacts=self.artifacts, logs=self.logs)

    def close(self) -> None:
        self._cur.close()

    def _drop_registered(self) -> None:
        for name in list(self._registered):
            self.unregister(name)


def _params(parameters):
    if parameters is None:
        return ()
    if isinstance(parameters, dict):
        return {k: _value(v) for k, v in parameters.items()}
    return tuple(_value(v) for v in parameters)


def _value(v):
    """Bound values as psycopg adapts them (pandas' timestamps and missing values included).

    A value can only be a pandas or numpy object once that library is loaded, so neither is imported here."""
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        if isinstance(v, pandas.Timestamp):
            return None if pandas.isna(v) else v.to_pydatetime()
        if v is pandas.NaT or v is pandas.NA:
            return None
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(v, numpy.generic):
        return v.item()
    return v


def _column(values: list, oid: int) -> pd.Series:
    import numpy as np
    import pandas as pd

    has_null = any(v is None for v in values)
    if oid in _INT32 or oid in _INT64:
        kind = ("Int32" if has_null else "int32") if oid in _INT32 else ("Int64" if has_null else "int64")
        return pd.Series(values, dtype=kind)
    if oid in _FLOAT:
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64")
    if oid in _BOOL:
        return pd.Series(values, dtype="boolean" if has_null else "bool")
    if oid in _TIMESTAMP:
        conv = [None if v is None else (datetime(v.year, v.month, v.day) if type(v) is date else
                                        v.replace(tzinfo=None)) for v in values]
        return pd.Series(pd.to_datetime(conv), dtype="datetime64[us]") if values else \
            pd.Series([], dtype="datetime64[us]")
    if not values:
        return pd.Series([], dtype=object)
    return pd.Series(values)


def _pg_type(t) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_integer(t):
        return "BIGINT" if t.bit_width > 32 or t in (pa.uint32(),) else "INTEGER"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "DOUBLE PRECISION"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP" if t.tz is None else "TIMESTAMPTZ"
    if pa.types.is_date(t):
        return "DATE"
    return "TEXT"


# --- the pool and the writer lock -------------------------------------------------------------------


class _Database:
    """What this process keeps for one PostgreSQL URL: idle connections, the writer lock's count, migrated."""

    def __init__(self, url: str):
        self.url = url
        self.idle: list = []
        self.lock = threading.Lock()
        self.writers = 0
        self.writer_conn = None
        self.writer_cond = threading.Condition()
        self.ready = threading.Event()
        self.init = threading.Lock()


_databases: dict[str, _Database] = {}
_databases_lock = threading.Lock()


def _database(url: str) -> _Database:
    with _databases_lock:
        db = _databases.get(url)
        if db is None:
            db = _databases[url] = _Database(url)
        return db


def _new_connection(url: str, deadline: float):
    """A new autocommit connection (UTC session), retrying while the server is starting or full."""
    psycopg = _require_psycopg()
    delay = 0.05
    while True:
        try:
            raw = psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(lock_timeout_seconds())),
                                  application_name="mlops")
            break
        except psycopg.OperationalError as exc:
            text = str(exc).lower()
            transient = "too many" in text or "starting up" in text or "shutting down" in text
            if not transient:
                raise MlopsError(f"Cannot connect to the metadata database {redact_url(url)}: {str(exc).strip()}. "
                                 "Check the URL (MLOPS_DB, MLOPS_METADATA_URL or --db) and that the server runs.",
                                 path=redact_url(url)) from exc
            if time.monotonic() >= deadline:
                raise DatabaseBusyError(f"The metadata database {redact_url(url)} refuses connections "
                                        f"({str(exc).strip()}); waited {lock_timeout_seconds():.0f} s.",
                                        path=redact_url(url)) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    raw.adapters.register_loader("numeric", _numeric_loader())
    ms = max(1, int(lock_timeout_seconds() * 1000))
    raw.execute(f"SET TimeZone = 'UTC'; SET lock_timeout = {ms}")
    return raw


def _checkout(db: _Database, deadline: float):
    psycopg = _require_psycopg()
    while True:
        with db.lock:
            raw = db.idle.pop() if db.idle else None
        if raw is None:
            return _new_connection(db.url, deadline)
        if not raw.closed and raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            return raw
        raw.close()


def _checkin(db: _Database, raw) -> None:
    psycopg = _require_psycopg()
    if raw.closed:
        return
    try:
        if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raw.execute("ROLLBACK")
    except psycopg.Error:
        raw.close()
        return
    with db.lock:
        if len(db.idle) < POOL_SIZE:
            db.idle.append(raw)
            return
    raw.close()


def _acquire_writer(db: _Database, deadline: float) -> None:
    """Take this process's turn to write (the advisory lock, held on a connection of its own while any thread of
    this process is in a write visit). Raises DatabaseBusyError past the lock timeout."""
    psycopg = _require_psycopg()
    with db.writer_cond:
        if db.writers == 0:
            raw = _checkout(db, deadline)
            try:
                ms = max(1, int((deadline - time.monotonic()) * 1000))
                raw.execute(f"SET lock_timeout = {ms}")
                raw.execute("SELECT pg_advisory_lock(%s)", (WRITER_LOCK_KEY,))
                raw.execute(f"SET lock_timeout = {max(1, int(lock_timeout_seconds() * 1000))}")
            except psycopg.errors.LockNotAvailable as exc:
                _checkin(db, raw)
                raise DatabaseBusyError(
                    f"The metadata database {redact_url(db.url)} is being written by another process (waited "
                    f"{lock_timeout_seconds():.0f} s for its turn). Wait for the other command to finish, or raise "
                    "MLOPS_LOCK_TIMEOUT.", path=redact_url(db.url)) from exc
            except BaseException:
                raw.close()
                raise
            db.writer_conn = raw
        db.writers += 1


def _release_writer(db: _Database) -> None:
    psycopg = _require_psycopg()
    with db.writer_cond:
        db.writers -= 1
        if db.writers == 0 and db.writer_conn is not None:
            raw, db.writer_conn = db.writer_conn, None
            try:
                raw.execute("SELECT pg_advisory_unlock(%s)", (WRITER_LOCK_KEY,))
            except psycopg.Error:
                raw.close()  # closing the session releases its advisory locks
            _checkin(db, raw)


# --- visits -----------------------------------------------------------------------------------------


@contextmanager
def _visit(db: _Database, *, write: bool, artifacts: Path, logs: Path) -> Iterator[PgConnection]:
    psycopg = _require_psycopg()
    deadline = time.monotonic() + lock_timeout_seconds()
    if write:
        _acquire_writer(db, deadline)
    try:
        raw = _checkout(db, deadline)
        con = PgConnection(raw, db.url, write=write, artifacts=artifacts, logs=logs)
        try:
            if not write:
                raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield con
        finally:
            try:
                if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    raw.execute("ROLLBACK")
                con._drop_registered()
                con.close()
            except psycopg.Error:
                raw.close()
            _checkin(db, raw)
    finally:
        if write:
            _release_writer(db)


def _has_schema(con: PgConnection) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version' "
                            "AND table_schema = current_schema()").fetchone()[0])


def _first_open(db: _Database, *, create: bool, artifacts: Path, logs: Path) -> None:
    """Once per process and database: apply pending migrations and reap dead jobs (as for a DuckDB file), in a
    write visit only when there is either.

    Raises NotFoundError when the database holds no metadata yet and ``create`` is false.
    """
    from mlops_core.store import jobs
    from mlops_core.store.migrations import migrate, pending

    with _visit(db, write=False, artifacts=artifacts, logs=logs) as con:
        exists = _has_schema(con)
        todo = pending(con) if exists else [0]
        # Looked for in the snapshot first: a reader's first visit takes the writer lock (and may wait for another
        # process's write) only when there is something to fix.
        dead = bool(exists and not todo and jobs.any_dead(con))
    if not exists and not create:
        raise NotFoundError(
            f"No metadata in the PostgreSQL database {redact_url(db.url)} yet. Build the demo with "
            f"`mlops demo --db URL`, or register a model first.", path=redact_url(db.url))
    if not todo and not dead:
        return
    with _visit(db, write=True, artifacts=artifacts, logs=logs) as con:
        if todo:
            migrate(con, None)
        jobs.reap_dead_runs(con)


@contextmanager
def connect(url: str, *, create: bool = False, write: bool = False, artifacts: Path,
            logs: Path) -> Iterator[PgConnection]:
    """A visit of the metadata at ``url`` (migrated to the latest schema): read-only unless ``write``.

    ``create``: a database without metadata gets the schema (implies ``write``); otherwise it raises
    NotFoundError. Raises DatabaseBusyError when the writer lock is held past the lock timeout.
    """
    db = _database(url)
    if not db.ready.is_set():
        with db.init:
            if not db.ready.is_set():
                _first_open(db, create=create, artifacts=artifacts, logs=logs)
                db.ready.set()
    with _visit(db, write=write or create, artifacts=artifacts, logs=logs) as con:
        yield con


def exists(url: str) -> bool:
    """Whether the database at ``url`` holds metadata (a schema made by the migrations)."""
    db = _database(url)
    if db.ready.is_set():
        return True
    with _visit(db, write=False, artifacts=Path(), logs=Path()) as con:
        return _has_schema(con)


def forget(url: str) -> None:
    """Forget that ``url`` was migrated in this process and close its idle connections."""
    with _databases_lock:
        db = _databases.pop(url, None)
    if db is not None:
        with db.lock:
            idle, db.idle = db.idle, []
        for raw in idle:
            raw.close()


def drop_schema(url: str) -> list[str]:
    """Drop every table and sequence the migrations create (nothing else of the database); return their names.

    Raises ConflictError while a write visit of this process is open.
    """
    from mlops_core.errors import ConflictError
    from mlops_core.store.migrations import created_objects

    db = _database(url)
    if db.writers:
        raise ConflictError(f"The metadata database {redact_url(url)} is being written by this process; finish that "
                            "first.", path=redact_url(url))
    tables, sequences = created_objects()
    dropped = []
    with _visit(db, write=True, artifacts=Path(), logs=Path()) as con:
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").fetchall()}
        con.execute("BEGIN TRANSACTION")
        for t in [*tables, "schema_version"]:
            if t in present:
                con.execute(f'DROP TABLE "{t}" CASCADE')
                dropped.append(t)
        for s in sequences:
            con.execute(f'DROP SEQUENCE IF EXISTS "{s}" CASCADE')
        con.execute("COMMIT")
    forget(url)
    return dropped

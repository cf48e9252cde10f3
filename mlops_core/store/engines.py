"""The log engines: where the monitoring queries over the Parquet log run.

Each monitoring query (``store/performance.py``, ``drift.py``, ``estimation.py``, ``validation.py``) is
written once, in DuckDB's SQL dialect, with the log's relations and small lookup tables as
placeholders filled by the engine, and positional ``?`` parameters. An engine supplies the
relations and runs the text:

- ``DuckDBEngine`` (the default): the process's in-memory DuckDB (``connection.engine``); the
  relations are ``read_parquet([...])`` over the listed files and the text runs as written.
- ``SparkEngine`` (``--engine spark``): a SparkSession on ``$MLOPS_SPARK_MASTER`` (``local[2]``, a
  cluster's master URL, or a Spark Connect URL ``sc://host:15002``); the listed files are read by
  Spark and registered as temporary views, small lookup tables are sent as small DataFrames, and the
  text is transpiled from DuckDB's dialect to Spark SQL by sqlglot. There is no second hand-written
  copy of any query: a DuckDB function without a Spark equivalent is rewritten in the shared
  definition in portable SQL.

Paths: Spark reads the same files as DuckDB. When the executors see the log folder under another
name (an HDFS or object-store URL, a mount point), ``$MLOPS_SPARK_LOG_DIR`` names it and replaces
the local log folder at the start of every listed path.
"""
from __future__ import annotations

import os
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from mlops_core.errors import InvalidInputError, MlopsError
from mlops_core.store.logs import LogView, columns, relation

#: The engines a monitoring query can run on.
ENGINES = ("duckdb", "spark")
DEFAULT_ENGINE = "duckdb"
#: The Spark master used when ``$MLOPS_SPARK_MASTER`` is not set: Spark inside this process on two cores.
DEFAULT_SPARK_MASTER = "local[2]"


def check_engine(name: str | None) -> str:
    """Return the engine name (None: the default); raise InvalidInputError for an unknown one."""
    name = name or DEFAULT_ENGINE
    if name not in ENGINES:
        raise InvalidInputError(f"Unknown engine {name!r}. Choose one of: {', '.join(ENGINES)}.", engine=name)
    return name


def spark_master() -> str:
    """The Spark master or Spark Connect URL: ``$MLOPS_SPARK_MASTER``, else ``local[2]``."""
    return os.environ.get("MLOPS_SPARK_MASTER") or DEFAULT_SPARK_MASTER


class LogEngine(ABC):
    """What a monitoring query needs from an engine: the relations of a log, small lookup tables, and a way
    to run the query text (DuckDB dialect, ``?`` parameters) into a DataFrame, rows or numpy columns."""

    name = "engine"

    @abstractmethod
    def predictions(self, log: LogView) -> str:
        """SQL naming the relation of the listed prediction files."""
        ...

    @abstractmethod
    def labels(self, log: LogView) -> str:
        """SQL naming the relation of the listed label files."""
        ...

    @abstractmethod
    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        ...

    @abstractmethod
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        ...

    @abstractmethod
    def numpy(self, sql: str, params: Sequence[Any] = ()) -> dict[str, np.ndarray]:
        """The result's columns as numpy arrays (timestamps as datetime64[us])."""
        ...

    @abstractmethod
    def lookup(self, name: str, frame: pd.DataFrame):
        """A context manager that makes a small table (calibration cells, ...) visible to queries as ``name``
        for its block."""
        ...

    @abstractmethod
    def materialise(self, name: str, sql: str, params: Sequence[Any] = ()) -> str:
        """Compute ``sql`` once into a temporary table (or cached view) named ``name`` that later queries of this
        engine visit read; return the name."""
        ...


class DuckDBEngine(LogEngine):
    """The in-process DuckDB log engine over a cursor of ``connection.engine``: queries run as written."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def predictions(self, log: LogView) -> str:
        return log.predictions

    def labels(self, log: LogView) -> str:
        return log.labels

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return self.con.execute(sql, list(params)).df()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()

    def numpy(self, sql: str, params: Sequence[Any] = ()) -> dict[str, np.ndarray]:
        return self.con.execute(sql, list(params)).fetchnumpy()

    @contextmanager
    def lookup(self, name: str, frame: pd.DataFrame) -> Iterator[str]:
        self.con.register(name, frame)
        try:
            yield name
        finally:
            self.con.unregister(name)

    def materialise(self, name: str, sql: str, params: Sequence[Any] = ()) -> str:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}", list(params))
        return name


def of(con: LogEngine | duckdb.DuckDBPyConnection) -> LogEngine:
    """The engine of ``con``: itself when it is one, else a DuckDB cursor wrapped as the DuckDB engine."""
    return con if isinstance(con, LogEngine) else DuckDBEngine(con)


# --- Spark ----------------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def to_spark_sql(sql: str) -> str:
    """``sql`` (DuckDB dialect) transpiled to Spark SQL by sqlglot; raise InvalidInputError when it cannot be.

    Cached: a query's text repeats for every window size and run, and parsing costs milliseconds."""
    import sqlglot
    from sqlglot.errors import ErrorLevel, SqlglotError

    try:
        return sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=ErrorLevel.RAISE)[0]
    except SqlglotError as exc:
        raise InvalidInputError(f"A monitoring query cannot be written in Spark SQL: {exc}") from exc


class SparkUnavailableError(MlopsError):
    """Raised when the Spark engine was asked for but pyspark or a Java runtime is missing."""


_session_lock = threading.Lock()


def spark_session(master: str | None = None):
    """The process's SparkSession on ``master`` (default ``spark_master()``): the active one when a program
    (spark-submit, a notebook) made it, else a new one (Spark Connect when the URL starts with ``sc://``).

    Every session computes in UTC. Raises SparkUnavailableError (no pyspark, no Java).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailableError(
            "The Spark engine needs pyspark: pip install -e '.[spark]' (or -r requirements-spark.txt), "
            "and a Java 17 runtime (e.g. Debian's openjdk-17-jre-headless).") from exc
    url = master or spark_master()
    with _session_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pyspark warns about pandas 3, which it reads fine
        active = SparkSession.getActiveSession()
        if active is not None:
            session = active
        elif url.startswith("sc://"):
            session = SparkSession.builder.remote(url).appName("mlops-control-room").getOrCreate()
        else:
            builder = SparkSession.builder.master(url).appName("mlops-control-room")
            if url.startswith("local"):
                # A local session has its driver and executors in this process: nothing needs to reach it from
                # another host, so it listens on the loopback address only.
                builder = (builder.config("spark.driver.host", "127.0.0.1")
                           .config("spark.driver.bindAddress", "127.0.0.1"))
            try:
                session = (builder
                           .config("spark.sql.session.timeZone", "UTC")
                           .config("spark.ui.enabled", os.environ.get("MLOPS_SPARK_UI", "false"))
                           .config("spark.ui.showConsoleProgress", "false")
                           .config("spark.sql.shuffle.partitions", os.environ.get("MLOPS_SPARK_SHUFFLE_PARTITIONS", "8"))
                           .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                           .getOrCreate())
            except Exception as exc:  # pyspark raises a bare RuntimeError/PySparkRuntimeError without Java
                raise SparkUnavailableError(
                    f"Spark could not start on {url!r}: {exc}. The Spark engine needs a Java 17 runtime "
                    "(JAVA_HOME or java on the PATH; e.g. Debian's openjdk-17-jre-headless).") from exc
            session.sparkContext.setLogLevel("ERROR")
        session.conf.set("spark.sql.session.timeZone", "UTC")
    return session


class SparkEngine(LogEngine):
    """The Spark log engine: the listed files as temporary views, queries transpiled to Spark SQL.

    Use it in a ``with`` block (``open_engine("spark")``): on leaving, its views and cached results are dropped.
    """

    name = "spark"

    def __init__(self, session, *, local_root: str | None = None, remote_root: str | None = None):
        self.session = session
        self.local_root = local_root
        self.remote_root = remote_root if remote_root is not None else os.environ.get("MLOPS_SPARK_LOG_DIR")
        self._views: dict[tuple, str] = {}
        self._cached: list = []
        self._names: list[str] = []
        self._serial = 0

    def _name(self, stem: str) -> str:
        self._serial += 1
        name = f"_mlops_{stem}_{os.getpid()}_{id(self) % 100000}_{self._serial}"
        self._names.append(name)
        return name

    def path(self, local: str) -> str:
        """Where Spark finds a listed file: ``$MLOPS_SPARK_LOG_DIR`` in place of the local log folder, if set."""
        if self.remote_root and self.local_root and local.startswith(self.local_root.rstrip("/") + "/"):
            return self.remote_root.rstrip("/") + local[len(self.local_root.rstrip("/")):]
        return local

    def _relation(self, log: LogView, kind: str) -> str:
        files = log.prediction_files if kind == "predictions" else log.label_files
        if not files:  # the same empty relation of the model's columns as on DuckDB
            return relation(log.info, kind, files)
        key = (log.info.name, kind, files)
        if key not in self._views:
            reader = self.session.read
            if kind == "predictions" and log.info.entity_keys:
                reader = reader.option("mergeSchema", "true")  # older files lack the entity key columns
            frame = reader.parquet(*(self.path(f) for f in files))
            wanted = [c for c, _ in columns(log.info, kind)]
            frame = frame.select(*[c for c in wanted if c in frame.columns])
            name = self._name(kind)
            frame.createOrReplaceTempView(name)
            self._views[key] = name
        return self._views[key]

    def predictions(self, log: LogView) -> str:
        return self._relation(log, "predictions")

    def labels(self, log: LogView) -> str:
        return self._relation(log, "labels")

    def dataframe(self, sql: str, params: Sequence[Any] = ()):
        """The Spark DataFrame of ``sql`` (DuckDB dialect) with its parameters bound; raise MlopsError on a
        Spark failure."""
        text = to_spark_sql(sql)
        try:
            return self.session.sql(text, args=list(params)) if params else self.session.sql(text)
        except Exception as exc:  # AnalysisException, Py4JError, Spark Connect's errors: one translation here
            raise MlopsError(f"Spark could not run a monitoring query: {exc}") from exc

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        df = self.dataframe(sql, params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            try:
                return df.toPandas()
            except Exception as exc:
                raise MlopsError(f"Spark could not run a monitoring query: {exc}") from exc

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        # Through pandas (Arrow), not collect(): collect() turns timestamps into the Python process's local time.
        out = self.frame(sql, params)
        return [tuple(_python(v) for v in row) for row in out.itertuples(index=False, name=None)]

    def numpy(self, sql: str, params: Sequence[Any] = ()) -> dict[str, np.ndarray]:
        out = self.frame(sql, params)
        return {c: out[c].to_numpy() for c in out.columns}

    @contextmanager
    def lookup(self, name: str, frame: pd.DataFrame) -> Iterator[str]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.session.createDataFrame(frame).createOrReplaceTempView(name)
        try:
            yield name
        finally:
            self.session.catalog.dropTempView(name)

    def materialise(self, name: str, sql: str, params: Sequence[Any] = ()) -> str:
        from pyspark import StorageLevel

        df = self.dataframe(sql, params).persist(StorageLevel.MEMORY_AND_DISK)
        self._cached.append(df)
        df.createOrReplaceTempView(name)
        self._names.append(name)
        return name

    def close(self) -> None:
        """Drop this engine's views and cached results (the session stays for the next query)."""
        for df in self._cached:
            with suppress(Exception):  # a stopped session has nothing left to free
                df.unpersist()
        for name in self._names:
            with suppress(Exception):
                self.session.catalog.dropTempView(name)
        self._cached.clear()
        self._names.clear()
        self._views.clear()


def _python(value):
    """A pandas/numpy scalar as the Python value DuckDB's ``fetchall`` would give."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


@contextmanager
def open_engine(name: str | None, store=None) -> Iterator[Any]:
    """The log engine ``name`` for one block: the DuckDB cursor of ``store.engine()`` (or of the process's engine
    when ``store`` is None) for ``duckdb``, a ``SparkEngine`` for ``spark``. Raises InvalidInputError (unknown
    name), SparkUnavailableError."""
    name = check_engine(name)
    if name == "duckdb":
        from mlops_core.store.connection import engine

        with (store.engine() if store is not None else engine()) as con:
            yield con
        return
    spark = SparkEngine(spark_session(), local_root=str(store.logs) if store is not None else None)
    try:
        yield spark
    finally:
        spark.close()

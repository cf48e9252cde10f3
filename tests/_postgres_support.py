"""A throwaway PostgreSQL cluster for the tests: started once per session, stopped at its end.

The cluster (``mlops_core.demo.local_postgres.LocalCluster``: Debian's ``initdb``/``pg_ctl``, a temporary
folder, 127.0.0.1 on a free port) serves every test that runs on PostgreSQL. A database with the
whole schema is migrated once (``mlops_template``); each test gets a fresh copy of it
(``CREATE DATABASE ... TEMPLATE``, tens of milliseconds) and its own artifacts and log folders.

The store-touching tests run on PostgreSQL when ``MLOPS_TEST_BACKEND=postgres`` (tests of the
DuckDB file itself, marked ``duckdb_file``, are left out); ``tests/test_postgres.py`` always does.
Without PostgreSQL or psycopg they skip with the reason, except under CI (``CI`` set), where they
fail: CI must install both (the Debian package ``postgresql`` and ``requirements-postgres.txt``).
"""
from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path

import pytest

from mlops_core.demo.local_postgres import ClusterUnavailable, LocalCluster, find_bindir

TEMPLATE = "mlops_template"


def backend() -> str:
    """``postgres`` when the store-touching tests run on PostgreSQL (``MLOPS_TEST_BACKEND``), else ``duckdb``."""
    return "postgres" if os.environ.get("MLOPS_TEST_BACKEND", "").lower() in ("postgres", "postgresql", "pg") \
        else "duckdb"


def missing() -> str | None:
    """Why PostgreSQL tests cannot run here (None when they can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -r requirements-postgres.txt)"
    if find_bindir() is None:
        return "PostgreSQL's server programs are not installed (apt-get install postgresql)"
    return None


def require_postgres() -> None:
    """Skip the calling test when PostgreSQL or psycopg is missing, or fail under CI (where both must be)."""
    why = missing()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests must run in CI, but {why}")
    pytest.skip(why)


class TestCluster:
    """The session's cluster and its template database (built on first use)."""

    def __init__(self):
        self.cluster: LocalCluster | None = None
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._templates: set[str] = set()

    def start(self) -> LocalCluster:
        with self._lock:
            if self.cluster is None:
                require_postgres()
                try:
                    self.cluster = LocalCluster().start()
                except ClusterUnavailable as exc:
                    if os.environ.get("CI"):
                        pytest.fail(f"Could not start PostgreSQL: {exc}")
                    pytest.skip(f"Could not start PostgreSQL: {exc}")
            return self.cluster

    def template(self, name: str = TEMPLATE, build=None) -> str:
        """The template database ``name``, made once: migrated to the latest schema, then ``build(url)`` if given."""
        cluster = self.start()
        with self._lock:
            if name not in self._templates:
                from mlops_core.store import Store

                url = cluster.create_database(name)
                store = Store(url)
                with store.connect(create=True):
                    pass
                if build is not None:
                    build(url)
                store.forget()  # a template may have no open connection when it is copied
                self._templates.add(name)
        return name

    def fresh_database(self, template: str | None = None) -> str:
        """The URL of a new database copied from ``template`` (the migrated empty schema by default)."""
        source = template or self.template()
        cluster = self.start()
        return cluster.create_database(f"t{os.getpid()}_{next(self._names)}", template=source)

    def discard(self, url: str) -> None:
        """Close this process's connections to the database at ``url`` and drop it (with any connection a process
        the test started left open): each test's pool would otherwise hold its connections to the end of the
        session, and a few dozen tests would use up the cluster's ``max_connections``."""
        from mlops_core.store import Store

        Store(url).forget()
        if self.cluster is not None:
            self.cluster.drop_database(database_name(url))

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None


SESSION = TestCluster()


def database_name(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path.lstrip("/")


def template_location(key: str, build) -> tuple[str, Path]:
    """A template database ``key`` built once by ``build(url)`` with its artifacts and logs in a folder of its own;
    returns (its name, that folder)."""
    import os
    import tempfile

    folders = getattr(SESSION, "_folders", None)
    if folders is None:
        folders = SESSION._folders = {}
    if key not in folders:
        folder = Path(tempfile.mkdtemp(prefix=f"pg-{key}-"))

        def with_folders(url):
            before = {k: os.environ.get(k) for k in ("MLOPS_ARTIFACTS_DIR", "MLOPS_LOG_DIR")}
            os.environ["MLOPS_ARTIFACTS_DIR"] = str(folder / "mlops_artifacts")
            os.environ["MLOPS_LOG_DIR"] = str(folder / "mlops_logs")
            try:
                build(url)
            finally:
                for k, v in before.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

        SESSION.template(key, with_folders)
        folders[key] = folder
    return key, folders[key]


def replace_from_template(url: str, key: str, build) -> None:
    """Make the database at ``url`` a copy of template ``key`` (built once by ``build``), with a copy of the
    template's artifacts and logs in this test's folders (``MLOPS_ARTIFACTS_DIR``, ``MLOPS_LOG_DIR``)."""
    import os
    import shutil

    from mlops_core.store import Store

    name, folder = template_location(key, build)
    Store(url).forget()
    cluster = SESSION.start()
    cluster.drop_database(database_name(url))
    cluster.create_database(database_name(url), template=name)
    for sub, variable in (("mlops_artifacts", "MLOPS_ARTIFACTS_DIR"), ("mlops_logs", "MLOPS_LOG_DIR")):
        target = Path(os.environ[variable])
        shutil.rmtree(target, ignore_errors=True)
        if (folder / sub).exists():
            shutil.copytree(folder / sub, target)


def scratch(db) -> Path:
    """A folder of the test for files beside its database (the database's folder; on PostgreSQL the folder that
    holds the test's artifacts folder)."""
    import os

    from mlops_core.config import is_postgres_url

    if is_postgres_url(str(db)):
        return Path(os.environ["MLOPS_ARTIFACTS_DIR"]).parent
    return Path(db).parent

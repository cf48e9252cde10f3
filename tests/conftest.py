"""Shared fixtures: a fresh database (a file in tmp_path, or a PostgreSQL database) and a small training set.

``MLOPS_TEST_BACKEND=postgres`` puts the metadata of the ``db`` and ``registered_credit_db`` fixtures in
a throwaway PostgreSQL cluster (``_postgres_support``), with the artifacts and logs in tmp_path.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest
from _postgres_support import SESSION as POSTGRES
from _postgres_support import backend

from mlops_core import ControlRoom
from mlops_core.clock import set_clock

# Job workers that tests start (one per database in tmp_path) exit a few seconds after their last job rather than
# after the default ten minutes.
os.environ.setdefault("MLOPS_WORKER_IDLE_S", "5")


# The fixtures that hand out a database: a test touches the store when it uses one of them, directly or through
# another fixture (pytest's ``item.fixturenames`` is the closure of what a test requests).
STORE_FIXTURES = frozenset({"db", "registered_credit_db"})


def touches_store(item) -> bool:
    """Whether ``item`` gets its database from the ``db`` or ``registered_credit_db`` fixture."""
    return not STORE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


def pytest_collection_modifyitems(config, items):
    """On PostgreSQL (``MLOPS_TEST_BACKEND=postgres``) keep only the tests that touch the store and are not about
    the DuckDB file itself (``duckdb_file``).

    The other tests (statistics, pages over their own DuckDB file, the command line over a path it builds) would
    run exactly as in the DuckDB pass, so running them again proves nothing; ``make test`` runs the suite on
    DuckDB first, then this subset on PostgreSQL.
    """
    if backend() != "postgres":
        return
    kept, left_out = [], []
    for item in items:
        (kept if touches_store(item) and item.get_closest_marker("duckdb_file") is None else left_out).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(scope="session", autouse=True)
def _postgres_cluster():
    """Stop the session's PostgreSQL cluster (started by the first test that needs it) at the end."""
    yield POSTGRES
    POSTGRES.stop()


def postgres_location(monkeypatch, tmp_path, template: str | None = None) -> str:
    """A fresh PostgreSQL database (a copy of ``template``) with its artifacts and logs in ``tmp_path``; its URL."""
    url = POSTGRES.fresh_database(template)
    monkeypatch.setenv("MLOPS_ARTIFACTS_DIR", str(tmp_path / "mlops_artifacts"))
    monkeypatch.setenv("MLOPS_LOG_DIR", str(tmp_path / "mlops_logs"))
    return url


@pytest.fixture
def db(tmp_path, monkeypatch):
    """Where a fresh database lives: the path of a DuckDB file that does not exist yet (created on first connect),
    or with ``MLOPS_TEST_BACKEND=postgres`` the URL of an empty PostgreSQL database (dropped after the test)."""
    if backend() == "postgres":
        url = postgres_location(monkeypatch, tmp_path)
        yield url
        POSTGRES.discard(url)
        return
    yield tmp_path / "mlops.duckdb"


@pytest.fixture(autouse=True)
def _real_clock():
    yield
    set_clock(None)


def make_training_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A small credit-like classification training set with numeric and categorical columns."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50.0, 10.0, n).round(2),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    logit = (df["income"] - 50) / 5 + (df["region"] == "south") * 0.5
    df["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


@pytest.fixture(scope="session")
def _registered_credit(tmp_path_factory):
    """A database with the classifier ``credit`` (target ``default``) registered once per test session."""

    folder = tmp_path_factory.mktemp("registered_credit")
    ControlRoom(folder / "mlops.duckdb").register("credit", "classification", "default", make_training_frame())
    return folder


@pytest.fixture(scope="session")
def _registered_credit_postgres(tmp_path_factory):
    """On PostgreSQL: a template database with ``credit`` registered, and the folder of its artifacts and logs."""
    import os

    folder = tmp_path_factory.mktemp("registered_credit_pg")

    def build(url):
        before = {k: os.environ.get(k) for k in ("MLOPS_ARTIFACTS_DIR", "MLOPS_LOG_DIR")}
        os.environ["MLOPS_ARTIFACTS_DIR"] = str(folder / "mlops_artifacts")
        os.environ["MLOPS_LOG_DIR"] = str(folder / "mlops_logs")
        try:
            ControlRoom(url).register("credit", "classification", "default", make_training_frame())
        finally:
            for k, v in before.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)

    return POSTGRES.template("registered_credit", build), folder


@pytest.fixture
def registered_credit_db(request, tmp_path, monkeypatch):
    """A private copy (database and artifacts) of the registered ``credit`` database; its location (on PostgreSQL
    dropped after the test)."""
    import shutil

    if backend() == "postgres":
        template, folder = request.getfixturevalue("_registered_credit_postgres")
        for p in folder.iterdir():
            shutil.copytree(p, tmp_path / p.name)
        url = postgres_location(monkeypatch, tmp_path, template)
        yield url
        POSTGRES.discard(url)
        return
    _registered_credit = request.getfixturevalue("_registered_credit")
    for p in _registered_credit.iterdir():
        (shutil.copytree if p.is_dir() else shutil.copy)(p, tmp_path / p.name)
    yield tmp_path / "mlops.duckdb"


@pytest.fixture
def training_csv(tmp_path):
    path = tmp_path / "train.csv"
    make_training_frame().to_csv(path, index=False)
    return path


def log_sql(db, sql: str, params=None, *, frame: bool = False):
    """Run ``sql`` over the metadata tables and every model's log as the views ``log_<model>`` and
    ``labels_<model>``: the Parquet files the metadata lists, as any client reads them. Returns the rows
    (a DataFrame with ``frame=True``)."""
    from mlops_core.store import Store, logs
    from mlops_core.store import models as mstore

    store = Store(db)
    if store.url is not None:  # PostgreSQL: the log engine reads the logs, with the metadata tables it names copied
        import re

        with store.connect() as meta:
            views = [logs.view(meta, store.logs, info) for info in mstore.list_models(meta)]
            tables = [r[0] for r in meta.execute("SELECT table_name FROM information_schema.tables "
                                                 "WHERE table_schema = current_schema()").fetchall()]
            copies = {t: meta.execute(f'SELECT * FROM "{t}"').df() for t in tables
                      if re.search(rf"\b{t}\b", sql)}
        with store.engine() as con:
            for name, frame_ in copies.items():
                con.register(name, frame_)
            return _log_sql(con, views, sql, params, frame)
    with store.connect() as con:
        return _log_sql(con, [logs.view(con, store.logs, info) for info in mstore.list_models(con)], sql, params,
                        frame)


def _log_sql(con, views, sql, params, frame):
    for v in views:
        con.execute(f'CREATE OR REPLACE TEMP VIEW "log_{v.info.name}" AS SELECT * FROM {v.predictions}')
        con.execute(f'CREATE OR REPLACE TEMP VIEW "labels_{v.info.name}" AS SELECT * FROM {v.labels}')
    result = con.execute(sql, params or [])
    return result.df() if frame else result.fetchall()


def log_view(db, model: str):
    """The listed files of a model's whole log (``store.logs.LogView``), for store functions that read it."""
    from mlops_core.store import Store, logs
    from mlops_core.store import models as mstore

    store = Store(db)
    with store.connect() as con:
        return logs.view(con, store.logs, mstore.get_model(con, model))


_MAIN_MODULE = sys.modules.get("__main__")


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Put pytest's ``__main__`` back after each test: Streamlit's AppTest runs a page script as ``__main__`` and
    leaves it in ``sys.modules``, and a process started with multiprocessing's ``spawn`` would then run the dashboard
    script on start-up (and die) instead of the function it was given."""
    yield
    if _MAIN_MODULE is not None and sys.modules.get("__main__") is not _MAIN_MODULE:
        sys.modules["__main__"] = _MAIN_MODULE

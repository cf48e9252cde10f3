"""Shared fixtures: a fresh database file in tmp_path and a small training set."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from mlops_core.clock import set_clock
from mlops_core import ControlRoom, Identity

# Job workers that tests start (one per database in tmp_path) exit a few seconds after their last job rather than
# after the default ten minutes.
os.environ.setdefault("MLOPS_WORKER_IDLE_S", "5")


@pytest.fixture
def db(tmp_path):
    """Path of a database file that does not exist yet (created on first connect)."""
    return tmp_path / "mlops.duckdb"


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
    from mlops_core.lifecycle.registry import register_model

    folder = tmp_path_factory.mktemp("registered_credit")
    ControlRoom(folder / "mlops.duckdb").register("credit", "classification", "default", make_training_frame())
    return folder


@pytest.fixture
def registered_credit_db(_registered_credit, tmp_path):
    """A private copy (database file and artifacts) of the registered ``credit`` database; return its path."""
    import shutil

    for p in _registered_credit.iterdir():
        (shutil.copytree if p.is_dir() else shutil.copy)(p, tmp_path / p.name)
    return tmp_path / "mlops.duckdb"


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
    with store.connect() as con:
        for v in [logs.view(con, store.logs, info) for info in mstore.list_models(con)]:
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

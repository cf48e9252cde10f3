"""Shared fixtures: a fresh database file in tmp_path and a small training set."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_core.store import set_clock


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


@pytest.fixture
def training_csv(tmp_path):
    path = tmp_path / "train.csv"
    make_training_frame().to_csv(path, index=False)
    return path

"""Factories for the monitoring tests: a registered model and prediction/label rows written in bulk."""
from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from _dashboard_support import copy_db
from _postgres_support import replace_from_template
from conftest import make_training_frame

from mlops_core import ControlRoom
from mlops_core.config import is_postgres_url
from mlops_core.store import Store
from mlops_core.store import predictions as pstore

T0 = datetime(2026, 3, 1)


_TEMPLATES: dict[tuple, Path] = {}


def _from_template(db, key: tuple, build) -> None:
    """Copy a database (and its artifacts) registered once per test session: training a model takes seconds."""
    if is_postgres_url(str(db)):
        if ControlRoom(db).models():  # a second model in the same database: register it for real
            build(db)
        else:
            replace_from_template(db, "mon_" + "_".join(map(str, key)), build)
        return
    if key not in _TEMPLATES:
        path = Path(tempfile.mkdtemp(prefix="mon-template-")) / "template.duckdb"
        build(path)
        _TEMPLATES[key] = path
    src, dst = _TEMPLATES[key], Path(db)
    if dst.exists():  # a second model in the same database: register it for real
        build(dst)
        return
    copy_db(src, dst.parent, dst.name)


def register_credit(db, n: int = 2000, seed: int = 0, name: str = "credit"):
    """Register a binary classifier on ``make_training_frame``; return the model info."""
    _from_template(db, ("credit", n, seed, name),
                   lambda p: ControlRoom(p).register(name, "classification", "default", make_training_frame(n, seed)))
    return ControlRoom(db).model(name).info


def register_regressor(db, n: int = 800, seed: int = 0, name: str = "eta"):
    _from_template(db, ("eta", n, seed, name), lambda p: _register_regressor(p, n, seed, name))
    return ControlRoom(db).model(name).info


def _register_regressor(db, n, seed, name):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"distance": rng.gamma(2.0, 2.0, n), "zone": rng.choice(["a", "b", "c"], n)})
    df["minutes"] = 10 + 3 * df["distance"] + (df["zone"] == "c") * 5 + rng.normal(0, 2, n)
    ControlRoom(db).register(name, "regression", "minutes", df)


def register_multiclass(db, n: int = 900, seed: int = 0, name: str = "tri"):
    _from_template(db, ("tri", n, seed, name), lambda p: _register_multiclass(p, n, seed, name))
    return ControlRoom(db).model(name).info


def _register_multiclass(db, n, seed, name):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(0, 1, n), "colour": rng.choice(["red", "blue"], n)})
    df["kind"] = np.where(df["x"] < -0.4, "low", np.where(df["x"] > 0.4, "high", "mid"))
    ControlRoom(db).register(name, "classification", "kind", df)


def log_rows(features: pd.DataFrame, *, start: datetime = T0, step: timedelta = timedelta(minutes=1), version: int = 1,
             prediction=None, score=None, prefix: str = "r", first: int = 0) -> pd.DataFrame:
    """Prediction-log rows for ``features`` spaced ``step`` apart from ``start``."""
    n = len(features)
    out = pd.DataFrame({
        "request_id": [f"{prefix}{first + i}" for i in range(n)],
        "version": np.full(n, version, dtype="int32"),
        "variant": None,
        "ts": pd.Timestamp(start) + pd.to_timedelta(np.arange(n) * (step / timedelta(microseconds=1)), unit="us"),
    })
    for c in features.columns:
        out[c] = features[c].to_numpy()
    out["prediction"] = prediction if prediction is not None else None
    out["score"] = score if score is not None else np.nan
    out["batch_id"] = "test"
    return out


def write(db, info, log: pd.DataFrame, labels: pd.DataFrame | None = None) -> None:
    """Append prediction rows (and label rows: request_id, label) to the model's log, without checks."""
    pstore.append(Store(db), info, "predictions", log)
    if labels is not None and len(labels):
        lab = labels.copy()
        lab["label_ts"] = lab.get("label_ts", T0)
        lab["batch_id"] = "labels"
        pstore.append(Store(db), info, "labels", lab[["request_id", "label", "label_ts", "batch_id"]])


def credit_features(n: int, seed: int, income_shift: float = 0.0) -> pd.DataFrame:
    df = make_training_frame(n, seed)
    feats = df[["age", "income", "region"]].copy()
    feats["age"] = feats["age"].astype(float)
    feats["income"] = feats["income"] + income_shift
    return feats

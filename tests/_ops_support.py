"""Factories for the operations tests: a registered model with a labelled prediction log ending now."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from _postgres_support import scratch
from conftest import make_training_frame

from mlops_core import ControlRoom, Identity
from mlops_core.store import Store, connect, utcnow
from mlops_core.store import models as mstore
from mlops_core.store import predictions as pstore

MODEL = "credit"


def labelled_frame(n: int, seed: int, concept: str = "same") -> pd.DataFrame:
    """Features like ``make_training_frame``; ``concept='shifted'`` draws the label from a different rule."""
    df = make_training_frame(n, seed)
    if concept == "shifted":
        rng = np.random.default_rng(seed + 1000)
        logit = (df["age"] - 49) / 6 - (df["income"] - 50) / 10
        df["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def append_log(db, frame: pd.DataFrame, *, days: float = 20, end=None, prefix: str = "r", version: int = 1,
               label_share: float = 1.0, model: str = MODEL, predictions=None) -> None:
    """Log ``frame``'s rows as predictions evenly spread over ``days`` up to ``end`` (default now) with their labels."""
    end = end or (utcnow() - timedelta(minutes=5))
    n = len(frame)
    step = timedelta(days=days) / n
    ts = [end - timedelta(days=days) + step * i for i in range(n)]
    log = frame.drop(columns=["default"]).copy()
    log["age"] = log["age"].astype(float)
    log["request_id"] = [f"{prefix}{i}" for i in range(n)]
    log["version"] = version
    log["variant"] = None
    log["ts"] = ts
    log["prediction"] = "0" if predictions is None else [str(p) for p in predictions]
    log["score"] = 0.5
    log["batch_id"] = f"{prefix}-batch"
    k = int(n * label_share)
    labels = pd.DataFrame({"request_id": log["request_id"][:k], "label": frame["default"].astype(str)[:k],
                           "label_ts": ts[:k], "batch_id": f"{prefix}-labels"})
    with connect(db, write=True, create=True) as con:
        info = mstore.get_model(con, model)
    pstore.append(Store(db), info, "predictions", log)
    pstore.append(Store(db), info, "labels", labels)


def build(db, *, concept: str = "shifted", n: int = 1500, days: float = 20, seed: int = 1) -> None:
    """Register ``credit`` (v1 on the base concept) and log ``n`` labelled predictions of ``concept``.

    v1 is the default pipeline with 40 boosting iterations (a quick fit, so retrains in tests stay fast).
    """
    import skops.io as sio

    from mlops_core.data.schema import infer_schema
    from mlops_core.lifecycle import training

    train = make_training_frame(600)
    features = infer_schema(train, "default")
    pipe = training.default_pipeline("classification", features, 0, max_iter=40)
    pipe.fit(training.coerce_features(train.drop(columns=["default"]), features), train["default"].astype(str))
    path = scratch(db) / "v1.skops"
    sio.dump(pipe, path)
    ControlRoom(db).register(MODEL, "classification", "default", train, artifact=path)
    append_log(db, labelled_frame(n, seed, concept), days=days)


def retrain_now(db, **params):
    """Queue a retrain and run it in this process (the job's own code path without the detached process)."""

    run_id = ControlRoom(db, identity=Identity("tester", 'admin')).model(MODEL).retrain(params=params or None, spawn=False)
    try:
        ControlRoom(db).execute_retrain(run_id)
    except Exception:
        pass
    return ControlRoom(db).run(run_id)


def artifact_files(db, model: str = MODEL) -> set[str]:
    from mlops_core.config import artifacts_dir

    folder = artifacts_dir(db) / model
    return {p.name for p in folder.iterdir()} if folder.exists() else set()

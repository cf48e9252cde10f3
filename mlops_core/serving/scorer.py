"""Scoring rows with what serves a model now: the loaded versions, the arm of each request, the log rows.

``Live`` is one consistent picture of the serving side (the deployment config in force, the
champion's and challenger's loaded estimators); a batch of requests is scored against one ``Live``
from start to end, so a switch of versions (``router``) never splits a batch. ``score_frame``
returns what the caller answers and the rows the log receives: one ``predictions`` row per request
(arm ``champion`` or ``challenger``) and, in shadow mode, one ``shadow`` row per request with the same
request id (arm ``shadow``).

Classification: the prediction is the class of highest ``predict_proba`` (the first class on a tie,
which is what scikit-learn's ``predict`` returns for its probabilistic classifiers), so one pass gives
both prediction and score; the score is the positive class's probability (binary models only).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from mlops_core.entities import DeploymentConfig, ModelInfo, VersionInfo
from mlops_core.lifecycle import deployments

#: The log's column order for one scored row (``store.logs.columns`` without ``batch_id``).
REQUEST_ID, VERSION, VARIANT, TS, PREDICTION, SCORE = "request_id", "version", "variant", "ts", "prediction", "score"


@dataclass(frozen=True)
class LoadedVersion:
    """A version's verified estimator, ready to score (``predict``)."""

    version: VersionInfo
    estimator: object
    task: str
    classes: tuple[str, ...]
    positive_index: int | None

    @classmethod
    def of(cls, info: ModelInfo, version: VersionInfo, estimator) -> LoadedVersion:
        classes = tuple(str(c) for c in getattr(estimator, "classes_", ()))
        positive = classes.index(info.positive_class) if info.positive_class in classes else None
        return cls(version, estimator, info.task, classes, positive)

    @property
    def number(self) -> int:
        return self.version.version

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, positive-class scores or None) of ``frame`` (the model's features, coerced)."""
        est = self.estimator
        if self.task == "classification" and hasattr(est, "predict_proba") and self.classes:
            proba = np.asarray(est.predict_proba(frame))
            pred = np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)]
            score = proba[:, self.positive_index] if self.positive_index is not None else None
            return pred, score
        pred = est.predict(frame)
        if self.task == "classification":
            return np.asarray(pred).astype(str).astype(object), None
        return np.asarray(pred, dtype=float), None


@dataclass(frozen=True)
class Live:
    """What serves a model at one moment: the config in force, the champion's and challenger's loaded versions.

    ``generation`` grows with every switch; ``since``: when this picture was put in force.
    """

    info: ModelInfo
    config: DeploymentConfig
    champion: LoadedVersion
    challenger: LoadedVersion | None
    generation: int
    since: datetime

    def share(self, at: datetime) -> float:
        return deployments.challenger_share(self.config, at) if self.challenger is not None else 0.0


@dataclass
class Scored:
    """The outcome of scoring n requests: what each caller gets, and the log rows (Arrow tables)."""

    prediction: np.ndarray
    score: np.ndarray | None
    version: np.ndarray
    arm: np.ndarray
    rows: pa.Table          # one row per request, arm champion or challenger
    shadow: pa.Table | None  # shadow mode: one row per request, arm shadow


def assign(live: Live, keys: list[str], at: datetime) -> np.ndarray:
    """True where the challenger answers the request of that key (sticky: the same key, the same arm)."""
    share = live.share(at)
    if share <= 0:
        return np.zeros(len(keys), dtype=bool)
    model = live.info.name
    return np.fromiter((deployments.assignment_point(model, k) < share for k in keys), dtype=bool, count=len(keys))


def log_schema(info: ModelInfo) -> pa.Schema:
    """The Arrow schema of scored rows in the log's layout (features typed as the schema says)."""
    pred = pa.string() if info.task == "classification" else pa.float64()
    return pa.schema([(REQUEST_ID, pa.string()), (VERSION, pa.int32()), (VARIANT, pa.string()),
                      (TS, pa.timestamp("us")),
                      *((f.name, pa.float64() if f.kind == "numeric" else pa.string()) for f in info.features),
                      (PREDICTION, pred), (SCORE, pa.float64())])


def _column(values, typ: pa.DataType) -> pa.Array:
    # from_pandas: NaN (how the frame the model saw marks a missing value) becomes NULL in the log, as in ingest
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    return pa.array(values, type=typ, from_pandas=True)


def log_rows(info: ModelInfo, frame: pd.DataFrame, *, request_ids, version: np.ndarray, arm,
             ts: datetime | np.ndarray, prediction: np.ndarray, score: np.ndarray | None) -> pa.Table:
    """Scored rows as an Arrow table of ``log_schema(info)``."""
    schema = log_schema(info)
    n = len(frame)
    arm_values = arm if isinstance(arm, np.ndarray) else np.full(n, arm, dtype=object)
    ts_values = ts if isinstance(ts, np.ndarray) else np.full(n, np.datetime64(ts, "us"))
    cols = [pa.array(request_ids, type=pa.string()), pa.array(version, type=pa.int32()),
            pa.array(arm_values, type=pa.string()), pa.array(ts_values, type=pa.timestamp("us"))]
    for f in info.features:
        cols.append(_column(frame[f.name], schema.field(f.name).type))
    cols.append(_column(prediction, schema.field(PREDICTION).type))
    cols.append(pa.array(score if score is not None else np.full(n, np.nan), type=pa.float64(), from_pandas=True))
    return pa.Table.from_arrays(cols, schema=schema)


def score_frame(live: Live, frame: pd.DataFrame, request_ids: list[str], keys: list[str], *,
                at: datetime, ts: np.ndarray | None = None) -> Scored:
    """Score ``frame`` (the model's features, coerced by ``data.schema.coerce_features``) under ``live``.

    ``keys``: each request's assignment key; ``ts``: each row's timestamp for the log (default ``at``).
    """
    n = len(frame)
    to_challenger = assign(live, keys, at)
    version = np.full(n, live.champion.number, dtype=np.int32)
    arm = np.full(n, deployments.CHAMPION, dtype=object)
    task = live.info.task
    prediction = np.empty(n, dtype=object if task == "classification" else float)
    binary = live.info.binary
    score = np.full(n, np.nan) if binary else None
    groups = [(live.champion, ~to_challenger)]
    if to_challenger.any():
        groups.append((live.challenger, to_challenger))
        version[to_challenger] = live.challenger.number
        arm[to_challenger] = deployments.CHALLENGER
    for loaded, mask in groups:
        if not mask.any():
            continue
        part = frame if mask.all() else frame[mask]
        pred, sc = loaded.predict(part)
        prediction[mask] = pred
        if score is not None and sc is not None:
            score[mask] = sc
    stamp = ts if ts is not None else at
    rows = log_rows(live.info, frame, request_ids=request_ids, version=version, arm=arm, ts=stamp,
                    prediction=prediction, score=score)
    shadow = None
    if live.config.mode == "shadow" and live.challenger is not None:
        pred, sc = live.challenger.predict(frame)
        shadow = log_rows(live.info, frame, request_ids=request_ids,
                          version=np.full(n, live.challenger.number, dtype=np.int32), arm=deployments.SHADOW,
                          ts=stamp, prediction=pred, score=sc if binary else None)
    return Scored(prediction, score, version, arm, rows, shadow)

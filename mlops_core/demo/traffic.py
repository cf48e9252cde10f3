"""The demo's serving system: a day of requests per model, routed and scored, as the nightly batches it drops.

Each model and day draws its requests from a generator of its own, seeded with ``(seed, model,
day)``, so a day's traffic does not depend on how the build groups days. A request is served by
the version that held the production alias at its time, or, inside an A/B window, by the
challenger for a share of the requests (``Router``, read from the model's deployment history).
Its prediction and score are what that version's fitted model outputs (``Scorer``, the artifacts
loaded through ``Model.load``), computed once per version for a whole run of days. ``predictions``
and ``labels`` turn the result into the Arrow tables that ``Model.ingest`` takes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlops_core import Model
from mlops_core.demo import simulate
from mlops_core.demo.timeline import Timeline

CREDIT, DELIVERY = "credit_default", "delivery_time"
ID_PREFIX = {CREDIT: "cd-", DELIVERY: "dt-"}
#: The stream of each model in the seed of a day's generator.
_STREAM = {CREDIT: 1, DELIVERY: 2}


@dataclass
class Day:
    """One model-day of simulated requests (sorted by time) and what will become of them."""

    model: str
    day: int
    first_id: int  # request ids are <prefix><first_id + i>
    ts: np.ndarray  # int64 microseconds since the epoch
    X: pd.DataFrame  # features; categoricals as pandas Categorical
    y: np.ndarray  # the true outcome
    delay: np.ndarray  # label delay in microseconds, -1 = never
    u: np.ndarray  # uniform draws that route requests in an A/B window

    def __len__(self) -> int:
        return len(self.ts)

    def ids(self) -> pa.Array:
        nums = pc.cast(pa.array(np.arange(self.first_id, self.first_id + len(self), dtype=np.int64)), pa.string())
        return pc.binary_join_element_wise(ID_PREFIX[self.model], pc.utf8_lpad(nums, 9, "0"), "")


def day_counts(model: str, seed: int, tl: Timeline, daily: int) -> np.ndarray:
    """Requests of each day: ``daily`` on average, with the model's weekly rhythm and +-5% noise."""
    rng = np.random.default_rng([seed, _STREAM[model], 10_000])
    weekdays = np.array([tl.at(d).weekday() for d in range(tl.days)])
    weights = simulate.CREDIT_WEEKDAY if model == CREDIT else simulate.DELIVERY_WEEKDAY
    return simulate.daily_counts(rng, weekdays, daily, weights)


def day_traffic(model: str, seed: int, day: int, n: int, tl: Timeline, *, first_id: int = 1) -> Day:
    """The requests of ``model`` on ``day`` (``n`` of them, fewer on the last day: only those up to its end)."""
    rng = np.random.default_rng([seed, _STREAM[model], day])
    hourly = simulate.CREDIT_HOURLY if model == CREDIT else simulate.DELIVERY_HOURLY
    offsets = simulate.times_of_day(rng, n, hourly)
    ts = tl.us(tl.at(day)) + offsets
    drift, shifted = tl.drift(day), tl.shifted(day)
    if model == CREDIT:
        X = simulate.credit_features(rng, n, drift)
        y = simulate.credit_labels(rng, X, shifted)
    else:
        X = simulate.delivery_features(rng, n, hour_of_day=offsets // 3_600_000_000, drift=drift)
        y = simulate.delivery_minutes(rng, X, shifted)
    delay = simulate.label_delays(rng, n)
    u = rng.random(n)
    keep = ts <= tl.us(tl.end)  # the last day: only what has happened yet
    if not keep.all():
        ts, X, y, delay, u = ts[keep], X[keep].reset_index(drop=True), y[keep], delay[keep], u[keep]
    return Day(model, day, first_id, ts, X, y, delay, u)


class Router:
    """Which version served each request, from a model's deployment history (``Model.deployment_history``).

    Production serves every request of its window; inside a challenger window, requests whose
    routing draw is below ``share`` go to the challenger (variant ``challenger``), the others to
    production (variant ``champion``). Outside A/B windows the variant is empty.
    """

    def __init__(self, history: pd.DataFrame, tl: Timeline, share: float):
        self.share = share
        self.production: list[tuple[int, int, int]] = []  # (from µs, to µs, version)
        self.challenger: list[tuple[int, int, int]] = []
        far = tl.us(tl.end) + 1
        for row in history.itertuples(index=False):
            span = (tl.us(row.started_at), far if pd.isna(row.ended_at) else tl.us(row.ended_at), int(row.version))
            if row.alias == "production":
                self.production.append(span)
            elif row.alias == "challenger":
                self.challenger.append(span)

    def route(self, ts: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(version, variant) of each request."""
        version = np.zeros(len(ts), dtype=np.int32)
        for lo, hi, v in self.production:
            version[(ts >= lo) & (ts < hi)] = v
        variant = np.full(len(ts), None, dtype=object)
        for lo, hi, v in self.challenger:
            window = (ts >= lo) & (ts < hi)
            to_challenger = window & (u < self.share)
            variant[window] = "champion"
            variant[to_challenger] = "challenger"
            version[to_challenger] = v
        if (version == 0).any():
            raise RuntimeError("a request came before any version held production")  # a bug of the build
        return version, variant


class Scorer:
    """The outputs of each serving version's fitted model (loaded once per version, sha256-checked)."""

    def __init__(self, model: Model):
        self.model = model
        self.binary = model.info.binary
        self.positive = model.info.positive_class
        self._pipelines: dict[int, object] = {}

    def _pipeline(self, version: int):
        if version not in self._pipelines:
            self._pipelines[version] = self.model.load(version)
        return self._pipelines[version]

    def outputs(self, X: pd.DataFrame, version: np.ndarray) -> tuple[pa.Array, np.ndarray | None]:
        """(prediction, score) of each row, scored by its version in one call per version.

        A binary classifier's score is ``predict_proba``'s positive column and its prediction
        the class of highest probability (what ``predict`` returns); a regressor's prediction is
        ``predict`` and it has no score.
        """
        n = len(X)
        if self.binary:
            score = np.empty(n)
            prediction = np.empty(n, dtype=object)
            for v in np.unique(version):
                rows = np.flatnonzero(version == v)
                pipe = self._pipeline(int(v))
                proba = pipe.predict_proba(X.iloc[rows])
                classes = np.array([str(c) for c in pipe.classes_], dtype=object)
                score[rows] = proba[:, list(classes).index(self.positive)]
                prediction[rows] = classes[np.argmax(proba, axis=1)]
            return pa.array(prediction, type=pa.string()), score
        prediction = np.empty(n)
        for v in np.unique(version):
            rows = np.flatnonzero(version == v)
            prediction[rows] = self._pipeline(int(v)).predict(X.iloc[rows])
        return pa.array(prediction), None


def _column(values: pd.Series) -> pa.Array:
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = pa.array(values.cat.codes.to_numpy())
        return pc.cast(pa.DictionaryArray.from_arrays(codes, list(values.cat.categories)), pa.string())
    return pa.array(values.to_numpy(dtype=np.float64))


def predictions(day: Day, version: np.ndarray, variant: np.ndarray, prediction: pa.Array,
                score: np.ndarray | None) -> pa.Table:
    """The day's prediction log as a serving system drops it: request id, time, version, variant, features,
    prediction and (binary classifiers) score."""
    cols = {"request_id": day.ids(), "timestamp": pa.array(day.ts.view("datetime64[us]")),
            "version": pa.array(version, type=pa.int32()), "variant": pa.array(variant, type=pa.string())}
    for name in day.X.columns:
        cols[name] = _column(day.X[name])
    cols["prediction"] = prediction
    if score is not None:
        cols["score"] = pa.array(score)
    return pa.table(cols)


def labels(day: Day, tl: Timeline) -> dict[int, pa.Table]:
    """The labels of the day's requests by the day they arrive on (request id, label, arrival time); labels that
    never arrive, or arrive after the end of the timeline, are left out."""
    arrival = day.ts + day.delay
    arrived = (day.delay >= 0) & (arrival <= tl.us(tl.end))
    idx = np.flatnonzero(arrived)
    if not len(idx):
        return {}
    ids = day.ids().take(pa.array(idx))
    if day.model == CREDIT:
        label = pa.array(day.y[idx].astype(str))
    else:
        label = pa.array(day.y[idx].astype(np.float64))
    table = pa.table({"request_id": ids, "label": label, "timestamp": pa.array(arrival[idx].view("datetime64[us]"))})
    arrival_day = tl.day_of(arrival[idx])
    out = {}
    for d in np.unique(arrival_day):
        out[int(d)] = table.filter(pa.array(arrival_day == d))
    return out

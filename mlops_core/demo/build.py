"""The demo database: two models, 90 days of realistic traffic and their history.

``build_demo()`` (CLI: ``python -m mlops_core demo``) registers ``credit_default``
(binary classification) and ``delivery_time`` (regression) from the training files in
``sample_data/`` and simulates ``days`` days of traffic ending at ``end`` (default:
now, UTC; the last day is today, up to now) with the processes of
``mlops_core.simulate``. Every logged prediction and score is what the fitted model of
the version serving at that moment outputs on the simulated request.

Timeline (day numbers for the default 90 days; other lengths scale them):

- day 0: both models registered (version 1 in production) through the
  ``register --artifact`` path: the default pipeline with smaller trees, fitted on the
  shipped training file.
- day 25, 09:00: credit_default v2 is retrained on the labelled traffic of days 1-20
  (runs validate, retrain, evaluate; the gate passes) and from day 26, 08:00 serves 20%
  of the traffic as the ``challenger`` of an A/B test (variant ``challenger`` vs
  ``champion``, a ``challenger`` alias row).
- day 30, 10:00: v2 is promoted (gate passed, reason and audit event), v1 archived.
- day 50 on: covariate drift in ``income`` (down), ``utilization`` (up) and
  ``purpose`` (more consolidation and medical loans), growing until the last day;
  more rain and snow for deliveries.
- day 62: a scheduled retrain fails (the database was busy): the one failed run.
- day 70: concept shift: defaults rise for high debt-to-income and the self-employed
  (accuracy of v2 drops); deliveries outside the centre take longer (a road closure).
- day 75: an automated retrain of credit_default on the labelled traffic of days 68-74,
  across the shift, produces v3, which fails its gate (too few labels yet) and is
  ``rejected``.
- every day: one ingest run and one ``ingest_batches`` row per model and day, one labels
  batch per arrival day; a monitor run every Monday; at the end,
  ``alerts.run_monitoring`` stores drift results and alerts for both models.

v2 needs about 5,000 labelled rows in its window to beat v1 reliably (the default size
gives 16,000). In small demos (a few hundred a day, or short ``--days``) it can fail its
gate; v1 then keeps serving, without the A/B test and the promotion.

Labels arrive 1 to 14 days after the prediction (most within a week), about 10% never,
so the last days have few or no labels. Request ids are ``cd-<n>`` and ``dt-<n>``.

Speed: scikit-learn fits and scores with one OpenMP thread during the build. The other
core appends the previous chunk to DuckDB in a background thread meanwhile, and on a
busy machine OpenMP's spinning worker threads waste most of their CPU (measured: the
default build needs 8 s of CPU with one thread, 25 to 34 s with two on a busy machine).

The build sets the store's clock to simulated time while it runs, so every row the
registry writes is backdated; do not call it inside a process that serves users.

Reproducible: each model and day draws from its own generator seeded by
``(seed, model, day)``, and scikit-learn gets fixed seeds, so the same ``seed``,
``days``, ``daily`` and ``end`` give the same log, labels and version metrics.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from threadpoolctl import threadpool_limits

from mlops_core.lifecycle import registry, training
from mlops_core.demo import simulate
from mlops_core.config import artifacts_dir, logs_dir, resolve_db_path
from mlops_core.errors import AlreadyExistsError
from mlops_core import clock as store_clock
from mlops_core.data.schema import coerce_features
from mlops_core.lifecycle.artifacts import load_estimator_file
from mlops_core.store import Store, connect, forget_database, transaction
from mlops_core.store import models as mstore
from mlops_core.store import predictions as pstore
from mlops_core.store import runs as runstore
from mlops_core.store import validation as vstore

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data"
CREDIT_TRAIN = "credit_default_train.csv"
DELIVERY_TRAIN = "delivery_time_train.csv"
#: Seeds of the shipped training files (fixed: the files are part of the project).
SAMPLE_SEED = 20261126
CREDIT_TRAIN_ROWS, DELIVERY_TRAIN_ROWS = 20_000, 12_500

CREDIT, DELIVERY = "credit_default", "delivery_time"
US_PER_DAY = 86_400_000_000
#: Days of the default 90-day timeline; ``_Timeline`` scales them to other lengths.
V2_TRAIN_DAY, AB_START_DAY, V2_PROMOTE_DAY = 25, 26, 30
DRIFT_DAY, FAILED_RUN_DAY, SHIFT_DAY, V3_DAY = 50, 62, 70, 75
CHALLENGER_SHARE = 0.2
MIN_DAYS, MIN_DAILY = 30, 100
#: Labelled rows kept per day to train v2/v3 (bounds training time at any --daily).
TRAIN_ROWS_PER_DAY = 1000
#: The retrains' gate: ROC AUC at most this much below the champion's on the candidate's
#: holdout, and labels for at least this share of the training window's requests.
GATE_AUC_TOLERANCE = 0.005
GATE_MIN_LABEL_COVERAGE = 0.7
#: Hyperparameters of the default pipeline's gradient boosting for each model's versions:
#: fewer, smaller trees than scikit-learn's defaults, as accurate on these data (holdout
#: ROC AUC 0.836 vs 0.832; MAE 2.91 vs 2.92) and 2-3x faster to score ten million rows.
CREDIT_HYPERPARAMETERS = {"learning_rate": 0.15, "max_iter": 60, "max_leaf_nodes": 15, "l2_regularization": 1.0}
DELIVERY_HYPERPARAMETERS = {"learning_rate": 0.2, "max_iter": 40, "max_leaf_nodes": 15}
RETRAIN_HYPERPARAMETERS = CREDIT_HYPERPARAMETERS


@dataclass
class DemoSummary:
    """What ``build_demo`` built."""

    db: str
    start: datetime
    end: datetime
    days: int
    daily: int
    seed: int
    predictions: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    runs: int = 0
    audit_events: int = 0
    monitoring: str = "not run"
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        """A short human-readable summary."""
        out = [f"Demo database {self.db}: {self.days} days of traffic, "
               f"{self.start:%Y-%m-%d} to {self.end:%Y-%m-%d %H:%M} UTC (seed {self.seed})."]
        for m in self.predictions:
            vs = ", ".join(f"v{v} {s}" for v, s in self.versions.get(m, []))
            out.append(f"  {m}: {self.predictions[m]:,} predictions, {self.labels[m]:,} labels; {vs}")
        out.append(f"  {self.runs} pipeline runs, {self.audit_events} audit events; monitoring: {self.monitoring}")
        out.append(f"Built in {self.seconds:.1f} s.")
        return out


# ----------------------------------------------------------------------------- sample files

def write_sample_files(folder: str | os.PathLike = SAMPLE_DIR) -> list[Path]:
    """Write the shipped training files (fixed seed) into ``folder``; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    credit = simulate.credit_training_frame(np.random.default_rng([SAMPLE_SEED, 1]), CREDIT_TRAIN_ROWS)
    delivery = simulate.delivery_training_frame(np.random.default_rng([SAMPLE_SEED, 2]), DELIVERY_TRAIN_ROWS)
    paths = [folder / CREDIT_TRAIN, folder / DELIVERY_TRAIN]
    credit.to_csv(paths[0], index=False)
    delivery.to_csv(paths[1], index=False)
    return paths


def _training_file(name: str) -> Path:
    path = SAMPLE_DIR / name
    if not path.exists():  # an installed copy without sample_data/: regenerate the identical file
        write_sample_files(SAMPLE_DIR)
    return path


# ----------------------------------------------------------------------------- timeline

@dataclass
class _Timeline:
    days: int
    start: datetime  # midnight of day 0
    end: datetime

    def day(self, default_day: int) -> int:
        """The day of the default 90-day timeline scaled to ``days``."""
        return min(self.days - 1, max(1, round(default_day * self.days / 90)))

    def at(self, day: int, hour: float = 0.0) -> datetime:
        return self.start + timedelta(days=day, hours=hour)

    def us(self, when: datetime) -> int:
        return int((when - datetime(1970, 1, 1)) // timedelta(microseconds=1))

    def drift(self, day: np.ndarray) -> np.ndarray:
        d0 = self.day(DRIFT_DAY)
        return np.clip((day - d0) / max(self.days - 1 - d0, 1), 0.0, 1.0)

    def shift(self, day: np.ndarray) -> np.ndarray:
        return day >= self.day(SHIFT_DAY)


class _SimClock:
    """The store's clock during the build: simulated time, so rows created by the registry are backdated."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# ----------------------------------------------------------------------------- traffic

@dataclass
class _Day:
    """One model-day of simulated traffic."""

    day: int
    ts: np.ndarray  # int64 microseconds since the epoch, sorted
    X: pd.DataFrame
    y: np.ndarray
    delay: np.ndarray  # label delay in microseconds, -1 = never
    u: np.ndarray  # uniform draws that route requests in an A/B window
    weight: float = 1.0  # logged requests per row kept (days thinned for retraining)


def _day_traffic(model: str, seed: int, day: int, n: int, tl: _Timeline) -> _Day:
    rng = np.random.default_rng([seed, 1 if model == CREDIT else 2, day])
    hourly = simulate.CREDIT_HOURLY if model == CREDIT else simulate.DELIVERY_HOURLY
    offsets = simulate.times_of_day(rng, n, hourly)
    ts = tl.us(tl.at(day)) + offsets
    drift, shift = tl.drift(np.array(day)), tl.shift(np.array(day))
    if model == CREDIT:
        X = simulate.credit_features(rng, n, drift)
        y = simulate.credit_labels(rng, X, shift)
    else:
        X = simulate.delivery_features(rng, n, hour_of_day=offsets // 3_600_000_000, drift=drift)
        y = simulate.delivery_minutes(rng, X, shift)
    delay = simulate.label_delays(rng, n)
    u = rng.random(n)
    keep = ts <= tl.us(tl.end)  # today: only what has happened yet
    if not keep.all():
        ts, X, y, delay, u = ts[keep], X[keep].reset_index(drop=True), y[keep], delay[keep], u[keep]
    return _Day(day, ts, X, y, delay, u)


def _day_counts(model: str, seed: int, tl: _Timeline, daily: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 1 if model == CREDIT else 2, 10_000])
    weekdays = np.array([tl.at(d).weekday() for d in range(tl.days)])
    weights = simulate.CREDIT_WEEKDAY if model == CREDIT else simulate.DELIVERY_WEEKDAY
    return simulate.daily_counts(rng, weekdays, daily, weights)


def _ids(prefix: str, first: int, n: int) -> pa.Array:
    nums = pc.cast(pa.array(np.arange(first, first + n, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(nums, 9, "0"), "")


def _batch_id(model: str, kind: str, day_start: datetime) -> str:
    return f"demo-{model}-{kind}-{day_start:%Y%m%d}"


def _strings(values: pd.Series | np.ndarray) -> pa.Array:
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        return pc.cast(pa.DictionaryArray.from_arrays(values.cat.codes.to_numpy(), list(values.cat.categories)), pa.string())
    return pa.array(values, type=pa.string())


class _Server:
    """Which version serves a request at a time, and its real model outputs (vectorised per version)."""

    def __init__(self, model: str, task: str):
        self.model, self.task = model, task
        self.pipelines: dict[int, object] = {}
        self.changes: list[tuple[int, int]] = []  # (from µs, version), ascending
        self.ab: tuple[int, int, int, float] | None = None  # (from µs, to µs, challenger version, share)

    def route(self, ts: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        version = np.zeros(len(ts), dtype=np.int32)
        for since, v in self.changes:
            version[ts >= since] = v
        variant = np.full(len(ts), None, dtype=object)
        if self.ab is not None:
            lo, hi, challenger, share = self.ab
            window = (ts >= lo) & (ts < hi)
            to_challenger = window & (u < share)
            variant[window] = "champion"
            variant[to_challenger] = "challenger"
            version[to_challenger] = challenger
        return version, variant

    def outputs(self, X: pd.DataFrame, version: np.ndarray) -> tuple[pa.Array, np.ndarray | None]:
        n = len(X)
        if self.task == "classification":
            score = np.empty(n)
            positive = np.empty(n, dtype=bool)
            for v in np.unique(version):
                mask = version == v
                pipe = self.pipelines[int(v)]
                proba = _predict(pipe, X[mask], "predict_proba")
                pos = list(map(str, pipe.classes_)).index("1")
                score[mask] = proba[:, pos]
                # predict() is the argmax of predict_proba (first class on a tie): one pass gives both
                positive[mask] = proba[:, pos] > proba[:, 1 - pos]
            pred = pa.DictionaryArray.from_arrays(pa.array(positive.astype(np.int8)), ["0", "1"])
            return pc.cast(pred, pa.string()), score
        pred = np.empty(n)
        for v in np.unique(version):
            mask = version == v
            pred[mask] = _predict(self.pipelines[int(v)], X[mask], "predict")
        return pa.array(pred), None


def _design_matrix(pipe, X: pd.DataFrame) -> np.ndarray | None:
    """The default pipeline's preprocessing of ``X`` built straight from the categorical codes.

    Gives the same float64 matrix as ``pipe[:-1].transform(X)`` (median imputation, one-hot
    in the encoder's category order, unseen categories all zero) several times faster on
    millions of rows. Returns None for any other pipeline, which is then used as it is.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    steps = getattr(pipe, "steps", None)
    if not steps or len(steps) != 2 or not isinstance(steps[0][1], ColumnTransformer):
        return None
    pre = steps[0][1]
    parts = []
    for name, trans, cols in pre.transformers_:
        if name == "remainder":
            if trans != "drop":
                return None
            continue
        cols = list(cols)
        if isinstance(trans, SimpleImputer) and all(not isinstance(X[c].dtype, pd.CategoricalDtype) for c in cols):
            if trans.strategy != "median" or getattr(trans, "add_indicator", False):
                return None
            vals = X[cols].to_numpy(dtype=np.float64)
            if np.isnan(vals).any():
                vals = np.where(np.isnan(vals), trans.statistics_[None, :], vals)
            parts.append(vals)
        elif isinstance(trans, Pipeline) and len(trans.steps) == 2 and isinstance(trans.steps[1][1], OneHotEncoder):
            enc = trans.steps[1][1]
            if (enc.drop_idx_ is not None or getattr(enc, "_infrequent_enabled", False)
                    or enc.handle_unknown != "ignore" or not all(isinstance(X[c].dtype, pd.CategoricalDtype) for c in cols)):
                return None
            for c, cats in zip(cols, enc.categories_):
                codes = X[c].cat.codes.to_numpy()
                if (codes < 0).any():  # missing values take the imputer's path
                    return None
                lookup = {str(v): i for i, v in enumerate(cats)}
                position = np.array([lookup.get(str(v), -1) for v in X[c].cat.categories], dtype=np.int64)[codes]
                block = np.zeros((len(X), len(cats)))
                hit = position >= 0
                block[np.flatnonzero(hit), position[hit]] = 1.0
                parts.append(block)
        else:
            return None
    return np.hstack(parts) if parts else None


def _predict(pipe, X: pd.DataFrame, method: str) -> np.ndarray:
    Z = _design_matrix(pipe, X)
    if Z is None:
        return getattr(pipe, method)(X)
    return getattr(pipe.steps[-1][1], method)(Z)


def _log_table(model: str, days: list[_Day], first_id: int, version: np.ndarray, variant: np.ndarray,
               prediction: pa.Array, score, tl: _Timeline) -> pa.Table:
    X = pd.concat([d.X for d in days], ignore_index=True) if len(days) > 1 else days[0].X
    ts = np.concatenate([d.ts for d in days])
    n = len(ts)
    batch = np.concatenate([np.full(len(d.ts), i, dtype=np.int32) for i, d in enumerate(days)])
    names = [_batch_id(model, "pred", tl.at(d.day)) for d in days]
    cols = {
        "request_id": _ids("cd-" if model == CREDIT else "dt-", first_id, n),
        "version": pa.array(version, type=pa.int32()),
        "variant": pa.array(variant, type=pa.string()),
        "ts": pa.array(ts.view("datetime64[us]")),
    }
    for c in X.columns:
        s = X[c]
        cols[c] = _strings(s) if isinstance(s.dtype, pd.CategoricalDtype) else pa.array(s.to_numpy(dtype=np.float64))
    cols["prediction"] = prediction
    cols["score"] = pa.array(score) if score is not None else pa.nulls(n, pa.float64())
    cols["batch_id"] = pc.cast(pa.DictionaryArray.from_arrays(pa.array(batch), names), pa.string())
    return pa.table(cols)


def _label_table(model: str, days: list[_Day], first_id: int, tl: _Timeline) -> pa.Table:
    ts = np.concatenate([d.ts for d in days])
    y = np.concatenate([d.y for d in days])
    delay = np.concatenate([d.delay for d in days])
    arrived = (delay >= 0) & (ts + delay <= tl.us(tl.end))
    idx = np.flatnonzero(arrived)
    label_ts = ts[idx] + delay[idx]
    ids = _ids("cd-" if model == CREDIT else "dt-", first_id, len(ts)).take(pa.array(idx))
    if model == CREDIT:
        label = pc.cast(pa.DictionaryArray.from_arrays(pa.array(y[idx].astype(np.int8)), ["0", "1"]), pa.string())
    else:
        label = pa.array(y[idx].astype(np.float64))
    start_us = tl.us(tl.start)
    arrival_day = ((label_ts - start_us) // US_PER_DAY).astype(np.int32)
    uniq, codes = np.unique(arrival_day, return_inverse=True)
    names = [_batch_id(model, "labels", tl.at(int(d))) for d in uniq]
    return pa.table({
        "request_id": ids,
        "label": label,
        "label_ts": pa.array(label_ts.view("datetime64[us]")),
        "batch_id": pc.cast(pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), names), pa.string()),
    })


# ----------------------------------------------------------------------------- runs

def _add_run(db, tl_clock: _SimClock, *, model, kind, trigger, actor, at: datetime, duration: float,
             status="succeeded", params=None, metrics=None, statistics=None, message=None, error=None,
             progress=1.0) -> str:
    with connect(db, write=True) as con:
        tl_clock.now = at
        run_id = runstore.insert_run(con, model=model, kind=kind, trigger=trigger, actor=actor, status="running",
                                     params=params or {}, created_at=at)
        finished = at + timedelta(seconds=duration)
        runstore.update_run(con, run_id, status=status, progress=progress, message=message, metrics=metrics or {},
                            statistics=statistics or {}, error=error, started_at=at, finished_at=finished,
                            duration_s=round(duration, 3), heartbeat_at=finished)
    return run_id


def _finish_registry_run(db, run_id: str, at: datetime, seconds: float, **fields) -> None:
    """Give a run created by the registry its simulated start and its measured duration."""
    with connect(db, write=True) as con:
        finished = at + timedelta(seconds=seconds)
        runstore.update_run(con, run_id, started_at=at, finished_at=finished, duration_s=round(seconds, 3),
                            heartbeat_at=finished, **fields)


# ----------------------------------------------------------------------------- build

def _prepare_target_path(db: Path, force: bool) -> None:
    if db.exists() or artifacts_dir(db).exists() or logs_dir(db).exists():
        if not force:
            raise AlreadyExistsError(
                f"A database already exists at {db}. Pass --force to replace it (its models, logs and artifacts "
                "are deleted), or choose another --db path.",
                path=str(db),
            )
        _remove_database(db)
    forget_database(db)
    db.parent.mkdir(parents=True, exist_ok=True)


def _remove_database(db: Path) -> None:
    """Delete the database file, its write-ahead log and its artifacts folder."""
    for p in (db, Path(str(db) + ".wal"), Path(str(db) + ".lock")):
        p.unlink(missing_ok=True)
    shutil.rmtree(artifacts_dir(db), ignore_errors=True)
    shutil.rmtree(logs_dir(db), ignore_errors=True)
    forget_database(db)


def _default_end() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def build_demo(db=None, *, days: int = 90, daily: int = 2000, seed: int = 0, force: bool = False,
               end: datetime | None = None) -> DemoSummary:
    """Build the demo database at ``db`` (see the module docstring) and return what it holds.

    ``end`` (naive UTC, default now) is the last moment of simulated traffic.
    Raises AlreadyExistsError when ``db`` exists and ``force`` is False,
    InvalidInputError for ``days`` < MIN_DAYS or ``daily`` < MIN_DAILY. A failed build
    leaves no database behind.
    """
    from mlops_core.errors import InvalidInputError

    if days < MIN_DAYS:
        raise InvalidInputError(f"--days must be at least {MIN_DAYS} (the timeline needs room for its events), not {days}.",
                                days=days)
    if daily < MIN_DAILY:
        raise InvalidInputError(f"--daily must be at least {MIN_DAILY} predictions a day (the retrains need labelled "
                                f"rows), not {daily}.", daily=daily)
    t0 = time.perf_counter()
    db_path = resolve_db_path(db)
    _prepare_target_path(db_path, force)
    end = (end or _default_end()).replace(tzinfo=None)
    start = datetime(end.year, end.month, end.day) - timedelta(days=days - 1)
    tl = _Timeline(days, start, end)
    summary = DemoSummary(db=str(db_path), start=start, end=end, days=days, daily=daily, seed=seed)
    sim = _SimClock(tl.at(0) - timedelta(hours=9))
    previous_clock = store_clock._clock
    store_clock.set_clock(sim)
    try:
        import sklearn.ensemble  # noqa: F401  (threadpoolctl limits only the thread pools already loaded)

        with threadpool_limits(limits=1):
            _build(db_path, tl, daily, seed, sim, summary)
        sim.now = end
        tm = time.perf_counter()
        summary.monitoring = _run_monitoring(db_path, end, days)
        summary.timings["monitoring"] = time.perf_counter() - tm
    except BaseException:
        store_clock.set_clock(previous_clock)
        _remove_database(db_path)  # a half-built demo is worse than none: the next run starts clean
        raise
    store_clock.set_clock(previous_clock)
    with connect(db_path, create=False) as con:
        for m in (CREDIT, DELIVERY):
            info = mstore.get_model(con, m)
            summary.predictions[m] = pstore.count_predictions(con, info)
            summary.labels[m] = pstore.count_labels(con, info)
            summary.versions[m] = [(v.version, v.status) for v in mstore.list_versions(con, m)]
        summary.runs = len(runstore.runs_frame(con))
        summary.audit_events = len(runstore.audit_frame(con))
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_monitoring(db: Path, end: datetime, days: int) -> str:
    """Compute drift results, alerts and daily data-quality reports over the finished log, as the scheduled
    monitor would at ``end`` (the log was written directly, not batch by batch through ingest)."""
    from mlops_core.monitoring.alerts import run_monitoring
    from mlops_core.monitoring.validation import validate_windows

    store = Store(db)
    alerts = windows = reports = 0
    for m in (CREDIT, DELIVERY):
        with store.connect() as con:
            info = mstore.get_model(con, m)
        result = run_monitoring(store, info, now=end)
        alerts += len(result.alerts)
        windows += result.windows_computed
        start = datetime.combine((end - timedelta(days=days)).date(), datetime.min.time())
        reports += len(validate_windows(store, info, start, end, window="day"))
    return f"{windows} drift windows, {alerts} alerts, {reports} data-quality reports"


def _register(db: Path, sim: _SimClock, tl: _Timeline, seed: int, summary: DemoSummary) -> tuple[_Server, _Server]:
    servers = {}
    specs = [
        (CREDIT, "classification", simulate.CREDIT_TARGET, CREDIT_TRAIN, "Probability that a loan applicant defaults "
         "within 12 months; scores every application."),
        (DELIVERY, "regression", simulate.DELIVERY_TARGET, DELIVERY_TRAIN, "Minutes from order to door, shown to the "
         "customer at checkout."),
    ]
    for i, (name, task, target, file, description) in enumerate(specs):
        at = tl.at(0) - timedelta(hours=9 - i)
        sim.now = at
        t = time.perf_counter()
        path = _training_file(file)
        artifact = _fitted_artifact(path, db, task, target, seed,
                                    CREDIT_HYPERPARAMETERS if name == CREDIT else DELIVERY_HYPERPARAMETERS)
        try:  # the ``register --artifact`` path: a model fitted elsewhere, here on the registry's split
            reg = registry.register_model(Store(db), name, task, target, path, artifact=load_estimator_file(artifact),
                                          actor="maria.schmidt",
                                          seed=seed, description=description, at=at,
                                          unit="minutes" if name == DELIVERY else None,
                                          train_start=at - timedelta(days=180), train_end=at - timedelta(days=1))
        finally:
            if artifact is not None:
                artifact.unlink(missing_ok=True)
        elapsed = time.perf_counter() - t
        _finish_registry_run(db, reg.run_id, at, elapsed)
        summary.timings[f"register {name}"] = elapsed
        server = _Server(name, task)
        with connect(db, write=True) as con:
            server.info = mstore.get_model(con, name)
            v1 = mstore.get_version(con, name, 1)
        server.pipelines[1] = registry.load_version(Store(db), v1)
        server.changes.append((0, 1))
        servers[name] = server
    return servers[CREDIT], servers[DELIVERY]


def _fitted_artifact(path: Path, db: Path, task: str, target: str, seed: int, hyperparameters: dict) -> Path:
    """Fit the default pipeline with ``hyperparameters`` on the registry's training split; return the skops file.

    Fitted on exactly the rows ``register_model`` keeps for training (same split and
    seed), so the holdout metrics it records stay honest.
    """
    import skops.io as sio

    from mlops_core.data.schema import infer_schema

    df = pd.read_csv(path)
    features = infer_schema(df, target)
    y = training.prepare_target(df[target], task, target)
    X = training.coerce_features(df.loc[y.index].drop(columns=[target]), features)
    X_train, _, y_train, _ = training.split_holdout(X, y, task, seed)
    pipe = training.default_pipeline(task, features, seed, **hyperparameters).fit(X_train, y_train)
    out = db.parent / f".{db.stem}-{target}-{os.getpid()}.skops"
    sio.dump(pipe, out)
    return out


def _v2_window(tl: _Timeline) -> range:
    """v2's training days: 20 days ending 4 days before it is trained (their labels have mostly arrived)."""
    train_day = tl.day(V2_TRAIN_DAY)
    return range(max(0, train_day - 24), max(1, train_day - 4))


def _v3_window(tl: _Timeline) -> range:
    """v3's training days: the last 7 days before it is trained, across the concept shift."""
    train_day = tl.day(V3_DAY)
    return range(max(0, train_day - 7), train_day)


def _build(db: Path, tl: _Timeline, daily: int, seed: int, sim: _SimClock, summary: DemoSummary) -> None:
    from concurrent.futures import ThreadPoolExecutor

    credit, delivery = _register(db, sim, tl, seed, summary)
    counts = {CREDIT: _day_counts(CREDIT, seed, tl, daily), DELIVERY: _day_counts(DELIVERY, seed, tl, max(daily // 2, 25))}
    first_ids = {m: np.concatenate([[1], 1 + np.cumsum(c)[:-1]]) for m, c in counts.items()}
    kept: dict[int, _Day] = {}  # labelled credit traffic kept for the retrains
    keep_days = set(_v2_window(tl)) | set(_v3_window(tl))
    events = {tl.day(V2_TRAIN_DAY): lambda: _retrain_v2(db, sim, tl, credit, kept, seed, summary),
              tl.day(V3_DAY): lambda: _retrain_v3(db, sim, tl, credit, kept, seed, summary)}
    max_rows = 1_000_000
    label_batches: dict[tuple[str, int], int] = {}  # (model, arrival day) -> labels
    timings = summary.timings
    # A background thread turns one scored chunk into Arrow and appends it while the next
    # one is simulated and scored (DuckDB and scikit-learn release the GIL); at most one
    # append is in flight, so memory stays bounded.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-writer")
    pending = None
    # Keeps the database instance alive for the whole loop: DuckDB drops it when its last
    # connection closes, and a new instance created while another thread connects may
    # lack the Python table functions that read Arrow.
    keeper = ExitStack()

    def wait():
        if pending is not None:
            t = time.perf_counter()
            pending.result()
            timings["waiting for inserts"] = timings.get("waiting for inserts", 0.0) + time.perf_counter() - t

    try:
        day = 0
        while day < tl.days:
            if day in events:
                wait()
                t = time.perf_counter()
                events.pop(day)()
                timings["retrains"] = timings.get("retrains", 0.0) + time.perf_counter() - t
            # a chunk of whole days, never across an event day (the serving versions change there)
            stop = day + 1
            while (stop < tl.days and stop not in events
                   and counts[CREDIT][day:stop + 1].sum() + counts[DELIVERY][day:stop + 1].sum() <= max_rows):
                stop += 1
            for server in (credit, delivery):
                m = server.model
                t = time.perf_counter()
                chunk = [_day_traffic(m, seed, d, int(counts[m][d]), tl) for d in range(day, stop)]
                timings["simulate"] = timings.get("simulate", 0.0) + time.perf_counter() - t
                if m == CREDIT:
                    for d in chunk:
                        if d.day in keep_days:
                            kept[d.day] = _thin(d)
                scored = _score_chunk(server, chunk, timings)
                if scored is not None:
                    wait()
                    pending = writer.submit(_write_chunk, db, server, chunk, int(first_ids[m][day]), scored, tl,
                                            timings, label_batches)
            _daily_runs(db, sim, tl, counts, range(day, stop), seed)
            day = stop
        wait()
    finally:
        writer.shutdown(wait=True)
        keeper.close()
    _write_label_batches(db, label_batches, tl)


def _thin(day: _Day) -> _Day:
    """The part of a day kept for retraining: at most 3x TRAIN_ROWS_PER_DAY rows, evenly spread over the day."""
    n = len(day.ts)
    if n <= 3 * TRAIN_ROWS_PER_DAY:
        return day
    idx = np.linspace(0, n - 1, 3 * TRAIN_ROWS_PER_DAY).astype(np.int64)
    return _Day(day.day, day.ts[idx], day.X.iloc[idx].reset_index(drop=True), day.y[idx], day.delay[idx], day.u[idx],
                weight=n / len(idx))


def _score_chunk(server: _Server, chunk: list[_Day], timings: dict) -> tuple | None:
    """Score a chunk of days with the serving versions: (version, variant, prediction, score), None when empty."""
    if not chunk or sum(len(d.ts) for d in chunk) == 0:
        return None
    t = time.perf_counter()
    ts = np.concatenate([d.ts for d in chunk])
    X = pd.concat([d.X for d in chunk], ignore_index=True) if len(chunk) > 1 else chunk[0].X
    version, variant = server.route(ts, np.concatenate([d.u for d in chunk]))
    prediction, score = server.outputs(X, version)
    timings["predict"] = timings.get("predict", 0.0) + time.perf_counter() - t
    return version, variant, prediction, score


def _write_chunk(db: Path, server: _Server, chunk: list[_Day], first_id: int, scored: tuple, tl: _Timeline,
                 timings: dict, label_batches: dict) -> None:
    """Append a scored chunk: log rows, labels and one ingest batch row per day, in one transaction."""
    t = time.perf_counter()
    log = _log_table(server.model, chunk, first_id, *scored, tl)
    labels = _label_table(server.model, chunk, first_id, tl)
    if labels.num_rows:
        arrival = pc.value_counts(labels.column("batch_id").combine_chunks())
        for item in arrival.to_pylist():
            key = (server.model, item["values"])
            label_batches[key] = label_batches.get(key, 0) + item["counts"]
    timings["arrow (background)"] = timings.get("arrow (background)", 0.0) + time.perf_counter() - t
    t = time.perf_counter()
    info = server.info
    pstore.append(Store(db), info, "predictions", log)
    if labels.num_rows:
        pstore.append(Store(db), info, "labels", labels)
    with connect(db, write=True) as con, transaction(con):
        for d in chunk:
            if len(d.ts):
                day_start = tl.at(d.day)
                vstore.insert_batch(
                    con, batch_id=_batch_id(server.model, "pred", day_start), model=server.model, kind="predictions",
                    source=f"s3://serving-logs/{server.model}/{day_start:%Y/%m/%d}/predictions.parquet",
                    fingerprint=hashlib.sha256(d.ts.tobytes() + d.y.tobytes()).hexdigest(), rows=len(d.ts),
                    rows_written=len(d.ts), actor="ingest-cron", at=tl.at(d.day + 1, 0.25),
                )
    timings["insert (background)"] = timings.get("insert (background)", 0.0) + time.perf_counter() - t


def _write_label_batches(db: Path, label_batches: dict, tl: _Timeline) -> None:
    """One ``ingest_batches`` row per model and label arrival day (labels of many days arrive together)."""
    with connect(db, write=True) as con, transaction(con):
        for (model, batch_id), n in sorted(label_batches.items()):
            day = datetime.strptime(batch_id.rsplit("-", 1)[1], "%Y%m%d")
            vstore.insert_batch(
                con, batch_id=batch_id, model=model, kind="labels",
                source=f"s3://outcomes/{model}/{day:%Y/%m/%d}/labels.csv",
                fingerprint=hashlib.sha256(f"{batch_id}:{n}".encode()).hexdigest(), rows=n, rows_written=n,
                actor="ingest-cron", at=min(day + timedelta(days=1), tl.end),
            )


def _daily_runs(db: Path, sim: _SimClock, tl: _Timeline, counts: dict, days, seed: int) -> None:
    """One scheduled ingest run per model and day (the next morning), a monitor run every Monday."""
    specs = []
    end_us = tl.us(tl.end)
    for d in days:
        for i, m in enumerate((CREDIT, DELIVERY)):
            at = tl.at(d + 1, 0.25 + 0.05 * i)
            if tl.us(at) > end_us:
                continue
            n = int(counts[m][d])
            rng = np.random.default_rng([seed, 5, d, i])
            duration = 0.4 + n / 400_000 + rng.gamma(2.0, 0.3)
            specs.append(dict(model=m, kind="ingest", trigger="schedule", actor="ingest-cron", at=at, duration=duration,
                              params={"source": f"s3://serving-logs/{m}/{tl.at(d):%Y/%m/%d}/predictions.parquet",
                                      "batch_id": _batch_id(m, "pred", tl.at(d))},
                              statistics={"rows": n, "rows_written": n, "rejected_rows": 0, "anomalies": 0},
                              message=f"ingested {n} predictions"))
        monday = tl.at(d + 1, 6.0)
        if monday.weekday() == 0 and d >= 6 and tl.us(monday) <= end_us:
            for i, m in enumerate((CREDIT, DELIVERY)):
                rows = int(counts[m][d - 6:d + 1].sum())
                rng = np.random.default_rng([seed, 6, d, i])
                specs.append(dict(model=m, kind="monitor", trigger="schedule", actor="scheduler",
                                  at=monday + timedelta(minutes=5 * i), duration=1.5 + rows / 300_000 + rng.gamma(2.0, 0.4),
                                  params={"window": "day", "lookback_days": 7},
                                  statistics={"rows_checked": rows, "windows": 7},
                                  message=f"checked drift and performance of {rows} predictions"))
    _add_runs(db, sim, specs)


def _add_runs(db: Path, sim: _SimClock, specs: list[dict]) -> list[str]:
    ids = []
    if not specs:
        return ids
    with connect(db, write=True) as con, transaction(con):
        for spec in specs:
            spec = dict(spec)
            at, duration = spec.pop("at"), spec.pop("duration")
            status, progress = spec.pop("status", "succeeded"), spec.pop("progress", 1.0)
            sim.now = at
            run_id = runstore.insert_run(con, model=spec["model"], kind=spec["kind"], trigger=spec["trigger"],
                                         actor=spec["actor"], status="running", params=spec.get("params") or {},
                                         created_at=at)
            finished = at + timedelta(seconds=duration)
            runstore.update_run(con, run_id, status=status, progress=progress, message=spec.get("message"),
                                metrics=spec.get("metrics") or {}, statistics=spec.get("statistics") or {},
                                error=spec.get("error"), started_at=at, finished_at=finished,
                                duration_s=round(duration, 3), heartbeat_at=finished)
            ids.append(run_id)
    return ids


def _labelled(kept: dict, days, cut: datetime, tl: _Timeline) -> tuple[pd.DataFrame, pd.Series, dict]:
    """The kept credit traffic of ``days`` whose labels had arrived by ``cut``, at most TRAIN_ROWS_PER_DAY a day."""
    cut_us = tl.us(cut)
    frames, ys, logged, labelled = [], [], 0, 0
    for d in days:
        day = kept.get(d)
        if day is None:
            continue
        logged += len(day.ts) * day.weight
        idx = np.flatnonzero((day.delay >= 0) & (day.ts + day.delay <= cut_us))
        labelled += len(idx) * day.weight
        if len(idx) > TRAIN_ROWS_PER_DAY:
            idx = idx[np.linspace(0, len(idx) - 1, TRAIN_ROWS_PER_DAY).astype(np.int64)]
        frames.append(day.X.iloc[idx])
        ys.append(day.y[idx])
    X = pd.concat(frames, ignore_index=True)
    y = pd.Series(np.concatenate(ys).astype(str), name=simulate.CREDIT_TARGET)
    logged, labelled = int(round(logged)), int(round(labelled))
    stats = {"rows_logged": logged, "rows_labelled": labelled,
             "label_coverage": round(labelled / logged, 4) if logged else 0.0, "training_rows": len(X)}
    return X, y, stats


def _gate(candidate: dict, champion: dict, coverage: float) -> dict:
    """The demo's promotion gate: ROC AUC not worse than the champion's on the same holdout, enough labels."""
    reasons, ok = [], True
    gain = candidate["roc_auc"] - champion["roc_auc"]
    if gain >= -GATE_AUC_TOLERANCE:
        reasons.append(f"ROC AUC {candidate['roc_auc']:.4f} vs champion {champion['roc_auc']:.4f} on the same holdout "
                       f"(at most {GATE_AUC_TOLERANCE} worse allowed): met.")
    else:
        ok = False
        reasons.append(f"ROC AUC {candidate['roc_auc']:.4f} is {-gain:.4f} below the champion's {champion['roc_auc']:.4f} "
                       f"on the same holdout (at most {GATE_AUC_TOLERANCE} worse allowed).")
    if coverage >= GATE_MIN_LABEL_COVERAGE:
        reasons.append(f"Labels cover {coverage:.0%} of the training window (at least {GATE_MIN_LABEL_COVERAGE:.0%} "
                       "required): met.")
    else:
        ok = False
        reasons.append(f"Labels cover only {coverage:.0%} of the training window (at least "
                       f"{GATE_MIN_LABEL_COVERAGE:.0%} required): most labels of its last days had not arrived yet.")
    return {"passed": ok, "reasons": reasons,
            "metrics": {"candidate": candidate, "champion": champion},
            "rules": [{"metric": "roc_auc", "kind": "improve", "threshold": -GATE_AUC_TOLERANCE},
                      {"metric": "label_coverage", "kind": "min", "threshold": GATE_MIN_LABEL_COVERAGE}]}


def _retrain(db: Path, sim: _SimClock, tl: _Timeline, server: _Server, kept: dict, seed: int, *, train_day: int,
             window: range, hyperparameters: dict, actor: str, trigger: str, why: str) -> tuple:
    """Validate a window, train a candidate on it, evaluate it against the champion: (result, gate, X, y, run ids)."""
    cut = tl.at(train_day, 9.0)
    X, y, stats = _labelled(kept, window, cut, tl)
    w_start, w_end = tl.at(window.start), tl.at(window.stop)
    validate = dict(model=CREDIT, kind="validate", trigger=trigger, actor=actor, at=cut, duration=1.2 + len(X) / 50_000,
                    params={"window_start": w_start, "window_end": w_end},
                    statistics={**stats, "anomalies": 0, "missing_columns": 0},
                    message=f"{stats['rows_labelled']} labelled rows in the window, no anomalies")
    _add_runs(db, sim, [validate])
    info = server.info
    t = time.perf_counter()
    result = training.fit_and_evaluate(X, y, "classification", info.features, "1", seed=seed,
                                       hyperparameters=hyperparameters)
    fit_s = time.perf_counter() - t
    champion_version = server.changes[-1][1]
    champion = training.evaluate(server.pipelines[champion_version], result.X_holdout, result.y_holdout,
                                 "classification", "1")
    gate = _gate(result.holdout_metrics, champion, stats["label_coverage"])
    gate.update({"champion_version": champion_version, "holdout_rows": result.holdout_rows,
                 "label_coverage": stats["label_coverage"]})
    train_at = cut + timedelta(minutes=2)
    retrain = dict(model=CREDIT, kind="retrain", trigger=trigger, actor=actor, at=train_at, duration=fit_s,
                   params={"window_start": w_start, "window_end": w_end, "seed": seed, "reason": why,
                           "hyperparameters": hyperparameters},
                   metrics=result.holdout_metrics,
                   statistics={"train_rows": result.train_rows, "holdout_rows": result.holdout_rows, **stats},
                   message="trained a candidate")
    eval_at = train_at + timedelta(seconds=fit_s + 5)
    evaluate = dict(model=CREDIT, kind="evaluate", trigger=trigger, actor=actor, at=eval_at,
                    duration=0.8 + result.holdout_rows / 100_000,
                    params={"champion_version": champion_version, "holdout_rows": result.holdout_rows},
                    metrics={"candidate_roc_auc": result.holdout_metrics["roc_auc"],
                             "champion_roc_auc": champion["roc_auc"],
                             "candidate_accuracy": result.holdout_metrics["accuracy"],
                             "champion_accuracy": champion["accuracy"]},
                    statistics={"gate_passed": gate["passed"]},
                    message="gate passed" if gate["passed"] else "gate failed: " + gate["reasons"][-1])
    retrain_id, _ = _add_runs(db, sim, [retrain, evaluate])
    sim.now = eval_at + timedelta(seconds=3)
    store = Store(db)
    refs = registry.summarise_training_reference(result, coerce_features(X, info.features), y, info)
    with store.transaction() as con:
        reg = registry.add_version_in(con, store, info, result, refs, reference_rows=len(X),
                                      status="candidate" if gate["passed"] else "rejected", gate=gate, actor=actor,
                                      run_id=retrain_id,
                                      data_source=f"log_{CREDIT} {w_start:%Y-%m-%d}..{w_end:%Y-%m-%d}",
                                      train_start=w_start, train_end=w_end, at=sim.now)
    return reg, result, gate


def _retrain_v2(db, sim, tl, server, kept, seed, summary) -> None:
    """Day 25: retrain on 20 days of fresh traffic; A/B from day 26; promote on day 30 (gate passed)."""
    reg, result, gate = _retrain(db, sim, tl, server, kept, seed, train_day=tl.day(V2_TRAIN_DAY), window=_v2_window(tl),
                                 hyperparameters=RETRAIN_HYPERPARAMETERS,
                                 actor="maria.schmidt", trigger="manual",
                                 why="v1 was trained on last year's applications; retrain on fresh labelled traffic")
    server.pipelines[reg.version] = result.pipeline
    ab_start, promote_at = tl.at(tl.day(AB_START_DAY), 8.0), tl.at(tl.day(V2_PROMOTE_DAY), 10.0)
    if not gate["passed"]:  # a small demo where fresh data did not help: v1 keeps serving
        return
    sim.now = ab_start
    with connect(db, write=True) as con, transaction(con):
        mstore.move_alias(con, CREDIT, reg.version, alias="challenger", actor="maria.schmidt", action="ab_start",
                          reason=f"A/B test: {CHALLENGER_SHARE:.0%} of traffic to v{reg.version}", at=ab_start)
        runstore.insert_audit(con, actor="maria.schmidt", action="ab_start", model=CREDIT, from_version=1,
                              to_version=reg.version, reason=f"A/B test: {CHALLENGER_SHARE:.0%} of traffic to the challenger",
                              details={"share": CHALLENGER_SHARE}, at=ab_start)
    server.ab = (tl.us(ab_start), tl.us(promote_at), reg.version, CHALLENGER_SHARE)
    server.changes.append((tl.us(promote_at), reg.version))
    auc, champ = gate["metrics"]["candidate"]["roc_auc"], gate["metrics"]["champion"]["roc_auc"]
    reason = (f"v{reg.version} retrained on fresh traffic: ROC AUC {auc:.3f} vs {champ:.3f} for v1 on the same holdout; "
              "A/B test showed no regression")
    run_id, = _add_runs(db, sim, [dict(model=CREDIT, kind="promote", trigger="manual", actor="maria.schmidt",
                                       at=promote_at, duration=0.4, params={"version": reg.version, "from_version": 1},
                                       message=f"promoted v{reg.version}")])
    sim.now = promote_at
    with connect(db, write=True) as con, transaction(con):
        mstore.end_alias(con, CREDIT, "challenger", at=promote_at)
    registry.promote(Store(db), CREDIT, reg.version, actor="maria.schmidt", reason=reason, run_id=run_id,
                     at=promote_at)


def _retrain_v3(db, sim, tl, server, kept, seed, summary) -> None:
    """Day 62: a failed scheduled retrain; day 75: an automated retrain around the shift, rejected by the gate."""
    fail_at = tl.at(tl.day(FAILED_RUN_DAY), 2.0)
    _add_runs(db, sim, [dict(
        model=CREDIT, kind="retrain", trigger="schedule", actor="scheduler", at=fail_at, duration=30.4,
        status="failed", progress=0.1, params={"window_days": 20, "reason": "weekly schedule"},
        message="failed while reading the training window",
        error=("DatabaseBusyError: Database /srv/mlops/mlops.duckdb is held by another process (waited 30 s). "
               "Wait for the other command to finish, or raise MLOPS_LOCK_TIMEOUT."),
    )])
    _retrain(db, sim, tl, server, kept, seed, train_day=tl.day(V3_DAY), window=_v3_window(tl),
             hyperparameters=RETRAIN_HYPERPARAMETERS,
             actor="automation", trigger="automated",
             why="drift policy: income, utilization and purpose drifted; accuracy falling")


# ----------------------------------------------------------------------------- sample batches

#: The shipped sample batch: one day of requests, a week before the shipped files were made,
#: so its timestamps are in the past of any demo built since, and its labels had a week to arrive.
BATCH_DAY = datetime(2026, 11, 19)
BATCH_LABELS_BY = datetime(2026, 11, 26)
BATCH_ROWS = 500


def write_sample_batches(db, folder: str | os.PathLike = SAMPLE_DIR / "batches", *, rows: int = BATCH_ROWS,
                         seed: int = 0) -> list[Path]:
    """Write a clean prediction batch for credit_default and the labels that arrived for it; return the paths.

    The requests follow today's process (full drift, after the concept shift), have ids
    ``batch-000001``..., timestamps on ``BATCH_DAY`` and carry the prediction and score of
    the production version of ``credit_default`` in ``db`` (a demo database), so they are
    exactly what that model served. Labels: those that arrived by ``BATCH_LABELS_BY``.
    Raises NotFoundError when ``db`` has no credit_default.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    store = Store(db)
    with store.connect() as con:
        v = registry.resolve_version(con, CREDIT)
    version = v.version
    pipe = registry.load_version(store, v)
    rng = np.random.default_rng([seed, 7])
    micros = simulate.times_of_day(rng, rows, simulate.CREDIT_HOURLY)
    ts = pd.Timestamp(BATCH_DAY) + pd.to_timedelta(micros // 1_000_000, unit="s")
    X = simulate.credit_features(rng, rows, 1.0)
    y = simulate.credit_labels(rng, X, True)
    delay = simulate.label_delays(rng, rows)
    score = pipe.predict_proba(X)[:, list(map(str, pipe.classes_)).index("1")]
    batch = pd.DataFrame({"request_id": [f"batch-{i:06d}" for i in range(1, rows + 1)],
                          "timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "version": version, "variant": ""})
    for c in X.columns:
        batch[c] = X[c].astype(str) if isinstance(X[c].dtype, pd.CategoricalDtype) else X[c]
    batch["prediction"] = (score >= 0.5).astype(int)
    batch["score"] = np.round(score, 6)
    arrival = ts + pd.to_timedelta(np.maximum(delay, 0) // 1_000_000, unit="s")
    arrived = (delay >= 0) & (arrival <= pd.Timestamp(BATCH_LABELS_BY))
    labels = pd.DataFrame({"request_id": batch["request_id"][arrived], "label": y[arrived],
                           "timestamp": arrival[arrived].strftime("%Y-%m-%d %H:%M:%S")})
    labels = labels.sort_values(["timestamp", "request_id"])
    paths = [folder / "credit_default_clean.csv", folder / "credit_default_labels.csv"]
    batch.to_csv(paths[0], index=False)
    labels.to_csv(paths[1], index=False)
    return paths

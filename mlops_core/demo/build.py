"""The demo database: two models, 90 days of traffic and their history, made through the public API.

``build_demo()`` (CLI: ``python -m mlops_core demo``) is a client of ``mlops_core`` like any
user script: it registers ``credit_default`` (binary classification) and ``delivery_time``
(regression) from the training files in ``sample_data/``, then lives through ``days`` days
ending at ``end`` (default: now, UTC) in simulated time (``mlops_core.simulated_time``), so
every run, version, audit event, alert and report is dated when it happened in the story.
Its serving system (``demo.traffic``) routes each simulated request to the version the
registry says served it then and logs what that version's fitted model outputs.

Every night at 00:15 yesterday's prediction log of each model is ingested (``Model.ingest``:
validated, one ingest run and one validation report per batch), at 00:20 the labels that
arrived yesterday; so a retrain on day D sees exactly the labels that had arrived by then.
Every Monday at 06:00 the scheduler runs the monitor (drift, performance, alert rules) and
evaluates each model's automation policy with its figures.

The story (days of the default 90; ``timeline.Timeline`` scales them to other lengths):

- day 0 (the evening before): both models registered with their hyperparameters, version 1
  in production. credit_default's policy: manual mode; gate ``GATE`` (beat the champion's
  ROC AUC by half a point on the same holdout, and at least 77% accuracy); triggers at a
  drift share above 0.3 or a daily accuracy below 0.77; a week's window.
- day 25, 09:00: a manual retrain of credit_default on the labelled traffic of days 1-20 (a
  real retrain job, gated by the policy's gate); v1 was trained on last year's process, so v2
  passes. From day 26, 08:00 v2 is the challenger for 20% of the traffic (variant column);
  on day 30, 10:00 it is promoted with the gate's and the A/B test's figures in the reason.
  If v2 fails its gate (possible in small demos) v1 keeps serving and there is no A/B test.
- day 50 on: covariate drift in income, utilization and purpose (more rain and snow for
  deliveries), growing to the last day.
- day 62, 02:00: a scheduled retrain of delivery_time on the last day only fails: none of
  that day's labels has arrived yet (a retrain needs at least 200 labelled rows).
- day 70: concept shift (defaults rise for high debt-to-income and the self-employed; a road
  closure slows deliveries outside the centre).
- day 75 (at least 4 days after the shift), 09:00: after the accuracy alerts the team switches
  credit_default's policy to automated, and at 09:15 the policy is evaluated: its triggers fire
  and the automated retrain (actor ``automation``) trains v3 on the last week. v3 ranks better
  than v2 on the shifted applications but misses the 77% accuracy bar, so the gate rejects it
  and v2 stays in production. At 11:00 the policy goes back to manual: a person must decide
  (the weekly evaluations from then on raise "retrain recommended" alerts).
- the end: the last day's log and labels are ingested, the monitor runs and the policies are
  evaluated once more.

What really happens depends on the real numbers, and small demos can differ (a v2 that fails
its gate, a v3 that passes and is promoted by automation); the build goes on either way and
``DemoSummary.story`` says what happened. Labels arrive 1 to 14 days after the prediction
(most within a week), about 10% never. Request ids are ``cd-<n>`` and ``dt-<n>``.

Reproducible: each model and day draws from its own generator seeded with ``(seed, model,
day)``, scikit-learn gets fixed seeds and every retrain names its window, so the same ``seed``,
``days``, ``daily`` and ``end`` give the same log, labels and version metrics (batch and run
ids are random, and run times carry the milliseconds the build really took).

Speed: scikit-learn fits and scores with one OpenMP thread (on a busy machine OpenMP's spinning
worker threads waste most of their CPU), and the database file stays open for the whole build
(``ControlRoom.kept_open``).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from threadpoolctl import threadpool_limits

from mlops_core import ControlRoom, Identity, Model, SimulatedClock, simulated_time
from mlops_core.demo import simulate, traffic
from mlops_core.demo.timeline import (
    AB_START_DAY,
    AB_START_HOUR,
    FAILED_RUN_DAY,
    FAILED_RUN_HOUR,
    INGEST_LABELS_HOUR,
    INGEST_PREDICTIONS_HOUR,
    MIN_DAYS,
    MONITOR_HOUR,
    PAUSE_HOUR,
    PROMOTE_HOUR,
    RETRAIN_HOUR,
    V2_PROMOTE_DAY,
    V2_TRAIN_DAY,
    Timeline,
)
from mlops_core.demo.traffic import CREDIT, DELIVERY
from mlops_core.errors import AlreadyExistsError, InvalidInputError, MlopsError

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data"
CREDIT_TRAIN = "credit_default_train.csv"
DELIVERY_TRAIN = "delivery_time_train.csv"
#: Seeds of the shipped training files (fixed: the files are part of the project).
SAMPLE_SEED = 20261126
CREDIT_TRAIN_ROWS, DELIVERY_TRAIN_ROWS = 20_000, 12_500
MIN_DAILY = 100
CHALLENGER_SHARE = 0.2
#: Hyperparameters of the default pipeline's gradient boosting for each model (retrains keep them):
#: fewer, smaller trees than scikit-learn's defaults, as accurate on these data (holdout ROC AUC
#: 0.836 vs 0.832; MAE 2.91 vs 2.92) and 2-3x faster to score ten million rows.
CREDIT_HYPERPARAMETERS = {"learning_rate": 0.15, "max_iter": 60, "max_leaf_nodes": 15, "l2_regularization": 1.0}
DELIVERY_HYPERPARAMETERS = {"learning_rate": 0.2, "max_iter": 40, "max_leaf_nodes": 15}
#: credit_default's promotion gate: a candidate must beat the champion's ROC AUC by half a point on the same
#: holdout, and reach 77% accuracy there. Fresh pre-shift traffic gives about 0.81 (v2 passes); right after the
#: concept shift even a fresh model reaches about 0.70 on the shifted applications (v3 is rejected).
GATE = ["roc_auc+=0.005", "accuracy>=0.77"]
#: credit_default's automation policy (mode manual, but for the morning the team tries automated mode).
CREDIT_POLICY = dict(mode="manual", gate=GATE, drift_share_above=0.3, metric="accuracy", metric_threshold=0.77,
                     window_days=7)
#: delivery_time's scheduled retrain on the last day only: none of that day's deliveries has a label yet.
FAILED_RETRAIN_WINDOW_DAYS = 1
#: Days simulated and scored in one piece, and rows at most (bounds memory at any --daily).
PART_DAYS, CHUNK_ROWS = 7, 1_000_000

MARIA = Identity("maria.schmidt", "admin")
INGEST_CRON = Identity("ingest-cron", "operator")
SCHEDULER = Identity("scheduler", "operator")


@dataclass
class DemoSummary:
    """What ``build_demo`` built, and what happened in its story."""

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
    story: list[str] = field(default_factory=list)
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
        out += [f"  {line}" for line in self.story]
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


# ----------------------------------------------------------------------------- build

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
    if days < MIN_DAYS:
        raise InvalidInputError(f"--days must be at least {MIN_DAYS} (the timeline needs room for its events), not {days}.",
                                days=days)
    if daily < MIN_DAILY:
        raise InvalidInputError(f"--daily must be at least {MIN_DAILY} predictions a day (the retrains need labelled "
                                f"rows), not {daily}.", daily=daily)
    t0 = time.perf_counter()
    room = ControlRoom(db, identity=MARIA)
    if room.exists() or room.artifacts_path.exists():
        if not force:
            raise AlreadyExistsError(
                f"A database already exists at {room.display}. Pass --force to replace it (its models, logs and "
                "artifacts are deleted), or choose another --db path.", path=room.display)
        room.destroy()
    if room.path is not None:
        room.path.parent.mkdir(parents=True, exist_ok=True)
    end = (end or _default_end()).replace(tzinfo=None)
    tl = Timeline.ending(end, days)
    summary = DemoSummary(db=room.display, start=tl.start, end=end, days=days, daily=daily, seed=seed)
    try:
        import sklearn.ensemble  # noqa: F401  (threadpoolctl limits only the thread pools already loaded)

        with simulated_time(tl.at(0, -9.0)) as clock, room.kept_open(), threadpool_limits(limits=1):
            _Build(room, clock, tl, daily=daily, seed=seed, summary=summary).run()
    except BaseException:
        room.destroy()  # a half-built demo is worse than none: the next run starts clean
        raise
    for name in (CREDIT, DELIVERY):
        status = room.model(name).status()
        summary.predictions[name] = status.predictions
        summary.labels[name] = status.labels
        summary.versions[name] = [(v.version, v.status) for v in status.versions]
    summary.runs = len(room.runs())
    summary.audit_events = len(room.audit())
    summary.seconds = time.perf_counter() - t0
    return summary


@dataclass
class _Served:
    """What the serving system made for some days: prediction logs by (model, day), label arrivals."""

    batches: dict[tuple[str, int], pa.Table] = field(default_factory=dict)
    arrivals: list[tuple[str, int, pa.Table]] = field(default_factory=list)


class _Build:
    """One build: the models, the schedule of the story, and what is waiting to be ingested."""

    def __init__(self, room: ControlRoom, clock: SimulatedClock, tl: Timeline, *, daily: int, seed: int,
                 summary: DemoSummary):
        self.room, self.clock, self.tl, self.seed, self.summary = room, clock, tl, seed, summary
        self.timings = summary.timings
        self.counts = {CREDIT: traffic.day_counts(CREDIT, seed, tl, daily),
                       DELIVERY: traffic.day_counts(DELIVERY, seed, tl, max(daily // 2, 25))}
        self.first_ids = {m: np.concatenate([[1], 1 + np.cumsum(c)[:-1]]) for m, c in self.counts.items()}
        self.batches: dict[tuple[str, int], pa.Table] = {}  # (model, day) -> its scored prediction log
        self.arrivals: dict[tuple[str, int], list[pa.Table]] = {}  # (model, arrival day) -> labels
        self.scorers: dict[str, traffic.Scorer] = {}
        self.handles: dict[tuple[str, str], Model] = {}
        self.served = 0  # days before it are simulated and scored (or being so in the background)
        self.pool: ThreadPoolExecutor | None = None
        self.parts: dict[int, Future] = {}  # day -> the background work that serves it
        self.collected: set[Future] = set()  # the futures themselves: an id could be reused once one is freed
        self.monitor_runs = self.alerts = self.evaluations = 0
        self.v2 = None  # the retrain outcome of a v2 that passed its gate

    def _time(self, stage: str, started: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - started

    def _at(self, day: int, hour: float) -> datetime:
        return self.clock.set(self.tl.at(day, hour))

    def _model(self, name: str, identity: Identity = MARIA) -> Model:
        """The handle of model ``name`` acting as ``identity`` (resolved once)."""
        key = (name, identity.name)
        if key not in self.handles:
            self.handles[key] = self.room.acting_as(identity).model(name)
        return self.handles[key]

    # --- the schedule ----------------------------------------------------------------------------

    def _events(self) -> dict[int, list[tuple[float, Callable[[datetime], object]]]]:
        """Day -> (hour, action called with its moment) of the story's events and the weekly monitor."""
        tl = self.tl
        events: dict[int, list[tuple[float, Callable[[datetime], object]]]] = {}

        def add(day: int, hour: float, action: Callable[[datetime], object]) -> None:
            events.setdefault(day, []).append((hour, action))

        add(tl.day(V2_TRAIN_DAY), RETRAIN_HOUR, self._retrain_v2)
        add(tl.day(AB_START_DAY), AB_START_HOUR, self._start_ab)
        add(tl.day(V2_PROMOTE_DAY), PROMOTE_HOUR, self._promote_v2)
        add(tl.day(FAILED_RUN_DAY), FAILED_RUN_HOUR, self._failed_retrain)
        add(tl.v3_day, RETRAIN_HOUR, self._automated_retrain)
        for d in range(7, tl.days):
            if tl.at(d).weekday() == 0:
                add(d, MONITOR_HOUR, self._monitor_and_evaluate)
        return events

    def run(self) -> None:
        tl = self.tl
        self._register()
        events = self._events()
        # OpenMP's thread count is a setting of each thread: the scoring thread gets its own limit of one
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-serving",
                                initializer=threadpool_limits, initargs=(1,)) as self.pool:
            try:
                for d in range(tl.days):
                    if d > 0:
                        self._ingest(d - 1, at=tl.at(d, INGEST_PREDICTIONS_HOUR),
                                     labels_at=tl.at(d, INGEST_LABELS_HOUR))
                    for hour, action in sorted(events.get(d, []), key=lambda e: e[0]):
                        if tl.at(d, hour) < tl.end:
                            action(self._at(d, hour))
                    if d >= self.served:
                        self.served = self._next_routing_change(d)
                        self._serve(d, self.served)
                self._ingest(tl.days - 1, at=tl.end, labels_at=tl.end)
            finally:
                for future in self.parts.values():
                    future.cancel()
        self.clock.set(tl.end)
        self._monitor_and_evaluate(tl.end)
        self.summary.monitoring = (f"{self.monitor_runs} monitor runs, {self.alerts} alerts raised, "
                                   f"{self.evaluations} policy evaluations")

    def _next_routing_change(self, day: int) -> int:
        """The first day after ``day`` on which the versions that serve may change: an A/B start, a promotion, the
        automated retrain, and, while a policy is automated, any Monday (its evaluation may promote)."""
        tl = self.tl
        days = [tl.day(AB_START_DAY), tl.day(V2_PROMOTE_DAY), tl.v3_day, tl.days]
        if self._model(CREDIT).policy().mode == "automated":
            days += [d for d in range(day + 1, tl.days) if tl.at(d).weekday() == 0]
        return min(d for d in days if d > day)

    # --- serving and ingest ----------------------------------------------------------------------

    def _serve(self, first: int, stop: int) -> None:
        """Simulate, route and score days [first, stop) of both models, in parts of PART_DAYS days (at most
        CHUNK_ROWS rows) that a background thread works through while the earlier days are ingested."""
        routers = {name: traffic.Router(self._model(name).deployment_history(), self.tl, CHALLENGER_SHARE)
                   for name in (CREDIT, DELIVERY)}
        for name in (CREDIT, DELIVERY):
            self.scorers.setdefault(name, traffic.Scorer(self._model(name)))
        day = first
        while day < stop:
            last = day + 1
            while (last < stop and last - day < PART_DAYS
                   and sum(c[day:last + 1].sum() for c in self.counts.values()) <= CHUNK_ROWS):
                last += 1
            future = self.pool.submit(self._serve_part, routers, range(day, last))
            for d in range(day, last):
                self.parts[d] = future
            day = last

    def _serve_part(self, routers: dict[str, traffic.Router], span: range) -> _Served:
        """The prediction logs and label arrivals of ``span`` (run in the background thread)."""
        tl, served = self.tl, _Served()
        for name in (CREDIT, DELIVERY):
            t = time.perf_counter()
            days = [traffic.day_traffic(name, self.seed, d, int(self.counts[name][d]), tl,
                                        first_id=int(self.first_ids[name][d])) for d in span]
            self._time("simulate (background)", t)
            t = time.perf_counter()
            ts = np.concatenate([day.ts for day in days])
            X = pd.concat([day.X for day in days], ignore_index=True) if len(days) > 1 else days[0].X
            version, variant = routers[name].route(ts, np.concatenate([day.u for day in days]))
            prediction, score = (self.scorers[name].outputs(X, version) if len(ts)
                                 else (pa.array([], pa.string()), None))
            self._time("score (background)", t)
            t = time.perf_counter()
            offset = 0
            for day in days:
                rows = slice(offset, offset + len(day))
                offset += len(day)
                if len(day):
                    served.batches[(name, day.day)] = traffic.predictions(
                        day, version[rows], variant[rows], prediction[rows], None if score is None else score[rows])
                for arrival_day, table in traffic.labels(day, tl).items():
                    served.arrivals.append((name, arrival_day, table))
            self._time("arrow (background)", t)
        return served

    def _collect(self, day: int) -> None:
        """Take over what the background thread made for ``day`` (and the rest of its part)."""
        future = self.parts.pop(day, None)
        if future is None or future in self.collected:
            return
        t = time.perf_counter()
        served = future.result()
        self._time("waiting for scoring", t)
        self.collected.add(future)
        self.batches.update(served.batches)
        for name, arrival_day, table in served.arrivals:
            self.arrivals.setdefault((name, arrival_day), []).append(table)

    def _ingest(self, day: int, *, at: datetime, labels_at: datetime) -> None:
        """The nightly drops: the prediction log of ``day`` of each model, then the labels that arrived that day."""
        self._collect(day)  # the labels arriving on ``day`` come from earlier days, all collected by now
        self.clock.set(at)
        for name in (CREDIT, DELIVERY):
            batch = self.batches.pop((name, day), None)
            if batch is not None:
                t = time.perf_counter()
                self._model(name, INGEST_CRON).ingest(batch, "predictions",
                                                      source_name=f"{name} predictions of {self.tl.at(day):%Y-%m-%d}")
                self._time("ingest predictions", t)
        self.clock.set(labels_at)
        for name in (CREDIT, DELIVERY):
            parts = self.arrivals.pop((name, day), None)
            if parts:
                t = time.perf_counter()
                self._model(name, INGEST_CRON).ingest(pa.concat_tables(parts), "labels",
                                                      source_name=f"{name} labels of {self.tl.at(day):%Y-%m-%d}")
                self._time("ingest labels", t)

    # --- the story ---------------------------------------------------------------------------------

    def _register(self) -> None:
        specs = [
            (CREDIT, "classification", simulate.CREDIT_TARGET, CREDIT_TRAIN, CREDIT_HYPERPARAMETERS,
             "Probability that a loan applicant defaults within 12 months; scores every application.", None),
            (DELIVERY, "regression", simulate.DELIVERY_TARGET, DELIVERY_TRAIN, DELIVERY_HYPERPARAMETERS,
             "Minutes from order to door, shown to the customer at checkout.", "minutes"),
        ]
        for i, (name, task, target, file, hyperparameters, description, unit) in enumerate(specs):
            t = time.perf_counter()
            at = self._at(0, -9.0 + i)
            self.room.register(name, task, target, _training_file(file), hyperparameters=hyperparameters,
                               seed=self.seed, description=description, unit=unit,
                               train_start=at - timedelta(days=180), train_end=at - timedelta(days=1))
            self._time(f"register {name}", t)
        self._at(0, -7.0)
        self._model(CREDIT).set_policy(**CREDIT_POLICY)

    def _say(self, text: str) -> None:
        day = (self.clock.now - self.tl.start) // timedelta(days=1)
        self.summary.story.append(f"day {day}: {text}")

    def _retrain(self, model: Model, params: dict, *, trigger: str = "manual"):
        """A retrain job run here and now; its outcome, or None when it failed (the failure is in its run)."""
        t = time.perf_counter()
        try:
            return self.room.execute_retrain(model.retrain(params, trigger=trigger, spawn=False))
        except MlopsError as exc:
            kind = {"schedule": "scheduled"}.get(trigger, trigger)
            self._say(f"a {kind} retrain of {model.name} failed: {exc}")
            return None
        finally:
            self._time("retrains", t)

    def _retrain_v2(self, now: datetime) -> None:
        window = self.tl.v2_window()
        outcome = self._retrain(self._model(CREDIT), {"window_days": len(window), "end": self.tl.at(window.stop),
                                                      "seed": self.seed})
        if outcome is None:
            return
        verdict = "passed" if outcome.passed else "failed"
        self._say(f"{CREDIT} v{outcome.candidate_version} retrained by hand on days {window.start}-{window.stop - 1} "
                  f"{verdict} its gate: " + " ".join(outcome.gate["reasons"]))
        if outcome.passed:
            self.v2 = outcome
        else:
            self._say(f"v{outcome.champion_version} keeps serving: no A/B test, no promotion")

    def _start_ab(self, now: datetime) -> None:
        if self.v2 is not None:
            v = self.v2.candidate_version
            self._model(CREDIT).start_challenger(
                v, CHALLENGER_SHARE, reason=f"A/B test: {CHALLENGER_SHARE:.0%} of the applications to v{v}")
            self._say(f"{CREDIT} v{v} serves {CHALLENGER_SHARE:.0%} of the traffic as the challenger")

    def _promote_v2(self, now: datetime) -> None:
        if self.v2 is None:
            return
        credit = self._model(CREDIT)
        v, champion = self.v2.candidate_version, self.v2.champion_version
        ab_start = self.tl.at(self.tl.day(AB_START_DAY), AB_START_HOUR)
        ab = credit.ab_test(v, champion=champion, start=ab_start, end=now)
        if ab.challenger_value is not None and ab.champion_value is not None:
            live = (f"{ab.metric} {ab.challenger_value:.3f} (n={ab.n_challenger}) vs {ab.champion_value:.3f} "
                    f"(n={ab.n_champion})" + (f", p = {ab.p_value:.2f}" if ab.p_value is not None else ""))
        else:
            live = f"{ab.n_challenger} and {ab.n_champion} labelled requests so far, too few to compare"
        reason = (f"v{v} retrained on fresh traffic: ROC AUC {self.v2.candidate_metrics['roc_auc']:.3f} vs "
                  f"{self.v2.champion_metrics['roc_auc']:.3f} for v{champion} on the same holdout; A/B test: {live}")
        credit.promote(v, reason=reason)
        self._say(f"{CREDIT} v{v} promoted: {reason}")

    def _failed_retrain(self, now: datetime) -> None:
        model = self._model(DELIVERY, SCHEDULER)
        self._retrain(model, {"window_days": FAILED_RETRAIN_WINDOW_DAYS, "seed": self.seed}, trigger="schedule")

    def _automated_retrain(self, now: datetime) -> None:
        credit = self._model(CREDIT)
        credit.set_policy(mode="automated")
        self._say(f"{MARIA.name} switched {CREDIT}'s policy to automated")
        outcome = self._evaluate(CREDIT, self._at(self.tl.v3_day, RETRAIN_HOUR + 0.25))
        if outcome is None or not outcome.promoted:
            # nothing automation could ship: back to manual mode, a person decides what to do
            self._at(self.tl.v3_day, PAUSE_HOUR)
            credit.set_policy(mode="manual")
            self._say(f"{MARIA.name} set {CREDIT}'s policy back to manual: a person decides what to ship")

    def _monitor_and_evaluate(self, now: datetime) -> None:
        for name in (CREDIT, DELIVERY):
            t = time.perf_counter()
            result = self._model(name, SCHEDULER).monitor(now=now)
            self.monitor_runs += 1
            self.alerts += len(result.alerts)
            self._time("monitoring", t)
            self._evaluate(name, now, drift_share=result.drift_share, metrics=result.metrics)

    def _evaluate(self, name: str, now: datetime, **signals):
        """Evaluate the model's policy (with the monitor's figures, or running the monitor itself); run a retrain
        it starts right away, as its background job would. Returns the retrain's outcome (None: no retrain, or it
        failed)."""
        t = time.perf_counter()
        model = self._model(name, SCHEDULER)
        decision = model.evaluate_policy(now=now, spawn=False, **signals)
        self.evaluations += 1
        self._time("policy evaluations", t)
        if decision.retrain_run_id is None:
            return None
        self._say(f"{name}'s policy ({decision.mode}) fired: {'; '.join(decision.triggers)}; automated retrain")
        t = time.perf_counter()
        try:
            outcome = self.room.execute_retrain(decision.retrain_run_id)
        except MlopsError as exc:
            self._say(f"the automated retrain of {name} failed: {exc}")
            return None
        finally:
            self._time("retrains", t)
        if outcome.promoted:
            self._say(f"{name} v{outcome.candidate_version} passed its gate and automation promoted it: "
                      + " ".join(outcome.gate["reasons"]))
        else:
            self._say(f"{name} v{outcome.candidate_version} was {outcome.status}; v{outcome.champion_version} stays in "
                      "production: " + " ".join(outcome.gate["reasons"]))
        return outcome


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
    credit = ControlRoom(db).model(CREDIT)
    version = credit.production_version()
    pipe = credit.load(version)
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

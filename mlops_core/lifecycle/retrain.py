"""The retrain pipeline: fresh labelled data -> validate -> train -> evaluate vs champion -> gate -> register.

One retrain is one run row (kind ``retrain``) that the job updates after every step
(progress 0..1 and a message). It visits the database twice: once to start the run,
read the window, validate it and prepare the fit, and once to register the outcome in
one transaction. In between (the fit and the evaluation) it holds nothing, so ingest
and the dashboard keep working; progress meanwhile is written from a background thread
with short connections, each message PROGRESS_DELAY_S after it was posted.

Defaults (override per run with ``params``; ``retrain --window-days`` etc.):

- data window: the labelled predictions of the last ``window_days`` = 30 days up to
  ``end`` (default: now). A label sent twice counts once (the last one wins).
- validation (critical checks, any one aborts the run): at least ``min_rows`` = 200
  labelled rows; classification: at least two classes, and every class present at
  least 5 times in the training part; regression: a non-constant target; no feature
  entirely empty. Labels of a class the champion never saw and features with more
  than half of their values missing are recorded as warnings. When
  ``validation.validate_frame`` (schema, types, ranges, categories) finds critical anomalies,
  they abort too.
- features from the feature store: for a model bound to the store (``ModelInfo.feature_binding``),
  the bound features of every labelled prediction are rebuilt from the store at the prediction's
  time (point in time, ``features.binding.rebuild_from_store``) from the entity key its log
  recorded; predictions logged without a key keep their logged values. The run's statistics say
  how many rows came from the store and, per feature, how often the store's value differs from
  the logged one (training-serving skew); a difference is a warning, not a failure.
- split: time-based. The most recent 20% of the window's rows (by prediction time) are
  the holdout; both the candidate and the champion are scored on exactly these rows.
- training: ``sklearn.base.clone`` of the champion's fitted pipeline (same steps and
  hyperparameters, unfitted), with the hyperparameter overrides in
  ``params["hyperparameters"]`` applied to its final estimator.
- training metrics: scored on an evenly spaced sample of at most 20,000 training rows
  (``TRAIN_METRICS_ROWS``); they describe the fit, the gate reads holdout metrics only.
- gate: the model's policy gate (``policies.Policy.gate``; default: not worse than the
  champion on the headline metric, see ``gate``).
- outcome: the candidate is registered as ``candidate`` (passed) or ``rejected``
  (failed) with the gate's decision and reasons. With ``auto_promote`` (automated
  mode, or ``retrain --promote``) a passing candidate is promoted in the same
  transaction, unless production changed while the job ran. The run's statistics hold
  the row counts, the window's predictions, label coverage, positive rate (binary) and
  null rates beside the metrics; the same transaction checks them against the model's
  earlier retrains (``monitoring.run_checks``).
- artifacts: the champion is loaded only after its sha256 and the skops allow-list
  check pass; the candidate is serialised before the registration transaction and,
  when it is to be promoted, loaded back from those bytes and checked for ``predict``
  first. A failed check is an IntegrityError: the run fails, records the error and its
  kind (``statistics["error_kind"]``, which ``retrain --wait`` turns into exit 5), and
  nothing is registered or promoted.
"""
from __future__ import annotations

import gc
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa

from mlops_core.data.reference import summarise_arrow
from mlops_core.data.schema import coerce_features, finite_number, shown
from mlops_core.entities import Anomaly, ModelInfo, RunAnomaly, RunInfo, VersionInfo, jsonable
from mlops_core.errors import ConflictError, InvalidInputError, MlopsError
from mlops_core.features import binding as fbinding
from mlops_core.lifecycle import artifacts, registry, training
from mlops_core.lifecycle import gate as gatemod
from mlops_core.lifecycle.policies import Policy, policy_of
from mlops_core.monitoring import run_checks, validation
from mlops_core.store import Store, logs, utcnow
from mlops_core.store import jobs as jobstore
from mlops_core.store import models as mstore
from mlops_core.store import runs as runstore
from mlops_core.store import training_data as tdstore
from mlops_core.store.logs import LogView

DEFAULT_WINDOW_DAYS = 30
DEFAULT_MIN_ROWS = 200
MIN_CLASS_ROWS = 5
HEARTBEAT_S = 5.0
#: A progress message is written this long after it was posted, unless a newer one or the outcome replaces it first.
PROGRESS_DELAY_S = 0.5


#: Most training rows scored for a candidate's training metrics (an evenly spaced sample beyond that).
TRAIN_METRICS_ROWS = 20_000

@dataclass
class RetrainParams:
    """What a retrain run was asked to do (stored as the run's ``params``)."""

    window_days: float = DEFAULT_WINDOW_DAYS
    end: datetime | None = None
    hyperparameters: dict = field(default_factory=dict)
    auto_promote: bool = False
    min_rows: int = DEFAULT_MIN_ROWS
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict | None) -> RetrainParams:
        """Validate and build from a dict; raise InvalidInputError naming the bad key or value."""
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise InvalidInputError(f"Unknown retrain parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}.")
        p = cls()
        if d.get("window_days") is not None:
            p.window_days = finite_number(d["window_days"], "window_days (a number of days)")
            if not 0 < p.window_days <= training.MAX_SPAN_DAYS:
                raise InvalidInputError(f"window_days must be positive and at most {training.MAX_SPAN_DAYS:,}, not "
                                        f"{shown(d['window_days'])}.")
        if d.get("end") is not None:
            end = d["end"]
            try:
                ts = pd.Timestamp(end)
                if ts is pd.NaT:
                    raise ValueError("no time")
            except (TypeError, ValueError, OverflowError) as exc:
                raise InvalidInputError(f"end must be a date/time such as 2026-11-20T00:00, not {shown(end)}.") from exc
            if ts.tzinfo is not None:
                ts = ts.tz_convert("UTC").tz_localize(None)
            p.end = ts.to_pydatetime()
        if d.get("hyperparameters"):
            if not isinstance(d["hyperparameters"], dict):
                raise InvalidInputError("hyperparameters must be a mapping of name to value.")
            p.hyperparameters = dict(d["hyperparameters"])
        p.auto_promote = bool(d.get("auto_promote", False))
        if d.get("min_rows") is not None:
            rows = finite_number(d["min_rows"], "min_rows")
            if rows != int(rows) or rows < training.MIN_TRAINING_ROWS:
                raise InvalidInputError(f"min_rows must be a whole number of at least {training.MIN_TRAINING_ROWS}, "
                                        f"not {shown(d['min_rows'])}.")
            p.min_rows = int(rows)
        if d.get("seed") is not None:
            seed = finite_number(d["seed"], "seed")
            if seed != int(seed) or not 0 <= seed < 2 ** 32:
                raise InvalidInputError(f"seed must be a whole number from 0 to 2**32 - 1, not {shown(d['seed'])}.")
            p.seed = int(seed)
        return p

    def to_dict(self) -> dict:
        d = asdict(self)
        d["end"] = self.end.isoformat() if self.end else None
        return d


@dataclass
class RetrainOutcome:
    """What a finished retrain produced (also stored in its run's ``statistics``)."""

    run_id: str
    model: str
    candidate_version: int
    status: str
    passed: bool
    promoted: bool
    candidate_metrics: dict
    champion_version: int | None
    champion_metrics: dict | None
    gate: dict
    statistics: dict
    run_anomalies: list[RunAnomaly] = field(default_factory=list)  # what was unusual about the run


class _RunWriter(threading.Thread):
    """Writes a running job's progress and heartbeat to its run row, from a background thread.

    ``post`` hands over the newest progress and message and returns at once. This thread
    writes it PROGRESS_DELAY_S later with a short connection (an open of the file costs
    about 15 ms of CPU), while the job goes on fitting or scoring; a newer message posted
    meanwhile replaces it, so a step shorter than the delay costs no write at all. With
    nothing new to write it refreshes the heartbeat every HEARTBEAT_S seconds. ``halt``
    stops it and waits for a write in flight; a message not yet written is dropped then,
    because the job's final write (succeeded or failed, in one transaction) replaces it.
    Only one writer touches the row at a time: two concurrent updates of one row would
    make DuckDB refuse one of them (a write-write conflict).
    """

    def __init__(self, store: Store, run_id: str):
        super().__init__(daemon=True)
        self.store, self.run_id = store, run_id
        self.cond = threading.Condition()
        self.writing = threading.Lock()
        self.pending: dict | None = None
        self.pending_since = 0.0
        self.last_write = time.monotonic()
        self.stopped = False

    def post(self, progress: float, message: str) -> None:
        with self.cond:
            if self.pending is None:
                self.pending_since = time.monotonic()
            self.pending = {"progress": progress, "message": message}
            self.cond.notify()

    def _wait_for_work(self) -> None:
        """Under ``cond``: sleep until a posted message is due, the heartbeat is due, or ``halt``."""
        while not self.stopped:
            if self.pending is not None:
                left = self.pending_since + PROGRESS_DELAY_S - time.monotonic()
            else:
                left = self.last_write + HEARTBEAT_S - time.monotonic()
            if left <= 0:
                return
            self.cond.wait(left)

    def run(self):
        while True:
            with self.cond:
                self._wait_for_work()
                if self.stopped:
                    return
                update, self.pending = self.pending, None
                self.writing.acquire()  # under the condition: halt() cannot slip in between
            try:
                with self.store.connect(write=True) as con:
                    if update:
                        runstore.update_run(con, self.run_id, **update)
                    else:
                        runstore.heartbeat(con, self.run_id)
            except Exception:  # noqa: BLE001, S110 - a missed beat or message is harmless; staleness allows minutes
                pass
            finally:
                self.last_write = time.monotonic()
                self.writing.release()

    def halt(self) -> None:
        """Stop writing and wait until no write is in flight."""
        with self.cond:
            self.stopped = True
            self.cond.notify()
        with self.writing:
            pass


def validate_training_frame(frame: pd.DataFrame, info: ModelInfo, y: pd.Series | None, params: RetrainParams,
                            window: tuple[datetime, datetime]) -> list[Anomaly]:
    """Critical and warning anomalies of a labelled window (see the module docstring); pure.

    The caller aborts on any critical one.
    """
    out = []
    n = len(frame)
    start, end = window
    if n < params.min_rows:
        out.append(Anomaly("too_few_rows", "critical",
                           f"Only {n} labelled rows between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M}; at least "
                           f"{params.min_rows} are needed. Widen the window (--window-days), or wait for more labels."))
        return out
    for f in info.features:
        nulls = frame[f.name].isna().mean() if f.name in frame else 1.0
        if nulls >= 1.0:
            out.append(Anomaly("empty_feature", "critical",
                               f"Feature {f.name!r} has no values in the window; the model cannot be trained on it.",
                               feature=f.name))
        elif nulls > 0.5:
            out.append(Anomaly("null_rate", "warning", f"Feature {f.name!r} is {nulls:.0%} empty in the window.",
                               feature=f.name, share=float(nulls)))
    if y is None:
        return out
    if info.task == "classification":
        counts = y.value_counts()
        if len(counts) < 2:
            out.append(Anomaly("one_class", "critical",
                               f"The labels of the window hold one class only ({counts.index[0]!r}); a classifier "
                               "needs both."))
        else:
            train_part, _ = training.time_split(y)
            tc = train_part.value_counts()
            rare = [str(c) for c in counts.index if tc.get(c, 0) < MIN_CLASS_ROWS]
            if rare:
                out.append(Anomaly("rare_class", "critical",
                                   f"Class(es) {', '.join(rare)} appear fewer than {MIN_CLASS_ROWS} times in the "
                                   "training part of the window; widen the window (--window-days)."))
        unseen = sorted(set(map(str, counts.index)) - set(info.classes)) if info.classes else []
        if unseen:
            out.append(Anomaly("unseen_class", "warning",
                               f"Label class(es) {', '.join(unseen)} were not in the model's training data."))
    elif y.nunique() < 2:
        out.append(Anomaly("constant_target", "critical",
                           "The target is constant in the window; there is nothing to learn."))
    return out


def _abort_on_critical(anomalies: list[Anomaly]) -> None:
    critical = [a for a in anomalies if a.blocking]
    if critical:
        raise InvalidInputError("Validation of the training data failed: " + " ".join(a.detail for a in critical))


def _window_validation(con, info: ModelInfo, table: pa.Table) -> list[Anomaly]:
    """Anomalies of the window's features from ``validation.validate_frame`` (schema, types, ranges, categories).

    ``validate_frame`` works on a cursor of its own, so this may run in another thread than ``con``'s.
    The table is handed over in slices of 16,384 rows (no copy), which DuckDB scans in parallel.
    """
    report = validation.validate_frame(con, info, pa.Table.from_batches(table.to_batches(max_chunksize=16_384)))
    return list(report.anomalies)


def execute(store: Store, run_id: str) -> RetrainOutcome:
    """Run the queued retrain ``run_id`` to the end in this process; return its outcome.

    Marks the run failed (with the error) and re-raises when anything goes wrong; nothing
    is registered then. Raises NotFoundError (run), ConflictError (run not queued).

    Python's cyclic garbage collector is paused while the job runs and restored afterwards.
    A full collection scans every object of an interpreter that has pandas, scikit-learn
    and DuckDB loaded (50-80 ms here), and the job's allocations would set one off in the
    middle of a step; what the job frees, reference counting frees at once, and the few
    reference cycles it leaves wait for the collector's next pass after the job.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _run_job(store, run_id)
    finally:
        if enabled:
            gc.enable()


@dataclass
class _Context:
    """What the job reads from the metadata when it starts (one short visit)."""

    run: RunInfo
    started: datetime
    params: RetrainParams
    start: datetime
    end: datetime
    info: ModelInfo
    champion: VersionInfo | None
    policy: Policy
    log: LogView


def _run_job(store: Store, run_id: str) -> RetrainOutcome:
    with store.transaction() as con:  # the first visit: start the run and read what the job needs
        run = runstore.get_run(con, run_id)
        if run.status != "queued":
            raise ConflictError(f"Run {run_id} is {run.status}, not queued; it cannot be started again.",
                                run_id=run_id)
        started = utcnow()
        runstore.update_run(con, run_id, status="running", started_at=started, pid=os.getpid(),
                            host=socket.gethostname(), progress=0.05, message="gathering the labelled rows")
    writer = _RunWriter(store, run_id)
    writer.start()
    try:
        with store.connect() as con:
            ctx = _context(con, store, run, started)
        return _execute(store, ctx, writer)
    except BaseException as exc:
        writer.halt()
        message = str(exc) if isinstance(exc, MlopsError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            message = "The retrain was interrupted (the process was asked to stop); nothing was registered."
        try:
            with store.transaction() as con:
                jobstore.mark_failed(con, runstore.get_run(con, run_id), message, actor=run.actor,
                                     error_kind=type(exc).__name__ if isinstance(exc, MlopsError) else None)
        except Exception:  # noqa: BLE001, S110 - the reaper marks it failed the next time the database is opened
            pass
        raise
    finally:
        writer.halt()


def _context(con, store: Store, run: RunInfo, started: datetime) -> _Context:
    params = RetrainParams.from_dict(run.params)
    end = params.end or utcnow()
    start = end - timedelta(days=params.window_days)
    info = mstore.get_model(con, run.model)
    champion_version = mstore.current_alias(con, info.name)
    champion = mstore.get_version(con, info.name, champion_version) if champion_version is not None else None
    return _Context(run, started, params, start, end, info, champion, policy_of(con, info.name),
                    logs.view(con, store.logs, info, start, end + timedelta(microseconds=1)))


@dataclass
class _Window:
    """The labelled rows of the retrain window, split in time, and what was found in them."""

    frame: pd.DataFrame
    X: pd.DataFrame
    y: pd.Series
    cut: int  # rows before it train, rows from it are the holdout
    table: pa.Table | None  # the same rows as Arrow (None when rows were dropped for unusable labels)
    anomalies: list[Anomaly]
    predictions: int  # logged predictions in the window, labelled or not
    from_store: fbinding.Rebuilt | None = None  # what the feature store supplied (a model bound to it)


def _gather(con, ctx: _Context, store: Store) -> _Window:
    """Read and validate the window on the log engine ``con``. The SQL validation runs in DuckDB (which releases
    the GIL) on a cursor of its own while this thread prepares the frame."""
    info, params, start, end = ctx.info, ctx.params, ctx.start, ctx.end
    binding = info.feature_binding
    table = tdstore.labelled_table(con, ctx.log, start, end + timedelta(microseconds=1), with_ids=False,
                                   keys=binding is not None)
    store_notes: list[Anomaly] = []
    report = None
    if binding is not None:
        table, report, store_notes = _features_from_store(store, table, info)
    with ThreadPoolExecutor(max_workers=1) as pool:
        checking = (pool.submit(_window_validation, con, info, table.select(info.feature_names))
                    if table.num_rows >= params.min_rows else None)
        frame = table.to_pandas()
        y = None
        if len(frame) >= params.min_rows:
            try:
                y_all = training.prepare_target(frame["label"], info.task, info.target)
            except InvalidInputError as exc:
                raise InvalidInputError(f"The labels of the window cannot be used: {exc}") from exc
            if len(y_all) < len(frame):
                frame = frame.loc[y_all.index].reset_index(drop=True)
                table = None  # no longer the same rows as the frame
            y = y_all.reset_index(drop=True)
        anomalies = store_notes + validate_training_frame(frame, info, y, params, (start, end))
        _abort_on_critical(anomalies)
        X = coerce_features(frame[info.feature_names], info.features)
        cut = len(training.time_split(X)[0])
        anomalies += checking.result() if checking is not None else []
    _abort_on_critical(anomalies)
    predictions = tdstore.prediction_count(con, ctx.log, start, end + timedelta(microseconds=1))
    return _Window(frame, X, y, cut, table, anomalies, predictions, report)


#: A bound feature whose store value differs from the logged value in more than this share of rows is reported.
SKEW_WARNING_SHARE = 0.01


def _features_from_store(store: Store, table: pa.Table, info: ModelInfo
                         ) -> tuple[pa.Table, fbinding.Rebuilt, list[Anomaly]]:
    """The labelled window with the bound features rebuilt from the feature store (the key columns dropped), and
    notes: where the rows came from, and the features whose store values differ from the logged ones."""
    binding = info.feature_binding
    table, report = fbinding.rebuild_from_store(store, table, binding)
    views = ", ".join(binding.views)
    notes = [Anomaly("feature_store", "info",
                     f"{report.rows_from_store:,} labelled rows took {', '.join(binding.feature_names)} from the "
                     f"feature store ({views}) at their prediction time"
                     + (f"; {report.rows_without_key:,} rows logged without the entity key kept their logged values"
                        if report.rows_without_key else ""), count=report.rows_from_store)]
    for feature, share in report.differs_from_log.items():
        if share > SKEW_WARNING_SHARE:
            notes.append(Anomaly("training_serving_skew", "warning",
                                 f"{share:.1%} of the rows from the store have another {feature!r} than the one logged "
                                 "at serving time (a view materialized late, or rows ingested after the prediction)",
                                 feature=feature, share=share))
    return table, report, notes


def _execute(store: Store, ctx: _Context, writer: _RunWriter) -> RetrainOutcome:
    """The job's steps: gather and validate the window on the log engine, fit, evaluate, gate, and register in one
    short transaction. ``writer`` reports progress; the database is held only by its short writes."""
    timings = {}
    t0 = time.perf_counter()
    run, started, params, start, end, info = ctx.run, ctx.started, ctx.params, ctx.start, ctx.end, ctx.info
    champion_info, policy = ctx.champion, ctx.policy
    champion_version = champion_info.version if champion_info is not None else None
    t = time.perf_counter()
    with store.engine() as con:
        w = _gather(con, ctx, store)
    timings["gather_validate_s"] = time.perf_counter() - t
    X_tr, X_ho = w.X.iloc[:w.cut], w.X.iloc[w.cut:]
    y_tr, y_ho = w.y.iloc[:w.cut], w.y.iloc[w.cut:]

    t = time.perf_counter()
    if champion_info is not None:
        champion = registry.verify_version(store, champion_info)  # a tampered champion stops here: IntegrityError
        from sklearn.base import clone

        pipeline = clone(champion)
        basis = f"champion v{champion_version}'s pipeline"
    else:
        champion = None
        pipeline = training.default_pipeline(info.task, info.features, params.seed)
        basis = "the default pipeline (no champion)"
    training.set_estimator_params(pipeline, params.hyperparameters)
    algorithm, hp = training.describe(pipeline)
    writer.post(0.25, f"validated {len(w.frame):,} labelled rows; training {algorithm} on {len(X_tr):,} rows "
                      f"with {basis}")
    timings["prepare_s"] = time.perf_counter() - t

    t = time.perf_counter()
    pipeline.fit(X_tr, y_tr)
    timings["fit_s"] = time.perf_counter() - t
    writer.post(0.7, f"evaluating the candidate and the champion on the {len(X_ho):,} most recent rows, "
                     "then gating and registering")

    t = time.perf_counter()
    # Training metrics only describe the fit (the gate reads holdout metrics): an evenly spaced sample of at most
    # TRAIN_METRICS_ROWS rows describes them without scoring the whole training part a second time.
    step = max(1, -(-len(X_tr) // TRAIN_METRICS_ROWS))
    train_metrics = training.evaluate(pipeline, X_tr.iloc[::step], y_tr.iloc[::step], info.task, info.positive_class)
    cand_metrics, cand_outputs = training.evaluate_with_outputs(pipeline, X_ho, y_ho, info.task, info.positive_class)
    champ_metrics = None
    anomalies = list(w.anomalies)
    if champion is not None:
        try:
            champ_metrics = training.evaluate(champion, X_ho, y_ho, info.task, info.positive_class)
        except Exception as exc:  # noqa: BLE001 - a champion that cannot score today's features: no comparison
            anomalies.append(Anomaly("champion_evaluation", "warning",
                                     f"The champion v{champion_version} could not be scored on the holdout: {exc}"))
    timings["evaluate_s"] = time.perf_counter() - t

    decision = gatemod.evaluate_gate(cand_metrics, champ_metrics, policy.gate_rules(info.task),
                                     champion_version=champion_version)
    ts = w.frame["ts"]
    decision.champion_metrics = champ_metrics
    decision.holdout = {"rows": len(X_ho), "start": ts.iloc[w.cut], "end": ts.iloc[-1]}
    status = "candidate" if decision.passed else "rejected"
    gate_doc = jsonable(decision)
    result = training.TrainingResult(
        pipeline=pipeline, algorithm=algorithm, hyperparameters=hp, train_rows=len(X_tr), holdout_rows=len(X_ho),
        training_metrics=train_metrics, holdout_metrics=cand_metrics, X_holdout=X_ho, y_holdout=y_ho,
        holdout_outputs=cand_outputs,
    )
    stats = {
        "window_start": start, "window_end": end, "rows": len(w.frame), "train_rows": len(X_tr),
        "holdout_rows": len(X_ho), "holdout_start": ts.iloc[w.cut], "holdout_end": ts.iloc[-1],
        "champion_version": champion_version, "champion_metrics": champ_metrics, "candidate_metrics": cand_metrics,
        "training_metrics": train_metrics, "gate": gate_doc, "status": status, "anomalies": anomalies,
        "basis": basis, "hyperparameters": hp, **_data_statistics(w, info),
    }
    if w.from_store is not None:
        stats["feature_store"] = {"views": info.feature_binding.views, "rows_from_store": w.from_store.rows_from_store,
                                  "rows_without_key": w.from_store.rows_without_key,
                                  "differs_from_log": w.from_store.differs_from_log,
                                  "missing_in_store": w.from_store.missing_in_store}

    t = time.perf_counter()
    # The training reference's feature summaries from the Arrow table of the same rows (same numbers, faster).
    feature_refs = summarise_arrow(w.table, {f.name: f.kind for f in info.features}) if w.table is not None else None
    refs = registry.summarise_training_reference(result, w.X, w.y, info, feature_refs=feature_refs)
    registry.holdout_calibration(result, info)  # fitted now, stored in the registration transaction
    # Serialised outside the transaction (the lock is not held for it); a candidate bound for production is
    # loaded back from these very bytes first, as promote and rollback check a stored artifact.
    blob = artifacts.serialize(pipeline)
    if decision.passed and params.auto_promote:
        artifacts.check_serialized(blob, what=f"candidate artifact of {info.name} from retrain {run.id}")
    writer.halt()  # the registration transaction updates the run row: no other write may race it
    reg = None
    try:
        with store.transaction() as con:
            reg = registry.add_version_in(
                con, store, info, result, refs, reference_rows=len(w.X), status=status, gate=gate_doc,
                actor=run.actor, run_id=run.id,
                data_source=f"log window {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M}"
                            + (f" + feature store ({', '.join(info.feature_binding.views)})"
                               if info.feature_binding is not None else ""),
                train_start=ts.iloc[0].to_pydatetime(), train_end=ts.iloc[w.cut - 1].to_pydatetime(), artifact=blob)
            stats["candidate_version"] = reg.version
            promoted, note = False, None
            if decision.passed and params.auto_promote:
                if mstore.current_alias(con, info.name) == champion_version:
                    registry.promote_in(con, info.name, reg.version, actor=run.actor, run_id=run.id,
                                        reason=f"automatic promotion after retrain {run.id}: gate passed "
                                               f"({'; '.join(decision.reasons)})")
                    promoted = True
                else:
                    note = "production changed while the retrain ran, so it was not promoted automatically"
                    stats["note"] = note
            stats["promoted"] = promoted
            timings["register_s"] = time.perf_counter() - t
            timings["total_s"] = time.perf_counter() - t0
            stats["timings"] = timings
            verdict = "passed the gate" if decision.passed else "failed the gate"
            now = utcnow()
            runstore.update_run(con, run.id, status="succeeded", progress=1.0,
                                message=f"registered v{reg.version} as {status} ({verdict})"
                                        + ("; promoted to production" if promoted else ""),
                                metrics=cand_metrics, statistics=jsonable(stats), finished_at=now,
                                duration_s=(now - started).total_seconds())
            unusual = run_checks.check_finished_run(con, run.id)
    except BaseException:
        if reg is not None:
            artifacts.remove_artifact(store.artifacts, reg.artifact_path)
        raise
    return RetrainOutcome(run.id, info.name, reg.version, status, decision.passed, promoted, cand_metrics,
                          champion_version, champ_metrics, gate_doc, jsonable(stats), unusual)


def _data_statistics(w: _Window, info: ModelInfo) -> dict:
    """What the window's data looked like, for comparing runs (``monitoring.run_anomalies``): predictions in the
    window, the labelled share of them, the positive rate of the labels (binary classifiers) and each feature's
    null rate (NaN counts as missing)."""
    out = {"predictions": w.predictions,
           "label_coverage": len(w.frame) / w.predictions if w.predictions else None,
           "null_rates": {f: float(w.frame[f].isna().mean()) for f in info.feature_names if f in w.frame}}
    if info.binary:
        out["positive_rate"] = float((w.y == str(info.positive_class)).mean())
    return out

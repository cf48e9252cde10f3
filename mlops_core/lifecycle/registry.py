"""The model registry: models, their versions, and which version serves production.

Version statuses: ``candidate`` (registered, not serving), ``production`` (holds the
production alias; exactly one per model), ``archived`` (served before, or set aside),
``rejected`` (failed its promotion gate). State changes are soft: nothing is deleted.
Every change of the production alias is one transaction: the alias row in
``deployments``, the status of both versions, and an ``audit_events`` row.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from mlops_core.lifecycle import artifacts, training
from mlops_core.data import reference
from mlops_core.errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError
from mlops_core.data.schema import FeatureSpec, check_identifier, infer_schema
from mlops_core.store import connect, transaction, utcnow
from mlops_core.store import models as mstore
from mlops_core.store import references as rstore
from mlops_core.store import jobs as _jobs  # noqa: F401  (registers the dead-job reaper)
from mlops_core.store import runs as runstore
from mlops_core.data.files import read_table

TASKS = ("classification", "regression")
#: Pseudo-features summarised into every training reference, for prediction and target drift.
SCORE, PREDICTION, TARGET = "__score__", "__prediction__", "__target__"


@dataclass
class Registration:
    """What ``register_model`` / ``register_version`` did."""

    model: str
    version: int
    status: str
    algorithm: str
    holdout_metrics: dict
    training_metrics: dict
    train_rows: int
    holdout_rows: int
    artifact_path: str
    artifact_sha256: str
    run_id: str
    reference_id: int


def summarise_training_reference(result: training.TrainingResult, X_all: pd.DataFrame, y_all: pd.Series, task: str,
                                 features, positive_class, *, feature_refs: list | None = None) -> list:
    """Summaries of the training features, the model's predictions/scores on the holdout, and the target.

    ``feature_refs``: the features' summaries when the caller already has them (``drift.summarise_arrow``
    of the same rows gives the same numbers from an Arrow table, faster than from ``X_all``).
    """
    outputs = getattr(result, "holdout_outputs", None)
    pred, scores = outputs if outputs is not None else training.predict(result.pipeline, result.X_holdout, task,
                                                                         positive_class)
    extra = pd.DataFrame({PREDICTION: pd.Series(pred)})
    if scores is not None:
        extra[SCORE] = scores
    pred_kind = "categorical" if task == "classification" else "numeric"
    if feature_refs is None:
        feature_refs = reference.summarise(X_all.reset_index(drop=True), features)
    outputs = reference.summarise(extra, [], {PREDICTION: pred_kind, **({SCORE: "numeric"} if SCORE in extra else {})})
    target = reference.summarise(pd.DataFrame({TARGET: y_all.reset_index(drop=True)}), [], {TARGET: pred_kind})
    return list(feature_refs) + outputs + target


def register_model(
    name: str,
    task: str,
    target: str,
    training_data: str | os.PathLike | pd.DataFrame,
    *,
    artifact: str | os.PathLike | None = None,
    db: str | os.PathLike | None = None,
    actor: str = "cli",
    seed: int = 0,
    description: str | None = None,
    at: datetime | None = None,
    train_start: datetime | None = None,
    train_end: datetime | None = None,
) -> Registration:
    """Register a new model from its training data and make version 1 production.

    With ``artifact`` (a fitted scikit-learn estimator or Pipeline saved with joblib) that
    model becomes version 1; otherwise the default pipeline is trained. The feature
    schema and the reference statistics of the training data are stored; metrics come
    from a holdout. Nothing is written when anything fails.

    Raises InvalidInputError (bad name, task, file, target), AlreadyExistsError (name taken).
    """
    from mlops_core.config import resolve_db_path

    check_identifier(name, "Model name")
    if task not in TASKS:
        raise InvalidInputError(f"Unknown task {task!r}; choose one of: {', '.join(TASKS)}.", task=task)
    df = training_data if isinstance(training_data, pd.DataFrame) else read_table(training_data, what="training file")
    source = "DataFrame" if isinstance(training_data, pd.DataFrame) else str(training_data)
    if len(df) == 0:
        raise InvalidInputError("The training data has no rows.")
    if target not in df.columns:
        raise InvalidInputError(
            f"The training data has no target column {target!r}. Columns: {', '.join(map(str, df.columns))}.",
            column=target,
        )
    y_raw = df[target]
    y = training.prepare_target(y_raw, task, target)
    X = df.loc[y.index].drop(columns=[target])
    features = infer_schema(df.loc[y.index], target)
    classes = sorted(y.unique().tolist()) if task == "classification" else []
    positive = training.positive_class_of(classes) if task == "classification" else None

    db_path = resolve_db_path(db)
    with connect(db_path) as con:  # fail fast (name taken) before spending time on training
        if name in mstore.list_model_names(con):
            raise AlreadyExistsError(
                f"Model {name!r} already exists. Pick another --model name, or retrain it with `retrain --model {name}`.",
                model=name,
            )

    pipeline, fitted = None, False
    if artifact is not None:
        pipeline = _load_user_artifact(artifact)
        fitted = True
    started = utcnow()
    result = training.fit_and_evaluate(X, y, task, features, positive, seed=seed, pipeline=pipeline, fitted=fitted)
    refs = summarise_training_reference(result, training.coerce_features(X, features), y, task, features, positive)
    rel, sha = artifacts.save_artifact(result.pipeline, db_path, name, 1)
    try:
        return _write_first_version(
            db_path, name, task, target, features, positive, classes, description, result, refs, rel, sha, source,
            actor, seed, at or utcnow(), started, len(df), train_start, train_end, artifact is not None,
        )
    except BaseException:
        artifacts.remove_artifact(db_path, rel)
        raise


def _load_user_artifact(path):
    import joblib

    p = os.fspath(path)
    if not os.path.exists(p):
        raise NotFoundError(f"The artifact file {p} does not exist.", path=p)
    try:
        est = joblib.load(p)
    except Exception as exc:
        raise InvalidInputError(f"Cannot load {p} with joblib: {exc}. Save a fitted estimator with joblib.dump().", path=p) from exc
    if not hasattr(est, "predict"):
        raise InvalidInputError(f"{p} holds a {type(est).__name__}, not a fitted scikit-learn estimator (no predict()).", path=p)
    return est


def _write_first_version(db_path, name, task, target, features, positive, classes, description, result, refs, rel, sha,
                         source, actor, seed, at, started, total_rows, train_start, train_end, from_artifact):
    with connect(db_path) as con, transaction(con):
        mstore.create_model(con, name, task, target, features, positive_class=positive, classes=classes,
                            description=description)
        run_id = runstore.insert_run(
            con, model=name, kind="train", trigger="manual" if actor != "automation" else "automated", actor=actor,
            status="running", params={"source": source, "seed": seed, "artifact": from_artifact}, created_at=started,
        )
        version = mstore.VersionInfo(
            model=name, version=1, algorithm=result.algorithm, hyperparameters=result.hyperparameters, status="production",
            artifact_path=rel, artifact_sha256=sha, train_start=train_start, train_end=train_end,
            train_rows=result.train_rows, data_source=source, training_metrics=result.training_metrics,
            holdout_metrics=result.holdout_metrics, holdout_rows=result.holdout_rows, run_id=run_id, created_by=actor,
            created_at=at,
        )
        mstore.insert_version(con, version)
        ref_id = rstore.save_reference(con, name, refs, kind="training", version=1, rows=total_rows)
        mstore.move_alias(con, name, 1, actor=actor, action="register", reason="first version", run_id=run_id, at=at)
        runstore.insert_audit(con, actor=actor, action="register", model=name, to_version=1,
                              reason="registered with version 1 in production", run_id=run_id, at=at)
        finished = utcnow()
        runstore.update_run(con, run_id, status="succeeded", progress=1.0, message="registered version 1",
                            metrics=result.holdout_metrics, statistics={"train_rows": result.train_rows,
                                                                         "holdout_rows": result.holdout_rows},
                            started_at=started, finished_at=finished, duration_s=(finished - started).total_seconds())
    return Registration(name, 1, "production", result.algorithm, result.holdout_metrics, result.training_metrics,
                        result.train_rows, result.holdout_rows, rel, sha, run_id, ref_id)


def load_model(model: str, version: int | None = None, *, db: str | os.PathLike | None = None):
    """Load a version's fitted pipeline (production when ``version`` is None) after verifying its sha256.

    Raises NotFoundError, IntegrityError (artifact changed since registration).
    """
    from mlops_core.config import resolve_db_path

    db_path = resolve_db_path(db)
    with connect(db_path, create=False) as con:
        mstore.get_model(con, model)
        if version is None:
            version = mstore.current_alias(con, model)
            if version is None:
                raise NotFoundError(f"Model {model!r} has no production version.", model=model)
        v = mstore.get_version(con, model, version)
    return load_version(db_path, v)


def load_version(db_path: str | os.PathLike, v: mstore.VersionInfo):
    """Load the fitted pipeline of a version already read from the registry, after verifying its sha256.

    Raises NotFoundError (file gone), IntegrityError (artifact changed since registration).
    """
    return artifacts.load_artifact(db_path, v.artifact_path, v.artifact_sha256, what=f"artifact of {v.model} v{v.version}")


def production_version(model: str, *, db=None) -> int | None:
    """Return the version number holding production for ``model`` (None when none does)."""
    with connect(db, create=False) as con:
        mstore.get_model(con, model)
        return mstore.current_alias(con, model)


def get_model(model: str, *, db=None) -> mstore.ModelInfo:
    with connect(db, create=False) as con:
        return mstore.get_model(con, model)


def list_models(*, db=None) -> list[mstore.ModelInfo]:
    with connect(db, create=False) as con:
        return [mstore.get_model(con, n) for n in mstore.list_model_names(con)]


def list_versions(model: str, *, db=None) -> list[mstore.VersionInfo]:
    with connect(db, create=False) as con:
        mstore.get_model(con, model)
        return mstore.list_versions(con, model)


def _move_production(con, model: str, version: int, *, actor: str, action: str, reason: str | None,
                     run_id: str | None, at: datetime, details: dict | None = None) -> int | None:
    """Inside a transaction: move the production alias, fix both statuses, append the audit row; return the previous holder."""
    previous = mstore.move_alias(con, model, version, actor=actor, action=action, reason=reason, run_id=run_id, at=at)
    if previous is not None and previous != version:
        mstore.set_version_status(con, model, previous, "archived")
    mstore.set_version_status(con, model, version, "production")
    runstore.insert_audit(con, actor=actor, action=action, model=model, from_version=previous, to_version=version,
                          reason=reason, run_id=run_id, details=details, at=at)
    return previous


def _check_promotable(con, model: str, version: int, force: bool) -> tuple[mstore.VersionInfo, int | None]:
    mstore.get_model(con, model)
    v = mstore.get_version(con, model, version)
    current = mstore.current_alias(con, model)
    if current == version:
        raise ConflictError(f"Version {version} of {model!r} is already in production.", model=model, version=version)
    if v.status == "rejected" and not force:
        reasons = "; ".join((v.gate or {}).get("reasons", [])) or "it failed its promotion gate"
        raise ConflictError(
            f"Version {version} of {model!r} was rejected ({reasons}). Pass force=True (CLI: --force) to promote it anyway.",
            model=model, version=version,
        )
    return v, current


def promote_in(con, model: str, version: int, *, actor: str, reason: str | None = None, force: bool = False,
               run_id: str | None = None, at: datetime | None = None, action: str = "promote") -> dict:
    """``promote`` on an open connection, inside the caller's transaction (for jobs that finish in one transaction)."""
    v, _ = _check_promotable(con, model, version, force)
    at = at or utcnow()
    forced = bool(force and v.status == "rejected")
    details = {"forced": True, "previous_status": v.status} if forced else None
    if forced and not reason:
        reason = "forced promotion of a version the gate rejected"
    previous = _move_production(con, model, version, actor=actor, action=action, reason=reason, run_id=run_id, at=at,
                                details=details)
    return {"model": model, "from_version": previous, "to_version": version, "forced": forced, "action": action,
            "actor": actor, "reason": reason, "at": at}


def promote(model: str, version: int, *, actor: str = "cli", reason: str | None = None, force: bool = False, db=None,
            run_id: str | None = None, at: datetime | None = None, action: str = "promote") -> dict:
    """Make ``version`` the production version of ``model`` in one transaction.

    The previous holder becomes ``archived``; the alias history and the audit log get a
    row each (a forced promotion of a rejected version says so in the audit details).
    Returns ``{model, from_version, to_version, forced, action, actor, reason, at}``.
    Raises NotFoundError (model/version), ConflictError (already production; rejected
    without ``force``).
    """
    try:
        version = int(version)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"Version must be a whole number, not {version!r}.", version=version) from exc
    with connect(db, create=False) as con, transaction(con):
        return promote_in(con, model, version, actor=actor, reason=reason, force=force, run_id=run_id, at=at,
                          action=action)


def production_stack(history: pd.DataFrame) -> list[int]:
    """The undo stack of production versions from the alias history (oldest first; the last is in production).

    Every deployment that is not a rollback pushes its version; a rollback pops versions
    until its target is on top. Rolling back therefore walks back through the versions
    that held production, in reverse order, and never bounces between two of them.
    """
    stack: list[int] = []
    rows = history[history["alias"] == "production"] if len(history) else history
    for version, action in zip(rows.get("version", []), rows.get("action", [])):
        version = int(version)
        if action == "rollback":
            while stack and stack[-1] != version:
                stack.pop()
            if not stack:
                stack.append(version)
        else:
            stack.append(version)
    return stack


def rollback(model: str, *, to: int | None = None, actor: str = "cli", reason: str | None = None, db=None,
             run_id: str | None = None, at: datetime | None = None) -> dict:
    """Put back the version that held production before the current one (or ``to``, an earlier holder).

    One transaction: the alias moves (history row with action ``rollback``), the current
    version becomes ``archived``, the target becomes ``production``, one audit row.
    A second rollback walks further back through the deployment history (see
    ``production_stack``); a promotion after a rollback starts a new step of history.
    Returns the same dict as ``promote``. Raises NotFoundError (model, version),
    ConflictError (nothing earlier to roll back to; ``to`` never held production or is
    the current version).
    """
    with connect(db, create=False) as con, transaction(con):
        mstore.get_model(con, model)
        stack = production_stack(mstore.deployment_history(con, model, "production"))
        current = stack[-1] if stack else mstore.current_alias(con, model)
        earlier = stack[:-1]
        if to is None:
            if not earlier:
                raise ConflictError(
                    f"{model!r} has no earlier production version to roll back to (production history: "
                    f"{' -> '.join(f'v{v}' for v in stack) or 'empty'}). Promote a version instead.",
                    model=model,
                )
            target = earlier[-1]
        else:
            target = int(to)
            mstore.get_version(con, model, target)
            if target == current:
                raise ConflictError(f"Version {target} of {model!r} is already in production.", model=model,
                                    version=target)
            if target not in earlier:
                held = ", ".join(f"v{v}" for v in dict.fromkeys(reversed(earlier))) or "none"
                raise ConflictError(
                    f"Version {target} of {model!r} is not an earlier production version, so it cannot be rolled back "
                    f"to (earlier production versions, newest first: {held}). Use promote to deploy it.",
                    model=model, version=target,
                )
        at = at or utcnow()
        reason = reason or f"rollback from v{current} to v{target}"
        previous = _move_production(con, model, target, actor=actor, action="rollback", reason=reason, run_id=run_id,
                                    at=at, details={"rolled_back_from": current})
    return {"model": model, "from_version": previous, "to_version": target, "forced": False, "action": "rollback",
            "actor": actor, "reason": reason, "at": at}


def rollback_target(model: str, *, db=None) -> int | None:
    """The version a plain ``rollback`` would restore now, or None when there is none."""
    with connect(db, create=False) as con:
        mstore.get_model(con, model)
        stack = production_stack(mstore.deployment_history(con, model, "production"))
    return stack[-2] if len(stack) >= 2 else None


def deployment_history(model: str, db=None) -> pd.DataFrame:
    """The production/challenger alias history of ``model`` (oldest first): version, started_at, ended_at, actor, action, reason, run_id."""
    with connect(db, create=False) as con:
        mstore.get_model(con, model)
        return mstore.deployment_history(con, model)


def audit_log(model: str | None = None, db=None) -> pd.DataFrame:
    """The audit events (newest first), of one model or all."""
    with connect(db, create=False) as con:
        if model is not None:
            mstore.get_model(con, model)
        return runstore.audit_frame(con, model)


def runs(model: str | None = None, db=None) -> pd.DataFrame:
    """The pipeline runs (newest first), of one model or all; params/metrics/statistics are JSON text."""
    with connect(db, create=False) as con:
        if model is not None:
            mstore.get_model(con, model)
        return runstore.runs_frame(con, model)


def versions_frame(model: str, db=None) -> pd.DataFrame:
    """One row per version: status, algorithm, training window and rows, headline holdout metrics, gate verdict."""
    vs = list_versions(model, db=db)
    rows = []
    for v in vs:
        row = {"version": v.version, "status": v.status, "algorithm": v.algorithm, "created_at": v.created_at,
               "created_by": v.created_by, "train_start": v.train_start, "train_end": v.train_end,
               "train_rows": v.train_rows, "holdout_rows": v.holdout_rows, "run_id": v.run_id,
               "gate_passed": (v.gate or {}).get("passed"),
               "gate_reasons": "; ".join((v.gate or {}).get("reasons", [])) or None}
        for k, val in (v.holdout_metrics or {}).items():
            row[f"holdout_{k}"] = val
        rows.append(row)
    return pd.DataFrame(rows)


def add_version(
    model: str,
    result: training.TrainingResult,
    *,
    reference_frame: pd.DataFrame,
    reference_target: pd.Series,
    status: str = "candidate",
    gate: dict | None = None,
    actor: str = "cli",
    run_id: str | None = None,
    data_source: str | None = None,
    train_start: datetime | None = None,
    train_end: datetime | None = None,
    at: datetime | None = None,
    db=None,
    finish=None,
    info: mstore.ModelInfo | None = None,
    feature_refs: list | None = None,
) -> Registration:
    """Register a fitted ``result`` as the next version of ``model`` (status candidate or rejected).

    In one transaction takes the next version number, saves the artifact under it, and
    inserts the version row, its training reference (``reference_frame``: the training
    features; ``reference_target``: their target) and an audit event. The artifact file
    is removed again when the transaction fails, so no orphan is left. ``info``: the
    model as already read by the caller (saves a visit to the database); ``feature_refs``:
    the summaries of ``reference_frame``'s features when already computed. Promotion is a
    separate step (``promote``), unless ``finish(con, version)`` is given: it runs inside
    the same transaction (a job uses it to mark its run succeeded and, in automated mode,
    to promote), so the version, the run's outcome and the promotion happen together or
    not at all.
    Raises NotFoundError (model), InvalidInputError (status).
    """
    from mlops_core.config import resolve_db_path

    if status not in ("candidate", "rejected"):
        raise InvalidInputError(f"A new version starts as 'candidate' or 'rejected', not {status!r}.", status=status)
    db_path = resolve_db_path(db)
    if info is None:
        with connect(db_path, create=False) as con:
            info = mstore.get_model(con, model)
    if feature_refs is None:
        reference_frame = training.coerce_features(reference_frame, info.features)
    refs = summarise_training_reference(result, reference_frame, reference_target, info.task, info.features,
                                        info.positive_class, feature_refs=feature_refs)
    at = at or utcnow()
    rel = None
    try:
        with connect(db_path, create=False) as con, transaction(con):
            number = mstore.next_version_number(con, model)
            rel, sha = artifacts.save_artifact(result.pipeline, db_path, model, number)
            mstore.insert_version(con, mstore.VersionInfo(
                model=model, version=number, algorithm=result.algorithm, hyperparameters=result.hyperparameters,
                status=status, artifact_path=rel, artifact_sha256=sha, train_start=train_start, train_end=train_end,
                train_rows=result.train_rows, data_source=data_source, training_metrics=result.training_metrics,
                holdout_metrics=result.holdout_metrics, holdout_rows=result.holdout_rows, gate=gate, run_id=run_id,
                created_by=actor, created_at=at,
            ))
            ref_id = rstore.save_reference(con, model, refs, kind="training", version=number, rows=len(reference_frame))
            runstore.insert_audit(con, actor=actor, action="register_version", model=model, to_version=number,
                                  reason=f"registered as {status}", run_id=run_id,
                                  details={"gate": gate} if gate else None, at=at)
            if finish is not None:
                finish(con, number)
    except BaseException:
        if rel is not None:
            artifacts.remove_artifact(db_path, rel)
        raise
    return Registration(model, number, status, result.algorithm, result.holdout_metrics, result.training_metrics,
                        result.train_rows, result.holdout_rows, rel, sha, run_id or "", ref_id)


#: compare(): the holdout is the most recent 20% of the labelled rows of this many days, at most COMPARE_MAX_ROWS rows.
COMPARE_WINDOW_DAYS = 30
COMPARE_MAX_ROWS = 50_000


@dataclass
class Comparison:
    """Versions of one model side by side (columns ``v<N>`` in version order).

    ``holdout``: metrics (rows) of each version re-scored on the same recent labelled
    rows of the log (``holdout_source`` says which); ``recorded``: the holdout metrics
    stored at registration (each on its own holdout); ``windows``: metrics per window
    of the log and version (long format, from ``performance.over_time``; empty when
    unavailable); ``hyperparameters``: one row per parameter; ``lineage``: one row per
    version (training window, rows, run, artifact sha256, creator, status).
    """

    model: str
    versions: list[int]
    holdout: pd.DataFrame
    holdout_source: str
    recorded: pd.DataFrame
    windows: pd.DataFrame
    hyperparameters: pd.DataFrame
    lineage: pd.DataFrame
    errors: dict = None

    def hyperparameter_differences(self) -> pd.DataFrame:
        """Only the hyperparameters whose values differ between the versions."""
        hp = self.hyperparameters
        if hp.empty:
            return hp
        differs = hp.astype(str).nunique(axis=1, dropna=False) > 1
        return hp[differs]


def compare(model: str, versions, *, db=None, window_days: float = COMPARE_WINDOW_DAYS,
            end: datetime | None = None) -> Comparison:
    """Compare ``versions`` of ``model`` (see ``Comparison``); artifacts are sha256-checked before scoring.

    The shared holdout is the most recent 20% of the labelled log rows of the last
    ``window_days`` days up to ``end`` (default now; when that window is empty, the
    most recent labelled rows whatever their age), capped at 50,000 rows.
    Raises NotFoundError (model, version), InvalidInputError (fewer than two versions).
    """
    from datetime import timedelta

    from mlops_core.config import resolve_db_path
    from mlops_core.store import training_data as tdstore

    try:
        versions = sorted(dict.fromkeys(int(v) for v in versions))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"Versions must be whole numbers, e.g. 2,3; got {versions!r}.") from exc
    if len(versions) < 2:
        raise InvalidInputError("Give at least two different versions to compare, e.g. --versions 2,3.")
    db_path = resolve_db_path(db)
    end = end or utcnow()
    with connect(db_path, create=False) as con:
        info = mstore.get_model(con, model)
        vinfo = [mstore.get_version(con, model, v) for v in versions]
        upper = end + timedelta(microseconds=1)
        count = tdstore.labelled_count(con, info, end - timedelta(days=window_days), upper)
        if count:
            frame = tdstore.labelled_rows(con, info, end - timedelta(days=window_days), upper,
                                          limit=min(COMPARE_MAX_ROWS, max(1, int(round(count * training.HOLDOUT_FRACTION)))))
        else:
            frame = tdstore.labelled_rows(con, info, None, upper, limit=2000)
    cols = [f"v{v}" for v in versions]
    errors = {}
    holdout = pd.DataFrame(columns=cols)
    source = "no labelled rows in the log: only the metrics recorded at registration are available"
    if len(frame):
        try:
            y = training.prepare_target(frame["label"], info.task, info.target)
        except InvalidInputError as exc:
            y = None
            errors["holdout"] = str(exc)
        if y is not None:
            X = training.coerce_features(frame.loc[y.index, info.feature_names], info.features)
            first, last = frame["ts"].iloc[0], frame["ts"].iloc[-1]
            source = (f"the {len(X):,} most recent labelled predictions of the log "
                      f"({first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC)")
            data = {}
            for v, col in zip(versions, cols):
                try:
                    pipe = load_model(model, v, db=db_path)
                    data[col] = training.evaluate(pipe, X, y, info.task, info.positive_class)
                except Exception as exc:  # noqa: BLE001 — one unusable version must not hide the others
                    errors[col] = str(exc)
                    data[col] = {}
            holdout = pd.DataFrame(data, columns=cols)
    recorded = pd.DataFrame({c: v.holdout_metrics for c, v in zip(cols, vinfo)}, columns=cols)
    hyper = pd.DataFrame({c: {k: (json_safe(val)) for k, val in v.hyperparameters.items()} for c, v in zip(cols, vinfo)},
                         columns=cols)
    hyper.index.name = "hyperparameter"
    lineage = pd.DataFrame([{
        "version": v.version, "status": v.status, "algorithm": v.algorithm, "train_start": v.train_start,
        "train_end": v.train_end, "train_rows": v.train_rows, "holdout_rows": v.holdout_rows,
        "data_source": v.data_source, "run_id": v.run_id, "artifact_path": v.artifact_path,
        "artifact_sha256": v.artifact_sha256, "created_by": v.created_by, "created_at": v.created_at,
        "gate_passed": (v.gate or {}).get("passed"),
    } for v in vinfo])
    windows = pd.DataFrame()
    try:
        from mlops_core.monitoring import performance

        windows = performance.over_time(model, db=db_path, versions=versions)
    except ImportError:
        pass
    except Exception as exc:  # noqa: BLE001 — windowed metrics are optional context here
        errors["windows"] = str(exc)
    return Comparison(model, versions, holdout, source, recorded, windows, hyper, lineage, errors)


def json_safe(v):
    """A hyperparameter value as a plain scalar (dicts/lists as JSON text) so frames compare cleanly."""
    import json

    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v

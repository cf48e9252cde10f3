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

from . import artifacts, reference, training
from .errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError
from .schema import FeatureSpec, check_identifier, infer_schema
from .store import connect, transaction, utcnow
from .store import models as mstore
from .store import references as rstore
from .store import runs as runstore
from .tabular import read_table

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


def _reference_frame(result: training.TrainingResult, X_all: pd.DataFrame, y_all: pd.Series, task: str, positive_class):
    """Training features plus the model's outputs on the holdout and the target, for the stored reference."""
    pred, scores = training.predict(result.pipeline, result.X_holdout, task, positive_class)
    frames = {"features": X_all.reset_index(drop=True)}
    extra = pd.DataFrame({PREDICTION: pd.Series(pred)})
    if scores is not None:
        extra[SCORE] = scores
    target = pd.DataFrame({TARGET: y_all.reset_index(drop=True)})
    return frames["features"], extra, target


def summarise_training_reference(result, X_all, y_all, task, features, positive_class):
    """Summaries of the training features, the holdout predictions/scores and the target."""
    feats, extra, target = _reference_frame(result, X_all, y_all, task, positive_class)
    refs = reference.summarise(feats, features)
    pred_kind = "categorical" if task == "classification" else "numeric"
    refs += reference.summarise(extra, [], {PREDICTION: pred_kind, **({SCORE: "numeric"} if SCORE in extra else {})})
    refs += reference.summarise(target, [], {TARGET: pred_kind})
    return refs


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
    from .config import resolve_db_path

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
    from .config import resolve_db_path

    db_path = resolve_db_path(db)
    with connect(db_path, create=False) as con:
        mstore.get_model(con, model)
        if version is None:
            version = mstore.current_alias(con, model)
            if version is None:
                raise NotFoundError(f"Model {model!r} has no production version.", model=model)
        v = mstore.get_version(con, model, version)
    return artifacts.load_artifact(db_path, v.artifact_path, v.artifact_sha256, what=f"artifact of {model} v{version}")


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


def promote(model: str, version: int, *, actor: str = "cli", reason: str | None = None, force: bool = False, db=None,
            run_id: str | None = None, at: datetime | None = None, action: str = "promote") -> dict:
    """Make ``version`` the production version of ``model`` in one transaction.

    The previous holder becomes ``archived``; the alias history and the audit log get a
    row each. Raises NotFoundError (model/version), ConflictError (already production;
    rejected without ``force``).
    """
    with connect(db, create=False) as con, transaction(con):
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
        at = at or utcnow()
        previous = mstore.move_alias(con, model, version, actor=actor, action=action, reason=reason, run_id=run_id, at=at)
        if previous is not None:
            mstore.set_version_status(con, model, previous, "archived")
        mstore.set_version_status(con, model, version, "production")
        details = {"forced": True, "previous_status": v.status} if (force and v.status == "rejected") else None
        runstore.insert_audit(con, actor=actor, action=action, model=model, from_version=previous, to_version=version,
                              reason=reason, run_id=run_id, details=details, at=at)
    return {"model": model, "from_version": previous, "to_version": version, "forced": bool(details)}


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
) -> Registration:
    """Register a fitted ``result`` as the next version of ``model`` (status candidate or rejected).

    Saves the artifact, then in one transaction inserts the version row, its training
    reference (``reference_frame``: the training features; ``reference_target``: their
    target) and an audit event. The artifact file is removed again when the transaction
    fails, so no orphan is left. Promotion is a separate step (``promote``).
    Raises NotFoundError (model), InvalidInputError (status).
    """
    from .config import resolve_db_path

    if status not in ("candidate", "rejected"):
        raise InvalidInputError(f"A new version starts as 'candidate' or 'rejected', not {status!r}.", status=status)
    db_path = resolve_db_path(db)
    with connect(db_path, create=False) as con:
        info = mstore.get_model(con, model)
        number = mstore.next_version_number(con, model)
    refs = summarise_training_reference(result, training.coerce_features(reference_frame, info.features), reference_target,
                                        info.task, info.features, info.positive_class)
    rel, sha = artifacts.save_artifact(result.pipeline, db_path, model, number)
    at = at or utcnow()
    try:
        with connect(db_path) as con, transaction(con):
            if mstore.next_version_number(con, model) != number:  # another writer took the number meanwhile
                number = mstore.next_version_number(con, model)
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
    except BaseException:
        artifacts.remove_artifact(db_path, rel)
        raise
    return Registration(model, number, status, result.algorithm, result.holdout_metrics, result.training_metrics,
                        result.train_rows, result.holdout_rows, rel, sha, run_id or "", ref_id)

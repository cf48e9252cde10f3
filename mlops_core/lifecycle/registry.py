"""The model registry: models, their versions, and which version serves production.

Version statuses: ``candidate`` (registered, not serving), ``production`` (holds the
production alias; exactly one per model), ``archived`` (served before, or set aside),
``rejected`` (failed its promotion gate). State changes are soft: nothing is deleted.
Every change of the production alias is one transaction: the alias row in
``deployments``, the status of both versions, and an ``audit_events`` row. Before that
transaction opens, the artifact going into production is checked (``verify_version``:
the file exists, hashes to the recorded sha256 and loads as an estimator with
``predict``); when the check fails, IntegrityError is raised and nothing changes.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from mlops_core.data import reference
from mlops_core.data.files import read_table
from mlops_core.data.schema import check_identifier, coerce_features, infer_schema
from mlops_core.entities import (
    PREDICTION,
    SCORE,
    TARGET,
    CalibrationRecord,
    Challenger,
    FeatureBinding,
    FeatureReference,
    ModelInfo,
    Promotion,
    VersionInfo,
)
from mlops_core.errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError
from mlops_core.lifecycle import artifacts, training
from mlops_core.monitoring import estimated_performance, performance
from mlops_core.store import Store, logs, utcnow
from mlops_core.store import estimation as estore
from mlops_core.store import features as fstore
from mlops_core.store import models as mstore
from mlops_core.store import references as rstore
from mlops_core.store import runs as runstore
from mlops_core.store import training_data as tdstore

TASKS = ("classification", "regression")


@dataclass
class Registration:
    """What ``register_model`` / ``add_version`` did."""

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


def summarise_training_reference(result: training.TrainingResult, X_all: pd.DataFrame, y_all: pd.Series,
                                 info: ModelInfo, *, feature_refs: list[FeatureReference] | None = None
                                 ) -> list[FeatureReference]:
    """Summaries of the training features, the model's predictions/scores on the holdout, and the target.

    ``feature_refs``: the features' summaries when the caller already has them (``reference.summarise_arrow``
    of the same rows gives the same numbers from an Arrow table, faster than from ``X_all``).
    """
    pred, scores = holdout_outputs(result, info)
    extra = pd.DataFrame({PREDICTION: pd.Series(pred)})
    if scores is not None:
        extra[SCORE] = scores
    pred_kind = "categorical" if info.task == "classification" else "numeric"
    if feature_refs is None:
        feature_refs = reference.summarise(X_all.reset_index(drop=True), info.features)
    outputs_refs = reference.summarise(extra, [], {PREDICTION: pred_kind, **({SCORE: "numeric"} if SCORE in extra else {})})
    target = reference.summarise(pd.DataFrame({TARGET: y_all.reset_index(drop=True)}), [], {TARGET: pred_kind})
    return list(feature_refs) + outputs_refs + target


def holdout_outputs(result: training.TrainingResult, info: ModelInfo) -> tuple:
    """(predictions, positive scores) of the version on its holdout, computed once and kept on ``result``."""
    if result.holdout_outputs is None:
        result.holdout_outputs = training.predict(result.pipeline, result.X_holdout, info.task, info.positive_class)
    return result.holdout_outputs


def holdout_calibration(result: training.TrainingResult, info: ModelInfo) -> CalibrationRecord | None:
    """The calibration of a binary classifier's score fitted on its holdout, for performance estimation without
    labels (None for other models or too small a holdout). Fitted once and kept on ``result``: call it before a
    registration's transaction so the fit does not hold the database."""
    if result.holdout_calibration is None:
        pred, scores = holdout_outputs(result, info)
        record = estimated_performance.holdout_calibration(info, 0, result.y_holdout, pred, scores)
        result.holdout_calibration = record if record is not None else False
    return result.holdout_calibration or None


def _save_holdout_calibration(con, result: training.TrainingResult, info: ModelInfo, version: int) -> None:
    """Store the holdout calibration (``holdout_calibration``) as version ``version``'s; inside the registration's
    transaction."""
    record = holdout_calibration(result, info)
    if record is not None:
        estore.save_calibration(con, dataclasses.replace(record, version=int(version)))


def register_model(
    store: Store,
    name: str,
    task: str,
    target: str,
    training_data: str | os.PathLike | pd.DataFrame,
    *,
    actor: str,
    artifact=None,
    hyperparameters: dict | None = None,
    seed: int = 0,
    description: str | None = None,
    unit: str | None = None,
    at: datetime | None = None,
    train_start: datetime | None = None,
    train_end: datetime | None = None,
    feature_binding: FeatureBinding | None = None,
    data_source: str | None = None,
) -> Registration:
    """Register a new model from its training data and make version 1 production.

    ``feature_binding``: the features the model takes from the feature store (its training data was built
    from the store, see ``features.binding``); stored with the model in the same transaction.
    ``data_source`` describes the training data (default: the file's path, or "DataFrame").

    ``artifact``: a fitted scikit-learn estimator or Pipeline (loaded by the caller) that becomes
    version 1; otherwise the default pipeline is trained, with ``hyperparameters`` (parameters of
    its final estimator, e.g. ``{"max_iter": 60}``) set over scikit-learn's defaults. The feature
    schema and the reference statistics of the training data are stored; metrics come from a
    holdout. Nothing is written when anything fails.

    Raises InvalidInputError (bad name, task, file, target, hyperparameters; hyperparameters given
    with an artifact; an estimator holding types the artifact allow-list refuses), AlreadyExistsError
    (name taken), IntegrityError (the artifact does not load back).
    """
    check_identifier(name, "Model name")
    if task not in TASKS:
        raise InvalidInputError(f"Unknown task {task!r}; choose one of: {', '.join(TASKS)}.", task=task)
    hyperparameters = dict(hyperparameters or {})
    if artifact is not None and hyperparameters:
        raise InvalidInputError(
            "Hyperparameters apply to the default pipeline that register trains; the given artifact is already "
            "fitted. Drop the hyperparameters (--set) or the artifact.")
    df = training_data if isinstance(training_data, pd.DataFrame) else read_table(training_data, what="training file")
    source = data_source or ("DataFrame" if isinstance(training_data, pd.DataFrame) else str(training_data))
    if len(df) == 0:
        raise InvalidInputError("The training data has no rows.")
    if target not in df.columns:
        raise InvalidInputError(
            f"The training data has no target column {target!r}. Columns: {', '.join(map(str, df.columns))}.",
            column=target,
        )
    y = training.prepare_target(df[target], task, target)
    X = df.loc[y.index].drop(columns=[target])
    features = infer_schema(df.loc[y.index], target)
    classes = sorted(y.unique().tolist()) if task == "classification" else []
    positive = training.positive_class_of(classes) if task == "classification" else None
    with store.connect(create=True) as con:  # fail fast (name taken) before spending time on training
        _check_name_free(con, name)

    started = utcnow()
    result = training.fit_and_evaluate(X, y, task, features, positive, seed=seed, pipeline=artifact,
                                       hyperparameters=hyperparameters, fitted=artifact is not None)
    info = ModelInfo(name=name, task=task, target=target, features=features, log_table="", label_table="",
                     positive_class=positive, classes=classes, description=description, unit=unit)
    refs = summarise_training_reference(result, coerce_features(X, features), y, info)
    holdout_calibration(result, info)  # fitted now, stored in the transaction below
    # Version 1 goes straight to production: its artifact is serialised and loaded back before the transaction.
    blob = artifacts.serialize(result.pipeline)
    artifacts.check_serialized(blob, what=f"artifact of {name} v1")
    at = at or utcnow()
    rel = None
    try:
        with store.transaction() as con:
            _check_name_free(con, name)
            mstore.create_model(con, name, task, target, features, positive_class=positive, classes=classes,
                                description=description, unit=unit)
            if feature_binding is not None:
                fstore.set_binding(con, name, feature_binding)
            run_id = runstore.insert_run(
                con, model=name, kind="train", trigger="automated" if actor == "automation" else "manual", actor=actor,
                status="running", params={"source": source, "seed": seed, "artifact": artifact is not None,
                                                      "hyperparameters": hyperparameters},
                created_at=started)
            rel, sha = artifacts.save_artifact(blob, store.artifacts, name, 1)
            mstore.insert_version(con, VersionInfo(
                model=name, version=1, algorithm=result.algorithm, hyperparameters=result.hyperparameters,
                status="production", artifact_path=rel, artifact_sha256=sha, train_start=train_start,
                train_end=train_end, train_rows=result.train_rows, data_source=source,
                training_metrics=result.training_metrics, holdout_metrics=result.holdout_metrics,
                holdout_rows=result.holdout_rows, run_id=run_id, created_by=actor, created_at=at))
            ref_id = rstore.save_reference(con, name, refs, kind="training", version=1, rows=len(df))
            _save_holdout_calibration(con, result, info, 1)
            mstore.move_alias(con, name, 1, actor=actor, action="register", reason="first version", run_id=run_id, at=at)
            runstore.insert_audit(con, actor=actor, action="register", model=name, to_version=1,
                                  reason="registered with version 1 in production", run_id=run_id, at=at)
            finished = utcnow()
            runstore.update_run(con, run_id, status="succeeded", progress=1.0, message="registered version 1",
                                metrics=result.holdout_metrics, statistics={"train_rows": result.train_rows,
                                                                             "holdout_rows": result.holdout_rows},
                                started_at=started, finished_at=finished,
                                duration_s=(finished - started).total_seconds())
    except BaseException:
        if rel is not None:
            artifacts.remove_artifact(store.artifacts, rel)
        raise
    return Registration(name, 1, "production", result.algorithm, result.holdout_metrics, result.training_metrics,
                        result.train_rows, result.holdout_rows, rel, sha, run_id, ref_id)


def _check_name_free(con, name: str) -> None:
    taken = [n for n in mstore.list_model_names(con) if n.lower() == name.lower()]
    if taken:
        same = taken[0] == name
        raise AlreadyExistsError(
            f"Model {name!r} already exists. Pick another --model name, or retrain it with `retrain --model {name}`."
            if same else f"Model {taken[0]!r} already exists and names may not differ only in case; pick another "
                         "--model name.", model=name)


def load_version(store: Store, v: VersionInfo):
    """Load the fitted pipeline of a version read from the registry, after verifying its sha256.

    Raises NotFoundError (file gone), IntegrityError (artifact changed since registration).
    """
    return artifacts.load_artifact(store.artifacts, v.artifact_path, v.artifact_sha256,
                                   what=f"artifact of {v.model} v{v.version}")


def verify_version(store: Store, v: VersionInfo):
    """Check a version's artifact before it goes into production; return its estimator.

    Raises IntegrityError naming the file when it is missing, does not hash to the recorded
    sha256, holds types outside the allow-list, or does not load as an estimator with ``predict``.
    """
    return artifacts.verify_artifact(store.artifacts, v.artifact_path, v.artifact_sha256,
                                     what=f"artifact of {v.model} v{v.version}")


def resolve_version(con: duckdb.DuckDBPyConnection, model: str, version: int | None = None) -> VersionInfo:
    """The version ``version`` of ``model``, or the production version when None; raise NotFoundError."""
    if version is None:
        version = mstore.current_alias(con, model)
        if version is None:
            raise NotFoundError(f"Model {model!r} has no production version.", model=model)
    return mstore.get_version(con, model, int(version))


def _move_production(con, model: str, version: int, *, actor: str, action: str, reason: str | None,
                     run_id: str | None, at: datetime, details: dict | None = None) -> int | None:
    """Inside a transaction: move the production alias, fix both statuses, append the audit row; return the previous
    holder. A version that was the challenger stops being one: it now serves all the traffic."""
    if mstore.current_alias(con, model, CHALLENGER) == version:
        mstore.end_alias(con, model, CHALLENGER, at=at)
        details = {**(details or {}), "ended_challenger_window": True}
    previous = mstore.move_alias(con, model, version, actor=actor, action=action, reason=reason, run_id=run_id, at=at)
    if previous is not None and previous != version:
        mstore.set_version_status(con, model, previous, "archived")
    mstore.set_version_status(con, model, version, "production")
    runstore.insert_audit(con, actor=actor, action=action, model=model, from_version=previous, to_version=version,
                          reason=reason, run_id=run_id, details=details, at=at)
    return previous


def promote_in(con: duckdb.DuckDBPyConnection, model: str, version: int, *, actor: str, reason: str | None = None,
               force: bool = False, run_id: str | None = None, at: datetime | None = None,
               action: str = "promote") -> Promotion:
    """Make ``version`` production inside the caller's transaction (see ``promote``).

    The caller checks the version's artifact before its transaction opens (``verify_version``, or
    ``artifacts.check_serialized`` of a new version's bytes): this function does not load it.
    """
    v = _check_promotable(con, model, version, force)
    at = at or utcnow()
    forced = bool(force and v.status == "rejected")
    details = {"forced": True, "previous_status": v.status} if forced else None
    if forced and not reason:
        reason = "forced promotion of a version the gate rejected"
    previous = _move_production(con, model, version, actor=actor, action=action, reason=reason, run_id=run_id, at=at,
                                details=details)
    return Promotion(model, previous, version, forced, action, actor, reason, at)


def _check_promotable(con: duckdb.DuckDBPyConnection, model: str, version: int, force: bool) -> VersionInfo:
    """The version, when it may be promoted; raise NotFoundError, ConflictError (already production; rejected
    without ``force``)."""
    v = mstore.get_version(con, model, version)
    if mstore.current_alias(con, model) == version:
        raise ConflictError(f"Version {version} of {model!r} is already in production.", model=model, version=version)
    if v.status == "rejected" and not force:
        reasons = "; ".join((v.gate or {}).get("reasons", [])) or "it failed its promotion gate"
        raise ConflictError(
            f"Version {version} of {model!r} was rejected by its gate ({reasons}). To promote it anyway, force it "
            "on purpose: `--force` on the command line, `force=True` in Python, 'Promote it anyway' on the "
            "dashboard's Versions page; the audit log records the override.", model=model, version=version)
    return v


def promote(store: Store, model: str, version: int, *, actor: str, reason: str | None = None, force: bool = False,
            run_id: str | None = None, at: datetime | None = None, action: str = "promote") -> Promotion:
    """Make ``version`` the production version of ``model`` in one transaction.

    First its artifact is checked (``verify_version``, outside any write); then, in one transaction,
    the previous holder becomes ``archived`` and the alias history and the audit log get a row each
    (a forced promotion of a rejected version says so in the audit details).
    Raises NotFoundError (version), ConflictError (already production; rejected without ``force``),
    IntegrityError (the artifact failed its check; nothing changed).
    """
    with store.connect() as con:
        target = _check_promotable(con, model, int(version), force)
    verify_version(store, target)
    with store.transaction() as con:
        return promote_in(con, model, int(version), actor=actor, reason=reason, force=force, run_id=run_id, at=at,
                          action=action)


def production_stack(history: pd.DataFrame) -> list[int]:
    """The undo stack of production versions from the alias history (oldest first; the last is in production).

    Every deployment that is not a rollback pushes its version; a rollback pops versions
    until its target is on top. Rolling back therefore walks back through the versions
    that held production, in reverse order, and never bounces between two of them.
    """
    stack: list[int] = []
    rows = history[history["alias"] == "production"] if len(history) else history
    for number, action in zip(rows.get("version", []), rows.get("action", []), strict=False):
        version = int(number)
        if action == "rollback":
            while stack and stack[-1] != version:
                stack.pop()
            if not stack:
                stack.append(version)
        else:
            stack.append(version)
    return stack


def rollback_plan(con: duckdb.DuckDBPyConnection, model: str, to: int | None = None) -> tuple[int | None, int]:
    """(current production version, the version a rollback would put back); raise ConflictError when there is none
    (or ``to`` never held production before the current one), NotFoundError (``to`` unknown)."""
    stack = production_stack(mstore.deployment_history(con, model, "production"))
    current = stack[-1] if stack else mstore.current_alias(con, model)
    earlier = stack[:-1]
    if to is None:
        if not earlier:
            raise ConflictError(
                f"{model!r} has no earlier production version to roll back to (production history: "
                f"{' -> '.join(f'v{v}' for v in stack) or 'empty'}). Promote a version instead.", model=model)
        return current, earlier[-1]
    target = int(to)
    mstore.get_version(con, model, target)
    if target == current:
        raise ConflictError(f"Version {target} of {model!r} is already in production.", model=model, version=target)
    if target not in earlier:
        held = ", ".join(f"v{v}" for v in dict.fromkeys(reversed(earlier))) or "none"
        raise ConflictError(
            f"Version {target} of {model!r} is not an earlier production version, so it cannot be rolled back "
            f"to (earlier production versions, newest first: {held}). Use promote to deploy it.",
            model=model, version=target)
    return current, target


def rollback(store: Store, model: str, *, to: int | None = None, actor: str, reason: str | None = None,
             run_id: str | None = None, at: datetime | None = None) -> Promotion:
    """Put back the version that held production before the current one (or ``to``, an earlier holder).

    One transaction: the alias moves (history row with action ``rollback``), the current
    version becomes ``archived``, the target becomes ``production``, one audit row.
    A second rollback walks further back through the deployment history (see
    ``production_stack``); a promotion after a rollback starts a new step of history.
    The target's artifact is checked first (``verify_version``).
    Raises NotFoundError (version), ConflictError (nothing earlier to roll back to; ``to`` never
    held production or is the current version; production changed during the check),
    IntegrityError (the target's artifact failed its check; nothing changed).
    """
    with store.connect() as con:
        planned = rollback_plan(con, model, to)
        version = mstore.get_version(con, model, planned[1])
    verify_version(store, version)
    with store.transaction() as con:
        current, target = rollback_plan(con, model, to)
        if (current, target) != planned:
            raise ConflictError(f"Production of {model!r} changed while the rollback was being checked (now "
                                f"v{current}); run the rollback again.", model=model)
        at = at or utcnow()
        reason = reason or f"rollback from v{current} to v{target}"
        previous = _move_production(con, model, target, actor=actor, action="rollback", reason=reason, run_id=run_id,
                                    at=at, details={"rolled_back_from": current})
    return Promotion(model, previous, target, False, "rollback", actor, reason, at)


#: The alias of a version that serves a share of the traffic beside production (an A/B test).
CHALLENGER = "challenger"


def _check_challenger(con: duckdb.DuckDBPyConnection, model: str, version: int) -> tuple[VersionInfo, int | None]:
    """(the version, the production version) when ``version`` may become the challenger; raise otherwise."""
    v = mstore.get_version(con, model, int(version))
    production = mstore.current_alias(con, model)
    if production == v.version:
        raise ConflictError(f"Version {v.version} of {model!r} is in production; a challenger must be another "
                            "version.", model=model, version=v.version)
    if mstore.current_alias(con, model, CHALLENGER) == v.version:
        raise ConflictError(f"Version {v.version} of {model!r} is already the challenger.", model=model,
                            version=v.version)
    if v.status == "rejected":
        reasons = "; ".join((v.gate or {}).get("reasons", [])) or "it failed its promotion gate"
        raise ConflictError(f"Version {v.version} of {model!r} was rejected ({reasons}); it may not serve live "
                            "traffic as a challenger.", model=model, version=v.version)
    return v, production


def start_challenger(store: Store, model: str, version: int, *, share: float, actor: str,
                     reason: str | None = None, at: datetime | None = None) -> Challenger:
    """Let ``version`` serve ``share`` of the traffic beside production as the ``challenger`` (an A/B window).

    It serves live traffic, so its artifact is checked first (``verify_version``, outside any
    write); then one transaction writes the ``challenger`` row of the alias history (closing
    the window of an earlier challenger, if one is open) and an audit row (action
    ``challenger_start``, the share in its details). The serving system routes by it;
    ``abtest.evaluate`` compares the arms; promoting the challenger ends its window.
    Raises InvalidInputError (share not in (0, 1)), NotFoundError (version), ConflictError (the
    version is production, already the challenger, or was rejected by its gate), IntegrityError
    (the artifact failed its check; nothing changed).
    """
    try:
        share = float(share)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"The challenger's share of traffic must be a number between 0 and 1, not {share!r}.",
                                share=share) from exc
    if not 0 < share < 1:
        raise InvalidInputError(f"The challenger's share of traffic must be between 0 and 1 (e.g. 0.2 for 20%), not "
                                f"{share:g}.", share=share)
    with store.connect() as con:
        v, _ = _check_challenger(con, model, version)
    verify_version(store, v)
    with store.transaction() as con:
        v, production = _check_challenger(con, model, version)  # again: things may have changed meanwhile
        at = at or utcnow()
        reason = reason or f"A/B test: {share:.0%} of the traffic to v{v.version}"
        previous = mstore.move_alias(con, model, v.version, alias=CHALLENGER, actor=actor, action="challenger_start",
                                     reason=reason, at=at)
        details = {"share": share, **({"replaced_challenger": previous} if previous is not None else {})}
        runstore.insert_audit(con, actor=actor, action="challenger_start", model=model, from_version=production,
                              to_version=v.version, reason=reason, details=details, at=at)
    return Challenger(model, v.version, share, production, actor, reason, at)


def end_challenger(store: Store, model: str, *, actor: str, reason: str | None = None,
                   at: datetime | None = None) -> int:
    """Close the open ``challenger`` window of ``model`` (one transaction with an audit row, action
    ``challenger_end``); return the version that stops serving. Raises ConflictError when none is open."""
    with store.transaction() as con:
        version = mstore.current_alias(con, model, CHALLENGER)
        if version is None:
            mstore.get_model(con, model)  # an unknown model is NotFoundError, not a conflict
            raise ConflictError(f"{model!r} has no challenger; there is no A/B window to end.", model=model)
        at = at or utcnow()
        mstore.end_alias(con, model, CHALLENGER, at=at)
        runstore.insert_audit(con, actor=actor, action="challenger_end", model=model, from_version=version,
                              reason=reason or f"A/B test of v{version} ended", at=at)
    return version


def rollback_target(con: duckdb.DuckDBPyConnection, model: str) -> int | None:
    """The version a plain ``rollback`` would restore now, or None when there is none."""
    stack = production_stack(mstore.deployment_history(con, model, "production"))
    return stack[-2] if len(stack) >= 2 else None


def versions_frame(con: duckdb.DuckDBPyConnection, model: str) -> pd.DataFrame:
    """One row per version: status, algorithm, training window and rows, holdout metrics, gate verdict."""
    rows = []
    for v in mstore.list_versions(con, model):
        row = {"version": v.version, "status": v.status, "algorithm": v.algorithm, "created_at": v.created_at,
               "created_by": v.created_by, "train_start": v.train_start, "train_end": v.train_end,
               "train_rows": v.train_rows, "holdout_rows": v.holdout_rows, "run_id": v.run_id,
               "gate_passed": (v.gate or {}).get("passed"),
               "gate_reasons": "; ".join((v.gate or {}).get("reasons", [])) or None}
        for k, val in (v.holdout_metrics or {}).items():
            row[f"holdout_{k}"] = val
        rows.append(row)
    return pd.DataFrame(rows)


def add_version_in(
    con: duckdb.DuckDBPyConnection,
    store: Store,
    info: ModelInfo,
    result: training.TrainingResult,
    refs: list[FeatureReference],
    *,
    reference_rows: int,
    status: str = "candidate",
    gate: dict | None = None,
    actor: str,
    run_id: str | None = None,
    data_source: str | None = None,
    train_start: datetime | None = None,
    train_end: datetime | None = None,
    at: datetime | None = None,
    artifact: artifacts.ArtifactBytes | None = None,
) -> Registration:
    """Register a fitted ``result`` as the next version of the model, inside the caller's transaction.

    ``artifact``: ``result.pipeline`` already serialised (``artifacts.serialize``) before the caller's
    transaction, so the lock is not held for it and the bytes can be checked first; default: serialise here.
    Takes the next version number, saves the artifact under it, and inserts the version row,
    its training reference (``refs``, see ``summarise_training_reference``) and an audit event.
    When the caller's transaction fails afterwards, it must remove the artifact
    (``artifacts.remove_artifact(store.artifacts, registration.artifact_path)``). Promotion is a
    separate step (``promote_in``), which a caller may take in the same transaction.
    Raises InvalidInputError (status; an estimator holding types the artifact allow-list refuses).
    """
    if status not in ("candidate", "rejected"):
        raise InvalidInputError(f"A new version starts as 'candidate' or 'rejected', not {status!r}.", status=status)
    at = at or utcnow()
    number = mstore.next_version_number(con, info.name)
    rel, sha = artifacts.save_artifact(artifact or result.pipeline, store.artifacts, info.name, number)
    mstore.insert_version(con, VersionInfo(
        model=info.name, version=number, algorithm=result.algorithm, hyperparameters=result.hyperparameters,
        status=status, artifact_path=rel, artifact_sha256=sha, train_start=train_start, train_end=train_end,
        train_rows=result.train_rows, data_source=data_source, training_metrics=result.training_metrics,
        holdout_metrics=result.holdout_metrics, holdout_rows=result.holdout_rows, gate=gate, run_id=run_id,
        created_by=actor, created_at=at,
    ))
    ref_id = rstore.save_reference(con, info.name, refs, kind="training", version=number, rows=reference_rows)
    _save_holdout_calibration(con, result, info, number)
    runstore.insert_audit(con, actor=actor, action="register_version", model=info.name, to_version=number,
                          reason=f"registered as {status}", run_id=run_id, details={"gate": gate} if gate else None,
                          at=at)
    return Registration(info.name, number, status, result.algorithm, result.holdout_metrics, result.training_metrics,
                        result.train_rows, result.holdout_rows, rel, sha, run_id or "", ref_id)


def register_version(store: Store, info: ModelInfo, training_data, estimator, *, actor: str, seed: int = 0,
                     at: datetime | None = None) -> Registration:
    """Register an estimator fitted elsewhere as the next version of the model (status ``candidate``).

    Its metrics come from the same holdout split of ``training_data`` (a file path or DataFrame with the
    model's features and target) that ``register_model`` uses; its training reference summarises that
    data. Promotion is a separate step. Raises InvalidInputError (file, target, an estimator that cannot
    predict on the model's features).
    """
    df = training_data if isinstance(training_data, pd.DataFrame) else read_table(training_data, what="training file")
    if info.target not in df.columns:
        raise InvalidInputError(f"The training data has no target column {info.target!r}.", column=info.target)
    y = training.prepare_target(df[info.target], info.task, info.target)
    X = coerce_features(df.loc[y.index, [c for c in info.feature_names if c in df.columns]], info.features)
    missing = [c for c in info.feature_names if c not in X.columns]
    if missing:
        raise InvalidInputError(f"The training data lacks the model's feature(s) {', '.join(missing)}.",
                                columns=missing)
    result = training.fit_and_evaluate(X, y, info.task, info.features, info.positive_class, seed=seed,
                                       pipeline=estimator, fitted=True)
    refs = summarise_training_reference(result, X, y, info)
    source = "DataFrame" if isinstance(training_data, pd.DataFrame) else str(training_data)
    blob = artifacts.serialize(result.pipeline)
    holdout_calibration(result, info)  # fitted now, stored in the transaction below
    reg = None
    try:
        with store.transaction() as con:
            reg = add_version_in(con, store, info, result, refs, reference_rows=len(X), actor=actor,
                                 data_source=source, at=at, artifact=blob)
    except BaseException:
        if reg is not None:
            artifacts.remove_artifact(store.artifacts, reg.artifact_path)
        raise
    return reg


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
    errors: dict = field(default_factory=dict)

    def hyperparameter_differences(self) -> pd.DataFrame:
        """Only the hyperparameters whose values differ between the versions."""
        hp = self.hyperparameters
        if hp.empty:
            return hp
        differs = hp.astype(str).nunique(axis=1, dropna=False) > 1
        return hp[differs]


def compare(store: Store, info: ModelInfo, versions, *, window_days: float = COMPARE_WINDOW_DAYS,
            end: datetime | None = None) -> Comparison:
    """Compare ``versions`` of the model (see ``Comparison``); artifacts are sha256-checked before scoring.

    The shared holdout is the most recent 20% of the labelled log rows of the last
    ``window_days`` days up to ``end`` (default now; when that window is empty, the
    most recent labelled rows whatever their age), capped at 50,000 rows.
    Raises NotFoundError (version), InvalidInputError (fewer than two versions).
    """
    try:
        versions = sorted(dict.fromkeys(int(v) for v in versions))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"Versions must be whole numbers, e.g. 2,3; got {versions!r}.") from exc
    if len(versions) < 2:
        raise InvalidInputError("Give at least two different versions to compare, e.g. --versions 2,3.")
    end = end or utcnow()
    errors: dict[str, str] = {}
    upper = end + timedelta(microseconds=1)
    with store.connect() as con:
        vinfo = [mstore.get_version(con, info.name, v) for v in versions]
        log = logs.view(con, store.logs, info)
    with store.engine() as con:
        count = tdstore.labelled_count(con, log, end - timedelta(days=window_days), upper)
        if count:
            limit = min(COMPARE_MAX_ROWS, max(1, round(count * training.HOLDOUT_FRACTION)))
            frame = tdstore.labelled_rows(con, log, end - timedelta(days=window_days), upper, limit=limit)
        else:
            frame = tdstore.labelled_rows(con, log, None, upper, limit=2000)
        try:
            windows = performance.over_time(con, log, versions=versions)
        except duckdb.Error as exc:  # windowed metrics are context here: report, do not fail the comparison
            windows = pd.DataFrame()
            errors["windows"] = str(exc)
    cols = [f"v{v}" for v in versions]
    holdout = pd.DataFrame(columns=cols)
    source = "no labelled rows in the log: only the metrics recorded at registration are available"
    if len(frame):
        try:
            y = training.prepare_target(frame["label"], info.task, info.target)
        except InvalidInputError as exc:
            y = None
            errors["holdout"] = str(exc)
        if y is not None:
            X = coerce_features(frame.loc[y.index, info.feature_names], info.features)
            first, last = frame["ts"].iloc[0], frame["ts"].iloc[-1]
            source = (f"the {len(X):,} most recent labelled predictions of the log "
                      f"({first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC)")
            data = {}
            for v, col in zip(vinfo, cols, strict=False):
                try:
                    data[col] = training.evaluate(load_version(store, v), X, y, info.task, info.positive_class)
                except Exception as exc:  # noqa: BLE001 - one unusable version must not hide the others
                    errors[col] = str(exc)
                    data[col] = {}
            holdout = pd.DataFrame(data, columns=cols)
    recorded = pd.DataFrame({c: v.holdout_metrics for c, v in zip(cols, vinfo, strict=False)}, columns=cols)
    hyper = pd.DataFrame({c: {k: json_safe(val) for k, val in v.hyperparameters.items()} for c, v in zip(cols, vinfo, strict=False)},
                         columns=cols)
    hyper.index.name = "hyperparameter"
    lineage = pd.DataFrame([{
        "version": v.version, "status": v.status, "algorithm": v.algorithm, "train_start": v.train_start,
        "train_end": v.train_end, "train_rows": v.train_rows, "holdout_rows": v.holdout_rows,
        "data_source": v.data_source, "run_id": v.run_id, "artifact_path": v.artifact_path,
        "artifact_sha256": v.artifact_sha256, "created_by": v.created_by, "created_at": v.created_at,
        "gate_passed": (v.gate or {}).get("passed"),
    } for v in vinfo])
    return Comparison(info.name, versions, holdout, source, recorded, windows, hyper, lineage, errors)


def json_safe(v):
    """A hyperparameter value as a plain scalar (dicts/lists as JSON text) so frames compare cleanly."""
    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v

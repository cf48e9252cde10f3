"""SQL for models, model versions and the deployment (alias) history.

Functions take an open connection and never commit on their own: the domain layer
wraps the calls that belong together in ``connection.transaction``.
"""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from mlops_core.clock import utcnow
from mlops_core.entities import (
    FeatureBinding,
    FeatureColumn,
    FeatureRef,
    FeatureSpec,
    ModelInfo,
    VersionInfo,
    schema_from_json,
    schema_to_json,
)
from mlops_core.errors import AlreadyExistsError, NotFoundError

if TYPE_CHECKING:  # frames come from DuckDB's .df(); pandas loads when one is asked for
    import pandas as pd

VERSION_STATUSES = ("candidate", "production", "archived", "rejected")


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (names are validated at registration; this also escapes quotes)."""
    return '"' + name.replace('"', '""') + '"'


def _loads(text, default):
    return json.loads(text) if text else default


def create_model(
    con: duckdb.DuckDBPyConnection,
    name: str,
    task: str,
    target: str,
    features: list[FeatureSpec],
    *,
    positive_class: str | None = None,
    classes: list[str] | None = None,
    description: str | None = None,
    unit: str | None = None,
) -> ModelInfo:
    """Insert the model row (its log and labels are Parquet files, see ``logs``, written by ingest).

    Raises AlreadyExistsError when the name is taken.
    """
    if con.execute("SELECT count(*) FROM models WHERE name = ?", [name]).fetchone()[0]:
        raise AlreadyExistsError(
            f"Model {name!r} already exists. Pick another --model name, or retrain it with `retrain --model {name}`.",
            model=name,
        )
    info = ModelInfo(
        name=name, task=task, target=target, features=features, log_table=f"predictions/model={name}",
        label_table=f"labels/model={name}",
        positive_class=positive_class, classes=list(classes or []), description=description, created_at=utcnow(),
        unit=unit,
    )
    con.execute(
        f"INSERT INTO models ({_MODEL_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [name, task, target, positive_class, json.dumps(info.classes), schema_to_json(features), info.log_table,
         info.label_table, description, info.created_at, unit],
    )
    return info


_MODEL_COLS = ("name, task, target, positive_class, classes, feature_schema, log_table, label_table, description, "
               "created_at, unit")
#: With the feature binding (migration 045 adds the column; migrations before it read models without it).
_MODEL_COLS_BOUND = _MODEL_COLS + ", feature_binding"


def binding_to_json(binding: FeatureBinding | None) -> str | None:
    if binding is None:
        return None
    return json.dumps({"entity": binding.entity, "keys": [dataclasses.asdict(k) for k in binding.keys],
                       "features": [str(r) for r in binding.features]})


def binding_from_json(text: str | None) -> FeatureBinding | None:
    if not text:
        return None
    d = json.loads(text)
    refs = [FeatureRef(*r.split(":", 1)) for r in d["features"]]
    return FeatureBinding(d["entity"], [FeatureColumn(**k) for k in d["keys"]], refs)


def _model_from_row(row) -> ModelInfo:
    name, task, target, pos, classes, schema, log_table, label_table, desc, created, unit = row[:11]
    return ModelInfo(
        name=name, task=task, target=target, features=schema_from_json(schema), log_table=log_table,
        label_table=label_table, positive_class=pos, classes=_loads(classes, []), description=desc, created_at=created,
        unit=unit, feature_binding=binding_from_json(row[11]) if len(row) > 11 else None,
    )


def list_models(con: duckdb.DuckDBPyConnection) -> list[ModelInfo]:
    """Every registered model, by name."""
    return [_model_from_row(r) for r in con.execute(f"SELECT {_MODEL_COLS_BOUND} FROM models ORDER BY name").fetchall()]


def list_model_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT name FROM models ORDER BY name").fetchall()]


def get_model(con: duckdb.DuckDBPyConnection, name: str, *, binding: bool = True) -> ModelInfo:
    """Return the model called ``name``; raise NotFoundError listing the known models.

    ``binding=False`` reads it without its feature binding (for migrations that run before the column exists).
    """
    row = con.execute(f"SELECT {_MODEL_COLS_BOUND if binding else _MODEL_COLS} FROM models WHERE name = ?",
                      [name]).fetchone()
    if row is None:
        known = list_model_names(con)
        hint = f"Known models: {', '.join(known)}." if known else "No model is registered yet: run `python -m mlops_core register ...` or `python -m mlops_core demo`."
        raise NotFoundError(f"Unknown model {name!r}. {hint}", model=name, known=known)
    return _model_from_row(row)


def next_version_number(con: duckdb.DuckDBPyConnection, model: str) -> int:
    return int(con.execute("SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model = ?", [model]).fetchone()[0])


def insert_version(con: duckdb.DuckDBPyConnection, v: VersionInfo) -> VersionInfo:
    """Insert a model version row; raise AlreadyExistsError when (model, version) exists."""
    exists = con.execute(
        "SELECT count(*) FROM model_versions WHERE model = ? AND version = ?", [v.model, v.version]
    ).fetchone()[0]
    if exists:
        raise AlreadyExistsError(f"Model {v.model!r} already has a version {v.version}.", model=v.model, version=v.version)
    v.created_at = v.created_at or utcnow()
    con.execute(
        "INSERT INTO model_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [v.model, v.version, v.algorithm, json.dumps(v.hyperparameters, default=str), v.train_start, v.train_end,
         v.train_rows, v.data_source, json.dumps(v.training_metrics), json.dumps(v.holdout_metrics), v.holdout_rows,
         v.artifact_path, v.artifact_sha256, v.status, json.dumps(v.gate) if v.gate is not None else None, v.run_id,
         v.created_by, v.created_at],
    )
    return v


_VERSION_COLS = (
    "model, version, algorithm, hyperparameters, train_start, train_end, train_rows, data_source, training_metrics, "
    "holdout_metrics, holdout_rows, artifact_path, artifact_sha256, status, gate, run_id, created_by, created_at"
)


def _version_from_row(row) -> VersionInfo:
    (model, version, algorithm, hp, ts, te, rows, src, tm, hm, hrows, path, sha, status, gate, run_id, by, created) = row
    return VersionInfo(
        model=model, version=int(version), algorithm=algorithm, hyperparameters=_loads(hp, {}), status=status,
        artifact_path=path, artifact_sha256=sha, train_start=ts, train_end=te, train_rows=rows, data_source=src,
        training_metrics=_loads(tm, {}), holdout_metrics=_loads(hm, {}), holdout_rows=hrows, gate=_loads(gate, None),
        run_id=run_id, created_by=by, created_at=created,
    )


def get_version(con: duckdb.DuckDBPyConnection, model: str, version: int) -> VersionInfo:
    """Return one version; raise NotFoundError listing the versions that exist."""
    row = con.execute(f"SELECT {_VERSION_COLS} FROM model_versions WHERE model = ? AND version = ?", [model, version]).fetchone()
    if row is None:
        known = [v.version for v in list_versions(con, model)]
        raise NotFoundError(
            f"Model {model!r} has no version {version}. Versions: {', '.join(map(str, known)) or 'none'}.",
            model=model, version=version, known=known,
        )
    return _version_from_row(row)


def list_versions(con: duckdb.DuckDBPyConnection, model: str) -> list[VersionInfo]:
    rows = con.execute(f"SELECT {_VERSION_COLS} FROM model_versions WHERE model = ? ORDER BY version", [model]).fetchall()
    return [_version_from_row(r) for r in rows]


def set_version_status(con: duckdb.DuckDBPyConnection, model: str, version: int, status: str) -> None:
    con.execute("UPDATE model_versions SET status = ? WHERE model = ? AND version = ?", [status, model, version])


def set_version_gate(con: duckdb.DuckDBPyConnection, model: str, version: int, gate: dict) -> None:
    con.execute("UPDATE model_versions SET gate = ? WHERE model = ? AND version = ?", [json.dumps(gate), model, version])


def current_alias(con: duckdb.DuckDBPyConnection, model: str, alias: str = "production") -> int | None:
    """Return the version holding ``alias`` now (the open deployment row), or None."""
    row = con.execute(
        "SELECT version FROM deployments WHERE model = ? AND alias = ? AND ended_at IS NULL ORDER BY id DESC LIMIT 1",
        [model, alias],
    ).fetchone()
    return int(row[0]) if row else None


def move_alias(
    con: duckdb.DuckDBPyConnection,
    model: str,
    version: int,
    *,
    alias: str = "production",
    actor: str,
    action: str,
    reason: str | None = None,
    run_id: str | None = None,
    at: datetime | None = None,
) -> int | None:
    """Close the open ``alias`` row of ``model`` and open one for ``version``; return the previous holder.

    Call inside a transaction together with the status changes and the audit row.
    """
    at = at or utcnow()
    previous = current_alias(con, model, alias)
    con.execute(
        "UPDATE deployments SET ended_at = ? WHERE model = ? AND alias = ? AND ended_at IS NULL", [at, model, alias]
    )
    con.execute(
        "INSERT INTO deployments (model, alias, version, started_at, actor, action, reason, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [model, alias, version, at, actor, action, reason, run_id],
    )
    return previous


def deployment_history(con: duckdb.DuckDBPyConnection, model: str, alias: str | None = None) -> pd.DataFrame:
    """Return the alias history of ``model`` (oldest first) as a DataFrame."""
    sql = "SELECT id, model, alias, version, started_at, ended_at, actor, action, reason, run_id FROM deployments WHERE model = ?"
    params: list = [model]
    if alias:
        sql += " AND alias = ?"
        params.append(alias)
    return con.execute(sql + " ORDER BY id", params).df()


def end_alias(con: duckdb.DuckDBPyConnection, model: str, alias: str, *, at: datetime | None = None) -> int | None:
    """Close the open ``alias`` row of ``model`` (e.g. the challenger when an A/B test ends); return its version."""
    previous = current_alias(con, model, alias)
    con.execute(
        "UPDATE deployments SET ended_at = ? WHERE model = ? AND alias = ? AND ended_at IS NULL",
        [at or utcnow(), model, alias],
    )
    return previous

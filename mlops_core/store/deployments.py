"""SQL for deployment configs (how a model's requests are served) and per-arm outcome counts of the log.

``deployment_configs`` is append-only: ``open_config`` is the row without ``ended_at``; a change
closes it (``end_config``) and inserts the next (``insert_config``) inside the caller's transaction,
next to the ``challenger`` alias rows of ``deployments`` and the audit row. ``serving_state`` reads
what a scoring service needs to follow the registry in one short read visit.

``arm_counts`` aggregates the log per window and arm (the ``variant`` column) with portable SQL
(``date_trunc``, ``CASE``, ``count``, ``sum``), joined to the labels like every performance query.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from mlops_core.clock import utcnow
from mlops_core.entities import CanaryStep, DeploymentConfig
from mlops_core.store.conditions import check_window, time_range
from mlops_core.store.logs import LogView
from mlops_core.store.models import current_alias

if TYPE_CHECKING:  # frames come from DuckDB's .df(); pandas loads when one is asked for
    import pandas as pd

_COLS = ("id, model, mode, challenger, weight, steps, sticky_key, guard_alpha, guard_min_samples, started_at, "
         "ended_at, actor, reason, end_reason")


def _steps_json(steps) -> str | None:
    return json.dumps([{"share": s.share, "hold_s": s.hold_s} for s in steps]) if steps else None


def _config_from_row(row) -> DeploymentConfig:
    (id_, model, mode, challenger, weight, steps, sticky, alpha, min_samples, started, ended, actor, reason,
     end_reason) = row
    parsed = tuple(CanaryStep(float(s["share"]), float(s["hold_s"])) for s in json.loads(steps)) if steps else ()
    return DeploymentConfig(model=model, mode=mode, challenger=None if challenger is None else int(challenger),
                            weight=float(weight), steps=parsed, sticky_key=sticky, guard_alpha=alpha,
                            guard_min_samples=None if min_samples is None else int(min_samples),
                            started_at=started, ended_at=ended, actor=actor, reason=reason, end_reason=end_reason,
                            id=int(id_))


def open_config(con: duckdb.DuckDBPyConnection, model: str) -> DeploymentConfig | None:
    """The config serving ``model`` now (the open row), or None when the model was never configured."""
    row = con.execute(f"SELECT {_COLS} FROM deployment_configs WHERE model = ? AND ended_at IS NULL "
                      "ORDER BY id DESC LIMIT 1", [model]).fetchone()
    return _config_from_row(row) if row else None


def end_config(con: duckdb.DuckDBPyConnection, model: str, *, reason: str, at: datetime | None = None) -> None:
    """Close the open config of ``model`` (if any) with ``reason``."""
    con.execute("UPDATE deployment_configs SET ended_at = ?, end_reason = ? WHERE model = ? AND ended_at IS NULL",
                [at or utcnow(), reason, model])


def insert_config(con: duckdb.DuckDBPyConnection, config: DeploymentConfig) -> DeploymentConfig:
    """Insert ``config`` as the open row (close the previous one first); return it with its id."""
    row = con.execute(
        "INSERT INTO deployment_configs (model, mode, challenger, weight, steps, sticky_key, guard_alpha, "
        "guard_min_samples, started_at, actor, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [config.model, config.mode, config.challenger, config.weight, _steps_json(config.steps), config.sticky_key,
         config.guard_alpha, config.guard_min_samples, config.started_at or utcnow(), config.actor, config.reason],
    ).fetchone()
    return get_config(con, int(row[0]))


def get_config(con: duckdb.DuckDBPyConnection, config_id: int) -> DeploymentConfig:
    return _config_from_row(con.execute(f"SELECT {_COLS} FROM deployment_configs WHERE id = ?", [config_id]).fetchone())


def configs_frame(con: duckdb.DuckDBPyConnection, model: str) -> pd.DataFrame:
    """Every config of ``model``, oldest first (steps as JSON text)."""
    return con.execute(f"SELECT {_COLS} FROM deployment_configs WHERE model = ? ORDER BY id", [model]).df()


@dataclass(frozen=True)
class ServingState:
    """What serves a model now: the production version and the open config (None: never configured)."""

    production: int | None
    config: DeploymentConfig | None


def serving_state(con: duckdb.DuckDBPyConnection, model: str) -> ServingState:
    """The production version and open config of ``model``, read together on one visit."""
    return ServingState(current_alias(con, model), open_config(con, model))


# --- outcomes per arm ------------------------------------------------------------------------------


def arm_counts(con: duckdb.DuckDBPyConnection, log: LogView, window: str, start: datetime | None = None,
               end: datetime | None = None, *, arms: list[str] | None = None) -> pd.DataFrame:
    """Per window and arm (``variant``; NULL arms are left out) of the predictions in [start, end): ``n``,
    ``n_labelled``, ``versions`` (distinct versions that answered), and classification: ``correct``;
    regression: ``sum_abs`` and ``sum_abs2`` of the absolute error. ``con``: the log engine."""
    check_window(window)
    rng, params = time_range("p.ts", start, end)
    where = " AND p.variant IS NOT NULL"
    if arms:
        where += f" AND p.variant IN ({', '.join('?' for _ in arms)})"
        params = [*params, *arms]
    if log.info.task == "classification":
        agg = "sum(CASE WHEN l.label IS NULL THEN 0 WHEN p.prediction = l.label THEN 1 ELSE 0 END) AS correct"
    else:
        agg = ("sum(CASE WHEN l.label IS NULL THEN 0 ELSE abs(p.prediction - l.label) END) AS sum_abs, "
               "sum(CASE WHEN l.label IS NULL THEN 0 ELSE (p.prediction - l.label) * (p.prediction - l.label) END)"
               " AS sum_abs2")
    sql = f"""
        SELECT date_trunc('{window}', p.ts) AS window_start, p.variant AS arm, count(*) AS n,
               count(l.label) AS n_labelled, count(DISTINCT p.version) AS versions, {agg}
        FROM {log.predictions} p
        LEFT JOIN {log.labels} l ON l.request_id = p.request_id
        WHERE 1 = 1 {rng}{where}
        GROUP BY 1, 2
        ORDER BY 1, 2
    """
    return con.execute(sql, params).df()


def arm_versions(con: duckdb.DuckDBPyConnection, log: LogView, start: datetime | None = None,
                 end: datetime | None = None) -> pd.DataFrame:
    """Rows per arm and version of the predictions in [start, end) (``arm``, ``version``, ``n``)."""
    rng, params = time_range("p.ts", start, end)
    return con.execute(f"SELECT p.variant AS arm, p.version AS version, count(*) AS n FROM {log.predictions} p "
                       f"WHERE 1 = 1 {rng} GROUP BY 1, 2 ORDER BY 1, 2", params).df()

"""Per-model automation policies: the record of what automation may do for a model, and its defaults.

A policy is stored per model in ``policies`` (mode + a JSON config). Without a stored
policy a model gets ``Policy()`` defaults: mode ``manual``, drift trigger at a drift
share above 0.30 (``alerts.DEFAULT_DRIFT_SHARE``, the default drift alert's threshold too), no metric trigger, no schedule, cool-down 24 h, retrain window 30 days,
the default gate (see ``gate``). What a policy does when evaluated is in ``automation``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import duckdb

from mlops_core import metrics
from mlops_core.data.schema import finite_number, shown
from mlops_core.entities import ModelInfo
from mlops_core.errors import InvalidInputError
from mlops_core.lifecycle import gate as gatemod
from mlops_core.lifecycle.training import MAX_SPAN_DAYS, MIN_TRAINING_ROWS
from mlops_core.monitoring.alerts import DEFAULT_DRIFT_SHARE
from mlops_core.store import policies as pstore
from mlops_core.store import runs as runstore
from mlops_core.store import transaction, utcnow

MODES = ("manual", "automated")


@dataclass
class Policy:
    """A model's automation policy (see the module docstring for the meaning and defaults)."""

    model: str
    mode: str = "manual"
    drift_share_above: float | None = DEFAULT_DRIFT_SHARE
    metric: str | None = None
    metric_threshold: float | None = None
    every_days: float | None = None
    cooldown_hours: float = 24.0
    window_days: float = 30.0
    min_rows: int = 200
    gate: list[dict] | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None
    stored: bool = False

    def gate_rules(self, task: str) -> list[gatemod.GateRule]:
        """The gate's rules: the stored ones, or the default gate when none are stored."""
        if self.gate is None:
            return gatemod.default_rules(task)
        return gatemod.rules_from_dicts(self.gate)

    def config(self) -> dict:
        d = asdict(self)
        for k in ("model", "mode", "updated_at", "updated_by", "stored"):
            d.pop(k)
        return d


_EDITABLE = set(Policy.__dataclass_fields__) - {"model", "updated_at", "updated_by", "stored"}


def _validate(p: Policy, task: str) -> Policy:
    if not isinstance(p.mode, str) or p.mode not in MODES:
        raise InvalidInputError(f"Unknown policy mode {shown(p.mode)}; choose one of: {', '.join(MODES)}.",
                                mode=p.mode)
    for name in ("drift_share_above", "metric_threshold", "every_days"):
        v = getattr(p, name)
        if v is not None:
            setattr(p, name, finite_number(v, f"Policy {name} (a number, or empty)"))
    if p.drift_share_above is not None and not 0 <= p.drift_share_above <= 1:
        raise InvalidInputError(f"drift_share_above is a share of features, 0..1; got {p.drift_share_above}.")
    if p.every_days is not None and p.every_days <= 0:
        raise InvalidInputError(f"every_days must be positive; got {p.every_days}.")
    for name in ("cooldown_hours", "window_days"):
        setattr(p, name, finite_number(getattr(p, name), f"Policy {name}"))
    if p.cooldown_hours < 0 or p.window_days <= 0:
        raise InvalidInputError("cooldown_hours must be >= 0 and window_days > 0.")
    for name, days in (("window_days", p.window_days), ("every_days", p.every_days),
                       ("cooldown_hours", p.cooldown_hours / 24)):
        if days is not None and days > MAX_SPAN_DAYS:
            raise InvalidInputError(f"Policy {name} may span at most {MAX_SPAN_DAYS:,} days; got {getattr(p, name):g}.")
    rows = finite_number(p.min_rows, "Policy min_rows")
    if rows != int(rows) or rows < MIN_TRAINING_ROWS:
        raise InvalidInputError(f"Policy min_rows must be a whole number of at least {MIN_TRAINING_ROWS} (a retrain "
                                f"needs that many labelled rows), not {shown(p.min_rows)}.")
    p.min_rows = int(rows)
    if p.metric is not None and (not isinstance(p.metric, str) or p.metric not in metrics.directed()):
        raise InvalidInputError(
            f"Unknown policy metric {shown(p.metric)}; choose one of: {', '.join(sorted(metrics.directed()))}.",
            metric=p.metric)
    if p.gate is not None:
        p.gate = [asdict(r) for r in gatemod.rules_from_dicts(p.gate)]
    return p


def policy_of(con: duckdb.DuckDBPyConnection, model: str) -> Policy:
    """The model's stored policy, or the defaults when none is stored."""
    row = pstore.get_policy_row(con, model)
    if row is None:
        return Policy(model=model)
    mode, config, updated_at, updated_by = row
    known = {k: v for k, v in config.items() if k in _EDITABLE}
    return Policy(model=model, mode=mode, **known, updated_at=updated_at, updated_by=updated_by, stored=True)


def set_policy(con: duckdb.DuckDBPyConnection, info: ModelInfo, *, actor: str, **changes) -> Policy:
    """Change fields of the model's policy (e.g. ``mode="automated"``, ``gate=["roc_auc>=0.7"]``); return it.

    A field set to None clears it (``gate=None`` restores the default gate). One
    transaction writes the policy and an audit row (action ``policy_change``) with the
    before and after values. Raises NotFoundError, InvalidInputError (unknown field, bad value).
    """
    unknown = sorted(set(changes) - _EDITABLE)
    if unknown:
        raise InvalidInputError(f"Unknown policy field(s) {', '.join(unknown)}; valid: {', '.join(sorted(_EDITABLE))}.")
    model = info.name
    with transaction(con):
        before = policy_of(con, model)
        after = Policy(**{**asdict(before), **changes})
        _validate(after, info.task)
        now = utcnow()
        pstore.upsert_policy(con, model, after.mode, after.config(), actor, now)
        diff = {k: {"from": getattr(before, k), "to": getattr(after, k)} for k in changes
                if getattr(before, k) != getattr(after, k)}
        runstore.insert_audit(con, actor=actor, action="policy_change", model=model,
                              reason=", ".join(f"{k}: {v['from']} -> {v['to']}" for k, v in diff.items()) or "no change",
                              details={"changes": diff}, at=now)
        after.updated_at, after.updated_by, after.stored = now, actor, True
    return after

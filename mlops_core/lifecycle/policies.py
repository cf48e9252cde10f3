"""Per-model automation policies: manual (alert a person) or automated (retrain, gate, promote).

A policy is stored per model in ``policies`` (mode + a JSON config). Without a stored
policy a model gets ``Policy()`` defaults: mode ``manual``, drift trigger at a drift
share above 0.30, no metric trigger, no schedule, cool-down 24 h, retrain window 30 days,
the default gate (see ``gate``).

Triggers (any one fires):

- ``drift_share_above``: the share of features that drifted in the latest window is
  above this value (0..1);
- ``metric_threshold`` on ``metric`` (default: the headline metric, ``roc_auc`` for a
  binary classifier, ``rmse`` for regression): the latest windowed value is *worse*
  than the threshold (below it for higher-is-better metrics, above it for errors);
- ``every_days``: the last successful retrain (or the production version, when there
  is none) is older than this many days.

What ``evaluate`` does when a trigger fires:

- ``manual``: raises one ``policy_trigger`` alert (one open alert per model and day) and
  nothing else; a person decides.
- ``automated``: starts a retrain (actor ``automation``) whose candidate is promoted
  in the same transaction that registers it when it passes the gate; unless a retrain
  is already running, or any retrain of the model started less than ``cooldown_hours``
  ago (the cool-down), in which case it says so and waits.

Every evaluation is a run of kind ``monitor`` (actor ``automation``) holding the
signals, the triggers and the action; every action (alert, retrain) also has an audit
row with actor ``automation``. ``recent_evaluations`` reads them back.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from mlops_core.lifecycle import gate as gatemod
from mlops_core.errors import AlreadyRunningError, InvalidInputError
from mlops_core.store import connect, transaction, utcnow
from mlops_core.store import jobs as jobstore
from mlops_core.store import models as mstore
from mlops_core.store import policies as pstore
from mlops_core.store import runs as runstore

MODES = ("manual", "automated")
ACTOR = "automation"


@dataclass
class Policy:
    """A model's automation policy (see the module docstring for the meaning and defaults)."""

    model: str
    mode: str = "manual"
    drift_share_above: float | None = 0.3
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

    def gate_rules(self, task: str, positive_class: str | None) -> list[gatemod.GateRule]:
        """The gate's rules: the stored ones, or the default gate when none are stored."""
        if self.gate is None:
            return gatemod.default_rules(task, positive_class)
        return gatemod.rules_from_dicts(self.gate)

    def config(self) -> dict:
        d = asdict(self)
        for k in ("model", "mode", "updated_at", "updated_by", "stored"):
            d.pop(k)
        return d


_EDITABLE = set(Policy.__dataclass_fields__) - {"model", "updated_at", "updated_by", "stored"}


def _validate(p: Policy, task: str) -> Policy:
    if p.mode not in MODES:
        raise InvalidInputError(f"Unknown policy mode {p.mode!r}; choose one of: {', '.join(MODES)}.", mode=p.mode)
    for name in ("drift_share_above", "metric_threshold", "every_days"):
        v = getattr(p, name)
        if v is not None:
            try:
                setattr(p, name, float(v))
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"Policy {name} must be a number or empty, not {v!r}.") from exc
    if p.drift_share_above is not None and not 0 <= p.drift_share_above <= 1:
        raise InvalidInputError(f"drift_share_above is a share of features, 0..1; got {p.drift_share_above}.")
    if p.every_days is not None and p.every_days <= 0:
        raise InvalidInputError(f"every_days must be positive; got {p.every_days}.")
    for name in ("cooldown_hours", "window_days"):
        try:
            setattr(p, name, float(getattr(p, name)))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"Policy {name} must be a number, not {getattr(p, name)!r}.") from exc
    if p.cooldown_hours < 0 or p.window_days <= 0:
        raise InvalidInputError("cooldown_hours must be >= 0 and window_days > 0.")
    p.min_rows = int(p.min_rows)
    if p.metric is not None and p.metric not in gatemod.KNOWN_METRICS - gatemod.NO_DIRECTION:
        raise InvalidInputError(
            f"Unknown policy metric {p.metric!r}; choose one of: "
            f"{', '.join(sorted(gatemod.KNOWN_METRICS - gatemod.NO_DIRECTION))}.", metric=p.metric)
    if p.gate is not None:
        p.gate = [asdict(r) for r in gatemod.rules_from_dicts(p.gate)]
    return p


def _policy_in(con, model: str) -> Policy:
    row = pstore.get_policy_row(con, model)
    if row is None:
        return Policy(model=model)
    mode, config, updated_at, updated_by = row
    known = {k: v for k, v in config.items() if k in _EDITABLE}
    return Policy(model=model, mode=mode, **known, updated_at=updated_at, updated_by=updated_by, stored=True)


def get_policy(model: str, db=None) -> Policy:
    """The model's policy (defaults when none is stored). Raises NotFoundError (model)."""
    with connect(db, create=False) as con:
        mstore.get_model(con, model)
        return _policy_in(con, model)


def set_policy(model: str, *, actor: str, db=None, **changes) -> Policy:
    """Change fields of the model's policy (e.g. ``mode="automated"``, ``gate=["roc_auc>=0.7"]``); return it.

    A field set to None clears it (``gate=None`` restores the default gate). One
    transaction writes the policy and an audit row (action ``policy_change``) with the
    before and after values. Raises NotFoundError, InvalidInputError (unknown field, bad value).
    """
    unknown = sorted(set(changes) - _EDITABLE)
    if unknown:
        raise InvalidInputError(f"Unknown policy field(s) {', '.join(unknown)}; valid: {', '.join(sorted(_EDITABLE))}.")
    with connect(db, create=False) as con, transaction(con):
        info = mstore.get_model(con, model)
        before = _policy_in(con, model)
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


@dataclass
class PolicyDecision:
    """What one evaluation of a policy saw and did."""

    model: str
    mode: str
    evaluated_at: datetime
    signals: dict
    triggers: list[str]
    action: str  # none | alert | retrain_started | cooldown | already_running
    message: str
    retrain_run_id: str | None = None
    alert_ids: list[int] = field(default_factory=list)
    monitor_run_id: str | None = None


def _signals_from(result) -> dict:
    """Read drift share and metric values out of a monitoring result (object or dict)."""
    if result is None:
        return {}
    get = (lambda k: result.get(k)) if isinstance(result, dict) else (lambda k: getattr(result, k, None))
    out = {"drift_share": get("drift_share")}
    metrics = get("metrics")
    if isinstance(metrics, dict):
        out["metrics"] = dict(metrics)
    name, value = get("headline_metric"), get("headline_value")
    if name is None and isinstance(get("metric"), str):
        name, value = get("metric"), get("metric_value")
    if isinstance(name, str):
        out.setdefault("metrics", {})[name] = value
    alerts = get("alerts")
    if alerts is not None:
        out["alerts_raised"] = len(alerts)
    return out


def _worse(metric: str, value: float, threshold: float) -> bool:
    return value > threshold if metric in gatemod.LOWER_IS_BETTER else value < threshold


def evaluate(model: str, *, db=None, now: datetime | None = None, monitoring=None, drift_share: float | None = None,
             metrics: dict | None = None) -> PolicyDecision:
    """Evaluate the model's policy once and act on it (see the module docstring); return the decision.

    Signals come from ``monitoring`` (a result of ``alerts.run_monitoring`` or a dict with
    ``drift_share`` and ``metrics``), else from ``drift_share``/``metrics``, else from running
    ``alerts.run_monitoring`` now. Raises NotFoundError (model).
    """
    with connect(db, create=False) as con:
        info = mstore.get_model(con, model)
        policy = _policy_in(con, model)
    if monitoring is None and drift_share is None and metrics is None:
        try:
            from mlops_core.monitoring.alerts import run_monitoring
        except ImportError:
            run_monitoring = None
        if run_monitoring is not None:
            monitoring = run_monitoring(model, db=db, now=now, actor=ACTOR, trigger="automated")
    signals = _signals_from(monitoring)
    if drift_share is not None:
        signals["drift_share"] = drift_share
    if metrics:
        signals.setdefault("metrics", {}).update(metrics)
    now = now or utcnow()
    metric = policy.metric or gatemod.headline_metric(info.task, info.positive_class)

    triggers = []
    ds = signals.get("drift_share")
    if policy.drift_share_above is not None and ds is not None and ds > policy.drift_share_above:
        triggers.append(f"drift share {ds:.2f} is above {policy.drift_share_above:.2f}")
    mv = (signals.get("metrics") or {}).get(metric)
    if policy.metric_threshold is not None and mv is not None and _worse(metric, mv, policy.metric_threshold):
        word = "above" if metric in gatemod.LOWER_IS_BETTER else "below"
        triggers.append(f"{metric} {mv:.4f} is {word} {policy.metric_threshold:g}")
    with connect(db, create=False) as con:
        if policy.every_days is not None:
            last = jobstore.last_run_time(con, model, "retrain", statuses=("succeeded",))
            if last is None:
                prod = mstore.current_alias(con, model)
                last = mstore.get_version(con, model, prod).created_at if prod else None
            if last is None or now - last >= timedelta(days=policy.every_days):
                age = f"{(now - last).total_seconds() / 86400:.1f} days ago" if last else "never"
                triggers.append(f"the last retrain was {age} (schedule: every {policy.every_days:g} days)")
        last_retrain = jobstore.last_run_time(con, model, "retrain")

    decision = PolicyDecision(model, policy.mode, now, signals, triggers, "none", "")
    if not triggers:
        decision.message = "No trigger fired" + (f" (drift share {ds:.2f}" if ds is not None else " (no drift figure")
        decision.message += f", {metric} {mv:.4f})." if mv is not None else f", no {metric} figure)."
    elif policy.mode == "manual":
        text = f"{model}: retrain recommended — " + "; ".join(triggers) + ". Mode is manual: a person decides."
        with connect(db) as con, transaction(con):
            alert_id = pstore.raise_policy_alert(con, model, text, dedup_key=f"policy:{model}:{now:%Y-%m-%d}",
                                                 details={"triggers": triggers, "signals": signals}, at=now)
            if alert_id is not None:
                runstore.insert_audit(con, actor=ACTOR, action="policy_alert", model=model, reason=text,
                                      details={"alert_id": alert_id, "triggers": triggers}, at=now)
        decision.action = "alert"
        decision.alert_ids = [alert_id] if alert_id is not None else []
        decision.message = text if alert_id is not None else text + " (an open alert for today already says so)"
    else:
        decision = _act_automated(model, policy, decision, last_retrain, now, db)
    decision.monitor_run_id = _record(model, decision, db)
    return decision


def _act_automated(model, policy: Policy, decision: PolicyDecision, last_retrain, now, db) -> PolicyDecision:
    from mlops_core.lifecycle import jobs

    why = "; ".join(decision.triggers)
    if last_retrain is not None and policy.cooldown_hours > 0 and now - last_retrain < timedelta(hours=policy.cooldown_hours):
        until = last_retrain + timedelta(hours=policy.cooldown_hours)
        decision.action = "cooldown"
        decision.message = (f"Triggered ({why}) but a retrain started at {last_retrain:%Y-%m-%d %H:%M} UTC, within the "
                            f"{policy.cooldown_hours:g} h cool-down; next automatic retrain allowed after "
                            f"{until:%Y-%m-%d %H:%M} UTC.")
        return decision
    trigger = "schedule" if all(t.startswith("the last retrain") for t in decision.triggers) else "automated"
    try:
        run_id = jobs.start_retrain(model, actor=ACTOR, trigger=trigger, db=db, params={
            "window_days": policy.window_days, "min_rows": policy.min_rows, "auto_promote": True})
    except AlreadyRunningError as exc:
        decision.action = "already_running"
        decision.message = f"Triggered ({why}) but {exc}"
        return decision
    decision.action = "retrain_started"
    decision.retrain_run_id = run_id
    decision.message = (f"Triggered ({why}): started retrain {run_id}; its candidate is promoted automatically if it "
                        "passes the gate.")
    return decision


def _record(model: str, d: PolicyDecision, db) -> str:
    stats = {"mode": d.mode, "signals": d.signals, "triggers": d.triggers, "action": d.action, "message": d.message,
             "retrain_run_id": d.retrain_run_id, "alert_ids": d.alert_ids, "evaluated_at": d.evaluated_at}
    with connect(db) as con, transaction(con):
        run_id = runstore.insert_run(con, model=model, kind="monitor", trigger="automated", actor=ACTOR,
                                     status="running", message=d.action, params={"policy_evaluation": True})
        now = utcnow()
        runstore.update_run(con, run_id, status="succeeded", progress=1.0, message=d.message,
                            statistics=json.loads(json.dumps(stats, default=str)), finished_at=now, duration_s=0.0)
        if d.action in ("retrain_started", "cooldown", "already_running"):
            runstore.insert_audit(con, actor=ACTOR, action=f"policy_{d.action}", model=model, reason=d.message,
                                  run_id=d.retrain_run_id or run_id, details={"triggers": d.triggers})
    return run_id


def recent_evaluations(model: str, db=None, limit: int = 100) -> pd.DataFrame:
    """The latest policy evaluations of ``model`` (newest first): evaluated_at, mode, action, triggers, message, retrain_run_id."""
    with connect(db, create=False) as con:
        mstore.get_model(con, model)
        df = jobstore.runs_of_kind_frame(con, model, "monitor", limit, param="policy_evaluation")
    cols = ["evaluated_at", "mode", "action", "triggers", "message", "retrain_run_id", "monitor_run_id"]
    rows = []
    for rec in df.to_dict(orient="records"):
        s = json.loads(rec["statistics"]) if rec.get("statistics") else {}
        rows.append({"evaluated_at": rec["created_at"], "mode": s.get("mode"), "action": s.get("action"),
                     "triggers": "; ".join(s.get("triggers") or []), "message": s.get("message"),
                     "retrain_run_id": s.get("retrain_run_id"), "monitor_run_id": rec["id"]})
    return pd.DataFrame(rows, columns=cols)

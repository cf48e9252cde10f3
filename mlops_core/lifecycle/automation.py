"""Automation: evaluate a model's policy once (manual: alert a person; automated: retrain, gate, promote).

Triggers (any one fires):

- ``drift_share_above``: the share of features that drifted in the latest window is
  above this value (0..1);
- ``metric_threshold`` on ``metric`` (default: the headline metric, ``metrics.headline``):
  the latest windowed value is *worse* than the threshold (below it for higher-is-better
  metrics, above it for errors);
- ``every_days``: the last successful retrain (or the production version, when there
  is none) is older than this many days.

What ``evaluate`` does when a trigger fires:

- ``manual``: opens (or updates, once a day) the model's ``policy_trigger`` incident and
  nothing else; a person decides.
- ``automated``: starts a retrain (actor ``automation``) on the policy's window ending at
  the evaluation time, whose candidate is promoted in the same transaction that registers
  it when it passes the gate; unless a retrain is already running, or any retrain of the
  model started less than ``cooldown_hours`` ago (the cool-down), in which case it says
  so and waits. The retrain runs in a background process, or (``spawn=False``) is only
  queued for the caller to run (``retrain.execute``).

Every evaluation is a run of kind ``monitor`` (actor ``automation``) holding the
signals, the triggers and the action; every action (alert, retrain) also has an audit
row with actor ``automation``. ``recent_evaluations`` reads them back.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from mlops_core import metrics
from mlops_core.entities import ModelInfo, jsonable
from mlops_core.errors import AlreadyRunningError
from mlops_core.lifecycle import jobs
from mlops_core.lifecycle.policies import Policy, policy_of
from mlops_core.monitoring import webhooks
from mlops_core.monitoring.alerts import MonitoringResult, run_monitoring
from mlops_core.monitoring.incidents import raise_incident
from mlops_core.store import Store, transaction, utcnow
from mlops_core.store import jobs as jobstore
from mlops_core.store import models as mstore
from mlops_core.store import runs as runstore

ACTOR = "automation"


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


def _signals_from(result: MonitoringResult | None) -> dict:
    """Drift share and metric values of a monitoring result."""
    if result is None:
        return {}
    out: dict = {"drift_share": result.drift_share, "metrics": dict(result.metrics or {})}
    if result.headline_metric:
        out["metrics"][result.headline_metric] = result.headline_value
    out["alerts_raised"] = len(result.alerts)
    return out


def evaluate(store: Store, info: ModelInfo, *, now: datetime | None = None, drift_share: float | None = None,
             metrics_now: dict | None = None, spawn: bool = True) -> PolicyDecision:
    """Evaluate the model's policy once and act on it (see the module docstring); return the decision.

    Signals come from ``drift_share``/``metrics_now`` when given, else from running the
    monitor (``alerts.run_monitoring``) now. ``spawn=False``: a retrain it starts is only
    queued (its run id is in the decision) for the caller to execute.
    """
    model = info.name
    with store.connect() as con:
        policy = policy_of(con, model)
    signals: dict = {}
    if drift_share is None and metrics_now is None:
        signals = _signals_from(run_monitoring(store, info, now=now, actor=ACTOR, trigger="automated"))
    if drift_share is not None:
        signals["drift_share"] = drift_share
    if metrics_now:
        signals.setdefault("metrics", {}).update(metrics_now)
    now = now or utcnow()
    metric = metrics.get(policy.metric or metrics.headline(info.task))

    triggers = []
    ds = signals.get("drift_share")
    if policy.drift_share_above is not None and ds is not None and ds > policy.drift_share_above:
        triggers.append(f"drift share {ds:.2f} is above {policy.drift_share_above:.2f}")
    mv = (signals.get("metrics") or {}).get(metric.name)
    if policy.metric_threshold is not None and mv is not None and metric.worse_than(mv, policy.metric_threshold):
        word = "above" if metric.lower_is_better else "below"
        triggers.append(f"{metric.name} {mv:.4f} is {word} {policy.metric_threshold:g}")
    with store.connect(write=policy.mode == "manual") as con:
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
            decision.message += f", {metric.name} {mv:.4f})." if mv is not None else f", no {metric.name} figure)."
        elif policy.mode == "manual":
            text = f"{model}: retrain recommended — " + "; ".join(triggers) + ". Mode is manual: a person decides."
            with transaction(con):
                alert_id, event = raise_incident(
                    con, model=model, kind="policy_trigger", severity="warning", key=f"policy:{model}",
                    subject="policy", title="Retrain recommended by the policy", message=text,
                    occurred=datetime(now.year, now.month, now.day), at=now, value_text="; ".join(triggers),
                    details={"triggers": triggers, "signals": signals})
                raised = event in ("new", "reopened")
                if raised:
                    runstore.insert_audit(con, actor=ACTOR, action="policy_alert", model=model, reason=text,
                                          details={"alert_id": alert_id, "triggers": triggers}, at=now)
            decision.action = "alert"
            decision.alert_ids = [alert_id] if raised else []
            decision.message = text if raised else text + " (its open incident already says so)"
    if triggers and policy.mode == "automated":
        decision = _act_automated(store, info, policy, decision, last_retrain, now, spawn=spawn)
    decision.monitor_run_id = _record(store, model, decision)
    webhooks.deliver_pending(store)
    return decision


def _act_automated(store: Store, info: ModelInfo, policy: Policy, decision: PolicyDecision, last_retrain,
                   now: datetime, *, spawn: bool) -> PolicyDecision:
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
        # The window ends when the trigger fired, so the run's params say exactly which rows it saw.
        run_id = jobs.start_retrain(store, info, actor=ACTOR, trigger=trigger, spawn=spawn, params={
            "window_days": policy.window_days, "end": now, "min_rows": policy.min_rows, "auto_promote": True})
    except AlreadyRunningError as exc:
        decision.action = "already_running"
        decision.message = f"Triggered ({why}) but {exc}"
        return decision
    decision.action = "retrain_started"
    decision.retrain_run_id = run_id
    decision.message = (f"Triggered ({why}): started retrain {run_id}; its candidate is promoted automatically if it "
                        "passes the gate.")
    return decision


def _record(store: Store, model: str, d: PolicyDecision) -> str:
    stats = {"mode": d.mode, "signals": d.signals, "triggers": d.triggers, "action": d.action, "message": d.message,
             "retrain_run_id": d.retrain_run_id, "alert_ids": d.alert_ids, "evaluated_at": d.evaluated_at}
    with store.transaction() as con:
        run_id = runstore.insert_run(con, model=model, kind="monitor", trigger="automated", actor=ACTOR,
                                     status="running", message=d.action, params={"policy_evaluation": True})
        now = utcnow()
        runstore.update_run(con, run_id, status="succeeded", progress=1.0, message=d.message,
                            statistics=jsonable(stats), finished_at=now, duration_s=0.0)
        if d.action in ("retrain_started", "cooldown", "already_running"):
            runstore.insert_audit(con, actor=ACTOR, action=f"policy_{d.action}", model=model, reason=d.message,
                                  run_id=d.retrain_run_id or run_id, details={"triggers": d.triggers})
    return run_id


def recent_evaluations(con: duckdb.DuckDBPyConnection, info: ModelInfo, limit: int = 100) -> pd.DataFrame:
    """The latest policy evaluations of the model (newest first): evaluated_at, mode, action, triggers, message,
    retrain_run_id, monitor_run_id."""
    df = jobstore.runs_of_kind_frame(con, info.name, "monitor", limit, param="policy_evaluation")
    cols = ["evaluated_at", "mode", "action", "triggers", "message", "retrain_run_id", "monitor_run_id"]
    rows = []
    for rec in df.to_dict(orient="records"):
        s = json.loads(rec["statistics"]) if rec.get("statistics") else {}
        rows.append({"evaluated_at": rec["created_at"], "mode": s.get("mode"), "action": s.get("action"),
                     "triggers": "; ".join(s.get("triggers") or []), "message": s.get("message"),
                     "retrain_run_id": s.get("retrain_run_id"), "monitor_run_id": rec["id"]})
    return pd.DataFrame(rows, columns=cols)

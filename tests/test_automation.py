"""Automation policies: storage and validation, triggers, manual alerts, automated retrain + promote, cool-down."""
from __future__ import annotations

import os
from datetime import datetime, timedelta

import pytest
from _dashboard_support import copy_db
from _ops_support import MODEL, build

from mlops_core import ControlRoom, Identity
from mlops_core.errors import InvalidInputError, NotFoundError
from mlops_core.store import connect, utcnow
from mlops_core.store import runs as runstore

DEMO = "credit_default"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    """The demo database (40 days, 300 predictions a day), built once for this module."""
    from mlops_core.demo import build as demo

    path = tmp_path_factory.mktemp("demo") / "mlops.duckdb"
    demo.build_demo(path, days=40, daily=300, end=demo_end(utcnow()))
    return path


def demo_end(now: datetime) -> datetime:
    """When the demo's traffic ends: ``now`` from noon on; before noon, the last hour of yesterday. The tests
    evaluate the policy at the wall clock, and a demo ending a few minutes after midnight has a last day of a
    few predictions, whose drift and holdout decide nothing (the tests then depended on the hour they ran)."""
    if now.hour >= 12:
        return now
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=now.hour + 1)


@pytest.fixture
def demo_copy(demo_db, tmp_path):
    """A private copy of the demo database and its artifacts."""
    return copy_db(demo_db, tmp_path)


def alerts_of(db, model):
    with connect(db, write=True, create=True) as con:
        return con.execute("SELECT kind, message FROM alerts WHERE model = ? AND kind = 'policy_trigger'", [model]).fetchall()


# --- policy storage ------------------------------------------------------------------------------

def test_defaults_then_changes_are_stored_validated_and_audited(db):
    build(db, n=300)
    p = ControlRoom(db).model(MODEL).policy()
    assert (p.mode, p.drift_share_above, p.cooldown_hours, p.window_days, p.gate, p.stored) == \
        ("manual", 0.3, 24.0, 30.0, None, False)
    p = ControlRoom(db, identity=Identity("alice", 'admin')).model(MODEL).set_policy(mode="automated", gate=["roc_auc>=0.7", "roc_auc+=1%"], every_days=7)
    assert p.stored and p.updated_by == "alice"
    again = ControlRoom(db).model(MODEL).policy()
    assert again.mode == "automated" and again.every_days == 7.0
    assert again.gate == [{"metric": "roc_auc", "kind": "min", "threshold": 0.7, "relative": False},
                          {"metric": "roc_auc", "kind": "improve", "threshold": 0.01, "relative": True}]
    ev = ControlRoom(db).audit(MODEL).iloc[0]
    assert ev.action == "policy_change" and ev.actor == "alice" and "mode: manual -> automated" in ev.reason

    for bad, match in (({"mode": "auto"}, "Unknown policy mode"), ({"drift_share_above": 3}, "0..1"),
                       ({"gate": ["auc>=1"]}, "Unknown gate metric"), ({"cooldown": 1}, "Unknown policy field"),
                       ({"metric": "positive_rate"}, "Unknown policy metric")):
        with pytest.raises(InvalidInputError, match=match):
            ControlRoom(db, identity=Identity("alice", 'admin')).model(MODEL).set_policy(**bad)
    assert ControlRoom(db).model(MODEL).policy().mode == "automated"  # refused changes wrote nothing
    assert ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).set_policy(gate=None).gate is None
    with pytest.raises(NotFoundError):
        ControlRoom(db).model("nope").policy()


# --- evaluation with given signals ----------------------------------------------------------------

def test_no_trigger_does_nothing_but_is_recorded(db):
    build(db, n=300)
    d = ControlRoom(db).model(MODEL).evaluate_policy(drift_share=0.1, metrics={"roc_auc": 0.8})
    assert d.action == "none" and d.triggers == [] and "No trigger fired" in d.message
    ev = ControlRoom(db).model(MODEL).evaluations()
    assert list(ev["action"]) == ["none"] and ev["monitor_run_id"].iloc[0] == d.monitor_run_id
    assert runstore_get(db, d.monitor_run_id).actor == "automation"


def runstore_get(db, run_id):
    with connect(db, write=True, create=True) as con:
        return runstore.get_run(con, run_id)


def test_manual_mode_only_alerts_once_per_day(db):
    build(db, n=300)
    ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).set_policy(metric_threshold=0.75)
    d = ControlRoom(db).model(MODEL).evaluate_policy(drift_share=0.5, metrics={"accuracy": 0.6})
    assert d.action == "alert" and len(d.alert_ids) == 1
    assert d.triggers == ["drift share 0.50 is above 0.30", "accuracy 0.6000 is below 0.75"]
    again = ControlRoom(db).model(MODEL).evaluate_policy(drift_share=0.5)
    assert again.action == "alert" and again.alert_ids == [] and "already says so" in again.message
    assert len(alerts_of(db, MODEL)) == 1
    assert ControlRoom(db).model(MODEL).active_retrain() is None
    assert "retrain" not in set(ControlRoom(db).runs(MODEL)["kind"])
    audit = ControlRoom(db).audit(MODEL)
    assert list(audit.query("action == 'policy_alert'")["actor"]) == ["automation"]


def test_error_metrics_trigger_above_the_threshold(db):
    build(db, n=300)
    ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).set_policy(metric="log_loss", metric_threshold=0.5, drift_share_above=None)
    assert ControlRoom(db).model(MODEL).evaluate_policy(metrics={"log_loss": 0.4}).action == "none"
    d = ControlRoom(db).model(MODEL).evaluate_policy(drift_share=0.99, metrics={"log_loss": 0.7})
    assert d.triggers == ["log_loss 0.7000 is above 0.5"]


def test_schedule_trigger_and_cooldown_in_automated_mode(db):
    build(db, n=600)
    ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).set_policy(mode="automated", every_days=7, drift_share_above=None)
    assert ControlRoom(db).model(MODEL).evaluate_policy(drift_share=0.0).action == "none"  # v1 is minutes old
    later = utcnow() + timedelta(days=8)
    d = ControlRoom(db).model(MODEL).evaluate_policy(now=later, drift_share=0.0)
    assert d.action == "retrain_started" and "schedule: every 7 days" in d.triggers[0]
    run = ControlRoom(db).wait(d.retrain_run_id, timeout=240)
    assert run.status == "succeeded", run.error
    assert run.trigger == "schedule" and run.actor == "automation"
    # a retrain ran minutes ago: within the 24 h cool-down nothing new starts, and the schedule is satisfied
    d = ControlRoom(db).model(MODEL).evaluate_policy(drift_share=0.9)
    assert d.action == "none"
    ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).set_policy(drift_share_above=0.3)
    d = ControlRoom(db).model(MODEL).evaluate_policy(drift_share=0.9)
    assert d.action == "cooldown" and "cool-down" in d.message
    assert list(ControlRoom(db).runs(MODEL)["kind"]).count("retrain") == 1


def test_automated_retrain_queued_for_the_caller_covers_the_window_up_to_the_evaluation(db):
    build(db, n=600)
    ops = ControlRoom(db, identity=Identity("ops", 'admin'))
    ops.model(MODEL).set_policy(mode="automated", drift_share_above=0.5, window_days=15)
    now = utcnow() - timedelta(hours=1)
    d = ops.model(MODEL).evaluate_policy(now=now, drift_share=0.9, spawn=False)
    assert d.action == "retrain_started"
    run = ops.run(d.retrain_run_id)
    assert (run.status, run.actor, run.trigger, run.pid) == ("queued", "automation", "automated", os.getpid())
    assert run.params["end"] == now.isoformat() and run.params["window_days"] == 15 and run.params["auto_promote"]
    outcome = ops.execute_retrain(d.retrain_run_id)  # what its background job would do, here
    done = ops.run(d.retrain_run_id)
    assert done.status == "succeeded" and outcome.statistics["window_end"] == now.isoformat()
    assert outcome.promoted == outcome.passed


# --- on the demo database, with the monitoring engine ------------------------------------------------

def test_manual_mode_on_demo_alerts_and_changes_nothing(demo_copy):
    db = demo_copy
    before = [(v.version, v.status) for v in ControlRoom(db).model(DEMO).versions()]
    ops = ControlRoom(db, identity=Identity("ops", 'operator'))
    # The demo's last evaluation (today) alerted already, and an incident counts one occurrence per day: resolve
    # them all, then the evaluation of the next day has to reopen the policy's incident, and a second one that day
    # adds nothing.
    for alert_id in ops.model(DEMO).alerts(statuses=("open", "acknowledged"))["id"]:
        ops.resolve(int(alert_id))
    tomorrow = utcnow() + timedelta(days=1)
    d = ControlRoom(db).model(DEMO).evaluate_policy(now=tomorrow)
    assert d.mode == "manual" and d.signals["drift_share"] > 0.3
    assert d.action == "alert" and d.alert_ids
    again = ControlRoom(db).model(DEMO).evaluate_policy(now=tomorrow + timedelta(minutes=5))
    assert again.action == "alert" and not again.alert_ids and "open incident already says so" in again.message
    assert [(v.version, v.status) for v in ControlRoom(db).model(DEMO).versions()] == before
    assert ControlRoom(db).model(DEMO).active_retrain() is None


def test_automated_mode_on_demo_retrains_and_promotes_on_drift(demo_copy):
    db = demo_copy
    prod_before = ControlRoom(db).model(DEMO).production_version()
    # the demo's own policy has a strict gate and a week's window: the default gate and window here
    ControlRoom(db, identity=Identity("ops", 'admin')).model(DEMO).set_policy(mode="automated", gate=None,
                                                                              window_days=30)
    d = ControlRoom(db).model(DEMO).evaluate_policy()
    assert d.action == "retrain_started" and d.triggers and d.triggers[0].startswith("drift share")
    run = ControlRoom(db).wait(d.retrain_run_id, timeout=400)
    assert run.status == "succeeded", run.error
    s = run.statistics
    assert s["gate"]["passed"] and s["promoted"]
    new = s["candidate_version"]
    assert ControlRoom(db).model(DEMO).production_version() == new != prod_before
    audit = ControlRoom(db).audit(DEMO)
    promo = audit[(audit["action"] == "promote") & (audit["to_version"] == new)].iloc[0]
    assert promo.actor == "automation" and promo.from_version == prod_before and promo.run_id == run.id
    assert {"policy_retrain_started", "retrain_requested"} <= set(audit.query("actor == 'automation'")["action"])
    # the next evaluation respects the cool-down
    assert ControlRoom(db).model(DEMO).evaluate_policy().action in ("cooldown", "none")
    # and a rollback restores the previous production version
    assert ControlRoom(db, identity=Identity("ops", 'admin')).model(DEMO).rollback().to_version == prod_before

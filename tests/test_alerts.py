"""Alert rules, the monitoring run and incidents: default rules, one incident per rule and subject, acknowledge,
resolve and reopen, snooze, the runs row."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from _monitoring_support import T0, credit_features, log_rows, register_credit, write

from mlops_core import ControlRoom, Identity
from mlops_core.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from mlops_core.store import connect


def _shifting_log(db, days=8, per_day=600, drift_from=5, concept_from=5):
    """Traffic whose income drifts and whose labels stop following the predictions from day ``drift_from``."""
    info = register_credit(db, n=2000)
    parts, labels = [], []
    for d in range(days):
        rng = np.random.default_rng(d)
        feats = credit_features(per_day, seed=200 + d, income_shift=10.0 if d >= drift_from else 0.0)
        score = rng.random(per_day)
        pred = np.where(score > 0.5, "1", "0")
        log = log_rows(feats, start=T0 + timedelta(days=d), step=timedelta(days=1) / per_day, prediction=pred,
                       score=score, prefix=f"d{d}-")
        agree = rng.random(per_day) < (0.9 if d < concept_from else 0.5)
        truth = np.where(agree, pred, np.where(pred == "1", "0", "1"))
        parts.append(log)
        labels.append(pd.DataFrame({"request_id": log["request_id"], "label": truth}))
    write(db, info, pd.concat(parts, ignore_index=True), pd.concat(labels, ignore_index=True))
    return info


def test_run_monitoring_creates_default_rules_raises_alerts_and_records_a_run(db):
    _shifting_log(db)
    now = T0 + timedelta(days=8, hours=1)
    res = ControlRoom(db).model("credit").monitor(now=now)
    assert res.rules_created >= 4
    kinds = {r["kind"] for r in ControlRoom(db).model("credit").alert_rules().to_dict(orient="records")}
    assert {"metric_below", "drift_share_above", "feature_drift", "validation_anomalies", "no_traffic"} <= kinds
    assert res.windows_computed == 8
    assert res.drift_share == pytest.approx(1 / 3) and res.drifted_features == ["income"]
    assert res.drift_window == T0 + timedelta(days=7)
    assert res.headline_metric == "accuracy" and res.headline_value < 0.6
    raised = pd.DataFrame(res.alerts)
    # one incident per rule and subject, opened in the first window that fired (the concept shift, no earlier) ...
    metric = raised[raised["kind"] == "metric_below"]
    assert list(metric["window_start"]) == [T0 + timedelta(days=5)] and list(metric["event"]) == ["new"]
    share = raised[raised["kind"] == "drift_share_above"]
    assert list(share["window_start"]) == [T0 + timedelta(days=5)]
    assert not (raised["kind"] == "no_traffic").any()  # the last prediction is an hour old
    # ... and seen in every later window: first and last seen, the number of windows, the current value
    incidents = ControlRoom(db).model("credit").alerts().set_index("kind")
    for kind in ("metric_below", "drift_share_above"):
        row = incidents.loc[kind]
        assert (row["first_seen"], row["last_seen"], row["windows"], row["status"]) == (
            T0 + timedelta(days=5), T0 + timedelta(days=7), 3, "open")
    assert incidents.loc["metric_below", "title"].startswith("Accuracy of v1 below ")
    assert incidents.loc["metric_below", "current_value"] < 0.6
    assert "income" in incidents.loc["drift_share_above", "message"]
    assert "__" not in " ".join(incidents["title"]) + " ".join(incidents["message"])
    with connect(db, write=True, create=True) as con:
        run = con.execute("SELECT kind, status, metrics FROM runs WHERE id = ?", [res.run_id]).fetchall()[0]
        stored = con.execute("SELECT count(*) FROM drift_results WHERE model = 'credit'").fetchall()[0][0]
    assert run[0] == "monitor" and run[1] == "succeeded" and "drift_share" in run[2]
    assert stored > 0


def test_second_run_is_idempotent(db):
    _shifting_log(db)
    now = T0 + timedelta(days=8, hours=1)
    first = ControlRoom(db).model("credit").monitor(now=now)
    n_alerts = len(ControlRoom(db).model("credit").alerts())
    with connect(db, write=True, create=True) as con:
        n_drift = con.execute("SELECT count(*) FROM drift_results").fetchall()[0][0]
    second = ControlRoom(db).model("credit").monitor(now=now + timedelta(minutes=5))
    assert first.alerts and second.alerts == []
    assert len(ControlRoom(db).model("credit").alerts()) == n_alerts
    with connect(db, write=True, create=True) as con:
        assert con.execute("SELECT count(*) FROM drift_results").fetchall()[0][0] == n_drift
        assert con.execute("SELECT count(*) FROM alert_rules").fetchall()[0][0] == first.rules_created
    assert second.rules_created == 0


def test_no_traffic_and_few_labels(db):
    _shifting_log(db, days=3, concept_from=0, drift_from=99, per_day=40)
    res = ControlRoom(db).model("credit").monitor(now=T0 + timedelta(days=5))
    kinds = [a.kind for a in res.alerts]
    assert "no_traffic" in kinds
    assert "metric_below" not in kinds  # 40 labels a day is below min_labels: no verdict on accuracy
    again = ControlRoom(db).model("credit").monitor(now=T0 + timedelta(days=6))
    assert "no_traffic" not in [a.kind for a in again.alerts]  # the same silent stretch alerts once


def test_custom_rules_and_validation(db):
    _shifting_log(db)
    rid = ControlRoom(db).model("credit").set_alert_rule("feature_drift", target="income", threshold=None, severity="critical")
    same = ControlRoom(db).model("credit").set_alert_rule("feature_drift", target="income", threshold=None, severity="info")
    assert rid == same
    rules = ControlRoom(db).model("credit").alert_rules()
    assert len(rules) == 1 and rules["severity"].iloc[0] == "info"
    res = ControlRoom(db).model("credit").monitor(now=T0 + timedelta(days=8))
    assert res.rules_created == 0  # the model has a rule: no defaults added
    assert [(a.kind, a.subject) for a in res.alerts] == [("feature_drift", "income")]  # one incident, three windows
    assert ControlRoom(db).model("credit").alerts()["windows"].tolist() == [3]
    assert all(a.severity == "info" for a in res.alerts)
    with pytest.raises(InvalidInputError, match="Unknown alert rule kind"):
        ControlRoom(db).model("credit").set_alert_rule("cpu_high", threshold=1)
    with pytest.raises(InvalidInputError, match="severity"):
        ControlRoom(db).model("credit").set_alert_rule("no_traffic", threshold=1, severity="urgent")
    with pytest.raises(InvalidInputError, match="threshold"):
        ControlRoom(db).model("credit").set_alert_rule("drift_share_above", threshold=None)
    with pytest.raises(NotFoundError):
        ControlRoom(db).model("nope").set_alert_rule("no_traffic", threshold=1)
    ControlRoom(db).delete_alert_rule(rid)
    assert ControlRoom(db).model("credit").alert_rules().empty


def test_acknowledge_and_list(db):
    _shifting_log(db)
    res = ControlRoom(db).model("credit").monitor(now=T0 + timedelta(days=8))
    first = res.alerts[0].id
    assert ControlRoom(db, identity=Identity("ana", 'admin')).acknowledge(first) is True
    assert ControlRoom(db, identity=Identity("ana", 'admin')).acknowledge(first) is False
    open_ = ControlRoom(db).model("credit").alerts(open_only=True)
    all_ = ControlRoom(db).model("credit").alerts()
    assert len(all_) == len(open_) + 1 and first not in set(open_["id"])
    row = all_[all_["id"] == first].iloc[0]
    assert row["acknowledged"] and row["acknowledged_by"] == "ana"
    with connect(db, write=True, create=True) as con:
        audit = con.execute("SELECT actor, action FROM audit_events WHERE action = 'acknowledge_alert'").fetchall()
    assert audit == [("ana", "acknowledge_alert")]
    with pytest.raises(NotFoundError, match="No alert with id 9999"):
        ControlRoom(db, identity=Identity("ana", 'admin')).acknowledge(9999)
    assert len(ControlRoom(db).alerts()) == len(all_)


def test_failed_run_is_recorded(db):
    register_credit(db)
    with connect(db, write=True, create=True) as con:
        con.execute("DELETE FROM reference_stats")
        con.execute("DELETE FROM drift_references")
    with pytest.raises(NotFoundError):
        ControlRoom(db).model("credit").monitor(now=T0)
    with connect(db, write=True, create=True) as con:
        status, error = con.execute("SELECT status, error FROM runs WHERE kind = 'monitor'").fetchall()[0]
    assert status == "failed" and "reference" in error


def test_incident_life_cycle_acknowledge_resolve_reopen_snooze(db):
    """An acknowledged incident keeps counting windows; a resolved one reopens when a later window fires (never a
    second incident); an occurrence it had already seen does not reopen it; snoozing hides it from the open list.
    Every person's step is audited."""
    _shifting_log(db, days=10)
    credit = ControlRoom(db).model("credit")
    ops = ControlRoom(db, identity=Identity("ops", "operator"))
    credit.monitor(now=T0 + timedelta(days=7, hours=1))  # windows up to day 6 are finished
    share = credit.alerts().set_index("kind").loc["drift_share_above"]
    incident = int(share["id"])
    assert (share["windows"], share["last_seen"]) == (2, T0 + timedelta(days=6))

    assert ops.acknowledge(incident) and not ops.acknowledge(incident)
    credit.monitor(now=T0 + timedelta(days=8, hours=1))  # day 7 fires too: the acknowledged incident counts it
    row = credit.alerts().set_index("id").loc[incident]
    assert (row["status"], row["windows"], row["last_seen"]) == ("acknowledged", 3, T0 + timedelta(days=7))
    assert incident not in set(credit.alerts(open_only=True)["id"])

    assert ops.resolve(incident) and not ops.resolve(incident)
    again = credit.monitor(now=T0 + timedelta(days=8, hours=2))  # the same windows again: stays resolved
    assert incident not in {a.id for a in again.alerts}
    assert credit.alerts().set_index("id").loc[incident, "status"] == "resolved"
    later = credit.monitor(now=T0 + timedelta(days=9, hours=1))  # day 8 fires: the same incident reopens
    reopened = [a for a in later.alerts if a.kind == "drift_share_above"]
    assert [(a.id, a.event) for a in reopened] == [(incident, "reopened")]
    row = credit.alerts().set_index("id").loc[incident]
    assert (row["status"], row["windows"], row["reopened"]) == ("open", 4, 1)
    assert (credit.alerts()["kind"] == "drift_share_above").sum() == 1

    until = ops.snooze(incident, 24)
    assert until > T0 and incident not in set(credit.alerts(open_only=True)["id"])
    with pytest.raises(InvalidInputError, match="Snooze"):
        ops.snooze(incident, 0)
    with pytest.raises(PermissionDeniedError):
        ControlRoom(db, identity=Identity("vic", "viewer")).resolve(incident)
    audit = ControlRoom(db).audit("credit")
    assert {"acknowledge_alert", "resolve_alert", "snooze_alert"} <= set(audit["action"])
    assert set(audit.loc[audit["action"].str.endswith("_alert"), "actor"]) == {"ops"}

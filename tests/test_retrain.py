"""The retrain pipeline and its gate: real models, real DuckDB, the job's code run in this process."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from _ops_support import MODEL, append_log, artifact_files, build, labelled_frame, retrain_now
from conftest import log_view
from sklearn.metrics import roc_auc_score

from mlops_core import ControlRoom, Identity
from mlops_core.config import artifacts_dir
from mlops_core.errors import ConflictError, InvalidInputError
from mlops_core.lifecycle import gate, training
from mlops_core.lifecycle.gate import GateRule, evaluate_gate
from mlops_core.store import Store, connect, utcnow
from mlops_core.store import models as mstore
from mlops_core.store import training_data as tdstore

# --- the gate (pure) ---------------------------------------------------------------------------

def test_gate_value_thresholds_pass_and_fail_with_sentences():
    d = evaluate_gate({"roc_auc": 0.75, "log_loss": 0.7}, None,
                      [GateRule("roc_auc", "min", 0.7), GateRule("log_loss", "max", 0.6)])
    assert not d.passed
    assert [c.outcome for c in d.checks] == ["passed", "failed"]
    assert "0.7500 meets the required at least 0.7" in d.reasons[0]
    assert "misses the required at most 0.6" in d.reasons[1]


def test_gate_improve_absolute_relative_and_direction():
    cand, champ = {"roc_auc": 0.80, "rmse": 9.0}, {"roc_auc": 0.78, "rmse": 10.0}
    assert evaluate_gate(cand, champ, [GateRule("roc_auc", "improve", 0.02)]).passed
    assert not evaluate_gate(cand, champ, [GateRule("roc_auc", "improve", 0.03)]).passed
    # rmse: smaller is better; 10% better than 10.0 is 1.0 better
    assert evaluate_gate(cand, champ, [GateRule("rmse", "improve", 0.10, relative=True)]).passed
    assert not evaluate_gate(cand, champ, [GateRule("rmse", "improve", 0.11, relative=True)]).passed
    # a negative threshold is a tolerance: at most 0.03 worse
    assert evaluate_gate({"roc_auc": 0.76}, champ, [GateRule("roc_auc", "improve", -0.03)]).passed


def test_gate_edges_no_champion_missing_metric_no_rules():
    rules = [GateRule("roc_auc", "min", 0.7), GateRule("roc_auc", "improve", 0.0)]
    d = evaluate_gate({"roc_auc": 0.72}, None, rules)
    assert d.passed and d.checks[1].outcome == "skipped" and "No champion" in d.reasons[1]
    d = evaluate_gate({"roc_auc": None}, {"roc_auc": 0.7}, rules)
    assert not d.passed and all(c.outcome == "failed" for c in d.checks)
    d = evaluate_gate({"roc_auc": 0.8}, {}, [GateRule("roc_auc", "improve", 0.0)])
    assert d.passed and d.checks[0].outcome == "skipped"
    d = evaluate_gate({"roc_auc": 0.1}, {"roc_auc": 0.9}, [])
    assert d.passed and "nothing was checked" in d.reasons[0]


def test_gate_rule_parsing_and_errors():
    assert GateRule.parse("roc_auc>=0.7") == GateRule("roc_auc", "min", 0.7)
    assert GateRule.parse("rmse+=2%") == GateRule("rmse", "improve", 0.02, True)
    assert GateRule.parse("log_loss <= 0.5") == GateRule("log_loss", "max", 0.5)
    with pytest.raises(InvalidInputError, match="choose one of"):
        GateRule("auc", "min", 0.7)
    with pytest.raises(InvalidInputError, match="Cannot read gate rule"):
        GateRule.parse("roc_auc>>0.7")
    with pytest.raises(InvalidInputError, match="no better direction"):
        GateRule("positive_rate", "improve", 0.0)
    assert gate.default_rules("regression") == [GateRule("rmse", "improve", 0.0)]


# --- the pipeline --------------------------------------------------------------------------------

def test_retrain_passes_gate_on_shifted_concept_and_scores_both_on_the_same_recent_holdout(db):
    build(db, concept="shifted", n=1500)
    run = retrain_now(db)
    assert run.status == "succeeded", run.error
    assert run.progress == 1.0 and "registered v2 as candidate" in run.message
    s = run.statistics
    assert s["candidate_version"] == 2 and s["status"] == "candidate" and s["gate"]["passed"]
    assert s["champion_version"] == 1 and s["promoted"] is False
    assert s["rows"] == 1500 and s["train_rows"] == 1200 and s["holdout_rows"] == 300
    assert s["candidate_metrics"]["roc_auc"] > s["champion_metrics"]["roc_auc"]

    # the recorded holdout metrics are sklearn's on the 300 most recent labelled rows, for both models
    info = ControlRoom(db).model(MODEL).info
    with Store(db).engine() as con:
        rows = tdstore.labelled_rows(con, log_view(db, MODEL), None, None)
    hold = rows.iloc[-300:]
    X = training.coerce_features(hold[info.feature_names], info.features)
    y = (hold["label"] == "1").astype(int)
    for version, key in ((2, "candidate_metrics"), (1, "champion_metrics")):
        proba = ControlRoom(db).model(MODEL).load(version).predict_proba(X)[:, 1]
        assert s[key]["roc_auc"] == pytest.approx(roc_auc_score(y, proba), abs=1e-12)

    v2 = mstore_version(db, 2)
    assert v2.status == "candidate" and v2.gate["passed"] and v2.run_id == run.id
    assert v2.train_rows == 1200 and v2.holdout_rows == 300 and v2.train_start < v2.train_end
    assert ControlRoom(db).model(MODEL).production_version() == 1  # manual: nothing is promoted
    audit = ControlRoom(db).audit(MODEL)
    assert {"retrain_requested", "register_version"} <= set(audit["action"])


def mstore_version(db, version):
    with connect(db, write=True, create=True) as con:
        return mstore.get_version(con, MODEL, version)


def test_retrain_failing_the_gate_is_registered_rejected_and_cannot_be_promoted_without_force(db):
    build(db, concept="same", n=1000)
    ControlRoom(db, identity=Identity("tester", 'admin')).model(MODEL).set_policy(gate=["roc_auc>=0.99"])
    run = retrain_now(db)
    assert run.status == "succeeded"
    s = run.statistics
    assert s["status"] == "rejected" and not s["gate"]["passed"]
    assert "misses the required at least 0.99" in s["gate"]["reasons"][0]
    assert mstore_version(db, 2).status == "rejected"
    with pytest.raises(ConflictError, match="was rejected"):
        ControlRoom(db, identity=Identity("tester", 'admin')).model(MODEL).promote(2)
    r = ControlRoom(db, identity=Identity("tester", 'admin')).model(MODEL).promote(2, force=True)
    assert r.forced and ControlRoom(db).model(MODEL).production_version() == 2


def test_auto_promote_promotes_in_the_same_step(db):
    build(db, concept="shifted", n=1200)
    run = retrain_now(db, auto_promote=True)
    assert run.statistics["promoted"] is True and "promoted to production" in run.message
    assert ControlRoom(db).model(MODEL).production_version() == 2
    assert mstore_version(db, 1).status == "archived"
    promo = ControlRoom(db).audit(MODEL).query("action == 'promote'").iloc[0]
    assert promo.actor == "tester" and promo.run_id == run.id and promo.to_version == 2


def test_too_few_rows_aborts_and_registers_nothing(db):
    build(db, n=150)
    before = artifact_files(db)
    run = retrain_now(db)
    assert run.status == "failed"
    assert "Only 150 labelled rows" in run.error and "--window-days" in run.error
    assert [v.version for v in ControlRoom(db).model(MODEL).versions()] == [1]
    assert artifact_files(db) == before


def test_window_limits_rows_and_one_class_window_aborts(db):
    build(db, n=1000, days=20)
    run = retrain_now(db, window_days=10, min_rows=100)
    assert run.status == "succeeded"
    assert 450 <= run.statistics["rows"] <= 550  # half of 20 days

    frame = labelled_frame(400, 5)
    frame["default"] = 0
    end = utcnow() - timedelta(days=25)  # a day before the first logged rows
    append_log(db, frame, days=1, end=end, prefix="mono")
    run = retrain_now(db, window_days=1, end=end.isoformat(), min_rows=50)
    assert run.status == "failed" and "one class only" in run.error


def test_tampered_champion_stops_the_retrain(db):
    build(db, n=600)
    path = (artifacts_dir(db) / mstore_version(db, 1).artifact_path)
    path.write_bytes(path.read_bytes() + b"tampered")
    run = retrain_now(db)
    assert run.status == "failed" and "Refusing to load" in run.error and "sha256" in run.error
    assert len(ControlRoom(db).model(MODEL).versions()) == 1


def test_hyperparameter_overrides_are_recorded_and_unknown_ones_fail(db):
    build(db, n=800)
    run = retrain_now(db, hyperparameters={"max_iter": 30, "learning_rate": 0.2})
    assert run.status == "succeeded"
    hp = mstore_version(db, 2).hyperparameters
    assert hp["max_iter"] == 30 and hp["learning_rate"] == 0.2
    run = retrain_now(db, hyperparameters={"max_iterations": 3})
    assert run.status == "failed" and "Unknown hyperparameter(s) max_iterations" in run.error
    with pytest.raises(InvalidInputError, match="Unknown retrain parameter"):
        retrain_now(db, windowdays=3)


def test_time_split_keeps_order():
    import pandas as pd

    df = pd.DataFrame({"a": np.arange(10)})
    tr, ho = training.time_split(df)
    assert list(ho["a"]) == [8, 9] and list(tr["a"]) == list(range(8))
    tr, ho = training.time_split(df.iloc[:2])
    assert len(tr) == 1 and len(ho) == 1


def test_progress_is_written_after_a_delay_and_a_superseded_or_final_message_is_not(db, monkeypatch):
    """The job's progress writer: a message stands for PROGRESS_DELAY_S before it is written; a newer one
    replaces it; halt() drops what is not written yet (the job's final transaction writes the outcome)."""
    import time

    from mlops_core.lifecycle import retrain

    build(db, n=300)
    run_id = ControlRoom(db, identity=Identity("t", 'admin')).model(MODEL).retrain(spawn=False)
    monkeypatch.setattr(retrain, "PROGRESS_DELAY_S", 0.2)
    writer = retrain._RunWriter(Store(db), run_id)
    writer.start()

    def message():
        return ControlRoom(db).run(run_id).message

    before = message()
    writer.post(0.3, "first")
    time.sleep(0.05)
    assert message() == before  # not yet: the delay has not passed
    time.sleep(0.5)
    assert message() == "first" and ControlRoom(db).run(run_id).progress == pytest.approx(0.3)
    writer.post(0.4, "second")
    writer.post(0.5, "third")  # replaces "second" before it was written
    time.sleep(0.6)
    assert message() == "third"
    writer.post(0.6, "never")
    writer.halt()  # stops before the delay: the message is dropped
    time.sleep(0.4)
    assert message() == "third"
    writer.join(timeout=5)
    assert not writer.is_alive()

"""Anomalies in pipeline runs: the robust rule, the check when a run finishes, alerts, and the clients."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from _ops_support import MODEL, build, retrain_now
from conftest import make_training_frame
from scipy import stats

from mlops_core import ControlRoom, Identity
from mlops_core.cli import main
from mlops_core.entities import RunInfo
from mlops_core.monitoring import run_anomalies as rule
from mlops_core.monitoring import run_checks
from mlops_core.store import Store
from mlops_core.store import runs as runstore
from ui import charts

T0 = datetime(2026, 3, 1, 8, 0)


def run_info(i: int, *, duration: float, statistics: dict, kind: str = "ingest", params: dict | None = None,
             model: str = "m") -> RunInfo:
    return RunInfo(id=f"r{i}", model=model, kind=kind, trigger="api", actor="tester", status="succeeded",
                   params={"kind": "predictions"} if params is None else params, statistics=statistics,
                   duration_s=duration, created_at=T0 + timedelta(hours=i))


def record(store: Store, *, duration: float, statistics: dict, at: datetime, kind: str = "ingest",
           params: dict | None = None, model: str = "credit") -> tuple[str, list]:
    """Record a succeeded run through the store and check it as ingest, retrain and monitor do."""
    with store.transaction() as con:
        run_id = runstore.insert_run(con, model=model, kind=kind, trigger="api", actor="tester", status="running",
                                     params={"kind": "predictions"} if params is None else params, created_at=at)
        runstore.update_run(con, run_id, status="succeeded", progress=1.0, statistics=statistics, started_at=at,
                            finished_at=at + timedelta(seconds=duration), duration_s=duration)
        return run_id, run_checks.check_finished_run(con, run_id)


# --- the rule (pure) -----------------------------------------------------------------------------------

def test_robust_z_is_the_modified_z_score_with_scipys_normal_mad():
    rng = np.random.default_rng(3)
    history = rng.normal(10.0, 2.0, (40, 3))
    current = np.array([10.5, 25.0, -3.0])
    out = rule.assess(history, current, floor=np.zeros(3))
    expected = (current - np.median(history, axis=0)) / stats.median_abs_deviation(history, axis=0, scale="normal")
    np.testing.assert_allclose(out.z, expected, rtol=1e-12)
    assert out.flagged.tolist() == [False, True, True]
    assert out.history.tolist() == [40, 40, 40]


def test_zero_mad_falls_back_to_the_mean_deviation_then_to_the_floor():
    # more than half the runs share one value: MAD is 0, the mean absolute deviation is not
    h = np.array([[100.0]] * 15 + [[110.0]] * 5 + [[90.0]] * 5)
    out = rule.assess(h, np.array([112.0]), floor=np.array([0.0]))
    mean_ad = np.mean(np.abs(h - 100.0))
    assert out.spread[0] == pytest.approx(np.sqrt(np.pi / 2) * mean_ad)
    assert out.z[0] == pytest.approx(12.0 / (np.sqrt(np.pi / 2) * mean_ad))
    # never varied: the floor is the spread, so only a change beyond threshold x floor is flagged
    flat = np.full((25, 1), 0.0)
    assert not rule.assess(flat, np.array([0.03]), floor=np.array([0.01])).flagged[0]
    assert rule.assess(flat, np.array([0.04]), floor=np.array([0.01])).flagged[0]


def test_a_tiny_batchs_rate_is_judged_by_its_binomial_error():
    rng = np.random.default_rng(5)
    history = (rng.binomial(5000, 0.3, 30) / 5000)[:, None]  # big batches: spread about 0.0065
    big = rule.assess(history, np.array([0.4]), floor=np.array([0.01]), counts=np.array([5000.0]),
                      rate=np.array([True]))
    tiny = rule.assess(history, np.array([0.4]), floor=np.array([0.01]), counts=np.array([10.0]),
                       rate=np.array([True]))
    assert big.flagged[0] and not tiny.flagged[0]
    assert tiny.spread[0] == pytest.approx(np.sqrt(0.3 * 0.7 / 10), rel=0.05)


def test_too_little_history_flags_nothing():
    normal = [run_info(i, duration=20.0 + i % 3, statistics={"rows": 1000}) for i in range(rule.MIN_HISTORY)]
    extreme = run_info(99, duration=500.0, statistics={"rows": 3})
    assert rule.check(extreme, normal[:-1][::-1]) == []  # one run short
    found = rule.check(extreme, normal[::-1])
    assert {a.statistic for a in found} == {"duration_s", "rows"}
    assert all(a.history == rule.MIN_HISTORY for a in found)


def test_too_little_history_flags_nothing_when_recorded(registered_credit_db):
    store = Store(registered_credit_db)
    for i in range(rule.MIN_HISTORY - 1):
        _, found = record(store, duration=20.0, statistics={"rows": 1000}, at=T0 + timedelta(hours=i))
        assert found == []
    _, found = record(store, duration=400.0, statistics={"rows": 2}, at=T0 + timedelta(days=2))
    assert found == []  # 19 earlier runs: below the minimum history
    _, found = record(store, duration=400.0, statistics={"rows": 2}, at=T0 + timedelta(days=3))
    assert {a.statistic for a in found} == {"duration_s", "rows"}  # 20 earlier runs (one of them unusual)


def test_series_keep_label_batches_prediction_batches_and_policy_evaluations_apart():
    def kind_of(kind, params):
        return rule.series(run_info(0, duration=1.0, statistics={}, kind=kind, params=params))

    assert kind_of("ingest", {"kind": "labels"}) == "ingest:labels"
    assert kind_of("ingest", {"kind": "predictions"}) == "ingest:predictions"
    assert kind_of("monitor", {"policy_evaluation": True}) == "monitor:policy"
    assert kind_of("monitor", {"window": "day"}) == "monitor"
    assert kind_of("retrain", {"kind": "x"}) == "retrain"


def test_observations_name_the_watched_statistics():
    r = run_info(0, duration=3.0, kind="retrain", params={}, statistics={
        "rows": 900, "train_rows": 720, "holdout_rows": 180, "predictions": 1000, "label_coverage": 0.9,
        "positive_rate": 0.3, "null_rates": {"age": 0.0}, "training_metrics": {"accuracy": 0.9},
        "candidate_metrics": {"accuracy": 0.8, "rmse": 2.0, "made_up": 1.0}, "status": "candidate",
        "champion_version": 1, "promoted": False})
    assert rule.observations(r) == {
        "duration_s": 3.0, "rows": 900, "train_rows": 720, "holdout_rows": 180, "predictions": 1000,
        "label_coverage": 0.9, "positive_rate": 0.3, "null_rate:age": 0.0, "training:accuracy": 0.9,
        "holdout:accuracy": 0.8, "holdout:rmse": 2.0}


# --- 200 simulated normal runs ---------------------------------------------------------------------------

def simulated_runs(n: int, seed: int) -> list[RunInfo]:
    """Retrain-like runs in a steady state: every statistic varies as it does when nothing is wrong."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        predictions = int(rng.normal(20_000, 1_000))
        rows = rng.binomial(predictions, 0.8)
        holdout = rows // 5
        out.append(run_info(i, kind="retrain", params={}, duration=float(rng.lognormal(np.log(45.0), 0.25)),
                            statistics={
            "rows": rows, "train_rows": rows - holdout, "holdout_rows": holdout, "predictions": predictions,
            "label_coverage": rows / predictions, "positive_rate": rng.binomial(rows, 0.3) / rows,
            "null_rates": {"income": rng.binomial(rows, 0.02) / rows, "age": 0.0},
            "training_metrics": {"accuracy": rng.binomial(rows - holdout, 0.88) / (rows - holdout)},
            "candidate_metrics": {"accuracy": rng.binomial(holdout, 0.85) / holdout,
                                  "log_loss": float(rng.lognormal(np.log(0.35), 0.03)),
                                  "r2": float(rng.normal(0.6, 0.01))}}))
    return out


def test_false_flag_rate_on_200_normal_runs_is_at_most_one_percent():
    runs = simulated_runs(200, seed=20260301)
    flags: dict[str, int] = {name: 0 for name in rule.observations(runs[0])}
    checked = runs_flagged = 0
    for i, r in enumerate(runs):
        found = rule.check(r, runs[:i][::-1])
        checked += i >= rule.MIN_HISTORY
        runs_flagged += bool(found)
        for a in found:
            flags[a.statistic] += 1
    assert checked == 200 - rule.MIN_HISTORY
    rates = {name: count / checked for name, count in flags.items()}
    print(f"false flags per statistic over {checked} checked runs: {rates}; runs with any flag: "
          f"{runs_flagged / checked:.2%}")
    assert max(rates.values()) <= 0.01, rates
    assert runs_flagged / checked <= 0.01


# --- injected anomalies ----------------------------------------------------------------------------------

def test_a_five_times_slower_run_is_flagged_and_alerted(registered_credit_db):
    store = Store(registered_credit_db)
    rng = np.random.default_rng(11)
    durations = rng.lognormal(np.log(30.0), 0.2, 25)
    for i, d in enumerate(durations):
        record(store, duration=float(d), statistics={"rows": 5000, "rows_written": 5000},
               at=T0 + timedelta(hours=i))
    slow = 5 * float(np.median(durations))
    run_id, found = record(store, duration=slow, statistics={"rows": 5000, "rows_written": 5000},
                           at=T0 + timedelta(days=2))
    assert [a.statistic for a in found] == ["duration_s"]
    a = found[0]
    assert a.run_id == run_id and a.series == "ingest:predictions" and a.robust_z > rule.THRESHOLD
    assert a.value == pytest.approx(slow) and a.median == pytest.approx(np.median(durations), rel=0.05)
    assert "duration" in a.message and "the median" in a.message
    alerts = ControlRoom(registered_credit_db).model("credit").alerts(open_only=True)
    mine = alerts[alerts["kind"] == run_checks.ALERT_KIND]
    assert len(mine) == 1 and int(mine["id"].iloc[0]) == a.alert_id
    assert json.loads(mine["details"].iloc[0])["run_id"] == run_id and "duration" in mine["message"].iloc[0]


def batch(n: int = 200, seed: int = 1, prefix: str = "r") -> pd.DataFrame:
    tr = make_training_frame(n, seed=seed)
    df = tr.drop(columns=["default"])
    df.insert(0, "request_id", [f"{prefix}{i:05d}" for i in range(n)])
    df.insert(1, "timestamp", pd.Timestamp("2026-03-01 08:00") + pd.Timedelta(hours=seed)
              + pd.to_timedelta(np.arange(n), unit="s"))
    df["prediction"] = tr["default"]
    df["score"] = np.linspace(0.01, 0.99, n).round(4)
    return df


@pytest.fixture
def ingested(registered_credit_db):
    """The credit model after MIN_HISTORY ordinary prediction batches of 200 rows, ingested for real."""
    model = ControlRoom(registered_credit_db).model("credit")
    for i in range(rule.MIN_HISTORY):
        model.ingest(batch(seed=i + 1, prefix=f"b{i}-"))
    return model


def test_ingest_records_positive_and_null_rates(ingested):
    run = ingested.latest_run("ingest")
    frame = make_training_frame(200, seed=rule.MIN_HISTORY)
    assert run.statistics["positive_rate"] == pytest.approx(frame["default"].mean())
    assert run.statistics["null_rates"] == {"age": 0.0, "income": 0.0, "region": 0.0}
    labels = pd.DataFrame({"request_id": [f"b0-{i:05d}" for i in range(4)], "label": [1, 1, 0, 1]})
    result = ingested.ingest(labels, "labels")
    run = ingested.latest_run("ingest")
    assert run.id == result.run_id and run.statistics["positive_rate"] == 0.75
    assert "null_rates" not in run.statistics  # a label batch holds no features


def test_a_row_count_collapse_through_ingest_is_flagged(ingested):
    result = ingested.ingest(batch(n=8, seed=90, prefix="small-"))
    flagged = {a.statistic: a for a in result.run_anomalies}
    assert {"rows", "rows_written"} <= set(flagged)
    assert flagged["rows"].value == 8 and flagged["rows"].median == pytest.approx(200)
    assert flagged["rows"].robust_z < -rule.THRESHOLD
    assert "positive_rate" not in flagged  # 8 rows say little about a rate
    stored = ControlRoom(ingested.room.location).run_anomalies("credit")
    assert {a.statistic for a in stored if a.run_id == result.run_id} == set(flagged)


def test_a_jump_in_positive_rate_through_ingest_is_flagged(ingested):
    jump = batch(seed=91, prefix="pos-")
    jump["prediction"] = 1
    result = ingested.ingest(jump)
    flagged = {a.statistic: a for a in result.run_anomalies}
    assert "positive_rate" in flagged and "rows" not in flagged
    a = flagged["positive_rate"]
    assert a.value == 1.0 and a.robust_z > rule.THRESHOLD and "positive rate 100.0%" in a.message
    nulls = batch(seed=92, prefix="nul-")
    nulls.loc[:79, "income"] = np.nan
    result = ingested.ingest(nulls)
    assert "null_rate:income" in {a.statistic for a in result.run_anomalies}


def test_retrain_records_data_statistics_and_a_collapsed_window_is_flagged(db):
    build(db, concept="same", n=1200)
    first = retrain_now(db)
    s = first.statistics
    assert first.status == "succeeded", first.error
    assert s["predictions"] == 1200 and s["label_coverage"] == pytest.approx(s["rows"] / 1200)
    assert 0.0 < s["positive_rate"] < 1.0 and set(s["null_rates"]) == {"age", "income", "region"}
    # an earlier history of retrains on ten times the data, recorded through the store
    store = Store(db)
    bigger = {**s, **{k: 10 * s[k] for k in ("rows", "train_rows", "holdout_rows", "predictions")}}
    for i in range(rule.MIN_HISTORY):
        record(store, duration=first.duration_s, statistics=bigger, kind="retrain", params={}, model=MODEL,
               at=first.created_at - timedelta(days=30 - i))
    second = retrain_now(db)
    assert second.status == "succeeded", second.error
    stored = {a.statistic for a in ControlRoom(db).run_anomalies(MODEL) if a.run_id == second.id}
    assert {"rows", "train_rows", "holdout_rows", "predictions"} <= stored


def test_findings_update_one_incident_and_reopen_it_after_it_was_resolved(registered_credit_db):
    store = Store(registered_credit_db)
    for i in range(rule.MIN_HISTORY):
        record(store, duration=30.0 + i % 4, statistics={}, at=T0 + timedelta(hours=i))
    _, first = record(store, duration=300.0, statistics={}, at=T0 + timedelta(days=2))
    _, second = record(store, duration=320.0, statistics={}, at=T0 + timedelta(days=3))
    assert first[0].alert_id == second[0].alert_id  # one incident per (model, series, statistic)
    room = ControlRoom(registered_credit_db, identity=Identity("ops", "operator"))
    incident = room.alerts().set_index("id").loc[first[0].alert_id]
    assert (incident["windows"], incident["status"]) == (2, "open")
    assert room.acknowledge(first[0].alert_id)
    _, third = record(store, duration=330.0, statistics={}, at=T0 + timedelta(days=4))
    assert third[0].alert_id == first[0].alert_id  # acknowledged: someone is on it, it keeps counting
    assert room.resolve(first[0].alert_id)
    _, fourth = record(store, duration=340.0, statistics={}, at=T0 + timedelta(days=5))
    assert fourth[0].alert_id == first[0].alert_id  # resolved, then unusual again: reopened, not duplicated
    incident = room.alerts().set_index("id").loc[first[0].alert_id]
    assert (incident["windows"], incident["status"], incident["reopened"]) == (4, "open", 1)
    kinds = room.alerts()["kind"].tolist()
    assert kinds.count(run_checks.ALERT_KIND) == 1


# --- the clients -----------------------------------------------------------------------------------------

def test_runs_json_lists_the_anomaly_and_the_alert_is_of_kind_run_anomaly(registered_credit_db, capsys):
    store = Store(registered_credit_db)
    for i in range(rule.MIN_HISTORY):
        record(store, duration=12.0 + (i % 5) / 2, statistics={"rows": 1000}, at=T0 + timedelta(hours=i))
    run_id, _ = record(store, duration=60.0, statistics={"rows": 1000}, at=T0 + timedelta(days=2))
    db = str(registered_credit_db)
    assert main(["runs", "--model", "credit", "--json", "--limit", "100", "--db", db]) == 0
    runs = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    unusual = runs[run_id]["anomalies"]
    assert [a["statistic"] for a in unusual] == ["duration_s"]
    assert unusual[0]["value"] == 60.0 and unusual[0]["series"] == "ingest:predictions"
    assert all(r["anomalies"] == [] for rid, r in runs.items() if rid != run_id)
    assert main(["alerts", "--model", "credit", "--json", "--db", db]) == 0
    alerts = json.loads(capsys.readouterr().out)
    assert [a["kind"] for a in alerts] == ["run_anomaly"]
    assert alerts[0]["id"] == unusual[0]["alert_id"] and json.loads(alerts[0]["details"])["run_id"] == run_id
    assert main(["runs", "--model", "credit", "--db", db]) == 0
    assert "unusual: duration" in capsys.readouterr().out


def test_the_runs_chart_marks_unusual_runs_with_what_was_unusual(registered_credit_db):
    store = Store(registered_credit_db)
    for i in range(rule.MIN_HISTORY):
        record(store, duration=12.0 + (i % 5) / 2, statistics={"rows": 1000}, at=T0 + timedelta(hours=i))
    run_id, _ = record(store, duration=60.0, statistics={"rows": 10}, at=T0 + timedelta(days=2))
    fig = charts.run_durations(ControlRoom(registered_credit_db).runs("credit"))
    marked = [t for t in fig.data if t.name == "unusual run"]
    assert len(marked) == 1 and list(marked[0].y) == [60.0]
    assert run_id in marked[0].text[0]
    assert "duration 60 s" in marked[0].customdata[0] and "rows 10 " in marked[0].customdata[0]


def test_monitor_records_traffic_and_is_checked_against_earlier_monitor_runs(db):
    build(db, concept="same", n=1200, days=20)
    room = ControlRoom(db, identity=Identity("ops", "operator"))
    first = room.model(MODEL).monitor()
    run = room.model(MODEL).latest_run("monitor")
    assert run.id == first.run_id and first.run_anomalies == []
    s = run.statistics
    assert s["predictions"] == first.predictions and 0 < s["predictions"] <= 1200
    assert s["label_coverage"] == pytest.approx(1.0) and s["positive_rate"] == 0.0  # every logged prediction is "0"
    store = Store(db)
    for i in range(rule.MIN_HISTORY):  # earlier monitor runs that saw ten times the traffic
        record(store, duration=run.duration_s, kind="monitor", params={"window": "day"}, model=MODEL,
               statistics={**s, "predictions": 10 * s["predictions"]}, at=run.created_at - timedelta(days=30 - i))
    second = room.model(MODEL).monitor()
    assert "predictions" in {a.statistic for a in second.run_anomalies}
    assert all(a.series == "monitor" for a in second.run_anomalies)

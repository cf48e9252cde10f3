"""The demo database: built through the public API, reproducible, realistic (drift, concept shift, late labels),
and with a history of real runs (ingest, retrain, monitor) dated in simulated time.

The story's outcomes come from real numbers (a retrain's gate, a policy's triggers), so the tests check
that the database agrees with what really happened rather than assuming it: the steps that follow a
passed gate are checked when the gate passed, and the other way round.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from conftest import log_sql

from mlops_core import ControlRoom
from mlops_core.cli import main
from mlops_core.demo import build as demo
from mlops_core.demo import simulate, traffic
from mlops_core.demo.timeline import (
    AB_START_DAY,
    AB_START_HOUR,
    DRIFT_DAY,
    PROMOTE_HOUR,
    SHIFT_DAY,
    V2_PROMOTE_DAY,
    Timeline,
)
from mlops_core.store import connect

END = datetime(2026, 5, 1, 12, 0)
DAYS, DAILY = 40, 600
TL = Timeline.ending(END, DAYS)
#: The simulated clock runs on at the speed of real time from each moment the build sets: rows carry the
#: milliseconds the build really took after it.
SLACK = timedelta(minutes=5)


def near(when, moment) -> bool:
    """Whether a time written by the build is the scheduled ``moment`` (up to the time the build took there)."""
    return pd.Timedelta(0) <= pd.Timestamp(when) - pd.Timestamp(moment) < pd.Timedelta(SLACK)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "mlops.duckdb"
    summary = demo.build_demo(path, days=DAYS, daily=DAILY, seed=0, end=END)
    return path, summary


def _query(path, sql, params=None) -> pd.DataFrame:
    return log_sql(path, sql, params, frame=True)


def _fingerprint(path) -> dict:
    """Hashes of the logs and labels (ordered by request id, without the random batch ids) and the versions."""
    out = {}
    for table in ("log_credit_default", "labels_credit_default", "log_delivery_time", "labels_delivery_time"):
        df = _query(path, f"SELECT * EXCLUDE (batch_id) FROM {table} ORDER BY request_id")
        out[table] = (len(df), hashlib.sha256(df.to_csv(index=False).encode()).hexdigest())
    versions = _query(path, "SELECT model, version, status, hyperparameters, train_start, train_end, train_rows, "
                            "training_metrics, holdout_metrics, gate FROM model_versions ORDER BY model, version")
    out["versions"] = versions.to_dict(orient="records")
    return out


def _credit(path):
    return ControlRoom(path).model("credit_default")


def _runs(path) -> pd.DataFrame:
    return _query(path, "SELECT * FROM runs ORDER BY created_at")


# --- what was built ---------------------------------------------------------------------------------

def test_summary_and_window(demo_db):
    path, s = demo_db
    assert s.start == TL.start and s.end == END
    credit = dict(s.versions["credit_default"])
    assert credit[1] in ("production", "archived") and s.versions["delivery_time"] == [(1, "production")]
    assert abs(s.predictions["credit_default"] - DAYS * DAILY) < 0.05 * DAYS * DAILY
    assert abs(s.predictions["delivery_time"] - DAYS * DAILY // 2) < 0.05 * DAYS * DAILY
    span = _query(path, "SELECT min(ts) AS lo, max(ts) AS hi, count(DISTINCT request_id) AS ids, count(*) AS n "
                        "FROM log_credit_default").iloc[0]
    assert span.lo >= pd.Timestamp(TL.start) and span.hi <= pd.Timestamp(END)
    assert span.hi >= pd.Timestamp(END) - pd.Timedelta(hours=3)  # traffic up to the end
    assert span.ids == span.n  # request ids are unique
    text = "\n".join(s.lines())
    assert "credit_default" in text and "v2" in text and "Built in" in text
    assert s.story and all(line.startswith("day ") for line in s.story)


def test_same_seed_and_end_rebuild_identically_via_cli_with_force(demo_db, tmp_path, capsys):
    path, _ = demo_db
    other = tmp_path / "again.duckdb"
    with connect(other, create=True):  # an existing database must not be overwritten silently
        pass
    args = ["demo", "--db", str(other), "--days", str(DAYS), "--daily", str(DAILY), "--seed", "0",
            "--end", END.isoformat()]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and "Traceback" not in err
    assert _query(other, "SELECT count(*) AS n FROM models").n[0] == 0  # untouched
    assert main([*args, "--force"]) == 0
    assert "Built in" in capsys.readouterr().out
    assert _fingerprint(other) == _fingerprint(path)


def test_different_seeds_give_different_traffic():
    a = traffic.day_traffic("credit_default", 0, 5, 500, TL)
    b = traffic.day_traffic("credit_default", 1, 5, 500, TL)
    again = traffic.day_traffic("credit_default", 0, 5, 500, TL)
    assert not a.X.equals(b.X) and not np.array_equal(a.ts, b.ts)
    assert a.X.equals(again.X) and np.array_equal(a.ts, again.ts) and np.array_equal(a.y, again.y)


def test_covariate_drift_in_income_utilization_and_purpose(demo_db):
    path, _ = demo_db
    d0, late = TL.day(DRIFT_DAY), TL.day(60)
    df = _query(path, """
        SELECT CASE WHEN ts < ? THEN 'before' WHEN ts >= ? THEN 'late' END AS period,
               avg(income) AS income, avg(utilization) AS utilization,
               avg(CASE WHEN purpose IN ('debt_consolidation', 'medical') THEN 1.0 ELSE 0.0 END) AS consolidation
        FROM log_credit_default GROUP BY 1""", [TL.at(d0), TL.at(late)]).set_index("period")
    assert df.loc["late", "income"] < 0.93 * df.loc["before", "income"]
    assert df.loc["late", "utilization"] > df.loc["before", "utilization"] + 0.05
    assert df.loc["late", "consolidation"] > df.loc["before", "consolidation"] + 0.05


def test_concept_shift_degrades_accuracy_of_the_logged_predictions(demo_db):
    path, _ = demo_db
    shift = TL.at(TL.day(SHIFT_DAY))
    df = _query(path, """
        SELECT CASE WHEN p.ts < ? THEN 'before' ELSE 'after' END AS period,
               avg(CASE WHEN p.prediction = l.label THEN 1.0 ELSE 0.0 END) AS accuracy,
               avg(CAST(l.label AS DOUBLE)) AS default_rate, count(*) AS n
        FROM log_credit_default p JOIN labels_credit_default l USING (request_id)
        WHERE p.ts >= ? GROUP BY 1""", [shift, shift - timedelta(days=8)]).set_index("period")
    assert df.loc["after", "n"] > 200
    assert df.loc["after", "accuracy"] < df.loc["before", "accuracy"] - 0.05
    assert df.loc["after", "default_rate"] > df.loc["before", "default_rate"] + 0.05


def test_labels_arrive_1_to_14_days_late_and_10_percent_never(demo_db):
    path, _ = demo_db
    d = _query(path, """
        SELECT min(l.label_ts - p.ts) AS lo, max(l.label_ts - p.ts) AS hi, max(l.label_ts) AS last
        FROM log_credit_default p JOIN labels_credit_default l USING (request_id)""").iloc[0]
    assert d.lo >= pd.Timedelta(days=1) and d.hi <= pd.Timedelta(days=14)
    assert d["last"] <= pd.Timestamp(END)
    old = _query(path, """
        SELECT avg(CASE WHEN l.request_id IS NULL THEN 1.0 ELSE 0.0 END) AS missing
        FROM log_credit_default p LEFT JOIN labels_credit_default l USING (request_id)
        WHERE p.ts < ?""", [END - timedelta(days=15)]).missing[0]
    assert 0.07 < old < 0.13
    last_day = _query(path, """
        SELECT count(l.request_id) AS labelled FROM log_credit_default p
        LEFT JOIN labels_credit_default l USING (request_id) WHERE p.ts >= ?""", [END - timedelta(hours=23)])
    assert last_day.labelled[0] == 0


# --- through the public API, in simulated time -------------------------------------------------------------

def test_one_real_ingest_per_model_and_day_and_per_label_arrival_day(demo_db):
    path, _ = demo_db
    batches = _query(path, "SELECT * FROM ingest_batches ORDER BY ingested_at")
    for model in ("credit_default", "delivery_time"):
        mine = batches[batches.model == model]
        preds, labels = mine[mine.kind == "predictions"], mine[mine.kind == "labels"]
        # one prediction batch per day, ingested the next morning (the last one at the end), holding that day
        log = _query(path, f"SELECT batch_id, min(ts) AS lo, max(ts) AS hi, count(*) AS n FROM log_{model} "
                           "GROUP BY batch_id").set_index("batch_id")
        assert len(preds) == DAYS and set(log.index) == set(preds.batch_id)
        for b in preds.itertuples():
            day = log.loc[b.batch_id]
            assert day.lo.normalize() == day.hi.normalize() and b.rows == day.n
            assert near(b.ingested_at, min(day.lo.normalize() + timedelta(days=1, minutes=15), pd.Timestamp(END)))
        # labels in batches by the day they arrived, each ingested once that day was over
        lab = _query(path, f"SELECT batch_id, min(label_ts) AS lo, max(label_ts) AS hi, count(*) AS n "
                           f"FROM labels_{model} GROUP BY batch_id").set_index("batch_id")
        assert set(lab.index) == set(labels.batch_id)
        for b in labels.itertuples():
            part = lab.loc[b.batch_id]
            assert part.lo.normalize() == part.hi.normalize() and b.rows == part.n
            assert part.hi < b.ingested_at and b.ingested_at - part.lo.normalize() <= timedelta(days=1, minutes=25)
    # every batch is a real ingest: one run and one validation report each, dated when it was ingested
    runs = _runs(path)
    ingests = runs[runs.kind == "ingest"]
    assert len(ingests) == len(batches) and set(ingests.actor) == {"ingest-cron"}
    reports = _query(path, "SELECT batch_id, checked_at FROM validation_reports WHERE batch_id IS NOT NULL")
    merged = reports.merge(batches, on="batch_id")
    assert len(merged) == len(batches) and (merged.checked_at == merged.ingested_at).all()


def test_logged_scores_are_the_real_outputs_of_the_serving_version(demo_db):
    path, _ = demo_db
    served = _query(path, "SELECT DISTINCT version FROM log_credit_default ORDER BY 1").version.tolist()
    assert served[0] == 1
    for version in served:
        rows = _query(path, "SELECT * FROM log_credit_default WHERE version = ? ORDER BY request_id LIMIT 300",
                      [version])
        pipe = _credit(path).load(version)
        X = rows[list(simulate.CREDIT_FEATURES)]
        proba = pipe.predict_proba(X)[:, list(map(str, pipe.classes_)).index("1")]
        np.testing.assert_allclose(rows["score"].to_numpy(), proba, rtol=1e-9)
        assert (rows["prediction"].to_numpy() == pipe.predict(X).astype(str)).all()
    rows = _query(path, "SELECT * FROM log_delivery_time ORDER BY request_id LIMIT 300")
    pipe = ControlRoom(path).model("delivery_time").load(1)
    np.testing.assert_allclose(rows["prediction"], pipe.predict(rows[list(simulate.DELIVERY_FEATURES)]), rtol=1e-9)


def test_registered_with_the_demo_hyperparameters_and_the_policy_gate(demo_db):
    path, _ = demo_db
    credit = _credit(path)
    v1 = credit.version(1)
    for name, value in demo.CREDIT_HYPERPARAMETERS.items():
        assert v1.hyperparameters[name] == value
    assert ControlRoom(path).model("delivery_time").version(1).hyperparameters["max_iter"] == 40
    policy = credit.policy()
    assert [f"{r['metric']}" for r in policy.gate] == ["roc_auc", "accuracy"] and policy.window_days == 7


def test_retrains_see_only_the_labels_that_had_arrived(demo_db):
    """Each retrain trained and held out exactly the labelled predictions of its window whose labels were ingested
    before it ran (labels arrive late, and each arrival day is ingested once it is over)."""
    path, _ = demo_db
    runs = _runs(path)
    done = runs[(runs.kind == "retrain") & (runs.status == "succeeded")]
    assert len(done) >= 2
    for run in done.itertuples():
        stats = json.loads(run.statistics)
        n = _query(path, """
            SELECT count(*) AS n FROM log_credit_default p JOIN labels_credit_default l USING (request_id)
            JOIN ingest_batches b ON b.batch_id = l.batch_id
            WHERE p.ts >= ? AND p.ts <= ? AND b.ingested_at <= ?""",
                   [stats["window_start"], stats["window_end"], run.started_at]).n[0]
        assert stats["rows"] == n and stats["train_rows"] + stats["holdout_rows"] == n
        assert json.loads(run.metrics).get("roc_auc")


def test_v2_a_manual_retrain_then_ab_test_and_promotion_when_its_gate_passed(demo_db):
    path, _ = demo_db
    credit = _credit(path)
    v2 = credit.version(2)
    run = _runs(path).set_index("id").loc[v2.run_id]
    assert (run.kind, run.trigger, run.actor) == ("retrain", "manual", "maria.schmidt")
    window = TL.v2_window()
    assert v2.train_start >= TL.at(window.start) and v2.train_end < TL.at(window.stop)
    assert v2.gate["passed"] == (v2.status != "rejected")
    dep = credit.deployment_history()
    prod, chal = dep[dep.alias == "production"], dep[dep.alias == "challenger"]
    audit = ControlRoom(path).audit("credit_default")
    v = _query(path, "SELECT version, variant, min(ts) AS lo, max(ts) AS hi, count(*) AS n FROM log_credit_default "
                     "GROUP BY ALL ORDER BY version, variant")
    by = {(r.version, r.variant if isinstance(r.variant, str) else None): r for r in v.itertuples()}
    if not v2.gate["passed"]:  # v1 keeps serving: no A/B test, no promotion
        assert prod.version.tolist()[:1] == [1] and chal.empty
        assert not [k for k in by if k[1] is not None]
        return
    promote_at = pd.Timestamp(TL.at(TL.day(V2_PROMOTE_DAY), PROMOTE_HOUR))
    ab_start = pd.Timestamp(TL.at(TL.day(AB_START_DAY), AB_START_HOUR))
    assert prod.version.tolist()[:2] == [1, 2] and near(prod.started_at.iloc[1], promote_at)
    assert prod.ended_at.iloc[0] == prod.started_at.iloc[1] and "ROC AUC" in prod.reason.iloc[1]
    # the challenger window: started by a person, ended by the promotion, in the same transaction
    assert chal.version.tolist() == [2] and near(chal.started_at.iloc[0], ab_start)
    assert chal.ended_at.iloc[0] == prod.started_at.iloc[1]
    starts = audit[audit.action == "challenger_start"]
    assert len(starts) == 1 and starts.iloc[0].actor == "maria.schmidt" and '"share": 0.2' in starts.iloc[0].details
    promos = audit[audit.action == "promote"]
    assert promos.iloc[-1].from_version == 1 and promos.iloc[-1].to_version == 2
    assert promos.iloc[-1].occurred_at == prod.started_at.iloc[1] and promos.iloc[-1].actor == "maria.schmidt"
    # what the log says: v1 alone, then v1 and v2 side by side (variant set), then v2 alone
    assert {(1, None), (1, "champion"), (2, "challenger"), (2, None)} <= set(by)
    promoted, opened = prod.started_at.iloc[1], chal.started_at.iloc[0]
    assert by[(1, None)].hi < promoted and by[(2, None)].lo >= promoted
    assert by[(2, "challenger")].lo >= opened and by[(2, "challenger")].hi < promoted
    share = by[(2, "challenger")].n / (by[(2, "challenger")].n + by[(1, "champion")].n)
    assert 0.12 < share < 0.28


def test_the_failed_run_fails_for_a_real_reason(demo_db):
    path, _ = demo_db
    runs = _runs(path)
    failed = runs[runs.status == "failed"]
    assert len(failed) == 1
    run = failed.iloc[0]
    assert (run.kind, run.trigger, run.actor) == ("retrain", "schedule", "scheduler")
    assert "labelled rows" in run.error and "at least 200 are needed" in run.error
    assert not runs[runs.status.isin(["queued", "running"])].shape[0]


def test_the_automated_retrain_is_gated_by_the_policy(demo_db):
    path, _ = demo_db
    credit = _credit(path)
    runs = _runs(path)
    auto = runs[(runs.kind == "retrain") & (runs.actor == "automation")]
    evaluations = credit.evaluations()
    started = evaluations[evaluations.action == "retrain_started"]
    assert len(auto) == len(started)
    if auto.empty:  # the policy's triggers did not fire: nothing was retrained
        return
    run = auto.iloc[0]
    assert run.trigger == "automated" and run.status == "succeeded"
    params, stats = json.loads(run.params), json.loads(run.statistics)
    assert params["window_days"] == 7 and params["auto_promote"] is True
    assert pd.Timestamp(params["end"]) == pd.Timestamp(TL.at(TL.v3_day, 9.25))  # the evaluation's moment
    version = credit.version(stats["candidate_version"])
    assert version.gate["passed"] == stats["gate"]["passed"] == (version.status != "rejected")
    changes = ControlRoom(path).audit("credit_default").query("action == 'policy_change'")  # newest first
    assert set(changes.actor) == {"maria.schmidt"} and "mode: manual -> automated" in changes.reason.iloc[1]
    if version.gate["passed"]:  # automation promoted it in the transaction that registered it
        assert credit.production_version() == version.version
    else:  # production stays, and the team takes automation back to manual mode: a person decides
        assert version.status == "rejected" and credit.production_version() == stats["champion_version"]
        assert any("misses" in r or "not met" in r for r in version.gate["reasons"])
        assert "mode: automated -> manual" in changes.reason.iloc[0] and credit.policy().mode == "manual"
        evaluations = credit.evaluations()
        later = evaluations[evaluations.evaluated_at > changes.occurred_at.iloc[0]]
        assert set(later["mode"]) <= {"manual"} and "retrain_started" not in set(later.action)


def test_history_runs_and_audit_are_dated_in_simulated_time(demo_db):
    path, _ = demo_db
    runs = _runs(path)
    assert {"train", "retrain", "ingest", "monitor"} <= set(runs.kind)
    assert {"manual", "automated", "schedule", "api"} <= set(runs.trigger)
    assert (runs.created_at >= pd.Timestamp(TL.start - timedelta(days=1))).all()
    assert (runs.created_at <= pd.Timestamp(END + SLACK)).all()
    done = runs[runs.status == "succeeded"]
    assert (done.duration_s >= 0).all() and (done.finished_at >= done.started_at).all()
    audit = ControlRoom(path).audit()
    assert (audit.occurred_at <= pd.Timestamp(END + SLACK)).all()
    assert {"register", "register_version", "policy_change", "retrain_requested", "ingest_predictions",
            "ingest_labels"} <= set(audit.action)


def test_weekly_monitoring_alerts_and_policy_evaluations(demo_db):
    path, s = demo_db
    assert "alerts" in s.monitoring
    runs = _runs(path)
    scheduled = runs[(runs.kind == "monitor") & (runs.actor == "scheduler")]
    mondays = [TL.at(d, 6.0) for d in range(7, DAYS) if TL.at(d).weekday() == 0]
    assert sorted(set(scheduled.created_at)) == [pd.Timestamp(t) for t in mondays] + [pd.Timestamp(END)]
    counts = _query(path, "SELECT (SELECT count(*) FROM drift_results) AS drift, "
                          "(SELECT count(*) FROM alerts) AS alerts, "
                          "(SELECT max(raised_at) FROM alerts) AS last").iloc[0]
    assert counts.drift > 0 and counts.alerts > 0 and counts["last"] <= pd.Timestamp(END + SLACK)
    evaluations = _credit(path).evaluations()
    assert len(evaluations) >= len(mondays) and set(evaluations["mode"]) <= {"manual", "automated"}


# --- failures and files ----------------------------------------------------------------------------

def test_a_failed_build_leaves_no_database(tmp_path):
    target = tmp_path / "mlops.duckdb"
    (tmp_path / "mlops_artifacts").write_text("a file where the artifacts folder belongs")
    with pytest.raises(OSError):
        demo.build_demo(target, days=30, daily=100, end=END, force=True)
    assert not target.exists() and not (tmp_path / "mlops.duckdb.wal").exists()


def test_builds_into_a_folder_that_does_not_exist_yet(tmp_path):
    target = tmp_path / "new" / "folder" / "mlops.duckdb"
    s = demo.build_demo(target, days=30, daily=100, end=END)
    assert target.exists() and s.predictions["credit_default"] > 2500


def test_refuses_bad_sizes(tmp_path):
    from mlops_core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="--days"):
        demo.build_demo(tmp_path / "x.duckdb", days=3)
    with pytest.raises(InvalidInputError, match="--daily"):
        demo.build_demo(tmp_path / "x.duckdb", daily=10)
    assert not (tmp_path / "x.duckdb").exists()
    assert main(["demo", "--db", str(tmp_path / "y.duckdb"), "--end", "yesterday"]) == 2
    assert not (tmp_path / "y.duckdb").exists()


def test_shipped_training_files_are_the_generated_ones(tmp_path):
    written = demo.write_sample_files(tmp_path)
    for p in written:
        assert p.read_bytes() == (demo.SAMPLE_DIR / p.name).read_bytes()


def test_sample_batch_matches_the_model_schema(demo_db):
    path, _ = demo_db
    batch = pd.read_csv(demo.SAMPLE_DIR / "batches" / "credit_default_clean.csv")
    labels = pd.read_csv(demo.SAMPLE_DIR / "batches" / "credit_default_labels.csv")
    info = _credit(path).info
    assert list(batch.columns) == ["request_id", "timestamp", "version", "variant", *info.feature_names,
                                   "prediction", "score"]
    assert batch.request_id.str.startswith("batch-").all() and batch.request_id.is_unique
    for f in info.features:
        if f.kind == "categorical":
            assert set(batch[f.name]) <= set(f.categories)
    assert set(labels.request_id) < set(batch.request_id) and set(labels.label) <= {0, 1}
    assert (pd.to_datetime(labels.timestamp) > pd.to_datetime(batch.set_index("request_id").timestamp[labels.request_id]).values).all()


@pytest.mark.slow
def test_default_size_build_and_the_shipped_batch_scores(tmp_path):
    db = tmp_path / "mlops.duckdb"
    s = demo.build_demo(db, end=datetime(2026, 11, 26))
    assert s.days == 90 and abs(s.predictions["credit_default"] - 180_000) < 9_000
    assert s.versions["credit_default"] == [(1, "archived"), (2, "production"), (3, "rejected")]
    # the shipped sample batch carries exactly what this build's production model outputs
    for p in demo.write_sample_batches(db, tmp_path / "batches"):
        assert p.read_bytes() == (demo.SAMPLE_DIR / "batches" / p.name).read_bytes()

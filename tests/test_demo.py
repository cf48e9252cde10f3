"""The demo database: reproducible, realistic (drift, concept shift, late labels) and with its history."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from conftest import log_sql
from mlops_core.demo import build as demo, simulate
from mlops_core.lifecycle import registry
from mlops_core.cli import main
from mlops_core.store import connect
from mlops_core import ControlRoom, Identity

END = datetime(2026, 5, 1, 12, 0)
DAYS, DAILY = 40, 600


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "mlops.duckdb"
    summary = demo.build_demo(path, days=DAYS, daily=DAILY, seed=0, end=END)
    return path, summary


def _query(path, sql, params=None) -> pd.DataFrame:
    return log_sql(path, sql, params, frame=True)


def _fingerprint(path) -> dict:
    """Hashes of the log and label tables (ordered by request id) and the version metrics."""
    out = {}
    for table in ("log_credit_default", "labels_credit_default", "log_delivery_time", "labels_delivery_time"):
        df = _query(path, f"SELECT * FROM {table} ORDER BY request_id")
        out[table] = (len(df), hashlib.sha256(df.to_csv(index=False).encode()).hexdigest())
    versions = _query(path, "SELECT model, version, status, training_metrics, holdout_metrics, gate FROM model_versions "
                            "ORDER BY model, version")
    out["versions"] = versions.to_dict(orient="records")
    return out


def _start() -> datetime:
    return datetime(END.year, END.month, END.day) - timedelta(days=DAYS - 1)


def test_summary_and_window(demo_db):
    path, s = demo_db
    assert s.start == _start() and s.end == END
    assert s.versions["credit_default"] == [(1, "archived"), (2, "production"), (3, "rejected")]
    assert s.versions["delivery_time"] == [(1, "production")]
    assert abs(s.predictions["credit_default"] - DAYS * DAILY) < 0.05 * DAYS * DAILY
    assert abs(s.predictions["delivery_time"] - DAYS * DAILY // 2) < 0.05 * DAYS * DAILY
    span = _query(path, "SELECT min(ts) AS lo, max(ts) AS hi, count(DISTINCT request_id) AS ids, count(*) AS n "
                        "FROM log_credit_default").iloc[0]
    assert span.lo >= pd.Timestamp(_start()) and span.hi <= pd.Timestamp(END)
    assert span.hi >= pd.Timestamp(END) - pd.Timedelta(hours=3)  # traffic up to the end
    assert span.ids == span.n  # request ids are unique
    assert "credit_default" in "\n".join(s.lines())


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
    assert _query(other, "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'models'").n[0] == 1
    assert _query(other, "SELECT count(*) AS n FROM models").n[0] == 0  # untouched
    assert main(args + ["--force"]) == 0
    assert "Built in" in capsys.readouterr().out
    assert _fingerprint(other) == _fingerprint(path)


def test_different_seeds_give_different_traffic():
    tl = demo._Timeline(DAYS, _start(), END)
    a = demo._day_traffic("credit_default", 0, 5, 500, tl)
    b = demo._day_traffic("credit_default", 1, 5, 500, tl)
    again = demo._day_traffic("credit_default", 0, 5, 500, tl)
    assert not a.X.equals(b.X) and not np.array_equal(a.ts, b.ts)
    assert a.X.equals(again.X) and np.array_equal(a.ts, again.ts) and np.array_equal(a.y, again.y)


def test_covariate_drift_in_income_utilization_and_purpose(demo_db):
    path, _ = demo_db
    tl = demo._Timeline(DAYS, _start(), END)
    d0 = tl.day(demo.DRIFT_DAY)
    late = tl.day(60)
    df = _query(path, f"""
        SELECT CASE WHEN ts < ? THEN 'before' WHEN ts >= ? THEN 'late' END AS period,
               avg(income) AS income, avg(utilization) AS utilization,
               avg(CASE WHEN purpose IN ('debt_consolidation', 'medical') THEN 1.0 ELSE 0.0 END) AS consolidation
        FROM log_credit_default GROUP BY 1""", [tl.at(d0), tl.at(late)]).set_index("period")
    assert df.loc["late", "income"] < 0.93 * df.loc["before", "income"]
    assert df.loc["late", "utilization"] > df.loc["before", "utilization"] + 0.05
    assert df.loc["late", "consolidation"] > df.loc["before", "consolidation"] + 0.05


def test_concept_shift_degrades_accuracy_of_the_logged_predictions(demo_db):
    path, _ = demo_db
    tl = demo._Timeline(DAYS, _start(), END)
    shift = tl.at(tl.day(demo.SHIFT_DAY))
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


def test_logged_scores_are_the_real_outputs_of_the_serving_version(demo_db):
    path, _ = demo_db
    for version in (1, 2):
        rows = _query(path, "SELECT * FROM log_credit_default WHERE version = ? ORDER BY request_id LIMIT 300", [version])
        assert len(rows) == 300
        pipe = ControlRoom(path).model("credit_default").load(version)
        X = rows[list(simulate.CREDIT_FEATURES)]
        proba = pipe.predict_proba(X)[:, list(map(str, pipe.classes_)).index("1")]
        np.testing.assert_allclose(rows["score"].to_numpy(), proba, rtol=1e-9)
        assert (rows["prediction"].to_numpy() == pipe.predict(X).astype(str)).all()
    rows = _query(path, "SELECT * FROM log_delivery_time ORDER BY request_id LIMIT 300")
    pipe = ControlRoom(path).model("delivery_time").load(1)
    np.testing.assert_allclose(rows["prediction"], pipe.predict(rows[list(simulate.DELIVERY_FEATURES)]), rtol=1e-9)


def test_versions_are_served_by_time_with_a_small_ab_window(demo_db):
    path, _ = demo_db
    tl = demo._Timeline(DAYS, _start(), END)
    promote_at = tl.at(tl.day(demo.V2_PROMOTE_DAY), 10.0)
    ab_start = tl.at(tl.day(demo.AB_START_DAY), 8.0)
    v = _query(path, """
        SELECT version, variant, min(ts) AS lo, max(ts) AS hi, count(*) AS n FROM log_credit_default
        GROUP BY ALL ORDER BY version, variant""")
    by = {(r.version, r.variant if isinstance(r.variant, str) else None): r for r in v.itertuples()}
    assert set(by) == {(1, None), (1, "champion"), (2, "challenger"), (2, None)}
    assert by[(1, None)].hi < pd.Timestamp(promote_at) and by[(2, None)].lo >= pd.Timestamp(promote_at)
    assert by[(2, "challenger")].lo >= pd.Timestamp(ab_start) and by[(2, "challenger")].hi < pd.Timestamp(promote_at)
    share = by[(2, "challenger")].n / (by[(2, "challenger")].n + by[(1, "champion")].n)
    assert 0.12 < share < 0.28


def test_history_versions_deployments_audit_and_runs(demo_db):
    path, _ = demo_db
    tl = demo._Timeline(DAYS, _start(), END)
    versions = {v.version: v for v in ControlRoom(path).model("credit_default").versions()}
    assert versions[2].gate["passed"] is True
    assert versions[3].gate["passed"] is False and versions[3].gate["reasons"]
    assert any("Labels cover only" in r for r in versions[3].gate["reasons"])
    assert versions[3].train_end <= tl.at(tl.day(demo.V3_DAY)) and versions[3].train_start < tl.at(tl.day(demo.SHIFT_DAY))
    dep = _query(path, "SELECT alias, version, started_at, ended_at, action, reason FROM deployments "
                       "WHERE model = 'credit_default' ORDER BY id")
    prod = dep[dep.alias == "production"]
    assert prod.version.tolist() == [1, 2]
    assert prod.started_at.iloc[1] == pd.Timestamp(tl.at(tl.day(demo.V2_PROMOTE_DAY), 10.0))
    assert prod.ended_at.iloc[0] == prod.started_at.iloc[1] and pd.isna(prod.ended_at.iloc[1])
    assert "ROC AUC" in prod.reason.iloc[1]
    chal = dep[dep.alias == "challenger"]
    assert chal.version.tolist() == [2] and chal.ended_at.iloc[0] == prod.started_at.iloc[1]
    audit = _query(path, "SELECT occurred_at, actor, action, model, from_version, to_version, reason FROM audit_events")
    promos = audit[audit.action == "promote"]
    assert len(promos) == 1 and promos.iloc[0].from_version == 1 and promos.iloc[0].to_version == 2
    assert promos.iloc[0].reason and promos.iloc[0].occurred_at == prod.started_at.iloc[1]
    assert (audit.occurred_at <= pd.Timestamp(END)).all()
    assert set(audit.action) >= {"register", "register_version", "promote"}
    runs = _query(path, "SELECT * FROM runs")
    assert set(runs.kind) >= {"train", "retrain", "evaluate", "validate", "promote", "ingest", "monitor"}
    assert set(runs.trigger) >= {"manual", "automated", "schedule"}
    failed = runs[runs.status == "failed"]
    assert len(failed) == 1 and "DatabaseBusyError" in failed.error.iloc[0]
    done = runs[runs.status == "succeeded"]
    assert (done.duration_s > 0).all() and (done.finished_at >= done.started_at).all()
    assert (runs.created_at <= pd.Timestamp(END)).all() and (runs.created_at >= pd.Timestamp(_start() - timedelta(days=1))).all()
    retrain = runs[(runs.kind == "retrain") & (runs.status == "succeeded")]
    assert all(json.loads(m).get("roc_auc") for m in retrain.metrics)
    assert all("train_rows" in json.loads(s) for s in retrain.statistics)
    batches = _query(path, "SELECT kind, count(*) AS n, sum(rows) AS rows FROM ingest_batches "
                           "WHERE model = 'credit_default' GROUP BY kind").set_index("kind")
    counts = _query(path, "SELECT (SELECT count(*) FROM log_credit_default) AS p, "
                          "(SELECT count(*) FROM labels_credit_default) AS l").iloc[0]
    assert batches.loc["predictions", "rows"] == counts.p and batches.loc["labels", "rows"] == counts.l


def test_monitoring_results_are_stored(demo_db):
    path, s = demo_db
    assert "alerts" in s.monitoring
    counts = _query(path, "SELECT (SELECT count(*) FROM drift_results) AS drift, (SELECT count(*) FROM alerts) AS alerts").iloc[0]
    assert counts.drift > 0 and counts.alerts > 0


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
    info = ControlRoom(path).model("credit_default").info
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

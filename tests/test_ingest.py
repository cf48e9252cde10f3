"""Ingest of predictions and labels on a real DuckDB file with a registered model."""
from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import log_sql, make_training_frame

from mlops_core import ControlRoom
from mlops_core.clock import set_clock
from mlops_core.config import artifacts_dir
from mlops_core.errors import BatchRejectedError, NotFoundError

MODEL = "credit"


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A database with MODEL registered (copied per test: registering trains a model)."""
    folder = tmp_path_factory.mktemp("registered")
    db = folder / "mlops.duckdb"
    ControlRoom(db).register(MODEL, "classification", "default", make_training_frame())
    return folder


@pytest.fixture
def db(registered, tmp_path):
    for p in registered.iterdir():
        dest = tmp_path / p.name
        (shutil.copytree if p.is_dir() else shutil.copy)(p, dest)
    return tmp_path / "mlops.duckdb"


def batch(n: int = 150, seed: int = 1, prefix: str = "r") -> pd.DataFrame:
    tr = make_training_frame(n, seed=seed)
    df = tr.drop(columns=["default"])
    df.insert(0, "request_id", [f"{prefix}{i:05d}" for i in range(n)])
    df.insert(1, "timestamp", pd.Timestamp("2026-03-01 08:00") + pd.to_timedelta(np.arange(n), unit="min"))
    df["prediction"] = tr["default"]
    df["score"] = np.linspace(0.01, 0.99, n).round(4)
    return df


def row_counts(db) -> dict[str, int]:
    """Rows of every metadata table, of every model's log and labels, and the Parquet files on disk."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall()]
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        models = [r[0] for r in con.execute("SELECT name FROM models").fetchall()]
    finally:
        con.close()
    for m in models:
        counts[f"log_{m}"] = log_sql(db, f'SELECT count(*) FROM "log_{m}"')[0][0]
        counts[f"labels_{m}"] = log_sql(db, f'SELECT count(*) FROM "labels_{m}"')[0][0]
    counts["parquet files"] = len(list(artifacts_dir(db).parent.glob(f"{Path(db).stem}_logs/**/*.parquet")))
    return counts


def query(db, sql, params=None):
    return log_sql(db, sql, params)


# --- valid batches ---------------------------------------------------------------------------

def test_clean_csv_batch_is_written_in_one_go_with_run_report_and_audit(db, tmp_path):
    path = tmp_path / "b.csv"
    batch().to_csv(path, index=False)
    before = row_counts(db)
    r = ControlRoom(db).model(MODEL).ingest(path)
    assert (r.rows, r.rows_written, r.already_ingested, r.kind) == (150, 150, False, "predictions")
    assert r.anomalies == [] and r.warnings == []
    after = row_counts(db)
    assert after[f"log_{MODEL}"] == before[f"log_{MODEL}"] + 150
    for table in ("ingest_batches", "validation_reports", "runs", "audit_events"):
        assert after[table] == before[table] + 1, table
    assert after["validation_anomalies"] == before["validation_anomalies"]
    (kind, status, stats, duration), = query(db, "SELECT kind, status, statistics, duration_s FROM runs WHERE id = ?", [r.run_id])
    assert (kind, status) == ("ingest", "succeeded") and duration > 0
    assert json.loads(stats)["rows_written"] == 150
    assert query(db, "SELECT status, batch_id FROM validation_reports WHERE id = ?", [r.report_id]) == [("clean", r.batch_id)]
    # values typed as the log's columns, version defaulting to production, batch id on each row
    rows = query(db, f"SELECT request_id, version, ts, age, region, prediction, score, batch_id FROM log_{MODEL} "
                     "ORDER BY request_id LIMIT 1")
    b = batch().iloc[0]
    assert rows[0] == ("r00000", 1, datetime(2026, 3, 1, 8, 0), float(b["age"]), b["region"], str(b["prediction"]),
                       b["score"], r.batch_id)


def test_parquet_and_dataframe_sources_with_explicit_version_and_variant(db, tmp_path):
    df = batch(prefix="p").assign(version=1, variant="challenger")
    path = tmp_path / "b.parquet"
    df.to_parquet(path, index=False)
    r = ControlRoom(db).model(MODEL).ingest(path)
    assert r.rows_written == 150
    r2 = ControlRoom(db).model(MODEL).ingest(batch(prefix="d"))
    assert r2.rows_written == 150
    assert query(db, f"SELECT count(*) FROM log_{MODEL} WHERE variant = 'challenger'") == [(150,)]


def test_timestamps_with_zone_become_naive_utc_and_float_classes_lose_dot_zero(db):
    df = batch(3).astype({"timestamp": str})
    df["timestamp"] = ["2026-03-01T10:00:00+02:00", "2026-03-01 09:30:00", "2026-03-01T07:00:00Z"]
    df["prediction"] = [1.0, 0.0, 1.0]
    ControlRoom(db).model(MODEL).ingest(df)
    got = query(db, f"SELECT ts, prediction FROM log_{MODEL} ORDER BY request_id")
    assert got == [(datetime(2026, 3, 1, 8, 0), "1"), (datetime(2026, 3, 1, 9, 30), "0"), (datetime(2026, 3, 1, 7, 0), "1")]


def test_reingesting_the_same_file_writes_nothing_and_says_so(db, tmp_path):
    path = tmp_path / "b.csv"
    batch().to_csv(path, index=False)
    first = ControlRoom(db).model(MODEL).ingest(path)
    before = row_counts(db)
    again = ControlRoom(db).model(MODEL).ingest(path)
    assert again.already_ingested and again.rows_written == 0 and again.batch_id == first.batch_id
    assert f"as batch {first.batch_id}; 0 rows written" in again.warnings[0]
    assert again.warnings[0].startswith("already ingested on ")
    assert row_counts(db) == before


def test_different_batch_reusing_stored_ids_is_refused(db):
    ControlRoom(db).model(MODEL).ingest(batch())
    other = batch(seed=5)  # same ids, other content
    before = row_counts(db)
    with pytest.raises(BatchRejectedError, match=r"150 request ids are already stored .*'r00000' \(row 1\)"):
        ControlRoom(db).model(MODEL).ingest(other)
    assert row_counts(db) == before


# --- structural errors: refused whole, nothing written -------------------------------------------

def _spoil(kind: str) -> pd.DataFrame | str:
    df = batch()
    if kind == "missing_feature":
        return df.drop(columns=["income"])
    if kind == "missing_request_id":
        return df.drop(columns=["request_id"])
    if kind == "missing_timestamp":
        return df.drop(columns=["timestamp"])
    if kind == "missing_prediction":
        return df.drop(columns=["prediction"])
    if kind == "wrong_type":
        df = df.astype({"income": object})
        df.loc[[4, 8, 11], "income"] = ["abc", "12k", "forty"]
        return df
    if kind == "bad_timestamp":
        df = df.astype({"timestamp": str})
        df.loc[6, "timestamp"] = "yesterday"
        return df
    if kind == "null_request_id":
        df.loc[[2, 3], "request_id"] = None
        return df
    if kind == "null_timestamp":
        df.loc[[9], "timestamp"] = pd.NaT
        return df
    if kind == "duplicate_ids":
        df.loc[9, "request_id"] = df.loc[3, "request_id"]
        return df
    if kind == "unknown_version":
        return df.assign(version=[1] * 140 + [7] * 10)
    if kind == "wrong_type_score":
        return df.astype({"score": object}).assign(score=["high"] * 150)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, pattern", [
    ("missing_feature", r"missing column 'income'"),
    ("missing_request_id", r"missing column 'request_id'"),
    ("missing_timestamp", r"missing column 'timestamp'"),
    ("missing_prediction", r"missing column 'prediction'"),
    ("wrong_type", r"column 'income': 3 values are not numbers, first at rows 5, 9, 12: 'abc', '12k', 'forty'"),
    ("bad_timestamp", r"column 'timestamp': 1 value is not timestamps, at row 7: 'yesterday'"),
    ("null_request_id", r"column 'request_id': 2 empty values, first at rows 3, 4"),
    ("null_timestamp", r"column 'timestamp': 1 empty value, at row 10"),
    ("duplicate_ids", r"column 'request_id': 1 request id occurs more than once in the batch: 'r00003' at rows 4, 10"),
    ("unknown_version", r"column 'version': model 'credit' has no version 7 \(versions: 1\)"),
    ("wrong_type_score", r"column 'score': 150 values are not numbers"),
])
def test_structural_errors_refuse_the_whole_batch(db, kind, pattern):
    ControlRoom(db).model(MODEL).ingest(batch(prefix="seed"))  # a non-empty log, so "unchanged" means something
    before = row_counts(db)
    with pytest.raises(BatchRejectedError, match=pattern) as info:
        ControlRoom(db).model(MODEL).ingest(_spoil(kind))
    assert "nothing was written" in str(info.value)
    assert row_counts(db) == before


@pytest.mark.parametrize("content, pattern", [
    (b"", r"is empty \(0 bytes\)"),
    (b"request_id,timestamp,age,income,region,prediction\n", r"has no rows"),
    (b"PAR1 not really parquet", r"Cannot read the prediction batch .* as PARQUET"),
])
def test_empty_and_unreadable_files_are_refused(db, tmp_path, content, pattern):
    path = tmp_path / ("b.parquet" if content.startswith(b"PAR1") else "b.csv")
    path.write_bytes(content)
    before = row_counts(db)
    with pytest.raises(BatchRejectedError, match=pattern):
        ControlRoom(db).model(MODEL).ingest(path)
    assert row_counts(db) == before


def test_unknown_model_and_missing_file_are_refused(db, tmp_path):
    before = row_counts(db)
    with pytest.raises(NotFoundError, match=r"Unknown model 'nope'\. Known models: credit"):
        ControlRoom(db).model("nope").ingest(batch())
    with pytest.raises(BatchRejectedError, match="does not exist"):
        ControlRoom(db).model(MODEL).ingest(tmp_path / "missing.csv")
    assert row_counts(db) == before


# --- content anomalies: stored verbatim and flagged ---------------------------------------------

def test_content_anomalies_are_stored_exactly_and_flagged(db):
    evil = "x'; DROP TABLE --"
    df = batch()
    df.loc[3, "region"] = evil
    df.loc[[5, 6], "age"] = [150, -4]
    df.loc[0:59, "income"] = np.nan  # 40% nulls against 0% in training
    before = row_counts(db)
    r = ControlRoom(db).model(MODEL).ingest(df)
    assert r.rows_written == 150
    kinds = {(a.feature, a.kind) for a in r.anomalies}
    assert kinds == {("region", "unseen_category"), ("age", "out_of_range"), ("income", "null_rate_jump")}
    assert any(evil in w for w in r.warnings)
    # the strange value is a plain string in the log, read back unchanged; the tables are all still there
    assert query(db, f"SELECT region FROM log_{MODEL} WHERE request_id = 'r00003'") == [(evil,)]
    assert query(db, f"SELECT age FROM log_{MODEL} WHERE request_id IN ('r00005', 'r00006') ORDER BY request_id") == \
        [(150.0,), (-4.0,)]
    after = row_counts(db)
    assert set(after) == set(before)
    assert after["validation_anomalies"] == before["validation_anomalies"] + 3
    stored = query(db, "SELECT feature, kind, severity, count, share FROM validation_anomalies WHERE report_id = ? "
                       "ORDER BY feature", [r.report_id])
    assert stored == [("age", "out_of_range", "warning", 2, pytest.approx(2 / 150)),
                      ("income", "null_rate_jump", "warning", 60, pytest.approx(0.4)),
                      ("region", "unseen_category", "warning", 1, pytest.approx(1 / 150))]
    assert query(db, "SELECT status FROM validation_reports WHERE id = ?", [r.report_id]) == [("anomalies",)]


def test_new_columns_are_ignored_and_noted(db):
    r = ControlRoom(db).model(MODEL).ingest(batch().assign(debug_flag="x"))
    assert r.rows_written == 150
    assert [(a.feature, a.kind, a.severity) for a in r.anomalies] == [("debug_flag", "new_column", "info")]


# --- labels ----------------------------------------------------------------------------------

def test_labels_join_on_request_id_as_class_strings(db):
    set_clock(lambda: datetime(2026, 3, 5, 12, 0))
    ControlRoom(db).model(MODEL).ingest(batch())
    labels = pd.DataFrame({"request_id": [f"r{i:05d}" for i in range(40)], "label": [1.0, 0.0] * 20})
    r = ControlRoom(db).model(MODEL).ingest(labels, 'labels')
    assert (r.rows_written, r.kind) == (40, "labels")
    got = query(db, f"SELECT p.request_id, l.label, l.label_ts FROM log_{MODEL} p JOIN labels_{MODEL} l USING (request_id) "
                    "ORDER BY p.request_id LIMIT 2")
    assert got == [("r00000", "1", datetime(2026, 3, 5, 12, 0)), ("r00001", "0", datetime(2026, 3, 5, 12, 0))]
    # the target's own column name works too, with an arrival timestamp
    more = pd.DataFrame({"request_id": ["r00100"], "default": [1], "timestamp": ["2026-03-04 10:00"]})
    ControlRoom(db).model(MODEL).ingest(more, 'labels')
    assert query(db, f"SELECT label, label_ts FROM labels_{MODEL} WHERE request_id = 'r00100'") == \
        [("1", datetime(2026, 3, 4, 10, 0))]


def test_labels_for_unknown_ids_are_refused(db):
    ControlRoom(db).model(MODEL).ingest(batch())
    before = row_counts(db)
    labels = pd.DataFrame({"request_id": ["r00001", "ghost-1", "r00002", "ghost-2"], "label": [1, 0, 1, 0]})
    with pytest.raises(BatchRejectedError, match=r"2 labels are for request ids never logged .*'ghost-1' \(row 2\), 'ghost-2' \(row 4\)"):
        ControlRoom(db).model(MODEL).ingest(labels, 'labels')
    assert row_counts(db) == before


def test_second_label_same_value_is_skipped_and_different_value_refused(db):
    ControlRoom(db).model(MODEL).ingest(batch())
    ControlRoom(db).model(MODEL).ingest(pd.DataFrame({"request_id": ["r00001", "r00002"], "label": [1, 0]}), 'labels')
    r = ControlRoom(db).model(MODEL).ingest(pd.DataFrame({"request_id": ["r00001", "r00003"], "label": ["1", "1"]}), 'labels')
    assert (r.rows, r.rows_written) == (2, 1)
    assert any("already stored with the same value; skipped" in w for w in r.warnings)
    before = row_counts(db)
    with pytest.raises(BatchRejectedError, match=r"'r00002' at row 1: stored '0', new '1'"):
        ControlRoom(db).model(MODEL).ingest(pd.DataFrame({"request_id": ["r00002"], "label": [1]}), 'labels')
    assert row_counts(db) == before


def test_label_batch_structural_errors(db):
    ControlRoom(db).model(MODEL).ingest(batch())
    before = row_counts(db)
    with pytest.raises(BatchRejectedError, match="missing column 'label'"):
        ControlRoom(db).model(MODEL).ingest(pd.DataFrame({"request_id": ["r00001"], "truth": [1]}), 'labels')
    with pytest.raises(BatchRejectedError, match=r"column 'label': 1 empty value, at row 2"):
        ControlRoom(db).model(MODEL).ingest(pd.DataFrame({"request_id": ["r00001", "r00002"], "label": [1, None]}), 'labels')
    with pytest.raises(BatchRejectedError, match="occurs more than once"):
        ControlRoom(db).model(MODEL).ingest(pd.DataFrame({"request_id": ["r00001", "r00001"], "label": [1, 1]}), 'labels')
    assert row_counts(db) == before


def test_unseen_label_class_is_stored_and_flagged(db):
    ControlRoom(db).model(MODEL).ingest(batch())
    r = ControlRoom(db).model(MODEL).ingest(pd.DataFrame({"request_id": ["r00001"], "label": ["maybe"]}), 'labels')
    assert [(a.feature, a.kind) for a in r.anomalies] == [("label", "unseen_category")]
    assert query(db, f"SELECT label FROM labels_{MODEL}") == [("maybe",)]


def test_regression_model_labels_and_predictions_are_numbers(tmp_path):
    db = tmp_path / "reg.duckdb"
    tr = make_training_frame(300)
    tr["amount"] = tr["income"] * 2 + tr["age"]
    ControlRoom(db).register("amount", "regression", "amount", tr.drop(columns=["default"]))
    df = tr.drop(columns=["default", "amount"]).head(20)
    df.insert(0, "request_id", [f"a{i}" for i in range(20)])
    df["timestamp"] = "2026-03-01 00:00"
    df["prediction"] = [str(v) for v in range(20)]
    ControlRoom(db).model("amount").ingest(df)
    ControlRoom(db).model("amount").ingest(pd.DataFrame({"request_id": ["a1", "a2"], "label": ["3.5", "4"]}), 'labels')
    assert query(db, "SELECT label FROM labels_amount ORDER BY request_id") == [(3.5,), (4.0,)]
    with pytest.raises(BatchRejectedError, match="column 'label': 1 value is not numbers, at row 1: 'lots'"):
        ControlRoom(db).model("amount").ingest(pd.DataFrame({"request_id": ["a3"], "label": ["lots"]}), 'labels')


def test_same_rows_in_another_format_are_refused_as_duplicates(db, tmp_path):
    csv, parquet = tmp_path / "b.csv", tmp_path / "b.parquet"
    batch().to_csv(csv, index=False)
    batch().to_parquet(parquet, index=False)
    ControlRoom(db).model(MODEL).ingest(csv)
    before = row_counts(db)
    with pytest.raises(BatchRejectedError, match="already stored"):
        ControlRoom(db).model(MODEL).ingest(parquet)
    assert row_counts(db) == before


def test_concurrent_ingests_of_one_batch_in_one_process_write_it_once(db):
    from concurrent.futures import ThreadPoolExecutor

    df = batch()
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: ControlRoom(db).model(MODEL).ingest(df), range(3)))
    assert sorted(r.already_ingested for r in results) == [False, True, True]
    assert query(db, f"SELECT count(*), count(DISTINCT request_id) FROM log_{MODEL}") == [(150, 150)]


@pytest.mark.parametrize("when, shown", [("9999-12-31 23:00:00", "9999-12-31 23:00:00"),
                                         ("1969-07-20 20:17:00", "1969-07-20 20:17:00")])
def test_times_outside_the_accepted_range_refuse_the_batch(db, when, shown):
    before = row_counts(db)
    df = batch()
    df["timestamp"] = df["timestamp"].astype(str)
    df.loc[[4, 9], "timestamp"] = when
    with pytest.raises(BatchRejectedError, match=r"column 'timestamp': 2 times are outside 1970-01-01 \.\. .* "
                                                 rf"first at rows 5, 10: '{shown}'"):
        ControlRoom(db).model(MODEL).ingest(df)
    assert row_counts(db) == before


def test_the_future_bound_follows_the_setting(db, monkeypatch):
    df = batch()
    df["timestamp"] = pd.Timestamp.now(tz="UTC").tz_localize(None) + pd.Timedelta(hours=30)
    with pytest.raises(BatchRejectedError, match="times are outside"):
        ControlRoom(db).model(MODEL).ingest(df)
    monkeypatch.setenv("MLOPS_MAX_FUTURE_HOURS", "48")
    assert ControlRoom(db).model(MODEL).ingest(df).rows_written == 150


def test_infinite_scores_refuse_the_batch(db):
    df = batch()
    df.loc[3, "score"] = np.inf
    with pytest.raises(BatchRejectedError, match="column 'score': 1 value is infinite, at row 4: 'inf'"):
        ControlRoom(db).model(MODEL).ingest(df)


def test_regression_values_must_be_finite_and_huge_ones_are_flagged(tmp_path):
    db = tmp_path / "reg.duckdb"
    tr = make_training_frame(300)
    tr["amount"] = tr["income"] * 2 + tr["age"]
    ControlRoom(db).register("amount", "regression", "amount", tr.drop(columns=["default"]))
    model = ControlRoom(db).model("amount")
    df = tr.drop(columns=["default", "amount"]).head(20)
    df.insert(0, "request_id", [f"a{i}" for i in range(20)])
    df["timestamp"] = "2026-03-01 00:00"
    df["prediction"] = 100.0
    for bad in ("inf", "-inf"):
        odd = df.assign(prediction=df["prediction"].astype(object))
        odd.loc[2, "prediction"] = bad
        with pytest.raises(BatchRejectedError, match=f"column 'prediction': 1 value is infinite, at row 3: '{bad}'"):
            model.ingest(odd)
    huge = df.copy()
    huge.loc[5, "prediction"] = 1e308
    r = model.ingest(huge)
    assert [(a.feature, a.kind) for a in r.anomalies] == [("prediction", "out_of_range")]
    with pytest.raises(BatchRejectedError, match="column 'label': 1 value is infinite"):
        model.ingest(pd.DataFrame({"request_id": ["a1"], "label": [float("inf")]}), "labels")


def test_a_huge_cell_is_not_echoed_whole(db):
    df = batch()
    df["income"] = df["income"].astype(object)
    df.loc[0, "income"] = "x" * 900_000
    with pytest.raises(BatchRejectedError) as err:
        ControlRoom(db).model(MODEL).ingest(df)
    assert len(str(err.value)) < 1000 and "(900,000 characters)" in str(err.value)

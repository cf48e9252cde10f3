"""Validation of batches, frames and log windows against the stored schema; reports read back over time."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from conftest import log_sql, make_training_frame

from mlops_core import ControlRoom
from mlops_core.clock import set_clock
from mlops_core.errors import BatchRejectedError, InvalidInputError
from mlops_core.monitoring import validation
from mlops_core.store import Store, connect

MODEL = "credit"
DAY = datetime(2026, 3, 1)


@pytest.fixture
def db(registered_credit_db):
    """A private copy of a database with the model ``credit`` registered (see conftest)."""
    return registered_credit_db


def batch(n: int = 400, seed: int = 3, prefix: str = "r", start: datetime = DAY) -> pd.DataFrame:
    tr = make_training_frame(n, seed=seed)
    df = tr.drop(columns=["default"])
    df.insert(0, "request_id", [f"{prefix}{i:05d}" for i in range(n)])
    df.insert(1, "timestamp", pd.Timestamp(start) + pd.to_timedelta(np.arange(n) * 3, unit="min"))
    df["prediction"] = tr["default"]
    df["score"] = 0.5
    return df


def kinds(report) -> set[tuple]:
    return {(a.feature, a.kind) for a in report.anomalies}


def test_clean_batch_is_clean_and_its_report_is_stored(db, tmp_path):
    path = tmp_path / "b.csv"
    batch().to_csv(path, index=False)
    r = ControlRoom(db).model(MODEL).validate(path)
    assert r.status == "clean", r.anomalies
    assert r.rows == 400 and r.report_id is not None
    reports = ControlRoom(db).model(MODEL).validation_reports()
    assert reports[["report_id", "source", "status", "rows", "anomalies"]].values.tolist() == [[r.report_id, str(path), "clean", 400, 0]]
    # nothing was ingested
    assert log_sql(db, f"SELECT count(*) FROM log_{MODEL}")[0][0] == 0


def test_out_of_range_rule_share_and_far_values(db):
    with connect(db, write=True, create=True) as con:
        from mlops_core.store import models as mstore
        spec = {f.name: f for f in mstore.get_model(con, MODEL).features}
    top, span = spec["income"].max, spec["income"].max - spec["income"].min

    def inside():
        df = batch()
        for name in ("age", "income"):
            df[name] = df[name].clip(spec[name].min, spec[name].max)
        return df

    assert ControlRoom(db).model(MODEL).validate(inside(), store=False).status == "clean"
    # 2 rows just above the training max: neither >1% nor far -> not flagged
    df = inside()
    df.loc[[0, 1], "income"] = top + 0.05 * span
    assert ("income", "out_of_range") not in kinds(ControlRoom(db).model(MODEL).validate(df, store=False))
    # 8 rows (2%) slightly above -> flagged by share
    df.loc[range(8), "income"] = top + 0.05 * span
    r = ControlRoom(db).model(MODEL).validate(df, store=False)
    a = next(a for a in r.anomalies if a.kind == "out_of_range")
    assert (a.feature, a.count, a.share) == ("income", 8, pytest.approx(8 / 400))
    # one row far outside (more than 25% of the span) -> flagged although it is one value
    df = inside()
    df.loc[7, "age"] = 500
    r = ControlRoom(db).model(MODEL).validate(df, store=False)
    assert ("age", "out_of_range") in kinds(r) and r.status == "anomalies"
    a = next(a for a in r.anomalies if a.kind == "out_of_range")
    assert a.count == 1 and "max 500" in a.detail


def test_unseen_categories_with_share_and_null_rate_jump(db):
    df = batch()
    df.loc[range(10), "region"] = "atlantis"
    df.loc[10, "region"] = "x'; DROP TABLE --"
    df.loc[range(100, 160), "age"] = np.nan  # 15%: > 0 + 0.10 and > 2 x 0
    r = ControlRoom(db).model(MODEL).validate(df, store=False)
    a = next(a for a in r.anomalies if a.kind == "unseen_category")
    assert a.feature == "region" and a.count == 11 and a.share == pytest.approx(11 / 400)
    assert "'atlantis' (10)" in a.detail and "x'; DROP TABLE --" in a.detail
    n = next(a for a in r.anomalies if a.kind == "null_rate_jump")
    assert (n.feature, n.count, n.share) == ("age", 60, pytest.approx(0.15))
    # 8% nulls: below the 10-point margin -> not a jump
    df = batch()
    df.loc[range(32), "age"] = np.nan
    assert ("age", "null_rate_jump") not in kinds(ControlRoom(db).model(MODEL).validate(df, store=False))


def test_too_few_rows_and_structural_problems(db):
    r = ControlRoom(db).model(MODEL).validate(batch(20), store=False)
    assert (None, "too_few_rows") in kinds(r) and r.status == "anomalies"
    bad = batch().drop(columns=["income"])
    r = ControlRoom(db).model(MODEL).validate(bad)
    assert r.status == "rejected" and "missing column 'income'" in r.problems[0]
    assert r.anomalies[0].severity == "critical"
    assert ControlRoom(db).model(MODEL).validation_reports()["status"].tolist() == ["rejected"]
    with pytest.raises(BatchRejectedError):
        ControlRoom(db).model(MODEL).validate(pd.DataFrame())


def test_validate_frame_for_training_sets(db):
    frame = make_training_frame(300, seed=9).drop(columns=["default"])
    info = ControlRoom(db).model(MODEL).info
    with Store(db).engine() as con:
        assert validation.validate_frame(con, info, frame).status == "clean"
        r = validation.validate_frame(con, info, frame.drop(columns=["region"]))
        assert r.status == "rejected" and r.anomalies[0].kind == "missing_column"
        frame = frame.astype({"age": object})
        frame.loc[3, "age"] = "old"
        r = validation.validate_frame(con, info, frame)
    assert r.status == "rejected" and any(a.kind == "wrong_type" and a.severity == "critical" for a in r.anomalies)


def test_window_validation_and_reports_over_time(db):
    set_clock(lambda: DAY + timedelta(days=1))
    ControlRoom(db).model(MODEL).ingest(batch())
    late = batch(prefix="late", start=DAY + timedelta(days=1))
    late.loc[range(50), "region"] = "mars"
    set_clock(lambda: DAY + timedelta(days=2))
    ControlRoom(db).model(MODEL).ingest(late)
    day1 = ControlRoom(db).model(MODEL).validate_window(DAY, DAY + timedelta(days=1))
    day2 = ControlRoom(db).model(MODEL).validate_window(DAY + timedelta(days=1), DAY + timedelta(days=2))
    assert day1.status == "clean" and day1.rows == 400
    assert ("region", "unseen_category") in kinds(day2)
    empty = ControlRoom(db).model(MODEL).validate_window(DAY + timedelta(days=10), DAY + timedelta(days=11))
    assert empty.rows == 0 and (None, "too_few_rows") in kinds(empty)
    reports = ControlRoom(db).model(MODEL).validation_reports()
    assert len(reports) == 5  # two ingests, three windows
    # window reports belong to their window, batch reports to when they were checked
    assert ControlRoom(db).model(MODEL).validation_reports(start=DAY + timedelta(days=1), end=DAY + timedelta(days=2))["source"].tolist() \
        == ["DataFrame", "log 2026-03-02 00:00 .. 2026-03-03 00:00"]
    anomalies = ControlRoom(db).model(MODEL).anomalies()
    assert {"report_id", "at", "feature", "kind", "severity", "count", "share", "detail"} <= set(anomalies.columns)
    assert (anomalies["kind"] == "unseen_category").sum() == 2  # the ingest and the day-2 window
    with pytest.raises(InvalidInputError):
        ControlRoom(db).model(MODEL).validate_window(DAY, DAY)


def test_null_rates_per_window_match_pandas(db):
    df = batch(600)
    df.loc[df.index % 7 == 0, "income"] = np.nan
    df.loc[df.index % 5 == 0, "region"] = None
    ControlRoom(db).model(MODEL).ingest(df)
    got = ControlRoom(db).model(MODEL).null_rates(window="hour")
    ts = pd.to_datetime(df["timestamp"]).dt.floor("h")
    for feature in ("income", "region", "age"):
        want = df[feature].isna().groupby(ts).mean()
        part = got[got["feature"] == feature].set_index("window_start")["null_rate"]
        assert np.allclose(part.sort_index().to_numpy(), want.sort_index().to_numpy())
    assert set(got.columns) == {"window_start", "feature", "rows", "null_rate"}
    with pytest.raises(InvalidInputError):
        ControlRoom(db).model(MODEL).null_rates(window="fortnight")


def test_training_serving_skew_uses_the_drift_module(db):
    same = ControlRoom(db).model(MODEL).validate(batch(2000, seed=11))
    assert same.skew and not any(a.kind == "skew" for a in same.anomalies)
    shifted = batch(2000, seed=11)
    shifted["income"] = shifted["income"] + 15  # 1.5 training standard deviations
    r = ControlRoom(db).model(MODEL).validate(shifted)
    assert ("income", "skew") in kinds(r)
    assert {row["feature"] for row in r.skew} == {"age", "income", "region"}
    stored = ControlRoom(db).model(MODEL).validation_reports().iloc[-1]
    assert {row["feature"] for row in json.loads(stored["skew"])} == {"age", "income", "region"}
    ControlRoom(db).model(MODEL).ingest(shifted)
    frame = ControlRoom(db).model(MODEL).skew()
    assert {"feature", "method", "statistic", "threshold", "drifted"} <= set(frame.columns)
    assert bool(frame.loc[frame["feature"] == "income", "drifted"].any())


def test_validate_windows_backfills_one_report_per_window(db):
    ControlRoom(db).model(MODEL).ingest(batch())  # 400 rows, 3 minutes apart: 20 hours of 2026-03-01
    reports = ControlRoom(db).model(MODEL).validate_windows(DAY, DAY + timedelta(days=2), window="day")
    assert [(r.rows, r.window_start) for r in reports] == [(400, DAY), (0, DAY + timedelta(days=1))]
    anomalies = ControlRoom(db).model(MODEL).anomalies(start=DAY + timedelta(days=1), end=DAY + timedelta(days=2))
    assert anomalies["kind"].tolist() == ["too_few_rows"]
    assert anomalies["at"].tolist() == [pd.Timestamp(DAY + timedelta(days=1))]
    with pytest.raises(InvalidInputError):
        ControlRoom(db).model(MODEL).validate_windows(DAY, DAY + timedelta(days=1), window="month")


def test_a_file_is_dated_by_its_data_and_counted_once_however_often_it_is_validated(db, tmp_path):
    """Validating the same file again replaces its report; validating a file that was ingested stores nothing more
    (its ingest report describes it); the report is dated by the predictions' times, not by the check."""
    path = tmp_path / "batch.csv"
    frame = batch(400).assign(income=lambda f: f["income"].where(f.index % 10 != 0, 10_000.0))  # out of range
    frame.to_csv(path, index=False)
    credit = ControlRoom(db).model(MODEL)
    first = credit.validate(path)
    assert first.status == "anomalies" and first.report_id is not None
    assert (first.window_start, first.window_end) == (frame["timestamp"].min(), frame["timestamp"].max())
    again = credit.validate(path)
    reports = credit.validation_reports()
    assert list(reports["report_id"]) == [again.report_id]  # replaced, not added
    found = credit.anomalies()
    assert len(found) == len(first.anomalies)
    assert (pd.to_datetime(found["at"]) < DAY + timedelta(days=2)).all()  # the data's day, not today's
    credit.ingest(path)
    ingested = credit.validation_reports()
    after = credit.validate(path)
    assert after.ingested_as is not None and after.report_id is None
    assert len(credit.validation_reports()) == len(ingested)

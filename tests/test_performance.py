"""Performance over time: every number against sklearn.metrics on the same rows, degenerate windows, intervals."""
from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn import metrics as skm

from _monitoring_support import (T0, credit_features, log_rows, register_credit, register_multiclass,
                                 register_regressor, write)
from mlops_core.monitoring import performance
from mlops_core.errors import InvalidInputError, NotFoundError
from mlops_core import ControlRoom, Identity


def _binary_log(db, n=3000, seed=1):
    info = register_credit(db)
    rng = np.random.default_rng(seed)
    feats = credit_features(n, seed)
    score = np.round(rng.random(n), 2)  # rounded: many ties, the hard case for AUC
    score[:5] = [0.0, 1.0, 0.0, 1.0, 0.5]  # extremes exercise the log-loss clipping
    pred = np.where(score >= 0.5, "1", "0")
    version = np.where(rng.random(n) < 0.3, 2, 1)
    log = log_rows(feats, step=timedelta(minutes=3), prediction=pred, score=score)
    log["version"] = version.astype("int32")
    truth = np.where(rng.random(n) < 0.25 + 0.5 * score, "1", "0")
    labelled = rng.random(n) < 0.7
    labelled[(log["ts"] >= T0 + timedelta(days=5)).to_numpy()] = False  # the last windows: no labels yet
    labels = pd.DataFrame({"request_id": log["request_id"][labelled], "label": truth[labelled]})
    write(db, info, log, labels)
    frame = log.assign(label=pd.Series(truth, index=log.index).where(labelled))
    return info, frame


def _sk_binary(part: pd.DataFrame) -> dict:
    lab = part[part["label"].notna()]
    y, p, s = lab["label"].to_numpy(), lab["prediction"].to_numpy(), lab["score"].to_numpy()
    yb = (y == "1").astype(int)
    return {
        "accuracy": skm.accuracy_score(y, p),
        "precision": skm.precision_score(y, p, pos_label="1", zero_division=0),
        "recall": skm.recall_score(y, p, pos_label="1", zero_division=0),
        "f1": skm.f1_score(y, p, pos_label="1", zero_division=0),
        "roc_auc": skm.roc_auc_score(yb, s) if len(set(yb)) == 2 else math.nan,
        "log_loss": skm.log_loss(yb, s, labels=[0, 1]),
        "positive_rate": float(np.mean(part["prediction"] == "1")),
        "n_labelled": len(lab),
        "correct": int((y == p).sum()),
    }


def test_binary_metrics_equal_sklearn_per_window_and_version(db):
    _, frame = _binary_log(db)
    got = ControlRoom(db).model("credit").performance(window="day")
    frame["window_start"] = frame["ts"].dt.floor("D")
    checked = 0
    for (ws, v), part in frame.groupby(["window_start", "version"]):
        row = got[(got["window_start"] == ws) & (got["version"] == v)].iloc[0]
        assert row["n"] == len(part)
        if part["label"].notna().sum() == 0:
            continue
        ref = _sk_binary(part)
        assert row["n_labelled"] == ref["n_labelled"]
        for m in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "positive_rate"):
            assert row[m] == pytest.approx(ref[m], rel=1e-9, abs=1e-12), m
        ci = binomtest(ref["correct"], ref["n_labelled"]).proportion_ci(confidence_level=0.95, method="wilson")
        assert row["ci_low"] == pytest.approx(ci.low, abs=1e-6)
        assert row["ci_high"] == pytest.approx(ci.high, abs=1e-6)
        assert row["metric"] == "accuracy"
        checked += 1
    assert checked >= 8


def test_roc_auc_read_in_slices_of_windows_equals_sklearn(db, monkeypatch):
    """A log bigger than one slice: the AUC read slice by slice (whole windows each) is still sklearn's."""
    from mlops_core.store import performance as perfstore

    _, frame = _binary_log(db)
    monkeypatch.setattr(perfstore, "AUC_SLICE_ROWS", 150)  # about one window per slice
    got = ControlRoom(db).model("credit").performance(window="hour")
    frame["window_start"] = frame["ts"].dt.floor("h")
    checked = 0
    for (ws, v), part in frame.groupby(["window_start", "version"]):
        lab = part[part["label"].notna()]
        if lab["label"].nunique() < 2:
            continue
        row = got[(got["window_start"] == ws) & (got["version"] == v)].iloc[0]
        expected = skm.roc_auc_score((lab["label"] == "1").astype(int), lab["score"])
        assert row["roc_auc"] == pytest.approx(expected, rel=1e-12), (ws, v)
        checked += 1
    assert checked >= 50


def test_windows_without_labels_report_counts_and_nan_metrics(db):
    _, frame = _binary_log(db)
    got = ControlRoom(db).model("credit").performance(window="day")
    late = got[got["window_start"] >= T0 + timedelta(days=5)]
    assert len(late) and (late["n"] > 0).all()
    assert (late["n_labelled"] == 0).all() and (late["label_coverage"] == 0).all()
    assert late[["accuracy", "f1", "roc_auc", "log_loss", "ci_low"]].isna().all().all()
    assert late["positive_rate"].notna().all()  # needs no labels


def test_hour_and_week_windows_range_and_version_filter(db):
    _, frame = _binary_log(db)
    start, end = T0 + timedelta(days=1), T0 + timedelta(days=2)
    hourly = ControlRoom(db).model("credit").performance(window="hour", start=start, end=end, versions=[2])
    part = frame[(frame["ts"] >= start) & (frame["ts"] < end) & (frame["version"] == 2)]
    assert hourly["n"].sum() == len(part)
    assert set(hourly["version"]) == {2}
    assert hourly["window_start"].min() >= pd.Timestamp(start)
    weekly = ControlRoom(db).model("credit").performance(window="week")
    assert weekly["n"].sum() == len(frame)
    assert (weekly["window_start"].dt.dayofweek == 0).all()  # weeks start on Monday
    # a bare date as the end means "through that day"
    through = ControlRoom(db).model("credit").performance(start="2026-03-02", end="2026-03-02")
    assert set(through["window_start"]) == {pd.Timestamp("2026-03-02")}


def test_roc_auc_is_nan_when_a_window_has_one_class(db):
    info = register_credit(db)
    feats = credit_features(40, 3)
    log = log_rows(feats, prediction=np.array(["1"] * 40), score=np.linspace(0.1, 0.9, 40))
    write(db, info, log, pd.DataFrame({"request_id": log["request_id"], "label": "1"}))
    row = ControlRoom(db).model("credit").performance().iloc[0]
    assert math.isnan(row["roc_auc"])
    assert row["accuracy"] == 1.0 and row["precision"] == 1.0 and row["recall"] == 1.0


def test_multiclass_macro_metrics_equal_sklearn(db):
    info = register_multiclass(db)
    rng = np.random.default_rng(5)
    n = 1200
    feats = pd.DataFrame({"x": rng.normal(0, 1, n), "colour": rng.choice(["red", "blue"], n)})
    pred = rng.choice(["low", "mid", "high"], n, p=[0.5, 0.3, 0.2])
    truth = rng.choice(["low", "mid", "high"], n)
    log = log_rows(feats, step=timedelta(minutes=5), prediction=pred)
    write(db, info, log, pd.DataFrame({"request_id": log["request_id"], "label": truth}))
    got = ControlRoom(db).model("tri").performance()
    log["label"] = truth
    for ws, part in log.groupby(log["ts"].dt.floor("D")):
        row = got[got["window_start"] == ws].iloc[0]
        y, p = part["label"], part["prediction"]
        assert row["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
        for m, f in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
            assert row[m] == pytest.approx(f(y, p, average="macro", zero_division=0)), m
        assert math.isnan(row["roc_auc"]) and math.isnan(row["positive_rate"])


def test_regression_metrics_equal_sklearn(db):
    info = register_regressor(db)
    rng = np.random.default_rng(2)
    n = 900
    feats = pd.DataFrame({"distance": rng.gamma(2, 2, n), "zone": rng.choice(["a", "b", "c"], n)})
    truth = 10 + 3 * feats["distance"].to_numpy() + rng.normal(0, 3, n)
    truth[:10] = 0.0  # MAPE skips zero labels
    pred = truth + rng.normal(0, 4, n)
    log = log_rows(feats, step=timedelta(minutes=4), prediction=pred)
    write(db, info, log, pd.DataFrame({"request_id": log["request_id"], "label": truth}))
    got = ControlRoom(db).model("eta").performance()
    log["label"] = truth
    for ws, part in log.groupby(log["ts"].dt.floor("D")):
        row = got[got["window_start"] == ws].iloc[0]
        y, p = part["label"].to_numpy(), part["prediction"].to_numpy()
        nz = y != 0
        assert row["mae"] == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-9)
        assert row["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)), rel=1e-9)
        assert row["r2"] == pytest.approx(skm.r2_score(y, p), rel=1e-9)
        assert row["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y[nz], p[nz]), rel=1e-9)
        assert row["metric"] == "rmse" and row["ci_low"] <= row["rmse"] <= row["ci_high"]


def test_regression_degenerate_windows(db):
    info = register_regressor(db)
    feats = pd.DataFrame({"distance": [1.0, 2.0, 3.0, 4.0], "zone": ["a", "b", "c", "a"]})
    # day 1: constant label predicted perfectly; day 2: a single labelled row
    log = log_rows(feats, step=timedelta(hours=12), prediction=np.array([5.0, 5.0, 7.0, 8.0]))
    write(db, info, log, pd.DataFrame({"request_id": log["request_id"][:3], "label": [5.0, 5.0, 6.0]}))
    got = ControlRoom(db).model("eta").performance()
    d1, d2 = got.iloc[0], got.iloc[1]
    assert d1["r2"] == skm.r2_score([5.0, 5.0], [5.0, 5.0]) == 1.0
    assert d1["rmse"] == 0.0
    assert d2["n"] == 2 and d2["n_labelled"] == 1 and math.isnan(d2["r2"])
    assert d2["mae"] == 1.0 and math.isnan(d2["ci_low"])


def test_confusion_and_residuals(db):
    _, frame = _binary_log(db)
    conf = ControlRoom(db).model("credit").confusion(version=1)
    lab = frame[frame["label"].notna() & (frame["version"] == 1)]
    expected = lab.groupby(["label", "prediction"]).size()
    for r in conf.itertuples():
        assert r.count == expected[(r.actual, r.predicted)]
    assert conf["count"].sum() == len(lab)
    assert ControlRoom(db).model("credit").residuals().empty  # classification: no residuals

    info = register_regressor(db)
    feats = pd.DataFrame({"distance": [1.0, 2.0, 3.0], "zone": ["a", "b", "c"]})
    log = log_rows(feats, prediction=np.array([10.0, 12.0, 14.0]), prefix="q")
    write(db, info, log, pd.DataFrame({"request_id": log["request_id"], "label": [11.0, 12.0, 10.0]}))
    res = ControlRoom(db).model("eta").residuals(limit=2)
    assert len(res) == 2
    assert set(res["residual"]) <= {1.0, 0.0, -4.0}
    assert (res["residual"] == res["label"] - res["prediction"]).all()


def test_summary_compares_the_last_days_with_the_days_before(db):
    _, frame = _binary_log(db)
    now = T0 + timedelta(days=4)
    s = ControlRoom(db).model("credit").summary(days=2, now=now)
    # periods end at ``now`` inclusive: (now - 2 days, now] and the two days before
    cur = frame[(frame["ts"] > now - timedelta(days=2)) & (frame["ts"] <= now)]
    prev = frame[(frame["ts"] > now - timedelta(days=4)) & (frame["ts"] <= now - timedelta(days=2))]
    assert (frame["ts"] == now).any()  # a prediction exactly at ``now`` is counted
    lab, plab = cur[cur["label"].notna()], prev[prev["label"].notna()]
    assert s.metric == "accuracy"
    assert s.value == pytest.approx(skm.accuracy_score(lab["label"], lab["prediction"]))
    assert s.previous == pytest.approx(skm.accuracy_score(plab["label"], plab["prediction"]))
    assert s.delta == pytest.approx(s.value - s.previous)
    assert s.predictions == len(cur) and s.previous_predictions == len(prev)
    assert s.label_coverage == pytest.approx(len(lab) / len(cur))
    empty = ControlRoom(db).model("credit").summary(days=1, now=T0 - timedelta(days=10))
    assert empty.value is None and empty.predictions == 0 and empty.delta is None


def test_bad_input_raises_clear_errors(db):
    register_credit(db)
    with pytest.raises(InvalidInputError, match="hour, day, week"):
        ControlRoom(db).model("credit").performance(window="month")
    with pytest.raises(InvalidInputError, match="as a date"):
        ControlRoom(db).model("credit").performance(start="yesterday-ish")
    with pytest.raises(NotFoundError, match="credit"):
        ControlRoom(db).model("nope").performance()
    assert ControlRoom(db).model("credit").performance().empty  # no predictions yet: an empty frame, not an error

"""Performance over time: every number against sklearn.metrics on the same rows, degenerate windows, intervals."""
from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from _monitoring_support import (
    T0,
    credit_features,
    log_rows,
    register_credit,
    register_multiclass,
    register_regressor,
    write,
)
from scipy.stats import binomtest
from sklearn import metrics as skm

from mlops_core import ControlRoom
from mlops_core.errors import InvalidInputError, NotFoundError
from mlops_core.monitoring import performance


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
    _, _frame = _binary_log(db)
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


# --- intervals of every metric, each against a reference computation on the same rows --------------------------

Z = 1.959963984540054


def _norm_ci(values: np.ndarray) -> tuple[float, float]:
    """The normal interval of a mean from the raw per-row values (scipy's norm, sample standard deviation)."""
    from scipy.stats import norm, sem

    return norm.interval(0.95, loc=float(np.mean(values)), scale=float(sem(values, ddof=1)))


def _wilson(k: int, n: int) -> tuple[float, float]:
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


def _bootstrap(part: pd.DataFrame, stat, draws: int = 2000, seed: int = 7) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    n = len(part)
    values = [stat(part.iloc[rng.integers(0, n, n)]) for _ in range(draws)]
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def test_every_classification_metric_has_an_interval_matching_its_reference(db):
    _, frame = _binary_log(db, n=2400)
    got = ControlRoom(db).model("credit").performance(window="week")
    lab = frame[frame["label"].notna()]
    part = lab[lab["version"] == 1]
    row = got[got["version"] == 1].sort_values("n_labelled").iloc[-1]
    part = part[part["ts"].dt.to_period("W").dt.start_time == row["window_start"]]
    assert row["n_labelled"] == len(part)
    y, p, s = part["label"].to_numpy(), part["prediction"].to_numpy(), part["score"].to_numpy()
    tp = int(((y == "1") & (p == "1")).sum())
    for metric, (k, n) in {"accuracy": ((y == p).sum(), len(y)), "precision": (tp, (p == "1").sum()),
                           "recall": (tp, (y == "1").sum())}.items():
        assert (row[f"{metric}_low"], row[f"{metric}_high"]) == pytest.approx(_wilson(k, n), abs=1e-9), metric
    every = frame[(frame["version"] == 1) & (frame["ts"].dt.to_period("W").dt.start_time == row["window_start"])]
    assert (row["positive_rate_low"], row["positive_rate_high"]) == pytest.approx(
        _wilson((every["prediction"] == "1").sum(), len(every)), abs=1e-9)
    # log loss: a mean of per-row losses (clipped as sklearn clips them)
    eps = np.finfo(np.float64).eps
    clipped = np.clip(s, eps, 1 - eps)
    losses = np.where(y == "1", -np.log(clipped), -np.log(1 - clipped))
    assert (row["log_loss_low"], row["log_loss_high"]) == pytest.approx(_norm_ci(losses), rel=1e-6)
    # ROC AUC: Hanley & McNeil's standard error, computed here from sklearn's AUC and the class counts
    yb = (y == "1").astype(int)
    a, n_pos, n_neg = skm.roc_auc_score(yb, s), yb.sum(), (1 - yb).sum()
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg))
    assert (row["roc_auc_low"], row["roc_auc_high"]) == pytest.approx((a - Z * se, a + Z * se), abs=1e-9)
    # F1 and ROC AUC also agree with a bootstrap of the rows (different method: a few hundredths apart at most)
    f1_boot = _bootstrap(part, lambda d: skm.f1_score(d["label"], d["prediction"], pos_label="1", zero_division=0))
    assert row["f1_low"] == pytest.approx(f1_boot[0], abs=0.02) and row["f1_high"] == pytest.approx(f1_boot[1], abs=0.02)
    assert row["f1_low"] < row["f1"] < row["f1_high"]
    auc_boot = _bootstrap(part, lambda d: skm.roc_auc_score((d["label"] == "1").astype(int), d["score"]), draws=800)
    assert row["roc_auc_low"] == pytest.approx(auc_boot[0], abs=0.02)
    assert row["roc_auc_high"] == pytest.approx(auc_boot[1], abs=0.02)


def test_every_regression_metric_has_an_interval_matching_its_reference(db):
    info = register_regressor(db)
    rng = np.random.default_rng(4)
    n = 600
    feats = pd.DataFrame({"distance": rng.gamma(2, 2, n), "zone": rng.choice(["a", "b", "c"], n)})
    truth = 10 + 3 * feats["distance"].to_numpy() + rng.normal(0, 3, n)
    pred = truth + rng.normal(0, 4, n)
    log = log_rows(feats, step=timedelta(seconds=30), prediction=pred)  # one day
    write(db, info, log, pd.DataFrame({"request_id": log["request_id"], "label": truth}))
    row = ControlRoom(db).model("eta").performance().iloc[0]
    e = pred - truth
    assert (row["mae_low"], row["mae_high"]) == pytest.approx(_norm_ci(np.abs(e)), rel=1e-6)
    mse_low, mse_high = _norm_ci(e * e)
    assert (row["rmse_low"], row["rmse_high"]) == pytest.approx((math.sqrt(mse_low), math.sqrt(mse_high)), rel=1e-6)
    assert (row["mape_low"], row["mape_high"]) == pytest.approx(_norm_ci(np.abs(e) / np.abs(truth)), rel=1e-6)
    var_y = float(np.var(truth))
    assert (row["r2_low"], row["r2_high"]) == pytest.approx((1 - mse_high / var_y, 1 - mse_low / var_y), rel=1e-6)
    for m in ("mae", "rmse", "r2", "mape"):
        assert row[f"{m}_low"] < row[m] < row[f"{m}_high"], m
    # the bootstrap of the rows agrees to within a few percent of the value
    boot = _bootstrap(pd.DataFrame({"e": e}), lambda d: float(np.mean(np.abs(d["e"]))), draws=2000)
    assert row["mae_low"] == pytest.approx(boot[0], rel=0.02) and row["mae_high"] == pytest.approx(boot[1], rel=0.02)


def test_too_few_labels_and_partial_windows_are_marked(db):
    _, frame = _binary_log(db, n=1200)
    got = ControlRoom(db).model("credit").performance(window="day")
    assert (got["too_few_labels"] == (got["n_labelled"] < performance.MIN_LABELLED_ROWS)).all()
    last = frame["ts"].max()
    partial = got[got["partial"]]
    assert set(partial["window_start"]) == {last.floor("D")}  # only the day the log is still in
    assert not got[got["window_start"] < last.floor("D")]["partial"].any()

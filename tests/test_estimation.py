"""Performance estimation without labels (CBPE): the statistics on simulated data with known truth, against
scikit-learn, the SQL scan against the same computation in numpy, the public API, the CLI, degenerate input."""
from __future__ import annotations

import json
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
from conftest import log_view
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from mlops_core import ControlRoom, Identity
from mlops_core.cli import main
from mlops_core.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from mlops_core.monitoring import estimated_performance, estimation
from mlops_core.store import Store, connect
from mlops_core.store import estimation as estore

METRICS = estimation.METRICS


# --- simulated data with known truth ------------------------------------------------------------------


def _truth(rng, n, shift=0.0):
    """A known calibrated model: P(y=1 | x) = sigmoid(0.3 + 1.6x), x ~ N(shift, 1)."""
    x = rng.normal(shift, 1.0, n)
    return 1 / (1 + np.exp(-(0.3 + 1.6 * x)))


def _draw(rng, p):
    return (rng.random(len(p)) < p).astype(int)


def _realized(y, pred, scores) -> dict:
    return {"accuracy": skm.accuracy_score(y, pred), "precision": skm.precision_score(y, pred, zero_division=0),
            "recall": skm.recall_score(y, pred, zero_division=0), "f1": skm.f1_score(y, pred, zero_division=0),
            "roc_auc": skm.roc_auc_score(y, scores)}


@pytest.fixture(scope="module")
def calibrated_reference():
    rng = np.random.default_rng(7)
    p = _truth(rng, 20_000)
    return estimation.fit_calibration(p, _draw(rng, p), p >= 0.5)


def test_estimates_are_close_and_bands_cover_at_their_level(calibrated_reference):
    """Windows under covariate shift: per-window error small, realized value inside the 95% band ~95% of the time."""
    rng = np.random.default_rng(11)
    cal = calibrated_reference
    errors = {m: [] for m in METRICS}
    inside = {m: [] for m in METRICS}
    shifts = []
    for _ in range(150):
        shift = rng.uniform(-0.8, 0.8)
        p = _truth(rng, 5000, shift)
        y = _draw(rng, p)
        pred = p >= 0.5
        est = estimation.estimate_rows(cal, p, pred).set_index("metric")
        real = _realized(y, pred, p)
        shifts.append(real["accuracy"])
        for m in METRICS:
            errors[m].append(abs(est.loc[m, "estimate"] - real[m]))
            inside[m].append(est.loc[m, "band_low"] <= real[m] <= est.loc[m, "band_high"])
    assert np.ptp(shifts) > 0.05  # the shift really moves performance
    for m in METRICS:
        assert np.mean(errors[m]) < 0.01, (m, np.mean(errors[m]))
        assert 0.90 <= np.mean(inside[m]) <= 0.995, (m, np.mean(inside[m]))


def test_sampling_error_matches_the_spread_of_realized_values():
    """Fixed scores, labels drawn 3000 times: the standard deviation of each realized metric equals the predicted
    sampling error (delta method) within 8%."""
    rng = np.random.default_rng(3)
    p = _truth(rng, 3000, 0.2)
    cal = estimation.fit_calibration(p, _draw(rng, p), check=False, max_rise=0.002)
    pc = estimation.calibrate(cal, p)
    pred = p >= 0.5
    est = estimation.estimate_rows(cal, p, pred).set_index("metric")
    draws = (rng.random((3000, len(p))) < pc).astype(float)
    tp, pos = draws[:, pred].sum(axis=1), draws.sum(axis=1)
    n1, n = pred.sum(), len(p)
    order = np.argsort(p, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(n)
    auc = (draws @ ranks - pos * (pos - 1) / 2) / (pos * (n - pos))
    realized = {"accuracy": (tp + (n - n1) - (pos - tp)) / n, "precision": tp / n1, "recall": tp / pos,
                "f1": 2 * tp / (n1 + pos), "roc_auc": auc}
    for m in METRICS:
        assert est.loc[m, "sampling_error"] == pytest.approx(np.std(realized[m]), rel=0.08), m
        assert est.loc[m, "estimate"] == pytest.approx(np.mean(realized[m]), abs=4 * est.loc[m, "sampling_error"]
                                                       / math.sqrt(3000) + 2e-4), m


def test_calibration_fixes_a_miscalibrated_score():
    rng = np.random.default_rng(5)
    p = _truth(rng, 20_000)
    y = _draw(rng, p)
    raw = p ** 2  # monotone in the truth, far from calibrated
    cal = estimation.fit_calibration(raw, y, raw >= 0.25)
    assert cal.applied and cal.ece_after < cal.ece_before / 3
    fixed = estimation.calibrate(cal, raw)
    assert estimation.expected_calibration_error(y, fixed) < 0.02 < estimation.expected_calibration_error(y, raw)
    wp = _truth(rng, 5000, 0.4)
    wy, wraw = _draw(rng, wp), wp ** 2
    pred = wraw >= 0.25
    real = _realized(wy, pred, wraw)
    est = estimation.estimate_rows(cal, wraw, pred).set_index("metric")["estimate"]
    naive = estimation.exact_estimate(wraw, wraw, pred)  # the raw scores taken as probabilities
    for m in ("accuracy", "precision", "recall", "f1"):
        assert abs(est[m] - real[m]) < 0.02, m
        assert abs(getattr(naive, m) - real[m]) > 2 * abs(est[m] - real[m]), m
    assert abs(est["roc_auc"] - real["roc_auc"]) < 0.02 < abs(naive.roc_auc - real["roc_auc"])


def test_calibration_map_is_sklearns_isotonic_fit():
    """Exactly scikit-learn's IsotonicRegression(out_of_bounds="clip") outside the grid cells holding one of its
    thresholds, and everywhere when the scores lie on the grid."""
    rng = np.random.default_rng(9)
    s = rng.beta(2, 3, 5000)
    y = _draw(rng, s ** 1.5)
    x = np.r_[rng.random(50_000), s, -0.5, 1.5]
    for scores in (np.round(s, 4), s):
        iso = IsotonicRegression(out_of_bounds="clip").fit(scores, y)
        cal = estimation.fit_calibration(scores, y, check=False)
        diff = np.abs(estimation.calibrate(cal, x) - iso.predict(x))
        snapped = np.isin(np.floor(x * cal.grid), np.floor(iso.X_thresholds_ * cal.grid))
        assert diff[~snapped].max() < 1e-9
        assert diff.mean() < 1e-4
        # the pools' shares of positives are the fitted values, and they account for every reference row
        assert cal.block_rows.sum() == len(scores)
        assert np.allclose(np.unique(iso.predict(scores)), np.unique(cal.block_means))
    assert diff.max() > 0 and not snapped.all()  # continuous scores: the cells holding a threshold do differ


def test_calibration_check_follows_nannymls_rule():
    rng = np.random.default_rng(2)
    p = _truth(rng, 5000)
    y = _draw(rng, p)
    check = estimation.calibration_check(p, y)
    assert check.needed == (check.ece_after < check.ece_before) and check.ece_before < 0.03  # calibrated already
    skewed = estimation.calibration_check(np.sqrt(p), y)
    assert skewed.needed and skewed.ece_after < skewed.ece_before / 3
    one_class = estimation.calibration_check(p, np.zeros(5000, dtype=int))
    assert not one_class.needed and "one class" in one_class.reason
    separable = estimation.calibration_check(y * 0.9 + 0.05, y)
    assert not separable.needed and "separate" in separable.reason
    # ECE: equal-count bins of the rows sorted by probability
    assert estimation.expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0
    assert estimation.expected_calibration_error([1, 1], [0.0, 0.0]) == 1
    assert math.isnan(estimation.expected_calibration_error([], []))


def test_expected_metrics_equal_sklearn_on_probability_weighted_labels():
    """CBPE's expected confusion matrix is sklearn's on every row counted once as positive (weight p) and once as
    negative (weight 1-p); NannyML's ROC AUC estimate is sklearn's weighted ROC AUC of the same rows."""
    rng = np.random.default_rng(4)
    s = np.round(rng.random(3000), 3)  # ties
    p = np.clip(s * 0.8 + 0.1 + rng.normal(0, 0.0, 3000), 0, 1)
    pred = s >= 0.45
    exact = estimation.exact_estimate(p, s, pred)
    y2, pred2, w2, s2 = np.r_[np.ones(3000), np.zeros(3000)], np.r_[pred, pred], np.r_[p, 1 - p], np.r_[s, s]
    assert exact.accuracy == pytest.approx(skm.accuracy_score(y2, pred2, sample_weight=w2), abs=1e-12)
    assert exact.precision == pytest.approx(skm.precision_score(y2, pred2, sample_weight=w2), abs=1e-12)
    assert exact.recall == pytest.approx(skm.recall_score(y2, pred2, sample_weight=w2), abs=1e-12)
    assert exact.f1 == pytest.approx(skm.f1_score(y2, pred2, sample_weight=w2), abs=1e-12)
    assert exact.roc_auc == pytest.approx(skm.roc_auc_score(y2, s2, sample_weight=w2), abs=1e-12)


def test_roc_auc_estimate_is_nannymls_expected_curve():
    """Distinct scores: the area under the expected ROC curve (rows sorted by score, descending, cumulative p and
    1-p, trapezoids), as NannyML's ``estimate_roc_auc`` draws it."""
    rng = np.random.default_rng(6)
    s = rng.random(2000)
    p = np.clip(s + rng.normal(0, 0.05, 2000), 0, 1)
    order = np.argsort(s)[::-1]
    tps = np.r_[0, np.cumsum(p[order])]
    fps = np.r_[0, np.cumsum(1 - p[order])]
    curve = skm.auc(fps / fps[-1], tps / tps[-1])
    assert estimation.exact_estimate(p, s, s > 0.5).roc_auc == pytest.approx(curve, abs=1e-12)


def test_binned_estimates_equal_row_by_row_ones_within_the_auc_bound(calibrated_reference):
    rng = np.random.default_rng(8)
    truth = _truth(rng, 20_000)
    for cal in (calibrated_reference, estimation.fit_calibration(truth ** 3, _draw(rng, truth))):
        p = _truth(rng, 8000, 0.3)
        s = p if not cal.applied else p ** 3
        pred = s >= np.median(s)
        binned = estimation.estimate_rows(cal, s, pred).set_index("metric")
        exact = estimation.exact_estimate(estimation.calibrate(cal, s), s, pred)
        for m in ("accuracy", "precision", "recall", "f1"):
            assert binned.loc[m, "estimate"] == pytest.approx(getattr(exact, m), abs=1e-12), m
        bound = binned.loc["roc_auc", "auc_bound"]
        assert 0 <= bound < 1e-3
        assert abs(binned.loc["roc_auc", "estimate"] - exact.roc_auc) <= bound / 2 + 1e-12


def test_degenerate_input():
    rng = np.random.default_rng(1)
    p = _truth(rng, 2000)
    y = _draw(rng, p)
    cal = estimation.fit_calibration(p, y)
    # empty window: no rows, no estimates
    empty = estimation.estimate_rows(cal, np.array([]), np.array([], dtype=bool))
    assert empty.empty and list(empty.columns) == [c for c in estimation.ESTIMATE_COLUMNS if c != "group"]
    # non-finite scores are left out
    agg = estimation.aggregate(cal, [0.2, np.nan, 0.7, np.inf], [False, True, True, True])
    assert agg.n.sum() == 3 and agg.bin.max() == len(cal.cells)  # NaN left out; inf in the last bin, as in SQL
    # constant scores: ROC AUC 0.5 exactly, with no sampling error
    const = estimation.estimate_rows(cal, np.full(500, 0.6), np.ones(500, dtype=bool)).set_index("metric")
    assert const.loc["roc_auc", "estimate"] == pytest.approx(0.5, abs=1e-12)
    assert const.loc["roc_auc", "sampling_error"] < 1e-9
    # nothing predicted positive: precision 0 as zero_division=0, recall 0
    none = estimation.estimate_rows(cal, p[:300], np.zeros(300, dtype=bool)).set_index("metric")
    assert none.loc["precision", "estimate"] == 0 and none.loc["recall", "estimate"] == 0
    # a calibration that says nobody is positive: ROC AUC undefined
    zero = estimation.fit_calibration(p, np.zeros(2000, dtype=int), check=False)
    est = estimation.estimate_rows(zero, p[:300], p[:300] > 0.5).set_index("metric")
    assert est.loc["accuracy", "estimate"] == pytest.approx(np.mean(p[:300] <= 0.5))
    assert math.isnan(est.loc["roc_auc", "estimate"])
    # a reference with one class: no calibration (identity map), estimation still works
    single = estimation.fit_calibration(p, np.ones(2000, dtype=int))
    assert not single.applied and single.reference.roc_auc is None
    assert np.allclose(estimation.calibrate(single, [0.0, 0.25, 1.0]), [0.0, 0.25, 1.0])
    # bad input: clear errors
    with pytest.raises(InvalidInputError, match="at least 100"):
        estimation.fit_calibration(p[:50], y[:50])
    with pytest.raises(InvalidInputError, match="NaN"):
        estimation.fit_calibration(np.r_[p[:-1], np.nan], y)
    with pytest.raises(InvalidInputError, match="0/1"):
        estimation.fit_calibration(p, np.where(y == 1, 2, 0))
    with pytest.raises(InvalidInputError, match="length"):
        estimation.fit_calibration(p, y[:-1])
    with pytest.raises(InvalidInputError, match="between 0 and 1"):
        estimation.estimate_rows(cal, p, p > 0.5, level=1.5)


# --- the SQL scan, the public API and the CLI on a logged model ------------------------------------------


def _log_credit(db, days=4, n=1500, labelled_days=2, seed=0):
    """Register ``credit`` and log ``days`` days of its real predictions under a growing income shift; labels (from
    the training rule) for the first ``labelled_days`` days. Returns (info, the logged rows with columns label (the
    truth) and labelled (whether the label was written))."""
    info = register_credit(db)
    pipe = ControlRoom(db).model("credit").load()
    positive = list(pipe.classes_).index("1")
    parts = []
    for d in range(days):
        feats = credit_features(n, seed=100 + seed + d, income_shift=2.0 * d)
        rng = np.random.default_rng(200 + seed + d)
        logit = (feats["income"] - 50) / 5 + (feats["region"] == "south") * 0.5
        truth = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "1", "0")
        log = log_rows(feats, start=T0 + timedelta(days=d), step=timedelta(days=1) / n,
                       prediction=np.asarray(pipe.predict(feats)).astype(str),
                       score=pipe.predict_proba(feats)[:, positive], prefix=f"d{d}-")
        parts.append(log.assign(label=truth, labelled=d < labelled_days))
    frame = pd.concat(parts, ignore_index=True)
    lab = frame[frame["labelled"]]
    write(db, info, frame.drop(columns=["label", "labelled"]),
          pd.DataFrame({"request_id": lab["request_id"], "label": lab["label"]}))
    return info, frame


def test_registration_stores_the_holdout_calibration(db):
    register_credit(db)
    model = ControlRoom(db).model("credit")
    record = model.estimation_calibration()
    assert record.source == "holdout" and record.version == 1
    assert record.calibration.rows == model.version().holdout_rows
    assert record.calibration.reference.accuracy == pytest.approx(model.version().holdout_metrics["accuracy"])
    assert record.calibration.reference.roc_auc == pytest.approx(model.version().holdout_metrics["roc_auc"])
    with connect(db, write=True, create=True) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] >= 33
        cells = con.execute("SELECT cell FROM estimation_breakpoints WHERE calibration_id = ? ORDER BY knot",
                            [record.id]).fetchnumpy()["cell"]
    assert cells[0] == 0 and cells[-1] == record.calibration.grid and np.all(np.diff(cells) > 0)


def test_sql_bin_sums_equal_the_numpy_computation_on_the_same_rows(db):
    info, frame = _log_credit(db, days=3, labelled_days=0)
    # edge cases: exact breakpoints, scores outside [0, 1], a missing score
    model = ControlRoom(db).model("credit")
    cal = model.estimation_calibration().calibration
    edge = log_rows(credit_features(8, 1), start=T0 + timedelta(hours=5), prediction=["1", "0"] * 4,
                    score=np.r_[cal.cells[[1, 5, -2]] / cal.grid, 0.0, 1.0, -0.2, 1.3, np.nan], prefix="edge-")
    write(db, info, edge)
    rows = pd.concat([frame.drop(columns=["label", "labelled"]), edge], ignore_index=True)
    cells, bins = estimation.cell_bins(cal)
    with Store(db).engine() as con:
        sql = estore.bin_sums(con, log_view(db, "credit"), "day", cal.grid,
                              pd.DataFrame({"version": 1, "cell": cells, "bin": bins}))
    days, codes = np.unique(rows["ts"].dt.floor("D").to_numpy(), return_inverse=True)
    mine = estimation.aggregate(cal, rows["score"].to_numpy(float), (rows["prediction"] == "1").to_numpy(), codes)
    sql = sql.assign(group=np.searchsorted(days, pd.to_datetime(sql["window_start"]).to_numpy()))
    sql = sql.sort_values(["group", "bin", "positive"]).reset_index(drop=True)
    assert len(sql) == len(mine.group) and sql["n"].sum() == len(rows) - 1
    assert np.array_equal(sql["group"], mine.group) and np.array_equal(sql["bin"], mine.bin)
    assert np.array_equal(sql["positive"].astype(bool), mine.positive) and np.array_equal(sql["n"], mine.n)
    assert np.allclose(sql["score_sum"], mine.score_sum, rtol=1e-12, atol=1e-12)
    assert np.allclose(sql["score_sq_sum"], mine.score_sq_sum, rtol=1e-12, atol=1e-12)
    # ... and the API's estimates are the numpy ones of each window's rows
    got = model.estimate_performance(store=False, realized=False)
    for day, part in rows[rows["score"].notna()].groupby(rows["ts"].dt.floor("D")):
        want = estimation.estimate_rows(cal, part["score"].to_numpy(), (part["prediction"] == "1").to_numpy())
        have = got[got["window_start"] == day].set_index("metric")
        for m, row in want.set_index("metric").iterrows():
            assert have.loc[m, "estimate"] == pytest.approx(row["estimate"], abs=1e-12)
            assert have.loc[m, "band_low"] == pytest.approx(row["band_low"], abs=1e-12)


def test_estimate_performance_frame_and_realized_values(db):
    _, frame = _log_credit(db)
    model = ControlRoom(db).model("credit")
    df = model.estimate_performance(window="day", store=False)
    assert list(df.columns) == estimated_performance.FRAME_COLUMNS
    assert str(df["n_labelled"].dtype) == "Int64" and str(df["window_start"].dtype).startswith("datetime64")
    assert len(df) == 4 * len(METRICS) and set(df["metric"]) == set(METRICS)
    labelled = df[df["window_start"] < pd.Timestamp(T0 + timedelta(days=2))]
    unlabelled = df[df["window_start"] >= pd.Timestamp(T0 + timedelta(days=2))]
    assert labelled["realized"].notna().all() and (labelled["n_labelled"] == 1500).all()
    assert unlabelled["realized"].isna().all() and (unlabelled["n_labelled"] == 0).all()
    assert df["estimate"].notna().all() and (df["band_low"] <= df["estimate"]).all()
    assert (df["estimate"] <= df["band_high"]).all() and (df["n"] == 1500).all()
    # realized is the monitoring definition (sklearn on the labelled rows)
    day0 = frame[frame["ts"] < T0 + timedelta(days=1)]
    real = labelled[labelled["window_start"] == pd.Timestamp(T0)].set_index("metric")["realized"]
    assert real["accuracy"] == pytest.approx(skm.accuracy_score(day0["label"], day0["prediction"]))
    assert real["roc_auc"] == pytest.approx(skm.roc_auc_score(day0["label"] == "1", day0["score"]))
    # the estimates are near the truth where it is known (the holdout has only 400 rows)
    acc = labelled[labelled["metric"] == "accuracy"]
    assert (abs(acc["estimate"] - acc["realized"]) < 0.05).all()
    assert ((acc["band_low"] <= acc["realized"]) & (acc["realized"] <= acc["band_high"])).all()
    # a range without predictions: an empty frame of the same columns
    none = model.estimate_performance(start=T0 + timedelta(days=30), store=False)
    assert none.empty and list(none.columns) == estimated_performance.FRAME_COLUMNS
    # one version, a range, a wider band
    one = model.estimate_performance(version=1, start=T0 + timedelta(days=3), store=False, level=0.99)
    assert list(one["window_start"].unique()) == [pd.Timestamp(T0 + timedelta(days=3))]
    day3 = df[df["window_start"] == pd.Timestamp(T0 + timedelta(days=3))].set_index("metric")
    wide = one.set_index("metric")
    assert (wide["band_high"] - wide["band_low"] > day3["band_high"] - day3["band_low"]).all()


def test_stored_estimates_are_judged_by_labels_that_arrive_later(db):
    info, frame = _log_credit(db, days=3, labelled_days=0)
    room = ControlRoom(db, identity=Identity("olga", "operator"))
    made = room.model("credit").estimate_performance()
    assert (made["n_labelled"] == 0).all()
    before = room.model("credit").estimates_stored()
    assert len(before) == 3 * len(METRICS) and before["realized"].isna().all() and before["in_band"].isna().all()
    assert list(before.columns) == estimated_performance.STORED_COLUMNS
    write(db, info, frame.iloc[:0].drop(columns=["label", "labelled"]),
          pd.DataFrame({"request_id": frame["request_id"], "label": frame["label"]}))
    after = room.model("credit").estimates_stored()
    assert after["realized"].notna().all() and (after["n_labelled"] == 1500).all()
    assert (after["n_labelled_then"] == 0).all()
    assert np.allclose(after["error"], after["realized"] - after["estimate"])
    assert after["in_band"].mean() >= 0.8
    assert np.allclose(after["estimate"], made["estimate"])
    # estimating again replaces the stored rows (now with the labels known then)
    room.model("credit").estimate_performance()
    again = room.model("credit").estimates_stored()
    assert len(again) == len(after) and (again["n_labelled_then"] == 1500).all()


def test_viewers_estimate_without_storing(db):
    _log_credit(db, days=2, labelled_days=1)
    viewer = ControlRoom(db, identity=Identity("vera", "viewer")).model("credit")
    with pytest.raises(PermissionDeniedError):
        viewer.estimate_performance()
    assert len(viewer.estimate_performance(store=False)) == 2 * len(METRICS)
    assert viewer.estimates_stored().empty


def test_a_version_without_calibration_uses_a_labelled_reference_window(db):
    _info, _frame = _log_credit(db, days=4, labelled_days=2)
    with connect(db, write=True, create=True) as con:
        con.execute("DELETE FROM estimation_breakpoints")
        con.execute("DELETE FROM estimation_blocks")
        con.execute("DELETE FROM estimation_calibrations")
    model = ControlRoom(db).model("credit")
    with pytest.raises(NotFoundError, match="--reference-from"):
        model.estimate_performance(store=False)
    with pytest.raises(NotFoundError, match="no version 7"):
        model.estimate_performance(version=7, store=False)
    with pytest.raises(InvalidInputError, match="at least 100"):
        model.estimate_performance(reference_start=T0 + timedelta(days=3), reference_end=T0 + timedelta(days=4))
    df = model.estimate_performance(reference_start=T0, reference_end=T0 + timedelta(days=2))
    record = model.estimation_calibration()
    assert record.source == "window" and record.calibration.rows == 3000 and record.window_end == T0 + timedelta(days=2)
    assert (df["calibration_id"] == record.id).all()
    recent = df[(df["metric"] == "accuracy") & df["realized"].isna()]
    assert len(recent) == 2 and recent["estimate"].between(0.5, 1).all()
    # calibrating explicitly stores another calibration that later estimates use
    again = model.calibrate_estimation(T0, T0 + timedelta(days=1))
    assert again.id != record.id and model.estimation_calibration().id == again.id


def test_regression_and_multiclass_models_get_a_clear_no(db):
    register_regressor(db)
    with pytest.raises(InvalidInputError, match="No estimate is available for 'eta': it is a regression model"):
        ControlRoom(db).model("eta").estimate_performance(store=False)
    register_multiclass(db)
    with pytest.raises(InvalidInputError, match="multiclass"):
        ControlRoom(db).model("tri").estimate_performance(store=False)
    with pytest.raises(InvalidInputError, match="regression"):
        ControlRoom(db).model("eta").estimates_stored()


def test_cli_performance_estimate(db, capsys):
    _log_credit(db, days=3, labelled_days=1)
    args = ["performance", "--model", "credit", "--db", str(db), "--estimate"]
    assert main([*args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 * len(METRICS)
    assert {"window_start", "version", "metric", "estimate", "band_low", "band_high", "realized", "n_labelled"} <= set(rows[0])
    assert rows[-1]["realized"] is None and rows[0]["realized"] is not None
    assert main([*args, "--level", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "90% band" in out and "roc_auc" in out and "2026-03-03" in out
    assert main(["performance", "--model", "credit", "--db", str(db), "--estimate-history"]) == 0
    out = capsys.readouterr().out
    assert "in band" in out and "realized values lie in their band" in out
    assert main([*args, "--level", "2"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
    assert main([*args, "--reference-from", "2026-03-01"]) == 2
    assert "--reference-to" in capsys.readouterr().err


def test_cli_estimate_for_a_regression_model_says_none_is_available(db, capsys):
    register_regressor(db)
    assert main(["performance", "--model", "eta", "--db", str(db), "--estimate"]) == 2
    err = capsys.readouterr().err
    assert "No estimate is available" in err and "regression" in err

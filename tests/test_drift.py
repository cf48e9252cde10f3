"""Drift statistics against scipy, degenerate inputs, the SQL path against the numpy path, alarm properties."""
from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from _monitoring_support import T0, credit_features, log_rows, register_credit, write
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from mlops_core import ControlRoom
from mlops_core.data import reference as refmod
from mlops_core.errors import InvalidInputError, NotFoundError
from mlops_core.monitoring import drift
from mlops_core.store import connect


def _frames(n=4000, m=3000, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"x": rng.normal(0, 1, n), "y": rng.lognormal(0, 1, n),
                        "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})
    cur = pd.DataFrame({"x": rng.normal(shift, 1, m), "y": rng.lognormal(0, 1, m),
                        "c": rng.choice(["a", "b", "c", "d"], m, p=[0.4, 0.3, 0.2, 0.1])})
    return ref, cur


def test_compare_columns_and_defaults():
    ref, cur = _frames()
    out = drift.compare(ref, cur)
    assert list(out.columns) == ["feature", "method", "statistic", "p_value", "threshold", "drifted"]
    assert dict(zip(out["feature"], out["method"], strict=False)) == {"x": "wasserstein", "y": "wasserstein", "c": "jensen_shannon"}
    assert out["drifted"].dtype == bool


def test_ks_equals_scipy_ks_2samp():
    ref, cur = _frames(shift=0.05)
    for n in (300, 4000):  # exact mode (small) and asymptotic mode (large)
        out = drift.compare(ref.head(n), cur.head(n), methods="ks")
        for f in ("x", "y"):
            row = out[out["feature"] == f].iloc[0]
            res = ks_2samp(ref[f].head(n), cur[f].head(n))
            assert row["statistic"] == res.statistic
            assert row["p_value"] == res.pvalue
            assert row["drifted"] == (res.pvalue < 0.05)


def test_chi2_equals_scipy_chi2_contingency_on_the_same_counts():
    ref, cur = _frames()
    row = drift.compare(ref, cur, methods="chi2").set_index("feature").loc["c"]
    cats = ["a", "b", "c", "d"]
    table = np.array([ref["c"].value_counts().reindex(cats, fill_value=0), cur["c"].value_counts().reindex(cats, fill_value=0)])
    res = chi2_contingency(table)
    assert row["statistic"] == pytest.approx(res.statistic, rel=1e-12)
    assert row["p_value"] == pytest.approx(res.pvalue, rel=1e-9, abs=1e-300)
    # two categories: scipy's Yates correction applies, and so does ours
    stat, p = drift.chi2.chi2([30, 70], [45, 55])
    res = chi2_contingency(np.array([[30, 70], [45, 55]]))
    assert (stat, p) == pytest.approx((res.statistic, res.pvalue))
    # numeric chi-square is on the reference decile bins
    x = drift.compare(ref, cur, methods="chi2").set_index("feature").loc["x"]
    edges = refmod.decile_edges(ref["x"].to_numpy())
    t = np.array([refmod.bin_counts(ref["x"].to_numpy(), edges), refmod.bin_counts(cur["x"].to_numpy(), edges)])
    assert x["statistic"] == pytest.approx(chi2_contingency(t).statistic)


def test_distances_equal_their_definitions():
    ref, cur = _frames(shift=0.3)
    out = drift.compare(ref, cur, methods=["wasserstein", "jensen_shannon", "psi", "linf"]).set_index(["feature", "method"])
    w = wasserstein_distance(ref["x"], cur["x"]) / ref["x"].std(ddof=0)
    assert out.loc[("x", "wasserstein"), "statistic"] == pytest.approx(w, rel=1e-12)
    edges = refmod.decile_edges(ref["x"].to_numpy())
    p = refmod.bin_counts(ref["x"].to_numpy(), edges) / len(ref)
    q = refmod.bin_counts(cur["x"].to_numpy(), edges) / len(cur)
    assert out.loc[("x", "jensen_shannon"), "statistic"] == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)
    assert out.loc[("x", "psi"), "statistic"] == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=1e-12)
    pc = ref["c"].value_counts(normalize=True).reindex(["a", "b", "c", "d"], fill_value=0).to_numpy()
    qc = cur["c"].value_counts(normalize=True).reindex(["a", "b", "c", "d"], fill_value=0).to_numpy()
    assert out.loc[("c", "linf"), "statistic"] == pytest.approx(np.max(np.abs(pc - qc)))
    assert out.loc[("c", "jensen_shannon"), "statistic"] == pytest.approx(jensenshannon(pc, qc, base=2), rel=1e-9)
    # PSI floors empty shares at 1e-4: category "d" is absent from the reference
    pf, qf = np.maximum(pc, 1e-4), np.maximum(qc, 1e-4)
    assert out.loc[("c", "psi"), "statistic"] == pytest.approx(np.sum((qf - pf) * np.log(qf / pf)))
    assert ("c", "wasserstein") not in out.index and ("x", "linf") not in out.index  # not applicable: skipped


def test_methods_and_thresholds_per_feature():
    ref, cur = _frames(shift=0.3)
    out = drift.compare(ref, cur, methods={"x": ["psi", "ks"], "c": "linf"}, thresholds={"x": {"psi": 0.01}, "linf": 0.5})
    got = {(r.feature, r.method): r.threshold for r in out.itertuples()}
    # features missing from the dict keep their kind's default method
    assert got == {("x", "psi"): 0.01, ("x", "ks"): 0.05, ("c", "linf"): 0.5, ("y", "wasserstein"): 0.1}
    with pytest.raises(InvalidInputError, match="Unknown drift method 'kl'"):
        drift.compare(ref, cur, methods="kl")
    with pytest.raises(InvalidInputError, match="applies to the categorical feature"):
        drift.compare(ref, cur, methods={"c": "wasserstein"})
    with pytest.raises(InvalidInputError, match="must be a number"):
        drift.compare(ref, cur, thresholds={"wasserstein": "high"})


def test_degenerate_inputs():
    ref = pd.DataFrame({"const": [1.0] * 50, "nulls": [np.nan] * 50, "one": ["a"] * 50, "x": np.arange(50.0)})
    # empty current frame: NaN statistics, never drifted
    out = drift.compare(ref, ref.iloc[0:0])
    assert out["statistic"].isna().all() and not out["drifted"].any()
    cur = pd.DataFrame({"const": [1.0] * 30, "nulls": [np.nan] * 30, "one": ["a"] * 30,
                        "x": np.r_[np.arange(28.0), np.nan, np.inf]})
    out = drift.compare(ref, cur, methods=["wasserstein", "ks", "chi2", "psi", "jensen_shannon", "linf"]).set_index(
        ["feature", "method"])
    assert out.loc[("const", "wasserstein"), "statistic"] == 0.0 and not out.loc[("const", "wasserstein"), "drifted"]
    assert out.loc[("const", "ks"), "statistic"] == 0.0
    assert out.loc[("nulls", "wasserstein"), "statistic"] != out.loc[("nulls", "wasserstein"), "statistic"]  # NaN
    assert not out.loc["nulls"]["drifted"].any()
    assert out.loc[("one", "chi2"), "statistic"] == 0.0 and out.loc[("one", "chi2"), "p_value"] == 1.0
    assert out.loc[("one", "linf"), "statistic"] == 0.0
    # NaN is left out, +inf is a value (KS ranks it; Wasserstein uses the finite values)
    assert out.loc[("x", "ks"), "statistic"] == ks_2samp(ref["x"], cur["x"].dropna()).statistic
    assert math.isfinite(out.loc[("x", "wasserstein"), "statistic"])
    # a constant reference that starts moving is infinitely far in units of its (zero) spread
    moved = drift.compare(ref[["const"]], pd.DataFrame({"const": [2.0] * 500}), methods="wasserstein")
    assert moved["statistic"].iloc[0] == math.inf and bool(moved["drifted"].iloc[0])


def test_compare_with_reference_agrees_with_raw_data():
    ref, cur = _frames(n=20000, m=5000, shift=0.25)
    summary = refmod.summarise(ref, [], {"x": "numeric", "y": "numeric", "c": "categorical"})
    stored = drift.compare_with_reference(summary, cur, methods=["wasserstein", "ks", "jensen_shannon", "psi", "chi2"])
    raw = drift.compare(ref, cur, methods=["wasserstein", "ks", "jensen_shannon", "psi", "chi2"])
    a, b = stored.set_index(["feature", "method"]), raw.set_index(["feature", "method"])
    assert list(stored.columns) == list(raw.columns)
    # binned KS is a lower bound of the exact D; Wasserstein is exact for a location shift
    assert a.loc[("x", "ks"), "statistic"] <= b.loc[("x", "ks"), "statistic"] + 1e-12
    assert a.loc[("x", "ks"), "statistic"] == pytest.approx(b.loc[("x", "ks"), "statistic"], abs=0.02)
    assert a.loc[("x", "wasserstein"), "statistic"] == pytest.approx(b.loc[("x", "wasserstein"), "statistic"], rel=0.05)
    for key in (("x", "jensen_shannon"), ("x", "psi"), ("x", "chi2")):
        assert a.loc[key, "statistic"] == pytest.approx(b.loc[key, "statistic"], rel=1e-9)
    # unseen category "d" has its own bin in raw data and shares one "unseen" bin against a summary
    assert a.loc[("c", "jensen_shannon"), "statistic"] == pytest.approx(b.loc[("c", "jensen_shannon"), "statistic"])
    assert bool(a.loc[("x", "wasserstein"), "drifted"]) and bool(b.loc[("x", "wasserstein"), "drifted"])


def test_wasserstein_estimate_sees_scale_changes():
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 20000)})
    cur = pd.DataFrame({"x": rng.normal(0, 1.5, 20000)})
    summary = refmod.summarise(ref, [], {"x": "numeric"})
    est = drift.compare_with_reference(summary, cur)["statistic"].iloc[0]
    exact = drift.compare(ref, cur)["statistic"].iloc[0]
    assert est == pytest.approx(exact, rel=0.1)


# --- the alarm properties -------------------------------------------------------------------


@pytest.mark.slow
def test_no_false_alarm_on_one_million_rows_of_the_same_distribution():
    rng = np.random.default_rng(11)
    n = 1_000_000

    def sample():
        return pd.DataFrame({
            "normal": rng.normal(50, 10, n), "skewed": rng.lognormal(0, 1, n),
            "integer": rng.integers(0, 100, n).astype(float), "rate": rng.beta(2, 5, n),
            "cat": rng.choice(list("abcdef"), n, p=[0.3, 0.25, 0.2, 0.15, 0.07, 0.03]),
        })

    ref, cur = sample(), sample()
    summary = refmod.summarise(ref, [], {c: ("categorical" if c == "cat" else "numeric") for c in ref.columns})
    for out in (drift.compare(ref, cur), drift.compare_with_reference(summary, cur)):
        assert not out["drifted"].any(), out
        assert (out["statistic"] < 0.01).all()  # effect sizes at 1M rows are ~0.001, far below 0.1


def test_false_alarm_rate_per_feature_and_window_is_below_one_percent(db):
    """200 daily windows of 2,000 rows from the training distribution: at most 1% (feature, window) alarms."""
    info = register_credit(db, n=2000)
    days, per_day = 200, 2000
    feats = credit_features(days * per_day, seed=7)
    log = log_rows(feats, step=timedelta(days=1) / per_day, prediction=np.array(["0"] * len(feats)),
                   score=np.full(len(feats), 0.5))
    write(db, info, log)
    out = ControlRoom(db).model("credit").drift(window="day", store=False)
    feats_only = out[~out["feature"].isin(drift.PSEUDO_FEATURES)]
    assert feats_only["window_start"].nunique() == days
    assert len(feats_only) == 3 * days
    assert feats_only["drifted"].mean() <= 0.01
    # without the guard the raw effect size alone would not be enough at this window size for every feature
    assert feats_only["statistic"].max() < 0.2


def test_quarter_sd_mean_shift_is_flagged_in_the_first_full_window(db):
    info = register_credit(db, n=2000)
    sd = credit_features(2000, 0)["income"].std(ddof=0)
    per_day = 2000
    before = credit_features(5 * per_day, seed=21)
    after = credit_features(6 * per_day, seed=22, income_shift=0.25 * sd)
    # the shift starts at noon of day 5: day 5 is mixed, day 6 is the first full window after it
    start_shift = T0 + timedelta(days=4, hours=12)
    step = timedelta(days=1) / per_day
    b = log_rows(before.head(int(4.5 * per_day)), step=step, prediction=np.array(["0"] * int(4.5 * per_day)))
    a = log_rows(after.head(int(5.5 * per_day)), start=start_shift, step=step, prefix="s",
                 prediction=np.array(["0"] * int(5.5 * per_day)))
    write(db, info, pd.concat([b, a], ignore_index=True))
    out = ControlRoom(db).model("credit").drift(store=False)
    income = out[out["feature"] == "income"].set_index("window_start")
    assert not income.loc[pd.Timestamp(T0 + timedelta(days=3)), "drifted"]
    first_full = pd.Timestamp(T0 + timedelta(days=5))
    assert bool(income.loc[first_full, "drifted"])
    assert income.loc[first_full, "statistic"] == pytest.approx(0.25, abs=0.06)
    assert income.loc[income.index > first_full, "drifted"].all()
    others = out[out["feature"].isin(["age", "region"])]
    assert others["drifted"].mean() <= 0.1


# --- over time, stored -----------------------------------------------------------------------


def _drifting_log(db):
    info = register_credit(db, n=2000)
    per_day = 500
    parts = []
    for d in range(6):
        feats = credit_features(per_day, seed=100 + d, income_shift=8.0 if d >= 4 else 0.0)
        rng = np.random.default_rng(d)
        score = rng.random(per_day)
        parts.append(log_rows(feats, start=T0 + timedelta(days=d), step=timedelta(days=1) / per_day,
                              prediction=np.where(score > 0.5, "1", "0"), score=score, prefix=f"d{d}-"))
    log = pd.concat(parts, ignore_index=True)
    labels = pd.DataFrame({"request_id": log["request_id"][::2], "label": np.where(log["score"][::2] > 0.3, "1", "0")})
    write(db, info, log, labels)
    return info, log, labels


def test_over_time_sql_counts_equal_the_numpy_path_on_the_same_rows(db):
    _info, log, labels = _drifting_log(db)
    out = ControlRoom(db).model("credit").drift(methods=["wasserstein", "psi", "ks", "chi2", "jensen_shannon", "linf"])
    with connect(db, write=True, create=True) as con:
        from mlops_core.store import references as rstore

        summary = rstore.load_reference(con, drift.default_reference_id(con, "credit"))
    assert {"__prediction__", "__score__", "__target__"} <= set(out["feature"])
    for ws, part in log.groupby(log["ts"].dt.floor("D")):
        cur = part.rename(columns={"prediction": "__prediction__", "score": "__score__"})
        lab = labels.set_index("request_id")["label"]
        cur["__target__"] = part["request_id"].map(lab)
        cur["__target__"] = cur["__target__"].where(cur["__target__"].notna(), None)
        expected = drift.compare_with_reference(summary, cur, methods=["wasserstein", "psi", "ks", "chi2",
                                                                       "jensen_shannon", "linf"])
        got = out[out["window_start"] == ws]
        merged = expected.merge(got, on=["feature", "method"], suffixes=("_np", "_sql"))
        assert len(merged) == len(expected) == len(got)
        assert np.allclose(merged["statistic_np"], merged["statistic_sql"], rtol=1e-9, equal_nan=True)
        assert np.allclose(merged["p_value_np"], merged["p_value_sql"], rtol=1e-9, equal_nan=True)
        assert (merged["drifted_np"] == merged["drifted_sql"]).all()
    income = out[(out["feature"] == "income") & (out["method"] == "wasserstein")].set_index("window_start")["drifted"]
    assert list(income) == [False, False, False, False, True, True]


def test_over_time_stores_every_window_and_replaces_on_rerun(db):
    _drifting_log(db)
    first = ControlRoom(db).model("credit").drift()
    again = ControlRoom(db).model("credit").drift()
    stored = ControlRoom(db).model("credit").drift_stored()
    assert len(stored) == len(first) == len(again)
    assert stored["window_start"].nunique() == 6
    assert (~stored["drifted"]).sum() > 0  # stored whether drifted or not
    with connect(db, write=True, create=True) as con:
        n = con.execute("SELECT count(*) FROM drift_results WHERE model = 'credit'").fetchone()[0]
    assert n == len(first)
    # a narrower range replaces only its own windows
    ControlRoom(db).model("credit").drift(start=T0 + timedelta(days=5))
    assert len(ControlRoom(db).model("credit").drift_stored()) == len(first)
    assert ControlRoom(db).model("credit").drift_stored(start=T0 + timedelta(days=5))["window_start"].nunique() == 1


def test_share_distribution_and_latest(db):
    _drifting_log(db)
    ControlRoom(db).model("credit").drift()
    share = ControlRoom(db).model("credit").drift_share()
    assert list(share.columns) == ["window_start", "n_features", "n_drifted", "share", "partial"]
    assert (share["n_features"] == 3).all()
    assert list(share["n_drifted"]) == [0, 0, 0, 0, 1, 1]
    assert share["share"].iloc[-1] == pytest.approx(1 / 3)
    dist = ControlRoom(db).model("credit").drift_distribution("income", start=T0 + timedelta(days=4))
    assert len(dist) == 10 and dist["reference_share"].sum() == pytest.approx(1)
    assert dist["current_share"].sum() == pytest.approx(1) and dist["current_count"].sum() == 1000
    assert dist["current_share"].iloc[-1] > dist["reference_share"].iloc[-1]  # income moved up
    cat = ControlRoom(db).model("credit").drift_distribution("region")
    assert set(cat["bin"]) == {"north", "south", "east"}
    top = ControlRoom(db).model("credit").drift_latest()
    assert top.iloc[0]["feature"] == "income" and bool(top.iloc[0]["drifted"])
    assert top["window_start"].nunique() == 1
    with pytest.raises(NotFoundError, match="not in the reference"):
        ControlRoom(db).model("credit").drift_distribution("nope")


def test_empty_log_windows_without_labels_and_window_reference(db):
    info = register_credit(db)
    assert ControlRoom(db).model("credit").drift().empty
    assert ControlRoom(db).model("credit").drift_share().empty
    assert ControlRoom(db).model("credit").drift_latest().empty
    feats = credit_features(300, 4)
    feats.loc[:, "age"] = np.nan  # an all-null feature in the window
    write(db, info, log_rows(feats, prediction=np.array(["1"] * 300), score=np.full(300, 0.7)))
    out = ControlRoom(db).model("credit").drift(store=False).set_index("feature")
    assert out.loc["__target__", "n_current"] == 0 and math.isnan(out.loc["__target__", "statistic"])
    assert out.loc["age", "n_current"] == 0 and not out.loc["age", "drifted"]
    ref_id = ControlRoom(db).model("credit").reference_from_window(T0, T0 + timedelta(days=1))
    same = ControlRoom(db).model("credit").drift(reference_id=ref_id, store=False).set_index("feature")
    assert same.loc["income", "statistic"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(InvalidInputError, match="no predictions"):
        ControlRoom(db).model("credit").reference_from_window(T0 - timedelta(days=9), T0 - timedelta(days=8))


def test_arrow_summary_equals_the_pandas_summary(db, tmp_path):
    import pyarrow as pa

    rng = np.random.default_rng(8)
    n = 50_000
    df = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.integers(0, 5, n).astype(float),
                       "c": rng.choice(["x", "y", "z"], n)})
    df.loc[::97, "a"] = np.nan
    df.loc[::1001, "a"] = np.inf
    df.loc[::13, "c"] = None
    kinds = {"a": "numeric", "b": "numeric", "c": "categorical"}
    got = refmod.summarise_arrow(pa.Table.from_pandas(df), kinds)
    expected = refmod.summarise(df, [], kinds)
    for g, e in zip(got, expected, strict=False):
        assert (g.feature, g.kind, g.n, g.null_count) == (e.feature, e.kind, e.n, e.null_count)
        assert [(b.count, b.category, b.lower, b.upper) for b in g.bins] == [
            (b.count, b.category, b.lower, b.upper) for b in e.bins]
        assert (g.quantiles, g.mean, g.std, g.mad) == (e.quantiles, e.mean, e.std, e.mad)
    # a file as the reference: same statistics as the training summary of the same rows
    info = register_credit(db, n=2000)
    train = credit_features(2000, 0)
    path = tmp_path / "train.parquet"
    train.to_parquet(path)
    ref_id = ControlRoom(db).model("credit").reference_from_file(path)
    log = credit_features(3000, 9)
    write(db, info, log_rows(log, step=timedelta(seconds=10), prediction=np.array(["0"] * 3000)))
    by_file = ControlRoom(db).model("credit").drift(reference_id=ref_id, store=False).set_index("feature")
    by_training = ControlRoom(db).model("credit").drift(store=False).set_index("feature")
    for f in ("age", "income", "region"):
        assert by_file.loc[f, "statistic"] == pytest.approx(by_training.loc[f, "statistic"], rel=1e-9)
    with pytest.raises(NotFoundError, match="No file"):
        ControlRoom(db).model("credit").reference_from_file(tmp_path / "missing.csv")


def test_stored_computes_window_sizes_that_were_never_stored(db):
    _drifting_log(db)
    ControlRoom(db).model("credit").drift(window="day")
    weekly = ControlRoom(db).model("credit").drift_stored(window="week")
    assert len(weekly) and weekly["window_start"].nunique() == 2  # 2026-03-01 is a Sunday: two ISO weeks
    with connect(db, write=True, create=True) as con:
        sizes = con.execute("SELECT DISTINCT window_size FROM drift_results").fetchall()
    assert sizes == [("day",)]  # computed for the reader, not written
    assert ControlRoom(db).model("credit").drift_stored(window="week", compute_missing=False).empty
    assert ControlRoom(db).model("credit").drift_share(window="week")["n_features"].tolist() == [3, 3]


def test_stored_settings_choose_methods_and_thresholds(db):
    _drifting_log(db)
    ControlRoom(db).model("credit").configure_drift("income", ["psi", "ks"], thresholds={"psi": 0.05})
    ControlRoom(db).model("credit").configure_drift("*", "chi2", threshold=0.001)
    got = ControlRoom(db).model("credit").drift_settings()
    assert set(zip(got["feature"], got["method"], strict=False)) == {("income", "psi"), ("income", "ks"), ("*", "chi2")}
    out = ControlRoom(db).model("credit").drift(store=False)
    pairs = set(zip(out["feature"], out["method"], out["threshold"], strict=False))
    assert ("income", "psi", 0.05) in pairs and ("income", "ks", 0.05) in pairs
    assert ("age", "chi2", 0.001) in pairs and ("region", "chi2", 0.001) in pairs
    assert not (out["method"] == "wasserstein").any()
    # an explicit call still overrides the stored settings
    assert set(ControlRoom(db).model("credit").drift(store=False, methods="psi")["method"]) == {"psi"}
    ControlRoom(db).model("credit").configure_drift("*", None)
    ControlRoom(db).model("credit").configure_drift("income", None)
    assert ControlRoom(db).model("credit").drift_settings().empty
    with pytest.raises(InvalidInputError, match="no feature 'salary'"):
        ControlRoom(db).model("credit").configure_drift("salary", "psi")
    with pytest.raises(InvalidInputError, match="applies to the categorical feature"):
        ControlRoom(db).model("credit").configure_drift("region", "wasserstein")

"""The log engines: every monitoring query gives the same result on Spark (local[2]) as on DuckDB over the same
Parquet log (counts exactly, sums to 1e-9), from the one definition that ``store.engines`` transpiles."""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
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

from mlops_core import ControlRoom
from mlops_core.cli import main
from mlops_core.errors import InvalidInputError
from mlops_core.monitoring import estimation
from mlops_core.store import Store, engines
from mlops_core.store import drift as dstore
from mlops_core.store import estimation as estore
from mlops_core.store import performance as perfstore

REL = 1e-9


def require_spark() -> None:
    """Skip the calling test when pyspark or a Java runtime is missing; fail it instead when ``CI`` is set."""
    try:
        import pyspark  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("pyspark or sqlglot is not installed; CI must run the Spark tests "
                        "(pip install -r requirements-spark.txt)")
        pytest.skip("pyspark or sqlglot is not installed (pip install -r requirements-spark.txt)")
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and os.path.exists(os.path.join(java_home, "bin", "java"))):
        if os.environ.get("CI"):
            pytest.fail("no Java runtime; CI must run the Spark tests (apt-get install openjdk-17-jre-headless)")
        pytest.skip("no Java runtime for Spark (install Debian's openjdk-17-jre-headless)")


@pytest.fixture(scope="module")
def spark():
    """One local[2] SparkSession for the module (starting one costs seconds)."""
    require_spark()
    before = os.environ.get("MLOPS_SPARK_MASTER")
    os.environ["MLOPS_SPARK_MASTER"] = "local[2]"
    session = engines.spark_session()
    assert session.conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert session.conf.get("spark.ui.enabled") == "false"
    yield session
    session.stop()
    if before is None:
        os.environ.pop("MLOPS_SPARK_MASTER", None)
    else:
        os.environ["MLOPS_SPARK_MASTER"] = before


def _binary(db, n=2400, seed=3):
    info = register_credit(db)
    rng = np.random.default_rng(seed)
    feats = credit_features(n, seed, income_shift=2.0)
    score = rng.random(n)
    score[:60] = np.round(score[:60], 1)  # ties for the AUC
    score[:4] = [0.0, 1.0, 0.0, 1.0]  # extremes exercise the log-loss clipping
    pred = np.where(score >= 0.5, "1", "0")
    log = log_rows(feats, step=timedelta(minutes=5), prediction=pred, score=score, prefix="b")
    log["version"] = np.where(rng.random(n) < 0.3, 2, 1).astype("int32")
    log.loc[::97, "income"] = np.nan  # missing values
    truth = np.where(rng.random(n) < 0.2 + 0.6 * score, "1", "0")
    labelled = rng.random(n) < 0.7
    labels = pd.DataFrame({"request_id": log["request_id"][labelled], "label": truth[labelled]})
    write(db, info, log.iloc[: n // 2], labels.iloc[: len(labels) // 2])  # two batches: several files per day
    write(db, info, log.iloc[n // 2:], labels.iloc[len(labels) // 2:])
    return info


def _regression(db, n=900, seed=4):
    info = register_regressor(db)
    rng = np.random.default_rng(seed)
    feats = pd.DataFrame({"distance": rng.gamma(2.0, 2.0, n), "zone": rng.choice(["a", "b", "c", "d"], n)})
    pred = 10 + 3 * feats["distance"].to_numpy() + rng.normal(0, 1, n)
    log = log_rows(feats, step=timedelta(minutes=11), prediction=pred, prefix="e")
    truth = pred + rng.normal(0, 2, n)
    truth[::50] = 0.0  # zero labels: left out of MAPE
    labelled = rng.random(n) < 0.8
    write(db, info, log, pd.DataFrame({"request_id": log["request_id"][labelled], "label": truth[labelled]}))
    return info


def _multiclass(db, n=900, seed=5):
    info = register_multiclass(db)
    rng = np.random.default_rng(seed)
    feats = pd.DataFrame({"x": rng.normal(0.2, 1, n), "colour": rng.choice(["red", "blue", "green"], n)})
    pred = np.where(feats["x"] < -0.4, "low", np.where(feats["x"] > 0.4, "high", "mid"))
    log = log_rows(feats, step=timedelta(minutes=13), prediction=pred, prefix="m")
    truth = np.where(rng.random(n) < 0.8, pred, rng.choice(["low", "mid", "high"], n))
    labelled = rng.random(n) < 0.6
    write(db, info, log, pd.DataFrame({"request_id": log["request_id"][labelled], "label": truth[labelled]}))
    return info


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One database with a binary classifier, a regressor and a multiclass classifier, each with a logged week."""
    db = tmp_path_factory.mktemp("spark") / "mlops.duckdb"
    _binary(db)
    _regression(db)
    _multiclass(db)
    return db


# --- comparing results ----------------------------------------------------------------------------


def _assert_frames_equal(duck: pd.DataFrame, spark: pd.DataFrame, keys: list[str]) -> None:
    """Same rows (matched on ``keys``), integral columns exactly equal, float columns within 1e-9 (relative)."""
    assert len(duck) == len(spark) > 0
    assert sorted(duck.columns) == sorted(spark.columns)
    d = duck.sort_values(keys, na_position="first").reset_index(drop=True)
    s = spark.sort_values(keys, na_position="first").reset_index(drop=True)
    for c in d.columns:
        dv, sv = d[c], s[c]
        if c in keys or dv.dtype == object or isinstance(dv.dtype, pd.StringDtype) or str(dv.dtype).startswith("str"):
            assert [None if pd.isna(x) else (pd.Timestamp(x) if "window" in c else x) for x in dv] == \
                   [None if pd.isna(x) else (pd.Timestamp(x) if "window" in c else x) for x in sv], c
            continue
        a, b = dv.astype(float).to_numpy(), sv.astype(float).to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b)), c
        ok = ~np.isnan(a)
        if _integral(dv) or _integral(sv):
            assert np.array_equal(a[ok], b[ok]), c  # counts: exact
        else:
            assert np.allclose(a[ok], b[ok], rtol=REL, atol=REL), (c, a[ok], b[ok])


def _integral(series: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(series.dtype)


def _both(db, fn):
    """``fn(con, log)`` on DuckDB and on Spark over the same listed files."""
    store = Store(db)
    out = []
    for name in ("duckdb", "spark"):
        with engines.open_engine(name, store) as con:
            out.append(fn(con))
    return out


# --- the queries, one by one -------------------------------------------------------------------------


@pytest.mark.parametrize("window", ["hour", "day", "week"])
def test_binary_sums_and_confusion_counts_equal(spark, logged, window):
    log = log_view(logged, "credit")
    duck, sp = _both(logged, lambda con: perfstore.binary_sums(con, log, window))
    _assert_frames_equal(duck, sp, ["window_start", "version"])
    duck, sp = _both(logged, lambda con: perfstore.classification_counts(con, log, window))
    _assert_frames_equal(duck, sp, ["window_start", "version", "prediction", "label"])


def test_roc_auc_per_window_equal(spark, logged):
    log = log_view(logged, "credit")
    duck, sp = _both(logged, lambda con: perfstore.auc_by_window(con, log, "day"))
    _assert_frames_equal(duck, sp, ["window_start", "version"])
    assert duck["roc_auc"].notna().sum() >= 8


def test_regression_sums_equal(spark, logged):
    log = log_view(logged, "eta")
    duck, sp = _both(logged, lambda con: perfstore.regression_sums(con, log, "day", T0 + timedelta(days=1),
                                                                     T0 + timedelta(days=5)))
    _assert_frames_equal(duck, sp, ["window_start", "version"])


def test_drift_bin_counts_equal_exactly(spark, logged):
    from mlops_core.entities import TARGET
    from mlops_core.monitoring import drift
    from mlops_core.store import references as rstore

    store = Store(logged)
    with store.connect() as con:
        refs = rstore.load_reference(con, drift.default_reference_id(con, "credit"))
    specs = [drift.spec_of(r) for r in refs if r.feature != TARGET]
    target = next(drift.spec_of(r) for r in refs if r.feature == TARGET)
    assert any(s.kind == "numeric" and s.edges for s in specs) and any(s.kind != "numeric" for s in specs)
    log = log_view(logged, "credit")
    duck, sp = _both(logged, lambda con: dstore.window_counts(con, log, "day", specs, None, None, target))
    assert len(duck) == len(sp) >= 7
    for d, s in zip(duck, sp, strict=True):
        assert pd.Timestamp(d.window_start) == pd.Timestamp(s.window_start) and d.rows == s.rows
        assert d.features.keys() == s.features.keys()
        for f, dc in d.features.items():
            sc = s.features[f]
            assert (dc.n, dc.at_least, dc.per_category) == (sc.n, sc.at_least, sc.per_category), f
            for a, b in ((dc.total, sc.total), (dc.deviation, sc.deviation)):
                assert (a is None) == (b is None) and (a is None or math.isclose(a, b, rel_tol=REL, abs_tol=REL)), f


def test_estimation_bin_sums_equal(spark, logged):
    info = ControlRoom(logged).model("credit").info
    with Store(logged).connect() as con:
        record = estore.latest_calibration(con, "credit", 1)
    cells, bins = estimation.cell_bins(record.calibration)
    lookup = pd.DataFrame({"version": 1, "cell": cells, "bin": bins})
    log = log_view(logged, "credit")
    duck, sp = _both(logged, lambda con: estore.bin_sums(con, log, "day", record.calibration.grid, lookup))
    _assert_frames_equal(duck, sp, ["window_start", "version", "bin", "positive"])
    assert info.positive_class is not None


# --- the public API and the CLI ------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["credit", "eta", "tri"])
def test_performance_over_time_equal(spark, logged, model):
    m = ControlRoom(logged).model(model)
    duck = m.performance(window="day")
    sp = m.performance(window="day", engine="spark")
    _assert_frames_equal(duck, sp, ["window_start", "version"])
    duck = m.performance(window="week", start=T0 + timedelta(days=1), versions=[1])
    sp = m.performance(window="week", start=T0 + timedelta(days=1), versions=[1], engine="spark")
    _assert_frames_equal(duck, sp, ["window_start", "version"])


@pytest.mark.parametrize("model", ["credit", "eta", "tri"])
def test_drift_over_time_equal(spark, logged, model):
    m = ControlRoom(logged).model(model)
    duck = m.drift(window="day", store=False)
    sp = m.drift(window="day", store=False, engine="spark")
    _assert_frames_equal(duck, sp, ["window_start", "feature", "method"])
    assert duck["feature"].nunique() >= 3


def test_estimated_performance_equal(spark, logged):
    m = ControlRoom(logged).model("credit")
    duck = m.estimate_performance(window="day", version=1, store=False)
    sp = m.estimate_performance(window="day", version=1, store=False, engine="spark")
    _assert_frames_equal(duck, sp, ["window_start", "version", "metric"])


def test_calibration_reference_rows_equal(spark, logged):
    log = log_view(logged, "credit")
    duck, sp = _both(logged, lambda con: estore.reference_rows(con, log, 1, T0, T0 + timedelta(days=4)))
    assert len(duck) > 500
    keys = ["score", "positive", "predicted_positive"]
    _assert_frames_equal(duck, sp, keys)


def test_cli_engine_option_gives_the_same_json(spark, logged, capsys):
    outputs = {}
    for name in ("duckdb", "spark"):
        assert main(["performance", "--model", "credit", "--db", str(logged), "--engine", name, "--json"]) == 0
        perf = json.loads(capsys.readouterr().out)
        assert main(["drift", "--model", "eta", "--db", str(logged), "--engine", name, "--no-store", "--json"]) == 0
        outputs[name] = (perf, json.loads(capsys.readouterr().out))
    for duck, sp in zip(outputs["duckdb"], outputs["spark"], strict=True):
        assert len(duck) == len(sp) > 0
        for a, b in zip(duck, sp, strict=True):
            assert a.keys() == b.keys()
            for k in a:
                if isinstance(a[k], float) and isinstance(b[k], float):
                    assert math.isclose(a[k], b[k], rel_tol=REL, abs_tol=REL), k
                else:
                    assert a[k] == b[k], k


def test_spark_reads_the_log_under_another_name(spark, logged):
    """``MLOPS_SPARK_LOG_DIR``: the executors' name for the log folder (here a file: URL of the same folder)."""
    store = Store(logged)
    log = log_view(logged, "credit")
    with engines.open_engine("duckdb", store) as con:
        duck = perfstore.binary_sums(con, log, "day")
    remote = engines.SparkEngine(spark, local_root=str(store.logs), remote_root="file://" + str(store.logs))
    try:
        assert remote.path(log.prediction_files[0]).startswith("file:///")
        sp = perfstore.binary_sums(remote, log, "day")
    finally:
        remote.close()
    _assert_frames_equal(duck, sp, ["window_start", "version"])


def test_an_empty_range_gives_empty_results_on_spark(spark, logged):
    m = ControlRoom(logged).model("credit")
    assert m.performance(start="2030-01-01", end="2030-01-02", engine="spark").empty
    assert m.drift(start="2030-01-01", end="2030-01-02", store=False, engine="spark").empty


# --- without Spark ---------------------------------------------------------------------------------------


def test_unknown_engine_is_refused_with_the_choices(logged):
    with pytest.raises(InvalidInputError, match="duckdb, spark"):
        ControlRoom(logged).model("credit").performance(engine="presto")
    with pytest.raises(SystemExit) as exc:
        main(["drift", "--model", "credit", "--db", str(logged), "--engine", "presto"])
    assert exc.value.code == 2


def test_missing_pyspark_says_how_to_install_it(logged, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(engines.SparkUnavailableError, match=r"pip install -e '\.\[spark\]'"):
        ControlRoom(logged).model("credit").performance(engine="spark")

"""Registering a model: with and without an artifact, and every kind of bad training file."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from conftest import make_training_frame
from sklearn.linear_model import LogisticRegression

from mlops_core import ControlRoom
from mlops_core.config import artifacts_dir
from mlops_core.errors import AlreadyExistsError, IntegrityError, InvalidInputError, NotFoundError
from mlops_core.store import connect
from mlops_core.store import references as rstore

TABLES = ("models", "model_versions", "deployments", "runs", "audit_events", "drift_references", "reference_stats",
          "reference_bins")


def counts(db):
    with connect(db, write=True, create=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_register_trains_default_pipeline_and_makes_v1_production(db, training_csv):
    r = ControlRoom(db).register("credit", "classification", "default", training_csv)
    assert (r.version, r.status) == (1, "production")
    assert r.algorithm == "HistGradientBoostingClassifier"
    assert 0.5 < r.holdout_metrics["roc_auc"] <= 1.0
    assert r.train_rows + r.holdout_rows == 600
    info = ControlRoom(db).model("credit").info
    assert [f.name for f in info.features] == ["age", "income", "region"]
    region = info.features[2]
    assert region.kind == "categorical" and region.categories == ["east", "north", "south"]
    age = info.features[0]
    assert age.kind == "numeric" and age.min >= 18 and age.max < 80
    assert info.positive_class == "1"
    assert ControlRoom(db).model("credit").production_version() == 1
    with connect(db, write=True, create=True) as con:
        ref = rstore.load_reference(con, rstore.latest_training_reference_id(con, "credit", 1))
        names = {f.feature for f in ref}
        assert {"age", "income", "region", "__score__", "__prediction__", "__target__"} <= names
        income = next(f for f in ref if f.feature == "income")
        assert sum(b.count for b in income.bins) == 600
        assert len(income.bins) == 10
        assert con.execute("SELECT action FROM audit_events").fetchall() == [("register",)]
        assert con.execute("SELECT status, kind FROM runs").fetchall() == [("succeeded", "train")]
    model = ControlRoom(db).model("credit").load()
    assert hasattr(model, "predict_proba")


def test_register_with_artifact_uses_the_given_model(db, tmp_path):
    df = make_training_frame()
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    pipe = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["region"]), remainder="passthrough"),
        LogisticRegression(max_iter=500),
    )
    pipe.fit(df.drop(columns=["default"]), df["default"].astype(str))
    path = tmp_path / "model.skops"
    sio.dump(pipe, path)
    data = tmp_path / "train.parquet"
    df.to_parquet(data)
    r = ControlRoom(db).register("credit", "classification", "default", data, artifact=path)
    assert r.algorithm == "LogisticRegression"
    assert r.holdout_metrics["accuracy"] > 0.5


def test_regression_model_registers_with_regression_metrics(db):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"distance": rng.uniform(1, 10, 300), "zone": rng.choice(["a", "b"], 300)})
    df["minutes"] = 5 + 3 * df["distance"] + (df["zone"] == "b") * 4 + rng.normal(0, 1, 300)
    r = ControlRoom(db).register("eta", "regression", "minutes", df)
    assert set(r.holdout_metrics) == {"mae", "rmse", "r2", "mape"}
    assert r.holdout_metrics["r2"] > 0.8


@pytest.mark.parametrize(
    "case, content, match",
    [
        ("no_target", "age,income\n1,2\n3,4\n", "no target column 'default'"),
        ("one_class", "age,income,default\n" + "".join(f"{i},{i},1\n" for i in range(50)), "one class only"),
        ("empty", "", "empty"),
        ("header_only", "age,income,default\n", "no rows"),
        ("unreadable.parquet", "this is not parquet", "Cannot read"),
    ],
)
def test_bad_training_file_registers_nothing(db, tmp_path, case, content, match):
    path = tmp_path / (case if "." in case else f"{case}.csv")
    path.write_text(content)
    before = counts(db)
    with pytest.raises(InvalidInputError, match=match):
        ControlRoom(db).register("credit", "classification", "default", path)
    assert counts(db) == before
    assert not any((tmp_path / "mlops_artifacts").rglob("*.skops"))


def test_missing_training_file_and_bad_names(db, tmp_path, training_csv):
    with pytest.raises(NotFoundError, match="does not exist"):
        ControlRoom(db).register("credit", "classification", "default", tmp_path / "nope.csv")
    with pytest.raises(InvalidInputError, match="not a valid name"):
        ControlRoom(db).register("bad name;", "classification", "default", training_csv)
    with pytest.raises(InvalidInputError, match="Unknown task"):
        ControlRoom(db).register("credit", "clustering", "default", training_csv)


def test_registering_twice_is_refused(db, training_csv):
    ControlRoom(db).register("credit", "classification", "default", training_csv)
    before = counts(db)
    with pytest.raises(AlreadyExistsError, match="already exists"):
        ControlRoom(db).register("credit", "classification", "default", training_csv)
    assert counts(db) == before


def test_tampered_artifact_is_refused(db, training_csv):
    ControlRoom(db).register("credit", "classification", "default", training_csv)
    v = ControlRoom(db).model("credit").versions()[0]
    with open((artifacts_dir(db) / v.artifact_path), "ab") as f:
        f.write(b"tampered")
    with pytest.raises(IntegrityError, match="sha256"):
        ControlRoom(db).model("credit").load()


def test_register_with_hyperparameters_sets_up_the_default_pipeline(db, training_csv):
    r = ControlRoom(db).register("credit", "classification", "default", training_csv,
                                 hyperparameters={"max_iter": 15, "learning_rate": 0.3})
    model = ControlRoom(db).model("credit")
    estimator = model.load().steps[-1][1]
    assert (estimator.max_iter, estimator.learning_rate, estimator.n_iter_) == (15, 0.3, 15)
    assert r.algorithm == "HistGradientBoostingClassifier"
    assert model.version(1).hyperparameters["max_iter"] == 15
    run = ControlRoom(db).runs("credit").iloc[0]
    assert json.loads(run["params"])["hyperparameters"] == {"max_iter": 15, "learning_rate": 0.3}


@pytest.mark.parametrize("hyperparameters,artifact,match", [
    ({"max_depht": 3}, False, "Unknown hyperparameter\\(s\\) max_depht for HistGradientBoostingClassifier; valid: "),
    ({"learning_rate": -1}, False, "The hyperparameters .* cannot be used: .*learning_rate"),
    ({"max_iter": 20}, True, "the given artifact is already fitted"),
])
def test_bad_hyperparameters_register_nothing(db, training_csv, hyperparameters, artifact, match):
    df = make_training_frame()
    fitted = LogisticRegression(max_iter=500).fit(df[["age", "income"]], df["default"].astype(str)) if artifact else None
    with pytest.raises(InvalidInputError, match=match):
        ControlRoom(db).register("credit", "classification", "default", training_csv, artifact=fitted,
                                 hyperparameters=hyperparameters)
    assert ControlRoom(db).models() == []


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mlops_core", *map(str, args)], capture_output=True, text=True, env=env)


def test_cli_register_and_status_json(db, training_csv):
    p = run_cli("register", "--db", db, "--model", "credit", "--task", "classification", "--target", "default",
                "--training-data", training_csv)
    assert p.returncode == 0, p.stderr
    assert "Registered credit version 1" in p.stdout
    p = run_cli("status", "--db", db, "--model", "credit", "--json")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["model"] == "credit" and s["task"] == "classification" and s["production_version"] == 1
    assert s["versions"][0]["version"] == 1 and s["versions"][0]["status"] == "production"
    assert s["predictions"] == 0 and s["labels"] == 0 and s["last_prediction_at"] is None


def test_cli_register_sets_hyperparameters(db, training_csv):
    p = run_cli("register", "--db", db, "--model", "credit", "--task", "classification", "--target", "default",
                "--training-data", training_csv, "--set", "max_iter=12", "--set", "learning_rate=0.25")
    assert p.returncode == 0, p.stderr
    hp = ControlRoom(db).model("credit").version(1).hyperparameters
    assert (hp["max_iter"], hp["learning_rate"]) == (12, 0.25)
    p = run_cli("register", "--db", db, "--model", "other", "--task", "classification", "--target", "default",
                "--training-data", training_csv, "--set", "max_iter")
    assert p.returncode == 2 and "--set takes PARAM=VALUE" in p.stderr and "Traceback" not in p.stderr
    p = run_cli("register", "--db", db, "--model", "other", "--task", "classification", "--target", "default",
                "--training-data", training_csv, "--set", "trees=5")
    assert p.returncode == 2 and "Unknown hyperparameter(s) trees" in p.stderr
    assert [m.name for m in ControlRoom(db).models()] == ["credit"]


def test_cli_errors_exit_2_without_traceback(db, tmp_path):
    p = run_cli("status", "--db", tmp_path / "missing.duckdb", "--model", "credit")
    assert p.returncode == 2 and "No database" in p.stderr and "Traceback" not in p.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    p = run_cli("register", "--db", db, "--model", "m", "--task", "classification", "--target", "default",
                "--training-data", bad)
    assert p.returncode == 2 and "no target column" in p.stderr and "Traceback" not in p.stderr


def test_db_location_from_env(tmp_path, training_csv):
    import os

    env = {**os.environ, "MLOPS_DB": str(tmp_path / "env.duckdb")}
    p = run_cli("register", "--model", "credit", "--task", "classification", "--target", "default", "--training-data",
                training_csv, env=env)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "env.duckdb").exists()

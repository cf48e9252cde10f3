"""Model artifacts: skops with an allow-list, pickles refused unless trusted, every deployment checks its artifact."""
from __future__ import annotations

import hashlib
import json
import shutil

import joblib
import numpy as np
import pytest
import skops.io as sio
from _ops_support import MODEL, build, retrain_now
from conftest import make_training_frame
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder
from sklearn.tree import DecisionTreeClassifier

from mlops_core import ControlRoom, Identity
from mlops_core.cli import build_parser, main
from mlops_core.config import artifacts_dir, is_postgres_url
from mlops_core.errors import IntegrityError, InvalidInputError, PermissionDeniedError
from mlops_core.lifecycle import artifacts
from mlops_core.store import connect


class WritesMarker:
    """Unpickling this object opens (creates) the marker file: a stand-in for any code a pickle can run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


class SetsMarkerOnLoad:
    """An object whose state-setting (what a loader calls to rebuild it) creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __setstate__(self, state):
        open(state["marker"], "w").close()
        self.__dict__.update(state)

    def predict(self, X):
        return np.zeros(len(X))


def fitted_pipeline(df=None):
    df = make_training_frame() if df is None else df
    pipe = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["region"]),
                                                 remainder="passthrough"), LogisticRegression(max_iter=500))
    return pipe.fit(df.drop(columns=["default"]), df["default"].astype(str))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def table_counts(db):
    with connect(db, write=True, create=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("models", "model_versions", "deployments", "audit_events", "runs")}


@pytest.fixture
def evil_pickle(tmp_path):
    """(a joblib file whose loading creates ``marker``, the marker path); the payload is shown to be live."""
    proof = tmp_path / "proof"
    joblib.dump(WritesMarker(proof), tmp_path / "proof.joblib")
    joblib.load(tmp_path / "proof.joblib")
    assert proof.exists()  # loading such a file really runs its code
    marker = tmp_path / "marker"
    path = tmp_path / "model.joblib"
    joblib.dump(WritesMarker(marker), path)
    return path, marker


# --- files a user hands over ------------------------------------------------------------------------


def test_register_refuses_a_pickle_without_running_it(db, tmp_path, evil_pickle, capsys):
    path, marker = evil_pickle
    train = tmp_path / "train.csv"
    make_training_frame().to_csv(train, index=False)
    code, out, err = run(capsys, "register", "--db", db, "--model", "credit", "--task", "classification",
                         "--target", "default", "--training-data", train, "--artifact", path)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "not a skops file" in err and "runs any code" in err and "--trust-pickle" in err and str(path) in err
    assert not marker.exists()
    # A DuckDB file may not even have been created; a PostgreSQL database always exists (the fixture made it).
    assert (not is_postgres_url(str(db)) and not db.exists()) or table_counts(db)["models"] == 0
    # the same through the public API, and with a pickle given a .skops name
    disguised = tmp_path / "model.skops"
    shutil.copy(path, disguised)
    for artifact in (path, disguised):
        with pytest.raises(InvalidInputError, match="trust_pickle=True"):
            ControlRoom(db).register("credit", "classification", "default", train, artifact=artifact)
    assert not marker.exists()


def test_trust_pickle_needs_admin_and_loads_a_file_you_built(db, tmp_path, evil_pickle):
    path, marker = evil_pickle
    operator = ControlRoom(db, identity=Identity("olga", "operator"))
    with pytest.raises(PermissionDeniedError):
        operator.register("credit", "classification", "default", make_training_frame(), artifact=path,
                          trust_pickle=True)
    assert not marker.exists()
    built = tmp_path / "built.joblib"
    joblib.dump(fitted_pipeline(), built)
    r = ControlRoom(db, identity=Identity("ada", "admin")).register(
        "credit", "classification", "default", make_training_frame(), artifact=built, trust_pickle=True)
    assert r.algorithm == "LogisticRegression" and r.artifact_path.endswith(".skops")  # stored as skops
    assert ControlRoom(db).model("credit").load().predict(make_training_frame().drop(columns=["default"])).shape == (600,)
    # add_version takes the same flag; without it the pickle is refused and nothing is added
    model = ControlRoom(db, identity=Identity("ada", "admin")).model("credit")
    with pytest.raises(InvalidInputError, match="--trust-pickle"):
        model.add_version(built, make_training_frame())
    assert model.add_version(built, make_training_frame(), trust_pickle=True).version == 2
    with pytest.raises(PermissionDeniedError):
        ControlRoom(db, identity=Identity("olga", "operator")).model("credit").add_version(
            built, make_training_frame(), trust_pickle=True)


def test_cli_trust_pickle_registers_and_help_says_what_it_means(db, tmp_path, capsys):
    built = tmp_path / "built.joblib"
    joblib.dump(fitted_pipeline(), built)
    train = tmp_path / "train.csv"
    make_training_frame().to_csv(train, index=False)
    code, _out, err = run(capsys, "register", "--db", db, "--model", "credit", "--task", "classification",
                         "--target", "default", "--training-data", train, "--artifact", built, "--trust-pickle")
    assert code == 0, err
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["register"]
    text = " ".join(sub.format_help().split())
    assert "--trust-pickle" in text and "RUNS ANY CODE" in text and "only for a file you built yourself" in text
    assert "skops.io.dump" in text


def test_a_skops_file_registers_and_the_stored_artifact_is_skops(db, tmp_path):
    path = tmp_path / "model.skops"
    sio.dump(fitted_pipeline(), path)
    r = ControlRoom(db).register("credit", "classification", "default", make_training_frame(), artifact=path)
    stored = artifacts_dir(db) / r.artifact_path
    assert stored.suffix == ".skops" and hashlib.sha256(stored.read_bytes()).hexdigest() == r.artifact_sha256
    assert sio.get_untrusted_types(file=stored) == []


def test_a_skops_file_with_types_outside_the_allow_list_is_refused_before_anything_is_built(db, tmp_path, capsys):
    marker = tmp_path / "marker"
    path = tmp_path / "custom.skops"
    sio.dump(SetsMarkerOnLoad(marker), path)
    assert sio.get_untrusted_types(file=path) == ["test_artifacts.SetsMarkerOnLoad"]
    with pytest.raises(InvalidInputError, match=r"test_artifacts\.SetsMarkerOnLoad, which a model artifact may not hold"):
        artifacts.load_estimator_file(path)
    assert not marker.exists()
    # a numpy function (numpy.savetxt writes files) inside a pipeline: allowed module, but not a class
    df = make_training_frame()
    writer = make_pipeline(make_column_transformer((OrdinalEncoder(), ["region"]), remainder="passthrough"),
                           FunctionTransformer(np.savetxt), LogisticRegression())
    writer.steps[1][1].fit(df.drop(columns=["default"]))
    sio.dump(writer, tmp_path / "writer.skops")
    train = tmp_path / "train.csv"
    df.to_csv(train, index=False)
    code, _out, err = run(capsys, "register", "--db", db, "--model", "credit", "--task", "classification",
                         "--target", "default", "--training-data", train, "--artifact", tmp_path / "writer.skops")
    assert code == 2 and "numpy.savetxt" in err and "may not hold" in err


def test_allow_list_accepts_classes_under_the_prefixes_only():
    assert artifacts.refused_types([
        "numpy.dtype", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", "sklearn.tree._tree.Tree",
        "scipy.sparse._csr.csr_matrix", "functools.partial", "sklearn.utils.validation.check_array"]) == []
    refused = ["builtins.eval", "os.system", "numpy.savetxt", "numpy.load", "sklearn.datasets.fetch_openml",
               "numpy.f2py.__main__.Thing", "numpy.testing.TestCase", "sklearn.no_such_module.Estimator",
               "numpysomething.Evil", "collections.OrderedDict"]
    assert artifacts.refused_types(refused) == refused


def test_trees_whose_links_point_outside_are_refused(tmp_path):
    """Scikit-learn follows tree links without bounds checks; a crafted file must not reach predict()."""
    df = make_training_frame()
    X, y = df.drop(columns=["default"]), df["default"].astype(str)
    enc = make_column_transformer((OrdinalEncoder(), ["region"]), remainder="passthrough")
    hgb = make_pipeline(enc, HistGradientBoostingClassifier(max_iter=5, random_state=0)).fit(X, y)
    assert artifacts.check_tree_structures(hgb) is None
    hgb[-1]._predictors[0][0].nodes["left"][0] = 10 ** 6
    sio.dump(hgb, tmp_path / "hgb.skops")
    with pytest.raises(InvalidInputError, match="links to a child outside the tree"):
        artifacts.load_estimator_file(tmp_path / "hgb.skops")

    tree = make_pipeline(make_column_transformer((OrdinalEncoder(), ["region"]), remainder="passthrough"),
                         DecisionTreeClassifier(max_depth=3, random_state=0)).fit(X, y)
    assert artifacts.check_tree_structures(tree) is None
    state = tree[-1].tree_.__getstate__()
    state["nodes"]["feature"][0] = 50  # the estimator takes 3 features
    tree[-1].tree_.__setstate__(state)
    sio.dump(tree, tmp_path / "tree.skops")
    with pytest.raises(InvalidInputError, match="splits on feature 50 of 3"):
        artifacts.load_estimator_file(tmp_path / "tree.skops")


# --- stored artifacts ---------------------------------------------------------------------------------


def set_artifact(db, version, path, sha):
    with connect(db, write=True, create=True) as con:
        con.execute("UPDATE model_versions SET artifact_path = ?, artifact_sha256 = ? WHERE model = ? AND version = ?",
                    [path, sha, "credit", version])


def test_joblib_artifacts_of_earlier_versions_load_after_their_hash_check(registered_credit_db, tmp_path):
    db = registered_credit_db
    model = ControlRoom(db).model("credit")
    estimator = model.load()
    legacy = artifacts_dir(db) / "credit" / "v1-legacy00.joblib"
    joblib.dump(estimator, legacy)
    set_artifact(db, 1, "credit/v1-legacy00.joblib", hashlib.sha256(legacy.read_bytes()).hexdigest())
    X = make_training_frame().drop(columns=["default"])
    assert (ControlRoom(db).model("credit").load().predict(X) == estimator.predict(X)).all()

    # a pickle whose hash does not match is never unpickled
    marker = tmp_path / "marker"
    joblib.dump(WritesMarker(marker), legacy)
    with pytest.raises(IntegrityError, match="Refusing to load"):
        ControlRoom(db).model("credit").load()
    assert not marker.exists()

    other = artifacts_dir(db) / "credit" / "v1.pkl"
    other.write_bytes(b"x")
    set_artifact(db, 1, "credit/v1.pkl", hashlib.sha256(b"x").hexdigest())
    with pytest.raises(IntegrityError, match="unknown format"):
        ControlRoom(db).model("credit").load()


def test_saving_refuses_an_estimator_that_could_not_be_loaded_again(registered_credit_db):
    model = ControlRoom(registered_credit_db).model("credit")
    before = table_counts(registered_credit_db)
    lam = make_pipeline(make_column_transformer((OrdinalEncoder(), ["region"]), remainder="passthrough"),
                        FunctionTransformer(lambda a: a), LogisticRegression(max_iter=300))
    df = make_training_frame()
    lam.fit(df.drop(columns=["default"]), df["default"].astype(str))
    with pytest.raises(InvalidInputError, match="<lambda>"):
        model.add_version(lam, df)
    assert table_counts(registered_credit_db) == before
    assert {p.suffix for p in (artifacts_dir(registered_credit_db) / "credit").iterdir()} == {".skops"}


# --- every deployment checks what it puts in production --------------------------------------------


def swap_files(a, b):
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)


def snapshot(db):
    with connect(db, write=True, create=True) as con:
        return (con.execute("SELECT version, status FROM model_versions ORDER BY version").fetchall(),
                con.execute("SELECT alias, version, started_at, ended_at FROM deployments ORDER BY started_at, alias")
                .fetchall(),
                con.execute("SELECT count(*) FROM audit_events").fetchone()[0],
                con.execute("SELECT count(*) FROM runs").fetchone()[0])


@pytest.fixture
def deployed(db, capsys):
    """credit with v1, v2, v3; v2 promoted cleanly, so a rollback would restore v1."""
    build(db, concept="shifted", n=1000)
    for params in ({}, {"hyperparameters": {"max_iter": 20}}):
        assert retrain_now(db, **params).status == "succeeded"
    code, _, err = run(capsys, "promote", "--db", db, "--model", MODEL, "--version", 2)
    assert code == 0, err
    return db


def test_swapped_artifacts_stop_promote_and_rollback_with_exit_5(deployed, capsys):
    db = deployed
    v1, v2 = ControlRoom(db).model(MODEL).versions()[:2]
    path1, path2 = artifacts_dir(db) / v1.artifact_path, artifacts_dir(db) / v2.artifact_path
    swap_files(path1, path2)
    before = snapshot(db)

    code, out, err = run(capsys, "promote", "--db", db, "--model", MODEL, "--version", 1)
    assert code == 5 and out == "" and str(path1) in err and "sha256" in err and err.count("\n") == 1
    for argv in (("rollback",), ("rollback", "--to", "1")):
        code, out, err = run(capsys, *argv, "--db", db, "--model", MODEL)
        assert code == 5 and out == "" and str(path1) in err
    assert snapshot(db) == before
    assert ControlRoom(db).model(MODEL).production_version() == 2

    # a missing file is refused the same way
    path1.unlink()
    code, _, err = run(capsys, "rollback", "--db", db, "--model", MODEL)
    assert code == 5 and "is missing" in err and str(path1) in err
    assert snapshot(db) == before

    # a version whose artifact checks out still deploys
    code, out, err = run(capsys, "promote", "--db", db, "--model", MODEL, "--version", 3)
    assert code == 0 and "Promoted credit v3 to production (was v2)" in out, err
    statuses = {v.version: v.status for v in ControlRoom(db).model(MODEL).versions()}
    assert statuses == {1: "archived", 2: "archived", 3: "production"}
    assert ControlRoom(db).audit(MODEL).iloc[0].action == "promote"


def test_retrain_with_a_swapped_champion_exits_5_and_registers_nothing(db, capsys):
    build(db, n=600)
    assert retrain_now(db).status == "succeeded"
    ControlRoom(db, identity=Identity("a", "admin")).model(MODEL).promote(2)
    v1, v2 = ControlRoom(db).model(MODEL).versions()
    swap_files(artifacts_dir(db) / v1.artifact_path, artifacts_dir(db) / v2.artifact_path)
    before = [(v.version, v.status) for v in ControlRoom(db).model(MODEL).versions()]

    code, out, err = run(capsys, "retrain", "--db", db, "--model", MODEL, "--wait", "--json", "--promote")
    assert code == 5, err
    summary = json.loads(out)
    assert summary["status"] == "failed" and "sha256" in summary["error"]
    assert str(artifacts_dir(db) / v2.artifact_path) in summary["error"]
    run_info = ControlRoom(db).run(summary["run_id"])
    assert run_info.statistics["error_kind"] == "IntegrityError"
    assert [(v.version, v.status) for v in ControlRoom(db).model(MODEL).versions()] == before
    assert ControlRoom(db).model(MODEL).production_version() == 2


def test_automatic_promotion_after_a_retrain_puts_a_loadable_skops_artifact_in_production(db):
    build(db, concept="shifted", n=1000)
    run_info = retrain_now(db, auto_promote=True)
    assert run_info.status == "succeeded" and run_info.statistics["promoted"] is True
    model = ControlRoom(db).model(MODEL)
    v = model.version()
    assert v.version == 2 and v.artifact_path.endswith(".skops")
    assert hasattr(model.load(), "predict_proba")


def test_check_serialized_refuses_bytes_that_changed():
    blob = artifacts.serialize(fitted_pipeline())
    assert hasattr(artifacts.check_serialized(blob), "predict")
    changed = artifacts.ArtifactBytes(blob.data[:-1] + bytes([blob.data[-1] ^ 1]), blob.sha256)
    with pytest.raises(IntegrityError, match="changed in memory"):
        artifacts.check_serialized(changed)
    with pytest.raises(IntegrityError, match="not a readable skops file"):
        artifacts.check_serialized(artifacts.ArtifactBytes(b"junk", hashlib.sha256(b"junk").hexdigest()))

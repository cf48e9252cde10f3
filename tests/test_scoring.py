"""Getting a model out and scoring files: versions --json, export with a model card, load_model, mlops score."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _serving_support import ADMIN, MODEL, cli, logged, records, two_versions
from conftest import make_training_frame

from mlops_core import ControlRoom, load_model
from mlops_core.errors import IntegrityError, InvalidInputError, NotFoundError


@pytest.fixture
def db(tmp_path):
    return two_versions(tmp_path / "x")


def test_versions_json_gives_each_artifact_absolute_path_and_sha256(db):
    out = json.loads(cli(db, "versions", "--model", MODEL, "--json").stdout)
    assert [v["version"] for v in out] == [1, 2]
    for v in out:
        path = Path(v["artifact_path"])
        assert path.is_absolute() and path.exists()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == v["artifact_sha256"]


def test_export_writes_the_artifact_and_a_model_card(db, tmp_path):
    out = json.loads(cli(db, "export", "--model", MODEL, "--alias", "production", "--out", str(tmp_path / "e"),
                         "--json").stdout)
    artifact, card = Path(out["artifact"]), Path(out["card"])
    assert artifact.name == "credit-v1.skops" and card.name == "credit-v1.model-card.json"
    doc = json.loads(card.read_text())
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == doc["artifact"]["sha256"] == out["sha256"]
    assert [f["name"] for f in doc["schema"]] == ["age", "income", "region"]
    assert doc["metrics"]["holdout"]["accuracy"] > 0.5 and doc["lineage"]["algorithm"]
    assert (doc["model"], doc["version"], doc["task"], doc["positive_class"]) == (MODEL, 1, "classification", "1")
    # the exported file loads as the same estimator
    import skops.io as sio

    est = sio.load(artifact, trusted=sio.get_untrusted_types(file=artifact))
    X = make_training_frame(50, 3).drop(columns=["default"])
    from mlops_core.data.schema import coerce_features

    loaded = load_model(MODEL, db=db)
    assert np.allclose(est.predict_proba(coerce_features(X, loaded.schema)), loaded.predict_proba(X))
    v2 = json.loads(cli(db, "export", "--model", MODEL, "--version", "2", "--out", str(tmp_path / "e"),
                        "--json").stdout)
    assert Path(v2["artifact"]).name == "credit-v2.skops"
    bad = cli(db, "export", "--model", MODEL, "--alias", "challenger", "--out", str(tmp_path / "e"), check=False)
    assert bad.returncode == 2 and "no challenger deployed" in bad.stderr


def test_load_model_resolves_names_aliases_and_versions_and_checks_the_hash(db):
    room = ControlRoom(db, identity=ADMIN)
    assert load_model(MODEL, db=db).version.version == 1
    assert load_model(f"{MODEL}@production", db=db).version.version == 1
    assert load_model(MODEL, version=2, db=db).version.version == 2
    assert load_model(f"{MODEL}@2", db=db).version.version == 2
    room.model(MODEL).set_deployment("shadow", challenger=2)
    m = load_model(f"{MODEL}@challenger", db=db)
    assert m.version.version == 2 and [f.name for f in m.schema] == ["age", "income", "region"]
    assert m.sha256 == m.version.artifact_sha256 and m.artifact_path.exists()
    with pytest.raises(InvalidInputError, match="not both"):
        load_model(f"{MODEL}@production", version=2, db=db)
    with pytest.raises(InvalidInputError, match="Unknown alias 'blue'"):
        load_model(f"{MODEL}@blue", db=db)
    with pytest.raises(NotFoundError, match="Unknown model"):
        load_model("nope", db=db)
    with pytest.raises(InvalidInputError, match="lacks the feature column"):
        m.predict(pd.DataFrame({"age": [1]}))
    path = load_model(MODEL, db=db).artifact_path
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError):
        load_model(MODEL, db=db)


def test_score_writes_the_scored_file_and_logs_every_row_with_version_and_arm(db, tmp_path):
    src = tmp_path / "batch.csv"
    frame = make_training_frame(300, 9).drop(columns=["default"])
    frame.to_csv(src, index=False)
    out = json.loads(cli(db, "score", str(src), "--model", MODEL, "--json").stdout)
    scored = pd.read_csv(out["out"])
    assert out["out"].endswith("batch.scored.csv") and out["rows"] == 300 and out["arms"] == {"champion": 300}
    assert list(scored.columns[:3]) == ["age", "income", "region"]
    assert {"request_id", "version", "arm", "prediction", "score"} <= set(scored.columns)
    expected = load_model(MODEL, db=db).predict_proba(frame)[:, 1]
    assert np.allclose(scored["score"], expected)
    log = logged(db).set_index("request_id")
    assert sorted(log.index) == sorted(scored["request_id"]) and set(log["variant"]) == {"champion"}


def test_score_follows_the_split_and_uses_the_files_request_ids(db, tmp_path):
    ControlRoom(db, identity=ADMIN).model(MODEL).set_deployment("split", challenger=2, weight=0.5)
    src = tmp_path / "batch.parquet"
    frame = make_training_frame(400, 4).drop(columns=["default"])
    frame["request_id"] = [f"file-{i}" for i in range(400)]
    frame.to_parquet(src)
    out = json.loads(cli(db, "score", str(src), "--model", MODEL, "--out", str(tmp_path / "o.parquet"),
                         "--json").stdout)
    assert set(out["arms"]) == {"champion", "challenger"} and 140 <= out["arms"]["challenger"] <= 260
    scored = pd.read_parquet(tmp_path / "o.parquet")
    assert list(scored["request_id"]) == list(frame["request_id"])
    assert (scored["version"] == np.where(scored["arm"] == "challenger", 2, 1)).all()
    log = logged(db).set_index("request_id").loc[scored["request_id"]]
    assert (log["variant"].to_numpy() == scored["arm"].to_numpy()).all()
    again = cli(db, "score", str(src), "--model", MODEL, "--out", str(tmp_path / "o2.parquet"), check=False)
    assert again.returncode == 2 and "already stored" in again.stderr  # a request is logged once
    assert not (tmp_path / "o2.parquet").exists() and len(logged(db)) == 400


@pytest.mark.parametrize("change,message", [
    (lambda f: f.drop(columns=["income"]), "missing column 'income'"),
    (lambda f: f.assign(income=["lots", *f["income"].astype(str)[1:]]), "column 'income'"),
])
def test_a_structural_problem_refuses_the_file_and_writes_nothing(db, tmp_path, change, message):
    src = tmp_path / "bad.csv"
    change(make_training_frame(50, 2).drop(columns=["default"])).to_csv(src, index=False)
    r = cli(db, "score", str(src), "--model", MODEL, check=False)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "bad.scored.csv").exists() and len(logged(db)) == 0
    assert len(ControlRoom(db).runs(MODEL).query("kind == 'ingest'")) == 0


def test_score_refuses_an_output_that_is_the_input(db, tmp_path):
    src = tmp_path / "b.csv"
    make_training_frame(5).drop(columns=["default"]).to_csv(src, index=False)
    r = cli(db, "score", str(src), "--model", MODEL, "--out", str(src), check=False)
    assert r.returncode == 2 and "is the input file" in r.stderr
    assert records(1)[0].keys() >= {"age", "income", "region"}

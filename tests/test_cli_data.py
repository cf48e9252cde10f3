"""CLI of the data domain: `ingest predictions|labels FILE` and `validate`, exit codes and JSON."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import log_sql, make_training_frame

from mlops_core import ControlRoom
from mlops_core.cli import main
from mlops_core.store import Store

ROOT = Path(__file__).resolve().parents[1]
MODEL = "credit"


@pytest.fixture
def db(registered_credit_db):
    """A private copy of a database with the model ``credit`` registered (see conftest)."""
    return registered_credit_db


def batch_file(folder: Path, name: str = "b.csv", n: int = 200, prefix: str = "r", **changes) -> Path:
    tr = make_training_frame(n, seed=4)
    df = tr.drop(columns=["default"])
    df.insert(0, "request_id", [f"{prefix}{i:05d}" for i in range(n)])
    df.insert(1, "timestamp", "2026-03-01 10:00:00")
    df["prediction"] = tr["default"]
    df["score"] = 0.25
    for column, (rows, value) in changes.items():
        df[column] = df[column].astype(object)
        df.loc[rows, column] = value
    path = folder / name
    if name.endswith(".parquet"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def counts(db) -> dict[str, int]:
    """The number of rows of every metadata table (a DuckDB file or a PostgreSQL database)."""
    with Store(db).connect() as con:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema = current_schema()").fetchall()]
        assert names, "no metadata tables found"
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in names}


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_then_reingest(db, tmp_path, capsys):
    path = batch_file(tmp_path)
    code, out, err = run(capsys, "ingest", "predictions", path, "--model", MODEL, "--db", db)
    assert code == 0, err
    assert out.startswith(f"Ingested 200 of 200 predictions into {MODEL} as batch ")
    before = counts(db)
    code, out, _ = run(capsys, "ingest", "predictions", path, "--model", MODEL, "--db", db)
    assert code == 0 and "already ingested on " in out and "; 0 rows written" in out
    assert counts(db) == before


def test_ingest_json_and_labels(db, tmp_path, capsys):
    path = batch_file(tmp_path, "b.parquet")
    code, out, _ = run(capsys, "ingest", "predictions", path, "--model", MODEL, "--db", db, "--json")
    data = json.loads(out)
    assert code == 0 and data["rows_written"] == 200 and data["already_ingested"] is False
    assert {"batch_id", "model", "kind", "rows", "report_id", "anomalies", "warnings"} <= set(data)
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": ["r00001", "r00002"], "label": [1, 0], "timestamp": "2026-03-03"}).to_csv(labels, index=False)
    code, out, _ = run(capsys, "ingest", "labels", labels, "--model", MODEL, "--db", db, "--json")
    assert code == 0 and json.loads(out)["rows_written"] == 2


def test_anomalies_are_warnings_with_exit_0(db, tmp_path, capsys):
    path = batch_file(tmp_path, region=([3, 4], "x'; DROP TABLE --"), age=([7], 400))
    code, out, _ = run(capsys, "ingest", "predictions", path, "--model", MODEL, "--db", db)
    assert code == 0
    assert "warning: unseen_category in 'region'" in out and "x'; DROP TABLE --" in out
    assert "warning: out_of_range in 'age'" in out
    assert log_sql(db, f"SELECT region FROM log_{MODEL} WHERE request_id = 'r00003'")[0][0] == "x'; DROP TABLE --"


@pytest.mark.parametrize("make, pattern", [
    (lambda d: batch_file(d, income=([4, 8, 11], "abc")),
     "column 'income': 3 values are not numbers, first at rows 5, 9, 12: 'abc', 'abc', 'abc'"),
    (lambda d: batch_file(d, request_id=([2], None)), "column 'request_id': 1 empty value, at row 3"),
    (lambda d: batch_file(d, request_id=([9], "r00001")), "'r00001' at rows 2, 10"),
    (lambda d: write(d / "empty.csv", b""), "is empty (0 bytes)"),
    (lambda d: write(d / "x.parquet", b"nope"), "Cannot read the prediction batch"),
])
def test_bad_batches_exit_2_and_write_nothing(db, tmp_path, capsys, make, pattern):
    run(capsys, "ingest", "predictions", batch_file(tmp_path, "seed.csv", prefix="seed"), "--model", MODEL, "--db", db)
    before = counts(db)
    code, _out, err = run(capsys, "ingest", "predictions", make(tmp_path), "--model", MODEL, "--db", db)
    assert code == 2 and pattern in err and "Traceback" not in err
    assert counts(db) == before


def test_labels_for_unknown_ids_exit_2(db, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": ["ghost"], "label": [1]}).to_csv(labels, index=False)
    before = counts(db)
    code, _, err = run(capsys, "ingest", "labels", labels, "--model", MODEL, "--db", db)
    assert code == 2 and "never logged" in err and "'ghost' (row 1)" in err
    assert counts(db) == before


def test_unknown_model_exit_2(db, tmp_path, capsys):
    code, _, err = run(capsys, "ingest", "predictions", batch_file(tmp_path), "--model", "nope", "--db", db)
    assert code == 2 and "Unknown model 'nope'" in err


def test_validate_exit_codes_and_json(db, tmp_path, capsys):
    clean = batch_file(tmp_path, "clean.csv", n=300)
    code, out, _ = run(capsys, "validate", clean, "--model", MODEL, "--db", db)
    assert code == 0 and ": 300 rows, clean" in out
    odd = batch_file(tmp_path, "odd.csv", n=300, region=(list(range(30)), "mars"))
    code, out, _ = run(capsys, "validate", odd, "--model", MODEL, "--db", db)
    assert code == 1 and "warning: unseen_category 'region'" in out and "'mars' (30)" in out
    code, out, _ = run(capsys, "validate", odd, "--model", MODEL, "--db", db, "--json")
    data = json.loads(out)
    assert code == 1 and data["status"] == "anomalies" and data["rows"] == 300
    assert "unseen_category" in [a["kind"] for a in data["anomalies"] if a["feature"] == "region"]
    broken = batch_file(tmp_path, "broken.csv", income=([0], "lots"))
    code, out, _ = run(capsys, "validate", broken, "--model", MODEL, "--db", db)
    assert code == 2 and "column 'income': 1 value is not numbers, at row 1: 'lots'" in out
    missing = tmp_path / "missing.csv"
    code, _, err = run(capsys, "validate", missing, "--model", MODEL, "--db", db)
    assert code == 2 and "does not exist" in err


def test_validate_window_of_the_log(db, tmp_path, capsys):
    run(capsys, "ingest", "predictions", batch_file(tmp_path, n=300, region=(list(range(20)), "mars")), "--model", MODEL,
        "--db", db)
    code, out, _ = run(capsys, "validate", "--model", MODEL, "--db", db, "--from", "2026-03-01", "--to", "2026-03-02",
                       "--json")
    data = json.loads(out)
    assert code == 1 and data["rows"] == 300 and data["window_start"].startswith("2026-03-01")
    code, out, _ = run(capsys, "validate", "--model", MODEL, "--db", db, "--from", "2026-04-01", "--to", "2026-04-02")
    assert code == 1 and "too_few_rows" in out
    code, _, err = run(capsys, "validate", "--model", MODEL, "--db", db, "--from", "last week")
    assert code == 2 and "is not a date" in err


def test_cli_in_a_subprocess_prints_no_traceback(db, tmp_path):
    bad = batch_file(tmp_path, income=([1], "abc"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLOPS_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "mlops_core", "ingest", "predictions", str(bad), "--model", MODEL,
                        "--db", str(db)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert p.returncode == 2
    assert "column 'income': 1 value is not numbers, at row 2: 'abc'" in p.stderr
    assert "Traceback" not in p.stderr + p.stdout


# --- the shipped sample batches -------------------------------------------------------------------

BATCHES = ROOT / "sample_data" / "batches"
BAD_PREDICTIONS = ["bad_missing_column.csv", "bad_wrong_type.csv", "bad_null_request_id.csv", "bad_null_timestamp.csv",
                   "bad_duplicate_ids.csv", "bad_unknown_version.csv", "bad_empty.csv", "bad_header_only.csv",
                   "bad_unreadable.parquet"]


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory):
    """credit_default registered from the shipped training file, with the versions the clean batch names.

    A prior-only classifier stands in for the real model: these tests are about the
    batches, and it registers without training time.
    """
    clean = BATCHES / "credit_default_clean.csv"
    if not clean.exists():
        pytest.skip("sample_data/batches/credit_default_clean.csv not generated yet")
    import skops.io as sio
    from sklearn.dummy import DummyClassifier

    folder = tmp_path_factory.mktemp("shipped")
    db = folder / "mlops.duckdb"
    train = pd.read_csv(ROOT / "sample_data" / "credit_default_train.csv")
    X = train.drop(columns=["default"])
    y = train["default"].astype(str)
    artifact = folder / "prior.skops"
    sio.dump(DummyClassifier(strategy="prior").fit(X, y), artifact)
    ControlRoom(db).register("credit_default", "classification", "default", train, artifact=artifact)
    versions = pd.read_csv(clean, usecols=lambda c: c == "version")
    wanted = int(versions["version"].max()) if "version" in versions else 1
    model = ControlRoom(db).model("credit_default")
    for _ in range(wanted - 1):  # the batch was logged by a later version
        v = model.add_version(artifact, train)
        model.promote(v.version)
    return folder


@pytest.fixture
def shipped_db(demo_like, tmp_path):
    for p in demo_like.iterdir():
        (shutil.copytree if p.is_dir() else shutil.copy)(p, tmp_path / p.name)
    return tmp_path / "mlops.duckdb"


def test_every_shipped_bad_batch_is_refused_and_the_clean_one_accepted(shipped_db, capsys):
    db = shipped_db
    for name in BAD_PREDICTIONS:
        before = counts(db)
        code, _, err = run(capsys, "ingest", "predictions", BATCHES / name, "--model", "credit_default", "--db", db)
        assert code == 2, (name, err)
        assert "Traceback" not in err and err.startswith("error: ")
        assert counts(db) == before, name
    code, out, err = run(capsys, "ingest", "predictions", BATCHES / "credit_default_clean.csv", "--model", "credit_default",
                         "--db", db)
    assert code == 0, err
    for name, kind in (("bad_duplicate_of_stored.csv", "predictions"), ("bad_labels_unknown_ids.csv", "labels")):
        before = counts(db)
        code, _, err = run(capsys, "ingest", kind, BATCHES / name, "--model", "credit_default", "--db", db)
        assert code == 2 and counts(db) == before, (name, err)
    code, out, err = run(capsys, "ingest", "labels", BATCHES / "credit_default_labels.csv", "--model", "credit_default",
                         "--db", db)
    assert code == 0, err
    code, out, _ = run(capsys, "validate", BATCHES / "anomalies_out_of_range.csv", "--model", "credit_default", "--db", db)
    assert code == 1 and "x'; DROP TABLE --" in out
    code, out, _ = run(capsys, "ingest", "predictions", BATCHES / "anomalies_out_of_range.csv", "--model",
                       "credit_default", "--db", db)
    assert code == 0 and "warning: " in out
    stored = log_sql(db, "SELECT count(*) FROM log_credit_default WHERE purpose = 'x''; DROP TABLE --'")[0][0]
    assert stored == 2


def test_validate_a_label_file(db, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": [f"x{i}" for i in range(150)], "label": ["1", "0", "maybe"] * 50}).to_csv(labels, index=False)
    code, out, _ = run(capsys, "validate", labels, "--model", MODEL, "--db", db, "--labels", "--json")
    data = json.loads(out)
    assert code == 1 and [(a["feature"], a["kind"], a["count"]) for a in data["anomalies"]] == [("label", "unseen_category", 50)]
    pd.DataFrame({"request_id": ["x1", "x1"], "label": [1, 0]}).to_csv(labels, index=False)
    code, out, _ = run(capsys, "validate", labels, "--model", MODEL, "--db", db, "--labels")
    assert code == 2 and "'x1' at rows 1, 2" in out

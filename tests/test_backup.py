"""Backup and restore: a consistent copy of metadata, artifacts and logs, verified by sha256, restored whole."""
from __future__ import annotations

import json
import shutil
import threading

import pandas as pd
import pytest
from conftest import log_sql, make_training_frame

from mlops_core import ControlRoom, Identity
from mlops_core.cli import main
from mlops_core.errors import AlreadyExistsError, IntegrityError, InvalidInputError, PermissionDeniedError

# `mlops backup` and `restore` copy the DuckDB file; on PostgreSQL they refuse and name pg_dump (test_postgres.py).
pytestmark = pytest.mark.duckdb_file

MODEL = "credit"


def batch(n: int, prefix: str, start: str = "2026-03-01 00:00") -> pd.DataFrame:
    df = make_training_frame(n, seed=5).drop(columns=["default"])
    df.insert(0, "request_id", [f"{prefix}{i:06d}" for i in range(n)])
    df["timestamp"] = pd.date_range(start, periods=n, freq="s").astype(str)
    df["prediction"] = 0
    df["score"] = 0.3
    return df


def state(db) -> dict:
    """What a restore must bring back: versions, production, log rows by batch prefix, labels, audit, accounts."""
    room = ControlRoom(db)
    model = room.model(MODEL)
    return {
        "versions": [(v.version, v.status, v.artifact_sha256) for v in model.versions()],
        "production": model.production_version(),
        "rows": log_sql(db, f"SELECT left(request_id, 1), count(*) FROM log_{MODEL} GROUP BY 1 ORDER BY 1"),
        "labels": log_sql(db, f"SELECT count(*) FROM labels_{MODEL}"),
        "audit": len(room.audit()),
        "users": [u.name for u in room.users()],
    }


@pytest.fixture
def busy_db(registered_credit_db):
    room = ControlRoom(registered_credit_db)
    model = room.model(MODEL)
    model.ingest(batch(500, "a"))
    model.ingest(pd.DataFrame({"request_id": [f"a{i:06d}" for i in range(200)], "label": [0, 1] * 100}), "labels")
    from sklearn.dummy import DummyClassifier

    frame = make_training_frame(400, seed=9)
    model.add_version(DummyClassifier().fit(frame[["age"]], frame["default"]), frame)  # a second artifact
    room.add_user("ada", "admin", "correct horse battery")
    return registered_credit_db


def test_round_trip(busy_db, tmp_path):
    before = state(busy_db)
    info = ControlRoom(busy_db).backup(tmp_path / "bk")
    assert (info.models, info.log_rows) == (1, 500 + 200)
    assert json.loads((tmp_path / "bk" / "manifest.json").read_text())["files"]

    # change everything the backup covers, then restore
    room = ControlRoom(busy_db)
    room.model(MODEL).ingest(batch(300, "b", start="2026-03-02 00:00"))
    room.add_user("zed", "viewer", "correct horse battery")
    room.model(MODEL).set_policy(mode="automated")
    assert state(busy_db) != before
    with pytest.raises(AlreadyExistsError, match="--force"):
        ControlRoom(busy_db).restore(tmp_path / "bk")
    _restored, aside = ControlRoom(busy_db).restore(tmp_path / "bk", force=True)
    assert state(busy_db) == before
    assert ControlRoom(busy_db).model(MODEL).load() is not None  # the production artifact passes its hash check
    # nothing was deleted: the replaced database sits beside it and still opens
    moved = aside / busy_db.name
    assert moved.exists()
    shutil.copytree(aside, tmp_path / "aside_copy")
    assert "zed" in [u.name for u in ControlRoom(tmp_path / "aside_copy" / busy_db.name).users()]


def test_restore_into_a_new_location(busy_db, tmp_path, capsys):
    assert main(["backup", "--out", str(tmp_path / "bk"), "--db", str(busy_db)]) == 0
    assert "1 model(s)" in capsys.readouterr().out
    target = tmp_path / "elsewhere" / "restored.duckdb"
    assert main(["restore", str(tmp_path / "bk"), "--db", str(target)]) == 0
    assert state(target) == state(busy_db)


def test_a_damaged_backup_restores_nothing(busy_db, tmp_path, capsys):
    ControlRoom(busy_db).backup(tmp_path / "bk")
    before = state(busy_db)
    victim = next((tmp_path / "bk" / "logs").rglob("*.parquet"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert main(["verify-backup", str(tmp_path / "bk")]) == 5
    assert "does not match its sha256" in capsys.readouterr().err
    with pytest.raises(IntegrityError, match="nothing was restored"):
        ControlRoom(busy_db).restore(tmp_path / "bk", force=True)
    victim.unlink()
    assert main(["restore", str(tmp_path / "bk"), "--force", "--db", str(busy_db)]) == 5
    assert "is missing" in capsys.readouterr().err
    assert state(busy_db) == before


def test_a_manifest_cannot_reach_outside_the_backup(busy_db, tmp_path):
    ControlRoom(busy_db).backup(tmp_path / "bk")
    manifest = tmp_path / "bk" / "manifest.json"
    m = json.loads(manifest.read_text())
    m["files"].append({"path": "../../../etc/passwd", "bytes": 1, "sha256": "0" * 64})
    manifest.write_text(json.dumps(m))
    with pytest.raises(InvalidInputError, match="outside the backup folder"):
        ControlRoom.verify_backup(tmp_path / "bk")
    with pytest.raises(InvalidInputError, match="not a backup"):
        ControlRoom.verify_backup(tmp_path)


def test_backup_needs_a_new_folder_and_the_admin_role(busy_db, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(AlreadyExistsError, match="not empty"):
        ControlRoom(busy_db).backup(tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    with pytest.raises(PermissionDeniedError):
        ControlRoom(busy_db, identity=Identity("pat", "operator")).backup(tmp_path / "bk")
    with pytest.raises(PermissionDeniedError):
        ControlRoom(busy_db, identity=Identity("pat", "operator")).restore(tmp_path / "bk")


def test_a_backup_during_an_ingest_holds_whole_batches(busy_db, tmp_path):
    """Batches ingested while the backup runs are in it completely or not at all."""
    big = tmp_path / "big.parquet"
    batch(200_000, "c", start="2026-03-03 00:00").to_parquet(big, index=False)
    done = threading.Event()
    errors = []

    def ingest():
        try:
            ControlRoom(busy_db).model(MODEL).ingest(big)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=ingest)
    worker.start()
    backups = []
    i = 0
    while not done.is_set() and i < 20:
        backups.append(ControlRoom(busy_db).backup(tmp_path / f"bk{i}"))
        i += 1
    worker.join(120)
    assert not errors, errors
    backups.append(ControlRoom(busy_db).backup(tmp_path / "bk_last"))
    for info in backups:
        target = tmp_path / "r" / info.folder.name / "x.duckdb"
        ControlRoom(target).restore(info.folder)
        counts = dict(log_sql(target, f"SELECT left(request_id, 1), count(*) FROM log_{MODEL} GROUP BY 1"))
        assert counts.get("c", 0) in (0, 200_000), counts
    assert dict(log_sql(tmp_path / "r" / "bk_last" / "x.duckdb",
                        f"SELECT left(request_id, 1), count(*) FROM log_{MODEL} GROUP BY 1"))["c"] == 200_000

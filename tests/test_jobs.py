"""Background retrain jobs: a real detached process, one per model, killed jobs reaped without leftovers."""
from __future__ import annotations

import os
import signal
import time

import pytest
from _ops_support import MODEL, artifact_files, build
from conftest import log_sql

from mlops_core import ControlRoom, Identity
from mlops_core.config import artifacts_dir
from mlops_core.errors import AlreadyRunningError, NotFoundError
from mlops_core.lifecycle import jobs
from mlops_core.store import Store, connect, forget_database
from mlops_core.store import runs as runstore
from mlops_core.store.jobs import process_alive

# Hyperparameters that make the fit take several seconds, so a test can act while it runs.
SLOW = {"max_iter": 3000, "early_stopping": False, "learning_rate": 0.01, "max_leaf_nodes": 63}


def wait_for(predicate, timeout=180.0, poll=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("condition not reached in time")


def test_start_returns_at_once_and_the_job_finishes_in_the_background(db):
    build(db, n=1000)
    run_id = ControlRoom(db, identity=Identity("alice", 'admin')).model(MODEL).retrain()
    first = ControlRoom(db).run(run_id)
    assert first.status in ("queued", "running") and first.kind == "retrain" and first.actor == "alice"
    assert ControlRoom(db).model(MODEL).active_retrain().id == run_id
    seen = []
    run = ControlRoom(db).wait(run_id, timeout=180, on_progress=lambda r: seen.append((r.progress, r.message)))
    assert run.status == "succeeded", run.error
    assert run.pid != os.getpid()  # it ran in its own process
    assert seen[-1][0] == 1.0 and [p for p, _ in seen] == sorted(p for p, _ in seen)
    assert run.statistics["candidate_version"] == 2 and run.duration_s > 0
    assert ControlRoom(db).model(MODEL).active_retrain() is None
    assert jobs.job_log_path(Store(db), run_id).exists()


def test_a_second_retrain_of_the_same_model_is_refused_while_one_runs(db):
    build(db, n=1000)
    run_id = ControlRoom(db, identity=Identity("alice", 'admin')).model(MODEL).retrain(params={"hyperparameters": SLOW})
    with pytest.raises(AlreadyRunningError, match=f"already .*run {run_id}.*Wait for it"):
        ControlRoom(db, identity=Identity("bob", 'admin')).model(MODEL).retrain()
    assert [r for r in ControlRoom(db).runs(MODEL)["actor"]].count("bob") == 0
    run = wait_for(lambda: (r := ControlRoom(db).run(run_id)).message and "training" in r.message and r)
    os.kill(run.pid, signal.SIGTERM)
    run = ControlRoom(db).wait(run_id, timeout=60)
    assert run.status == "failed" and "interrupted" in run.error
    assert len(ControlRoom(db).model(MODEL).versions()) == 1


def test_killed_retrain_is_marked_failed_and_leaves_nothing_half_done(db):
    build(db, n=1000)
    before_files = artifact_files(db)
    run_id = ControlRoom(db, identity=Identity("alice", 'admin')).model(MODEL).retrain(params={"hyperparameters": SLOW})
    run = wait_for(lambda: (r := ControlRoom(db).run(run_id)).message and "training" in r.message and r)
    # artifacts the job might have written just before dying, never registered (this version writes .skops files,
    # earlier ones .joblib; .tmp is a write cut short)
    for name in ("v2-deadbeef.skops", "v2-deadbeef.skops.tmp", "v2-cafef00d.joblib"):
        (artifacts_dir(db) / MODEL / name).write_bytes(b"partial")
    os.kill(run.pid, signal.SIGKILL)  # the job worker running it
    wait_for(lambda: process_alive(run.pid, run.host) is False, timeout=30)

    # a fresh process opening the database reaps it (simulated: forget that this one opened it)
    forget_database(db)
    with connect(db, write=True, create=True) as con:
        dead = runstore.get_run(con, run_id)
    assert dead.status == "failed" and "ended without finishing" in dead.error and dead.finished_at is not None
    assert [v.version for v in ControlRoom(db).model(MODEL).versions()] == [1]
    assert artifact_files(db) == before_files  # the stray files are gone, v1's artifact is not
    assert ControlRoom(db).model(MODEL).production_version() == 1
    audit = ControlRoom(db).audit(MODEL)
    assert "retrain_failed" in set(audit["action"])
    # and the model can be retrained again
    again = ControlRoom(db, identity=Identity("alice", 'admin')).model(MODEL).retrain(params={"min_rows": 100})
    assert ControlRoom(db).wait(again, timeout=180).status == "succeeded"


def test_dead_job_is_reaped_when_its_run_is_read(db):
    build(db, n=300)
    with connect(db, write=True, create=True) as con:
        run_id = runstore.insert_run(con, model=MODEL, kind="retrain", status="running", actor="x")
        con.execute("UPDATE runs SET pid = 2147480000 WHERE id = ?", [run_id])  # no such process
    assert ControlRoom(db).model(MODEL).active_retrain() is None
    assert ControlRoom(db).run(run_id).status == "failed"


def test_unknown_model_run_and_bad_params(db):
    build(db, n=300)
    with pytest.raises(NotFoundError, match="Unknown model"):
        ControlRoom(db, identity=Identity("a", 'admin')).model("nope").retrain()
    with pytest.raises(NotFoundError, match="No run"):
        ControlRoom(db).run("feedface")
    from mlops_core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="window_days must be positive"):
        ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).retrain(params={"window_days": 0})
    with pytest.raises(InvalidInputError, match="Unknown trigger"):
        ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).retrain(trigger="cron")
    assert ControlRoom(db).model(MODEL).active_retrain() is None


def test_cli_ingest_succeeds_while_a_retrain_runs(db, tmp_path):
    import subprocess
    import sys

    from _ops_support import labelled_frame

    build(db, n=1000)
    run_id = ControlRoom(db, identity=Identity("alice", 'admin')).model(MODEL).retrain(params={"hyperparameters": SLOW})
    run = wait_for(lambda: (r := ControlRoom(db).run(run_id)).message and "training" in r.message and r)
    batch = labelled_frame(50, 99).drop(columns=["default"])
    batch.insert(0, "request_id", [f"live{i}" for i in range(50)])
    batch.insert(1, "timestamp", "2026-11-01T12:00:00")
    batch["prediction"] = "1"
    batch["score"] = 0.7
    path = tmp_path / "batch.csv"
    batch.to_csv(path, index=False)
    p = subprocess.run([sys.executable, "-m", "mlops_core", "ingest", "predictions", str(path), "--model", MODEL,
                        "--db", str(db)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert ControlRoom(db).run(run_id).status == "running"  # the job holds no lock while it fits
    os.kill(run.pid, signal.SIGTERM)
    assert ControlRoom(db).wait(run_id, timeout=60).status == "failed"
    assert log_sql(db, 'SELECT count(*) FROM "log_credit" WHERE request_id LIKE \'live%\'')[0][0] == 50

"""The job worker: one standing process per database runs the queued retrains, outlives its starter, exits when idle,
and its death (kill -9) fails its job while jobs waiting behind it get a new worker."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from _ops_support import MODEL, build
from test_jobs import SLOW, wait_for

from mlops_core import ControlRoom, Identity
from mlops_core.lifecycle import worker
from mlops_core.store import Store, connect, utcnow
from mlops_core.store import jobs as jobstore
from mlops_core.store import runs as runstore

ROOT = Path(__file__).resolve().parents[1]


def operator(db) -> ControlRoom:
    return ControlRoom(db, identity=Identity("olga", "operator"))


def test_one_worker_runs_every_job_and_keeps_each_job_log(db):
    build(db, n=800)
    first = operator(db).model(MODEL).retrain(params={"min_rows": 100})
    assert ControlRoom(db).wait(first, timeout=180).status == "succeeded"
    second = operator(db).model(MODEL).retrain(params={"min_rows": 100})
    done = ControlRoom(db).wait(second, timeout=180)
    assert done.status == "succeeded", done.error
    runs = [ControlRoom(db).run(first), done]
    assert runs[0].pid == runs[1].pid != os.getpid()  # the same standing process ran both
    assert worker.running_pid(Store(db)) == done.pid
    from mlops_core.lifecycle import jobs

    for run in runs:
        assert jobs.job_log_path(Store(db), run.id).exists()
    assert "finished retrain" in worker.worker_log_path(Store(db)).read_text()
    assert worker.stop(Store(db)) and worker.running_pid(Store(db)) is None


def test_the_worker_outlives_the_cli_that_started_it_and_exits_when_idle(db):
    build(db, n=800)
    env = {**os.environ, "MLOPS_WORKER_IDLE_S": "3"}
    out = subprocess.run([sys.executable, "-m", "mlops_core", "retrain", "--model", MODEL, "--min-rows", "100",
                          "--json", "--db", str(db)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    import json

    run_id = json.loads(out.stdout)["run_id"]
    run = ControlRoom(db).wait(run_id, timeout=180)  # the CLI is gone; its worker finishes the job
    assert run.status == "succeeded", run.error
    assert run.statistics["candidate_version"] == 2
    wait_for(lambda: worker.running_pid(Store(db)) is None, timeout=60)  # idle for 3 s: it exits by itself
    assert "idle; exiting" in worker.worker_log_path(Store(db)).read_text()


def test_a_second_worker_of_the_same_database_exits_at_once(db):
    build(db, n=300)
    operator(db).start_worker()
    pid = wait_for(lambda: worker.running_pid(Store(db)))
    out = subprocess.run([sys.executable, "-m", "mlops_core", "worker", "--db", str(db)], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0 and "another worker serves this database" in out.stdout
    status = subprocess.run([sys.executable, "-m", "mlops_core", "worker", "--status", "--db", str(db)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert status.returncode == 0 and str(pid) in status.stdout
    stop = subprocess.run([sys.executable, "-m", "mlops_core", "worker", "--stop", "--db", str(db)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert stop.returncode == 0 and f"Worker {pid} stopped" in stop.stdout
    assert worker.running_pid(Store(db)) is None


def test_killing_the_worker_fails_its_job_and_the_queued_one_gets_a_new_worker(db, tmp_path):
    build(db, n=1000)
    slow = operator(db).model(MODEL).retrain(params={"hyperparameters": SLOW})
    running = wait_for(lambda: (r := ControlRoom(db).run(slow)).message and "training" in r.message and r)
    # A second job queued behind it: insert it as the API would for another model's retrain (same model: refused).
    with connect(db, write=True) as con:
        waiting = runstore.insert_run(con, model=MODEL, kind="retrain", actor="olga", status="queued",
                                      params={"min_rows": 100}, message="queued", unclaimed=True)
    os.kill(running.pid, signal.SIGKILL)
    wait_for(lambda: jobstore.process_alive(running.pid, running.host) is False, timeout=30)
    dead = ControlRoom(db).wait(slow, timeout=60)
    assert dead.status == "failed" and "ended without finishing" in dead.error
    after = ControlRoom(db).wait(waiting, timeout=180)  # reading it starts a worker for it
    assert after.status == "succeeded", after.error
    assert after.pid not in (None, running.pid)
    assert [v.version for v in ControlRoom(db).model(MODEL).versions()] == [1, 2]
    worker.stop(Store(db))


def test_a_job_no_worker_ever_took_is_reaped_after_the_grace_period(db):
    build(db, n=300)
    old = utcnow() - timedelta(seconds=jobstore.WORKER_START_GRACE_S + 5)
    with connect(db, write=True) as con:
        run_id = runstore.insert_run(con, model=MODEL, kind="retrain", actor="olga", status="queued",
                                     params={}, message="queued", unclaimed=True, created_at=old)
        fresh = runstore.insert_run(con, model="other", kind="retrain", actor="olga", status="queued",
                                    params={}, message="queued", unclaimed=True)
        assert jobstore.worker_alive(db) is False
        assert jobstore.reap_dead_runs(con) == [run_id]  # the fresh one may still get its worker
        failed = runstore.get_run(con, run_id)
        assert runstore.get_run(con, fresh).status == "queued"
    assert failed.status == "failed" and "No job worker took this queued retrain" in failed.error


def test_an_unclaimed_job_waits_as_long_as_a_worker_runs(db):
    build(db, n=300)
    with connect(db, write=True) as con:
        run_id = runstore.insert_run(con, model=MODEL, kind="retrain", actor="olga", status="queued", params={},
                                     unclaimed=True, created_at=utcnow() - timedelta(hours=1))
        run = runstore.get_run(con, run_id)
    assert jobstore.is_dead(run, worker=True) is False
    assert jobstore.is_dead(run, worker=False) is True
    assert jobstore.is_dead(run, worker=None) is False  # nobody could tell: not judged

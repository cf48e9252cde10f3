"""Background jobs: start a retrain that outlives the page (or server) that started it, and follow it.

``start_retrain`` writes a ``queued`` run row and hands it to the database's job worker
(``lifecycle.worker``: a standing process, started on demand, that has its imports loaded and
runs ``retrain.execute``); it returns the run id at once. The job's progress, message and
outcome live in its run row, so any process can follow it with ``get_run`` / ``wait``,
after a page reload or a server restart. The job's output goes to
``<artifacts folder>/jobs/<run id>.log``. ``spawn_process`` runs a queued job in a process of
its own instead (``python -m mlops_core retrain --run-id ID``), as every job ran before the worker.

One retrain per model at a time: while one is queued or running (and alive),
``start_retrain`` raises ``AlreadyRunningError``. A job whose process died is marked
failed by the reaper (``store.jobs``) the next time any process opens the database,
and again whenever a retrain is requested or the active run is read; a job still waiting
for a worker that is gone gets a new worker instead.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from mlops_core.entities import ModelInfo, RunInfo
from mlops_core.errors import AlreadyRunningError, InvalidInputError, MlopsError
from mlops_core.lifecycle import worker
from mlops_core.store import Store, transaction, utcnow
from mlops_core.store import jobs as jobstore
from mlops_core.store import runs as runstore

__all__ = ["TRIGGERS", "active_run", "get_run", "job_log_path", "spawn_process", "start_retrain", "wait"]

_start_lock = threading.Lock()
_children: list[subprocess.Popen] = []  # kept so finished children are reaped, not left as zombies
TRIGGERS = ("manual", "automated", "schedule", "api")
#: ``wait`` reads the run this often at first (a job the worker runs may take a second or two).
FIRST_POLL_S = 0.05


def job_log_path(store: Store, run_id: str) -> Path:
    """Where the job's stdout/stderr go."""
    return store.artifacts / "jobs" / f"{run_id}.log"


def _reap_children() -> None:
    for p in list(_children):
        if p.poll() is not None:
            _children.remove(p)


def start_retrain(store: Store, info: ModelInfo, *, actor: str, trigger: str = "manual", params: dict | None = None,
                  spawn: bool = True) -> str:
    """Queue a retrain of the model for the job worker (started if none runs); return the run id at once.

    ``params`` (see ``retrain.RetrainParams``): window_days, end, hyperparameters,
    auto_promote, min_rows, seed. With ``spawn=False`` the run is only queued, owned by this
    process (a caller then runs ``retrain.execute`` itself, or ``spawn_process``).
    Raises InvalidInputError (params, trigger), AlreadyRunningError (a retrain of the model is
    queued or running).
    """
    if trigger not in TRIGGERS:
        raise InvalidInputError(f"Unknown trigger {trigger!r}; choose one of: {', '.join(TRIGGERS)}.", trigger=trigger)
    from mlops_core.lifecycle.retrain import RetrainParams

    p = RetrainParams.from_dict(params)
    model = info.name
    _reap_children()
    with _start_lock:
        with store.connect(write=True) as con:
            jobstore.reap_dead_runs(con, model)
            with transaction(con):
                active = [r for r in jobstore.active_runs(con, model) if not jobstore.is_dead(r)]
                if active:
                    r = active[0]
                    raise AlreadyRunningError(
                        f"A retrain of {model!r} is already {r.status} (run {r.id}, started by {r.actor} at "
                        f"{r.created_at:%Y-%m-%d %H:%M:%S} UTC, {r.progress:.0%}: {r.message or 'waiting'}). "
                        "Wait for it to finish before starting another.",
                        model=model, run_id=r.id,
                    )
                run_id = runstore.insert_run(con, model=model, kind="retrain", trigger=trigger, actor=actor,
                                             status="queued", params=p.to_dict(), message="queued",
                                             unclaimed=spawn)
                runstore.insert_audit(con, actor=actor, action="retrain_requested", model=model, run_id=run_id,
                                      reason=f"{trigger} retrain", details={"params": p.to_dict()})
    if spawn:
        try:
            worker.ensure(store)
        except MlopsError as exc:
            with store.transaction() as con:
                jobstore.mark_failed(con, runstore.get_run(con, run_id), str(exc))
            raise
    return run_id


def spawn_process(store: Store, run_id: str) -> None:
    """Run the queued job ``run_id`` (queued with ``spawn=False``) in a detached process of its own."""
    log = job_log_path(store, run_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "mlops_core", "retrain", "--run-id", run_id]
    if store.url is not None:  # in the environment, not the command line: a URL may hold a password
        env["MLOPS_METADATA_URL"] = store.url
    else:
        cmd += ["--db", str(store.path)]
    try:
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out,  # noqa: S603 - our interpreter and module, no shell stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    cwd=package_root, start_new_session=True)
    except OSError as exc:
        with store.transaction() as con:
            jobstore.mark_failed(con, runstore.get_run(con, run_id), f"Could not start the retrain process: {exc}")
        raise MlopsError(f"Could not start the retrain process: {exc}", run_id=run_id) from exc
    _children.append(proc)
    with store.connect(write=True) as con:
        # The job's own process owns the run from now on (liveness is judged by this pid).
        jobstore.hand_over(con, run_id, proc.pid)


def _supervise(store: Store, runs: list[RunInfo]) -> bool:
    """Start a worker for jobs waiting without one (it died between jobs); return whether a run looks dead."""
    waiting = [r for r in runs if jobstore.is_unclaimed(r)]
    alive = jobstore.worker_alive(store.location) if waiting else None
    if waiting and alive is False:
        worker.ensure(store)
        alive = True
    now = utcnow()
    return any(jobstore.is_dead(r, now, worker=alive) for r in runs)


def get_run(store: Store, run_id: str) -> RunInfo:
    """Return the run ``run_id`` (progress, message, status, metrics, statistics, error). Raises NotFoundError."""
    with store.connect() as con:
        run = runstore.get_run(con, run_id)
    if _supervise(store, [run]):
        with store.connect(write=True) as con:
            jobstore.reap_dead_runs(con, run.model)
            run = runstore.get_run(con, run_id)
    return run


def active_run(store: Store, model: str) -> RunInfo | None:
    """The queued or running retrain of ``model``, or None (dead jobs are marked failed first)."""
    with store.connect() as con:
        runs = jobstore.active_runs(con, model)
    if _supervise(store, runs):
        with store.connect(write=True) as con:
            jobstore.reap_dead_runs(con, model)
            runs = jobstore.active_runs(con, model)
    return runs[0] if runs else None


def wait(store: Store, run_id: str, timeout: float | None = None, *, poll: float = 0.5, on_progress=None) -> RunInfo:
    """Block until run ``run_id`` has succeeded or failed; return it.

    ``on_progress(run)`` is called whenever progress or message change. The run is read every
    ``FIRST_POLL_S`` seconds at first, then every 5% of the time waited so far (so noticing the end
    adds at most about 5% to a short job), at most every ``poll`` seconds. Raises NotFoundError (run)
    and MlopsError when ``timeout`` seconds pass first (the job goes on).
    """
    began = time.monotonic()
    deadline = None if timeout is None else began + timeout
    last = None
    while True:
        _reap_children()
        run = get_run(store, run_id)
        if on_progress is not None and (run.progress, run.message) != last:
            last = (run.progress, run.message)
            on_progress(run)
        if run.status in ("succeeded", "failed"):
            return run
        if deadline is not None and time.monotonic() >= deadline:
            raise MlopsError(f"Run {run_id} is still {run.status} after {timeout:g} s ({run.progress:.0%}: "
                             f"{run.message}); it goes on in the background.", run_id=run_id)
        time.sleep(min(poll, max(FIRST_POLL_S, 0.05 * (time.monotonic() - began))))

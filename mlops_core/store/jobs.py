"""SQL for background jobs: the active job of a model, the job worker's queue, liveness, and reaping dead jobs.

A job's run row records the process that runs it (``pid``, ``host``) and a heartbeat
that the job refreshes while it works. A queued or running job is *dead* when its
process is gone on this host (or is a zombie), or when its heartbeat is older than
``STALE_AFTER_S`` (the only test possible for a job on another host, and a guard
against a reused pid). ``reap_dead_runs`` marks dead jobs failed and deletes the
artifact files a dead retrain may have written but never registered; it runs the first
time each process opens a database (``connection.connect`` calls it after the migrations) and
before a new retrain is admitted.

Jobs for the job worker (``lifecycle.worker``) are queued *unclaimed*: no ``pid`` until the
worker claims one (``claim_next``), after which the worker's pid is the job's. The worker of a
database holds an exclusive ``flock`` on ``worker_lock_path`` for as long as it runs, so
``worker_alive`` can tell from any process whether one runs. An unclaimed job is dead when no
worker has run for ``WORKER_START_GRACE_S`` since it was queued (a worker that never came up);
while a worker runs it waits its turn, however long.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from mlops_core.clock import utcnow
from mlops_core.config import artifacts_dir
from mlops_core.store.connection import artifacts_folder, location_of
from mlops_core.store.runs import RunInfo, find_runs, get_run, insert_audit, update_run

if TYPE_CHECKING:  # frames come from DuckDB's .df(); pandas loads when one is asked for
    import pandas as pd

#: A job whose heartbeat is older than this is considered dead (jobs beat every few seconds).
STALE_AFTER_S = 300.0
ACTIVE = ("queued", "running")
#: Run kinds that are background jobs (their staleness is judged by heartbeat as well as pid).
JOB_KINDS = ("retrain",)
#: An unclaimed queued job is dead when no worker has taken the lock this long after it was queued.
WORKER_START_GRACE_S = 60.0
#: Files a registration writes in the artifacts folder: skops artifacts, the joblib artifacts of earlier versions,
#: and the temporary file of an atomic write (the same list as ``lifecycle.artifacts.ARTIFACT_SUFFIXES``; the store
#: sits below lifecycle and cannot import it).
ARTIFACT_FILE_SUFFIXES = (".skops", ".joblib", ".tmp")


def process_alive(pid: int | None, host: str | None) -> bool | None:
    """True/False when ``pid`` runs / does not run on this host; None when it cannot be told (other host)."""
    if pid is None:
        return None
    if host and host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:  # a killed child that nobody has waited for yet is a zombie: dead for our purposes
        with open(f"/proc/{int(pid)}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    return True


def worker_lock_path(db_path: str | os.PathLike) -> Path:
    """The file whose exclusive ``flock`` the job worker of the database at ``db_path`` holds while it runs."""
    return artifacts_dir(db_path) / "jobs" / "worker.lock"


def worker_alive(db_path: str | os.PathLike | None) -> bool | None:
    """True when a job worker of the database at ``db_path`` runs (holds its lock), False when none does, None
    when it cannot be told (no path: an in-memory database; a file system without locks)."""
    if db_path is None:
        return None
    try:
        fd = os.open(worker_lock_path(db_path), os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        # A shared lock conflicts only with the worker's exclusive one; testers never block each other. flock locks
        # belong to the open file, so this test cannot release the lock of a worker running in this very process.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return True if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN) else None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def worker_pid(db_path: str | os.PathLike) -> int | None:
    """The pid of the running job worker of the database (written in its lock file), or None when none runs."""
    if not worker_alive(db_path):
        return None
    try:
        text = worker_lock_path(db_path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def is_unclaimed(run: RunInfo) -> bool:
    """Whether ``run`` is a queued job that no worker has claimed yet."""
    return run.status == "queued" and run.pid is None


def is_dead(run: RunInfo, now: datetime | None = None, *, worker: bool | None = None) -> bool:
    """Whether a queued/running run has lost its process (see the module docstring). ``worker``: whether the
    database's job worker runs (``worker_alive``), which decides for an unclaimed job (None: not judged)."""
    if run.status not in ACTIVE:
        return False
    if is_unclaimed(run):
        now = now or utcnow()
        waited = (now - run.created_at).total_seconds() if run.created_at else 0.0
        return worker is False and waited > WORKER_START_GRACE_S
    alive = process_alive(run.pid, run.host)
    if alive is False:
        return True
    if run.kind in JOB_KINDS and run.heartbeat_at is not None:
        now = now or utcnow()
        if (now - run.heartbeat_at).total_seconds() > STALE_AFTER_S:
            return True
    return False


def active_runs(con: duckdb.DuckDBPyConnection, model: str, kind: str = "retrain") -> list[RunInfo]:
    """Queued or running runs of ``kind`` for ``model`` (newest first), dead ones included."""
    return find_runs(con, model=model, kind=kind, statuses=ACTIVE)


def hand_over(con: duckdb.DuckDBPyConnection, run_id: str, pid: int) -> None:
    """Record the process that runs a queued job from now on (its liveness is judged by this pid)."""
    con.execute("UPDATE runs SET pid = ? WHERE id = ? AND status = 'queued'", [pid, run_id])


def unclaimed_runs(con: duckdb.DuckDBPyConnection, kinds: tuple[str, ...] = JOB_KINDS) -> list[RunInfo]:
    """Queued jobs of ``kinds`` that no worker has claimed yet, oldest first."""
    return sorted((r for r in find_runs(con, statuses=("queued",)) if r.kind in kinds and r.pid is None),
                  key=lambda r: (r.created_at, r.id))


def claim_next(con: duckdb.DuckDBPyConnection, pid: int, kinds: tuple[str, ...] = JOB_KINDS) -> RunInfo | None:
    """Give the oldest unclaimed queued job of ``kinds`` to the worker ``pid`` and return it (None when there is
    none). ``con``: a write visit (one writing process at a time, so two workers cannot claim the same job)."""
    for run in unclaimed_runs(con, kinds):
        claimed = con.execute("UPDATE runs SET pid = ?, host = ?, heartbeat_at = ? WHERE id = ? AND status = 'queued' "
                              "AND pid IS NULL RETURNING id", [pid, socket.gethostname(), utcnow(), run.id]).fetchall()
        if claimed:
            return get_run(con, run.id)
    return None


def any_dead(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether any queued or running run of the database has lost its process (``reap_dead_runs`` would mark it)."""
    runs = find_runs(con, statuses=ACTIVE)
    if not runs:
        return False
    now, worker = utcnow(), _worker_of(con, runs)
    return any(is_dead(r, now, worker=worker) for r in runs)


def _worker_of(con: duckdb.DuckDBPyConnection, runs: list[RunInfo]) -> bool | None:
    """Whether the database's worker runs, asked only when an unclaimed job needs the answer."""
    return worker_alive(location_of(con)) if any(is_unclaimed(r) for r in runs) else None


def _referenced_artifacts(con: duckdb.DuckDBPyConnection, model: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT artifact_path FROM model_versions WHERE model = ?", [model]).fetchall()}


def remove_orphan_artifacts(con: duckdb.DuckDBPyConnection, model: str, since: datetime) -> list[str]:
    """Delete artifact files of ``model`` written at or after ``since`` (naive UTC) that no version references.

    Only call when no job of the model is alive: a live job may be between writing its
    artifact and registering it. Returns the relative paths removed.
    """
    root = artifacts_folder(con)
    if root is None:
        return []
    folder = root / model
    if not folder.is_dir():
        return []
    keep = _referenced_artifacts(con, model)
    cutoff = (since - datetime(1970, 1, 1)).total_seconds() - 2.0  # file mtimes have their own rounding
    removed = []
    for f in folder.iterdir():
        rel = f"{model}/{f.name}"
        if not f.is_file() or rel in keep or not f.name.endswith(ARTIFACT_FILE_SUFFIXES):
            continue
        try:
            if f.stat().st_mtime >= cutoff:
                f.unlink()
                removed.append(rel)
        except FileNotFoundError:
            pass
    return removed


def mark_failed(con: duckdb.DuckDBPyConnection, run: RunInfo, error: str, *, actor: str = "system",
                error_kind: str | None = None) -> None:
    """Mark ``run`` failed with ``error`` and write an audit event (one transaction by the caller).

    ``error_kind``: the name of the ``mlops_core.errors`` class that failed it, kept in the run's
    statistics (``error_kind``) so a client can give the matching exit code.
    """
    now = utcnow()
    started = run.started_at or run.created_at
    extra = {"statistics": {**(run.statistics or {}), "error_kind": error_kind}} if error_kind else {}
    update_run(con, run.id, status="failed", error=error, message="failed", finished_at=now,
               duration_s=(now - started).total_seconds() if started else None, **extra)
    insert_audit(con, actor=actor, action=f"{run.kind}_failed", model=run.model, reason=error, run_id=run.id)


def reap_dead_runs(con: duckdb.DuckDBPyConnection, model: str | None = None) -> list[str]:
    """Mark every dead queued/running run failed and remove a dead retrain's unregistered artifacts.

    Returns the ids of the runs reaped.
    """
    runs = find_runs(con, model=model, statuses=ACTIVE)
    now, worker = utcnow(), _worker_of(con, runs)
    reaped = []
    for run in runs:
        if not is_dead(run, now, worker=worker):
            continue
        if is_unclaimed(run):
            error = (f"No job worker took this queued {run.kind} within {WORKER_START_GRACE_S:g} s of its request "
                     "(the worker could not start; its output is in the jobs folder's worker.log); nothing of it ran.")
        else:
            error = (f"The process running this {run.kind} (pid {run.pid} on {run.host}) ended without finishing "
                     f"(last heartbeat {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC); nothing of it was registered.")
        con.execute("BEGIN TRANSACTION")
        try:
            current = con.execute("SELECT status FROM runs WHERE id = ?", [run.id]).fetchone()
            if current and current[0] in ACTIVE:
                mark_failed(con, run, error)
                reaped.append(run.id)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if run.kind == "retrain" and run.model and run.id in reaped:
            others_alive = any(not is_dead(r, now, worker=worker) for r in active_runs(con, run.model)
                               if r.id != run.id)
            if not others_alive:
                remove_orphan_artifacts(con, run.model, run.created_at)
    return reaped


def runs_of_kind_frame(con: duckdb.DuckDBPyConnection, model: str, kind: str, limit: int = 200,
                       param: str | None = None) -> pd.DataFrame:
    """Runs of one kind for a model, newest first (JSON columns as text); ``param``: only runs whose params name it."""
    sql, params = ("SELECT id, model, kind, trigger, actor, status, progress, message, params, metrics, statistics, "
                   "error, created_at, started_at, finished_at, duration_s FROM runs WHERE model = ? AND kind = ?"), \
        [model, kind]
    if param:
        sql += " AND params LIKE ?"
        params.append(f'%"{param}"%')
    return con.execute(sql + f" ORDER BY created_at DESC, id DESC LIMIT {int(limit)}", params).df()


def last_run_time(con: duckdb.DuckDBPyConnection, model: str, kind: str, *, trigger: str | None = None,
                  statuses: tuple[str, ...] | None = None) -> datetime | None:
    """When the latest run of ``kind`` (optionally of one trigger and statuses) was created, or None."""
    sql, params = "SELECT max(created_at) FROM runs WHERE model = ? AND kind = ?", [model, kind]
    if trigger:
        sql += " AND trigger = ?"
        params.append(trigger)
    if statuses:
        sql += f" AND status IN ({', '.join('?' for _ in statuses)})"
        params.extend(statuses)
    return con.execute(sql, params).fetchone()[0]


def since(hours: float, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(hours=hours)

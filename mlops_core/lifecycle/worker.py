"""The job worker: one standing process per database that runs the queued background jobs.

A retrain started from the dashboard or the CLI is queued *unclaimed* in ``runs`` (see
``store.jobs``); the worker claims the oldest such job, runs it in its own process (imports
already loaded, so a job costs what it costs in process, not an interpreter start plus
pandas, scikit-learn and DuckDB), and takes the next. Jobs run one at a time, in the order
they were queued.

Life cycle:

- *on demand*: ``ensure`` (called by ``jobs.start_retrain``, and by the dashboard when it shows
  the retrain page) starts a worker when none runs, detached in its own session, so it outlives
  the dashboard or CLI that started it; otherwise it wakes the running one.
- *one per database*: the worker holds an exclusive ``flock`` on ``store.jobs.worker_lock_path``
  (its pid written inside) while it runs; a second one started at the same moment finds the lock
  taken and exits.
- *wake-ups*: a starter writes a byte into the FIFO ``worker.wake`` beside the lock; the worker
  also looks at the queue every ``POLL_S`` seconds, so a lost wake-up only delays a job.
- *idle exit*: after ``MLOPS_WORKER_IDLE_S`` seconds (default ``IDLE_TIMEOUT_S``) without work it
  releases the lock, looks at the queue once more (a starter that saw it alive may just have
  queued a job) and exits when the queue is empty; it also exits when its database is gone.
- *failure*: a job runs as in ``retrain.execute`` (heartbeat, run row, audit); SIGTERM interrupts
  it (the job is marked failed, the worker exits); a worker killed outright (kill -9) leaves its
  job's pid dead, and the reaper (``store.jobs.reap_dead_runs``) marks the job failed the next
  time any process opens the database or reads the job. Queued jobs that were waiting behind it
  stay queued and the next starter or reader (``jobs.wait``, ``jobs.active_run``) starts a new
  worker for them.

Each job's output goes to ``<artifacts>/jobs/<run id>.log`` as before; the worker's own to
``<artifacts>/jobs/worker.log``.
"""
from __future__ import annotations

import errno
import fcntl
import gc
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlops_core.errors import MlopsError, NotFoundError
from mlops_core.store import Store
from mlops_core.store import jobs as jobstore

__all__ = ["IDLE_TIMEOUT_S", "POLL_S", "ensure", "running_pid", "serve", "stop", "wake"]

#: Seconds without work after which a worker exits (``MLOPS_WORKER_IDLE_S`` overrides it).
IDLE_TIMEOUT_S = 600.0
#: Seconds between looks at the queue when no wake-up arrives.
POLL_S = 2.0
#: How long a starting worker retries the lock (a liveness test holds a shared lock for microseconds).
LOCK_RETRY_S = 0.5

#: A worker this process started counts as serving for this long before it holds its lock (interpreter start).
START_GRACE_S = 30.0

_spawn_lock = threading.Lock()
_children: list[subprocess.Popen] = []  # kept so finished workers are reaped, not left as zombies
_started: dict[str, tuple[subprocess.Popen, float]] = {}  # database path -> the worker started for it, and when


def idle_timeout() -> float:
    """Seconds a worker waits for work before it exits (``MLOPS_WORKER_IDLE_S``, default ``IDLE_TIMEOUT_S``)."""
    text = os.environ.get("MLOPS_WORKER_IDLE_S", "")
    try:
        value = float(text) if text else IDLE_TIMEOUT_S
    except ValueError:
        return IDLE_TIMEOUT_S
    return value if value >= 0 else IDLE_TIMEOUT_S


def _jobs_folder(store: Store) -> Path:
    return jobstore.worker_lock_path(store.location).parent


def _wake_path(store: Store) -> Path:
    return _jobs_folder(store) / "worker.wake"


def worker_log_path(store: Store) -> Path:
    """Where the worker's own output goes (each job has its own log beside it)."""
    return _jobs_folder(store) / "worker.log"


def running_pid(store: Store) -> int | None:
    """The pid of the database's running worker, or None when none runs."""
    return jobstore.worker_pid(store.location)


# --- starting and waking (the app's side) ------------------------------------------------------


def _reap_children() -> None:
    for p in list(_children):
        if p.poll() is not None:
            _children.remove(p)


def wake(store: Store) -> bool:
    """Tell a running worker to look at the queue now; False when no worker listens."""
    try:
        fd = os.open(_wake_path(store), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # no FIFO, or nobody reading it (ENXIO): no worker, or one that polls
        return False
    try:
        os.write(fd, b"\0")
    except OSError:  # full pipe: wake-ups are already pending
        pass
    finally:
        os.close(fd)
    return True


def _starting(store: Store) -> bool:
    """Whether this process started a worker for ``store`` moments ago that is still coming up."""
    found = _started.get(store.location)
    return found is not None and found[0].poll() is None and time.monotonic() - found[1] < START_GRACE_S


def ensure(store: Store) -> int | None:
    """Make sure a worker serves ``store``: wake the running one, or start one (detached); return the pid of a
    worker started now, None when one was running or coming up. Raises MlopsError when the process cannot be
    started."""
    _reap_children()
    with _spawn_lock:
        if jobstore.worker_alive(store.location):
            wake(store)
            return None
        if _starting(store):
            return None
        return _spawn(store)


def _spawn(store: Store) -> int:
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "mlops_core", "worker"]
    if store.url is not None:  # in the environment, not the command line: a URL may hold a password
        env["MLOPS_METADATA_URL"] = store.url
    else:
        cmd += ["--db", str(store.path)]
    try:
        _jobs_folder(store).mkdir(parents=True, exist_ok=True)
        with open(worker_log_path(store), "ab") as out:
            # our own interpreter and module, arguments as a list, no shell
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,  # noqa: S603
                                    env=env, cwd=package_root, start_new_session=True)
    except OSError as exc:
        raise MlopsError(f"Could not start the job worker of {store.display}: {exc}", path=store.display) from exc
    _children.append(proc)
    _started[store.location] = (proc, time.monotonic())
    return proc.pid


def stop(store: Store, timeout: float = 30.0) -> bool:
    """Ask the running worker to stop (SIGTERM: a job it runs is marked failed) and wait up to ``timeout`` seconds
    for it to go; True when no worker runs afterwards."""
    pid = running_pid(store)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while jobstore.worker_alive(store.location):
        _reap_children()
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    _reap_children()
    return True


# --- the worker process -----------------------------------------------------------------------


def _take_lock(store: Store) -> int | None:
    """Open and lock the worker lock file exclusively (retrying briefly); its fd, or None when another worker
    holds it."""
    path = jobstore.worker_lock_path(store.location)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LOCK_RETRY_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN) or time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.01)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _release_lock(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.close(fd)  # closing the only descriptor of the open file releases its flock


def _open_wake(store: Store) -> int | None:
    """The worker's end of the wake-up FIFO (read-write, so it never sees end-of-file), or None without one."""
    path = _wake_path(store)
    try:
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:
            pass
        return os.open(path, os.O_RDWR | os.O_NONBLOCK)
    except (OSError, AttributeError):  # a file system without FIFOs: the worker polls
        return None


def _sleep(wake_fd: int | None, seconds: float) -> None:
    if seconds <= 0:
        return
    if wake_fd is None:
        time.sleep(seconds)
        return
    ready, _, _ = select.select([wake_fd], [], [], seconds)
    if ready:
        try:
            while os.read(wake_fd, 4096):
                pass
        except BlockingIOError:
            pass


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so native libraries' output too) to
    ``path`` for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def _runners() -> dict[str, Callable[[Store, str], object]]:
    """What runs a job of each kind, imported here, once, when the worker starts, with what a first job would load
    on its way: skops, the artifact format (it loads scikit-learn whole; the biggest import of a retrain, several
    times the job itself on a small window), and pyarrow's conversion to pandas."""
    import pyarrow.pandas_compat  # noqa: F401
    import skops.io  # noqa: F401

    from mlops_core.lifecycle import retrain

    return {"retrain": retrain.execute}


def _claim(store: Store, kinds: tuple[str, ...]):
    with store.connect() as con:  # a read visit first: the write visit (exclusive) only when there is work
        if not jobstore.unclaimed_runs(con, kinds):
            return None
    with store.connect(write=True) as con:
        return jobstore.claim_next(con, os.getpid(), kinds)


def _has_work(store: Store, kinds: tuple[str, ...]) -> bool:
    with store.connect() as con:
        return bool(jobstore.unclaimed_runs(con, kinds))


def _run(store: Store, run, runners, log=print) -> None:
    """Run one claimed job with its output in its own log; its failure is recorded in its run row."""
    from mlops_core.lifecycle.jobs import job_log_path

    path = job_log_path(store, run.id)
    t, cpu = time.perf_counter(), time.process_time()
    log(f"running {run.kind} {run.id} of {run.model}")
    try:
        with _output_to(path):
            try:
                runners[run.kind](store, run.id)
            except (KeyboardInterrupt, SystemExit):
                raise
            # any failure is recorded in the run row by the job itself; the traceback goes to its log
            except Exception:  # noqa: BLE001
                traceback.print_exc()
    finally:
        gc.collect()  # the job paused the collector; free its cycles before the next one
    log(f"finished {run.kind} {run.id} in {time.perf_counter() - t:.2f} s (CPU {time.process_time() - cpu:.2f} s)")


def serve(store: Store, *, idle: float | None = None, poll: float = POLL_S) -> int:
    """Run the worker of ``store`` in this process until it has been idle ``idle`` seconds (default
    ``idle_timeout()``) or its database is gone; return an exit code (0; also when another worker runs).

    SIGTERM interrupts a running job (marked failed) and ends the worker.
    """
    idle = idle_timeout() if idle is None else idle

    def log(message: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} worker {os.getpid()}: {message}", flush=True)

    lock = _take_lock(store)
    if lock is None:
        log("another worker serves this database; exiting")
        return 0
    previous = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() \
        else None
    wake_fd = None
    try:
        runners = _runners()
        kinds = tuple(runners)
        wake_fd = _open_wake(store)
        log(f"serving {store.display} (idle timeout {idle:g} s)")
        last_work = time.monotonic()
        while True:
            if not store.exists():
                log("the database is gone; exiting")
                break
            try:
                run = _claim(store, kinds)
            except NotFoundError:
                break
            if run is not None:
                _run(store, run, runners, log)
                last_work = time.monotonic()
                continue
            left = idle - (time.monotonic() - last_work)
            if left <= 0:
                # Let go first, then look once more: a starter that saw this worker alive may have queued a job
                # just now and only woken it; if so, take the lock back (or leave the job to a newer worker).
                _release_lock(lock)
                lock = None
                if store.exists() and _has_work(store, kinds):
                    lock = _take_lock(store)
                    if lock is not None:
                        last_work = time.monotonic()
                        continue
                log("idle; exiting")
                break
            _sleep(wake_fd, min(poll, left))
    except KeyboardInterrupt:
        log("asked to stop; exiting")
    finally:
        if wake_fd is not None:
            os.close(wake_fd)
        if lock is not None:
            _release_lock(lock)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt

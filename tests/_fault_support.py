"""Kill -9 fault injection: real ``mlops`` processes, SIGKILLed at a chosen moment, then the state checked.

``start`` runs ``python -m mlops_core ...`` in its own session (cwd and PYTHONPATH = the worktree), so
``kill_everything`` can kill its process group, and then every other process whose command line names the
trial's folder (a retrain job runs in a session of its own). ``check_state`` holds what a crash may never
leave behind; it opens the database the way the next process would (migrations, then reaping dead jobs).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from conftest import log_sql

from mlops_core import ControlRoom, Identity, set_clock
from mlops_core.clock import utcnow
from mlops_core.store import Store, logs
from mlops_core.store.jobs import WORKER_START_GRACE_S

ROOT = Path(__file__).resolve().parent.parent
MODEL = "credit"
#: Longest wait for any one command or process (a busy CI machine is slow, a hung one must still end the test).
COMMAND_TIMEOUT_S = 600.0
CHECKER = Identity("fault-checker", "admin")


def copy_folder(template: Path, folder: Path) -> Path:
    """A copy of the template's database, logs and artifacts in ``folder``; return the database path."""
    folder.mkdir(parents=True)
    for p in template.iterdir():
        if not p.name.endswith(".lock"):
            (shutil.copytree if p.is_dir() else shutil.copy2)(p, folder / p.name)
    return folder / "mlops.duckdb"


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("MLOPS_DB", "MLOPS_LOG_DIR", "MLOPS_DEBUG"):
        env.pop(name, None)
    return env


def start(args: list[str], out_dir: Path, tag: str) -> subprocess.Popen:
    """Start ``mlops ARGS`` in a new session; its output goes to ``out_dir/<tag>.out|.err``."""
    with open(out_dir / f"{tag}.out", "wb") as out, open(out_dir / f"{tag}.err", "wb") as err:
        return subprocess.Popen([sys.executable, "-m", "mlops_core", *args], cwd=ROOT, env=_env(), stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)


@dataclass
class Finished:
    code: int
    out: str
    err: str
    seconds: float


def run(args: list[str], out_dir: Path, tag: str, timeout: float = COMMAND_TIMEOUT_S) -> Finished:
    """Run ``mlops ARGS`` to its end (killed with its group after ``timeout``)."""
    t0 = time.monotonic()
    proc = start(args, out_dir, tag)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_everything(proc, out_dir.parent)
        raise AssertionError(f"`mlops {' '.join(args)}` did not finish within {timeout:.0f} s") from None
    seconds = time.monotonic() - t0
    return Finished(code, (out_dir / f"{tag}.out").read_text(errors="replace"),
                    (out_dir / f"{tag}.err").read_text(errors="replace"), seconds)


def processes_naming(folder: Path) -> list[int]:
    """Live processes (not zombies) whose command line contains ``folder``, except this one."""
    needle = os.fsencode(str(folder))
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return found


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ('' when it is gone)."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def kill_everything(proc: subprocess.Popen, folder: Path, timeout: float = 60.0) -> list[int]:
    """SIGKILL ``proc``'s process group, then every process naming ``folder`` (a job it started in a session of
    its own); wait until all are gone. Returns the pids of those other processes."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=timeout)
    others: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        pids = processes_naming(folder)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        others += [p for p in pids if p not in others]
        while any(not _gone(p) for p in pids):
            if time.monotonic() > deadline:
                raise AssertionError(f"processes {pids} outlived SIGKILL for {timeout:.0f} s")
            time.sleep(0.02)
    return others


# --- the state a crash may leave ----------------------------------------------------------------------------------


@dataclass
class State:
    """What the checks read of a database after a kill."""

    production: int
    versions: list[int]
    batch_rows: int | None
    runs: dict[str, str] = field(default_factory=dict)  # run id -> status
    problems: list[str] = field(default_factory=list)
    orphan_logs: int = 0       # unlisted Parquet files the orphan cleanup removed
    orphan_artifacts: int = 0  # artifact files of a dead job that reaping it removed


def check_state(db: Path, *, batch_prefix: str | None = None, batch_rows: int | None = None,
                base_rows: int | None = None) -> State:
    """Open the database as the next process would and check every invariant; return what was found, with any
    violated invariant in ``problems``.

    - it opens, reads every table, and a small write succeeds;
    - exactly one version holds production (status, alias and one open alias row agree) and it loads (sha256);
    - the batch ``batch_prefix`` is in the log whole (``batch_rows`` rows, each once, one batch row) or not at
      all; the ``base_rows`` rows logged before are all still there;
    - every file ``log_files`` lists exists, and after the orphan cleanup no unlisted Parquet file remains;
    - every file in the model's artifacts folder belongs to a version (after dead jobs were reaped);
    - no run is left queued or running once the job worker (if one runs) finished what was queued.
    """
    store = Store(db)
    folder = store.artifacts / MODEL
    artifacts_before = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    store.forget()  # what a new process does: migrations, then reaping runs whose process died
    problems: list[str] = []
    room = ControlRoom(db, identity=CHECKER)
    model = room.model(MODEL)
    # Reaps this model's dead jobs too (and removes their unregistered artifacts), as a process would once a queued
    # job's grace for a worker to take it has passed (a command killed right after queuing its job leaves it
    # unclaimed, and no worker runs).
    later = utcnow() + timedelta(seconds=WORKER_START_GRACE_S + 1)
    set_clock(lambda: later)
    try:
        model.active_retrain()
    finally:
        set_clock(None)
    # A job its command queued but no worker took is not lost: the look at the active run above starts the
    # database's worker for it (in a session of its own), which runs it; wait (bounded) for it to finish.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(
            s in ("queued", "running") for (s,) in log_sql(db, "SELECT status FROM runs WHERE model = ?", [MODEL])):
        time.sleep(0.2)

    tables = [r[0] for r in log_sql(db, "SELECT table_name FROM duckdb_tables() WHERE database_name = "
                                        "current_database()")]
    for t in tables:
        log_sql(db, f'SELECT count(*) FROM "{t}"')
    try:
        model.set_alert_rule("no_traffic", threshold=24.0)
    except Exception as exc:
        problems.append(f"a small write failed: {type(exc).__name__}: {exc}")

    versions = model.versions()
    holders = [v.version for v in versions if v.status == "production"]
    alias = model.production_version()
    (open_rows,), = log_sql(db, "SELECT count(*) FROM deployments WHERE model = ? AND alias = 'production' "
                                "AND ended_at IS NULL", [MODEL])
    if len(holders) != 1 or alias != holders[0] or open_rows != 1:
        problems.append(f"production is ambiguous: versions with status production {holders}, alias {alias}, "
                        f"{open_rows} open alias rows")
    try:
        model.load()
    except Exception as exc:
        problems.append(f"the production version does not load: {type(exc).__name__}: {exc}")

    moves = log_sql(db, "SELECT d.action, count(*), (SELECT count(*) FROM audit_events a WHERE a.model = d.model "
                        "AND a.action = d.action) FROM deployments d WHERE d.model = ? GROUP BY d.model, d.action",
                    [MODEL])
    for action, alias_rows, audit_rows in moves:
        if alias_rows != audit_rows:
            problems.append(f"{alias_rows} alias rows but {audit_rows} audit rows for {action}")
    (unreported,), = log_sql(db, "SELECT count(*) FROM ingest_batches b WHERE NOT EXISTS (SELECT 1 FROM "
                                 "validation_reports r WHERE r.batch_id = b.batch_id) OR NOT EXISTS (SELECT 1 FROM "
                                 "audit_events a WHERE a.action = 'ingest_' || b.kind AND "
                                 "json_extract_string(a.details, '$.batch_id') = b.batch_id)")
    if unreported:
        problems.append(f"{unreported} ingest batches without their validation report or audit row")

    rows = None
    if batch_prefix is not None:
        (rows, distinct), = log_sql(db, f'SELECT count(*), count(DISTINCT request_id) FROM "log_{MODEL}" '
                                        "WHERE starts_with(request_id, ?)", [batch_prefix])
        (batches,), = log_sql(db, "SELECT count(*) FROM ingest_batches WHERE model = ? AND rows_written = ?",
                              [MODEL, batch_rows])
        if rows not in (0, batch_rows) or rows != distinct:
            problems.append(f"half a batch: {rows} rows ({distinct} distinct) of {batch_rows} in the log")
        if batches != (1 if rows else 0):
            problems.append(f"{batches} ingest_batches rows for a batch with {rows} rows in the log")
    if base_rows is not None:
        (n,), = log_sql(db, f'SELECT count(*) FROM "log_{MODEL}" WHERE NOT starts_with(request_id, ?)',
                        [batch_prefix or "\x00"])
        if n != base_rows:
            problems.append(f"the log had {base_rows} rows before, now {n}")

    listed = {r[0] for r in log_sql(db, "SELECT path FROM log_files WHERE model = ?", [MODEL])}
    missing = sorted(p for p in listed if not (store.logs / p).is_file())
    if missing:
        problems.append(f"log_files lists missing files: {missing[:3]}")
    with store.connect(write=True) as con:  # the cleanup ingest runs, as it would run an hour from now
        removed = logs.remove_orphans(con, store.logs, MODEL, now=time.time() + logs.ORPHAN_AGE_S + 1)
    on_disk = {str(p.relative_to(store.logs)) for kind in logs.KINDS
               for p in (store.logs / kind / f"model={MODEL}").glob("date=*/*.parquet")}
    if on_disk - listed:
        problems.append(f"unlisted Parquet files survive the cleanup: {sorted(on_disk - listed)[:3]}")

    referenced = {v.artifact_path for v in versions}
    present = {f"{MODEL}/{p.name}" for p in folder.iterdir()} if folder.is_dir() else set()
    if present - referenced:
        problems.append(f"artifact files no version references: {sorted(present - referenced)}")
    if referenced - present:
        problems.append(f"versions whose artifact is missing: {sorted(referenced - present)}")

    runs = dict(log_sql(db, "SELECT id, status FROM runs WHERE model = ?", [MODEL]))
    stuck = {r: s for r, s in runs.items() if s in ("queued", "running")}
    if stuck:
        problems.append(f"runs left {stuck} although every process is dead")
    store.forget()
    gone = artifacts_before - {p.name for p in folder.iterdir()} if folder.is_dir() else artifacts_before
    return State(alias or -1, [v.version for v in versions], rows, runs, problems, len(removed), len(gone))

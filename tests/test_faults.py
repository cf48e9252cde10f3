"""Fault injection: real ``mlops`` commands killed with SIGKILL at random moments, and what survives.

For each operation (ingest of a batch big enough to take a second or two, promote, rollback, and
``retrain --wait`` with its background job), one run to completion measures how long the command
takes; then each trial starts it on a fresh copy of the same database, waits a delay drawn uniformly
over that duration, and kills the command's process group and every process of the trial (the retrain
job runs in a session of its own). Then ``_fault_support.check_state`` checks, as the next process to
open the database: it opens and takes a write; exactly one production version, and it loads; the batch
is in the log whole or not at all; ``log_files`` lists only existing files and no unlisted Parquet file
survives the orphan cleanup; no artifact file without a version; no run left queued or running. Finally
the same command runs again and completes, and the state is checked once more.

Trials per operation: ``MLOPS_FAULT_TRIALS`` (default 3; ``make soak`` runs 25). The kill moments come
from ``MLOPS_FAULT_SEED`` (default below), printed with every failure so that a trial can be replayed:
``MLOPS_FAULT_SEED=<seed> MLOPS_FAULT_TRIALS=<n> pytest tests/test_faults.py -k '<op> and <trial>'``
(the delay is a fraction of the measured duration, so a replay on another machine lands at the same point
of the command's work, not the same millisecond).
"""
from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _fault_support import (
    COMMAND_TIMEOUT_S,
    MODEL,
    check_state,
    cmdline,
    copy_folder,
    kill_everything,
    processes_naming,
    run,
    start,
)
from _ops_support import build
from conftest import make_training_frame

from mlops_core import ControlRoom, Identity
from mlops_core.store import Store, utcnow

pytestmark = pytest.mark.slow

TRIALS = int(os.environ.get("MLOPS_FAULT_TRIALS") or 3)
SEED = int(os.environ.get("MLOPS_FAULT_SEED") or 20261130)
#: Rows of the ingested batch: enough for the command to take a second or two.
BATCH_ROWS = int(os.environ.get("MLOPS_FAULT_BATCH_ROWS") or 150_000)
PREFIX = "big"
BASE_ROWS = 1500
#: ``retrain_job`` kills only the background job while ``retrain --wait`` follows it (as when the kernel's OOM
#: killer picks the job): the waiting command must report the failure and exit non-zero.
OPERATIONS = ("ingest", "promote", "rollback", "retrain", "retrain_job")
ADMIN = Identity("fault-tester", "admin")


def command(op: str, db: Path, batch: Path) -> list[str]:
    common = ["--model", MODEL, "--db", str(db)]
    op = "retrain" if op == "retrain_job" else op
    return {
        "ingest": ["ingest", "predictions", str(batch), *common],
        "promote": ["promote", "--version", "2", "--reason", "fault trial", *common],
        "rollback": ["rollback", "--reason", "fault trial", *common],
        "retrain": ["retrain", "--wait", "--min-rows", "100", "--timeout", str(int(COMMAND_TIMEOUT_S)), *common],
    }[op]


# --- the databases the trials copy ----------------------------------------------------------------------------


@dataclass
class Templates:
    base: Path      # credit v1 production, v2 candidate, 1500 labelled predictions
    promoted: Path  # the same with v2 promoted (what a rollback starts from)
    batch: Path     # the batch file the ingest trials load
    work: Path


def big_batch(path: Path, n: int) -> None:
    df = make_training_frame(n, seed=11).drop(columns=["default"])
    df.insert(0, "request_id", [f"{PREFIX}{i:07d}" for i in range(n)])
    end = utcnow() - timedelta(hours=1)
    df["timestamp"] = pd.date_range(end=end, periods=n, freq="s").strftime("%Y-%m-%d %H:%M:%S")
    df["prediction"] = np.where(df["income"] > 50, "1", "0")
    df["score"] = (df["income"] / 100).clip(0, 1).round(4)
    df.to_csv(path, index=False)


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Templates:
    work = tmp_path_factory.mktemp("faults")
    base = work / "base"
    base.mkdir()
    db = base / "mlops.duckdb"
    build(db, n=BASE_ROWS)
    model = ControlRoom(db, identity=ADMIN).model(MODEL)
    model.add_version(model.load(1), make_training_frame(300, seed=4))
    Store(db).forget()
    promoted = work / "promoted"
    pdb = copy_folder(base, promoted)
    ControlRoom(pdb, identity=ADMIN).model(MODEL).promote(2, reason="before a rollback trial")
    Store(pdb).forget()
    batch = work / "batch.csv"
    big_batch(batch, BATCH_ROWS)
    return Templates(base, promoted, batch, work)


def template_of(t: Templates, op: str) -> Path:
    return t.promoted if op == "rollback" else t.base


_typical: dict[str, float] = {}


def typical_seconds(t: Templates, op: str) -> float:
    """How long the command takes when nothing kills it (measured once per operation on a copy, which also checks
    that the uninterrupted command succeeds and leaves a clean state)."""
    op = "retrain" if op == "retrain_job" else op  # the same command
    if op not in _typical:
        seconds = []
        for i in range(3 if TRIALS >= 10 else 1):  # a soak takes the median of three: one slow start skews less
            folder = t.work / f"measure-{op}-{i}"
            db = copy_folder(template_of(t, op), folder)
            done = run(command(op, db, t.batch), folder, "measure")
            assert done.code == 0, f"the uninterrupted {op} failed (exit {done.code}): {done.err}"
            state = check_state(db, batch_prefix=PREFIX if op == "ingest" else None, batch_rows=BATCH_ROWS,
                                base_rows=BASE_ROWS)
            assert not state.problems, state.problems
            seconds.append(done.seconds)
        _typical[op] = statistics.median(seconds)
    return _typical[op]


# --- trials ------------------------------------------------------------------------------------------------------


@dataclass
class Trial:
    op: str
    index: int
    fraction: float
    delay: float
    typical: float
    outcome: str  # done before the kill | committed | not committed
    killed_others: int
    seconds: float
    orphan_logs: int = 0
    orphan_artifacts: int = 0


TRIALS_RUN: list[Trial] = []


def fraction_of(op: str, index: int) -> float:
    """The trial's kill moment as a fraction of the command's duration (the same for a seed, on any machine)."""
    rng = random.Random(f"{SEED}:{op}")
    return [rng.random() for _ in range(index + 1)][index]


def finished(op: str, before, after) -> bool:
    """Whether the killed command's change is in the database (it committed before the kill)."""
    if op == "ingest":
        return bool(after.batch_rows)
    if op == "promote":
        return after.production == 2
    if op == "rollback":
        return after.production == 1
    return len(after.versions) > len(before.versions)


def kill_the_job(proc: subprocess.Popen, folder: Path, timeout: float = 120.0) -> list[int]:
    """SIGKILL the retrain job that ``proc`` (``retrain --wait``) started, as soon as it runs (at once when it
    does already); return its pids (none when the command ended first)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        jobs = [p for p in processes_naming(folder) if p != proc.pid and "--run-id" in cmdline(p)]
        if jobs:
            for pid in jobs:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return jobs
        if time.monotonic() > deadline:
            raise AssertionError(f"no retrain job appeared within {timeout:.0f} s")
        time.sleep(0.01)
    return []


@pytest.mark.parametrize("index", range(TRIALS), ids=lambda i: f"trial{i}")
@pytest.mark.parametrize("op", OPERATIONS)
def test_a_command_killed_at_any_moment_leaves_a_consistent_state(templates, op, index, tmp_path):
    t0 = time.monotonic()
    typical = typical_seconds(templates, op)
    fraction = fraction_of(op, index)
    delay = fraction * typical
    where = (f"{op} trial {index}: SIGKILL after {delay:.2f} s ({fraction:.3f} of the typical {typical:.2f} s); "
             f"replay with MLOPS_FAULT_SEED={SEED} MLOPS_FAULT_TRIALS={TRIALS} -k '{op} and trial{index}'")
    is_ingest = op == "ingest"
    db = copy_folder(template_of(templates, op), tmp_path / "db")
    before = check_state(db)
    assert not before.problems, before.problems

    proc = start(command(op, db, templates.batch), tmp_path, "killed")
    time.sleep(delay)
    done_before_kill = proc.poll() is not None
    if op == "retrain_job":
        others = kill_the_job(proc, tmp_path)
        code = proc.wait(timeout=COMMAND_TIMEOUT_S)  # the waiting command sees its job die and says so
        out, err = ((tmp_path / f"killed.{s}").read_text(errors="replace") for s in ("out", "err"))
        assert "Traceback" not in err and "unexpected" not in err, f"{where}: {err}"
        assert code == 0 or (code == 1 and "failed: The process running this retrain" in out), \
            f"{where}: the waiting command said (exit {code}): {out} {err}"
        done_before_kill = not others
        kill_everything(proc, tmp_path)
    else:
        others = kill_everything(proc, tmp_path)
    after = check_state(db, batch_prefix=PREFIX if is_ingest else None, batch_rows=BATCH_ROWS, base_rows=BASE_ROWS)
    assert not after.problems, f"{where}: {after.problems}"
    committed = finished(op, before, after)
    if op.startswith("retrain"):
        killed_runs = {r: s for r, s in after.runs.items() if r not in before.runs}
        assert all(s in ("failed", "succeeded") for s in killed_runs.values()), f"{where}: {killed_runs}"

    again = run(command(op, db, templates.batch), tmp_path, "again")
    already = again.code == 3 and committed and op in ("promote", "rollback")  # it had happened: nothing to redo
    assert again.code == 0 or already, f"{where}: running it again failed (exit {again.code}): {again.err}"
    assert "Traceback" not in again.err, f"{where}: {again.err}"
    final = check_state(db, batch_prefix=PREFIX if is_ingest else None, batch_rows=BATCH_ROWS, base_rows=BASE_ROWS)
    assert not final.problems, f"{where}, after running it again: {final.problems}"
    expected = {"ingest": ("batch_rows", BATCH_ROWS), "promote": ("production", 2), "rollback": ("production", 1),
                "retrain": ("versions", [*after.versions, max(after.versions) + 1])}[command(op, db, db)[0]]
    assert getattr(final, expected[0]) == expected[1], f"{where}: after running it again {expected[0]} is " \
                                                       f"{getattr(final, expected[0])}, expected {expected[1]}"
    outcome = "done before the kill" if done_before_kill else "committed" if committed else "not committed"
    trial = Trial(op, index, fraction, delay, typical, outcome, len(others), time.monotonic() - t0,
                  after.orphan_logs, after.orphan_artifacts)
    TRIALS_RUN.append(trial)
    if os.environ.get("MLOPS_FAULT_LOG"):  # one JSON line per trial, for a soak's figures
        with open(os.environ["MLOPS_FAULT_LOG"], "a") as f:
            f.write(json.dumps(asdict(trial)) + "\n")


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print the figures of the trials (per operation: trials, kill moments, outcomes) at the end."""
    t0 = time.monotonic()
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not TRIALS_RUN:
        return
    lines = [f"fault injection (seed {SEED}, {TRIALS} trials per operation, batch {BATCH_ROWS:,} rows, "
             f"{time.monotonic() - t0:.0f} s in all):"]
    for op in OPERATIONS:
        trials = [t for t in TRIALS_RUN if t.op == op]
        if not trials:
            continue
        delays = sorted(t.delay for t in trials)
        quart = statistics.quantiles(delays, n=4, method="inclusive") if len(delays) > 1 else delays * 3
        outcomes = {o: sum(t.outcome == o for t in trials) for o in ("not committed", "committed",
                                                                     "done before the kill")}
        lines.append(
            f"  {op:11s} {len(trials):3d} trials, typical {trials[0].typical:5.2f} s; kill after {delays[0]:.2f} / "
            f"{quart[0]:.2f} / {quart[1]:.2f} / {quart[2]:.2f} / {delays[-1]:.2f} s (min/q1/median/q3/max); "
            + ", ".join(f"{v} {k}" for k, v in outcomes.items())
            + f"; job processes killed in {sum(t.killed_others > 0 for t in trials)}; unlisted log files left "
              f"(then cleaned) in {sum(t.orphan_logs > 0 for t in trials)}, unregistered artifacts (then reaped) in "
              f"{sum(t.orphan_artifacts > 0 for t in trials)}; {statistics.mean(t.seconds for t in trials):.1f} s "
              "per trial")
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)

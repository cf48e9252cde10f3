"""Readers never fail because a writer is busy: reader processes keep reading through the public API while the
CLI ingests a big batch and an operator changes the policy; the batch lands whole, exactly once; an ingest killed
after writing its files but before listing them leaves none of its rows; and a new process's first read takes no
write turn.

How long reads take meanwhile is measured by ``benchmarks/bench_readers.py``, not asserted here.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import subprocess
import sys
import time
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from _dashboard_support import ROOT
from conftest import log_sql, make_training_frame

from mlops_core import ControlRoom, Identity
from mlops_core.config import is_postgres_url
from mlops_core.store import Store, forget_database

pytestmark = pytest.mark.slow

MODEL = "credit"
ROWS = 300_000
READERS = 6
HISTORY_START = datetime(2026, 3, 1)
BATCH_START = datetime(2026, 3, 10)


def write_batch(path, rows: int, prefix: str, start: datetime, seed: int) -> None:
    """A Parquet batch of ``rows`` predictions for MODEL, one a second from ``start``, ids ``<prefix>-<n>``."""
    tr = make_training_frame(rows, seed=seed)
    df = tr.drop(columns=["default"])
    df.insert(0, "request_id", [f"{prefix}-{i:07d}" for i in range(rows)])
    df.insert(1, "timestamp", pd.Timestamp(start) + pd.to_timedelta(np.arange(rows), unit="s"))
    df["prediction"] = tr["default"]
    df["score"] = np.random.default_rng(seed).random(rows).round(4)
    df.to_parquet(path, index=False)


def rows_of(db, prefix: str) -> tuple[int, int]:
    """(rows, distinct request ids) in MODEL's log whose id starts with ``prefix``."""
    n, distinct = log_sql(db, f"SELECT count(*), count(DISTINCT request_id) FROM log_{MODEL} "
                              "WHERE starts_with(request_id, ?)", [prefix + "-"])[0]
    return n, distinct


def ingest_command(db, path) -> list[str]:
    return [sys.executable, "-m", "mlops_core", "ingest", "predictions", str(path), "--model", MODEL, "--db", str(db)]


@pytest.fixture
def history_db(registered_credit_db, tmp_path):
    """The registered ``credit`` database with two days of labelled history, so that every read has data."""
    room = ControlRoom(registered_credit_db)
    path = tmp_path / "history.parquet"
    write_batch(path, 2 * 1440, "hist", HISTORY_START, seed=3)
    room.model(MODEL).ingest(path)
    labels = pd.read_parquet(path, columns=["request_id", "prediction"]).rename(columns={"prediction": "label"})
    room.model(MODEL).ingest(labels, "labels")
    return registered_credit_db


def read_loop(index: int, db: str, go, stop, out) -> None:
    """One reader process: a dashboard's and a CLI user's reads in turn from ``go`` until ``stop``; sends back
    (read, start, end, error) of each."""
    try:
        room = ControlRoom(db, identity=Identity(f"reader{index}", "viewer"))
        window = {"start": HISTORY_START, "end": BATCH_START}
        reads = [
            ("models", lambda: room.models()),
            ("status", lambda: room.model(MODEL).status()),
            ("versions", lambda: room.model(MODEL).versions()),
            ("performance", lambda: room.model(MODEL).performance(**window)),
            ("drift", lambda: room.model(MODEL).drift(**window, store=False)),
            ("last_prediction", lambda: room.model(MODEL).last_prediction()),
            ("runs", lambda: room.runs(MODEL)),
            ("audit", lambda: room.audit(MODEL)),
            ("alerts", lambda: room.alerts(open_only=True)),
            ("first visit of a new process", lambda: (room.store.forget(), room.runs(MODEL))),
        ]
        for _, call in reads:
            call()
        out.put(("ready", index, None))
        go.wait()
        samples, k = [], index
        while not stop.is_set():
            name, call = reads[k % len(reads)]
            k += 1
            t0 = time.monotonic()
            try:
                call()
                error = None
            except Exception as exc:  # what the test is about: report it, keep reading
                error = f"{type(exc).__name__}: {exc}"
            samples.append((name, t0, time.monotonic(), error))
            stop.wait(0.02)
        out.put(("done", index, samples))
    except BaseException as exc:
        out.put(("failed", index, f"{type(exc).__name__}: {exc}"))


def collect(out, kind: str, expected: int, timeout: float) -> dict:
    got, deadline = {}, time.monotonic() + timeout
    while len(got) < expected:
        try:
            what, who, payload = out.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"readers {sorted(set(range(expected)) - set(got))} sent no {kind!r} in {timeout:.0f} s")
        assert what != "failed", f"reader {who} failed: {payload}"
        if what == kind:
            got[who] = payload
    return got


def test_reader_processes_never_fail_while_the_cli_ingests_and_an_operator_writes(history_db, tmp_path):
    db = history_db
    batch = tmp_path / "batch.parquet"
    write_batch(batch, ROWS, "big", BATCH_START, seed=1)
    before = ControlRoom(db).model(MODEL).status().predictions
    ctx = mp.get_context("spawn")
    out, go, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    readers = [ctx.Process(target=read_loop, args=(i, str(db), go, stop, out), daemon=True) for i in range(READERS)]
    for p in readers:
        p.start()
    try:
        collect(out, "ready", READERS, 300)
        go.set()
        operator = ControlRoom(db, identity=Identity("ops", "operator")).model(MODEL)
        started = time.monotonic()
        ingest = subprocess.Popen(ingest_command(db, batch), cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        changes = 0
        while ingest.poll() is None:  # small writes through the same turnstile while the ingest runs
            operator.set_policy(cooldown_hours=float(24 + changes % 5))
            changes += 1
            time.sleep(0.2)
        _, stderr = ingest.communicate()
        finished = time.monotonic()
        time.sleep(0.3)
        stop.set()
        samples = collect(out, "done", READERS, 120)
    finally:
        go.set()
        stop.set()
        for p in readers:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()

    assert ingest.returncode == 0, stderr
    assert "Traceback" not in stderr
    errors = [(who, name, error) for who, rows in samples.items() for name, _, _, error in rows if error]
    assert errors == []
    overlapping = {who: sum(1 for _, s, e, _ in rows if s < finished and e > started) for who, rows in samples.items()}
    assert all(n > 0 for n in overlapping.values()), f"a reader read nothing while the ingest ran: {overlapping}"
    assert changes > 0
    assert rows_of(db, "big") == (ROWS, ROWS)
    assert ControlRoom(db).model(MODEL).status().predictions == before + ROWS
    audit = ControlRoom(db).audit(MODEL)
    assert (audit["action"] == "policy_change").sum() == changes


def test_an_ingest_killed_after_writing_its_files_leaves_none_of_its_rows(history_db, tmp_path):
    db = history_db
    batch = tmp_path / "victim.parquet"
    write_batch(batch, ROWS, "victim", BATCH_START, seed=2)
    before = ControlRoom(db).model(MODEL).status().predictions
    folder = ControlRoom(db).store.logs / "predictions" / f"model={MODEL}"
    files_before = set(folder.rglob("*.parquet"))
    # Another process holds a visit open, so the ingest, once its files are written, waits for its write turn and
    # is killed there: between writing the files and listing them. A DuckDB writer waits for the readers inside; a
    # PostgreSQL writer never waits for readers, only for the writer lock, so there the holder writes.
    postgres = is_postgres_url(str(db))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom mlops_core.store import connect\n"
         f"with connect({str(db)!r}, write={postgres}):\n    print('visiting', flush=True)\n    sys.stdin.readline()"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "visiting"
        victim = subprocess.Popen(ingest_command(db, batch), cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env={**os.environ, "MLOPS_LOCK_TIMEOUT": "120"})
        deadline = time.monotonic() + 120
        while True:
            written = set(folder.rglob("*.parquet")) - files_before
            if written and _waits_for_a_write_turn(db):
                break
            assert victim.poll() is None, "the ingest ended before it was killed"
            assert time.monotonic() < deadline, "the ingest never reached its commit"
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert written, "the killed ingest had written no file"
    assert rows_of(db, "victim") == (0, 0)
    assert ControlRoom(db).model(MODEL).status().predictions == before
    # The files it left are not part of the log; ingesting the batch again writes each row once.
    again = subprocess.run(ingest_command(db, batch), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert rows_of(db, "victim") == (ROWS, ROWS)


def _waits_for_a_write_turn(db) -> bool:
    """Whether a process waits for its write turn: on DuckDB it holds the database's gate, as a writer does while it
    waits for the readers inside; on PostgreSQL it waits for the writer lock (an advisory lock not yet granted)."""
    import fcntl

    if is_postgres_url(str(db)):
        with Store(db).connect() as con:
            return con.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                               "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                               ).fetchone()[0] > 0

    from mlops_core.store.connection import GATE

    fd = os.open(f"{db}.lock", os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, GATE)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the gate if it was free and taken just now
    return False


def test_a_new_process_reads_while_another_holds_a_visit_and_needs_no_write_turn(history_db, monkeypatch):
    # A process's first visit looks for pending migrations and dead jobs; with none, it must not ask for a write
    # turn, which would wait for every reader (here one that never leaves) and hold new readers back meanwhile.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom mlops_core.store import connect\n"
         f"with connect({str(history_db)!r}):\n    print('reading', flush=True)\n    sys.stdin.readline()"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "reading"
        forget_database(history_db)
        monkeypatch.setenv("MLOPS_LOCK_TIMEOUT", "2")
        assert [m.name for m in ControlRoom(history_db).models()] == [MODEL]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)

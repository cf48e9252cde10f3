"""Regression tests of the security and reliability probes: each probe that once failed, with its new result.

Full disk and read-only storage are real: a small tmpfs filled to the brim, and a read-only bind
mount of a database folder (both need root and are skipped without it; a read-only copy by file
mode stands in for the second when not root).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from _postgres_support import scratch
from conftest import make_training_frame

from mlops_core import ControlRoom, Identity
from mlops_core.cli import main

ROOT = Path(__file__).resolve().parent.parent
MODEL = "credit"


def batch(n: int = 50, start: str = "2026-03-01 00:00", prefix: str = "r") -> pd.DataFrame:
    df = make_training_frame(n, seed=3).drop(columns=["default"])
    df.insert(0, "request_id", [f"{prefix}{i:05d}" for i in range(n)])
    df["timestamp"] = pd.date_range(start, periods=n, freq="min").astype(str)
    df["prediction"] = 0
    df["score"] = 0.25
    return df


def snapshot(db: Path) -> dict:
    """Every file beside the database (name -> size), without the lock file and DuckDB's write-ahead log."""
    files = {str(p.relative_to(db.parent)): p.stat().st_size for p in db.parent.rglob("*")
             if p.is_file() and not p.name.endswith((".lock", ".wal"))}
    return files


def _mount(*args: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextmanager
def full_disk(tmp_path: Path, db: Path, size_mb: int = 24):
    """A copy of ``db`` (and its folders) on a tmpfs of ``size_mb`` whose free space is then filled; yields the
    copy's path. Skips without root."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if not _mount("-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mnt)):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        for p in db.parent.iterdir():
            if p.name.startswith(db.stem):
                (shutil.copytree if p.is_dir() else shutil.copy2)(p, mnt / p.name)
        with open(mnt / "filler", "wb") as fh:  # leave a few KB: enough to open, too little to write
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        yield mnt / db.name
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@contextmanager
def read_only(tmp_path: Path, db: Path):
    """``db`` and its folders seen through a read-only bind mount (root), else a copy without write permission."""
    src, view = tmp_path / "ro_src", tmp_path / "ro_view"
    src.mkdir()
    view.mkdir()
    for p in db.parent.iterdir():
        if p.name.startswith(db.stem) and not p.name.endswith(".lock"):
            (shutil.copytree if p.is_dir() else shutil.copy2)(p, src / p.name)
    if _mount("--bind", str(src), str(view)):
        if not _mount("-o", "remount,ro,bind", str(view)):
            subprocess.run(["umount", "-l", str(view)], capture_output=True)
            pytest.skip("cannot remount read-only")
        try:
            yield view / db.name
        finally:
            subprocess.run(["umount", "-l", str(view)], capture_output=True)
    else:
        if os.geteuid() == 0:
            pytest.skip("needs mount to make a read-only view as root")
        for p in [src, *src.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield src / db.name
        finally:
            for p in [src, *src.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlops_core", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


# --- 8. full disk: a clear message, exit 7, nothing half-written ------------------------------------------


@pytest.mark.duckdb_file  # fills a tmpfs that holds a copy of the DuckDB file
def test_full_disk_during_ingest_and_register(registered_credit_db, tmp_path):
    with full_disk(tmp_path, registered_credit_db) as db:
        before = snapshot(db)
        path = tmp_path / "batch.csv"
        batch(20000).to_csv(path, index=False)
        r = cli("ingest", "predictions", str(path), "--model", MODEL, "--db", str(db))
        assert r.returncode == 7, r.stderr
        assert "disk is full" in r.stderr and "Traceback" not in r.stderr
        train = tmp_path / "train.csv"
        make_training_frame(3000).to_csv(train, index=False)
        r = cli("register", "--model", "second", "--task", "classification", "--target", "default",
                "--training-data", str(train), "--db", str(db))
        assert r.returncode == 7, r.stderr
        assert "disk is full" in r.stderr
        after = snapshot(db)
        assert {k: v for k, v in after.items() if k != "filler"} == {k: v for k, v in before.items() if k != "filler"}
        assert not [k for k in after if k.endswith(".tmp") or ".tmp" in k]
        (db.parent / "filler").unlink()
        assert ControlRoom(db).model(MODEL).production_version() == 1
        assert [m.name for m in ControlRoom(db).models()] == [MODEL]


# --- 8. read-only database: reads and the dashboard work, writes say why (exit 8) -----------------------------


@pytest.mark.duckdb_file  # a read-only mount of the DuckDB file
def test_read_only_database(registered_credit_db, tmp_path):
    room = ControlRoom(registered_credit_db, identity=Identity("setup", "admin"))
    room.model(MODEL).ingest(batch())
    room.add_user("pat", "operator", "correct horse battery")
    with read_only(tmp_path, registered_credit_db) as db:
        for args in (["models"], ["status", "--model", MODEL], ["performance", "--model", MODEL],
                     ["drift", "--model", MODEL, "--no-store"], ["runs"], ["audit"], ["alerts"], ["versions",
                                                                                                  "--model", MODEL]):
            r = cli(*args, "--db", str(db))
            assert r.returncode == 0, (args, r.stderr)
        more = tmp_path / "more.csv"
        batch(10, prefix="m").to_csv(more, index=False)
        for args in (["policy", "--model", MODEL, "--mode", "automated"], ["ingest", "predictions", str(more),
                                                                          "--model", MODEL], ["users", "add", "zed"]):
            r = cli(*args, "--db", str(db))
            assert r.returncode == 8, (args, r.returncode, r.stderr)
            assert "read-only" in r.stderr and "Traceback" not in r.stderr
        # the dashboard: a login and every page
        from streamlit.testing.v1 import AppTest

        os.environ["MLOPS_DB"] = str(db)
        try:
            at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60).run()
            at.text_input(key="login_name").input("pat")
            at.text_input(key="login_password").input("correct horse battery")
            next(b for b in at.button if b.label == "Log in").click()
            at.run()
            assert at.session_state["signed_in"] == Identity("pat", "operator")
            for page in ("performance", "drift", "data_quality", "versions", "retrain", "runs", "automation"):
                at.switch_page(f"pages/{page}.py").run()
                assert not at.exception, (page, [e.value for e in at.exception])
                assert not at.error, (page, [e.value for e in at.error])
        finally:
            os.environ.pop("MLOPS_DB", None)


# --- 8. a model name differing only in case: exit 2 before any training ---------------------------------------


def test_case_only_name_clash_is_refused_before_training(registered_credit_db, tmp_path):
    train = tmp_path / "train.csv"
    make_training_frame(20000).to_csv(train, index=False)
    t0 = time.perf_counter()
    r = cli("register", "--model", MODEL.upper(), "--task", "classification", "--target", "default",
            "--training-data", str(train), "--db", str(registered_credit_db))
    assert r.returncode == 2 and "differ only in case" in r.stderr, r.stderr
    assert time.perf_counter() - t0 < 30
    assert not (scratch(registered_credit_db) / "mlops_artifacts" / MODEL.upper()).exists()
    assert [m.name for m in ControlRoom(registered_credit_db).models()] == [MODEL]


# --- 8. `runs | head`: a silent exit ----------------------------------------------------------------------------


def test_broken_pipe_is_silent(registered_credit_db):
    script = ("import os, sys\n"
              "r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
              "from mlops_core.cli import main\n"
              f"sys.exit(main(['runs', '--limit', '500', '--db', {str(registered_credit_db)!r}]))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 141 and out.stderr == "", out.stderr


# --- 9. a CSV that links to a system file: the error does not quote it --------------------------------------


def test_a_linked_system_file_is_not_quoted_back(registered_credit_db, tmp_path, capsys):
    link = tmp_path / "batch.csv"
    link.symlink_to("/etc/passwd")
    assert main(["ingest", "predictions", str(link), "--model", MODEL, "--db", str(registered_credit_db)]) == 2
    err = capsys.readouterr().err
    first_line = Path("/etc/passwd").read_text().splitlines()[1]
    assert first_line not in err and "root:x" not in err
    assert "not repeated" in err or "missing column" in err


# --- 9. a 900 KB field value is not echoed whole ----------------------------------------------------------


def test_a_huge_field_value_is_quoted_briefly(registered_credit_db, capsys):
    df = batch(5)
    df["region"] = ["x" * 900_000] + ["north"] * 4
    path = scratch(registered_credit_db) / "huge.csv"
    df.to_csv(path, index=False)
    assert main(["ingest", "predictions", str(path), "--model", MODEL, "--db", str(registered_credit_db)]) == 0
    captured = capsys.readouterr()
    assert "x" * 100 not in captured.out + captured.err
    assert len(captured.out + captured.err) < 5000


# --- 4. stored times far from now: nothing fails, the default range stays on the real traffic -------------------


def test_odd_stored_times_render_everywhere(registered_credit_db, monkeypatch, capsys):
    room = ControlRoom(registered_credit_db)
    room.model(MODEL).ingest(batch(30, start="2026-03-01 00:00"))
    monkeypatch.setenv("MLOPS_MIN_TIMESTAMP", "0001-01-01")
    monkeypatch.setenv("MLOPS_MAX_FUTURE_HOURS", "1e12")  # as if the bounds had been switched off
    odd = batch(3, prefix="odd")
    odd["timestamp"] = ["9999-12-31 23:00:00", "2300-01-01 00:00:00", "1000-01-01 00:00:00"]
    room.model(MODEL).ingest(odd)
    monkeypatch.delenv("MLOPS_MIN_TIMESTAMP")
    monkeypatch.delenv("MLOPS_MAX_FUTURE_HOURS")

    model = ControlRoom(registered_credit_db).model(MODEL)
    assert model.last_prediction() < pd.Timestamp("2026-03-02")
    rows, first, last = model.times_outside_range()
    assert (rows, first.year, last.year) == (3, 1000, 9999)
    db = ["--db", str(registered_credit_db)]
    for args in (["performance", "--model", MODEL], ["performance", "--model", MODEL, "--from", "9999-12-30",
                                                     "--to", "9999-12-31"],
                 ["drift", "--model", MODEL, "--no-store"], ["drift", "--model", MODEL, "--no-store", "--from",
                                                             "9999-12-01", "--to", "9999-12-31", "--window", "week"],
                 ["status", "--model", MODEL], ["validate", "--model", MODEL]):
        assert main([*args, *db]) in (0, 1), args
        err = capsys.readouterr().err
        assert "unexpected" not in err, (args, err)

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MLOPS_DB", str(registered_credit_db))
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    at.session_state["signed_in"] = Identity("pat", "operator")
    at.run()
    for page in ("performance", "drift", "data_quality", "versions", "retrain", "runs", "automation"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        assert any("outside the accepted range" in w.value for w in at.sidebar.warning), page
    assert at.sidebar.date_input(key="date_range").value[1] == pd.Timestamp("2026-03-01").date()


# --- 1. the dashboard listens on this machine only unless told otherwise --------------------------------------


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.add(addr)
    return found


def test_the_dashboard_binds_to_loopback_by_default(registered_credit_db):
    """`streamlit run dashboard.py` with the project's settings (no --server.address) listens on 127.0.0.1 only."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to read listening sockets from")
    from _dashboard_support import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.port", str(port),
                             "--server.headless", "true", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env={**os.environ, "MLOPS_DB": str(registered_credit_db), "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _listening_addresses(port):
            time.sleep(0.3)
        addresses = _listening_addresses(port)
        assert addresses, "streamlit did not start listening"
        assert addresses == {"0100007F"}, addresses  # 127.0.0.1 in /proc's byte order, nothing else
    finally:
        proc.terminate()
        proc.wait(10)

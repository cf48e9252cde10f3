"""Databases, a Streamlit server and browser helpers shared by the dashboard tests and the page benchmark."""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

#: The demo's "today" in tests: a fixed end so that figures do not depend on the day the tests run.
DEMO_END = datetime(2026, 3, 31, 12, 0)
ROOT = Path(__file__).resolve().parent.parent
_built: dict[tuple, Path] = {}


#: Accounts of the test databases (name -> role), all with ``PASSWORD``.
ACCOUNTS = {"ada": "admin", "pat": "operator", "vic": "viewer"}
PASSWORD = "correct horse battery"


def build_small_demo(path: Path, days: int = 40, daily: int = 300) -> Path:
    """Build the demo database at ``path`` (small and fast: ``days`` days, ``daily`` predictions a day), with the
    test accounts ``ACCOUNTS``."""
    from mlops_core import ControlRoom, Identity
    from mlops_core.demo.build import build_demo

    build_demo(path, days=days, daily=daily, seed=0, end=DEMO_END)
    add_accounts(ControlRoom(path, identity=Identity("test-setup", "admin")))
    return path


def add_accounts(room) -> None:
    for name, role in ACCOUNTS.items():
        room.add_user(name, role, PASSWORD)


def log_in(pg, name: str = "pat", password: str = PASSWORD) -> None:
    """Fill the dashboard's login form (already on the page) and wait until the page behind it is drawn."""
    form = pg.locator('[data-testid="stForm"]').filter(has=pg.get_by_label("Password", exact=True))
    form.wait_for()
    form.get_by_label("User name", exact=True).fill(name)
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_role("button", name="Log in").click()
    pg.locator('[data-testid="stSidebar"]').get_by_text(name, exact=False).first.wait_for()
    settle(pg)


def open_as(pg, url: str, name: str = "pat") -> None:
    """Open ``url`` in a new session (a page load is one) and log in as ``name``."""
    pg.goto(url)
    log_in(pg, name)


def shared_demo(days: int = 40, daily: int = 300) -> Path:
    """One small demo database per test process, built on first use; copy it (``copy_db``) before changing it."""
    key = (days, daily)
    if key not in _built:
        folder = Path(tempfile.mkdtemp(prefix="mlops-dashboard-demo-"))
        atexit.register(shutil.rmtree, folder, True)
        _built[key] = build_small_demo(folder / "demo.duckdb", days, daily)
    return _built[key]


def copy_db(src: Path, dst_dir: Path, name: str | None = None) -> Path:
    """Copy a database file, its artifacts folder and its log folder into ``dst_dir`` (as ``name``, default the
    source's file name); return the new database path."""
    from mlops_core.config import artifacts_dir, logs_dir

    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / (name or src.name)
    shutil.copy2(src, dst)
    for folder in (artifacts_dir, logs_dir):
        if folder(src).exists():
            shutil.copytree(folder(src), folder(dst))
    return dst


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """``streamlit run dashboard.py`` on a free loopback port against ``db``; a context manager."""

    def __init__(self, db: Path, log: Path):
        self.db, self.log_path = db, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> StreamlitServer:
        env = dict(os.environ, MLOPS_DB=str(self.db), PYTHONPATH=str(ROOT))
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"), "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not answer on {self.url} within 60 s: {self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


#: Debian's Chromium, driven by Playwright in the browser tests.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def require_browser() -> None:
    """Skip the calling test when Playwright or Chromium is missing; fail it instead when ``CI`` is set."""
    import pytest

    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("Playwright is not installed; CI must run the browser tests "
                        "(pip install -r requirements-dev.txt)")
        pytest.skip("Playwright is not installed")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; CI must run the browser tests (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium package)")


def settle(pg, timeout=30_000) -> None:
    """Wait until Streamlit has finished running the script (and plotly has drawn)."""
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)
    pg.wait_for_timeout(300)


def assert_no_traceback(pg, where: str) -> None:
    """Fail when the page shows a traceback or an error message."""
    assert pg.locator('[data-testid="stException"]').count() == 0, f"traceback on {where}"
    assert "Traceback (most recent call last)" not in pg.content(), where
    errors = pg.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, f"error message on {where}: {errors.all_inner_texts()}"

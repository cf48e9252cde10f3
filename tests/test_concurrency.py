"""One DuckDB file, three processes: a CLI ingest succeeds while the dashboard is open and a retrain runs.

DuckDB lets one process at a time hold the file for writing. The dashboard server, the
background retrain job and a cron-style ``ingest`` each hold it only for the length of
an operation and retry while another holds it, so all three make progress.
"""
from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone

import pytest
from _dashboard_support import DEMO_END, ROOT, StreamlitServer, copy_db, shared_demo
from conftest import log_sql

from mlops_core import ControlRoom, Identity

pytestmark = pytest.mark.slow

BATCH = ROOT / "sample_data" / "batches" / "credit_default_clean.csv"
MODEL = "credit_default"


def _count(db, table):
    return log_sql(db, f"SELECT count(*) FROM {table}")[0][0]


def _page_ok(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as r:
        return r.read().decode().strip() == "ok"


def test_cli_ingest_succeeds_while_dashboard_open_and_retrain_running(tmp_path):
    db = copy_db(shared_demo(), tmp_path / "db")
    before = _count(db, f"log_{MODEL}")
    batch_rows = sum(1 for _ in BATCH.open()) - 1
    with StreamlitServer(db, tmp_path / "streamlit.log") as server:
        # The dashboard is open: a session runs the Overview script, which reads the database.
        with urllib.request.urlopen(server.url, timeout=30) as r:
            assert r.status == 200
        run_id = ControlRoom(db, identity=Identity("test", 'admin')).model(MODEL).retrain(params={"window_days": 40, "end": DEMO_END.isoformat(), "hyperparameters": {"max_iter": 300, "early_stopping": False}})
        deadline = time.monotonic() + 60
        while ControlRoom(db).run(run_id).status != "running":
            assert time.monotonic() < deadline, "the retrain never started"
            time.sleep(0.05)
        ingest_started = datetime.now(timezone.utc).replace(tzinfo=None)
        p = subprocess.run(
            [sys.executable, "-m", "mlops_core", "ingest", "predictions", str(BATCH), "--model", MODEL, "--db", str(db)],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
        )
        ingest_finished = datetime.now(timezone.utc).replace(tzinfo=None)
        assert p.returncode == 0, p.stderr
        assert "Traceback" not in p.stderr
        # The retrain was still running when the ingest began (otherwise the test proves nothing).
        run = ControlRoom(db).wait(run_id, timeout=180)
        assert run.started_at <= ingest_started
        assert run.finished_at is not None and run.finished_at >= ingest_started, (
            "the retrain finished before the ingest started; make it longer"
        )
        assert run.status == "succeeded", run.error
        assert _page_ok(server.url)
        with urllib.request.urlopen(server.url, timeout=30) as r:
            assert r.status == 200
    assert _count(db, f"log_{MODEL}") == before + batch_rows
    assert ControlRoom(db).model(MODEL).production_version() is not None
    assert ingest_finished >= ingest_started

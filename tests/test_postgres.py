"""Metadata on PostgreSQL, end to end, on a real local cluster (``_postgres_support``).

These tests always run on PostgreSQL (whatever ``MLOPS_TEST_BACKEND`` says). Without psycopg or the
server's programs they skip with the reason, except under CI (``CI`` set), where they fail.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _postgres_support import SESSION, database_name, require_postgres
from conftest import make_training_frame

from mlops_core import ControlRoom, Identity
from mlops_core.errors import DatabaseBusyError, InvalidInputError, NotFoundError
from mlops_core.store import Store
from mlops_core.store.dialect import statement_kind, to_postgres

ROOT = Path(__file__).resolve().parents[1]
MODEL = "credit"


@pytest.fixture
def pg(tmp_path, monkeypatch) -> str:
    """The URL of a fresh, migrated PostgreSQL database; artifacts and logs in tmp_path."""
    require_postgres()
    url = SESSION.fresh_database()
    monkeypatch.setenv("MLOPS_ARTIFACTS_DIR", str(tmp_path / "mlops_artifacts"))
    monkeypatch.setenv("MLOPS_LOG_DIR", str(tmp_path / "mlops_logs"))
    monkeypatch.delenv("MLOPS_DB", raising=False)
    monkeypatch.delenv("MLOPS_METADATA_URL", raising=False)
    yield url
    Store(url).forget()


def predictions(n: int, seed: int, prefix: str) -> pd.DataFrame:
    """``n`` logged predictions of the credit model over the last hours, with request ids ``prefix-i``."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "request_id": [f"{prefix}-{i}" for i in range(n)],
        "timestamp": pd.Timestamp.now(tz="UTC").tz_localize(None) - pd.to_timedelta(rng.integers(60, 7200, n),
                                                                                      unit="s"),
        "age": rng.integers(18, 80, n), "income": rng.normal(50.0, 10.0, n).round(2),
        "region": rng.choice(["north", "south", "east"], n),
    })
    df["prediction"] = (df["income"] > 50).astype(int)
    df["score"] = np.clip((df["income"] - 30) / 40, 0, 1).round(4)
    return df


def rows_in_postgres(url: str, sql: str):
    """Read the server directly (psycopg, not the store): proves the metadata is in PostgreSQL."""
    import psycopg

    with psycopg.connect(url) as con:
        return con.execute(sql).fetchall()


# --- the whole life of a model ---------------------------------------------------------------------


def test_register_ingest_monitor_retrain_promote_rollback_and_audit(pg, tmp_path):
    ada = ControlRoom(pg, identity=Identity("ada", "admin"))
    pat = ControlRoom(pg, identity=Identity("pat", "operator"))
    ada.register(MODEL, "classification", "default", make_training_frame(), hyperparameters={"max_iter": 30})
    model = pat.model(MODEL)
    assert model.production_version() == 1

    logged = predictions(400, 1, "r")
    assert model.ingest(logged).rows_written == 400
    labels = logged[["request_id"]].assign(default=(logged["income"] > 52).astype(int))
    assert model.ingest(labels, "labels").rows_written == 400
    perf = model.performance(window="day")
    assert len(perf) >= 1 and perf["n_labelled"].sum() == 400
    # The same accuracy scikit-learn computes from the joined rows (windows weighted by their labelled rows: the
    # last two hours may cross midnight).
    from sklearn.metrics import accuracy_score

    overall = (perf["accuracy"] * perf["n_labelled"]).sum() / 400
    assert overall == pytest.approx(accuracy_score(labels["default"], logged["prediction"]))

    # A retrain job in its own process: it finds the metadata through the URL in its environment.
    run_id = model.retrain(params={"hyperparameters": {"max_iter": 20}})
    run = pat.wait(run_id, timeout=240)
    assert run.status == "succeeded", run.error
    assert run.pid != os.getpid()
    assert run.statistics["candidate_version"] == 2
    from mlops_core.lifecycle.jobs import job_log_path

    assert pg.split(":")[2].split("@")[0] not in job_log_path(Store(pg), run_id).read_text()

    assert pat.model(MODEL).promote(2, reason="better on last week", force=True).to_version == 2
    assert pat.model(MODEL).production_version() == 2
    assert pat.model(MODEL).rollback(reason="complaints").to_version == 1
    assert pat.model(MODEL).production_version() == 1

    audit = ada.audit(MODEL)
    actions = list(audit["action"])
    for action in ("register_version", "retrain_requested", "promote", "rollback"):
        assert action in actions, actions
    assert sum(a.startswith("ingest") for a in actions) == 2
    assert set(audit.loc[audit["action"].isin(["promote", "rollback"]), "actor"]) == {"pat"}

    # Everything is in the server: the versions and the audit, the open production row, and no DuckDB file.
    assert rows_in_postgres(pg, "SELECT version FROM model_versions ORDER BY version") == [(1,), (2,)]
    assert rows_in_postgres(pg, "SELECT version FROM deployments WHERE alias = 'production' "
                                "AND ended_at IS NULL") == [(1,)]
    assert rows_in_postgres(pg, "SELECT count(*) FROM audit_events")[0][0] == len(audit)
    # A URL taken for a file path would have made a DuckDB file under a folder named "postgresql:".
    assert not list(tmp_path.rglob("*.duckdb")) and not Path("postgresql:").exists()


def test_the_cli_takes_the_url_from_the_environment_and_never_prints_the_password(pg, tmp_path):
    ControlRoom(pg).register(MODEL, "classification", "default", make_training_frame(300))
    env = {**os.environ, "MLOPS_METADATA_URL": pg, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "mlops_core", "models"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert MODEL in out.stdout
    password = pg.split(":")[2].split("@")[0]
    wrong = pg.replace(password, "not-the-password")
    out = subprocess.run([sys.executable, "-m", "mlops_core", "models", "--db", wrong], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 1 and "Cannot connect to the metadata database" in out.stderr
    assert "not-the-password" not in out.stderr and "***" in out.stderr
    assert "Traceback" not in out.stderr


def test_locations_show_no_password_and_the_dashboard_reads_the_url(pg, monkeypatch):
    room = ControlRoom(pg)
    password = pg.split(":")[2].split("@")[0]
    assert room.location == pg and room.path is None
    assert password not in room.display and password not in repr(room) and "***" in room.display
    monkeypatch.setenv("MLOPS_METADATA_URL", pg)
    monkeypatch.setenv("MLOPS_DB", "/elsewhere/mlops.duckdb")
    from ui import data

    assert data.db_path() == pg  # the URL wins over a file
    assert ControlRoom().location == pg


def test_backup_and_restore_refuse_postgres_and_name_pg_dump(pg, tmp_path):
    room = ControlRoom(pg, identity=Identity("ada", "admin"))
    room.register(MODEL, "classification", "default", make_training_frame(300))
    with pytest.raises(InvalidInputError, match="pg_dump") as refused:
        room.backup(tmp_path / "backup")
    assert pg.split(":")[2].split("@")[0] not in str(refused.value)
    with pytest.raises(InvalidInputError, match="pg_restore"):
        room.restore(tmp_path / "backup", force=True)
    assert not (tmp_path / "backup").exists()


def test_a_database_without_metadata_says_how_to_make_some():
    require_postgres()
    cluster = SESSION.start()
    url = cluster.create_database(f"empty_{os.getpid()}")
    try:
        assert not Store(url).exists() and ControlRoom(url).models() == []
        with pytest.raises(NotFoundError, match=r"No metadata in the PostgreSQL database .*mlops demo --db URL"):
            with Store(url).connect():
                pass
        assert rows_in_postgres(url, "SELECT count(*) FROM information_schema.tables "
                                     "WHERE table_schema = 'public'") == [(0,)]  # a read made no table
    finally:
        Store(url).forget()
        cluster.drop_database(database_name(url))


# --- visits: snapshots, the writer lock, many writers --------------------------------------------------


HOLD_WRITE = textwrap.dedent("""
    import sys, time
    from mlops_core.store import Store
    with Store(sys.argv[1]).transaction() as con:
        con.execute("INSERT INTO policies (model, mode, config, updated_at, updated_by) "
                    "VALUES ('m', 'manual', '{}', now(), 'holder')")
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def test_a_writer_waits_for_another_process_and_readers_never_wait(pg, monkeypatch):
    store = Store(pg)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE, pg, "4"], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "holding"
        t0 = time.perf_counter()
        with store.connect() as con:  # a read visit: a snapshot, it does not wait and sees no uncommitted row
            assert con.execute("SELECT count(*) FROM policies").fetchone()[0] == 0
        assert time.perf_counter() - t0 < 2
        monkeypatch.setenv("MLOPS_LOCK_TIMEOUT", "1")
        t0 = time.perf_counter()
        with pytest.raises(DatabaseBusyError, match="being written by another process"):
            with store.connect(write=True):
                pass
        assert 0.8 < time.perf_counter() - t0 < 3.5
        monkeypatch.setenv("MLOPS_LOCK_TIMEOUT", "30")
        with store.connect(write=True) as con:  # its turn comes when the holder is done
            assert con.execute("SELECT count(*) FROM policies").fetchone()[0] == 1
    finally:
        holder.wait(timeout=60)
    assert holder.returncode == 0


def _ingest_worker(url: str, folders: tuple[str, str], worker: int, batches: int, out) -> None:
    os.environ["MLOPS_ARTIFACTS_DIR"], os.environ["MLOPS_LOG_DIR"] = folders
    room = ControlRoom(url, identity=Identity(f"loader{worker}", "operator"))
    done, errors = [], []
    for k in range(batches):
        try:
            done.append(room.model(MODEL).ingest(predictions(50, 100 * worker + k, f"w{worker}-{k}")).batch_id)
            room.model(MODEL).promote(1 + (k + worker) % 2, reason=f"loader{worker} step {k}", force=True)
        except Exception as exc:
            if "already" not in str(exc):  # promoting the version that already serves is refused on purpose
                errors.append(f"{type(exc).__name__}: {exc}")
    out.put((worker, done, errors))


def test_two_writers_at_once_lose_nothing(pg, tmp_path):
    room = ControlRoom(pg, identity=Identity("ada", "admin"))
    room.register(MODEL, "classification", "default", make_training_frame(300), hyperparameters={"max_iter": 20})
    room.model(MODEL).add_version(room.load_model(MODEL, 1).estimator, make_training_frame(300))
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_ingest_worker, args=(pg, (os.environ["MLOPS_ARTIFACTS_DIR"],
                                                               os.environ["MLOPS_LOG_DIR"]), w, 6, out)) for w in (1, 2)]
    for p in workers:
        p.start()
    results = [out.get(timeout=300) for _ in workers]
    for p in workers:
        p.join(timeout=60)
    errors = [e for _, _, errs in results for e in errs]
    assert not errors, errors
    batches = {b for _, done, _ in results for b in done}
    assert len(batches) == 12

    from conftest import log_sql

    assert log_sql(pg, f"SELECT count(*), count(DISTINCT request_id) FROM log_{MODEL}") == [(600, 600)]
    audit = room.audit(MODEL)
    ingest_rows = audit[audit["action"].str.startswith("ingest")]
    assert len(ingest_rows) == 12
    assert rows_in_postgres(pg, "SELECT count(*) FROM deployments WHERE alias = 'production' "
                                "AND ended_at IS NULL")[0][0] == 1


# --- the statement translation -------------------------------------------------------------------------


@pytest.mark.parametrize("duckdb_sql, postgres_sql", [
    ("SELECT * FROM models WHERE name = ?", "SELECT * FROM models WHERE name = %s"),
    ("SELECT * FROM models WHERE name = $name", "SELECT * FROM models WHERE name = %(name)s"),
    ("SELECT count(*) FROM (SELECT 1)", "SELECT COUNT(*) FROM (SELECT 1) AS _sq1"),
    ("SELECT * FROM audit_events WHERE action LIKE 'ingest%'",
     "SELECT * FROM audit_events WHERE action LIKE 'ingest%%'"),
])
def test_statements_are_translated_to_postgres(duckdb_sql, postgres_sql):
    assert to_postgres(duckdb_sql) == postgres_sql


def test_transaction_statements_are_recognised():
    assert [statement_kind(s) for s in ("BEGIN TRANSACTION", "commit", "ROLLBACK;", "SELECT 1")] == \
        ["begin", "commit", "rollback", None]


# --- the dashboard ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["pages/overview.py", "pages/performance.py", "pages/versions.py",
                                  "pages/runs.py"])
def test_dashboard_pages_render_from_postgres(pg, monkeypatch, page):
    from streamlit.testing.v1 import AppTest

    room = ControlRoom(pg, identity=Identity("ada", "admin"))
    room.register(MODEL, "classification", "default", make_training_frame(300), hyperparameters={"max_iter": 20})
    logged = predictions(200, 3, "d")
    room.model(MODEL).ingest(logged)
    room.model(MODEL).ingest(logged[["request_id"]].assign(default=(logged["income"] > 52).astype(int)), "labels")
    monkeypatch.setenv("MLOPS_METADATA_URL", pg)
    monkeypatch.delenv("MLOPS_DB", raising=False)
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    at.session_state["signed_in"] = Identity("pat", "operator")
    at.run()
    if page != "pages/overview.py":
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [e.value for e in at.error]
    shown = "\n".join(str(e.value) for kind in ("title", "markdown", "caption", "info", "warning")
                      for e in getattr(at, kind))
    shown += "\n".join(str(o.value) for o in at.selectbox)
    assert MODEL in shown
    assert pg.split(":")[2].split("@")[0] not in shown


def test_demo_cluster_builds_the_demo_on_postgres_and_a_parquet_log_then_reuses_it(tmp_path):
    """``make demo-cluster``'s script: the first start builds the demo into a local cluster, the second reuses it."""
    require_postgres()

    env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_DB", "MLOPS_METADATA_URL")}
    run = [sys.executable, "-m", "mlops_core.demo.cluster", str(tmp_path / "room"), "--days", "30", "--daily", "100", "--check"]
    first = subprocess.run(run, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "Building the demo on PostgreSQL" in first.stdout and "production version: v1" in first.stdout
    assert list((tmp_path / "room" / "logs").rglob("*.parquet")), "the log is Parquet files beside the cluster"
    assert not list(tmp_path.rglob("*.duckdb")), "no metadata file: the metadata is in PostgreSQL"
    second = subprocess.run(run, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Building the demo" not in second.stdout and "production version: v1" in second.stdout
    from mlops_core.demo.cluster import cluster_folder

    shutil.rmtree(cluster_folder((tmp_path / "room").resolve()), ignore_errors=True)

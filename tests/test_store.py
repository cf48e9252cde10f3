"""The store: migrations on a new and an existing database, transactions, lock handling."""
from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from mlops_core.errors import DatabaseBusyError
from mlops_core.store import connect, forget_database, transaction
from mlops_core.store.migrations import available, current_version, migrate

CONCEPT_TABLES = {
    "models", "model_versions", "deployments", "runs", "ingest_batches", "validation_reports", "validation_anomalies",
    "drift_references", "reference_stats", "reference_bins", "drift_results", "alert_rules", "alerts", "audit_events",
    "policies", "feature_entities", "feature_views", "feature_files", "feature_batches", "online_snapshots",
    "schema_version",
}


def _tables(con):
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_new_database_gets_every_table_and_latest_version(db):
    with connect(db, write=True, create=True) as con:
        assert CONCEPT_TABLES <= _tables(con)
        assert current_version(con) == available()[-1][0]


@pytest.mark.duckdb_file
def test_existing_database_is_upgraded_once_and_keeps_its_rows(db):
    # A database at version 1 with a row in it, as an older release would have left it.
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)")
    first = available()[0]
    from mlops_core.store.migrations import _split_statements

    for stmt in _split_statements(first[2].read_text()):
        con.execute(stmt)
    con.execute("INSERT INTO schema_version VALUES (1, 'initial', now())")
    con.execute("INSERT INTO policies VALUES ('m', 'manual', '{}', now(), 'test')")
    con.close()
    forget_database(db)
    with connect(db, write=True, create=True) as con:
        assert current_version(con) == available()[-1][0]
        assert con.execute("SELECT count(*) FROM policies").fetchone()[0] == 1
        assert migrate(con) == []  # idempotent
        versions = [r[0] for r in con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()]
        assert versions == [n for n, _, _ in available()]


def test_transaction_rolls_back_on_error(db):
    with connect(db, write=True, create=True) as con:
        with pytest.raises(RuntimeError):
            with transaction(con):
                con.execute("INSERT INTO policies VALUES ('m', 'manual', '{}', now(), 'test')")
                raise RuntimeError("boom")
        assert con.execute("SELECT count(*) FROM policies").fetchone()[0] == 0


@pytest.mark.duckdb_file
def test_a_held_database_gives_database_busy_after_the_timeout(db, monkeypatch):
    with connect(db, write=True, create=True):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(db)!r}); print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        forget_database(db)
        monkeypatch.setenv("MLOPS_LOCK_TIMEOUT", "0.5")
        with pytest.raises(DatabaseBusyError, match="held by another process"):
            with connect(db, write=True, create=True):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_a_lower_numbered_migration_shipped_later_still_runs(db):
    # A database that has every migration but 031 (as if 031 had been added after a higher number ran).
    with connect(db, write=True, create=True) as con:
        con.execute("DROP TABLE drift_settings")
        con.execute("DELETE FROM schema_version WHERE version = 31")
    forget_database(db)
    with connect(db, write=True, create=True) as con:
        assert "drift_settings" in _tables(con)
        assert 31 in {r[0] for r in con.execute("SELECT version FROM schema_version").fetchall()}


@pytest.mark.duckdb_file
def test_logs_kept_in_tables_by_an_older_release_move_to_parquet_files(db):
    """Migration 033: the rows of log_<model> and labels_<model> become listed Parquet files; the tables go."""
    import json

    from conftest import log_sql

    from mlops_core import ControlRoom
    from mlops_core.store.migrations import _split_statements

    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)")
    for number, name, path in available():
        if number >= 33:
            break
        for stmt in _split_statements(path.read_text()):
            con.execute(stmt)
        con.execute("INSERT INTO schema_version VALUES (?, ?, now())", [number, name])
    schema = json.dumps([{"name": "x", "kind": "numeric", "dtype": "float", "min": 0.0, "max": 1.0,
                          "categories": [], "null_rate": 0.0}])
    con.execute("INSERT INTO models (name, task, target, positive_class, classes, feature_schema, log_table, "
                "label_table, created_at) VALUES ('old', 'classification', 'y', '1', '[\"0\", \"1\"]', ?, 'log_old', "
                "'labels_old', now())", [schema])
    con.execute("CREATE TABLE log_old (request_id VARCHAR, version INTEGER, variant VARCHAR, ts TIMESTAMP, x DOUBLE, "
                "prediction VARCHAR, score DOUBLE, batch_id VARCHAR)")
    con.execute("INSERT INTO log_old SELECT 'r' || i, 1, NULL, TIMESTAMP '2026-01-01' + i * INTERVAL 1 HOUR, i / 100, "
                "'1', 0.7, 'b' FROM range(50) t(i)")
    con.execute("CREATE TABLE labels_old (request_id VARCHAR, label VARCHAR, label_ts TIMESTAMP, batch_id VARCHAR)")
    con.execute("INSERT INTO labels_old SELECT 'r' || i, '0', TIMESTAMP '2026-01-05', 'l' FROM range(20) t(i)")
    con.close()
    forget_database(db)
    status = ControlRoom(db).model("old").status()
    assert (status.predictions, status.labels) == (50, 20)
    assert log_sql(db, "SELECT count(*), count(DISTINCT ts), sum(x) FROM log_old") == [(50, 50, pytest.approx(12.25))]
    with connect(db, write=True, create=True) as con:
        tables = _tables(con)
        files = con.execute("SELECT kind, count(*), sum(rows) FROM log_files GROUP BY 1 ORDER BY 1").fetchall()
    assert "log_old" not in tables and "labels_old" not in tables
    assert files == [("labels", 1, 20), ("predictions", 3, 50)]  # by day: 24 + 24 + 2 predictions


@pytest.mark.duckdb_file
def test_kept_open_holds_the_file_for_many_visits_and_other_processes_wait(db, monkeypatch):
    from mlops_core import ControlRoom

    room = ControlRoom(db)
    probe = [sys.executable, "-c", f"import duckdb; duckdb.connect({str(db)!r}).close(); print('opened')"]
    with room.kept_open() as same:
        assert same is room and db.exists()
        for _ in range(3):  # visits of this process go on as usual
            with connect(db) as con:
                con.execute("SELECT 1").fetchall()
        other = subprocess.run(probe, capture_output=True, text=True, timeout=60)
        assert other.returncode != 0 and "lock" in other.stderr.lower()  # held by this process
    other = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    assert other.returncode == 0 and "opened" in other.stdout  # released when the block ends


@pytest.mark.duckdb_file
def test_destroy_deletes_the_database_and_its_artifacts(registered_credit_db):
    from mlops_core import ControlRoom, Identity
    from mlops_core.errors import ConflictError, PermissionDeniedError

    db = registered_credit_db
    room = ControlRoom(db, identity=Identity("ops", "admin"))
    assert room.artifacts_path.is_dir() and room.path == db
    with pytest.raises(PermissionDeniedError, match="admin"):
        ControlRoom(db, identity=Identity("viewer", "operator")).destroy()
    with room.kept_open(), pytest.raises(ConflictError, match="still open in this process"):
        room.destroy()
    assert db.exists()
    room.destroy()
    assert not db.exists() and not room.artifacts_path.exists() and not room.exists()
    assert ControlRoom(db).models() == []  # and the location can be used afresh

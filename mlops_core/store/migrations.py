"""Numbered schema migrations, recorded in ``schema_version``.

Each file ``migrations/NNN_name.sql`` (statements) or ``migrations/NNN_name.py`` (a function
``upgrade(con, db_path)``, for changes SQL alone cannot make, such as moving data into files)
runs once, in number order, inside one transaction together with its ``schema_version`` row;
a failed migration leaves the database at the previous version.
"""
from __future__ import annotations

import importlib.util
import re
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from mlops_core.errors import MlopsError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.(sql|py)$")


def available() -> list[tuple[int, str, Path]]:
    """Return the shipped migrations as (number, name, path), sorted by number."""
    found = []
    for p in MIGRATIONS_DIR.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), m.group(2), p))
    numbers = [n for n, _, _ in found]
    if len(numbers) != len(set(numbers)):
        raise MlopsError(f"Two migrations share a number in {MIGRATIONS_DIR}: {sorted(numbers)}")
    return sorted(found)


def _has_versions(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version' "
        "AND table_catalog = current_database() AND table_schema = current_schema()").fetchone()[0])


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """Return the highest applied migration number (0 for a new database)."""
    if not _has_versions(con):
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def pending(con: duckdb.DuckDBPyConnection) -> list[int]:
    """The numbers of the shipped migrations this database has not applied yet."""
    done = {r[0] for r in con.execute("SELECT version FROM schema_version").fetchall()} if _has_versions(con) else set()
    return [n for n, _, _ in available() if n not in done]


def created_objects() -> tuple[list[str], list[str]]:
    """The tables and sequences the shipped migrations create (for dropping a PostgreSQL schema whole)."""
    tables: list[str] = []
    sequences: list[str] = []
    for _, _, path in available():
        text = path.read_text()
        tables += [t for t in re.findall(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", text, re.I)
                   if t not in tables]
        sequences += [q for q in re.findall(r"CREATE\s+SEQUENCE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", text, re.I)
                      if q not in sequences]
    return tables, sequences


def _split_statements(sql: str) -> list[str]:
    # Migration files keep '--' for comments only (never inside a string literal).
    text = "\n".join(ln.split("--", 1)[0] for ln in sql.splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]


def _run_python(path: Path, con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(f"mlops_migration_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.upgrade(con, db_path)


def migrate(con: duckdb.DuckDBPyConnection, db_path: Path | None = None) -> list[int]:
    """Apply every pending migration; return the numbers applied (empty when up to date).

    ``con``: a write visit of a DuckDB file (``db_path``, for migrations that move data into files beside it) or
    of PostgreSQL (``db_path`` None: SQL files run as ``dialect`` translates them; 033 finds no model there).
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    # Apply every shipped migration not yet recorded (not only those above the highest), so a
    # migration that arrived later with a lower number than one already applied still runs.
    todo = set(pending(con))
    applied = []
    for number, name, path in available():
        if number not in todo:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            if path.suffix == ".sql":
                for stmt in _split_statements(path.read_text()):
                    con.execute(stmt)
            else:
                _run_python(path, con, db_path)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                [number, name, datetime.now(timezone.utc).replace(tzinfo=None)],
            )
        except Exception as exc:
            con.execute("ROLLBACK")
            raise MlopsError(f"Migration {number:03d}_{name} failed: {exc}", migration=number) from exc
        con.execute("COMMIT")
        applied.append(number)
    return applied

"""Numbered schema migrations, recorded in ``schema_version``.

Each file ``migrations/NNN_name.sql`` runs once, in number order, inside one
transaction together with its ``schema_version`` row; a failed migration leaves the
database at the previous version.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from mlops_core.errors import MlopsError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def available() -> list[tuple[int, str, Path]]:
    """Return the shipped migrations as (number, name, path), sorted by number."""
    found = []
    for p in MIGRATIONS_DIR.glob("*.sql"):
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), m.group(2), p))
    numbers = [n for n, _, _ in found]
    if len(numbers) != len(set(numbers)):
        raise MlopsError(f"Two migrations share a number in {MIGRATIONS_DIR}: {sorted(numbers)}")
    return sorted(found)


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """Return the highest applied migration number (0 for a new database)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version' "
        "AND table_catalog = current_database()"
    ).fetchone()[0]
    if not exists:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _split_statements(sql: str) -> list[str]:
    # Migration files keep '--' for comments only (never inside a string literal).
    text = "\n".join(ln.split("--", 1)[0] for ln in sql.splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every pending migration; return the numbers applied (empty when up to date)."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    # Apply every shipped migration not yet recorded (not only those above the highest), so a
    # migration that arrived later with a lower number than one already applied still runs.
    done = {r[0] for r in con.execute("SELECT version FROM schema_version").fetchall()}
    applied = []
    for number, name, path in available():
        if number in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for stmt in _split_statements(path.read_text()):
                con.execute(stmt)
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

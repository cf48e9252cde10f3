"""SQL for accounts (``users``): who may log in to the dashboard or the service, with which role."""
from __future__ import annotations

from datetime import datetime

import duckdb

from mlops_core.entities import UserInfo

_COLUMNS = "name, role, password_hash IS NOT NULL, disabled, created_at, created_by, password_changed_at"


def _info(row) -> UserInfo:
    return UserInfo(name=row[0], role=row[1], has_password=bool(row[2]), disabled=bool(row[3]),
                    created_at=row[4], created_by=row[5], password_changed_at=row[6])


def list_users(con: duckdb.DuckDBPyConnection) -> list[UserInfo]:
    """Every account, by name."""
    return [_info(r) for r in con.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name").fetchall()]


def get_user(con: duckdb.DuckDBPyConnection, name: str) -> UserInfo | None:
    row = con.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?", [name]).fetchone()
    return _info(row) if row else None


def find_case_insensitive(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """The stored name equal to ``name`` ignoring case, or None."""
    row = con.execute("SELECT name FROM users WHERE lower(name) = lower(?)", [name]).fetchone()
    return row[0] if row else None


def password_hash(con: duckdb.DuckDBPyConnection, name: str) -> tuple[str | None, str, bool] | None:
    """(password hash, role, disabled) of an account, or None when there is no such account."""
    row = con.execute("SELECT password_hash, role, disabled FROM users WHERE name = ?", [name]).fetchone()
    return (row[0], row[1], bool(row[2])) if row else None


def count_users(con: duckdb.DuckDBPyConnection, *, role: str | None = None, enabled_only: bool = True) -> int:
    sql, params = "SELECT count(*) FROM users WHERE true", []
    if role:
        sql, params = sql + " AND role = ?", [role]
    if enabled_only:
        sql += " AND NOT disabled"
    return int(con.execute(sql, params).fetchone()[0])


def insert_user(con: duckdb.DuckDBPyConnection, name: str, role: str, password_hash: str | None, *, actor: str,
                at: datetime) -> None:
    con.execute("INSERT INTO users VALUES (?, ?, ?, false, ?, ?, ?)",
                [name, role, password_hash, at, actor, at if password_hash else None])


def set_role(con: duckdb.DuckDBPyConnection, name: str, role: str) -> None:
    con.execute("UPDATE users SET role = ? WHERE name = ?", [role, name])


def set_password_hash(con: duckdb.DuckDBPyConnection, name: str, password_hash: str, at: datetime) -> None:
    con.execute("UPDATE users SET password_hash = ?, password_changed_at = ? WHERE name = ?", [password_hash, at, name])


def set_disabled(con: duckdb.DuckDBPyConnection, name: str, disabled: bool) -> None:
    con.execute("UPDATE users SET disabled = ? WHERE name = ?", [disabled, name])

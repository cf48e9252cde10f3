"""SQL conditions shared by the store's queries."""
from __future__ import annotations


def time_range(column: str, start, end) -> tuple[str, list]:
    """Return (`` AND column >= ? AND column < ?`` with the bounds given, their parameters): the half-open
    window [start, end) on ``column``; either bound may be None (no condition on that side)."""
    sql, params = "", []
    if start is not None:
        sql += f" AND {column} >= ?"
        params.append(start)
    if end is not None:
        sql += f" AND {column} < ?"
        params.append(end)
    return sql, params

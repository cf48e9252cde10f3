"""SQL conditions shared by the store's queries, and the window sizes they truncate time to."""
from __future__ import annotations

from datetime import timedelta

from mlops_core.errors import InvalidInputError

#: Window sizes of the time series (``date_trunc`` units), and their lengths.
WINDOWS = ("hour", "day", "week")
WINDOW_LENGTH = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}


def check_window(window: str) -> str:
    """Return ``window`` when it is hour, day or week; raise InvalidInputError otherwise."""
    if window not in WINDOWS:
        raise InvalidInputError(f"Unknown window {window!r}. Choose one of: {', '.join(WINDOWS)}.", window=window)
    return window


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


def in_list(column: str, values) -> tuple[str, list]:
    """`` AND column IN (?, ...)`` for the given values (nothing when there are none)."""
    values = list(values or [])
    if not values:
        return "", []
    return f" AND {column} IN ({', '.join('?' for _ in values)})", values

"""The one clock of the store: naive UTC datetimes (DuckDB TIMESTAMP, microseconds).

Tests freeze it with ``set_clock(lambda: datetime(...))``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

_clock: Callable[[], datetime] | None = None


def utcnow() -> datetime:
    """Return the current time as a naive UTC datetime (or the frozen test time)."""
    if _clock is not None:
        return _clock()
    return datetime.now(timezone.utc).replace(tzinfo=None)


def set_clock(func: Callable[[], datetime] | None) -> None:
    """Replace the clock (tests); ``None`` restores the real one."""
    global _clock
    _clock = func

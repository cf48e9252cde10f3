"""The one clock of the project: naive UTC datetimes (DuckDB TIMESTAMP, microseconds).

Every row the store writes is stamped with ``utcnow()``. A backfill, the demo builder and tests
replace it with ``set_clock(lambda: datetime(...))`` (simulated time) and restore the real one with
``set_clock(None)``; it is process-wide, so never do that in a process that serves users.
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

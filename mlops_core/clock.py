"""The one clock of the project: naive UTC datetimes (DuckDB TIMESTAMP, microseconds).

Every row the store writes is stamped with ``utcnow()``. A backfill, the demo builder and tests
run in simulated time: ``with simulated_time(start) as clock:`` dates everything written inside
the block by a ``SimulatedClock`` (``clock.set(moment)`` jumps to a moment, from which it runs on
at the speed of real time); ``set_clock(lambda: datetime(...))`` freezes it, ``set_clock(None)``
restores the real one. The clock is process-wide, so never do that in a process that serves users::

    with simulated_time(datetime(2026, 3, 1, 0, 15)) as clock:
        credit.ingest(batch_of_feb_28)          # its run, report and audit row say 00:15 on March 1st
        clock.set(datetime(2026, 3, 2, 0, 15))
        credit.ingest(batch_of_march_1)
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

_clock: Callable[[], datetime] | None = None


def utcnow() -> datetime:
    """Return the current time as a naive UTC datetime (or the simulated or frozen time)."""
    if _clock is not None:
        return _clock()
    return datetime.now(timezone.utc).replace(tzinfo=None)


def set_clock(func: Callable[[], datetime] | None) -> None:
    """Replace the clock (tests); ``None`` restores the real one."""
    global _clock  # noqa: PLW0603 - one process-wide clock, replaced by tests and the demo's simulation
    _clock = func


def _naive_utc(moment: datetime) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"A simulated clock shows a datetime, not {type(moment).__name__} {moment!r}.")
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo is not None else moment


class SimulatedClock:
    """A clock in simulated time: it shows ``start``, then runs on at the speed of real time until ``set``
    moves it to another moment, so that durations measured with it stay real. Calling it returns the
    simulated now (naive UTC). Thread-safe. Times with a zone are converted to naive UTC."""

    def __init__(self, start: datetime):
        self._lock = threading.Lock()
        self._moment = _naive_utc(start)
        self._since = time.perf_counter()

    def __call__(self) -> datetime:
        with self._lock:
            return self._moment + timedelta(seconds=time.perf_counter() - self._since)

    @property
    def now(self) -> datetime:
        """The simulated now."""
        return self()

    def set(self, moment: datetime) -> datetime:
        """Jump to ``moment`` (earlier moments are allowed) and run on from there; return it."""
        moment = _naive_utc(moment)
        with self._lock:
            self._moment, self._since = moment, time.perf_counter()
        return moment

    def __repr__(self) -> str:
        return f"SimulatedClock({self():%Y-%m-%d %H:%M:%S})"


@contextmanager
def simulated_time(start: datetime) -> Iterator[SimulatedClock]:
    """Run the block in simulated time from ``start``; yield the clock (move it with ``clock.set``).

    Every row written inside the block (runs, versions, deployments, audit events, alerts,
    ingested batches and their reports, label arrival times a batch does not give) is dated by
    the simulated clock: what a backfill, a demo or a test needs to write a history that
    happened in the past. The previous clock is restored when the block ends, also on an error.
    """
    clock = SimulatedClock(start)
    previous = _clock
    set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)

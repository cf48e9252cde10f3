"""The demo's calendar: which day each event of the story falls on, and the moments the build acts at.

Day numbers of the default 90-day story; ``Timeline.day`` scales them to other lengths
(``--days``, at least ``MIN_DAYS``). Day 0 is the first day of traffic; the last day ends
at ``end``, the last moment of traffic.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

#: Days of the default 90-day story.
V2_TRAIN_DAY, AB_START_DAY, V2_PROMOTE_DAY = 25, 26, 30
DRIFT_DAY, FAILED_RUN_DAY, SHIFT_DAY, V3_DAY = 50, 62, 70, 75
DEFAULT_DAYS = 90
MIN_DAYS = 30
#: The automated retrain comes at least this many days after the concept shift, so that the labels of a few
#: shifted days have arrived by then (in short demos the scaled days would leave it none).
V3_AFTER_SHIFT = 4
#: Hours of the day at which the build acts (UTC).
INGEST_PREDICTIONS_HOUR = 0.25  # yesterday's prediction log, 00:15
INGEST_LABELS_HOUR = 1 / 3  # the labels that arrived yesterday, 00:20
FAILED_RUN_HOUR, MONITOR_HOUR, AB_START_HOUR, RETRAIN_HOUR, PROMOTE_HOUR, PAUSE_HOUR = 2.0, 6.0, 8.0, 9.0, 10.0, 11.0
US_PER_DAY = 86_400_000_000
_EPOCH = datetime(1970, 1, 1)


@dataclass
class Timeline:
    """``days`` days of traffic from midnight of ``start`` to ``end``."""

    days: int
    start: datetime  # midnight of day 0
    end: datetime

    @classmethod
    def ending(cls, end: datetime, days: int) -> Timeline:
        """``days`` days whose last one is the day of ``end`` (traffic up to ``end`` itself)."""
        return cls(days, datetime(end.year, end.month, end.day) - timedelta(days=days - 1), end)

    def day(self, default_day: int) -> int:
        """The day of the default 90-day story scaled to ``days`` (between 1 and the last day)."""
        return min(self.days - 1, max(1, round(default_day * self.days / DEFAULT_DAYS)))

    @property
    def v3_day(self) -> int:
        """The day of the automated retrain: the scaled V3_DAY, at least V3_AFTER_SHIFT days after the shift."""
        return min(self.days - 1, max(self.day(V3_DAY), self.day(SHIFT_DAY) + V3_AFTER_SHIFT))

    def at(self, day: int, hour: float = 0.0) -> datetime:
        """The moment ``hour`` hours into ``day`` (never after ``end``)."""
        return min(self.start + timedelta(days=day, hours=hour), self.end)

    def us(self, when: datetime) -> int:
        """``when`` in microseconds since the epoch (the unit of the simulated timestamps)."""
        return (when - _EPOCH) // timedelta(microseconds=1)

    def day_of(self, us: np.ndarray) -> np.ndarray:
        """The day number of each timestamp (microseconds since the epoch)."""
        return (us - self.us(self.start)) // US_PER_DAY

    def drift(self, day: np.ndarray | int) -> np.ndarray:
        """Covariate drift of a day, 0 before DRIFT_DAY growing to 1 on the last day."""
        d0 = self.day(DRIFT_DAY)
        return np.clip((np.asarray(day) - d0) / max(self.days - 1 - d0, 1), 0.0, 1.0)

    def shifted(self, day: np.ndarray | int) -> np.ndarray:
        """Whether the concept shift has happened on a day."""
        return np.asarray(day) >= self.day(SHIFT_DAY)

    def v2_window(self) -> range:
        """v2's training days: 20 days ending 4 days before it is trained (their labels have mostly arrived)."""
        train_day = self.day(V2_TRAIN_DAY)
        return range(max(0, train_day - 24), max(1, train_day - 4))

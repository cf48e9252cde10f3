"""Time windows of the log: which are finished, and which is the latest full one.

A window (an hour, a day, a Monday-started week: ``date_trunc``) is **partial** while the log
has not reached its end: its end lies after the log's clock, the time of the newest logged
prediction (``as_of``). The current hour, day or week of a live model is partial, and so is
the last day of a log whose traffic stopped in the middle of it. A partial window holds fewer
predictions and, labels arriving late, far fewer labels than a full one; its values are shown
(marked as partial) but never taken as "the latest window": verdicts, deltas, the drift
ranking and the default confusion matrix use the latest **full** window instead.

The log's clock rather than the wall clock: a database whose traffic ended a week ago (a demo,
a backup) still has a partial last day, and a live model's newest prediction is a few seconds
old, so both agree where it matters.
"""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from mlops_core.store.conditions import WINDOW_LENGTH, check_window


def window_end(start: datetime, window: str) -> datetime:
    """The end (exclusive) of the ``window`` that starts at ``start``. Raises InvalidInputError (window)."""
    return pd.Timestamp(start).to_pydatetime() + WINDOW_LENGTH[check_window(window)]


def partial(starts: pd.Series, window: str, as_of: datetime | None) -> pd.Series:
    """For each window start, whether that window is partial at ``as_of`` (its end is after it); all False
    when ``as_of`` is None (no log: nothing to compare with)."""
    starts = pd.to_datetime(pd.Series(starts))
    if as_of is None or starts.empty:
        return pd.Series(False, index=starts.index)
    return (starts + WINDOW_LENGTH[check_window(window)]) > pd.Timestamp(as_of)


def mark_partial(frame: pd.DataFrame, window: str, as_of: datetime | None) -> pd.DataFrame:
    """``frame`` (with a ``window_start`` column) with a boolean ``partial`` column added."""
    out = frame.copy()
    out["partial"] = partial(out["window_start"], window, as_of).to_numpy(dtype=bool) if len(out) else \
        pd.Series(dtype=bool)
    return out


def latest_full(starts, window: str, as_of: datetime | None) -> pd.Timestamp | None:
    """The newest of ``starts`` whose window is full at ``as_of`` (None when there is none)."""
    s = pd.to_datetime(pd.Series(list(starts))).dropna()
    if s.empty:
        return None
    full = s[~partial(s, window, as_of).to_numpy()]
    return None if full.empty else pd.Timestamp(full.max())


__all__ = ["latest_full", "mark_partial", "partial", "window_end"]

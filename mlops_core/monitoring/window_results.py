"""A series per window, computed for the windows whose rows changed and reused for the others.

``per_window`` splits [start, end) into the windows the log's listing spans. A window lying wholly
inside the range is a *full* window: its result is reused from ``store.window_cache`` while the
files that can change it are the same (``LogView.fingerprint``); otherwise it is computed again,
reading only the files that touch it (``LogView.restricted``: the day's prediction files and the
label files that label them), in runs of consecutive windows, one query per run. A window cut by
``start`` or ``end`` is always computed (its rows depend on the bounds). So the first series over a
big log costs what it always did, and the next ones cost the windows that new batches touched:
typically the last day or two.

Results are the same as computing the whole range in one query (each window's rows are the same;
``tests/test_window_cache.py`` compares both on a log that grows, labels that arrive late, and
bounds that cut windows). Not cached: the Spark engine (it reads the files where they lie), a view as
of a past moment (``LogView.as_of``), views without their files' spans, and series of more than
``MAX_WINDOWS`` windows (hourly windows over months: their fingerprints cost more than they save), and
series that reach the last days of the calendar (year 9999: rows stored with odd times).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from mlops_core.store import engines
from mlops_core.store import window_cache as cache
from mlops_core.store.conditions import WINDOW_LENGTH, check_window
from mlops_core.store.logs import LogView

T = TypeVar("T")

#: Series with more windows than this are computed in one query without the cache.
MAX_WINDOWS = 2000
#: A run of windows computed in one query holds about this many predictions at most (whole windows), so the
#: memory of a first computation over a big log stays bounded: a query's joins and sorts grow with its rows.
RUN_ROWS = 1_000_000
#: ``compute(con, view, start, end)`` -> {window start: result} for the windows with rows in [start, end).
Compute = Callable[[Any, LogView, "datetime | None", "datetime | None"], "dict[datetime, T]"]


def window_start(moment: datetime, window: str) -> datetime:
    """``date_trunc(window, moment)``: the start of the hour, the day, or the Monday-started week."""
    if window == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if window == "week" else day


def _naive(moment: datetime | None) -> datetime | None:
    """The moment as a naive UTC datetime (the log's times are naive UTC)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _cacheable(con, log: LogView) -> bool:
    """Whether results of ``log`` on ``con`` may be kept: the cache is on, the engine is DuckDB and the view carries
    its files' spans (and so its log folder)."""
    return cache.enabled() and engines.of(con).name == "duckdb" and log.spans_known


def per_window(con, log: LogView, window: str, start: datetime | None, end: datetime | None, *, series: str,
               compute: Compute, encode: Callable[[T], Any], decode: Callable[[datetime, Any], T]) -> dict[datetime, T]:
    """{window start: result} over [start, end), from ``compute`` for the windows that changed and from the cache
    for the others (see the module docstring). ``series``: the cache's name for this series
    (``window_cache.series_name``); ``encode``/``decode``: a result to JSON values and back (``decode(window start, data)``), exactly."""
    check_window(window)
    start, end = _naive(start), _naive(end)
    spans = [f for f in log.listed_predictions if f.first is not None and f.last is not None]
    if not _cacheable(con, log) or log.as_of is not None or not spans:
        return compute(con, log, start, end)
    first, last = min(f.first for f in spans), max(f.last for f in spans)
    if start is not None:
        first = max(first, start)
    if end is not None:
        last = min(last, end - timedelta(microseconds=1))
    if first > last:
        return compute(con, log, start, end)
    length = WINDOW_LENGTH[window]
    if last >= datetime.max - 2 * length:  # a window at the end of the calendar has no next one to step to
        return compute(con, log, start, end)
    starts = []
    w = window_start(first, window)
    while w <= last:
        starts.append(w)
        if len(starts) > MAX_WINDOWS:
            return compute(con, log, start, end)
        w += length
    kept = cache.load(log.root, log.info.name, series)
    out: dict[datetime, T] = {}
    stale: list[tuple[datetime, str, int]] = []
    for w in starts:
        if (start is not None and w < start) or (end is not None and w + length > end):
            # cut by the bounds: its rows depend on them
            lo, hi = max(w, start) if start is not None else w, min(w + length, end) if end is not None else w + length
            out.update(compute(con, log.restricted(lo, hi), lo, hi))
            continue
        fingerprint = log.fingerprint(w, w + length)
        entry = kept.get(w.isoformat())
        if entry is not None and entry[0] == fingerprint:
            if entry[1] is not None:
                out[w] = decode(w, entry[1])
            continue
        stale.append((w, fingerprint, log.rows_touching(w, w + length)))
    for run in _runs(stale, length):
        lo, hi = run[0][0], run[-1][0] + length
        found = compute(con, log.restricted(lo, hi), lo, hi)
        for w, fingerprint, _ in run:
            result = found.get(w)
            if result is not None:
                out[w] = result
            kept[w.isoformat()] = [fingerprint, None if result is None else encode(result)]
    if stale:
        cache.save(log.root, log.info.name, series, kept)
    return dict(sorted(out.items()))


#: Periods kept per series (``per_period``): the newest ones, as periods move with the log's clock.
KEPT_PERIODS = 64


def per_period(con, log: LogView, start: datetime, end: datetime, *, series: str,
               compute: Callable[[Any, LogView, datetime, datetime], T], encode: Callable[[T], Any],
               decode: Callable[[Any], T]) -> T:
    """``compute(con, view, start, end)`` for one period [start, end), reused from the cache while the files that
    can change it (and ``as_of``, where it cuts them) are the same; the view handed to ``compute`` reads only those
    files. Views as of a past moment are cached too (the moment is part of the fingerprint when it matters)."""
    start, end = _naive(start), _naive(end)
    if not _cacheable(con, log):
        return compute(con, log, start, end)
    fingerprint = log.fingerprint(start, end)
    key = f"{start.isoformat()}/{end.isoformat()}"
    kept = cache.load(log.root, log.info.name, series)
    entry = kept.get(key)
    if entry is not None and entry[0] == fingerprint:
        return decode(entry[1])
    result = compute(con, log.restricted(start, end), start, end)
    kept.pop(key, None)
    kept[key] = [fingerprint, encode(result)]
    while len(kept) > KEPT_PERIODS:  # JSON objects keep their order: the first entries are the oldest
        kept.pop(next(iter(kept)))
    cache.save(log.root, log.info.name, series, kept)
    return result


def encode_frame(frame: pd.DataFrame) -> dict[str, Any]:
    """A DataFrame as JSON values that ``decode_frame`` turns back into an equal frame (same dtypes, exact floats:
    ``json`` writes a float's shortest repr, which reads back to the same double)."""
    rows = [[_plain(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    return {"columns": [str(c) for c in frame.columns], "dtypes": [str(t) for t in frame.dtypes], "rows": rows}


def decode_frame(data: dict[str, Any]) -> pd.DataFrame:
    """The frame ``encode_frame`` encoded."""
    frame = pd.DataFrame(data["rows"], columns=data["columns"])
    for column, dtype in zip(data["columns"], data["dtypes"], strict=True):
        if dtype.startswith("datetime64"):
            frame[column] = pd.to_datetime(frame[column]).astype(dtype)
        elif str(frame[column].dtype) != dtype:
            frame[column] = frame[column].astype(dtype)
    return frame


def _plain(value: Any) -> Any:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def split_by_window(frame: pd.DataFrame, column: str = "window_start") -> dict[datetime, pd.DataFrame]:
    """{window start: its rows} of a frame with a window start column."""
    if frame.empty:
        return {}
    return {pd.Timestamp(w).to_pydatetime(): part.reset_index(drop=True)
            for w, part in frame.groupby(column, sort=True)}


def _runs(stale: list[tuple[datetime, str, int]], length: timedelta) -> list[list[tuple[datetime, str, int]]]:
    """Consecutive windows grouped into runs (one query each) of at most about ``RUN_ROWS`` predictions."""
    runs: list[list[tuple[datetime, str, int]]] = []
    rows = 0
    for item in stale:
        if runs and item[0] - runs[-1][-1][0] == length and rows + item[2] <= RUN_ROWS:
            runs[-1].append(item)
            rows += item[2]
        else:
            runs.append([item])
            rows = item[2]
    return runs


__all__ = ["KEPT_PERIODS", "MAX_WINDOWS", "RUN_ROWS", "decode_frame", "encode_frame", "per_period", "per_window", "split_by_window", "window_start"]

"""Times as the project stores them: naive UTC datetimes with microseconds (DuckDB TIMESTAMP).

``parse_time`` turns what a person or a program hands over (a datetime, a date, an ISO
string, with or without a zone) into that form.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from mlops_core.errors import InvalidInputError


def parse_time(value: object, *, end: bool = False) -> datetime | None:
    """A naive UTC datetime from a datetime, date or ISO string; a bare date as ``end`` means the day after it.

    None and "" give None. Raises InvalidInputError for text that is not a date.
    """
    if value is None or value == "":
        return None
    import pandas as pd  # its parser reads every ISO 8601 form; loaded only when a time is given

    if isinstance(value, (datetime, pd.Timestamp)):
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return ts.to_pydatetime()
    if isinstance(value, date):
        d = datetime(value.year, value.month, value.day)
        return _day_after(d) if end else d
    text = str(value).strip()
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInputError(f"Cannot read {text!r} as a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM.", value=text) from exc
    if ts is pd.NaT:
        raise InvalidInputError(f"Cannot read {text!r} as a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM.", value=text)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    out = ts.to_pydatetime()
    if end and len(text) <= 10:
        out = _day_after(out)
    return out


def _day_after(d: datetime) -> datetime:
    """The start of the next day; the last representable moment for the last day of year 9999."""
    try:
        return d + timedelta(days=1)
    except OverflowError:
        return datetime.max

"""How tables and figures read on a page: human column names with units, times with their zone, versions as
``v2``, shares as percentages, settings as words; never ``None``, ``nan``, raw JSON or snake_case.

A page picks the columns it shows with ``Column(source, label, kind)`` and draws them with ``show``;
the core's frames keep their machine names (the CLI's ``--json`` and the CSV exports use them).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
import streamlit as st

from mlops_core.entities import feature_label

#: What a missing value shows as.
MISSING = "—"


def _missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def when(value: Any, *, seconds: bool = False) -> str:
    """A time as ``2026-11-30 14:08 UTC`` (every stored time is UTC)."""
    if _missing(value) or value == "":
        return MISSING
    t = pd.Timestamp(value)
    return f"{t:%Y-%m-%d %H:%M:%S} UTC" if seconds else f"{t:%Y-%m-%d %H:%M} UTC"


def day(value: Any) -> str:
    """A day as ``30 Nov 2026``."""
    if _missing(value):
        return MISSING
    return f"{pd.Timestamp(value):%-d %b %Y}"


def version(value: Any) -> str:
    if _missing(value):
        return MISSING
    try:
        return f"v{int(value)}"
    except (TypeError, ValueError):
        return str(value)


def number(value: Any, digits: int = 3, unit: str | None = None) -> str:
    """A number with ``digits`` significant figures (at least the integer part), with its unit."""
    if _missing(value):
        return MISSING
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(f):
        return MISSING
    if f == int(f) and abs(f) < 1e15:
        text = f"{int(f):,}"
    elif abs(f) >= 10 ** digits:
        text = f"{f:,.0f}"
    else:
        text = f"{f:.{digits}g}"
        if "e" in text:
            text = f"{f:.2e}"
    return f"{text} {unit}" if unit else text


def decimal(value: Any, places: int = 3, unit: str | None = None) -> str:
    """A metric's value with ``places`` decimals (one for values of 100 and more), with its unit."""
    if _missing(value):
        return MISSING
    f = float(value)
    if not math.isfinite(f):
        return MISSING
    text = f"{f:,.1f}" if abs(f) >= 100 else f"{f:.{places}f}"
    return f"{text} {unit}" if unit else text


def percent(value: Any, digits: int = 0) -> str:
    if _missing(value):
        return MISSING
    return f"{float(value):.{digits}%}"


def p_value(value: Any) -> str:
    """A p-value as people read it: ``< 0.001`` below that, else three decimals."""
    if _missing(value):
        return MISSING
    f = float(value)
    return "< 0.001" if f < 0.001 else f"{f:.3f}"


def seconds(value: Any) -> str:
    if _missing(value):
        return MISSING
    f = float(value)
    return f"{f:.1f} s" if f < 120 else f"{f / 60:.1f} min"


def words(name: Any) -> str:
    """A machine name in words: ``register_version`` -> ``register version``, ``__prediction__`` -> ``prediction``."""
    if _missing(name):
        return MISSING
    return feature_label(str(name)).replace("_", " ")


def readable(value: Any) -> str:
    """A settings or statistics document (a dict, or JSON text of one) as ``name: value · name: value``."""
    if _missing(value) or value == "":
        return MISSING
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            if _missing(v) or v in ({}, [], "") or str(k) == "id" or str(k).endswith(("_id", "_ids")):
                continue  # internal ids say nothing to a person (the CSV download keeps them)
            parts.append(f"{words(k)}: {_short(v)}")
        return " · ".join(parts) or MISSING
    if isinstance(value, list):
        return ", ".join(_short(v) for v in value) or MISSING
    return str(value)


def _short(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return number(v)
    if isinstance(v, (datetime, date)):
        return when(v)
    if isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[10] in "T ":
        try:
            return when(pd.Timestamp(v))
        except ValueError:
            return v
    if isinstance(v, dict):
        return "(" + readable(v) + ")"
    if isinstance(v, list):
        return ", ".join(_short(x) for x in v[:6]) + (" …" if len(v) > 6 else "")
    return str(v)


FORMATS: dict[str, Callable[[Any], str]] = {
    "time": when, "day": day, "version": version, "number": number, "decimal": decimal, "percent": percent,
    "p_value": p_value,
    "seconds": seconds, "words": words, "readable": readable,
    "text": lambda v: MISSING if _missing(v) or v == "" else str(v),
    "yes_no": lambda v: MISSING if _missing(v) else ("yes" if bool(v) else "no"),
}


@dataclass(frozen=True)
class Column:
    """One column to show: the frame's ``source`` column, its ``label`` (with its unit), how to write it
    (``kind``: a name of ``FORMATS``, ``int``/``float``/``progress`` kept as numbers, or a function)."""

    source: str
    label: str
    kind: str | Callable[[Any], str] = "text"
    digits: int = 3


def display_frame(frame: pd.DataFrame, columns: list[Column]) -> tuple[pd.DataFrame, dict]:
    """The frame as it is shown (the chosen columns, written out) and the column settings for ``st.dataframe``."""
    frame = frame.reset_index(drop=True)
    out, config = {}, {}
    for c in columns:
        if c.source not in frame.columns:
            continue
        values = frame[c.source]
        if c.kind in ("int", "float") and not values.isna().any():
            out[c.label] = values
            config[c.label] = st.column_config.NumberColumn(c.label, format="%d" if c.kind == "int" else
                                                            f"%.{c.digits}f")
        elif c.kind == "progress":
            out[c.label] = values.fillna(0.0)
            config[c.label] = st.column_config.ProgressColumn(c.label, min_value=0.0, max_value=1.0)
        elif c.kind in ("int", "float"):
            out[c.label] = [number(v, c.digits) for v in values]
        elif callable(c.kind):
            out[c.label] = [c.kind(v) for v in values]
        elif c.kind == "number":
            out[c.label] = [number(v, c.digits) for v in values]
        else:
            out[c.label] = [FORMATS[c.kind](v) for v in values]
    return pd.DataFrame(out, index=range(len(frame))), config


def show(frame: pd.DataFrame, columns: list[Column], *, height: int | str | None = None, key: str | None = None,
         empty: str | None = None) -> None:
    """Draw ``frame`` as a table of ``columns`` (see ``Column``); ``empty``: a caption instead of an empty table."""
    if len(frame) == 0 and empty is not None:
        st.caption(empty)
        return
    shown, config = display_frame(frame, columns)
    kwargs: dict[str, Any] = {"hide_index": True, "column_config": config, "width": "stretch"}
    if height is not None:
        kwargs["height"] = height
    if key is not None:
        kwargs["key"] = key
    st.dataframe(shown, **kwargs)


def fit_height(rows: int, most: int = 10) -> int:
    """A table height that shows up to ``most`` rows without inner scrolling."""
    return 38 + 35 * max(1, min(rows, most))

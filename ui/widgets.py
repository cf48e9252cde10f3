"""Reusable page parts: the error boundary, the first-run guide, flash messages, chart drawing."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from mlops_core.errors import DatabaseBusyError, MlopsError, NotFoundError
from ui import state

log = logging.getLogger("mlops_dashboard")

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&])")


def md(value: object) -> str:
    """``value`` as literal text inside Markdown (``st.markdown``, captions, alerts): every character that
    Markdown, Streamlit's directives (``:red[...]``, ``:material/x:``), LaTeX (``$``) or HTML could act on is
    backslash-escaped and line breaks become spaces, so a name like ``![t](http://host/x.png)`` shows as
    typed and fetches nothing. Use it for anything a user or a data file supplied."""
    text = " ".join(str(value).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Show any failure inside the block as ``st.error("what happened — what to do")``.

    Streamlit's own control flow (st.rerun, st.stop, st.switch_page) passes through.
    The rest of the block is skipped; the page around it keeps rendering.
    """
    try:
        yield
    except ScriptControlException:
        raise
    except DatabaseBusyError as exc:
        st.error(f"{what}: the database is busy ({md(exc)}) — wait a few seconds and reload the page.")
    except NotFoundError as exc:
        st.error(f"{what}: {md(exc)} — pick another model or version in the sidebar, or reload the page.")
    except MlopsError as exc:
        st.error(f"{what}: {md(exc)}")
    except Exception as exc:  # the last line of defence: never a traceback on a page
        log.exception("%s failed", what)
        st.error(
            f"{what} failed unexpectedly ({type(exc).__name__}: {md(exc)}) — reload the page; if it keeps failing, "
            "run the matching `mlops` command to see the full error."
        )


def first_run_guide(db: str) -> None:
    """What to do when the database is missing or holds no model."""
    from mlops_core.config import is_postgres_url, redact_url

    db = redact_url(db) if is_postgres_url(db) else db  # never show a password
    st.info("No model is registered in this database yet. To start:")
    st.markdown(
        f"""
1. **Build the demo** (two models, 90 days of traffic, drift, a concept shift, alerts):
   `python -m mlops_core demo --db {db}` (or `make run`, which builds it on the first start).
2. **Or register your own model** from its training data:
   `python -m mlops_core register --model NAME --task classification --target COLUMN `
   `--training-data train.csv --db {db}`
3. **Log predictions and labels** for it:
   `python -m mlops_core ingest predictions predictions.csv --model NAME --db {db}`, then
   `python -m mlops_core ingest labels labels.csv --model NAME --db {db}` as labels arrive

Then reload this page.
"""
    )
    st.caption(f"Database: {md(db)} (set `MLOPS_DB` to a file or a postgresql:// URL to show another one).")


def flash(kind: str, text: str) -> None:
    """Keep a message to show at the top of the next run (after an action and st.rerun)."""
    st.session_state[state.FLASH] = (kind, text)


def show_flash() -> None:
    item = st.session_state.pop(state.FLASH, None)
    if item:
        kind, text = item
        getattr(st, kind, st.info)(text)


def chart(fig, key: str | None = None) -> None:
    """Draw a plotly figure with Streamlit's theme (follows the light/dark setting)."""
    st.plotly_chart(fig, width="stretch", theme="streamlit", key=key)


def no_data(what: str, hint: str) -> None:
    st.info(f"No {what} in the selected range — {hint}")


def pick(frame, columns: list[str]):
    """The given columns of ``frame`` that exist, in that order (all columns when none match)."""
    cols = [c for c in columns if c in frame.columns]
    return frame[cols] if cols else frame


def window_bounds(start, window: str):
    """[start, start + one window) as naive datetimes."""
    import pandas as pd

    s = pd.Timestamp(start).to_pydatetime()
    step = {"hour": pd.Timedelta(hours=1), "day": pd.Timedelta(days=1), "week": pd.Timedelta(weeks=1)}[window]
    return s, (pd.Timestamp(s) + step).to_pydatetime()


def describe_rule(rule: dict) -> str:
    """A stored gate rule dict in the form the policy box accepts (``roc_auc>=0.7``, ``roc_auc+=2%``)."""
    op = {"min": ">=", "max": "<=", "improve": "+="}.get(rule.get("kind"), "?")
    t = float(rule.get("threshold", 0))
    value = f"{t * 100:g}%" if rule.get("relative") else f"{t:g}"
    return f"{rule.get('metric')}{op}{value}"

"""The sidebar every page shares (model, date range, window) and what pages read from it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import streamlit as st

from mlops_core.clock import utcnow
from ui import data, state, widgets


@dataclass(frozen=True)
class Context:
    """What the sidebar selected: the database, the model, [start, end) and the window."""

    db: str
    model: str
    models: tuple[str, ...]
    start: datetime
    end: datetime
    first_day: date
    last_day: date
    window: str


def sidebar(db: str, model_names: list[str], *, refresh: bool = False) -> None:
    """Draw the shared widgets (keys in ``ui.state``); their values persist across pages. ``refresh``: offer the
    auto-refresh interval (the monitoring pages)."""
    if not model_names:
        return
    if st.session_state.get(state.MODEL) not in model_names:
        st.session_state[state.MODEL] = model_names[0]
    model = st.sidebar.selectbox("Model", model_names, key=state.MODEL)

    last = None
    with widgets.guard("Reading the newest prediction"):
        last = data.last_prediction(db, model)
    last_day = (last or utcnow()).date()
    if state.DATE_RANGE not in st.session_state:
        st.session_state[state.DATE_RANGE] = (last_day - timedelta(days=state.DEFAULT_DAYS - 1), last_day)
    st.sidebar.date_input("Date range (UTC)", key=state.DATE_RANGE, help="Both days included.")
    if state.WINDOW not in st.session_state:
        st.session_state[state.WINDOW] = state.DEFAULT_WINDOW
    st.sidebar.radio("Window", state.WINDOWS, key=state.WINDOW, horizontal=True,
                     help="Length of one point on the time charts.")
    st.sidebar.caption(f"Newest prediction: {last:%Y-%m-%d %H:%M} UTC" if last else "No predictions logged yet.")
    if state.REFRESH in st.session_state:  # keep the choice while pages without the widget are shown
        st.session_state[state.REFRESH] = st.session_state[state.REFRESH]
    if refresh:
        if st.session_state.get(state.REFRESH) not in state.REFRESH_CHOICES:
            st.session_state[state.REFRESH] = 0
        st.sidebar.selectbox("Auto-refresh", list(state.REFRESH_CHOICES), key=state.REFRESH,
                             format_func=state.REFRESH_CHOICES.get,
                             help="Redraw this page on an interval, for a screen that stays open (off by default).")
    with widgets.guard("Reading the log's time span"):
        rows, first, latest = data.times_outside_range(db, model)
        if rows:
            span = f"{first:%Y-%m-%d}" if first == latest or latest is None else f"{first:%Y-%m-%d} to {latest:%Y-%m-%d}"
            st.sidebar.warning(f"{rows:,} logged prediction(s) carry times outside the accepted range ({span}); "
                               "they are stored but the default dates ignore them. Pick their dates to see them.",
                               icon=":material/schedule:")


def current() -> Context | None:
    """The sidebar's selection, or None when the database holds no model (the page shows the guide)."""
    db = data.db_path()
    names = [m.name for m in data.models(db)]
    if not names:
        return None
    model = st.session_state.get(state.MODEL)
    if model not in names:
        model = names[0]
    rng = st.session_state.get(state.DATE_RANGE) or ()
    if isinstance(rng, date):
        rng = (rng,)
    if len(rng) == 0:
        first_day = last_day = utcnow().date()
    else:
        first_day, last_day = rng[0], rng[-1]  # a half-picked range (one day) means that day
    start, end = data.day_bounds(first_day, last_day)
    window = st.session_state.get(state.WINDOW) or state.DEFAULT_WINDOW
    return Context(db, model, tuple(names), start, end, first_day, last_day, window)


def require() -> Context:
    """Return the context, or show the first-run guide and stop the page when there is no model."""
    with widgets.guard("Opening the database"):
        ctx = current()
        if ctx is not None:
            return ctx
        widgets.first_run_guide(data.db_path())
    st.stop()

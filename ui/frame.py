"""The frame around every page: the login, the navigation, the shared sidebar (model, date range, window),
flash messages.

``dashboard.py`` registers the navigation (``navigation()``) and draws the requested page inside
the frame (``run()``). Every page script starts with ``enter()``, because Streamlit does not
always go through ``dashboard.py``: with the page scripts in a folder named ``pages/`` beside the
entry script, a server process (and every AppTest run) starts in Streamlit's old multipage mode,
which runs the requested page script by itself, without the router. ``enter()`` notices that the
page is outside the frame and does the router's work in its place: it registers the navigation,
which ends that mode for the whole process, draws the requested page inside the frame, and stops
the outer run. The page comes whole, also as the first request of a fresh server, in the same
script run, so a click that started the run is not lost.
"""
from __future__ import annotations

import time
from contextvars import ContextVar

import streamlit as st

from ui import auth, context, data, dialogs, state, verdicts, widgets

#: Section -> pages as (script name in pages/, title, icon). The first page is ``/``; every other page's URL
#: path is its script's name (``/performance``), the name Streamlit's old multipage mode finds it by too.
SECTIONS = {
    "Monitor": [
        ("overview", "Overview", ":material/dashboard:"),
        ("performance", "Performance", ":material/show_chart:"),
        ("drift", "Drift", ":material/stacked_line_chart:"),
        ("data_quality", "Data quality", ":material/rule:"),
        ("features", "Features", ":material/table_view:"),
    ],
    "Act": [
        ("versions", "Versions", ":material/compare_arrows:"),
        ("ab_test", "A/B test", ":material/science:"),
        ("retrain", "Retrain", ":material/model_training:"),
    ],
    "Records": [
        ("runs", "Runs & audit", ":material/history:"),
        ("automation", "Automation", ":material/smart_toy:"),
    ],
}

#: Pages whose figures follow the log: they offer the opt-in auto-refresh.
MONITORING = {name for name, _, _ in SECTIONS["Monitor"]}
#: Pages that show the model's verdict themselves (the Overview: one per model), so the frame draws no banner.
OWN_VERDICT = {"overview"}

#: True while ``run()`` draws a page: the page is inside the frame. A context variable, because every
#: session runs its script on a thread of its own.
_inside_frame: ContextVar[bool] = ContextVar("inside_frame", default=False)


def navigation() -> st.Page:
    """Register the pages with ``st.navigation`` (in the sidebar, by section); return the page requested."""
    first = next(iter(SECTIONS.values()))[0][0]
    return st.navigation({
        section: [st.Page(f"pages/{name}.py", title=title, icon=icon, default=name == first)
                  for name, title, icon in pages]
        for section, pages in SECTIONS.items()
    })


def run(page: st.Page) -> None:
    """Draw the frame (page settings, shared sidebar, pending flash message), then ``page`` from ``navigation()``."""
    st.set_page_config(page_title="MLOps control room", page_icon=":material/monitoring:", layout="wide")
    db = data.db_path()
    auth.gate(db)  # nothing below is drawn before a login
    auth.account_menu(db)
    names: list[str] = []
    with widgets.guard("Loading the models"):
        names = [m.name for m in data.models(db)]
    name = _page_name(page)
    context.sidebar(db, names, refresh=name in MONITORING)
    widgets.show_flash()
    model = st.session_state.get(state.MODEL)
    if name not in OWN_VERDICT and model in names:
        with widgets.guard(f"The verdict on {model}"):
            verdicts.banner(db, model)
    token = _inside_frame.set(True)
    try:
        with widgets.guard(f"The {page.title} page"):
            page.run()
    finally:
        _inside_frame.reset(token)
    if model in names:
        with widgets.guard("The confirmation dialog"):
            dialogs.show_pending(db, model)  # once per run, after every button that may ask for one
    if name in MONITORING:
        _auto_refresh(st.session_state.get(state.REFRESH))


def _page_name(page: st.Page) -> str:
    """The page's script name (``overview`` for the default page, whose URL path is empty)."""
    path = getattr(page, "url_path", "") or ""
    return path or next(iter(SECTIONS.values()))[0][0]


def _auto_refresh(seconds: int | None) -> None:
    """Rerun the whole page every ``seconds`` (None: never). A fragment wakes up on the interval; the run it
    wakes in after the interval has passed reruns the app, so the page redraws with fresh reads (the cache's
    time to live is shorter than every interval offered)."""
    if not seconds:
        return
    st.session_state[state.PAGE_DRAWN_AT] = time.monotonic()

    @st.fragment(run_every=seconds)
    def tick() -> None:
        drawn = st.session_state.get(state.PAGE_DRAWN_AT) or time.monotonic()
        if time.monotonic() - drawn >= seconds - 1:
            st.rerun()

    tick()


def enter() -> None:
    """Make sure the calling page script is drawn inside the frame; every page calls it first.

    Returns at once when the router runs the page. Otherwise (Streamlit ran the page script
    directly) it draws the requested page inside the frame itself and then raises Streamlit's
    stop (``st.stop()``), so that the rest of the outer, frameless run of the script is skipped.
    """
    if _inside_frame.get():
        return
    run(navigation())  # any call of st.navigation ends the old multipage mode for the server process
    st.stop()

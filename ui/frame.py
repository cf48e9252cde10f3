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

from contextvars import ContextVar

import streamlit as st

from ui import auth, context, data, widgets

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
    context.sidebar(db, names)
    widgets.show_flash()
    token = _inside_frame.set(True)
    try:
        with widgets.guard(f"The {page.title} page"):
            page.run()
    finally:
        _inside_frame.reset(token)


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

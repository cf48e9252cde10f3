"""The MLOps control room: the entry script of the multi-page dashboard.

Run with ``streamlit run dashboard.py`` (``make run``); the database is ``$MLOPS_DB``.
This router registers the navigation (three sections, eight pages at stable URL paths) and
draws the requested page inside the frame they all share: the sidebar (model, date range,
window) and flash messages. The page scripts are in ``pages/``; the frame (``ui/frame.py``)
and the pages' shared parts are in ``ui/``.

Why every page script starts with ``frame.enter()``: with a folder named ``pages/`` beside
this script, Streamlit (1.67) starts each server process, and each AppTest run, in its old
multipage mode, which runs a requested page script directly, without this router and its
sidebar. ``frame.enter()`` then does the router's work within that same run (registering the
navigation also ends that mode for the process), so a page is whole even as a server's very
first request (tests/test_first_request.py). That is also why the navigation is defined in
``ui/frame.py`` rather than here: both this router and ``frame.enter()`` register it.
"""
from ui import frame

page = frame.navigation()
frame.run(page)

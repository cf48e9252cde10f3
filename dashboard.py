"""The MLOps control room: the router of the multi-page dashboard.

Run with ``streamlit run dashboard.py`` (``make run``); the database is ``$MLOPS_DB``.
This file only builds the navigation and the sidebar every page shares; the pages are
in ``app_pages/``, their shared parts in ``ui/``. (Not ``pages/``: Streamlit treats a
folder of that name beside the entry script as an old-style multipage app, and then runs
a page script directly, without this router and its sidebar, on the first request of a
server process and on every run under AppTest.)
"""
import streamlit as st

from ui import context, data, widgets

st.set_page_config(page_title="MLOps control room", page_icon=":material/monitoring:", layout="wide")

PAGES = {
    "Monitor": [
        st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("app_pages/performance.py", title="Performance", icon=":material/show_chart:", url_path="performance"),
        st.Page("app_pages/drift.py", title="Drift", icon=":material/stacked_line_chart:", url_path="drift"),
        st.Page("app_pages/data_quality.py", title="Data quality", icon=":material/rule:", url_path="data_quality"),
    ],
    "Act": [
        st.Page("app_pages/versions.py", title="Versions", icon=":material/compare_arrows:", url_path="versions"),
        st.Page("app_pages/retrain.py", title="Retrain", icon=":material/model_training:", url_path="retrain"),
    ],
    "Records": [
        st.Page("app_pages/runs.py", title="Runs & audit", icon=":material/history:", url_path="runs"),
        st.Page("app_pages/automation.py", title="Automation", icon=":material/smart_toy:", url_path="automation"),
    ],
}

page = st.navigation(PAGES)
db = data.db_path()
names: list[str] = []
with widgets.guard("Loading the models"):
    names = [m.name for m in data.models(db)]
context.sidebar(db, names)
widgets.show_flash()
with widgets.guard(f"The {page.title} page"):
    page.run()

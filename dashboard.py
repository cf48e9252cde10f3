"""The MLOps control room: the router of the multi-page dashboard.

Run with ``streamlit run dashboard.py`` (``make run``); the database is ``$MLOPS_DB``.
This file only builds the navigation and the sidebar every page shares; the pages are
in ``pages/``, their shared parts in ``ui/``.
"""
import streamlit as st

from ui import context, data, widgets

st.set_page_config(page_title="MLOps control room", page_icon=":material/monitoring:", layout="wide")

PAGES = {
    "Monitor": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/performance.py", title="Performance", icon=":material/show_chart:", url_path="performance"),
        st.Page("pages/drift.py", title="Drift", icon=":material/stacked_line_chart:", url_path="drift"),
        st.Page("pages/data_quality.py", title="Data quality", icon=":material/rule:", url_path="data_quality"),
    ],
    "Act": [
        st.Page("pages/versions.py", title="Versions", icon=":material/compare_arrows:", url_path="versions"),
        st.Page("pages/retrain.py", title="Retrain", icon=":material/model_training:", url_path="retrain"),
    ],
    "Records": [
        st.Page("pages/runs.py", title="Runs & audit", icon=":material/history:", url_path="runs"),
        st.Page("pages/automation.py", title="Automation", icon=":material/smart_toy:", url_path="automation"),
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

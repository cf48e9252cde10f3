"""The dashboard's shared parts: cached reads, session-state keys, widgets, the error boundary.

Only ``dashboard.py``, ``app_pages/`` and this package import streamlit; everything here calls
``mlops_core`` and draws what comes back.
"""

"""The dashboard's shared parts: the page frame, cached reads, session-state keys, widgets, the error boundary.

Only ``dashboard.py``, ``pages/`` and this package import streamlit; everything here calls
``mlops_core`` and draws what comes back.
"""

"""Drift."""
import streamlit as st

from ui import context

st.title("Drift")
ctx = context.require()
st.info("This page is being built.")

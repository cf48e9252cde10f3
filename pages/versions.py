"""Versions."""
import streamlit as st

from ui import context

st.title("Versions")
ctx = context.require()
st.info("This page is being built.")

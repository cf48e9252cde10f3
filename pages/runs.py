"""Runs."""
import streamlit as st

from ui import context

st.title("Runs")
ctx = context.require()
st.info("This page is being built.")

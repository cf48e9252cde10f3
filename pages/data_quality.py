"""Data quality."""
import streamlit as st

from ui import context

st.title("Data quality")
ctx = context.require()
st.info("This page is being built.")

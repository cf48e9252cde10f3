"""Performance."""
import streamlit as st

from ui import context

st.title("Performance")
ctx = context.require()
st.info("This page is being built.")

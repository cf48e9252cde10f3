"""Automation."""
import streamlit as st

from ui import context

st.title("Automation")
ctx = context.require()
st.info("This page is being built.")

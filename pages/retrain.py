"""Retrain."""
import streamlit as st

from ui import context

st.title("Retrain")
ctx = context.require()
st.info("This page is being built.")

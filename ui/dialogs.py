"""Confirmation dialogs of the actions that change production (Promote, Roll back).

Each says exactly what will change, asks for a reason for the audit log, and acts only
on **Confirm**; on success it leaves a message for the next run and reruns the app so
every chart shows the new state (the caches were cleared by ``ui.actions``).

A button does not call the dialog directly: it records the pending action in session
state (``request``) and the page frame calls ``show_pending`` once on every run, after the
page (``ui.frame``), so a button anywhere (the page, the verdict's next step) can ask for it. The dialog thus
stays open across full reruns (a widget inside it, a test driver that reruns the
whole script) until it is confirmed or dismissed.
"""
from __future__ import annotations

import streamlit as st

from mlops_core.errors import MlopsError
from ui import actions, widgets

PENDING = "pending_action"


def request(kind: str, **args) -> None:
    """Open the ``kind`` dialog ("promote" or "rollback") with ``args`` on this and the following runs."""
    st.session_state[PENDING] = {"kind": kind, **args}


def _dismiss() -> None:
    st.session_state.pop(PENDING, None)


def _confirmed(kind: str) -> bool:
    """Draw Confirm and Cancel; Cancel closes the dialog, the result says whether Confirm was clicked."""
    c1, c2 = st.columns(2)
    if c2.button("Cancel", key=f"{kind}_cancel"):
        _dismiss()
        st.rerun()
    return c1.button("Confirm", type="primary", key=f"{kind}_confirm")


def show_pending(db: str, model: str) -> None:
    """Draw the pending dialog of ``model``, if any (call once per page run, after the buttons)."""
    pending = st.session_state.get(PENDING)
    if not pending:
        return
    if pending.get("db") != db or pending.get("model") != model:
        _dismiss()  # the user switched model or database: the request no longer applies
        return
    args = {k: v for k, v in pending.items() if k != "kind"}
    {"promote": _promote, "rollback": _rollback}[pending["kind"]](**args)


@st.dialog("Promote a version", on_dismiss=_dismiss)
def _promote(db: str, model: str, version: int, current: int | None, status: str, gate: dict | None) -> None:
    if current is None:
        st.markdown(f"**v{version}** of **{model}** becomes the production version.")
    else:
        st.markdown(f"Production of **{model}** moves from **v{current}** to **v{version}**. "
                    f"v{current} becomes *archived*; v{version} (now *{status}*) becomes *production*.")
    st.markdown("The deployment history and the audit log each get one row; clients that load the production "
                f"version get v{version} from now on.")
    force = False
    if status == "rejected":
        reasons = "; ".join((gate or {}).get("reasons", [])) or "it failed its promotion gate"
        st.warning(f"v{version} was rejected by the gate: {widgets.md(reasons)}")
        force = st.checkbox("Promote it anyway (the audit log records that the gate was overridden)",
                            key="promote_force")
    reason = st.text_input("Reason (recorded in the audit log)", key="promote_reason")
    if _confirmed("promote"):
        try:
            done = actions.promote(db, model, version, reason, force=force)
        except MlopsError as exc:
            st.error(f"Promotion refused: {widgets.md(exc)}")
            return
        _dismiss()
        was = f" (was v{done.from_version})" if done.from_version is not None else ""
        widgets.flash("success", f"{model}: v{done.to_version} is now in production{was}.")
        st.rerun()


@st.dialog("Roll back production", on_dismiss=_dismiss)
def _rollback(db: str, model: str, current: int | None, target: int) -> None:
    st.markdown(f"Production of **{model}** goes back from **v{current}** to **v{target}**, which held it before. "
                f"v{current} becomes *archived*; v{target} becomes *production* again.")
    st.markdown("The deployment history (action *rollback*) and the audit log each get one row. Rolling back "
                "again later walks further back through the production history.")
    reason = st.text_input("Reason (recorded in the audit log)", key="rollback_reason")
    if _confirmed("rollback"):
        try:
            done = actions.rollback(db, model, None, reason)
        except MlopsError as exc:
            st.error(f"Rollback refused: {widgets.md(exc)}")
            return
        _dismiss()
        widgets.flash("success", f"{model}: rolled back to v{done.to_version} (was v{done.from_version}).")
        st.rerun()

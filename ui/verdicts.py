"""The verdict on a model as the pages show it: a level, the reasons that decide it, and the next step as a button.

The verdict itself (its rules) is in ``mlops_core.monitoring.verdict``; this module only draws it. A next
step is a button for people who may take it (``auth.can("operator")``): Retrain starts a retrain and opens
the Retrain page, Promote and Roll back open their confirmation dialogs (``ui.dialogs``), Acknowledge
acknowledges the open incidents (audited). Viewers read what an operator would do.
"""
from __future__ import annotations

import streamlit as st

from mlops_core.errors import AlreadyRunningError, MlopsError
from mlops_core.monitoring.verdict import Verdict
from ui import actions, auth, data, dialogs, widgets

#: Per level: badge colour, icon, word.
LEVELS = {
    "healthy": ("green", ":material/check_circle:", "Healthy"),
    "watch": ("orange", ":material/visibility:", "Watch"),
    "act": ("red", ":material/error:", "Act"),
    "unknown": ("gray", ":material/help:", "Not judged yet"),
}


def badge(level: str) -> None:
    colour, icon, word = LEVELS.get(level, LEVELS["unknown"])
    st.badge(word, color=colour, icon=icon)


def reasons_text(v: Verdict) -> str:
    """The deciding reasons as one Markdown line (their text escaped)."""
    parts = [widgets.md(r.text[0].upper() + r.text[1:]) for r in v.deciding if r.text]
    return ". ".join(parts) + "." if parts else ""


def next_step(db: str, model: str, v: Verdict, key: str) -> None:
    """The next step of ``v``: a button for an operator, a sentence for everyone else."""
    step = v.next_step
    if step.action == "none":
        if step.text:
            st.caption(f"Next: {widgets.md(step.text)}")
        return
    if step.action == "wait":
        st.caption(f"Next: {widgets.md(step.text)} Follow it on the Retrain page.")
        return
    if not auth.can("operator"):
        st.caption(f"Next step for an operator: {widgets.md(step.text)}")
        return
    primary = v.level == "act"
    if not st.button(step.label, key=f"next_{key}_{model}", type="primary" if primary else "secondary",
                     help=step.text[0].upper() + step.text[1:]):
        return
    with widgets.guard(step.label):
        _take(db, model, v)


def _take(db: str, model: str, v: Verdict) -> None:
    step = v.next_step
    if step.action == "retrain":
        window = 30.0
        with widgets.guard("Automation policy"):
            window = float(data.policy(db, model).window_days)
        try:
            actions.start_retrain(db, model, {"window_days": window})
        except AlreadyRunningError as exc:
            widgets.flash("warning", widgets.md(exc))
        else:
            widgets.flash("success", f"Retrain of {widgets.md(model)} started on the last {window:g} days of "
                                     "labelled data; its progress is below.")
        st.switch_page("pages/retrain.py")
    elif step.action == "promote":
        version = next((x for x in data.versions(db, model) if x.version == step.version), None)
        if version is not None:
            dialogs.request("promote", db=db, model=model, version=version.version,
                            current=data.production(db, model), status=version.status, gate=version.gate)
    elif step.action == "rollback":
        dialogs.request("rollback", db=db, model=model, current=data.production(db, model), target=step.version)
    elif step.action == "acknowledge":
        done = 0
        for alert_id in step.alert_ids:
            try:
                done += bool(actions.acknowledge(db, alert_id))
            except MlopsError as exc:
                st.error(f"Incident {alert_id} was not acknowledged: {widgets.md(exc)}")
        widgets.flash("success", f"Acknowledged {done} incident(s) of {widgets.md(model)}; they stay listed on the "
                                 "Automation page until resolved.")
        st.rerun()


def banner(db: str, model: str) -> None:
    """The verdict of the selected model in one line at the top of a page, with its next step."""
    v = data.verdict(db, model)
    with st.container(border=True, key="verdict_banner"):
        left, right = st.columns([5, 1], vertical_alignment="center")
        with left:
            cols = st.columns([1, 7], vertical_alignment="center")
            with cols[0]:
                badge(v.level)
            cols[1].markdown(f"**{widgets.md(model)}** · " + (reasons_text(v) or "No finding."))
        with right:
            next_step(db, model, v, "banner")


def card(db: str, model: str) -> Verdict:
    """The verdict of one model on the Overview: level, deciding reasons and next step. Returns the verdict."""
    v = data.verdict(db, model)
    badge(v.level)
    text = reasons_text(v)
    if text:
        st.markdown(text)
    next_step(db, model, v, "overview")
    return v

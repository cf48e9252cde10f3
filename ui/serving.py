"""Page parts about serving: what answers each model's requests, per-arm performance, the deployment form.

Each part is one call from its page (Overview, Performance, Versions) and guards its own failures.
"""
from __future__ import annotations

import streamlit as st

from mlops_core import metrics
from mlops_core.errors import MlopsError
from ui import actions, auth, charts, data, tables, widgets
from ui.tables import Column

MODES = {"champion": "Champion only", "split": "Split (A/B)", "shadow": "Shadow", "canary": "Canary ramp"}
DEFAULT_STEPS = "5%:1h,25%:1h,50%"


def deployment_line(db: str, model: str) -> None:
    """One line under a model's name: who answers its requests now, and since when."""
    with widgets.guard(f"Deployment of {model}"):
        s = data.serving(db, model)
        since = f" · since {s.since:%Y-%m-%d %H:%M} UTC" if s.since is not None else ""
        st.caption(f"Serving: {s.description}{since}")


def arms_panel(db: str, model: str, window: str, start, end) -> None:
    """Performance split by arm (champion, challenger, shadow) with 95% intervals, when the log has arms."""
    with st.expander("Split by arm (A/B)"):
        with widgets.guard("Performance by arm"):
            frame = data.arm_performance(db, model, window, start, end)
            if len(frame) == 0:
                st.caption("No predictions with an arm in this range: the arms are logged by the scoring service "
                           "(`mlops serve`) and `mlops score`, or by a batch's `variant` column.")
                return
            widgets.chart(charts.arms_over_time(frame), key="perf_arms")
            metric = metrics.CATALOGUE.get(str(frame["metric"].iloc[0]))
            tables.show(frame.iloc[::-1], [
                Column("window_start", "Window starting", "time" if window == "hour" else "day"),
                Column("arm", "Arm"), Column("n", "Predictions", "int"), Column("n_labelled", "Labelled", "int"),
                Column("value", metric.label if metric else "Value", "decimal"),
                Column("ci_low", "95% interval from", "decimal"), Column("ci_high", "to", "decimal")])


def deployment_form(db: str, model: str, production: int | None, versions: list) -> None:
    """What serves now, and a form to serve champion only, a split, a shadow or a canary (audited)."""
    st.subheader("Serving")
    with widgets.guard("Deployment"):
        s = data.serving(db, model)
        since = f" (since {s.since:%Y-%m-%d %H:%M} UTC)" if s.since is not None else ""
        st.markdown(f"**Now:** {s.description}{since}.")
        if s.configured.mode != s.config.mode:
            st.caption(f"The configured {s.configured.mode} serves champion only: its challenger "
                       f"v{s.configured.challenger} is the production version now.")
    if not auth.can("operator"):
        auth.read_only_note("changing how requests are served")
        return
    others = [v.version for v in reversed(versions) if v.version != production]
    by_number = {v.version: v for v in versions}
    with st.form("deployment_form"):
        mode = st.radio("Mode", list(MODES), format_func=MODES.get, horizontal=True, key="deploy_mode")
        c1, c2, c3 = st.columns(3)
        challenger = c1.selectbox("Challenger", others, key="deploy_challenger",
                                  format_func=lambda n: f"v{n} ({by_number[n].status})") if others else None
        weight = c2.slider("Split: challenger share", 0.05, 0.95, 0.5, 0.05, key="deploy_weight")
        steps = c3.text_input("Canary steps (share:hold)", DEFAULT_STEPS, key="deploy_steps",
                              help="e.g. 5%:1h,25%:1h,50% — the last share holds until you act")
        c4, c5 = st.columns(2)
        sticky = c4.text_input("Sticky key (record field; empty: request id)", key="deploy_sticky")
        reason = c5.text_input("Reason (recorded in the audit log)", key="deploy_reason")
        force = st.checkbox("Let a version the gate rejected answer requests", key="deploy_force")
        submitted = st.form_submit_button("Apply", type="primary")
    if submitted:
        if mode != "champion" and challenger is None:
            st.error("No other version to use as challenger: register or retrain one first.")
            return
        try:
            done = actions.set_deployment(db, model, mode, challenger=challenger if mode != "champion" else None,
                                          weight=weight if mode == "split" else None,
                                          steps=steps if mode == "canary" else None, sticky_key=sticky or None,
                                          reason=reason or None, force=force)
        except MlopsError as exc:
            st.error(f"Deployment refused: {exc}")
            return
        widgets.flash("success", f"{model}: now serving {MODES[done.mode].lower()}"
                                 + (f" with challenger v{done.challenger}." if done.challenger else "."))
        st.rerun()

"""Automation: the model's policy (mode, triggers, thresholds, schedule), its recent evaluations, alerts."""
import streamlit as st

from mlops_core.errors import MlopsError
from ui import actions, auth, context, data, frame, widgets

frame.enter()
st.title("Automation")
ctx = context.require()
st.caption(f"{ctx.model}. **Manual**: a trigger raises an alert and a person decides. "
           "**Automated**: a trigger starts a "
           "retrain, and a candidate that passes the gate is promoted without a person. Evaluated by "
           f"`python -m mlops_core monitor --model {ctx.model}` (e.g. from cron).")

METRICS = ["roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "mae", "rmse", "r2", "mape"]


def optional(col, label: str, value, *, key: str, min_value=0.0, max_value=None, step=0.01, help=None):
    """A number input with an 'on' checkbox: None when switched off. (Inside a form nothing reruns before
    submit, so the input stays enabled and is only used when its box is ticked.)"""
    on = col.checkbox(label, value=value is not None, key=f"{key}_on")
    number = col.number_input(label, value=float(value if value is not None else min_value), min_value=min_value,
                              max_value=max_value, step=step, key=key, label_visibility="collapsed", help=help)
    return float(number) if on else None


with widgets.guard("Policy"):
    p = data.policy(ctx.db, ctx.model)
    st.subheader("Policy")
    st.caption(f"Last changed {p.updated_at:%Y-%m-%d %H:%M} UTC by {widgets.md(p.updated_by)}." if p.stored
               else "No policy stored yet: these are the defaults.")
    with st.form(f"policy_{ctx.model}"):
        mode = st.radio("Mode", ["manual", "automated"], index=["manual", "automated"].index(p.mode),
                        horizontal=True, key="policy_mode")
        c1, c2, c3 = st.columns(3)
        drift = optional(c1, "Drift share above", p.drift_share_above, key="policy_drift", max_value=1.0,
                         help="Trigger when this share of features drifted in the latest window.")
        metric_on = c2.checkbox("Metric below threshold", value=p.metric_threshold is not None, key="policy_metric_on")
        metric = c2.selectbox("Metric", METRICS, index=METRICS.index(p.metric) if p.metric in METRICS else 0,
                              key="policy_metric")
        threshold = c2.number_input("Threshold", value=float(p.metric_threshold or 0.7), step=0.01,
                                    key="policy_threshold",
                                    help="For error metrics (log loss, MAE, RMSE, MAPE) the trigger is *above* it.")
        every = optional(c3, "Every N days", p.every_days, key="policy_every", min_value=1.0, step=1.0,
                         help="Retrain on a schedule, counted from the last successful retrain.")
        c1, c2, c3 = st.columns(3)
        cooldown = c1.number_input("Cool-down (hours)", value=float(p.cooldown_hours), min_value=0.0, step=1.0,
                                   key="policy_cooldown", help="No new automated retrain sooner than this.")
        window = c2.number_input("Retrain window (days)", value=float(p.window_days), min_value=1.0, step=1.0,
                                 key="policy_window")
        gate_text = c3.text_input("Gate rules (comma-separated)", value=", ".join(
            _rule for _rule in (widgets.describe_rule(r) for r in (p.gate or []))), key="policy_gate",
            help="e.g. roc_auc>=0.7, roc_auc+=0.005 (improve by), roc_auc+=2% (relative). Empty: not worse than "
                 "the champion on the headline metric.")
        editor = auth.can("operator")
        if st.form_submit_button("Save policy", type="primary", disabled=not editor):
            try:
                rules = [r.strip() for r in gate_text.split(",") if r.strip()] or None
                actions.set_policy(ctx.db, ctx.model, mode=mode, drift_share_above=drift,
                                   metric=metric if metric_on else None,
                                   metric_threshold=float(threshold) if metric_on else None, every_days=every,
                                   cooldown_hours=float(cooldown), window_days=float(window), gate=rules)
            except MlopsError as exc:
                st.error(f"The policy was not saved: {widgets.md(exc)}")
            else:
                widgets.flash("success", f"Policy of {ctx.model} saved (mode {mode}).")
                st.rerun()

    if not editor:
        auth.read_only_note("changing the policy")

with widgets.guard("Recent evaluations"):
    st.subheader("Recent evaluations")
    ev = data.evaluations(ctx.db, ctx.model)
    if len(ev) == 0:
        st.caption("The policy has not been evaluated yet.")
    else:
        st.dataframe(ev, hide_index=True, height=min(36 * (len(ev) + 1) + 4, 300))

with widgets.guard("Alerts"):
    st.subheader("Alerts")
    show_all = st.toggle("Include acknowledged", value=False, key="alerts_all")
    al = data.alerts(ctx.db, ctx.model, not show_all)
    if len(al) == 0:
        st.caption("No open alerts." if not show_all else "No alerts.")
    else:
        st.dataframe(widgets.pick(al, ["id", "raised_at", "severity", "kind", "message", "acknowledged",
                                       "acknowledged_by", "acknowledged_at"]), hide_index=True)
        still_open = ~al["acknowledged"].astype(bool) if "acknowledged" in al else al["id"].notna()
        open_ids = al.loc[still_open, "id"].tolist()
        if open_ids and not auth.can("operator"):
            auth.read_only_note("acknowledging alerts")
        elif open_ids:
            c1, c2 = st.columns([3, 1])
            chosen = c1.multiselect("Alerts to acknowledge", open_ids, key="ack_ids")
            if c2.button("Acknowledge", key="ack", disabled=not chosen):
                for alert_id in chosen:
                    actions.acknowledge(ctx.db, alert_id)
                widgets.flash("success", f"Acknowledged {len(chosen)} alert(s).")
                st.rerun()

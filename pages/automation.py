"""Automation: the model's policy and what automation did, its alert rules, the incidents (acknowledge, resolve,
snooze) and where they are delivered (webhooks and their failures)."""
import pandas as pd
import streamlit as st

from mlops_core import metrics
from mlops_core.errors import MlopsError
from mlops_core.monitoring.incidents import MAX_SNOOZE
from ui import actions, auth, context, data, frame, tables, widgets
from ui.tables import Column

frame.enter()
st.title("Automation")
ctx = context.require()
info = data.model_info(ctx.db, ctx.model)
st.caption(f"{ctx.model}. **Manual**: a trigger opens an incident and a person decides. **Automated**: a trigger "
           "starts a retrain, and a candidate that passes the gate is promoted without a person. Evaluated by "
           f"`python -m mlops_core monitor --model {ctx.model}` (e.g. from cron).")

METRICS = [m for m in metrics.directed() if metrics.get(m).task == info.task]
RULE_WORDS = {"metric_below": "Metric below", "metric_above": "Metric above",
              "drift_share_above": "Share of drifted features above", "feature_drift": "Drift of a feature",
              "validation_anomalies": "Validation anomalies more than", "no_traffic": "No predictions for (hours)"}
SNOOZE_HOURS = 24


def optional(col, label: str, value, *, key: str, min_value=0, max_value=None, step=1, help=None, scale=1.0):
    """A whole-number input with an 'on' checkbox: None when switched off (the value divided by ``scale``).
    (Inside a form nothing reruns before submit, so the input stays enabled and is only used when ticked.)"""
    on = col.checkbox(label, value=value is not None, key=f"{key}_on")
    shown = round((value if value is not None else min_value) * scale)
    number = col.number_input(label, value=max(shown, min_value), min_value=min_value, max_value=max_value, step=step,
                              key=key, label_visibility="collapsed", help=help)
    return number / scale if on else None


# --- policy ---------------------------------------------------------------------------------

with widgets.guard("Policy"):
    p = data.policy(ctx.db, ctx.model)
    st.subheader("Policy")
    if p.stored:
        st.caption(f"Last changed {p.updated_at:%Y-%m-%d %H:%M} UTC by {widgets.md(p.updated_by)}.")
    else:
        st.caption("Nobody has changed this model's policy: these are the defaults the monitor applies.")
    editor = auth.can("operator")
    with st.form(f"policy_{ctx.model}"):
        mode = st.radio("Mode", ["manual", "automated"], index=["manual", "automated"].index(p.mode),
                        horizontal=True, key="policy_mode")
        c1, c2, c3 = st.columns(3)
        drift = optional(c1, "Drift share above (%)", p.drift_share_above, key="policy_drift", max_value=100,
                         step=5, scale=100.0,
                         help="Trigger when more than this share of the features drifted in the latest full day.")
        metric_on = c2.checkbox("Metric worse than a threshold", value=p.metric_threshold is not None,
                                key="policy_metric_on")
        default_metric = p.metric if p.metric in METRICS else metrics.headline(info.task)
        metric = c2.selectbox("Metric", METRICS, index=METRICS.index(default_metric) if default_metric in METRICS else 0,
                              format_func=lambda m: metrics.label(m, info.unit), key="policy_metric")
        threshold = c2.number_input("Threshold", value=float(p.metric_threshold or 0.7), step=0.01, format="%.3f",
                                    key="policy_threshold",
                                    help="For error metrics (log loss, MAE, RMSE, MAPE) the trigger is *above* it.")
        every = optional(c3, "Every N days", p.every_days, key="policy_every", min_value=1,
                         help="Retrain on a schedule, counted from the last successful retrain.")
        c1, c2, c3 = st.columns(3)
        cooldown = c1.number_input("Cool-down (hours)", value=round(p.cooldown_hours), min_value=0, step=1,
                                   key="policy_cooldown", help="No new automated retrain sooner than this.")
        window = c2.number_input("Retrain window (days)", value=round(p.window_days), min_value=1, step=1,
                                 key="policy_window")
        gate_text = c3.text_input("Gate rules (comma-separated)", value=", ".join(
            widgets.describe_rule(r) for r in (p.gate or [])), key="policy_gate",
            help="e.g. roc_auc>=0.7, roc_auc+=0.005 (improve by), roc_auc+=2% (relative). Empty: not worse than "
                 "the champion on the headline metric.")
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

with widgets.guard("What automation did"):
    st.subheader("What automation did")
    log = data.audit(ctx.db, ctx.model)
    done = log[log["actor"] == "automation"] if len(log) else log
    ev = data.evaluations(ctx.db, ctx.model)
    if len(done) == 0 and len(ev) == 0:
        st.caption("Nothing yet: the policy has not been evaluated (`mlops monitor`) and automation has not acted.")
    if len(done):
        tables.show(done.head(20), [Column("occurred_at", "When", "time"), Column("action", "Action", "words"),
                                    Column("to_version", "Version", "version"), Column("reason", "What and why")])
    if len(ev):
        st.markdown("**Policy evaluations**")
        tables.show(ev.head(50), [Column("evaluated_at", "When", "time"), Column("mode", "Mode"),
                                  Column("action", "Action", "words"), Column("triggers", "Triggers"),
                                  Column("message", "Message")], height=tables.fit_height(len(ev), 6))
    elif len(done):
        st.caption("The policy itself has not been evaluated by `mlops monitor` yet; the rows above are automation's "
                   "own actions (e.g. a retrain it ran).")

with widgets.guard("Alert rules"), st.expander("Alert rules (when an incident opens)"):
    rules = data.alert_rules(ctx.db, ctx.model)
    if len(rules):
        share_rule = rules[(rules["kind"] == "drift_share_above") & rules["enabled"]]
        if len(share_rule) and p.drift_share_above is not None and \
                abs(float(share_rule["threshold"].iloc[0]) - float(p.drift_share_above)) > 1e-9:
            st.caption(f"The drift alert opens an incident above {float(share_rule['threshold'].iloc[0]):.0%} of "
                       f"features, the policy's drift trigger fires above {p.drift_share_above:.0%}: they are set "
                       f"separately (`mlops alert-rules --model {ctx.model}` and the policy above).")
        shown = rules.assign(
            rule=rules["kind"].map(lambda k: RULE_WORDS.get(k, tables.words(k))),
            watches=rules["target"].map(lambda t: tables.words(t) if isinstance(t, str) and t else "the model"),
            limit=[(f"{t:.0%}" if k == "drift_share_above" else tables.number(t)) if pd.notna(t) else tables.MISSING
                   for k, t in zip(rules["kind"], rules["threshold"], strict=True)])
        tables.show(shown, [Column("rule", "Rule"), Column("watches", "Watches"), Column("limit", "Threshold"),
                            Column("severity", "Severity"), Column("enabled", "On", "yes_no")])
    else:
        st.caption("No rules yet: the first monitor run creates the defaults.")

# --- incidents ------------------------------------------------------------------------------

STATUS_CHOICES = {"open": "Open", "acknowledged": "Acknowledged", "snoozed": "Snoozed", "resolved": "Resolved",
                  "all": "All"}


def _incident_rows(frame: pd.DataFrame, show: str) -> pd.DataFrame:
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    snoozed = frame["snoozed_until"].notna() & (pd.to_datetime(frame["snoozed_until"]) > now)
    if show == "open":
        return frame[(frame["status"] == "open") & ~snoozed]
    if show == "snoozed":
        return frame[snoozed & (frame["status"] != "resolved")]
    if show in ("acknowledged", "resolved"):
        return frame[frame["status"] == show]
    return frame


def _incident(row, can_act: bool) -> None:
    with st.container(border=True):
        c1, c2, c3 = st.columns([5, 3, 2], vertical_alignment="center")
        status = row["status"]
        until = row.get("snoozed_until")
        if pd.notna(until) and pd.Timestamp(until) > pd.Timestamp.now(tz="UTC").tz_localize(None):
            status = f"snoozed until {tables.when(until)}"
        elif status == "acknowledged":
            status = f"acknowledged by {row['acknowledged_by']}"
        elif status == "resolved":
            status = f"resolved by {row['resolved_by']}"
        colour = {"critical": "red", "warning": "orange"}.get(str(row["severity"]), "gray")
        c1.markdown(f":{colour}-badge[{widgets.md(row['severity'])}] **{widgets.md(row['title'] or row['kind'])}**")
        c1.caption(widgets.md(row["message"]))
        seen = (f"Seen in {int(row['windows'] or 1)} window(s): {tables.when(row['first_seen'])} to "
                f"{tables.when(row['last_seen'])}")
        reopened = f" · reopened {int(row['reopened'])}×" if row.get("reopened") else ""
        c2.markdown(f"Now: {widgets.md(row['current_text'] or tables.MISSING)}")
        c2.caption(f"{seen}{reopened} · {widgets.md(status)}")
        if not can_act:
            return
        alert_id = int(row["id"])
        b1, b2, b3 = c3.columns(3)
        if row["status"] == "open" and b1.button("Ack", key=f"ack_{alert_id}", help="Acknowledge: someone is on it",
                                                 icon=":material/done:"):
            _act(lambda: actions.acknowledge(ctx.db, alert_id), "Acknowledged")
        if row["status"] != "resolved" and b2.button("Resolve", key=f"resolve_{alert_id}",
                                                     help="Resolve: a later window in which it fires reopens it",
                                                     icon=":material/check_circle:"):
            _act(lambda: actions.resolve(ctx.db, alert_id), "Resolved")
        if row["status"] != "resolved" and b3.button("Snooze", key=f"snooze_{alert_id}",
                                                     help=f"Hide it for {SNOOZE_HOURS} hours (no notifications)",
                                                     icon=":material/snooze:"):
            _act(lambda: actions.snooze(ctx.db, alert_id, SNOOZE_HOURS), f"Snoozed for {SNOOZE_HOURS} hours:")


def _act(step, word: str) -> None:
    try:
        step()
    except MlopsError as exc:
        st.error(f"{word.rstrip(':')} failed: {widgets.md(exc)}")
        return
    widgets.flash("success", f"{word} the incident.")
    st.rerun()


with widgets.guard("Incidents"):
    st.subheader("Incidents")
    st.caption("One incident per rule and what it watches; later windows update it (last seen, windows, current "
               "value) instead of adding alerts. Acknowledge: someone is on it. Resolve: done (it reopens if it fires "
               f"again). Snooze: hidden for {SNOOZE_HOURS} hours (at most {MAX_SNOOZE.days} days from the command "
               "line). Each step is in the audit log.")
    show = st.segmented_control("Show", list(STATUS_CHOICES), format_func=STATUS_CHOICES.get, default="open",
                                key=f"incidents_show_{ctx.model}") or "open"
    every = data.alerts(ctx.db, ctx.model)
    picked = _incident_rows(every, show) if len(every) else every
    can_act = auth.can("operator")
    if len(picked) == 0:
        st.caption({"open": "No open incident."}.get(show, "No incident here."))
    for _, row in picked.head(25).iterrows():
        _incident(row, can_act)
    if len(picked) > 25:
        st.caption(f"The 25 most recently seen of {len(picked)}; `mlops alerts --model {ctx.model} --all` lists all.")
    if len(picked) and not can_act:
        auth.read_only_note("acknowledging, resolving or snoozing incidents")

# --- delivery ---------------------------------------------------------------------------------

with widgets.guard("Notifications"):
    st.subheader("Notifications")
    deliveries = data.webhook_deliveries(ctx.db, ctx.model)
    failed = deliveries[deliveries["status"] == "failed"] if len(deliveries) else deliveries
    if len(failed):
        st.error(f"{len(failed)} incident notification(s) could not be delivered; the last error: "
                 f"{widgets.md(failed['last_error'].iloc[0])} ({widgets.md(failed['url'].iloc[0])}). Check the "
                 "webhook, then send them again.")
    if auth.can("operator"):
        hooks = actions.webhooks(ctx.db, ctx.model)
        if hooks:
            from mlops_core.monitoring.webhooks import shown_url

            st.caption("New and reopened incidents are posted to: " + "; ".join(
                f"{widgets.md(shown_url(h.url))} ({'every model' if h.model is None else 'this model'}, from "
                f"{h.min_severity} up{'' if h.enabled else ', off'})" for h in hooks) + ".")
            if len(failed) and st.button("Send the failed notifications again", key="retry_deliveries"):
                outcomes = actions.retry_deliveries(ctx.db)
                sent = sum(o.delivered for o in outcomes)
                widgets.flash("success" if sent == len(outcomes) else "warning",
                              f"{sent} of {len(outcomes)} notification(s) delivered.")
                st.rerun()
        else:
            st.caption("No webhook receives this model's incidents. An admin adds one with "
                       f"`mlops webhook add --url URL --model {ctx.model}` (Slack-compatible JSON).")
    if len(deliveries):
        with st.expander(f"Recent notifications ({len(deliveries)})"):
            tables.show(deliveries, [Column("created_at", "Queued", "time"), Column("title", "Incident"),
                                     Column("event", "Event"), Column("url", "Webhook"), Column("status", "Status"),
                                     Column("attempts", "Attempts", "int"), Column("http_status", "HTTP", "int"),
                                     Column("last_error", "Error"), Column("finished_at", "Finished", "time")])

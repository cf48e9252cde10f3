"""A/B test: the champion against the challenger of the current deployment, per arm over time, the test, the
planned sample size, the recommendation, and acting on it."""
import streamlit as st

from mlops_core.errors import MlopsError
from ui import actions, auth, charts, context, data, frame, widgets

frame.enter()
st.title("A/B test")
ctx = context.require()

status = None
with widgets.guard("The A/B test"):
    status = data.ab_status(ctx.db, ctx.model, ctx.window)
if status is None:
    st.stop()

config = status.config
st.caption(f"{ctx.model} · since the deployment started · one point per {ctx.window}.")
if status.test is None:
    st.info(status.recommendation)
else:
    ch_arm = "shadow" if config.mode == "shadow" else "challenger"
    share = (f"{status.share_now:.0%} of the requests" if config.mode != "shadow"
             else "every request in shadow (not returned)")
    st.markdown(f"**Champion** v{status.production} against **challenger** v{config.challenger} ({config.mode}: "
                f"{share}), since {config.started_at:%Y-%m-%d %H:%M} UTC.")
    t, h = status.test, status.horizon
    cols = st.columns(4)
    metric = t.metric.upper() if t.metric == "mae" else t.metric
    cols[0].metric(f"champion {metric}", "—" if t.champion_value is None else f"{t.champion_value:.4f}",
                   help=f"{t.n_champion:,} labelled predictions")
    cols[1].metric(f"{ch_arm} {metric}", "—" if t.challenger_value is None else f"{t.challenger_value:.4f}",
                   None if t.difference is None else f"{t.difference:+.4f}",
                   delta_color="normal" if t.metric == "accuracy" else "inverse",
                   help=f"{t.n_challenger:,} labelled predictions")
    cols[2].metric("p-value", "—" if t.p_value is None else f"{t.p_value:.3g}", help=t.test)
    cols[3].metric("still needed per arm", "—" if status.remaining is None else f"{status.remaining:,}",
                   help=f"Fixed horizon: {h.basis}." if h else None)
    if t.ci_low is not None:
        st.caption(f"Difference {t.difference:+.4f}, 95% interval [{t.ci_low:+.4f}, {t.ci_high:+.4f}] ({t.test}).")
    if h is not None and h.needed:
        st.progress(min(1.0, min(t.n_champion, t.n_challenger) / h.needed),
                    text=f"{min(t.n_champion, t.n_challenger):,} of {h.needed:,} labelled predictions per arm")
    (st.success if status.decided and status.winner == "challenger" else st.info)(status.recommendation)

    st.subheader("Per arm over time")
    widgets.chart(charts.arms_over_time(status.arms), key="ab_arms")
    with st.expander("Numbers per window and arm"):
        st.dataframe(status.arms, hide_index=True)

    st.subheader("Act")
    st.caption("Peeking guard: the sample size per arm is fixed before the test from the champion's holdout "
               "metrics; the winner is named only once both arms reach it. Promoting checks the challenger's "
               "artifact and gate like any promotion, and the deployment goes back to champion only; both are "
               "recorded in the audit log.")
    if not auth.can("operator"):
        auth.read_only_note("ending the test or promoting its winner")
    else:
        label = (f"Promote the winner (v{config.challenger})" if status.winner == "challenger"
                 else "End the test, keep the champion" if status.winner == "champion" else "Promote the winner")
        reason = st.text_input("Reason (recorded in the audit log)", key="ab_reason")
        if st.button(label, key="ab_promote", type="primary", disabled=not status.decided):
            try:
                done = actions.promote_winner(ctx.db, ctx.model, reason)
            except MlopsError as exc:
                st.error(f"Refused: {exc}")
            else:
                text = (f"{ctx.model}: v{done.promotion.to_version} won the A/B test and is now in production."
                        if done.promotion else f"{ctx.model}: the A/B test ended; the champion stays.")
                widgets.flash("success", text)
                st.rerun()
        if not status.decided:
            st.caption("The button unlocks when the test is decided.")

st.subheader("Deployment history")
with widgets.guard("Deployment history"):
    hist = data.deployment_configs(ctx.db, ctx.model)
    if len(hist) == 0:
        st.caption("Never configured: the production version answers every request. Set a split, shadow or canary "
                   "on the Versions page or with `mlops deployment set`.")
    else:
        st.dataframe(widgets.pick(hist.iloc[::-1], ["started_at", "ended_at", "mode", "challenger", "weight", "actor",
                                                    "reason", "end_reason"]), hide_index=True)

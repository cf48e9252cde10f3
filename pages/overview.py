"""Overview: per model the production version, its health, headline figures and what happened last."""
import streamlit as st

from ui import context, data, frame, serving, widgets

frame.enter()
st.title("MLOps control room")
ctx = context.require()
st.caption("Every registered model at a glance: last 7 days against the 7 before.")


def headline(model: str) -> None:
    s = data.summary(ctx.db, model, 7)
    cols = st.columns(4)
    metric = s.get("metric")
    value, previous = s.get("value"), s.get("previous")
    higher_is_better = not s.get("lower_is_better", False)
    cols[0].metric(
        (metric or "metric").replace("_", " "),
        "—" if value is None else f"{value:.3f}",
        None if value is None or previous is None else f"{value - previous:+.3f}",
        delta_color="normal" if higher_is_better else "inverse",
        help="Headline metric over the labelled predictions of the last 7 days (up to the newest prediction); "
             "the delta compares with the 7 days before.",
    )
    share, share_prev = s.get("drift_share"), s.get("drift_share_previous")
    cols[1].metric(
        "drifted features", "—" if share is None else f"{share:.0%}",
        None if share is None or share_prev is None else f"{(share - share_prev) * 100:+.0f} pts",
        delta_color="inverse", help="Share of features whose latest drift result is over its threshold.",
    )
    traffic, traffic_prev = s.get("predictions"), s.get("previous_predictions")
    cols[2].metric(
        "predictions (7 d)", "—" if traffic is None else f"{traffic:,}",
        None if traffic is None or not traffic_prev else f"{(traffic - traffic_prev) / traffic_prev:+.0%}",
        delta_color="off",
    )
    cov = s.get("label_coverage")
    cols[3].metric(
        "label coverage", "—" if cov is None else f"{cov:.0%}",
        help="Share of the last 7 days' predictions whose label has arrived (labels come 1–14 days late).",
    )


for model in ctx.models:
    with st.container(border=True):
        info = data.model_info(ctx.db, model)
        prod = data.production(ctx.db, model)
        top = st.columns([3, 1])
        top[0].subheader(f"{model}")
        top[0].caption(f"{info.task} · target `{info.target}` · {len(info.features)} features")
        with top[0]:
            serving.deployment_line(ctx.db, model)
        with top[1]:
            st.markdown(f"**Production: v{prod}**" if prod is not None else "**No production version**")
            open_alerts = None
            with widgets.guard(f"Alerts of {model}"):
                open_alerts = data.alerts(ctx.db, model, True)
            widgets.health_badge(widgets.health_level(open_alerts))
        with widgets.guard(f"Headline figures of {model}"):
            headline(model)
        left, right = st.columns(2)
        with left:
            st.markdown("**Open alerts**" + (f" ({len(open_alerts)})" if open_alerts is not None else ""))
            if open_alerts is None:
                st.caption("Alerts are not available.")
            elif len(open_alerts) == 0:
                st.caption("No open alerts.")
            else:
                st.dataframe(widgets.pick(open_alerts, ["severity", "message", "kind", "raised_at"]), hide_index=True,
                             height=min(36 * (len(open_alerts) + 1) + 4, 220))
        with right:
            st.markdown("**Latest actions**")
            with widgets.guard(f"Audit log of {model}"):
                log = data.audit(ctx.db, model)
                if len(log) == 0:
                    st.caption("No actions recorded.")
                else:
                    st.dataframe(widgets.pick(log.head(5), ["occurred_at", "action", "to_version", "actor",
                                                           "reason"]), hide_index=True)

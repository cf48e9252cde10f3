"""Drift: feature × window heatmap, features ranked, one feature's distributions, prediction/target drift, share."""
import streamlit as st

from ui import charts
from ui import context, data, frame, widgets

#: Pseudo-features of the stored reference: the model's output and the target.
PSEUDO = {"__prediction__": "prediction", "__score__": "score", "__target__": "target (labels)"}

frame.enter()
st.title("Drift")
ctx = context.require()
st.caption(f"{ctx.model} · {ctx.first_day} to {ctx.last_day} · per {ctx.window}, against the training data of "
           "the production version. Score = statistic ÷ threshold: above 1 is drift.")

stored = None
with widgets.guard("Stored drift results"):
    stored = data.drift_stored(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end)

if stored is not None:
    features = stored[~stored["feature"].isin(PSEUDO)] if len(stored) else stored
    if len(stored) == 0:
        st.info(f"No drift results stored for {ctx.model} in this range — compute them with "
                f"`python -m mlops_core drift --model {ctx.model} --window {ctx.window}`, or widen the date range.")
    widgets.chart(charts.drift_heatmap(features), key="drift_heatmap")
    left, right = st.columns(2)
    with left:
        widgets.chart(charts.drift_ranking(features), key="drift_ranking")
    with right:
        with widgets.guard("Share of drifted features"):
            share = data.drift_share(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end)
            widgets.chart(charts.drift_share(share), key="drift_share")

    st.subheader("One feature: reference against current")
    info = data.model_info(ctx.db, ctx.model)
    ranked = list(dict.fromkeys(features.sort_values("statistic", ascending=False)["feature"])) if len(features) else []
    options = ranked + [f for f in info.feature_names if f not in ranked]
    feature = st.selectbox("Feature (most drifted first)", options, key="drift_feature")
    with widgets.guard(f"Distribution of {feature}"):
        dist = data.drift_distribution(ctx.db, ctx.model, feature, ctx.start, ctx.end)
        widgets.chart(charts.distribution_overlay(dist, feature), key="drift_distribution")
    if len(features):
        with st.expander(f"{feature}: statistic per window"):
            st.dataframe(features[features["feature"] == feature], hide_index=True)

    st.subheader("Prediction and target drift")
    outputs = stored[stored["feature"].isin(PSEUDO)] if len(stored) else stored
    if len(outputs) == 0:
        st.caption("No stored drift of the predictions or the target in this range.")
    else:
        widgets.chart(charts.drift_series(outputs, PSEUDO), key="drift_outputs")

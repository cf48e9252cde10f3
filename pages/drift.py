"""Drift: feature × window heatmap, features ranked on the latest full window, one feature's distributions,
prediction and target drift, the share of drifted features."""
import pandas as pd
import streamlit as st

from mlops_core.entities import PSEUDO_FEATURE_LABELS, PSEUDO_FEATURES
from mlops_core.monitoring.alerts import DEFAULT_DRIFT_SHARE
from mlops_core.monitoring.drift import registry as drift_methods
from ui import charts, context, data, frame, tables, widgets
from ui.tables import Column

frame.enter()
st.title("Drift")
ctx = context.require()

stored = None
with widgets.guard("Stored drift results"):
    stored = data.drift_stored(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end)

if stored is not None:
    features = stored[~stored["feature"].isin(PSEUDO_FEATURES)] if len(stored) else stored
    full = features[~features["partial"].astype(bool)] if len(features) and "partial" in features else features
    latest = full["window_start"].max() if len(full) else None
    in_progress = features.loc[features["partial"].astype(bool), "window_start"].max() \
        if len(features) and "partial" in features and features["partial"].any() else None
    when = (lambda t: f"{pd.Timestamp(t):%Y-%m-%d %H:00} UTC") if ctx.window == "hour" else \
        (lambda t: f"{pd.Timestamp(t):%-d %b}")
    note = f"Latest full {ctx.window}: {when(latest)}." if latest is not None else ""
    if in_progress is not None:
        note += f" The {ctx.window} in progress ({when(in_progress)}) is outlined in the heatmap and left out of the " \
                "ranking: its few predictions say little yet."
    st.caption(f"{ctx.model} · {ctx.first_day:%-d %b %Y} to {ctx.last_day:%-d %b %Y} · per {ctx.window}, against the "
               f"training data of the production version. Score = statistic ÷ threshold: above 1 is drift. {note}")
    if len(stored) == 0:
        st.info(f"No drift results stored for {ctx.model} in this range — compute them with "
                f"`python -m mlops_core drift --model {ctx.model} --window {ctx.window}`, or widen the date range.")
    widgets.chart(charts.drift_heatmap(features), key="drift_heatmap")
    left, right = st.columns(2)
    with left:
        title = f"Features ranked by drift on {when(latest)} (latest full {ctx.window})" if latest is not None \
            else "Features ranked by drift"
        widgets.chart(charts.drift_ranking(features, title=title), key="drift_ranking")
    with right, widgets.guard("Share of drifted features"):
        share = data.drift_share(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end)
        rules = data.alert_rules(ctx.db, ctx.model)
        rule = rules[(rules["kind"] == "drift_share_above") & rules["enabled"]] if len(rules) else rules
        threshold = float(rule["threshold"].iloc[0]) if len(rule) else DEFAULT_DRIFT_SHARE
        widgets.chart(charts.drift_share(share, threshold=threshold), key="drift_share")

    st.subheader("One feature: reference against current")
    info = data.model_info(ctx.db, ctx.model)
    newest = full[full["window_start"] == latest] if latest is not None else full
    scored = newest.assign(score=newest["statistic"] / newest["threshold"].where(newest["threshold"] > 0)) \
        if len(newest) else newest
    ranked = list(dict.fromkeys(scored.sort_values("score", ascending=False)["feature"])) if len(scored) else []
    options = ranked + [f for f in info.feature_names if f not in ranked]
    feature = st.selectbox("Feature (most drifted on the latest full window first)", options, key="drift_feature")
    with widgets.guard(f"Distribution of {feature}"):
        dist = data.drift_distribution(ctx.db, ctx.model, feature, ctx.start, ctx.end)
        widgets.chart(charts.distribution_overlay(dist, feature), key="drift_distribution")
    if len(features):
        with st.expander(f"{feature}: statistic per {ctx.window}"):
            rows = features[features["feature"] == feature].sort_values("window_start", ascending=False)
            tables.show(rows.assign(
                method=rows["method"].map(lambda m: drift_methods.METHODS[m].label if m in drift_methods.METHODS
                                          else m),
                in_progress=rows["partial"] if "partial" in rows else False), [
                Column("window_start", "Window starting", "time" if ctx.window == "hour" else "day"),
                Column("method", "Method"), Column("statistic", "Statistic", "number"),
                Column("threshold", "Threshold", "number"), Column("p_value", "p-value", "p_value"),
                Column("drifted", "Drift", "yes_no"), Column("n_current", "Predictions", "int"),
                Column("in_progress", "In progress", "yes_no")])

    st.subheader("Prediction and target drift")
    outputs = stored[stored["feature"].isin(PSEUDO_FEATURES)] if len(stored) else stored
    if len(outputs) == 0:
        st.caption("No stored drift of the predictions or the target in this range.")
    else:
        widgets.chart(charts.drift_series(outputs, PSEUDO_FEATURE_LABELS), key="drift_outputs")

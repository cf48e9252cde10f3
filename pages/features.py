"""Features: each feature view's freshness, rows over time, null rates, drift per feature, and who uses it."""
import pandas as pd
import streamlit as st

from ui import charts, context, data, frame, widgets

frame.enter()
st.title("Features")
ctx = context.require()
st.caption("The feature store's views: how current each one is (its newest event time against its limit), how many "
           "rows arrive, how complete they are, whether their distribution moved, and which models take features "
           "from them.")

views = None
with widgets.guard("Feature views"):
    views = data.feature_views(ctx.db)

if views is not None and len(views) == 0:
    st.info("No feature view is defined yet. Define an entity and a view in a TOML file, then "
            "`python -m mlops_core features define features.toml`, `features ingest VIEW FILE` and "
            "`features materialize` (see docs/features.md).")
elif views is not None:
    stale = views[views["stale"]]
    for r in stale.itertuples():
        age = "it has no rows" if pd.isna(r.newest_event_ts) else (
            f"newest event {r.newest_event_ts:%Y-%m-%d %H:%M} UTC, {r.age_h:.1f} h ago; limit {r.stale_after}")
        users = f" Models served from it: {r.used_by}." if r.used_by else ""
        st.warning(f"**{r.view}** is stale: {age}.{users} Check the source that feeds it.")
    if len(stale) == 0:
        st.success("Every feature view is fresh.")

    with widgets.guard("Freshness"):
        fresh = data.feature_freshness(ctx.db)
        table = pd.DataFrame([{"view": f.view, "age_h": f.age_s / 3600 if f.age_s is not None else None,
                               "limit_h": f.stale_after_s / 3600 if f.stale_after_s else None, "stale": f.stale}
                              for f in fresh])
        widgets.chart(charts.feature_freshness(table), key="features_freshness")
    st.dataframe(widgets.pick(views, ["view", "version", "entity", "keys", "rows", "newest_event_ts", "age_h",
                                      "stale", "stale_after", "ttl", "materialized_at", "used_by", "owner"]),
                 hide_index=True,
                 column_config={"age_h": st.column_config.NumberColumn("age (h)", format="%.1f"),
                                "newest_event_ts": st.column_config.DatetimeColumn("newest event (UTC)"),
                                "materialized_at": st.column_config.DatetimeColumn("materialized (UTC)")})

    names = views["view"].tolist()
    view = st.selectbox("Feature view", names, key="feature_view")
    with widgets.guard(f"The view {view}"):
        definition = data.feature_view(ctx.db, view)
        row = views[views["view"] == view].iloc[0]
        cols = st.columns(4)
        cols[0].metric("rows", f"{int(row['rows']):,}")
        cols[1].metric("newest event", "—" if pd.isna(row["newest_event_ts"]) else
                       f"{row['newest_event_ts']:%Y-%m-%d %H:%M}")
        cols[2].metric("age", "—" if pd.isna(row["age_h"]) else f"{row['age_h']:.1f} h",
                       help=f"Stale after {row['stale_after']}; values serve for {row['ttl']} (TTL).")
        cols[3].metric("used by", row["used_by"] or "no model")
        st.caption(f"{definition.description or ''} Entity `{definition.entity}` "
                   f"(key {', '.join(definition.key_names)}), event time `{definition.timestamp}`, "
                   f"version {definition.version}, owner {definition.owner or '—'}.")

    left, right = st.columns(2)
    with left:
        with widgets.guard("Rows per day"):
            widgets.chart(charts.rows_per_day(data.feature_rows_per_day(ctx.db, view)), key="features_rows")
    with right:
        with widgets.guard("Null rates"):
            stats = data.feature_stats(ctx.db, view, ctx.window)
            widgets.chart(charts.null_rates(stats, title="Null rate per feature"), key="features_nulls")

    with widgets.guard("Drift per feature"):
        drift = data.feature_drift(ctx.db, view)
        widgets.chart(charts.feature_drift(drift), key="features_drift")
        st.caption("Each feature's values of the last 7 days before the newest event time against all earlier ones "
                   "(Wasserstein distance for numbers, Jensen–Shannon for categories; see the Drift page).")

    st.subheader("Definition")
    with widgets.guard("Definition"):
        definition = data.feature_view(ctx.db, view)
        st.dataframe(pd.DataFrame([{"feature": f.name, "type": f.dtype, "description": f.description}
                                   for f in definition.features]), hide_index=True)
    with widgets.guard("Batches"):
        batches = data.feature_batches(ctx.db, view)
        with st.expander(f"{len(batches)} ingested batches"):
            st.dataframe(batches, hide_index=True)

"""Data quality: validation anomalies over time, null rates, the schema, training–serving skew."""
import pandas as pd
import streamlit as st

from ui import charts
from ui import context, data, frame, widgets

frame.enter()
st.title("Data quality")
ctx = context.require()
info = data.model_info(ctx.db, ctx.model)
st.caption(f"{ctx.model} · {ctx.first_day} to {ctx.last_day}. Every ingested batch is validated against the schema "
           "below; a batch with critical anomalies is refused whole.")

with widgets.guard("Validation anomalies"):
    anomalies = data.validation_anomalies(ctx.db, ctx.model, ctx.start, ctx.end)
    widgets.chart(charts.anomalies_over_time(anomalies), key="dq_anomalies")
    if len(anomalies):
        with st.expander(f"{len(anomalies)} anomalies"):
            st.dataframe(anomalies, hide_index=True)

with widgets.guard("Validation reports"):
    reports = data.validation_reports(ctx.db, ctx.model, ctx.start, ctx.end)
    st.subheader("Validated batches")
    if len(reports) == 0:
        st.caption("No batch was validated in this range.")
    else:
        st.dataframe(reports, hide_index=True, height=240)

with widgets.guard("Null rates"):
    nulls = data.null_rates(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end)
    widgets.chart(charts.null_rates(nulls), key="dq_nulls")

left, right = st.columns(2)
with left:
    st.subheader("Schema")
    st.dataframe(pd.DataFrame([f.to_dict() for f in info.features]), hide_index=True,
                 column_config={"categories": st.column_config.ListColumn("categories"),
                                "null_rate": st.column_config.NumberColumn("training null rate", format="percent")})
with right:
    st.subheader("Training–serving skew")
    st.caption("Each feature's serving distribution in the selected range against its training distribution.")
    with widgets.guard("Training–serving skew"):
        skew = data.skew(ctx.db, ctx.model, ctx.start, ctx.end)
        if len(skew) == 0:
            st.caption("No serving data in this range.")
        else:
            st.dataframe(skew, hide_index=True)

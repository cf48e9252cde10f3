"""Data quality: validation anomalies over time (dated by the data they describe), validated batches, null rates,
the schema, training–serving skew."""
import pandas as pd
import streamlit as st

from mlops_core.monitoring.drift import registry as drift_methods
from ui import charts, context, data, frame, tables, widgets
from ui.tables import Column

frame.enter()
st.title("Data quality")
ctx = context.require()
info = data.model_info(ctx.db, ctx.model)
st.caption(f"{ctx.model} · {ctx.first_day:%-d %b %Y} to {ctx.last_day:%-d %b %Y}. Every ingested batch is validated "
           "against the schema below; a batch with critical anomalies is refused whole. Anomalies are dated by the "
           "time of the predictions they concern, not by when they were checked.")

with widgets.guard("Validation anomalies"):
    anomalies = data.validation_anomalies(ctx.db, ctx.model, ctx.start, ctx.end)
    widgets.chart(charts.anomalies_over_time(anomalies), key="dq_anomalies")
    if len(anomalies):
        with st.expander(f"{len(anomalies)} anomalies"):
            tables.show(anomalies.iloc[::-1], [
                Column("at", "Data from", "time"), Column("feature", "Feature", "words"),
                Column("kind", "Kind", "words"), Column("severity", "Severity"), Column("count", "Rows", "int"),
                Column("share", "Share of rows", "percent"), Column("detail", "Detail"),
                Column("source", "Checked in"), Column("checked_at", "Checked at", "time")])

with widgets.guard("Validation reports"):
    reports = data.validation_reports(ctx.db, ctx.model, ctx.start, ctx.end)
    st.subheader("Validated batches")
    tables.show(reports.iloc[::-1], [
        Column("window_start", "Data from", "time"), Column("window_end", "Data to", "time"),
        Column("source", "Batch or window"), Column("rows", "Rows", "int"), Column("status", "Status"),
        Column("anomalies", "Anomalies", "int"), Column("summary", "Summary"),
        Column("checked_at", "Checked at", "time")], height=240, empty="No batch was validated in this range.")

with widgets.guard("Null rates"):
    nulls = data.null_rates(ctx.db, ctx.model, ctx.window, ctx.start, ctx.end)
    widgets.chart(charts.null_rates(nulls), key="dq_nulls")

left, right = st.columns(2)
with left:
    st.subheader("Schema")
    schema = pd.DataFrame([f.to_dict() for f in info.features])
    schema["categories"] = [", ".join(c) if c else tables.MISSING for c in schema["categories"]]
    tables.show(schema, [Column("name", "Feature"), Column("kind", "Kind"), Column("dtype", "Type"),
                         Column("min", "Training minimum", "number", 4), Column("max", "Training maximum", "number", 4),
                         Column("categories", "Categories"),
                         Column("null_rate", "Training null rate", "percent")])
with right:
    st.subheader("Training–serving skew")
    st.caption("Each feature's serving distribution in the selected range against its training distribution.")
    with widgets.guard("Training–serving skew"):
        skew = data.skew(ctx.db, ctx.model, ctx.start, ctx.end)
        if len(skew):
            skew = skew.assign(method=skew["method"].map(
                lambda m: drift_methods.METHODS[m].label if m in drift_methods.METHODS else m))
        tables.show(skew, [Column("feature", "Feature"), Column("method", "Method"),
                           Column("statistic", "Statistic", "number"), Column("threshold", "Threshold", "number"),
                           Column("p_value", "p-value", "p_value"), Column("drifted", "Skewed", "yes_no")],
                    empty="No serving data in this range.")

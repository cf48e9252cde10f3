"""Charts of the dashboard: pure functions from a DataFrame to a plotly Figure.

No Streamlit here (the pages draw these figures; tests build them without a server).
Every figure has a transparent background and no fixed text colour, so it reads in the
light and the dark theme alike (Streamlit applies the theme's fonts and grid colours).
Series colours come from the Okabe–Ito palette, distinguishable with the common forms of
colour blindness and of medium lightness, so they show on white and on near-black.

An empty frame gives a figure with a short "no data" note instead of raising: a page
with nothing to show still draws its frame. Column names follow the core's frames
(``window_start``, ``version``, metric names in snake_case, ``feature``, ``statistic``,
``threshold``, ``drifted``); optional columns are used when present.
"""
from __future__ import annotations

import json
import math
from typing import Iterable

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mlops_core import metrics
from mlops_core.monitoring.drift import registry as drift_methods

#: Okabe & Ito (2008), "Color Universal Design", without black.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#999999")
#: Drift score colours: blue (far under the threshold), pale yellow (at it), red (twice over).
SEVERITY_SCALE = [[0.0, "#2c7bb6"], [0.5, "#ffffbf"], [1.0, "#d7191c"]]
#: Marker colours of registry actions on time charts.
ACTION_COLOURS = {"promote": "#009E73", "rollback": "#D55E00", "retrain": "#0072B2", "register": "#999999",
                  "register_version": "#56B4E9"}


#: Marker colour of runs with anomalies (Okabe–Ito vermillion).
ANOMALY_COLOUR = "#D55E00"


def colour(i: int) -> str:
    """The i-th series colour (cycles)."""
    return PALETTE[i % len(PALETTE)]


def _base(fig: go.Figure, title: str | None = None, height: int = 360) -> go.Figure:
    fig.update_layout(
        title=title, height=height, margin=dict(l=10, r=10, t=50 if title else 20, b=10),
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1), hovermode="x unified",
    )
    return fig


def empty(message: str = "No data in the selected range", title: str | None = None, height: int = 240) -> go.Figure:
    """A figure that says there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font=dict(size=14))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _base(fig, title, height)


def label(name: str) -> str:
    """Human label of a metric (from the catalogue), a drift method (from its registry) or a column name."""
    if name in metrics.CATALOGUE:
        return metrics.label(name)
    if name in drift_methods.METHODS:
        return drift_methods.METHODS[name].label
    return name.replace("_", " ").capitalize()


def _band_columns(frame: pd.DataFrame, metric: str) -> tuple[str, str] | None:
    for low, high in ((f"{metric}_low", f"{metric}_high"), (f"{metric}_ci_low", f"{metric}_ci_high"),
                      ("ci_low", "ci_high")):
        if low in frame.columns and high in frame.columns:
            # a generic ci_low/ci_high belongs to the metric named in the ``metric`` column (the headline)
            if low == "ci_low" and "metric" in frame.columns and not (frame["metric"] == metric).any():
                continue
            return low, high
    return None


def add_action_markers(fig: go.Figure, actions: pd.DataFrame | None, row: int | None = None) -> go.Figure:
    """Vertical dotted lines for registry actions (columns ``at`` or ``occurred_at``, ``action``, optional
    ``to_version``), each labelled with its action and version."""
    if actions is None or len(actions) == 0:
        return fig
    when = "at" if "at" in actions.columns else "occurred_at"
    for _, a in actions.iterrows():
        act = str(a.get("action", ""))
        version = None if pd.isna(a.get("to_version")) else int(a["to_version"])
        text = {"register_version": "new", "register": "registered"}.get(act, act)
        text = text if version is None else f"{text} v{version}"
        x = pd.Timestamp(a[when])
        kwargs = dict(row=row, col=1) if row else {}
        fig.add_vline(x=x, line_dash="dot", line_width=1.5, line_color=ACTION_COLOURS.get(act, "#999999"), **kwargs)
        fig.add_annotation(x=x, y=1, yref="paper", text=text, showarrow=False, textangle=-90, xanchor="right",
                           yanchor="top", font=dict(size=10, color=ACTION_COLOURS.get(act, "#999999")))
    return fig


def metric_over_time(frame: pd.DataFrame, metric: str, actions: pd.DataFrame | None = None,
                     title: str | None = None) -> go.Figure:
    """One line per version of ``metric`` by ``window_start``, its confidence band when the frame has one
    (``<metric>_low``/``<metric>_high`` or ``ci_low``/``ci_high``), label coverage (``n_labelled / n``) as bars
    underneath, and registry actions as vertical markers."""
    if frame is None or len(frame) == 0 or metric not in frame.columns or frame[metric].notna().sum() == 0:
        return empty(f"No labelled predictions for {label(metric)} in this range", title)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.04)
    band = _band_columns(frame, metric)
    versions = sorted(frame["version"].dropna().unique()) if "version" in frame.columns else [None]
    for i, v in enumerate(versions):
        part = frame if v is None else frame[frame["version"] == v]
        part = part.sort_values("window_start")
        name = "all" if v is None else f"v{int(v)}"
        c = colour(i)
        if band:
            # upper edge (invisible), then the lower edge filled up to it; windows without labels leave a gap
            fig.add_trace(go.Scatter(x=part["window_start"], y=part[band[1]], mode="lines", line=dict(width=0),
                                     hoverinfo="skip", showlegend=False, legendgroup=name), row=1, col=1)
            fig.add_trace(go.Scatter(x=part["window_start"], y=part[band[0]], mode="lines", line=dict(width=0),
                                     fill="tonexty", fillcolor=_alpha(c, 0.18), hoverinfo="skip", showlegend=False,
                                     legendgroup=name, name=f"{name} 95% interval"), row=1, col=1)
        fig.add_trace(go.Scatter(x=part["window_start"], y=part[metric], mode="lines+markers", name=name,
                                 line=dict(color=c, width=2), marker=dict(size=4), legendgroup=name), row=1, col=1)
        if "n" in part.columns and "n_labelled" in part.columns:
            cov = (part["n_labelled"] / part["n"].where(part["n"] > 0)).fillna(0)
            fig.add_trace(go.Bar(x=part["window_start"], y=cov, name=f"{name} label coverage", marker_color=c,
                                 opacity=0.6, showlegend=False, legendgroup=name,
                                 hovertemplate="%{y:.0%} labelled"), row=2, col=1)
    fig.update_yaxes(title_text=label(metric), row=1, col=1)
    fig.update_yaxes(title_text="labelled", tickformat=".0%", range=[0, 1], row=2, col=1)
    add_action_markers(fig, actions)
    fig.update_layout(barmode="group")
    return _base(fig, title, 440)


def _alpha(hex_colour: str, a: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{a})"


def confusion_matrix(frame: pd.DataFrame, title: str | None = "Confusion matrix") -> go.Figure:
    """Heatmap of counts from a long frame (``actual``, ``predicted``, ``count``); rows actual, columns predicted."""
    if frame is None or len(frame) == 0:
        return empty("No labelled predictions in this window", title)
    a_col = "actual" if "actual" in frame.columns else "label"
    p_col = "predicted" if "predicted" in frame.columns else "prediction"
    table = frame.pivot_table(index=a_col, columns=p_col, values="count", aggfunc="sum", fill_value=0)
    classes = sorted(set(map(str, table.index)) | set(map(str, table.columns)))
    table.index, table.columns = table.index.map(str), table.columns.map(str)
    table = table.reindex(index=classes, columns=classes, fill_value=0)
    total = table.values.sum()
    text = [[f"{int(v):,}<br>{v / total:.1%}" if total else "0" for v in row] for row in table.values]
    fig = go.Figure(go.Heatmap(z=table.values, x=[f"pred {c}" for c in classes], y=[f"true {c}" for c in classes],
                               text=text, texttemplate="%{text}", colorscale="Blues", showscale=False,
                               hovertemplate="%{y}, %{x}: %{z}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(hovermode="closest")
    return _base(fig, title, 360)


def residuals(frame: pd.DataFrame, title: str | None = "Residuals (actual − predicted)") -> go.Figure:
    """Histogram of residuals: from raw values (``residual``) or from bins (``bin_start``, ``bin_end``, ``count``)."""
    if frame is None or len(frame) == 0:
        return empty("No labelled predictions in this window", title)
    if "residual" in frame.columns:
        fig = go.Figure(go.Histogram(x=frame["residual"], nbinsx=40, marker_color=colour(0)))
    else:
        mids = (frame["bin_start"] + frame["bin_end"]) / 2
        fig = go.Figure(go.Bar(x=mids, y=frame["count"], width=(frame["bin_end"] - frame["bin_start"]),
                               marker_color=colour(0)))
    fig.add_vline(x=0, line_dash="dash", line_color="#999999")
    fig.update_xaxes(title_text="residual")
    fig.update_yaxes(title_text="predictions")
    fig.update_layout(hovermode="closest", bargap=0.02)
    return _base(fig, title, 360)


#: Methods whose threshold is a significance level (p-value), so statistic ÷ threshold means nothing.
P_VALUE_METHODS = ("ks", "chi2")


def _severity(frame: pd.DataFrame) -> pd.Series:
    """Statistic divided by its threshold: 1 means at the threshold, comparable across distance methods
    (NaN for p-value methods, whose threshold is a significance level)."""
    thr = frame["threshold"].where(frame["threshold"] > 0)
    score = (frame["statistic"] / thr).astype(float)
    if "method" in frame.columns:
        score = score.where(~frame["method"].isin(P_VALUE_METHODS))
    return score


def drift_heatmap(frame: pd.DataFrame,
                  title: str | None = "Drift score per feature and window (● = drift flagged)") -> go.Figure:
    """Feature × window heatmap of drift score = statistic ÷ threshold (1 = at the threshold; capped at 3); a ● marks
    the cells the engine flagged (distance over its threshold and its significance guard agreeing)."""
    if frame is None or len(frame) == 0:
        return empty("No drift results in this range — run `python -m mlops_core drift --model NAME`", title)
    df = frame.assign(score=_severity(frame), drifted=frame["drifted"].astype(bool) if "drifted" in frame.columns
                      else False)
    table = df.pivot_table(index="feature", columns="window_start", values="score", aggfunc="max")
    flags = df.pivot_table(index="feature", columns="window_start", values="drifted", aggfunc="max")
    order = table.max(axis=1).sort_values(ascending=True).index  # most drifted on top
    table = table.loc[order]
    flags = flags.reindex(index=table.index, columns=table.columns).fillna(False).astype(bool)
    z = table.clip(upper=3).values
    fig = go.Figure(go.Heatmap(
        z=z, x=list(table.columns), y=list(table.index), colorscale=SEVERITY_SCALE, zmin=0, zmid=1, zmax=2,
        colorbar=dict(title="score", tickvals=[0, 1, 2], ticktext=["0", "1 = threshold", "≥2"]),
        text=[["●" if f else "" for f in row] for row in flags.values], texttemplate="%{text}",
        hovertemplate="%{y} · %{x}<br>score %{z:.2f}<extra></extra>", xgap=1, ygap=1,
    ))
    fig.update_layout(hovermode="closest")
    return _base(fig, title, max(260, 28 * len(table) + 110))


def drift_ranking(frame: pd.DataFrame, title: str | None = "Features ranked by drift (latest window)") -> go.Figure:
    """Horizontal bars of each feature's drift score in its latest window; drifted ones coloured."""
    if frame is None or len(frame) == 0:
        return empty("No drift results in this range", title)
    df = frame.assign(score=_severity(frame)).dropna(subset=["score"])
    if len(df) == 0:
        return empty("No distance-based drift results in this range", title)
    newest = df[df["window_start"] == df["window_start"].max()]
    latest = newest.sort_values("score").groupby("feature", as_index=False).tail(1).sort_values("score")
    drifted = latest["drifted"].astype(bool) if "drifted" in latest.columns else latest["score"] > 1
    method = latest["method"].astype(str) if "method" in latest.columns else pd.Series("", index=latest.index)
    fig = go.Figure(go.Bar(
        x=latest["score"], y=latest["feature"], orientation="h",
        marker_color=[colour(3) if d else colour(0) for d in drifted],
        customdata=list(zip(method, latest["statistic"], latest["threshold"])),
        hovertemplate="%{y}: %{customdata[0]} %{customdata[1]:.4f} (threshold %{customdata[2]:.4f})<extra></extra>",
    ))
    fig.add_vline(x=1, line_dash="dash", line_color="#999999", annotation_text="threshold")
    fig.update_xaxes(title_text="score = statistic ÷ threshold")
    fig.update_layout(hovermode="closest")
    return _base(fig, title, max(240, 24 * len(latest) + 100))


def distribution_overlay(frame: pd.DataFrame, feature: str, title: str | None = None) -> go.Figure:
    """Reference against current distribution of one feature, as shares per bin or category.

    ``frame`` columns: ``bin`` (a label: category or interval) and ``reference_share`` / ``current_share``
    (as ``mlops_core.monitoring.drift.distribution`` returns them)."""
    title = title or f"{feature}: reference vs current"
    if frame is None or len(frame) == 0:
        return empty(f"No values of {feature} in this range", title)
    ref = frame["reference_share"].astype(float)
    cur = frame["current_share"].astype(float)
    x = frame["bin"].astype(str)
    fig = go.Figure([
        go.Bar(x=x, y=ref, name="reference (training)", marker_color=colour(0), opacity=0.75),
        go.Bar(x=x, y=cur, name="current", marker_color=colour(1), opacity=0.75),
    ])
    fig.update_yaxes(title_text="share", tickformat=".0%")
    fig.update_layout(barmode="group", bargap=0.15)
    return _base(fig, title, 340)


def drift_share(frame: pd.DataFrame, threshold: float | None = None,
                title: str | None = "Share of drifted features") -> go.Figure:
    """Share of drifted features per window (``window_start``, ``share``), with the alert threshold if given."""
    if frame is None or len(frame) == 0:
        return empty("No drift results in this range", title)
    df = frame.sort_values("window_start")
    fig = go.Figure(go.Scatter(x=df["window_start"], y=df["share"], mode="lines+markers", fill="tozeroy",
                               line=dict(color=colour(3), width=2), fillcolor=_alpha(colour(3), 0.15),
                               name="drifted share", hovertemplate="%{y:.0%}"))
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dash", line_color="#999999", annotation_text="alert threshold")
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return _base(fig, title, 300)


def series_over_time(frame: pd.DataFrame, y: str, by: str | None = None, title: str | None = None,
                     y_title: str | None = None, percent: bool = False, threshold: float | None = None) -> go.Figure:
    """Lines of ``y`` by ``window_start``, one per value of ``by`` (e.g. prediction or target drift per method)."""
    if frame is None or len(frame) == 0 or y not in frame.columns:
        return empty("No data in the selected range", title)
    fig = go.Figure()
    groups = [(None, frame)] if by is None else list(frame.groupby(by, sort=True))
    for i, (key, part) in enumerate(groups):
        part = part.sort_values("window_start")
        fig.add_trace(go.Scatter(x=part["window_start"], y=part[y], mode="lines+markers", name=str(key or label(y)),
                                 line=dict(color=colour(i), width=2), marker=dict(size=4)))
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dash", line_color="#999999", annotation_text="threshold")
    fig.update_yaxes(title_text=y_title or label(y), tickformat=".0%" if percent else None)
    return _base(fig, title, 300)


def anomalies_over_time(frame: pd.DataFrame, title: str | None = "Validation anomalies per day") -> go.Figure:
    """Stacked bars of the number of anomalies per day and kind (one row per anomaly; time in ``at``,
    ``window_start`` or ``created_at``)."""
    if frame is None or len(frame) == 0:
        return empty("No validation anomalies in this range", title)
    when = next(c for c in ("window_start", "at", "created_at", "validated_at", "ts") if c in frame.columns)
    df = frame.assign(day=pd.to_datetime(frame[when]).dt.floor("D"))
    counts = df.groupby(["day", "kind"]).size().reset_index(name="count")
    fig = go.Figure()
    for i, (kind, part) in enumerate(counts.groupby("kind", sort=True)):
        fig.add_trace(go.Bar(x=part["day"], y=part["count"], name=str(kind), marker_color=colour(i)))
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="anomalies")
    return _base(fig, title, 300)


def null_rates(frame: pd.DataFrame, title: str | None = "Null rate per feature") -> go.Figure:
    """Lines of the null rate per feature over time (``window_start``, ``feature``, ``null_rate``); features that
    never have a null are left out (named in the title)."""
    if frame is None or len(frame) == 0:
        return empty("No predictions in this range", title)
    has = frame.groupby("feature")["null_rate"].max()
    shown = has[has > 0].index
    if len(shown) == 0:
        return empty("No feature has null values in this range", title)
    return series_over_time(frame[frame["feature"].isin(shown)], "null_rate", by="feature", title=title,
                            y_title="null rate", percent=True)


def metrics_side_by_side(table: pd.DataFrame, metrics: Iterable[str] | None = None,
                         title: str | None = None) -> go.Figure:
    """Grouped bars: one group per metric, one bar per version, from a table with one row per metric and one
    column per version (``v1``, ``v2``, ...), as ``registry.compare`` returns it."""
    if table is None or len(table) == 0 or len(table.columns) == 0:
        return empty("No metrics to compare", title)
    names = [m for m in (metrics or table.index) if m in table.index]
    if not names:
        return empty("No metrics to compare", title)
    fig = go.Figure()
    for i, col in enumerate(table.columns):
        vals = [table.at[m, col] for m in names]
        fig.add_trace(go.Bar(x=[label(m) for m in names], y=vals, name=str(col), marker_color=colour(i),
                             text=[_fmt(v) for v in vals], textposition="outside"))
    fig.update_layout(barmode="group", hovermode="closest")
    return _base(fig, title, 340)


def _fmt(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(f) else f"{f:.3f}"


def _unusual(findings) -> str:
    """Hover text of a run's anomalies (the ``anomalies`` column: a JSON list, or a list, of findings)."""
    if isinstance(findings, str):
        findings = json.loads(findings) if findings else []
    if not isinstance(findings, list):
        return ""
    return "<br>".join(str(f.get("message", "")) for f in findings if isinstance(f, dict))


def run_durations(frame: pd.DataFrame, title: str | None = "Run durations") -> go.Figure:
    """Scatter of run duration (``duration_s``) by start time, one colour per run kind; failed runs as crosses.

    Runs with anomalies (an ``anomalies`` column, see ``ControlRoom.runs``) get a ring on top whose hover
    text says what was unusual about them.
    """
    if frame is None or len(frame) == 0 or "duration_s" not in frame.columns:
        return empty("No runs recorded", title)
    df = frame.dropna(subset=["duration_s"])
    if len(df) == 0:
        return empty("No finished runs", title)
    when = "started_at" if "started_at" in df.columns and df["started_at"].notna().any() else "created_at"
    fig = go.Figure()
    for i, (kind, part) in enumerate(df.groupby("kind", sort=True)):
        failed = part["status"].eq("failed") if "status" in part.columns else pd.Series(False, index=part.index)
        fig.add_trace(go.Scatter(
            x=part[when], y=part["duration_s"], mode="markers", name=str(kind),
            marker=dict(color=colour(i), size=9, symbol=["x" if f else "circle" for f in failed]),
            customdata=part["status"] if "status" in part.columns else None,
            hovertemplate="%{x}<br>%{y:.1f} s · %{customdata}<extra>" + str(kind) + "</extra>",
        ))
    if "anomalies" in df.columns:
        notes = df["anomalies"].map(_unusual)
        odd = df[notes != ""]
        if len(odd):
            fig.add_trace(go.Scatter(
                x=odd[when], y=odd["duration_s"], mode="markers", name="unusual run",
                marker=dict(size=18, symbol="diamond-open", color=ANOMALY_COLOUR, line=dict(width=2.5)),
                text=odd["kind"].astype(str) + " run " + odd["id"].astype(str) if "id" in odd.columns
                else odd["kind"].astype(str),
                customdata=notes[notes != ""],
                hovertemplate="%{text}<br>%{customdata}<extra>unusual</extra>",
            ))
    fig.update_yaxes(title_text="seconds", rangemode="tozero")
    fig.update_layout(hovermode="closest")
    return _base(fig, title, 300)



def drift_series(frame: pd.DataFrame, names: dict[str, str] | None = None,
                 title: str | None = None) -> go.Figure:
    """Drift score (statistic ÷ threshold) over time, one line per feature and method (e.g. prediction and
    target drift); ``names`` renames features for the legend."""
    if frame is None or len(frame) == 0:
        return empty("No drift results in this range", title)
    names = names or {}
    method = frame["method"].astype(str) if "method" in frame.columns else ""
    df = frame.assign(score=_severity(frame), series=frame["feature"].map(lambda f: names.get(f, f)) + " · " + method)
    return series_over_time(df, "score", by="series", title=title, y_title="score (1 = threshold)", threshold=1.0)



def feature_freshness(frame: pd.DataFrame, title: str | None = "Age of the newest row against the limit") -> go.Figure:
    """Horizontal bars per view of the hours since its newest event time (``view``, ``age_h``, ``stale``), with each
    view's staleness limit (``limit_h``) as a marker; stale views in the alert colour."""
    if frame is None or len(frame) == 0:
        return empty("No feature view is defined", title)
    df = frame.sort_values("view")
    fig = go.Figure(go.Bar(x=df["age_h"], y=df["view"], orientation="h", name="age (hours)",
                           marker_color=[colour(3) if s else colour(2) for s in df["stale"]],
                           hovertemplate="%{y}: %{x:.1f} h since the newest event<extra></extra>"))
    if "limit_h" in df.columns and df["limit_h"].notna().any():
        fig.add_trace(go.Scatter(x=df["limit_h"], y=df["view"], mode="markers", name="limit",
                                 marker=dict(symbol="line-ns-open", size=22, color="#999999", line=dict(width=3)),
                                 hovertemplate="%{y}: stale after %{x:g} h<extra></extra>"))
    fig.update_xaxes(title_text="hours since the newest event time", rangemode="tozero")
    fig.update_layout(hovermode="closest")
    return _base(fig, title, max(200, 40 * len(df) + 120))


def rows_per_day(frame: pd.DataFrame, title: str | None = "Rows per event day") -> go.Figure:
    """Bars of a feature view's rows per event day (``day``, ``rows``): gaps show when the source stopped."""
    if frame is None or len(frame) == 0:
        return empty("No rows ingested yet", title)
    df = frame.sort_values("day")
    fig = go.Figure(go.Bar(x=pd.to_datetime(df["day"]), y=df["rows"], marker_color=colour(0), name="rows",
                           hovertemplate="%{x|%Y-%m-%d}: %{y:,} rows<extra></extra>"))
    fig.update_yaxes(title_text="rows")
    fig.update_layout(hovermode="closest", bargap=0.1)
    return _base(fig, title, 280)


def feature_drift(frame: pd.DataFrame, title: str | None = "Drift per feature: last week against before") -> go.Figure:
    """Bars of each feature's drift score (statistic ÷ threshold; ``feature``, ``method``, ``statistic``,
    ``threshold``, ``drifted``), drifted ones coloured; p-value methods are left out."""
    if frame is None or len(frame) == 0:
        return empty("Not enough rows to compare", title)
    df = frame.assign(score=_severity(frame)).dropna(subset=["score"]).sort_values("score")
    if len(df) == 0:
        return empty("Not enough rows to compare", title)
    fig = go.Figure(go.Bar(x=df["score"], y=df["feature"], orientation="h",
                           marker_color=[colour(3) if d else colour(0) for d in df["drifted"].astype(bool)],
                           customdata=list(zip(df["method"], df["statistic"], df["threshold"], strict=True)),
                           hovertemplate="%{y}: %{customdata[0]} %{customdata[1]:.4f} "
                                         "(threshold %{customdata[2]:.4f})<extra></extra>"))
    fig.add_vline(x=1, line_dash="dash", line_color="#999999", annotation_text="threshold")
    fig.update_xaxes(title_text="score = statistic ÷ threshold")
    fig.update_layout(hovermode="closest")
    return _base(fig, title, max(220, 30 * len(df) + 100))


#: Colours of the A/B arms (the champion in the palette's first colour, as version lines start).
ARM_COLOURS = {"champion": PALETTE[0], "challenger": PALETTE[1], "shadow": PALETTE[2]}


def arms_over_time(frame: pd.DataFrame, title: str | None = None) -> go.Figure:
    """One line per arm (``arm``) of the A/B metric (``value``, named in ``metric``) by ``window_start`` with its
    95% interval (``ci_low``/``ci_high``), and labelled predictions per arm as bars underneath."""
    if frame is None or len(frame) == 0 or frame["value"].notna().sum() == 0:
        return empty("No labelled predictions per arm in this range", title)
    metric = str(frame["metric"].dropna().iloc[0])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.04)
    for i, (arm, part) in enumerate(frame.sort_values("window_start").groupby("arm", sort=False)):
        c = ARM_COLOURS.get(str(arm), colour(i + 3))
        # intervals as error bars: they show for a single window too, where a filled band would not
        fig.add_trace(go.Scatter(x=part["window_start"], y=part["value"], mode="lines+markers", name=str(arm),
                                 line=dict(color=c, width=2), marker=dict(size=6), legendgroup=str(arm),
                                 error_y=dict(type="data", symmetric=False, array=part["ci_high"] - part["value"],
                                              arrayminus=part["value"] - part["ci_low"], color=_alpha(c, 0.6),
                                              thickness=1.5, width=4)),
                      row=1, col=1)
        fig.add_trace(go.Bar(x=part["window_start"], y=part["n_labelled"], marker_color=c, opacity=0.6,
                             showlegend=False, legendgroup=str(arm), name=f"{arm} labelled",
                             hovertemplate="%{y:,} labelled"), row=2, col=1)
    fig.update_yaxes(title_text=label(metric), row=1, col=1)
    fig.update_yaxes(title_text="labelled", row=2, col=1)
    fig.update_layout(barmode="group")
    return _base(fig, title, 420)

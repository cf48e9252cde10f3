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
from collections.abc import Iterable

import numpy as np
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
#: Marker colour of failed runs (a dark red no series uses).
FAILED_COLOUR = "#B2182B"


def colour(i: int) -> str:
    """The i-th series colour (cycles)."""
    return PALETTE[i % len(PALETTE)]


def _base(fig: go.Figure, title: str | None = None, height: int = 360) -> go.Figure:
    fig.update_layout(
        title=title, height=height, margin=dict(l=10, r=10, t=50 if title else 20, b=10),
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        # left-aligned: the chart's toolbar appears at the top right on hover and would cover the legend there
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0), hovermode="x unified",
    )
    return fig


def empty(message: str = "No data in the selected range", title: str | None = None, height: int = 240) -> go.Figure:
    """A figure that says there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font=dict(size=14))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _base(fig, title, height)


def label(name: str, unit: str | None = None) -> str:
    """Human label of a metric (from the catalogue, with the target's ``unit`` for error metrics), a drift method
    (from its registry) or a column name."""
    if name in metrics.CATALOGUE:
        return metrics.label(name, unit)
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


#: Words of registry actions on time charts.
ACTION_WORDS = {"promote": "promoted", "rollback": "rolled back to", "register_version": "new", "register": "registered",
                "retrain": "retrained", "automation": "promoted", "ab_promote": "promoted"}
#: Actions closer than this share of the time axis share one marker (their labels would overlap).
ACTION_MERGE_SHARE = 0.03


def _action_groups(actions: pd.DataFrame, span: pd.Timedelta | None) -> list[list[dict]]:
    """Registry actions grouped when they are closer than ``ACTION_MERGE_SHARE`` of the axis, oldest first."""
    when = "at" if "at" in actions.columns else "occurred_at"
    rows = sorted(({"at": pd.Timestamp(a[when]), "action": str(a.get("action", "")),
                    "version": None if pd.isna(a.get("to_version")) else int(a["to_version"])}
                   for _, a in actions.iterrows()), key=lambda r: r["at"])
    gap = (span or pd.Timedelta(days=30)) * ACTION_MERGE_SHARE
    groups: list[list[dict]] = []
    for r in rows:
        if groups and r["at"] - groups[-1][-1]["at"] <= gap:
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups


def _action_text(r: dict) -> str:
    word = ACTION_WORDS.get(r["action"], r["action"].replace("_", " "))
    return word if r["version"] is None else f"{word} v{r['version']}"


def add_action_markers(fig: go.Figure, actions: pd.DataFrame | None, row: int | None = None,
                       span: pd.Timedelta | None = None) -> go.Figure:
    """Vertical dotted lines for registry actions (columns ``at`` or ``occurred_at``, ``action``, optional
    ``to_version``), each labelled with what happened; actions closer than ``ACTION_MERGE_SHARE`` of the time
    axis (``span``) share one line and one label, so labels never overlap. The legend names the colours."""
    if actions is None or len(actions) == 0:
        return fig
    seen: set[str] = set()
    for group in _action_groups(actions, span):
        x = group[-1]["at"]
        colour = ACTION_COLOURS.get(group[-1]["action"], "#999999")
        kwargs = dict(row=row, col=1) if row else {}
        fig.add_vline(x=x, line_dash="dot", line_width=1.5, line_color=colour, **kwargs)
        text = " · ".join(_action_text(r) for r in group)
        fig.add_annotation(x=x, y=1, yref="paper", text=text, showarrow=False, textangle=-90, xanchor="right",
                           yanchor="top", font=dict(size=10, color=colour),
                           hovertext="<br>".join(f"{r['at']:%Y-%m-%d %H:%M} UTC: {_action_text(r)}" for r in group))
        for r in group:
            kind = r["action"]
            if kind in seen:
                continue
            seen.add(kind)
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=ACTION_WORDS.get(kind, kind).capitalize()
                                     .replace(" to", "").replace("New", "New version"),
                                     line=dict(color=ACTION_COLOURS.get(kind, "#999999"), dash="dot", width=1.5),
                                     hoverinfo="skip", showlegend=True))
    return fig


def _segments(x: pd.Series, low: pd.Series, high: pd.Series) -> tuple[list, list]:
    """Closed outlines of a band over its runs of consecutive defined windows, separated by None (plotly fills
    each outline on its own: no band across a gap)."""
    xs: list = []
    ys: list = []
    ok = (low.notna() & high.notna()).to_numpy()
    xv, lo, hi = list(x), list(low), list(high)
    i = 0
    while i < len(xv):
        if not ok[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(xv) and ok[j + 1]:
            j += 1
        if j > i:
            xs += xv[i:j + 1] + xv[i:j + 1][::-1] + [None]
            ys += hi[i:j + 1] + lo[i:j + 1][::-1] + [None]
        i = j + 1
    return xs, ys


def _grid(part: pd.DataFrame, window: str | None) -> pd.DataFrame:
    """``part`` on every window between its first and last (missing windows as empty rows), so lines and bands
    break at gaps instead of bridging them."""
    if window is None or len(part) < 2:
        return part
    freq = {"hour": "h", "day": "D", "week": "7D"}[window]
    full = pd.date_range(part["window_start"].min(), part["window_start"].max(), freq=freq)
    return part.set_index("window_start").reindex(full).rename_axis("window_start").reset_index()


def _trusted(part: pd.DataFrame, metric: str) -> pd.Series:
    """Windows whose value is trusted: enough labelled predictions (metrics that need labels) and not partial."""
    ok = part[metric].notna()
    m = metrics.CATALOGUE.get(metric)
    if "too_few_labels" in part.columns and (m is None or m.needs_labels):
        ok &= ~part["too_few_labels"].fillna(True).astype(bool)
    if "partial" in part.columns:
        ok &= ~part["partial"].fillna(False).astype(bool)
    return ok


def metric_over_time(frame: pd.DataFrame, metric: str, actions: pd.DataFrame | None = None,
                     title: str | None = None, *, unit: str | None = None, window: str | None = None,
                     estimates: pd.DataFrame | None = None, min_labelled: int | None = None) -> go.Figure:
    """One line per version of ``metric`` by ``window_start`` with its 95% band, label coverage as bars underneath,
    registry actions as vertical markers.

    Trusted points (enough labels, window not partial: the frame's ``too_few_labels`` and ``partial``) are joined
    by the line and its band; the others are hollow markers outside the line, their hover saying why. Missing
    windows (with ``window``) break the line and the band. ``estimates`` (``Model.estimate_performance`` rows of
    this metric) add a dashed line with its band where the realized value is missing or not trusted.
    ``unit``: the target's unit for error metrics (axis and hover)."""
    if frame is None or len(frame) == 0 or metric not in frame.columns or frame[metric].notna().sum() == 0:
        if estimates is None or len(estimates) == 0:
            return empty(f"No labelled predictions for {label(metric)} in this range", title)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.04)
    band = _band_columns(frame, metric) if frame is not None and len(frame) else None
    name_of = metrics.label(metric, unit)
    versions = sorted(frame["version"].dropna().unique()) if frame is not None and "version" in frame.columns \
        and len(frame) else []
    est_versions = sorted(estimates["version"].dropna().unique()) if estimates is not None and len(estimates) else []
    for i, v in enumerate(sorted(set(versions) | set(est_versions))):
        name = f"v{int(v)}"
        c = colour(i)
        part = frame[frame["version"] == v].sort_values("window_start") if v in versions else pd.DataFrame()
        if len(part):
            part = _grid(part, window)
            trusted = _trusted(part, metric)
            line = part[metric].where(trusted)
            if band:
                xs, ys = _segments(part["window_start"], part[band[0]].where(trusted), part[band[1]].where(trusted))
                if xs:
                    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(width=0, simplify=False), fill="toself",
                                             fillcolor=_alpha(c, 0.18), hoverinfo="skip", showlegend=False,
                                             legendgroup=name, name=f"{name} 95% interval"), row=1, col=1)
            n_lab = part["n_labelled"] if "n_labelled" in part.columns else pd.Series(np.nan, index=part.index)
            hover_ci = ""
            custom = np.column_stack([n_lab.fillna(0).astype(int),
                                      part[band[0]] if band else np.full(len(part), np.nan),
                                      part[band[1]] if band else np.full(len(part), np.nan)])
            if band:
                hover_ci = " (95% CI %{customdata[1]:.3f}–%{customdata[2]:.3f})"
            fig.add_trace(go.Scatter(
                x=part["window_start"], y=line, mode="lines+markers", name=name, connectgaps=False,
                line=dict(color=c, width=2), marker=dict(size=5), legendgroup=name, customdata=custom,
                hovertemplate=f"{name}: %{{y:.3f}}{hover_ci}<br>%{{customdata[0]:,}} labelled<extra></extra>"),
                row=1, col=1)
            weak = part[part[metric].notna() & ~trusted]
            if len(weak):
                why = []
                for r in weak.itertuples():
                    if getattr(r, "partial", False) is True:
                        why.append("window still in progress")
                    else:
                        n = 0 if pd.isna(getattr(r, "n_labelled", 0)) else int(getattr(r, "n_labelled", 0))
                        floor = f" (at least {min_labelled} needed)" if min_labelled else ""
                        why.append(f"only {n} labelled{floor}")
                fig.add_trace(go.Scatter(
                    x=weak["window_start"], y=weak[metric], mode="markers", name=f"{name} not trusted",
                    marker=dict(symbol="circle-open", size=8, color=c, line=dict(width=1.5)), legendgroup=name,
                    showlegend=False, customdata=why,
                    hovertemplate=f"{name}: %{{y:.3f}}<br>%{{customdata}}: not trusted<extra></extra>"), row=1, col=1)
            if "n" in part.columns and "n_labelled" in part.columns:
                cov = (part["n_labelled"] / part["n"].where(part["n"] > 0))
                fig.add_trace(go.Bar(x=part["window_start"], y=cov, name=f"{name} labelled", marker_color=c,
                                     opacity=0.6, showlegend=False, legendgroup=name,
                                     hovertemplate="%{y:.0%} labelled<extra></extra>"), row=2, col=1)
        if estimates is not None and len(estimates):
            _add_estimate(fig, estimates[estimates["version"] == v].sort_values("window_start"), part, metric=metric,
                          name=name, c=c, window=window)
    fig.update_yaxes(title_text=name_of, row=1, col=1)
    fig.update_yaxes(title_text="labelled", tickformat=".0%", range=[0, 1], row=2, col=1)
    span = None
    if frame is not None and len(frame):
        span = pd.Timestamp(frame["window_start"].max()) - pd.Timestamp(frame["window_start"].min())
    add_action_markers(fig, actions, span=span)
    fig.update_layout(barmode="group")
    return _base(fig, title, 460)


def _add_estimate(fig: go.Figure, est: pd.DataFrame, realized: pd.DataFrame, *, metric: str, name: str, c: str,
                  window: str | None) -> None:
    """The estimate (dashed, with its band) over the windows whose realized value is missing or not trusted."""
    if est.empty:
        return
    est = est.copy()
    if len(realized):
        trusted = realized.loc[_trusted(realized, metric), "window_start"]
        est = est[~est["window_start"].isin(set(trusted))]
    est = est[est["estimate"].notna()]
    if est.empty:
        return
    est = _grid(est, window)
    xs, ys = _segments(est["window_start"], est["band_low"], est["band_high"])
    if xs:
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(width=0, simplify=False), fill="toself",
                                 fillcolor=_alpha(c, 0.08), hoverinfo="skip", showlegend=False, legendgroup=name,
                                 name=f"{name} estimate band"), row=1, col=1)
    fig.add_trace(go.Scatter(
        x=est["window_start"], y=est["estimate"], mode="lines+markers", name=f"{name} estimated (labels missing)",
        connectgaps=False, line=dict(color=c, width=2, dash="dash"), marker=dict(size=4, symbol="diamond"),
        legendgroup=name, customdata=np.column_stack([est["band_low"], est["band_high"]]),
        hovertemplate=(f"{name} estimated: %{{y:.3f}} (band %{{customdata[0]:.3f}}–%{{customdata[1]:.3f}})"
                       "<br>from scores; labels missing<extra></extra>")), row=1, col=1)


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


def residuals(frame: pd.DataFrame, title: str | None = "Residuals (actual − predicted)", *,
              unit: str | None = None) -> go.Figure:
    """Histogram of residuals: from raw values (``residual``) or from bins (``bin_start``, ``bin_end``, ``count``);
    ``unit``: the target's, on the axis."""
    if frame is None or len(frame) == 0:
        return empty("No labelled predictions in this window", title)
    if "residual" in frame.columns:
        fig = go.Figure(go.Histogram(x=frame["residual"], nbinsx=40, marker_color=colour(0)))
    else:
        mids = (frame["bin_start"] + frame["bin_end"]) / 2
        fig = go.Figure(go.Bar(x=mids, y=frame["count"], width=(frame["bin_end"] - frame["bin_start"]),
                               marker_color=colour(0)))
    fig.add_vline(x=0, line_dash="dash", line_color="#999999")
    fig.update_xaxes(title_text=f"residual ({unit})" if unit else "residual")
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
    partial = set(pd.to_datetime(df.loc[df["partial"].astype(bool), "window_start"])) if "partial" in df.columns \
        else set()
    fig = go.Figure(go.Heatmap(
        z=z, x=list(table.columns), y=list(table.index), colorscale=SEVERITY_SCALE, zmin=0, zmid=1, zmax=2,
        colorbar=dict(title="score", tickvals=[0, 1, 2], ticktext=["0", "1 = threshold", "≥2"]),
        text=[["●" if f else "" for f in row] for row in flags.values], texttemplate="%{text}",
        hovertemplate="%{y} · %{x}<br>score %{z:.2f}<extra></extra>", xgap=1, ygap=1,
    ))
    for t in sorted(partial):
        if t not in set(pd.to_datetime(table.columns)):
            continue
        step = (pd.Timestamp(table.columns[-1]) - pd.Timestamp(table.columns[-2])) if len(table.columns) > 1 \
            else pd.Timedelta(days=1)
        fig.add_vrect(x0=t - step / 2, x1=t + step / 2, line=dict(color="#999999", dash="dot", width=1.5),
                      fillcolor="rgba(0,0,0,0)")
        fig.add_annotation(x=t, y=1, yref="paper", yanchor="bottom", text="in progress", showarrow=False,
                           font=dict(size=10, color="#999999"))
    fig.update_layout(hovermode="closest")
    return _base(fig, title, max(260, 28 * len(table) + 110))


def drift_ranking(frame: pd.DataFrame, title: str | None = "Features ranked by drift (latest full window)") -> go.Figure:
    """Horizontal bars of each feature's drift score in the latest window that is not partial (the ``partial``
    column, when the frame has one); drifted ones coloured."""
    if frame is None or len(frame) == 0:
        return empty("No drift results in this range", title)
    if "partial" in frame.columns:
        frame = frame[~frame["partial"].astype(bool)]
        if len(frame) == 0:
            return empty("No full window in this range yet", title)
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
        customdata=list(zip(method, latest["statistic"], latest["threshold"], strict=True)),
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
    partial = df["partial"].astype(bool) if "partial" in df.columns else pd.Series(False, index=df.index)
    full = df[~partial]
    fig = go.Figure(go.Scatter(x=full["window_start"], y=full["share"], mode="lines+markers", fill="tozeroy",
                               line=dict(color=colour(3), width=2), fillcolor=_alpha(colour(3), 0.15),
                               name="drifted share", hovertemplate="%{y:.0%} of features drifted<extra></extra>"))
    if partial.any():
        fig.add_trace(go.Scatter(x=df.loc[partial, "window_start"], y=df.loc[partial, "share"], mode="markers",
                                 marker=dict(symbol="circle-open", size=9, color=colour(3), line=dict(width=1.5)),
                                 name="window in progress",
                                 hovertemplate="%{y:.0%} so far (window in progress)<extra></extra>"))
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dash", line_color="#999999",
                      annotation_text=f"alert threshold {threshold:.0%}")
    fig.update_yaxes(tickformat=".0%", range=[0, 1], title_text="features drifted")
    return _base(fig, title, 300)


def series_over_time(frame: pd.DataFrame, y: str, by: str | None = None, title: str | None = None,
                     y_title: str | None = None, percent: bool = False, threshold: float | None = None) -> go.Figure:
    """Lines of ``y`` by ``window_start``, one per value of ``by`` (e.g. prediction or target drift per method)."""
    if frame is None or len(frame) == 0 or y not in frame.columns:
        return empty("No data in the selected range", title)
    fig = go.Figure()
    groups = [(None, frame)] if by is None else list(frame.groupby(by, sort=True))
    for i, (key, group) in enumerate(groups):
        part = group.sort_values("window_start")
        fig.add_trace(go.Scatter(x=part["window_start"], y=part[y], mode="lines+markers", name=str(key or label(y)),
                                 line=dict(color=colour(i), width=2), marker=dict(size=4)))
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dash", line_color="#999999", annotation_text="threshold")
    fig.update_yaxes(title_text=y_title or label(y), tickformat=".0%" if percent else None)
    fig.update_layout(showlegend=True)  # also for one line: the legend says what it is
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
        fig.add_trace(go.Bar(x=part["day"], y=part["count"], name=str(kind).replace("_", " "), marker_color=colour(i)))
    fig.update_layout(barmode="stack", showlegend=True)
    fig.update_yaxes(title_text="anomalies")
    fig.update_xaxes(title_text="day of the data")
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
    never = len(has) - len(shown)
    if never and title:
        title = f"{title} ({never} feature{'s' if never != 1 else ''} without nulls not shown)"
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
        fig.add_trace(go.Bar(x=[directed_label(m) for m in names], y=vals, name=str(col), marker_color=colour(i),
                             text=[_fmt(v) for v in vals], textposition="outside"))
    fig.update_layout(barmode="group", hovermode="closest")
    fig.update_xaxes(title_text="↑ higher is better · ↓ lower is better")
    return _base(fig, title, 360)


def directed_label(name: str, unit: str | None = None) -> str:
    """A metric's label with the way that is better: ``Accuracy ↑``, ``Log loss ↓`` (no arrow without one)."""
    m = metrics.CATALOGUE.get(name)
    if m is None or m.direction is None:
        return label(name, unit)
    return f"{label(name, unit)} {'↓' if m.lower_is_better else '↑'}"


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
    failed_all = df["status"].eq("failed") if "status" in df.columns else pd.Series(False, index=df.index)
    for i, (kind, part) in enumerate(df[~failed_all].groupby("kind", sort=True)):
        fig.add_trace(go.Scatter(
            x=part[when], y=part["duration_s"], mode="markers", name=str(kind),
            marker=dict(color=colour(i), size=9, symbol="circle"),
            customdata=part["status"] if "status" in part.columns else None,
            hovertemplate="%{x}<br>%{y:.1f} s · %{customdata}<extra>" + str(kind) + "</extra>",
        ))
    failed = df[failed_all]
    if len(failed):
        fig.add_trace(go.Scatter(
            x=failed[when], y=failed["duration_s"], mode="markers", name="failed run",
            marker=dict(color=FAILED_COLOUR, size=11, symbol="x"), customdata=failed["kind"],
            hovertemplate="%{x}<br>%{y:.1f} s · %{customdata} failed<extra>failed</extra>",
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
    fig.update_yaxes(title_text="duration (seconds)", rangemode="tozero")
    fig.update_layout(hovermode="closest")
    return _base(fig, title, 300)



def drift_series(frame: pd.DataFrame, names: dict[str, str] | None = None,
                 title: str | None = None) -> go.Figure:
    """Drift score (statistic ÷ threshold) over time, one line per feature and method (e.g. prediction and
    target drift); ``names`` renames features for the legend."""
    if frame is None or len(frame) == 0:
        return empty("No drift results in this range", title)
    names = names or {}
    method = frame["method"].astype(str).map(lambda m: drift_methods.METHODS[m].label if m in drift_methods.METHODS
                                             else m) if "method" in frame.columns else ""
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

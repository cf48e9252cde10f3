"""Chart functions: pure DataFrame -> plotly Figure, built without Streamlit."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ui import charts

T0 = datetime(2026, 3, 1)


def perf_frame(days=10, versions=(1, 2)):
    rows = []
    for v in versions:
        for d in range(days):
            n = 100
            rows.append({"window_start": T0 + timedelta(days=d), "version": v, "n": n, "n_labelled": 50 + d,
                         "accuracy": 0.8 + 0.01 * v, "accuracy_low": 0.75, "accuracy_high": 0.85, "roc_auc": np.nan})
    return pd.DataFrame(rows)


def drift_frame():
    rows = []
    for d in range(5):
        for f, stat in (("income", 0.05 * d), ("age", 0.01), ("purpose", 0.3)):
            rows.append({"window_start": T0 + timedelta(days=d), "feature": f, "method": "psi", "statistic": stat,
                         "threshold": 0.1, "drifted": stat > 0.1})
    return pd.DataFrame(rows)


def test_charts_module_does_not_import_streamlit():
    import importlib

    src = importlib.util.find_spec("ui.charts").origin
    text = open(src, encoding="utf-8").read()
    assert "import streamlit" not in text and "from streamlit" not in text


def bands(fig) -> list:
    return [t for t in fig.data if isinstance(t, go.Scatter) and t.fill == "toself"]


def test_metric_over_time_one_line_per_version_with_band_and_coverage():
    fig = charts.metric_over_time(perf_frame(), "accuracy")
    lines = [t for t in fig.data if isinstance(t, go.Scatter) and t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["v1", "v2"]
    assert len(bands(fig)) == 2
    assert list(bands(fig)[0].y[:2]) == [0.85, 0.85]  # the outline: upper edge left to right, then the lower back
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert len(bars) == 2
    # label coverage = n_labelled / n of each window
    assert list(bars[0].y[:3]) == pytest.approx([0.50, 0.51, 0.52])
    assert fig.layout.paper_bgcolor == "rgba(0,0,0,0)"


def test_the_band_breaks_at_missing_windows_instead_of_bridging_them():
    """The hour view's wedges: a band drawn from the last window before a gap to the first after it. Each run of
    consecutive windows is now its own closed outline, separated by None."""
    frame = perf_frame(days=10, versions=(1,))
    frame = frame[~frame["window_start"].isin([T0 + timedelta(days=d) for d in (3, 4, 5)])]
    fig = charts.metric_over_time(frame, "accuracy", window="day")
    band = bands(fig)[0]
    xs = list(band.x)
    pieces = [[]]
    for x in xs:
        if x is None:
            pieces.append([])
        else:
            pieces[-1].append(pd.Timestamp(x))
    pieces = [p for p in pieces if p]
    assert len(pieces) == 2
    for p in pieces:
        days = sorted(set(p))
        assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(days))  # never across the gap
    line = next(t for t in fig.data if t.name == "v1")
    assert sum(pd.isna(y) for y in line.y) == 3 and line.connectgaps is False  # the line breaks too


def test_thin_and_partial_windows_are_hollow_and_outside_the_line_and_band():
    frame = perf_frame(days=6, versions=(1,))
    frame["too_few_labels"] = [False, False, False, True, False, False]
    frame["partial"] = [False] * 5 + [True]
    fig = charts.metric_over_time(frame, "accuracy", window="day", min_labelled=50)
    line = next(t for t in fig.data if t.name == "v1")
    assert [pd.isna(y) for y in line.y] == [False, False, False, True, False, True]
    hollow = next(t for t in fig.data if t.name == "v1 not trusted")
    assert hollow.marker.symbol == "circle-open" and len(hollow.x) == 2
    assert list(hollow.customdata) == ["only 53 labelled (at least 50 needed)", "window still in progress"]
    assert all(pd.Timestamp(x) not in {T0 + timedelta(days=3), T0 + timedelta(days=5)}
               for x in bands(fig)[0].x if x is not None)


def test_estimates_are_dashed_with_a_band_where_labels_are_missing():
    frame = perf_frame(days=6, versions=(1,))
    frame["too_few_labels"] = [False] * 4 + [True, True]
    est = pd.DataFrame({"window_start": [T0 + timedelta(days=d) for d in range(6)], "version": 1,
                        "metric": "accuracy", "estimate": 0.78, "band_low": 0.74, "band_high": 0.82})
    fig = charts.metric_over_time(frame, "accuracy", window="day", estimates=est)
    dashed = next(t for t in fig.data if t.name == "v1 estimated (labels missing)")
    assert dashed.line.dash == "dash"
    assert [pd.Timestamp(x) for x in dashed.x] == [T0 + timedelta(days=4), T0 + timedelta(days=5)]
    assert len(bands(fig)) == 2  # the realized band and the estimate's


def test_generic_interval_is_drawn_only_for_the_metric_it_belongs_to():
    frame = perf_frame().rename(columns={"accuracy_low": "ci_low", "accuracy_high": "ci_high"}).assign(
        metric="accuracy", roc_auc=0.7)
    assert len(bands(charts.metric_over_time(frame, "accuracy"))) == 2
    assert bands(charts.metric_over_time(frame, "roc_auc")) == []


def test_metric_over_time_with_action_markers():
    actions = pd.DataFrame({"occurred_at": [T0 + timedelta(days=3)], "action": ["promote"], "to_version": [2]})
    fig = charts.metric_over_time(perf_frame(), "accuracy", actions)
    assert any(s.type == "line" and s.line.dash == "dot" for s in fig.layout.shapes)
    assert any(a.text == "promoted v2" for a in fig.layout.annotations)
    assert "Promoted" in [t.name for t in fig.data]  # the legend says what the colour means


def test_actions_close_together_share_one_marker_and_label():
    actions = pd.DataFrame({"occurred_at": [T0 + timedelta(days=5), T0 + timedelta(days=5, minutes=3),
                                            T0 + timedelta(days=5, minutes=9), T0 + timedelta(days=1)],
                            "action": ["register_version", "promote", "rollback", "register_version"],
                            "to_version": [3, 3, 2, 2]})
    fig = charts.metric_over_time(perf_frame(), "accuracy", actions)
    texts = sorted(a.text for a in fig.layout.annotations)
    assert texts == ["new v2", "new v3 · promoted v3 · rolled back to v2"]
    assert len({s.x0 for s in fig.layout.shapes if s.line.dash == "dot"}) == 2


def test_metric_without_values_gives_a_note_not_an_error():
    fig = charts.metric_over_time(perf_frame(), "roc_auc")  # all NaN
    assert len(fig.data) == 0
    assert "No labelled predictions" in fig.layout.annotations[0].text
    assert len(charts.metric_over_time(pd.DataFrame(), "accuracy").data) == 0


def test_confusion_matrix_fills_missing_cells_and_orders_classes():
    frame = pd.DataFrame({"actual": ["0", "0", "1"], "predicted": ["0", "1", "1"], "count": [50, 5, 20]})
    fig = charts.confusion_matrix(frame)
    hm = fig.data[0]
    assert list(hm.x) == ["pred 0", "pred 1"] and list(hm.y) == ["true 0", "true 1"]
    assert np.asarray(hm.z).tolist() == [[50, 5], [0, 20]]


def test_residuals_from_values_and_from_bins():
    assert isinstance(charts.residuals(pd.DataFrame({"residual": [-1.0, 0.5, 2.0]})).data[0], go.Histogram)
    binned = pd.DataFrame({"bin_start": [-1.0, 0.0], "bin_end": [0.0, 1.0], "count": [3, 4]})
    bar = charts.residuals(binned).data[0]
    assert list(bar.x) == [-0.5, 0.5] and list(bar.y) == [3, 4]


def test_drift_heatmap_scores_are_statistic_over_threshold_most_drifted_on_top():
    fig = charts.drift_heatmap(drift_frame())
    hm = fig.data[0]
    assert list(hm.y) == ["age", "income", "purpose"]  # ascending: the last row is drawn on top
    z = np.asarray(hm.z)
    assert z[0].tolist() == pytest.approx([0.1] * 5)
    assert z[1].tolist() == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    assert hm.zmid == 1


def test_drift_ranking_uses_latest_window_and_colours_drifted():
    fig = charts.drift_ranking(drift_frame())
    bar = fig.data[0]
    assert list(bar.y) == ["age", "income", "purpose"]
    assert list(bar.x) == pytest.approx([0.1, 2.0, 3.0])
    assert bar.marker.color[0] != bar.marker.color[2]


def test_distribution_overlay_draws_the_shares():
    frame = pd.DataFrame({"bin": ["a", "b"], "reference_share": [0.3, 0.7], "current_share": [0.5, 0.5]})
    fig = charts.distribution_overlay(frame, "purpose")
    assert list(fig.data[0].y) == pytest.approx([0.3, 0.7])
    assert list(fig.data[1].y) == pytest.approx([0.5, 0.5])


def test_drift_share_and_series():
    share = pd.DataFrame({"window_start": [T0, T0 + timedelta(days=1)], "share": [0.1, 0.4]})
    fig = charts.drift_share(share, threshold=0.3)
    assert list(fig.data[0].y) == [0.1, 0.4]
    assert any(s.type == "line" for s in fig.layout.shapes)
    outputs = drift_frame().replace({"feature": {"income": "__score__"}})
    fig = charts.drift_series(outputs[outputs["feature"] == "__score__"], {"__score__": "score"})
    assert fig.data[0].name == "score · PSI"  # the method's label from the drift registry
    assert list(fig.data[0].y) == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])


def test_p_value_methods_have_no_distance_score():
    frame = drift_frame().assign(method="ks")
    fig = charts.drift_ranking(frame)
    assert len(fig.data) == 0 and "distance" in fig.layout.annotations[0].text


def test_anomalies_null_rates_side_by_side_and_runs():
    an = pd.DataFrame({"created_at": [T0, T0, T0 + timedelta(days=1)], "kind": ["out_of_range", "unseen", "unseen"]})
    fig = charts.anomalies_over_time(an)
    assert sorted(t.name for t in fig.data) == ["out of range", "unseen"]
    nulls = pd.DataFrame({"window_start": [T0, T0, T0 + timedelta(days=1), T0 + timedelta(days=1)],
                          "feature": ["a", "b", "a", "b"], "null_rate": [0.0, 0.1, 0.0, 0.2]})
    fig = charts.null_rates(nulls)
    assert [t.name for t in fig.data] == ["b"]
    side = pd.DataFrame({"v1": [0.8, 0.7], "v2": [0.85, 0.75]}, index=["accuracy", "roc_auc"])
    fig = charts.metrics_side_by_side(side, ["accuracy", "roc_auc"])
    assert [t.name for t in fig.data] == ["v1", "v2"] and list(fig.data[1].y) == [0.85, 0.75]
    runs = pd.DataFrame({"created_at": [T0, T0], "started_at": [T0, T0], "kind": ["retrain", "ingest"],
                         "status": ["failed", "succeeded"], "duration_s": [12.0, 1.0]})
    fig = charts.run_durations(runs)
    assert {t.name for t in fig.data} == {"ingest", "failed run"}  # failed runs have a legend entry of their own
    failed = next(t for t in fig.data if t.name == "failed run")
    assert failed.marker.symbol == "x" and list(failed.customdata) == ["retrain"]


@pytest.mark.parametrize("func,args", [
    (charts.confusion_matrix, ()), (charts.residuals, ()), (charts.drift_heatmap, ()), (charts.drift_ranking, ()),
    (charts.distribution_overlay, ("x",)), (charts.drift_share, ()), (charts.anomalies_over_time, ()),
    (charts.null_rates, ()), (charts.run_durations, ()), (charts.drift_series, ()),
])
def test_empty_frames_give_a_note(func, args):
    fig = func(pd.DataFrame(), *args)
    assert isinstance(fig, go.Figure) and len(fig.data) == 0
    assert fig.layout.annotations and fig.layout.annotations[0].text


def test_palette_reads_on_light_and_dark_backgrounds():
    """Every series colour keeps a contrast ratio of at least 2:1 against white and against Streamlit's dark
    background (#0e1117), so lines stay visible in both themes (WCAG graphical objects use 3:1; 2:1 is the floor
    for a thin line next to a legend label)."""
    def luminance(hex_colour):
        h = hex_colour.lstrip("#")
        c = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    def contrast(a, b):
        la, lb = sorted((luminance(a), luminance(b)), reverse=True)
        return (la + 0.05) / (lb + 0.05)

    for c in charts.PALETTE[:6]:
        assert contrast(c, "#ffffff") >= 2.0, c
        assert contrast(c, "#0e1117") >= 2.0, c

"""Model performance per time window and version, from the prediction log joined to its labels.

Labels arrive late and partially; every window therefore reports ``n`` (predictions),
``n_labelled`` and ``label_coverage`` besides its metrics, and its headline metric comes
with a 95% confidence interval, so a window with few labels is visibly less certain.

Definitions (each equals ``sklearn.metrics`` on the labelled rows of the window):

- classification, from confusion counts computed in SQL (one GROUP BY over the log joined to
  its labels: conditional sums per window and version for binary models, counts per
  (window, version, prediction, label) for multiclass ones):
  ``accuracy``; ``precision``/``recall``/``f1`` of the positive class for binary models
  (``zero_division=0``), macro averages over the classes present for multiclass models;
  ``positive_rate`` = share of *all* predictions in the window that are the positive class
  (needs no labels, so it moves before the labels arrive);
  ``log_loss`` = mean of -ln p(true class) with p clipped to [eps, 1 - eps], eps = float64
  machine epsilon (sklearn's clipping); ``roc_auc`` exactly, by the rank-sum identity
  (ties count one half) in SQL. Binary models only for the score-based two.
- regression: ``mae``, ``rmse``, ``r2`` (1 - SS_res/SS_tot; 1.0 for a perfect fit on a
  constant label, 0.0 otherwise, as sklearn's ``force_finite``), ``mape`` over rows with a
  non-zero label.
- headline ``metric`` (``mlops_core.metrics.headline``): accuracy (classification) or rmse (regression).
  ``ci_low``/``ci_high``: Wilson score interval for accuracy (z = 1.96; Wilson 1927, and
  Brown, Cai & DasGupta 2001 for why it beats the normal interval at small n); for RMSE a
  normal-approximation interval of the mean squared error, MSE ± 1.96·sd(e²)/√n, mapped
  through the square root (clipped at 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from mlops_core import metrics
from mlops_core.store.logs import LogView
from mlops_core.store import performance as perfstore
from mlops_core.store.conditions import check_window

Z95 = 1.959963984540054

CLASSIFICATION_METRICS = metrics.CLASSIFICATION
REGRESSION_METRICS = metrics.REGRESSION
BASE_COLUMNS = ["window_start", "version", "n", "n_labelled", "label_coverage"]
TAIL_COLUMNS = ["metric", "ci_low", "ci_high"]


def wilson_interval(successes, n, z: float = Z95):
    """Wilson score interval for a proportion; arrays in, (low, high) arrays out (NaN where n = 0)."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low, high = centre - half, centre + half
    bad = n <= 0
    return np.where(bad, np.nan, np.clip(low, 0, 1)), np.where(bad, np.nan, np.clip(high, 0, 1))


def _safe_div(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


def _classification_frame(counts: pd.DataFrame) -> pd.DataFrame:
    """Metrics of a multiclass classifier from ``store.monitoring.classification_counts`` (macro averages)."""
    keys = ["window_start", "version"]
    if counts.empty:
        return pd.DataFrame(columns=BASE_COLUMNS + CLASSIFICATION_METRICS + TAIL_COLUMNS)
    counts = counts.copy()
    counts["prediction"] = counts["prediction"].astype(object)
    counts["label"] = counts["label"].astype(object)
    out = counts.groupby(keys, sort=True)["n"].sum().rename("n").to_frame()
    lab = counts[counts["label"].notna()]
    out["n_labelled"] = lab.groupby(keys)["n"].sum()
    out["n_labelled"] = out["n_labelled"].fillna(0).astype("int64")
    out["correct"] = lab[lab["label"] == lab["prediction"]].groupby(keys)["n"].sum()
    out["correct"] = out["correct"].fillna(0)
    out["label_coverage"] = _safe_div(out["n_labelled"], out["n"])
    has = out["n_labelled"] > 0
    out["accuracy"] = np.where(has, _safe_div(out["correct"], out["n_labelled"]), np.nan)
    macro = _macro_scores(lab, keys)
    for m in ("precision", "recall", "f1"):
        out[m] = macro[m].reindex(out.index) if len(macro) else np.nan
    out["positive_rate"] = out["log_loss"] = out["roc_auc"] = np.nan  # defined for binary models only
    out = out.reset_index()
    lo, hi = wilson_interval(out["correct"], out["n_labelled"])
    out["metric"] = "accuracy"
    out["ci_low"], out["ci_high"] = lo, hi
    return out[BASE_COLUMNS + CLASSIFICATION_METRICS + TAIL_COLUMNS]


def _binary_frame(sums: pd.DataFrame, auc: pd.DataFrame | None) -> pd.DataFrame:
    """Metrics of a binary classifier from ``store.monitoring.binary_sums``."""
    if sums.empty:
        return pd.DataFrame(columns=BASE_COLUMNS + CLASSIFICATION_METRICS + TAIL_COLUMNS)
    out = sums.sort_values(["window_start", "version"]).reset_index(drop=True)
    f = {c: out[c].astype(float).fillna(0).to_numpy() for c in
         ("n", "n_labelled", "correct", "tp", "pred_pos", "act_pos", "pred_pos_all", "n_scored")}
    has = f["n_labelled"] > 0
    out["n_labelled"] = out["n_labelled"].astype("int64")
    out["label_coverage"] = _safe_div(f["n_labelled"], f["n"])
    out["accuracy"] = np.where(has, _safe_div(f["correct"], f["n_labelled"]), np.nan)
    out["precision"] = np.where(has, _safe_div(f["tp"], f["pred_pos"]), np.nan)
    out["recall"] = np.where(has, _safe_div(f["tp"], f["act_pos"]), np.nan)
    out["f1"] = np.where(has, _safe_div(2 * f["tp"], f["pred_pos"] + f["act_pos"]), np.nan)
    out["positive_rate"] = _safe_div(f["pred_pos_all"], f["n"])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log_loss"] = np.where(f["n_scored"] > 0, out["log_loss_sum"].astype(float) / f["n_scored"], np.nan)
    out["roc_auc"] = np.nan
    if auc is not None and not auc.empty:
        keyed = auc.set_index(["window_start", "version"])["roc_auc"]
        out["roc_auc"] = keyed.reindex(pd.MultiIndex.from_frame(out[["window_start", "version"]])).to_numpy(dtype=float)
    lo, hi = wilson_interval(f["correct"], f["n_labelled"])
    out["metric"] = "accuracy"
    out["ci_low"], out["ci_high"] = lo, hi
    return out[BASE_COLUMNS + CLASSIFICATION_METRICS + TAIL_COLUMNS]


def _macro_scores(lab: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Macro precision/recall/F1 per window over the classes present in labels or predictions (sklearn's labels)."""
    if lab.empty:
        return pd.DataFrame(columns=["precision", "recall", "f1"])
    tp = lab[lab["label"] == lab["prediction"]].groupby([*keys, "label"])["n"].sum()
    pred = lab.groupby([*keys, "prediction"])["n"].sum().rename_axis([*keys, "cls"])
    true = lab.groupby([*keys, "label"])["n"].sum().rename_axis([*keys, "cls"])
    tp = tp.rename_axis([*keys, "cls"])
    per = pd.concat({"tp": tp, "pred": pred, "true": true}, axis=1).fillna(0)
    per["precision"] = _safe_div(per["tp"], per["pred"])
    per["recall"] = _safe_div(per["tp"], per["true"])
    per["f1"] = _safe_div(2 * per["tp"], per["pred"] + per["true"])
    return per.groupby(level=keys)[["precision", "recall", "f1"]].mean()


def _regression_frame(sums: pd.DataFrame) -> pd.DataFrame:
    if sums.empty:
        return pd.DataFrame(columns=BASE_COLUMNS + REGRESSION_METRICS + TAIL_COLUMNS)
    s = sums.sort_values(["window_start", "version"]).reset_index(drop=True)
    n_lab = s["n_labelled"].astype(float)
    has = n_lab > 0
    out = s[["window_start", "version", "n", "n_labelled"]].copy()
    out["label_coverage"] = _safe_div(s["n_labelled"], s["n"])
    with np.errstate(divide="ignore", invalid="ignore"):
        mse = np.where(has, s["sum_sq"].astype(float) / n_lab.where(has), np.nan)
        out["mae"] = np.where(has, s["sum_abs"].astype(float) / n_lab.where(has), np.nan)
        out["rmse"] = np.sqrt(mse)
        ss_res = s["sum_sq"].astype(float)
        ss_tot = s["var_label"].astype(float) * n_lab
        r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
        out["r2"] = np.where(n_lab >= 2, r2, np.nan)
        out["mape"] = np.where(s["mape_n"] > 0, s["mape_sum"].astype(float) / s["mape_n"].where(s["mape_n"] > 0), np.nan)
        se = np.sqrt(s["var_sq"].astype(float) / n_lab)
        out["metric"] = "rmse"
        out["ci_low"] = np.sqrt(np.clip(mse - Z95 * se, 0, None))
        out["ci_high"] = np.sqrt(np.clip(mse + Z95 * se, 0, None))
    single = n_lab == 1
    out.loc[single, "ci_low"] = np.nan
    out.loc[single, "ci_high"] = np.nan
    return out[BASE_COLUMNS + REGRESSION_METRICS + TAIL_COLUMNS]


def over_time(con: duckdb.DuckDBPyConnection, log: LogView, *, window: str = "day", start: datetime | None = None,
              end: datetime | None = None, versions=None, auc: bool = True) -> pd.DataFrame:
    """Metrics per (window_start, version), oldest first.

    Columns: window_start, version, n, n_labelled, label_coverage, the task's metrics
    (classification: accuracy, precision, recall, f1, roc_auc, log_loss, positive_rate;
    regression: mae, rmse, r2, mape), metric (the headline's name), ci_low, ci_high.
    Metrics are NaN in windows without labels. ``auc=False`` skips the exact ROC AUC (the
    only part that sorts scores). ``con``: the log engine; ``log``: the files to read. Raises InvalidInputError
    (window).
    """
    check_window(window)
    info = log.info
    if info.task == "classification":
        if info.positive_class is not None:
            source = None
            if auc:  # both aggregations read one materialised join instead of joining twice
                source = perfstore.materialise_joined(con, log, window, start, end, versions)
            sums = perfstore.binary_sums(con, log, window, start, end, versions, source=source)
            aucs = perfstore.auc_by_window(con, log, window, start, end, versions, source=source) if auc else None
            out = _binary_frame(sums, aucs)
        else:
            counts = perfstore.classification_counts(con, log, window, start, end, versions)
            out = _classification_frame(counts)
    else:
        out = _regression_frame(perfstore.regression_sums(con, log, window, start, end, versions))
    if len(out):
        out["window_start"] = pd.to_datetime(out["window_start"])
        out["version"] = out["version"].astype("int64")
        out["n"] = out["n"].astype("int64")
        out["n_labelled"] = out["n_labelled"].astype("int64")
    return out.sort_values(["window_start", "version"]).reset_index(drop=True)


def confusion(con: duckdb.DuckDBPyConnection, log: LogView, *, start: datetime | None = None,
              end: datetime | None = None, version: int | None = None) -> pd.DataFrame:
    """Labelled predictions counted by (actual, predicted): columns actual, predicted, count."""
    return perfstore.confusion(con, log, start, end, version)


def residuals(con: duckdb.DuckDBPyConnection, log: LogView, *, start: datetime | None = None,
              end: datetime | None = None, version: int | None = None, limit: int = 5000) -> pd.DataFrame:
    """The newest ``limit`` labelled predictions of a regression model: prediction, label, residual (label - prediction).

    Empty for classification models.
    """
    if log.info.task != "regression":
        return pd.DataFrame(columns=["prediction", "label", "residual"])
    return perfstore.residuals(con, log, start, end, version, limit)


def _pooled(sums: tuple[int, int, int, float] | None, task: str) -> tuple[float | None, int, int]:
    """The headline metric of one period pooled across versions: (value, predictions, labelled)."""
    n, n_lab, scored, total = sums or (0, 0, 0, 0.0)
    if n_lab == 0 or scored == 0:
        return None, n, n_lab
    return (total / scored if task == "classification" else math.sqrt(total / scored)), n, n_lab


@dataclass
class Summary:
    """The headline metric over the last ``days`` against the ``days`` before (values None without labels)."""

    metric: str
    value: float | None
    previous: float | None
    delta: float | None
    lower_is_better: bool
    predictions: int
    previous_predictions: int
    labelled: int
    label_coverage: float | None
    start: datetime
    end: datetime


def summary_window(days: int, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of ``summary``'s two periods together: the ``2 * days`` up to ``now`` inclusive."""
    end = now + timedelta(microseconds=1)  # a prediction logged at ``now`` belongs to the last period
    return end - timedelta(days=2 * days), end


def summary(con: duckdb.DuckDBPyConnection, log: LogView, *, days: int = 7, now: datetime) -> Summary:
    """The headline metric over the ``days`` up to ``now`` against the ``days`` before."""
    end = now + timedelta(microseconds=1)  # a prediction logged at ``now`` belongs to the last period
    start = end - timedelta(days=days)
    name = metrics.headline(log.info.task)
    periods = perfstore.period_sums(con, log, start, start - timedelta(days=days), end)  # both periods, one join
    value, n, n_lab = _pooled(periods.get(True), log.info.task)
    previous, n_prev, _ = _pooled(periods.get(False), log.info.task)
    delta = value - previous if value is not None and previous is not None else None
    return Summary(name, value, previous, delta, metrics.get(name).lower_is_better, n, n_prev, n_lab,
                   (n_lab / n) if n else None, start, end)


__all__ = ["over_time", "confusion", "residuals", "summary", "Summary", "wilson_interval",
           "CLASSIFICATION_METRICS", "REGRESSION_METRICS"]

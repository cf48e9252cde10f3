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
- headline ``metric`` (``mlops_core.metrics.headline``): accuracy (classification) or rmse (regression),
  with its interval in ``ci_low``/``ci_high``.

Every metric ``m`` also has a 95% interval in ``m_low``/``m_high`` (z = 1.96), NaN where it is undefined:

- proportions (accuracy = correct/labelled, precision = tp/predicted positive, recall = tp/actual positive,
  positive_rate = predicted positive/all): the Wilson score interval (Wilson 1927; Brown, Cai & DasGupta
  2001 for why it beats the normal interval at small n).
- F1 = 2J/(1 + J) with J = tp/(tp + fp + fn), the Jaccard index: given the number of rows that are not true
  negatives, tp is binomial with proportion J, so the Wilson interval of J mapped through the increasing
  function 2J/(1 + J) is an interval for F1.
- ROC AUC: the normal interval with the standard error of Hanley & McNeil (1982), from the AUC and the
  numbers of labelled positives and negatives, clipped to [0, 1].
- means of per-row values (log loss, MAE, MAPE): mean ± 1.96·s/√n, s the sample standard deviation of
  the per-row values (the central limit theorem; 1.96 rather than a t quantile, as for every interval here).
- RMSE: the same normal interval for the mean squared error, MSE ± 1.96·sd(e²)/√n, mapped through the
  square root (clipped at 0).
- R² = 1 - MSE/var(y): the interval of the MSE scaled by the window's label variance (the labels'
  variance taken as fixed: the error of the model, not the spread of the labels, is what varies).
- macro precision/recall/F1 of multiclass models: no interval (NaN).

A window's interval, like its value, says little when few of its predictions are labelled: a point needs
``MIN_LABELLED_ROWS`` labelled predictions to be trusted (charts draw it hollow, verdicts and alerts skip
it); ``too_few_labels`` says which windows lack them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from mlops_core import metrics
from mlops_core.monitoring import window_results
from mlops_core.store import performance as perfstore
from mlops_core.store import window_cache
from mlops_core.store.conditions import check_window
from mlops_core.store.logs import LogView

Z95 = 1.959963984540054
#: Labelled predictions a window needs before its metrics are trusted: fewer draw a hollow point, and no
#: verdict, delta or alert uses the window. At 50 the Wilson interval of an accuracy near 0.8 is about ±0.11.
MIN_LABELLED_ROWS = 50

CLASSIFICATION_METRICS = metrics.CLASSIFICATION
REGRESSION_METRICS = metrics.REGRESSION
BASE_COLUMNS = ["window_start", "version", "n", "n_labelled", "label_coverage"]
TAIL_COLUMNS = ["metric", "ci_low", "ci_high"]


def interval_columns(names) -> list[str]:
    """``<metric>_low``, ``<metric>_high`` of every metric in ``names``, in order."""
    return [c for m in names for c in (f"{m}_low", f"{m}_high")]


CLASSIFICATION_COLUMNS = BASE_COLUMNS + metrics.CLASSIFICATION + TAIL_COLUMNS + interval_columns(metrics.CLASSIFICATION)
REGRESSION_COLUMNS = BASE_COLUMNS + metrics.REGRESSION + TAIL_COLUMNS + interval_columns(metrics.REGRESSION)


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


def jaccard_f1_interval(tp, fp, fn, z: float = Z95):
    """Interval for F1 from confusion counts: the Wilson interval of J = tp/(tp+fp+fn) mapped through
    F1 = 2J/(1+J) (arrays in, (low, high) out; NaN where tp + fp + fn = 0)."""
    tp = np.asarray(tp, dtype=float)
    lo, hi = wilson_interval(tp, tp + np.asarray(fp, dtype=float) + np.asarray(fn, dtype=float), z)
    return 2 * lo / (1 + lo), 2 * hi / (1 + hi)


def hanley_mcneil_interval(auc, n_pos, n_neg, z: float = Z95):
    """Normal interval of ROC AUC with the standard error of Hanley & McNeil (1982, Radiology 143:29-36):
    se² = (A(1-A) + (P-1)(Q1-A²) + (N-1)(Q2-A²)) / (P·N), Q1 = A/(2-A), Q2 = 2A²/(1+A); clipped to [0, 1]
    (NaN where the AUC is undefined)."""
    a = np.asarray(auc, dtype=float)
    p = np.asarray(n_pos, dtype=float)
    n = np.asarray(n_neg, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        var = (a * (1 - a) + (p - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (p * n)
        half = z * np.sqrt(np.clip(var, 0, None))
    bad = ~np.isfinite(a) | (p <= 0) | (n <= 0)
    return np.where(bad, np.nan, np.clip(a - half, 0, 1)), np.where(bad, np.nan, np.clip(a + half, 0, 1))


def mean_interval(total, sum_sq, count, z: float = Z95):
    """Normal interval of a mean from the sum and the sum of squares of ``count`` values: mean ± z·s/√n with
    s the sample standard deviation (NaN where count < 2)."""
    total, sum_sq, count = (np.asarray(x, dtype=float) for x in (total, sum_sq, count))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / count
        var = np.clip((sum_sq - count * mean * mean) / (count - 1), 0, None)
        half = z * np.sqrt(var / count)
    bad = count < 2
    return np.where(bad, np.nan, mean - half), np.where(bad, np.nan, mean + half)


def _normal_from_var(mean, var, count, z: float = Z95, floor: float | None = 0.0):
    """mean ± z·sqrt(var/count), clipped below at ``floor`` (NaN where count < 2 or var is missing)."""
    mean, var, count = (np.asarray(x, dtype=float) for x in (mean, var, count))
    with np.errstate(divide="ignore", invalid="ignore"):
        half = z * np.sqrt(var / count)
    lo, hi = mean - half, mean + half
    if floor is not None:
        lo = np.clip(lo, floor, None)
    bad = (count < 2) | ~np.isfinite(half)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def _safe_div(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


def _classification_frame(counts: pd.DataFrame) -> pd.DataFrame:
    """Metrics of a multiclass classifier from ``store.monitoring.classification_counts`` (macro averages)."""
    keys = ["window_start", "version"]
    if counts.empty:
        return pd.DataFrame(columns=CLASSIFICATION_COLUMNS)
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
    for c in interval_columns(metrics.CLASSIFICATION):
        out[c] = np.nan  # macro averages and the binary-only metrics have no interval here
    out["accuracy_low"], out["accuracy_high"] = lo, hi
    return out[CLASSIFICATION_COLUMNS]


def _binary_frame(sums: pd.DataFrame, auc: pd.DataFrame | None) -> pd.DataFrame:
    """Metrics of a binary classifier and their intervals from ``store.performance.binary_sums``."""
    if sums.empty:
        return pd.DataFrame(columns=CLASSIFICATION_COLUMNS)
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
    ll_sum = out["log_loss_sum"].astype(float).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log_loss"] = np.where(f["n_scored"] > 0, ll_sum / f["n_scored"], np.nan)
    out["roc_auc"] = np.nan
    n_pos = n_neg = np.full(len(out), np.nan)
    if auc is not None and not auc.empty:
        keyed = auc.set_index(["window_start", "version"])
        index = pd.MultiIndex.from_frame(out[["window_start", "version"]])
        out["roc_auc"] = keyed["roc_auc"].reindex(index).to_numpy(dtype=float)
        n_pos = keyed["n_pos"].reindex(index).to_numpy(dtype=float)
        n_neg = keyed["n_neg"].reindex(index).to_numpy(dtype=float)
    lo, hi = wilson_interval(f["correct"], f["n_labelled"])
    out["metric"] = "accuracy"
    out["ci_low"], out["ci_high"] = lo, hi
    out["accuracy_low"], out["accuracy_high"] = lo, hi
    out["precision_low"], out["precision_high"] = wilson_interval(f["tp"], np.where(has, f["pred_pos"], 0))
    out["recall_low"], out["recall_high"] = wilson_interval(f["tp"], np.where(has, f["act_pos"], 0))
    fp, fn = f["pred_pos"] - f["tp"], f["act_pos"] - f["tp"]
    out["f1_low"], out["f1_high"] = jaccard_f1_interval(f["tp"], np.where(has, fp, 0), np.where(has, fn, 0))
    out["positive_rate_low"], out["positive_rate_high"] = wilson_interval(f["pred_pos_all"], f["n"])
    sq = out["log_loss_sq_sum"].astype(float).to_numpy() if "log_loss_sq_sum" in out else np.full(len(out), np.nan)
    out["log_loss_low"], out["log_loss_high"] = mean_interval(ll_sum, sq, f["n_scored"])
    out["log_loss_low"] = np.clip(out["log_loss_low"], 0, None)
    out["roc_auc_low"], out["roc_auc_high"] = hanley_mcneil_interval(out["roc_auc"], n_pos, n_neg)
    return out[CLASSIFICATION_COLUMNS]


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
    """Metrics of a regression model and their intervals from ``store.performance.regression_sums``."""
    if sums.empty:
        return pd.DataFrame(columns=REGRESSION_COLUMNS)
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
        var_label = s["var_label"].astype(float)
        ss_tot = var_label * n_lab
        r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
        out["r2"] = np.where(n_lab >= 2, r2, np.nan)
        mape_n = s["mape_n"].astype(float)
        out["mape"] = np.where(mape_n > 0, s["mape_sum"].astype(float) / mape_n.where(mape_n > 0), np.nan)
        mse_low, mse_high = _normal_from_var(mse, s["var_sq"].astype(float), n_lab)
        out["metric"] = "rmse"
        out["rmse_low"], out["rmse_high"] = np.sqrt(mse_low), np.sqrt(mse_high)
        out["ci_low"], out["ci_high"] = out["rmse_low"], out["rmse_high"]
        out["mae_low"], out["mae_high"] = _normal_from_var(out["mae"], s["var_abs"].astype(float), n_lab)
        var_ape = s["var_ape"].astype(float) if "var_ape" in s else pd.Series(np.nan, index=s.index)
        out["mape_low"], out["mape_high"] = _normal_from_var(out["mape"], var_ape, mape_n)
        # R² = 1 - MSE / var(y): the MSE's interval scaled by the label variance, read in the other direction
        r2_ok = (var_label > 0) & (n_lab >= 2)
        out["r2_low"] = np.where(r2_ok, 1 - mse_high / var_label.where(var_label > 0), np.nan)
        out["r2_high"] = np.where(r2_ok, 1 - mse_low / var_label.where(var_label > 0), np.nan)
    return out[REGRESSION_COLUMNS]


def over_time(con: duckdb.DuckDBPyConnection, log: LogView, *, window: str = "day", start: datetime | None = None,
              end: datetime | None = None, versions=None, auc: bool = True) -> pd.DataFrame:
    """Metrics per (window_start, version), oldest first.

    Columns: window_start, version, n, n_labelled, label_coverage, the task's metrics
    (classification: accuracy, precision, recall, f1, roc_auc, log_loss, positive_rate;
    regression: mae, rmse, r2, mape), metric (the headline's name), ci_low, ci_high (the headline's
    interval), ``<metric>_low``/``<metric>_high`` for every metric (see the module docstring) and
    too_few_labels (fewer than ``MIN_LABELLED_ROWS`` labelled predictions).
    Metrics are NaN in windows without labels. ``auc=False`` skips the exact ROC AUC (the
    only part that sorts scores). ``con``: the log engine; ``log``: the files to read. Raises InvalidInputError
    (window).
    """
    check_window(window)
    return _metrics_frame(con, log, window, start, end, versions, auc)


def pooled(con: duckdb.DuckDBPyConnection, log: LogView, *, start: datetime, end: datetime, versions=None,
           auc: bool = False) -> pd.DataFrame:
    """The metrics of [start, end) taken as one window, one row per version (``window_start`` = start), with the
    columns and intervals of ``over_time``: a period's figure from all its labelled predictions at once."""
    return _metrics_frame(con, log, perfstore.PERIOD, start, end, versions, auc)


def _query_sums(con, log: LogView, window: str, start, end, versions, auc: bool
                ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The store's sums per window and version for the model's task (binary: ``binary_sums``; other
    classifiers: ``classification_counts``; regression: ``regression_sums``) and, with ``auc`` for a binary
    classifier, its exact ROC AUC per window and version (else None)."""
    info = log.info
    if info.task == "classification":
        if info.positive_class is not None:
            source = None
            if auc:  # both aggregations read one materialised join instead of joining twice
                source = perfstore.materialise_joined(con, log, window, start, end, versions)
            sums = perfstore.binary_sums(con, log, window, start, end, versions, source=source)
            aucs = perfstore.auc_by_window(con, log, window, start, end, versions, source=source) if auc else None
            return sums, aucs
        return perfstore.classification_counts(con, log, window, start, end, versions), None
    return perfstore.regression_sums(con, log, window, start, end, versions), None


def _encode_sums(result: tuple[pd.DataFrame, pd.DataFrame | None]) -> dict:
    sums, aucs = result
    return {"sums": window_results.encode_frame(sums),
            "auc": None if aucs is None else window_results.encode_frame(aucs)}


def _decode_sums(data: dict) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    return (window_results.decode_frame(data["sums"]),
            None if data["auc"] is None else window_results.decode_frame(data["auc"]))


#: The files of the queries whose per-window results are kept (a change to them starts the cache afresh).
_CACHED_CODE = (perfstore.__file__,)


def _series(kind: str, window: str, log: LogView, with_auc: bool) -> str:
    """The cache's name of a series of ``_query_sums`` results of this model's task."""
    return window_cache.series_name(kind, window, {"task": log.info.task, "auc": with_auc,
                                                   "positive": log.info.positive_class},
                                    window_cache.code_digest(_CACHED_CODE))


def _window_sums(con, log: LogView, window: str, start, end, versions, auc: bool
                 ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``_query_sums`` per window through ``window_results.per_window`` (windows whose files did not change are
    read from the cache), the versions picked afterwards (the cache holds every version)."""
    with_auc = auc and log.info.task == "classification" and log.info.positive_class is not None
    if window == perfstore.PERIOD:
        return _period_sums(con, log, start, end, versions, auc, with_auc)

    def compute(c, view: LogView, lo, hi) -> dict:
        sums, aucs = _query_sums(c, view, window, lo, hi, None, with_auc)
        by_window = window_results.split_by_window(sums)
        auc_by_window = window_results.split_by_window(aucs) if aucs is not None else {}
        return {w: (part, auc_by_window.get(w)) for w, part in by_window.items()}

    series = _series("performance", window, log, with_auc)
    found = window_results.per_window(con, log, window, start, end, series=series, compute=compute,
                                      encode=_encode_sums, decode=lambda _start, data: _decode_sums(data))
    if not found:
        return _query_sums(con, log.for_range(start, end), window, start, end, versions, auc)  # empty, with columns
    sums = pd.concat([s for s, _ in found.values()], ignore_index=True)
    aucs = [a for _, a in found.values() if a is not None]
    auc_frame = pd.concat(aucs, ignore_index=True) if aucs else None
    if with_auc and auc_frame is None:
        auc_frame = pd.DataFrame(columns=["window_start", "version", "roc_auc", "n_pos", "n_neg"])
    return _versions(sums, auc_frame, versions)


def _period_sums(con, log: LogView, start, end, versions, auc: bool, with_auc: bool
                 ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``_query_sums`` of one period through ``window_results.per_period`` (every version; the versions picked
    afterwards)."""
    if start is None or end is None:
        return _query_sums(con, log, perfstore.PERIOD, start, end, versions, auc)

    def compute(c, view: LogView, lo, hi):
        return _query_sums(c, view, perfstore.PERIOD, lo, hi, None, with_auc)

    series = _series("period", "any", log, with_auc)
    sums, aucs = window_results.per_period(con, log, start, end, series=series, compute=compute,
                                           encode=_encode_sums, decode=_decode_sums)
    return _versions(sums, aucs, versions)


def _versions(sums: pd.DataFrame, aucs: pd.DataFrame | None, versions) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The rows of ``versions`` (all when None or empty)."""
    if not versions:
        return sums, aucs
    wanted = [int(v) for v in versions]
    sums = sums[sums["version"].isin(wanted)].reset_index(drop=True)
    if aucs is not None:
        aucs = aucs[aucs["version"].isin(wanted)].reset_index(drop=True)
    return sums, aucs


def _metrics_frame(con, log: LogView, window: str, start, end, versions, auc: bool) -> pd.DataFrame:
    info = log.info
    sums, aucs = _window_sums(con, log, window, start, end, versions, auc)
    if info.task == "classification":
        out = _binary_frame(sums, aucs) if info.positive_class is not None else _classification_frame(sums)
    else:
        out = _regression_frame(sums)
    if len(out):
        out["window_start"] = pd.to_datetime(out["window_start"])
        out["version"] = out["version"].astype("int64")
        out["n"] = out["n"].astype("int64")
        out["n_labelled"] = out["n_labelled"].astype("int64")
    out["too_few_labels"] = (out["n_labelled"] < MIN_LABELLED_ROWS).astype(bool)
    return out.sort_values(["window_start", "version"]).reset_index(drop=True)


def confusion(con: duckdb.DuckDBPyConnection, log: LogView, *, start: datetime | None = None,
              end: datetime | None = None, version: int | None = None) -> pd.DataFrame:
    """Labelled predictions counted by (actual, predicted): columns actual, predicted, count."""
    return perfstore.confusion(con, log.for_range(start, end), start, end, version)


def residuals(con: duckdb.DuckDBPyConnection, log: LogView, *, start: datetime | None = None,
              end: datetime | None = None, version: int | None = None, limit: int = 5000) -> pd.DataFrame:
    """The newest ``limit`` labelled predictions of a regression model: prediction, label, residual (label - prediction).

    Empty for classification models.
    """
    if log.info.task != "regression":
        return pd.DataFrame(columns=["prediction", "label", "residual"])
    return perfstore.residuals(con, log.for_range(start, end), start, end, version, limit)


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


__all__ = [
    "CLASSIFICATION_METRICS",
    "MIN_LABELLED_ROWS",
    "REGRESSION_METRICS",
    "Summary",
    "confusion",
    "hanley_mcneil_interval",
    "jaccard_f1_interval",
    "mean_interval",
    "over_time",
    "pooled",
    "residuals",
    "summary",
    "wilson_interval",
]

"""SQL of performance over time: confusion counts, metric sums and exact ROC AUC per window and version.

The aggregation queries use portable SQL only (``date_trunc``, ``CASE``/``CAST``,
``count``, ``sum``, ``ln``, ``greatest``/``least``, ``var_pop``), so the same definitions
run on another SQL engine (Spark SQL has every one of them). Every query reads the log once.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_core.store.logs import LogView
from mlops_core.store.conditions import check_window, in_list, time_range
from mlops_core.store.models import quote_ident

#: sklearn.metrics.log_loss clips probabilities to [eps, 1 - eps] with eps = float64 machine epsilon.
LOG_LOSS_EPS = float(np.finfo(np.float64).eps)
#: A "window" that is the whole of [start, end): one group per version, its window_start = start.
PERIOD = "period"


def _check(window: str, start) -> str:
    """The window, checked; ``PERIOD`` needs a start."""
    if window == PERIOD:
        if start is None:
            raise ValueError("a period needs a start")
        return window
    return check_window(window)


def _bucket(window: str, start, column: str = "l.ts") -> str:
    """The SQL of a row's window start: ``date_trunc`` of its time, or the period's start (a literal built from a
    datetime, never from text a user typed)."""
    if window == PERIOD:
        return f"TIMESTAMP '{pd.Timestamp(start).strftime('%Y-%m-%d %H:%M:%S.%f')}'"
    return f"date_trunc('{window}', {column})"


def _range_sql(start, end, col: str = "l.ts") -> tuple[str, list]:
    return time_range(col, start, end)


def _versions_sql(versions, col: str = "l.version") -> tuple[str, list]:
    return in_list(col, [int(v) for v in versions or []])


def _joined(log: LogView, window: str, start, end, versions) -> tuple[str, list]:
    """The log left-joined to its labels: w (window start), v (version), p (prediction), y (label), s (score)."""
    rng, p1 = _range_sql(start, end)
    ver, p2 = _versions_sql(versions)
    return (f"(SELECT {_bucket(window, start)} AS w, l.version AS v, l.prediction AS p, lb.label AS y, "
            f"l.score AS s FROM {log.predictions} l "
            f"LEFT JOIN {log.labels} lb ON l.request_id = lb.request_id WHERE 1 = 1 {rng} {ver})",
            [*p1, *p2])


def materialise_joined(con, log: LogView, window: str, start=None, end=None, versions=None) -> str:
    """Join the log to its labels once into a temporary table (for several aggregations); return its name."""
    _check(window, start)
    rel, params = _joined(log, window, start, end, versions)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _joined_log AS SELECT * FROM {rel}", params)
    return "_joined_log"


def classification_counts(con, log: LogView, window: str, start=None, end=None, versions=None,
                          source: str | None = None) -> pd.DataFrame:
    """Confusion counts per (window, version, prediction, label), NULL label = not labelled yet.

    Columns: window_start, version, prediction, label, n, n_scored, log_loss_sum (sum over scored,
    labelled rows of -ln p(true class) with p clipped like sklearn; binary models only).
    ``source``: a table made by ``materialise_joined`` (else the join runs inside this query).
    """
    _check(window, start)
    rel, params = (source, []) if source else _joined(log, window, start, end, versions)
    pos = log.info.positive_class
    if pos is not None:
        clip = f"greatest(least(s, {1 - LOG_LOSS_EPS!r}), {LOG_LOSS_EPS!r})"
        ll = f"sum(CASE WHEN y IS NULL OR s IS NULL THEN NULL WHEN y = ? THEN -ln({clip}) ELSE -ln(1 - {clip}) END)"
        ll_params = [pos]
    else:
        ll, ll_params = "CAST(NULL AS DOUBLE)", []
    sql = f"""
        SELECT w AS window_start, v AS version, p AS prediction, y AS label,
               count(*) AS n, count(CASE WHEN y IS NOT NULL THEN s END) AS n_scored, {ll} AS log_loss_sum
        FROM {rel} j GROUP BY 1, 2, 3, 4
    """
    return con.execute(sql, [*ll_params, *params]).df()


def binary_sums(con, log: LogView, window: str, start=None, end=None, versions=None,
                source: str | None = None) -> pd.DataFrame:
    """One GROUP BY window, version for a binary classifier: the confusion counts as conditional sums.

    Columns: window_start, version, n, n_labelled, correct, tp, pred_pos (labelled rows predicted
    positive), act_pos (labelled rows that are positive), pred_pos_all (all rows predicted
    positive), n_scored, log_loss_sum (as in ``classification_counts``), log_loss_sq_sum (the sum of the squared
    per-row losses, for the interval of their mean).
    """
    _check(window, start)
    rel, params = (source, []) if source else _joined(log, window, start, end, versions)
    clip = f"greatest(least(s, {1 - LOG_LOSS_EPS!r}), {LOG_LOSS_EPS!r})"
    sql = f"""
        SELECT w AS window_start, v AS version, count(*) AS n, count(y) AS n_labelled,
               sum(CASE WHEN y = p THEN 1 ELSE 0 END) AS correct,
               sum(CASE WHEN y = $pos AND p = $pos THEN 1 ELSE 0 END) AS tp,
               sum(CASE WHEN y IS NOT NULL AND p = $pos THEN 1 ELSE 0 END) AS pred_pos,
               sum(CASE WHEN y = $pos THEN 1 ELSE 0 END) AS act_pos,
               sum(CASE WHEN p = $pos THEN 1 ELSE 0 END) AS pred_pos_all,
               count(CASE WHEN y IS NOT NULL THEN s END) AS n_scored,
               sum(CASE WHEN y IS NULL OR s IS NULL THEN NULL WHEN y = $pos THEN -ln({clip}) ELSE -ln(1 - {clip}) END)
                   AS log_loss_sum,
               sum(CASE WHEN y IS NULL OR s IS NULL THEN NULL WHEN y = $pos THEN ln({clip}) * ln({clip})
                        ELSE ln(1 - {clip}) * ln(1 - {clip}) END) AS log_loss_sq_sum
        FROM {rel} j GROUP BY 1, 2
    """
    n_pos = sql.count("$pos")
    return con.execute(sql.replace("$pos", "?"), [log.info.positive_class] * n_pos + params).df()


def auc_by_window(con, log: LogView, window: str, start=None, end=None, versions=None,
                  source: str | None = None) -> pd.DataFrame:
    """Exact ROC AUC per (window, version) by the rank-sum identity, ties counted half.

    AUC = sum over distinct scores s of pos(s) * (neg(< s) + neg(= s) / 2) / (P * N): the
    Mann-Whitney form of the area under the ROC curve, equal to sklearn's trapezoidal AUC.
    SQL counts positives and negatives per (window, version, score) in score order; the
    running sum of negatives is taken in numpy (DuckDB's windowed running sum over millions
    of rows costs twice the sort). Columns: window_start, version, roc_auc, n_pos, n_neg
    (roc_auc NaN when one class is absent).
    """
    _check(window, start)
    rel, params = (source, []) if source else _joined(log, window, start, end, versions)
    sql = f"""
        SELECT epoch_us(w) AS w, v, sum(CASE WHEN y = ? THEN 1 ELSE 0 END) AS pos,
               sum(CASE WHEN y = ? THEN 0 ELSE 1 END) AS neg
        FROM {rel} j WHERE s IS NOT NULL AND y IS NOT NULL
        GROUP BY w, v, s ORDER BY w, v, s
    """
    d = con.execute(sql, [log.info.positive_class, log.info.positive_class, *params]).fetchnumpy()
    cols = ["window_start", "version", "roc_auc", "n_pos", "n_neg"]
    w = np.asarray(d["w"], dtype=np.int64)
    if w.size == 0:
        return pd.DataFrame(columns=cols)
    v = np.asarray(d["v"], dtype=np.int64)
    pos = np.asarray(d["pos"], dtype=float)
    neg = np.asarray(d["neg"], dtype=float)
    first = np.r_[True, (w[1:] != w[:-1]) | (v[1:] != v[:-1])]
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    below = np.cumsum(neg) - neg  # negatives before this score, over all groups so far
    below -= below[starts][group]  # ... within this group
    u = np.add.reduceat(pos * (below + 0.5 * neg), starts)
    n_pos, n_neg = np.add.reduceat(pos, starts), np.add.reduceat(neg, starts)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)
    return pd.DataFrame({"window_start": pd.to_datetime(w[starts], unit="us"), "version": v[starts], "roc_auc": auc,
                         "n_pos": n_pos.astype(np.int64), "n_neg": n_neg.astype(np.int64)})


def regression_sums(con, log: LogView, window: str, start=None, end=None, versions=None) -> pd.DataFrame:
    """Sums per (window, version) from which MAE, RMSE, R², MAPE and their intervals follow.

    Columns: window_start, version, n, n_labelled, sum_abs, sum_sq, var_sq (sample variance of the
    squared errors), var_abs, var_label (population variance of the labels), mape_sum, mape_n, var_ape (sample
    variance of the absolute percentage errors).
    """
    _check(window, start)
    rng, p1 = _range_sql(start, end)
    ver, p2 = _versions_sql(versions)
    sql = f"""
        WITH j AS (
            SELECT {_bucket(window, start)} AS w, l.version AS v,
                   l.prediction - lb.label AS e, CASE WHEN l.prediction IS NOT NULL THEN lb.label END AS y
            FROM {log.predictions} l
            LEFT JOIN {log.labels} lb ON l.request_id = lb.request_id
            WHERE 1 = 1 {rng} {ver}
        )
        SELECT w AS window_start, v AS version, count(*) AS n, count(e) AS n_labelled,
               sum(abs(e)) AS sum_abs, sum(e * e) AS sum_sq, var_samp(e * e) AS var_sq, var_samp(abs(e)) AS var_abs,
               var_pop(y) AS var_label,
               sum(CASE WHEN y <> 0 THEN abs(e) / abs(y) END) AS mape_sum, count(CASE WHEN y <> 0 THEN e END) AS mape_n,
               var_samp(CASE WHEN y <> 0 THEN abs(e) / abs(y) END) AS var_ape
        FROM j GROUP BY 1, 2
    """
    return con.execute(sql, [*p1, *p2]).df()


def confusion(con, log: LogView, start=None, end=None, version=None) -> pd.DataFrame:
    """Labelled rows counted by (actual, predicted); columns actual, predicted, count."""
    rng, p1 = _range_sql(start, end)
    ver, p2 = _versions_sql([version] if version is not None else None)
    sql = f"""
        SELECT CAST(lb.label AS VARCHAR) AS actual, CAST(l.prediction AS VARCHAR) AS predicted, count(*) AS count
        FROM {log.predictions} l JOIN {log.labels} lb ON l.request_id = lb.request_id
        WHERE lb.label IS NOT NULL AND l.prediction IS NOT NULL {rng} {ver}
        GROUP BY 1, 2 ORDER BY 1, 2
    """
    return con.execute(sql, [*p1, *p2]).df()


def residuals(con, log: LogView, start=None, end=None, version=None, limit: int = 5000) -> pd.DataFrame:
    """Up to ``limit`` labelled regression rows (newest first): prediction, label, residual = label - prediction."""
    rng, p1 = _range_sql(start, end)
    ver, p2 = _versions_sql([version] if version is not None else None)
    sql = f"""
        SELECT l.ts, l.version, l.prediction, lb.label, lb.label - l.prediction AS residual
        FROM {log.predictions} l JOIN {log.labels} lb ON l.request_id = lb.request_id
        WHERE lb.label IS NOT NULL AND l.prediction IS NOT NULL {rng} {ver}
        ORDER BY l.ts DESC LIMIT ?
    """
    return con.execute(sql, [*p1, *p2, int(limit)]).df()

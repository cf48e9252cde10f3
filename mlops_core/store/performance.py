"""SQL of performance over time: confusion counts, metric sums and exact ROC AUC per window and version.

The aggregation queries use portable SQL only (``date_trunc``, ``CASE``/``CAST``,
``count``, ``sum``, ``ln``, ``greatest``/``least``, ``var_pop``), so the same definitions
run on every log engine (``store.engines``: DuckDB as written, Spark SQL through sqlglot).
Every query reads the log once. ``con``: a log engine, or a DuckDB cursor of ``connection.engine``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_core.store import engines
from mlops_core.store.conditions import check_window, in_list, time_range
from mlops_core.store.logs import LogView

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


def _joined(eng: engines.LogEngine, log: LogView, window: str, start, end, versions) -> tuple[str, list]:
    """The log left-joined to its labels: w (window start), v (version), p (prediction), y (label), s (score)."""
    rng, p1 = _range_sql(start, end)
    ver, p2 = _versions_sql(versions)
    return (f"(SELECT {_bucket(window, start)} AS w, l.version AS v, l.prediction AS p, lb.label AS y, "
            f"l.score AS s FROM {eng.predictions(log)} l "
            f"LEFT JOIN {eng.labels(log)} lb ON l.request_id = lb.request_id WHERE 1 = 1 {rng} {ver})",
            [*p1, *p2])


def materialise_joined(con, log: LogView, window: str, start=None, end=None, versions=None) -> str:
    """Join the log to its labels once into a temporary table (for several aggregations); return its name."""
    _check(window, start)
    eng = engines.of(con)
    rel, params = _joined(eng, log, window, start, end, versions)
    return eng.materialise("_joined_log", f"SELECT * FROM {rel}", params)


def classification_counts(con, log: LogView, window: str, start=None, end=None, versions=None,
                          source: str | None = None) -> pd.DataFrame:
    """Confusion counts per (window, version, prediction, label), NULL label = not labelled yet.

    Columns: window_start, version, prediction, label, n, n_scored, log_loss_sum (sum over scored,
    labelled rows of -ln p(true class) with p clipped like sklearn; binary models only).
    ``source``: a table made by ``materialise_joined`` (else the join runs inside this query).
    """
    _check(window, start)
    eng = engines.of(con)
    rel, params = (source, []) if source else _joined(eng, log, window, start, end, versions)
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
    return eng.frame(sql, [*ll_params, *params])


def binary_sums(con, log: LogView, window: str, start=None, end=None, versions=None,
                source: str | None = None) -> pd.DataFrame:
    """One GROUP BY window, version for a binary classifier: the confusion counts as conditional sums.

    Columns: window_start, version, n, n_labelled, correct, tp, pred_pos (labelled rows predicted
    positive), act_pos (labelled rows that are positive), pred_pos_all (all rows predicted
    positive), n_scored, log_loss_sum (as in ``classification_counts``), log_loss_sq_sum (the sum of the squared
    per-row losses, for the interval of their mean).
    """
    _check(window, start)
    eng = engines.of(con)
    rel, params = (source, []) if source else _joined(eng, log, window, start, end, versions)
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
    return eng.frame(sql.replace("$pos", "?"), [log.info.positive_class] * n_pos + params)


#: ``auc_by_window`` reads the labelled rows of a materialised join in slices of whole windows of about this many
#: rows, so its arrays stay small whatever the size of the log.
AUC_SLICE_ROWS = 2_000_000


def auc_by_window(con, log: LogView, window: str, start=None, end=None, versions=None,
                  source: str | None = None) -> pd.DataFrame:
    """Exact ROC AUC per (window, version) by the rank-sum identity, ties counted half.

    AUC = sum over positives p of (neg(s < s_p) + neg(s = s_p) / 2) / (P * N): the Mann-Whitney
    form of the area under the ROC curve, equal to sklearn's trapezoidal AUC. SQL reads each labelled,
    scored row's window, version, score and class; numpy sorts the negatives' scores of each (window,
    version) and counts, for every positive, the negatives below and equal to it by binary search
    (an exact count, so the sums are the same integers in any order). Grouping or sorting every score
    in SQL costs several times more: nearly every score is distinct. With ``source`` (a table made by
    ``materialise_joined``) the rows are read in slices of whole windows (``AUC_SLICE_ROWS``). Columns:
    window_start, version, roc_auc, n_pos, n_neg (roc_auc NaN when one class is absent). On Spark the counts per
    (window, version, score) are collected to the driver instead (``_auc_by_score_counts``).
    """
    _check(window, start)
    eng = engines.of(con)
    if eng.name != "duckdb":
        return _auc_by_score_counts(eng, log, window, start, end, versions, source)
    rel, params = (source, []) if source else _joined(eng, log, window, start, end, versions)
    pos_class = log.info.positive_class
    labelled = f"FROM {rel} j WHERE s IS NOT NULL AND y IS NOT NULL"
    if source:
        per_window = eng.rows(f"SELECT w, count(*) {labelled} GROUP BY 1 ORDER BY 1")
        slices = _slices(per_window, AUC_SLICE_ROWS)
    else:
        slices = [None]
    parts = []
    for bounds in slices:
        sql = f"SELECT epoch_us(w) AS w, v, s, y = ? AS positive {labelled}"
        args = [pos_class, *params]
        if bounds is not None:  # on the column itself, so the table's per-block minima and maxima skip most blocks
            sql += " AND w BETWEEN ? AND ?"
            args += list(bounds)
        parts.append(_auc_of_rows(eng.numpy(sql, args)))
    cols = ["window_start", "version", "roc_auc", "n_pos", "n_neg"]
    found = [p for p in parts if len(p)]
    if not found:
        return pd.DataFrame(columns=cols)
    out = pd.concat(found, ignore_index=True).sort_values(["window_start", "version"], kind="stable")
    return out.reset_index(drop=True)[cols]


def _slices(per_window: list[tuple[int, int]], rows: int) -> list[tuple[int, int]]:
    """Consecutive (first, last) window starts whose row counts add up to about ``rows`` (whole windows)."""
    out, first, total = [], None, 0
    for w, n in per_window:
        if first is None:
            first = w
        total += int(n)
        if total >= rows:
            out.append((first, w))
            first, total = None, 0
    if first is not None:
        out.append((first, per_window[-1][0]))
    return out


def _auc_of_rows(d: dict) -> pd.DataFrame:
    """AUC per (window, version) of arrays w (epoch microseconds), v, s (score), positive."""
    w = np.asarray(d["w"], dtype=np.int64)
    if w.size == 0:
        return pd.DataFrame(columns=["window_start", "version", "roc_auc", "n_pos", "n_neg"])
    v = np.asarray(d["v"], dtype=np.int64)
    s = np.asarray(d["s"], dtype=float)
    positive = np.asarray(d["positive"], dtype=bool)
    w_code, w_values = pd.factorize(w)  # hashing, not sorting: a slice holds a few windows and versions
    v_code, v_values = pd.factorize(v)
    group = w_code.astype(np.int64) * len(v_values) + v_code
    order = np.argsort(group, kind="stable")  # a radix sort of small integers
    bounds = np.r_[0, np.cumsum(np.bincount(group, minlength=len(w_values) * len(v_values)))]
    keys = np.stack([np.repeat(w_values, len(v_values)), np.tile(v_values, len(w_values))], axis=1)
    present = np.flatnonzero(np.diff(bounds) > 0)  # (window, version) pairs with rows
    keys, starts, ends = keys[present], bounds[:-1][present], bounds[1:][present]
    auc = np.full(len(keys), np.nan)
    n_pos = np.zeros(len(keys), dtype=np.int64)
    n_neg = np.zeros(len(keys), dtype=np.int64)
    for g in range(len(keys)):
        rows = order[starts[g]:ends[g]]
        scores, is_pos = s[rows], positive[rows]
        pos_scores, neg_scores = scores[is_pos], np.sort(scores[~is_pos])
        n_pos[g], n_neg[g] = pos_scores.size, neg_scores.size
        if pos_scores.size and neg_scores.size:
            below = np.searchsorted(neg_scores, pos_scores, side="left")
            upto = np.searchsorted(neg_scores, pos_scores, side="right")
            u = float(below.sum()) + 0.5 * float((upto - below).sum())
            auc[g] = u / (float(pos_scores.size) * float(neg_scores.size))
    return pd.DataFrame({"window_start": pd.to_datetime(keys[:, 0], unit="us"), "version": keys[:, 1],
                         "roc_auc": auc, "n_pos": n_pos, "n_neg": n_neg})


def _auc_by_score_counts(eng: engines.LogEngine, log: LogView, window: str, start, end, versions,
                         source: str | None) -> pd.DataFrame:
    """``auc_by_window`` on an engine that cannot hand back every scored row cheaply (Spark): SQL counts positives
    and negatives per (window, version, score) in score order, AUC = sum over distinct scores s of
    pos(s) * (neg(< s) + neg(= s) / 2) / (P * N), the running sum of negatives taken in numpy."""
    rel, params = (source, []) if source else _joined(eng, log, window, start, end, versions)
    sql = f"""
        SELECT w, v, sum(CASE WHEN y = ? THEN 1 ELSE 0 END) AS pos,
               sum(CASE WHEN y = ? THEN 0 ELSE 1 END) AS neg
        FROM {rel} j WHERE s IS NOT NULL AND y IS NOT NULL
        GROUP BY w, v, s ORDER BY w, v, s
    """
    d = eng.numpy(sql, [log.info.positive_class, log.info.positive_class, *params])
    cols = ["window_start", "version", "roc_auc", "n_pos", "n_neg"]
    w = np.asarray(d["w"]).astype("datetime64[us]").astype(np.int64)
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
    eng = engines.of(con)
    rng, p1 = _range_sql(start, end)
    ver, p2 = _versions_sql(versions)
    sql = f"""
        WITH j AS (
            SELECT {_bucket(window, start)} AS w, l.version AS v,
                   l.prediction - lb.label AS e, CASE WHEN l.prediction IS NOT NULL THEN lb.label END AS y
            FROM {eng.predictions(log)} l
            LEFT JOIN {eng.labels(log)} lb ON l.request_id = lb.request_id
            WHERE 1 = 1 {rng} {ver}
        )
        SELECT w AS window_start, v AS version, count(*) AS n, count(e) AS n_labelled,
               sum(abs(e)) AS sum_abs, sum(e * e) AS sum_sq, var_samp(e * e) AS var_sq, var_samp(abs(e)) AS var_abs,
               var_pop(y) AS var_label,
               sum(CASE WHEN y <> 0 THEN abs(e) / abs(y) END) AS mape_sum, count(CASE WHEN y <> 0 THEN e END) AS mape_n,
               var_samp(CASE WHEN y <> 0 THEN abs(e) / abs(y) END) AS var_ape
        FROM j GROUP BY 1, 2
    """
    return eng.frame(sql, [*p1, *p2])


def period_sums(con, log: LogView, split, start, end) -> dict[bool, tuple[int, int, int, float]]:
    """What the pooled headline metric needs over [start, split) and [split, end), from one join of the log.

    Returns {recent: (predictions, labelled, scored, value sum)} for the periods with predictions, recent =
    ts >= split. ``scored``: labelled rows with a prediction (classification) or with an error
    prediction - label (regression); ``value sum``: the correct ones among them (classification: label and
    prediction equal as text, as ``confusion`` compares them) or the sum of squared errors (regression).
    """
    if log.info.task == "classification":
        scored = "count(CASE WHEN lb.label IS NOT NULL AND l.prediction IS NOT NULL THEN 1 END)"
        value = ("sum(CASE WHEN lb.label IS NOT NULL AND l.prediction IS NOT NULL "
                 "AND CAST(lb.label AS VARCHAR) = CAST(l.prediction AS VARCHAR) THEN 1 ELSE 0 END)")
    else:
        scored = "count(l.prediction - lb.label)"
        value = "sum((l.prediction - lb.label) * (l.prediction - lb.label))"
    eng = engines.of(con)
    rng, p1 = _range_sql(start, end)
    rows = eng.rows(f"""
        SELECT CASE WHEN l.ts >= ? THEN 1 ELSE 0 END AS recent, count(*) AS n, count(lb.label) AS n_labelled,
               {scored} AS n_scored, {value} AS value_sum
        FROM {eng.predictions(log)} l LEFT JOIN {eng.labels(log)} lb ON l.request_id = lb.request_id
        WHERE 1 = 1 {rng} GROUP BY 1
    """, [split, *p1])
    return {bool(r[0]): (int(r[1]), int(r[2]), int(r[3] or 0), float(r[4] or 0.0)) for r in rows}


def confusion(con, log: LogView, start=None, end=None, version=None) -> pd.DataFrame:
    """Labelled rows counted by (actual, predicted); columns actual, predicted, count."""
    eng = engines.of(con)
    rng, p1 = _range_sql(start, end)
    ver, p2 = _versions_sql([version] if version is not None else None)
    sql = f"""
        SELECT CAST(lb.label AS VARCHAR) AS actual, CAST(l.prediction AS VARCHAR) AS predicted, count(*) AS count
        FROM {eng.predictions(log)} l JOIN {eng.labels(log)} lb ON l.request_id = lb.request_id
        WHERE lb.label IS NOT NULL AND l.prediction IS NOT NULL {rng} {ver}
        GROUP BY 1, 2 ORDER BY 1, 2
    """
    return eng.frame(sql, [*p1, *p2])


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

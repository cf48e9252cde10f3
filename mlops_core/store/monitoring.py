"""SQL of the monitoring engine: metric counts per window, drift bin counts, drift results, alerts.

The aggregation queries use portable SQL only (``date_trunc``, ``CASE``/``CAST``,
``count``, ``sum``, ``ln``, ``greatest``/``least``, ``var_pop``, window ``sum() OVER``),
so the same definitions run on another SQL engine (Spark SQL has every one of them).
Bin edges come from the stored reference as literals: no engine histogram function.
Every query reads the log once.
"""
from __future__ import annotations

import json
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from mlops_core.errors import InvalidInputError, NotFoundError
from mlops_core.store.clock import utcnow
from mlops_core.store.conditions import time_range
from mlops_core.store.models import ModelInfo, quote_ident

WINDOWS = ("hour", "day", "week")

#: sklearn.metrics.log_loss clips probabilities to [eps, 1 - eps] with eps = float64 machine epsilon.
LOG_LOSS_EPS = float(np.finfo(np.float64).eps)


def check_window(window: str) -> str:
    """Return ``window`` when it is hour, day or week; raise InvalidInputError otherwise."""
    if window not in WINDOWS:
        raise InvalidInputError(f"Unknown window {window!r}. Choose one of: {', '.join(WINDOWS)}.", window=window)
    return window


def _range_sql(start, end, col: str = "l.ts") -> tuple[str, list]:
    return time_range(col, start, end)


def _versions_sql(versions, col: str = "l.version") -> tuple[str, list]:
    if not versions:
        return "", []
    versions = [int(v) for v in versions]
    return f" AND {col} IN ({', '.join('?' for _ in versions)})", versions


def _literal(x: float) -> str:
    """A numeric literal for a finite bin edge: repr round-trips the double exactly, and a bare
    literal compares faster than a CAST in DuckDB."""
    return repr(float(x))


# --- performance ---------------------------------------------------------------------------


def _joined(info: ModelInfo, window: str, start, end, versions) -> tuple[str, list]:
    """The log left-joined to its labels: w (window start), v (version), p (prediction), y (label), s (score)."""
    rng, p1 = _range_sql(start, end)
    ver, p2 = _versions_sql(versions)
    return (f"(SELECT date_trunc('{window}', l.ts) AS w, l.version AS v, l.prediction AS p, lb.label AS y, "
            f"l.score AS s FROM {quote_ident(info.log_table)} l "
            f"LEFT JOIN {quote_ident(info.label_table)} lb ON l.request_id = lb.request_id WHERE 1 = 1 {rng} {ver})",
            [*p1, *p2])


def materialise_joined(con, info: ModelInfo, window: str, start=None, end=None, versions=None) -> str:
    """Join the log to its labels once into a temporary table (for several aggregations); return its name."""
    check_window(window)
    rel, params = _joined(info, window, start, end, versions)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _joined_log AS SELECT * FROM {rel}", params)
    return "_joined_log"


def classification_counts(con, info: ModelInfo, window: str, start=None, end=None, versions=None,
                          source: str | None = None) -> pd.DataFrame:
    """Confusion counts per (window, version, prediction, label), NULL label = not labelled yet.

    Columns: window_start, version, prediction, label, n, n_scored, log_loss_sum (sum over scored,
    labelled rows of -ln p(true class) with p clipped like sklearn; binary models only).
    ``source``: a table made by ``materialise_joined`` (else the join runs inside this query).
    """
    check_window(window)
    rel, params = (source, []) if source else _joined(info, window, start, end, versions)
    pos = info.positive_class
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


def binary_sums(con, info: ModelInfo, window: str, start=None, end=None, versions=None,
                source: str | None = None) -> pd.DataFrame:
    """One GROUP BY window, version for a binary classifier: the confusion counts as conditional sums.

    Columns: window_start, version, n, n_labelled, correct, tp, pred_pos (labelled rows predicted
    positive), act_pos (labelled rows that are positive), pred_pos_all (all rows predicted
    positive), n_scored, log_loss_sum (as in ``classification_counts``).
    """
    check_window(window)
    rel, params = (source, []) if source else _joined(info, window, start, end, versions)
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
                   AS log_loss_sum
        FROM {rel} j GROUP BY 1, 2
    """
    n_pos = sql.count("$pos")
    return con.execute(sql.replace("$pos", "?"), [info.positive_class] * n_pos + params).df()


def auc_by_window(con, info: ModelInfo, window: str, start=None, end=None, versions=None,
                  source: str | None = None) -> pd.DataFrame:
    """Exact ROC AUC per (window, version) by the rank-sum identity, ties counted half.

    AUC = sum over distinct scores s of pos(s) * (neg(< s) + neg(= s) / 2) / (P * N): the
    Mann-Whitney form of the area under the ROC curve, equal to sklearn's trapezoidal AUC.
    SQL counts positives and negatives per (window, version, score) in score order; the
    running sum of negatives is taken in numpy (DuckDB's windowed running sum over millions
    of rows costs twice the sort). Columns: window_start, version, roc_auc, n_pos, n_neg
    (roc_auc NaN when one class is absent).
    """
    check_window(window)
    rel, params = (source, []) if source else _joined(info, window, start, end, versions)
    sql = f"""
        SELECT epoch_us(w) AS w, v, sum(CASE WHEN y = ? THEN 1 ELSE 0 END) AS pos,
               sum(CASE WHEN y = ? THEN 0 ELSE 1 END) AS neg
        FROM {rel} j WHERE s IS NOT NULL AND y IS NOT NULL
        GROUP BY w, v, s ORDER BY w, v, s
    """
    d = con.execute(sql, [info.positive_class, info.positive_class, *params]).fetchnumpy()
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


def regression_sums(con, info: ModelInfo, window: str, start=None, end=None, versions=None) -> pd.DataFrame:
    """Sums per (window, version) from which MAE, RMSE, R², MAPE and their intervals follow.

    Columns: window_start, version, n, n_labelled, sum_abs, sum_sq, var_sq (sample variance of the
    squared errors), var_abs, var_label (population variance of the labels), mape_sum, mape_n.
    """
    check_window(window)
    rng, p1 = _range_sql(start, end)
    ver, p2 = _versions_sql(versions)
    sql = f"""
        WITH j AS (
            SELECT date_trunc('{window}', l.ts) AS w, l.version AS v,
                   l.prediction - lb.label AS e, CASE WHEN l.prediction IS NOT NULL THEN lb.label END AS y
            FROM {quote_ident(info.log_table)} l
            LEFT JOIN {quote_ident(info.label_table)} lb ON l.request_id = lb.request_id
            WHERE 1 = 1 {rng} {ver}
        )
        SELECT w AS window_start, v AS version, count(*) AS n, count(e) AS n_labelled,
               sum(abs(e)) AS sum_abs, sum(e * e) AS sum_sq, var_samp(e * e) AS var_sq, var_samp(abs(e)) AS var_abs,
               var_pop(y) AS var_label,
               sum(CASE WHEN y <> 0 THEN abs(e) / abs(y) END) AS mape_sum, count(CASE WHEN y <> 0 THEN e END) AS mape_n
        FROM j GROUP BY 1, 2
    """
    return con.execute(sql, [*p1, *p2]).df()


def confusion(con, info: ModelInfo, start=None, end=None, version=None) -> pd.DataFrame:
    """Labelled rows counted by (actual, predicted); columns actual, predicted, count."""
    rng, p1 = _range_sql(start, end)
    ver, p2 = _versions_sql([version] if version is not None else None)
    sql = f"""
        SELECT CAST(lb.label AS VARCHAR) AS actual, CAST(l.prediction AS VARCHAR) AS predicted, count(*) AS count
        FROM {quote_ident(info.log_table)} l JOIN {quote_ident(info.label_table)} lb ON l.request_id = lb.request_id
        WHERE lb.label IS NOT NULL AND l.prediction IS NOT NULL {rng} {ver}
        GROUP BY 1, 2 ORDER BY 1, 2
    """
    return con.execute(sql, [*p1, *p2]).df()


def residuals(con, info: ModelInfo, start=None, end=None, version=None, limit: int = 5000) -> pd.DataFrame:
    """Up to ``limit`` labelled regression rows (newest first): prediction, label, residual = label - prediction."""
    rng, p1 = _range_sql(start, end)
    ver, p2 = _versions_sql([version] if version is not None else None)
    sql = f"""
        SELECT l.ts, l.version, l.prediction, lb.label, lb.label - l.prediction AS residual
        FROM {quote_ident(info.log_table)} l JOIN {quote_ident(info.label_table)} lb ON l.request_id = lb.request_id
        WHERE lb.label IS NOT NULL AND l.prediction IS NOT NULL {rng} {ver}
        ORDER BY l.ts DESC LIMIT ?
    """
    return con.execute(sql, [*p1, *p2, int(limit)]).df()


def traffic(con, info: ModelInfo, start=None, end=None) -> tuple[int, int]:
    """(predictions, labelled predictions) with ts in [start, end)."""
    rng, p1 = _range_sql(start, end)
    row = con.execute(
        f"SELECT count(*), count(lb.label) FROM {quote_ident(info.log_table)} l "
        f"LEFT JOIN {quote_ident(info.label_table)} lb ON l.request_id = lb.request_id WHERE 1 = 1 {rng}", p1
    ).fetchone()
    return int(row[0]), int(row[1])


def log_time_range(con, info: ModelInfo) -> tuple[datetime | None, datetime | None]:
    """(first, last) prediction timestamp of the model's log."""
    return tuple(con.execute(f"SELECT min(ts), max(ts) FROM {quote_ident(info.log_table)}").fetchone())


# --- drift: bin counts per window ----------------------------------------------------------


def column_of(info: ModelInfo, feature: str) -> str:
    """The log column holding ``feature`` (pseudo-features map to prediction / score)."""
    if feature == "__prediction__":
        return "prediction"
    if feature == "__score__":
        return "score"
    return feature


def drift_counts(con, info: ModelInfo, window: str, specs: list[dict], start=None, end=None,
                 target: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """Per-window counts for every spec in one scan of the log.

    ``specs``: dicts with ``feature``, ``kind`` and ``edges`` (numeric: inner bin edges, optional
    ``centre``) or ``categories`` (categorical). For numeric features it counts the values ``>= e``
    for each edge (bins follow by differences), the non-null count, the sum of the values and
    the sum of |value - centre|; for
    categorical ones the count of each reference category and the non-null count. ``target``
    (a spec for the label) is counted by a second query joining the label table on the
    prediction's window.

    Returns (wide frame with ``window_start``, ``n`` and one column per count, layout) where
    layout maps each feature to its column names.
    """
    check_window(window)
    cols, params, layout = [], [], {}

    def add(expr, p=()):
        name = f"c{len(cols)}"
        cols.append(f"{expr} AS {name}")
        params.extend(p)
        return name

    def spec_columns(spec, col):
        entry = {"n": add(f"count({col})")}
        if spec["kind"] == "numeric":
            entry["sum"] = add(f"sum({col})")
            if spec.get("centre") is not None:
                entry["dev"] = add(f"sum(abs({col} - {_literal(spec['centre'])}))")
            entry["ge"] = [add(f"sum(CAST({col} >= {_literal(e)} AS INTEGER))") for e in spec["edges"]]
        else:
            entry["eq"] = [add(f"sum(CAST(CAST({col} AS VARCHAR) = ? AS INTEGER))", [c]) for c in spec["categories"]]
        return entry

    for spec in specs:
        layout[spec["feature"]] = spec_columns(spec, f"l.{quote_ident(column_of(info, spec['feature']))}")
    rng, p1 = _range_sql(start, end)
    sql = (f"SELECT date_trunc('{window}', l.ts) AS window_start, count(*) AS n{''.join(', ' + c for c in cols)} "
           f"FROM {quote_ident(info.log_table)} l WHERE 1 = 1 {rng} GROUP BY 1 ORDER BY 1")
    wide = con.execute(sql, [*params, *p1]).df()
    if target is not None:
        cols.clear()
        params.clear()
        entry = spec_columns(target, "lb.label")
        sql = (f"SELECT date_trunc('{window}', l.ts) AS window_start{''.join(', ' + c for c in cols)} "
               f"FROM {quote_ident(info.log_table)} l JOIN {quote_ident(info.label_table)} lb "
               f"ON l.request_id = lb.request_id WHERE 1 = 1 {rng} GROUP BY 1")
        tw = con.execute(sql, [*params, *p1]).df()
        rename = {c: f"t_{c}" for c in tw.columns if c != "window_start"}
        tw = tw.rename(columns=rename)
        wide = wide.merge(tw, on="window_start", how="left")
        layout[target["feature"]] = {k: ([f"t_{c}" for c in v] if isinstance(v, list) else f"t_{v}")
                                     for k, v in entry.items()}
    return wide, layout


def feature_values(con, info: ModelInfo, feature: str, start=None, end=None, limit: int | None = None) -> pd.Series:
    """Raw values of one feature (or pseudo-feature) in [start, end); the target joins the labels."""
    rng, p1 = _range_sql(start, end)
    if feature == "__target__":
        sql = (f"SELECT lb.label AS v FROM {quote_ident(info.log_table)} l JOIN {quote_ident(info.label_table)} lb "
               f"ON l.request_id = lb.request_id WHERE 1 = 1 {rng}")
    else:
        sql = f"SELECT l.{quote_ident(column_of(info, feature))} AS v FROM {quote_ident(info.log_table)} l WHERE 1 = 1 {rng}"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return con.execute(sql, p1).df()["v"]


def log_arrow(con, info: ModelInfo, columns: list[str], start=None, end=None):
    """The log in [start, end) as a pyarrow Table of the given columns (``__target__`` = the label)."""
    rng, p1 = _range_sql(start, end)
    sel = ", ".join("lb.label AS __target__" if c == "__target__" else
                    f"l.{quote_ident(column_of(info, c))} AS {quote_ident(c)}" for c in columns)
    return con.sql(f"SELECT {sel} FROM {quote_ident(info.log_table)} l LEFT JOIN {quote_ident(info.label_table)} lb "
                   f"ON l.request_id = lb.request_id WHERE 1 = 1 {rng}", params=p1).to_arrow_table()


def log_frame(con, info: ModelInfo, columns: list[str], start=None, end=None) -> pd.DataFrame:
    """The given log columns (features, prediction, score) in [start, end), with the label as ``__target__``."""
    rng, p1 = _range_sql(start, end)
    sel = ", ".join(f"l.{quote_ident(column_of(info, c))} AS {quote_ident(c)}" for c in columns)
    sql = (f"SELECT {sel}, lb.label AS __target__ FROM {quote_ident(info.log_table)} l "
           f"LEFT JOIN {quote_ident(info.label_table)} lb ON l.request_id = lb.request_id WHERE 1 = 1 {rng}")
    return con.execute(sql, p1).df()


# --- drift results -------------------------------------------------------------------------

DRIFT_COLUMNS = ["model", "reference_id", "window_size", "window_start", "feature", "method", "statistic", "p_value",
                 "threshold", "drifted", "n_reference", "n_current", "computed_at"]


def replace_drift_results(con, model: str, reference_id: int, window: str, rows: pd.DataFrame) -> int:
    """Replace the stored rows of the windows in ``rows`` (same model, reference, window size); return rows written.

    Call inside the caller's transaction.
    """
    if rows.empty:
        return 0
    frame = rows.assign(model=model, reference_id=int(reference_id), window_size=window, computed_at=utcnow())
    frame = frame[DRIFT_COLUMNS].astype({"statistic": "float64", "p_value": "float64", "threshold": "float64",
                                         "drifted": "bool", "n_reference": "int64", "n_current": "int64"})
    starts = pd.DataFrame({"window_start": pd.to_datetime(frame["window_start"].unique())})
    con.register("_drift_starts", starts)
    con.register("_drift_rows", frame)
    try:
        con.execute(
            "DELETE FROM drift_results WHERE model = ? AND reference_id = ? AND window_size = ? "
            "AND window_start IN (SELECT window_start FROM _drift_starts)", [model, int(reference_id), window])
        con.execute(f"INSERT INTO drift_results ({', '.join(DRIFT_COLUMNS)}) SELECT {', '.join(DRIFT_COLUMNS)} FROM _drift_rows")
    finally:
        con.unregister("_drift_starts")
        con.unregister("_drift_rows")
    return len(frame)


def drift_results(con, model: str, window: str, start=None, end=None, reference_id: int | None = None) -> pd.DataFrame:
    """Stored drift rows of ``model`` (for one reference: the given one, else the newest used), oldest first."""
    check_window(window)
    if reference_id is None:
        row = con.execute(
            "SELECT reference_id FROM drift_results WHERE model = ? AND window_size = ? "
            "ORDER BY computed_at DESC, reference_id DESC LIMIT 1", [model, window]).fetchone()
        if row is None:
            return pd.DataFrame(columns=DRIFT_COLUMNS)
        reference_id = int(row[0])
    rng, p = _range_sql(start, end, "window_start")
    return con.execute(
        f"SELECT {', '.join(DRIFT_COLUMNS)} FROM drift_results WHERE model = ? AND window_size = ? AND reference_id = ? "
        f"{rng} ORDER BY window_start, feature, method", [model, window, reference_id, *p]).df()


def has_drift_results(con, model: str, window: str) -> bool:
    """Whether any drift result of ``model`` is stored for this window size."""
    return bool(con.execute("SELECT count(*) FROM (SELECT 1 FROM drift_results WHERE model = ? AND window_size = ? LIMIT 1)",
                            [model, window]).fetchall()[0][0])


def last_drift_window(con, model: str, reference_id: int, window: str) -> datetime | None:
    """The newest stored window start for (model, reference, window size), or None."""
    return con.execute(
        "SELECT max(window_start) FROM drift_results WHERE model = ? AND reference_id = ? AND window_size = ?",
        [model, reference_id, window]).fetchone()[0]


# --- alert rules and alerts ----------------------------------------------------------------

RULE_COLUMNS = ["id", "model", "kind", "target", "threshold", "severity", "params", "enabled", "created_at"]
ALERT_COLUMNS = ["id", "model", "raised_at", "kind", "severity", "message", "rule_id", "window_start", "dedup_key",
                 "details", "acknowledged", "acknowledged_at", "acknowledged_by"]


def list_rules(con, model: str, enabled_only: bool = False) -> pd.DataFrame:
    sql = f"SELECT {', '.join(RULE_COLUMNS)} FROM alert_rules WHERE model = ?"
    if enabled_only:
        sql += " AND enabled"
    return con.execute(sql + " ORDER BY id", [model]).df()


def upsert_rule(con, model: str, kind: str, target: str | None, threshold: float | None, severity: str,
                params: dict | None, enabled: bool = True) -> int:
    """Insert or update the rule identified by (model, kind, target); return its id."""
    row = con.execute(
        "SELECT id FROM alert_rules WHERE model = ? AND kind = ? AND target IS NOT DISTINCT FROM ? ORDER BY id LIMIT 1",
        [model, kind, target]).fetchone()
    p = json.dumps(params or {})
    if row is not None:
        con.execute("UPDATE alert_rules SET threshold = ?, severity = ?, params = ?, enabled = ? WHERE id = ?",
                    [threshold, severity, p, enabled, row[0]])
        return int(row[0])
    return int(con.execute(
        "INSERT INTO alert_rules (model, kind, target, threshold, severity, params, enabled, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [model, kind, target, threshold, severity, p, enabled, utcnow()]).fetchone()[0])


def delete_rule(con, rule_id: int) -> None:
    if con.execute("SELECT count(*) FROM alert_rules WHERE id = ?", [rule_id]).fetchone()[0] == 0:
        raise NotFoundError(f"No alert rule with id {rule_id}.", rule_id=rule_id)
    con.execute("DELETE FROM alert_rules WHERE id = ?", [rule_id])


def insert_alert(con, *, model: str, kind: str, severity: str, message: str, rule_id: int | None,
                 window_start: datetime | None, dedup_key: str, details: dict | None, raised_at: datetime) -> int | None:
    """Insert an alert unless one with ``dedup_key`` exists; return the new id or None."""
    if con.execute("SELECT count(*) FROM alerts WHERE model = ? AND dedup_key = ?", [model, dedup_key]).fetchone()[0]:
        return None
    return int(con.execute(
        "INSERT INTO alerts (model, raised_at, kind, severity, message, rule_id, window_start, dedup_key, details) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [model, raised_at, kind, severity, message, rule_id, window_start, dedup_key,
         json.dumps(details or {}, default=str)]).fetchone()[0])


def list_alerts(con, model: str | None = None, open_only: bool = False) -> pd.DataFrame:
    sql, params = f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE 1 = 1", []
    if model is not None:
        sql += " AND model = ?"
        params.append(model)
    if open_only:
        sql += " AND NOT acknowledged"
    return con.execute(sql + " ORDER BY raised_at DESC, id DESC", params).df()


def acknowledge(con, alert_id: int, actor: str, at: datetime) -> bool:
    """Mark an alert acknowledged; return False when it already was; raise NotFoundError."""
    row = con.execute("SELECT acknowledged FROM alerts WHERE id = ?", [alert_id]).fetchone()
    if row is None:
        raise NotFoundError(f"No alert with id {alert_id}. List them with `python -m mlops_core alerts --model NAME --all`.",
                            alert_id=alert_id)
    if row[0]:
        return False
    con.execute("UPDATE alerts SET acknowledged = TRUE, acknowledged_at = ?, acknowledged_by = ? WHERE id = ?",
                [at, actor, alert_id])
    return True


def validation_anomaly_counts(con, model: str, start, end) -> int:
    """Anomalies recorded by validation reports of ``model`` checked in [start, end)."""
    return int(con.execute(
        "SELECT count(a.report_id) FROM validation_reports r JOIN validation_anomalies a ON a.report_id = r.id "
        "WHERE r.model = ? AND r.checked_at >= ? AND r.checked_at < ?", [model, start, end]).fetchone()[0])



# --- drift settings ------------------------------------------------------------------------


def drift_settings(con, model: str) -> pd.DataFrame:
    """Stored drift configuration of ``model``: feature, method, threshold (several methods per feature allowed).

    Empty when the table is missing (a database whose migrations skipped 031)."""
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'drift_settings' "
                         "AND table_catalog = current_database()").fetchall()
    if not exists[0][0]:
        return pd.DataFrame(columns=["feature", "method", "threshold", "updated_at", "updated_by"])
    return con.execute("SELECT feature, method, threshold, updated_at, updated_by FROM drift_settings WHERE model = ? "
                       "ORDER BY feature, method", [model]).df()


def replace_drift_setting(con, model: str, feature: str, methods: list[tuple[str, float | None]], actor: str) -> None:
    """Replace the methods (with thresholds) of one feature (``*`` = every feature); empty ``methods`` clears it."""
    con.execute("DELETE FROM drift_settings WHERE model = ? AND feature = ?", [model, feature])
    for method, threshold in methods:
        con.execute("INSERT INTO drift_settings VALUES (?, ?, ?, ?, ?, ?)",
                    [model, feature, method, threshold, utcnow(), actor])

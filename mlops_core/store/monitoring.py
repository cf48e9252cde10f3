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

from ..errors import InvalidInputError, NotFoundError
from .clock import utcnow
from .models import ModelInfo, quote_ident

WINDOWS = ("hour", "day", "week")

#: sklearn.metrics.log_loss clips probabilities to [eps, 1 - eps] with eps = float64 machine epsilon.
LOG_LOSS_EPS = float(np.finfo(np.float64).eps)


def check_window(window: str) -> str:
    """Return ``window`` when it is hour, day or week; raise InvalidInputError otherwise."""
    if window not in WINDOWS:
        raise InvalidInputError(f"Unknown window {window!r}. Choose one of: {', '.join(WINDOWS)}.", window=window)
    return window


def _range_sql(start, end, col: str = "l.ts") -> tuple[str, list]:
    sql, params = "", []
    if start is not None:
        sql += f" AND {col} >= ?"
        params.append(start)
    if end is not None:
        sql += f" AND {col} < ?"
        params.append(end)
    return sql, params


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


def classification_counts(con, info: ModelInfo, window: str, start=None, end=None, versions=None) -> pd.DataFrame:
    """Confusion counts per (window, version, prediction, label), NULL label = not labelled yet.

    Columns: window_start, version, prediction, label, n, n_scored, log_loss_sum (sum over scored,
    labelled rows of -ln p(true class) with p clipped like sklearn; binary models only).
    """
    check_window(window)
    pos = info.positive_class
    rng, p1 = _range_sql(start, end)
    ver, p2 = _versions_sql(versions)
    if pos is not None:
        clip = f"greatest(least(l.score, {1 - LOG_LOSS_EPS!r}), {LOG_LOSS_EPS!r})"
        ll = (f"sum(CASE WHEN lb.label IS NULL OR l.score IS NULL THEN NULL WHEN lb.label = ? THEN -ln({clip}) "
              f"ELSE -ln(1 - {clip}) END)")
        ll_params = [pos]
    else:
        ll, ll_params = "CAST(NULL AS DOUBLE)", []
    sql = f"""
        SELECT date_trunc('{window}', l.ts) AS window_start, l.version, l.prediction, lb.label,
               count(*) AS n, count(CASE WHEN lb.label IS NOT NULL THEN l.score END) AS n_scored,
               {ll} AS log_loss_sum
        FROM {quote_ident(info.log_table)} l
        LEFT JOIN {quote_ident(info.label_table)} lb ON l.request_id = lb.request_id
        WHERE 1 = 1 {rng} {ver}
        GROUP BY 1, 2, 3, 4
    """
    return con.execute(sql, [*ll_params, *p1, *p2]).df()


def auc_by_window(con, info: ModelInfo, window: str, start=None, end=None, versions=None) -> pd.DataFrame:
    """Exact ROC AUC per (window, version) by the rank-sum identity, ties counted half.

    AUC = sum over distinct scores s of pos(s) * (neg(< s) + neg(= s) / 2) / (P * N): the
    Mann-Whitney form of the area under the ROC curve, equal to sklearn's trapezoidal AUC.
    Columns: window_start, version, roc_auc, n_pos, n_neg (roc_auc NULL when one class is absent).
    """
    check_window(window)
    rng, p1 = _range_sql(start, end)
    ver, p2 = _versions_sql(versions)
    sql = f"""
        WITH j AS (
            SELECT date_trunc('{window}', l.ts) AS w, l.version AS v, l.score AS s,
                   CASE WHEN lb.label = ? THEN 1 ELSE 0 END AS y
            FROM {quote_ident(info.log_table)} l
            JOIN {quote_ident(info.label_table)} lb ON l.request_id = lb.request_id
            WHERE l.score IS NOT NULL AND lb.label IS NOT NULL {rng} {ver}
        ), g AS (
            SELECT w, v, s, sum(y) AS pos, sum(1 - y) AS neg FROM j GROUP BY w, v, s
        ), c AS (
            SELECT w, v, pos, neg,
                   coalesce(sum(neg) OVER (PARTITION BY w, v ORDER BY s ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                       AS neg_below
            FROM g
        )
        SELECT w AS window_start, v AS version,
               CASE WHEN sum(pos) > 0 AND sum(neg) > 0
                    THEN sum(CAST(pos AS DOUBLE) * (CAST(neg_below AS DOUBLE) + 0.5 * neg))
                         / (CAST(sum(pos) AS DOUBLE) * CAST(sum(neg) AS DOUBLE)) END AS roc_auc,
               sum(pos) AS n_pos, sum(neg) AS n_neg
        FROM c GROUP BY w, v
    """
    return con.execute(sql, [info.positive_class, *p1, *p2]).df()


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


def log_relation(info: ModelInfo, columns: list[str], start=None, end=None) -> tuple[str, list]:
    """A table expression over the log in [start, end): the given columns (``__target__`` = the label)."""
    rng, p1 = _range_sql(start, end)
    sel = ", ".join("lb.label AS __target__" if c == "__target__" else
                    f"l.{quote_ident(column_of(info, c))} AS {quote_ident(c)}" for c in columns)
    return (f"(SELECT {sel} FROM {quote_ident(info.log_table)} l LEFT JOIN {quote_ident(info.label_table)} lb "
            f"ON l.request_id = lb.request_id WHERE 1 = 1 {rng})", p1)


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


# --- reference summaries computed by the engine --------------------------------------------


def summarise_relation(con, relation: str, columns: dict[str, str], params=()) -> tuple[list, int]:
    """Summarise ``columns`` ({name: numeric|categorical}) of ``relation`` (a table expression) in two scans.

    Produces what ``mlops_core.reference.summarise`` produces (same decile edges, 101 linear
    quantiles, mean, population std, MAD about the median, counts; NaN counts as null, +-inf
    lands in the outer bins) without loading the rows into Python. Uses DuckDB's
    ``quantile_cont`` (a reference is summarised once; the per-window queries stay portable).
    Returns (features, row count).
    """
    from ..reference import N_BINS, QUANTILE_LEVELS, Bin, FeatureReference

    levels = [float(q) for q in QUANTILE_LEVELS]
    deciles = [float(q) for q in np.linspace(0.1, 0.9, N_BINS - 1)]
    numeric = [c for c, k in columns.items() if k == "numeric"]
    cats = [c for c, k in columns.items() if k != "numeric"]
    total = int(con.execute(f"SELECT count(*) FROM {relation}", list(params)).fetchall()[0][0])
    out: dict[str, FeatureReference] = {}
    if numeric:
        parts = []
        for c in numeric:
            q = f"CAST({quote_ident(c)} AS DOUBLE)"
            fin = f"isfinite({q})"
            parts.append(
                f"count({q}) - count(CASE WHEN isnan({q}) THEN 1 END), avg({q}) FILTER (WHERE {fin}), "
                f"stddev_pop({q}) FILTER (WHERE {fin}), min({q}) FILTER (WHERE {fin}), max({q}) FILTER (WHERE {fin}), "
                f"quantile_cont({q}, {levels!r}) FILTER (WHERE {fin}), quantile_cont({q}, {deciles!r}) FILTER (WHERE {fin})")
        row = con.execute(f"SELECT {', '.join(parts)} FROM {relation}", list(params)).fetchall()[0]
        second, edges_of = [], {}
        for i, c in enumerate(numeric):
            n, mean, std, mn, mx, qs, dec = row[7 * i:7 * i + 7]
            ref = FeatureReference(feature=c, kind="numeric", n=int(n), null_count=total - int(n))
            if qs is not None:
                ref.mean, ref.std, ref.min, ref.max = float(mean), float(std), float(mn), float(mx)
                ref.quantiles = [float(v) for v in qs]
            edges = np.unique(np.asarray(dec, dtype=float)) if dec is not None else np.array([], dtype=float)
            edges_of[c] = edges
            out[c] = ref
            q = f"CAST({quote_ident(c)} AS DOUBLE)"
            second.append(f"count(CASE WHEN NOT isnan({q}) THEN 1 END)")
            second += [f"sum(CAST({q} >= {_literal(e)} AND NOT isnan({q}) AS INTEGER))" for e in edges]
            second.append(f"avg(abs({q} - {_literal(ref.quantiles[50])})) FILTER (WHERE isfinite({q}))"
                          if ref.quantiles else "NULL")
        row = con.execute(f"SELECT {', '.join(second)} FROM {relation}", list(params)).fetchall()[0]
        pos = 0
        for c in numeric:
            edges = edges_of[c]
            n_valid = int(row[pos])
            ge = [int(v or 0) for v in row[pos + 1:pos + 1 + len(edges)]]
            mad = row[pos + 1 + len(edges)]
            pos += len(edges) + 2
            cum = [n_valid, *ge, 0]
            bounds = [None, *[float(e) for e in edges], None]
            out[c].bins = [Bin(bin=i, count=cum[i] - cum[i + 1], lower=bounds[i], upper=bounds[i + 1])
                           for i in range(len(edges) + 1)]
            out[c].mad = float(mad) if mad is not None else None
    if cats:
        union = " UNION ALL ".join(
            f"SELECT {i} AS f, CAST({quote_ident(c)} AS VARCHAR) AS v, count(*) AS n FROM {relation} "
            f"WHERE {quote_ident(c)} IS NOT NULL GROUP BY 2" for i, c in enumerate(cats))
        counts = con.execute(union, list(params) * len(cats)).fetchall()
        by: dict[int, list] = {}
        for f, v, n in counts:
            by.setdefault(int(f), []).append((v, int(n)))
        for i, c in enumerate(cats):
            items = sorted(by.get(i, []))
            n = sum(k for _, k in items)
            out[c] = FeatureReference(feature=c, kind="categorical", n=n, null_count=total - n,
                                      bins=[Bin(bin=j, count=k, category=v) for j, (v, k) in enumerate(items)])
    return [out[c] for c in columns], total

"""Alert rules per model, their evaluation (``run_monitoring``, safe from cron) and the alert list.

Rule kinds (``alert_rules.kind``):

- ``metric_below`` / ``metric_above``: the headline (or ``target``) metric of a finished
  window is below / above ``threshold``. To keep alarms trustworthy with few labels, the
  whole 95% interval must be on the wrong side (``ci_high < threshold`` for accuracy-like
  metrics) when the metric has one, and the window needs ``params.min_labels`` labels
  (default 50).
- ``drift_share_above``: the share of drifted features in a finished window is above ``threshold``.
- ``feature_drift``: feature ``target`` (or any feature when ``target`` is empty, or a
  pseudo-feature such as ``__prediction__``) drifted in a finished window.
- ``validation_anomalies``: more than ``threshold`` validation anomalies recorded in a window.
- ``no_traffic``: no prediction logged for ``threshold`` hours.
- ``stale_feature_view``: a feature view the model takes features from (``target``, or every view of
  its binding when empty) has its newest event time older than ``threshold`` hours, or, without a
  threshold, than the view's own staleness limit (its ``freshness``, else its TTL); also when the view
  has no row at all. One alert per view and stale stretch (the key holds the newest event time).

Each rule raises at most one alert per window (``dedup_key`` = rule id + window start), so
running the monitor again (cron) never duplicates alerts. A model without rules gets the
defaults of ``default_rules`` on its first run.

Alerts of kind ``run_anomaly`` come from no rule: a pipeline run unlike the recent runs of
its kind raises one (``run_checks``), one open alert per model, series and statistic.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from mlops_core import metrics
from mlops_core.clock import utcnow
from mlops_core.data.schema import finite_number, shown
from mlops_core.entities import PSEUDO_FEATURES, ModelInfo, RunAnomaly
from mlops_core.errors import InvalidInputError, NotFoundError
from mlops_core.monitoring import drift as driftmod
from mlops_core.monitoring import performance as perf
from mlops_core.monitoring import run_checks
from mlops_core.store import Store, logs, transaction
from mlops_core.store import alerts as astore
from mlops_core.store import drift as dstore
from mlops_core.store import features as fstore
from mlops_core.store import models as mstore
from mlops_core.store import predictions as pstore
from mlops_core.store import runs as runstore
from mlops_core.store.conditions import WINDOW_LENGTH, check_window

RULE_KINDS = ("metric_below", "metric_above", "drift_share_above", "feature_drift", "validation_anomalies", "no_traffic",
              "stale_feature_view")
#: Rule kinds whose threshold may be left out.
_OPTIONAL_THRESHOLD = ("feature_drift", "stale_feature_view")
SEVERITIES = ("info", "warning", "critical")
#: Windows recomputed on every run (labels and late predictions still arrive for them).
RECOMPUTE_WINDOWS = {"hour": 48, "day": 14, "week": 4}
DEFAULT_MIN_LABELS = 50


@dataclass
class RaisedAlert:
    """An alert a monitoring run raised."""

    id: int
    kind: str
    severity: str
    message: str
    window_start: datetime | None


@dataclass
class MonitoringResult:
    """What one monitoring run computed and raised."""

    model: str
    run_id: str
    window: str
    windows_computed: int
    alerts: list[RaisedAlert] = field(default_factory=list)
    drift_window: datetime | None = None
    drift_share: float | None = None
    drifted_features: list[str] = field(default_factory=list)
    headline_metric: str | None = None
    headline_value: float | None = None
    metric_window: datetime | None = None
    metrics: dict = field(default_factory=dict)
    rules_created: int = 0
    seconds: float = 0.0
    predictions: int | None = None  # in the finished windows looked at
    label_coverage: float | None = None  # labelled share of those predictions
    positive_rate: float | None = None  # binary classifiers: positive share of those predictions
    run_anomalies: list[RunAnomaly] = field(default_factory=list)  # what was unusual about this run


def _check_rule(info: ModelInfo, kind: str, severity: str, threshold, target: str | None) -> float | None:
    """The rule's threshold as a float (None when it has none); raise InvalidInputError for a bad kind, severity,
    threshold or target."""
    if kind not in RULE_KINDS:
        raise InvalidInputError(f"Unknown alert rule kind {shown(kind)}. Choose one of: {', '.join(RULE_KINDS)}.",
                                kind=kind)
    if severity not in SEVERITIES:
        raise InvalidInputError(f"Unknown severity {shown(severity)}. Choose one of: {', '.join(SEVERITIES)}.",
                                severity=severity)
    if kind not in _OPTIONAL_THRESHOLD and threshold is None:
        raise InvalidInputError(f"A {kind} rule needs a finite --threshold.", kind=kind)
    number = None if threshold is None else finite_number(threshold, f"The --threshold of a {kind} rule")
    if target is None:
        return number
    if kind == "feature_drift":
        known = [*info.feature_names, *PSEUDO_FEATURES]
        if target not in known:
            raise InvalidInputError(f"Model {info.name!r} has no feature {shown(target)} to watch for drift. Choose one "
                                    f"of: {', '.join(known)} (or no --target for any feature).", target=target)
    elif kind in ("metric_below", "metric_above"):
        known = metrics.names(info.task, info.binary)
        if target not in known:
            raise InvalidInputError(f"{shown(target)} is not a metric of the {info.task} model {info.name!r}. "
                                    f"Choose one of: {', '.join(known)}.", target=target)
    elif kind == "stale_feature_view":
        return number  # any view may be watched, also one the model is not bound to; an unknown one alerts when evaluated
    else:
        raise InvalidInputError(f"A {kind} rule has no --target (it watches the whole model).", kind=kind)
    return number


def default_rules(con: duckdb.DuckDBPyConnection, info: ModelInfo) -> list[dict]:
    """The rules a model gets when it has none: metric, drift share, prediction drift, validation, traffic."""
    version = mstore.current_alias(con, info.name)
    holdout = {}
    if version is not None:
        holdout = mstore.get_version(con, info.name, version).holdout_metrics or {}
    rules = []
    if info.task == "classification":
        base = holdout.get("accuracy")
        thr = round(base - 0.05, 3) if isinstance(base, (int, float)) and base is not None else 0.7
        rules.append(dict(kind="metric_below", target="accuracy", threshold=thr, severity="critical",
                          params={"min_labels": DEFAULT_MIN_LABELS, "use_interval": True}))
    else:
        base = holdout.get("rmse")
        thr = round(base * 1.25, 4) if isinstance(base, (int, float)) and base else None
        if thr is not None:
            rules.append(dict(kind="metric_above", target="rmse", threshold=thr, severity="critical",
                              params={"min_labels": DEFAULT_MIN_LABELS, "use_interval": True}))
    rules += [
        dict(kind="drift_share_above", target=None, threshold=0.25, severity="warning", params={}),
        dict(kind="feature_drift", target="__prediction__", threshold=None, severity="warning", params={}),
        dict(kind="validation_anomalies", target=None, threshold=0, severity="warning", params={}),
        dict(kind="no_traffic", target=None, threshold=24, severity="critical", params={}),
    ]
    if info.feature_binding is not None:
        rules.append(STALE_VIEW_RULE)
    return rules


#: The rule a model bound to the feature store gets: any of its views past its own staleness limit.
STALE_VIEW_RULE = dict(kind="stale_feature_view", target=None, threshold=None, severity="warning", params={})


def set_rule(con: duckdb.DuckDBPyConnection, info: ModelInfo, kind: str, *, target: str | None = None,
             threshold: float | None, severity: str = "warning", params: dict | None = None,
             enabled: bool = True) -> int:
    """Create or update the rule (model, kind, target); return its id. Raises InvalidInputError (kind, severity,
    threshold)."""
    number = _check_rule(info, kind, severity, threshold, target)
    with transaction(con):
        return astore.upsert_rule(con, info.name, kind, target, number, severity, params, enabled)


def list_rules(con: duckdb.DuckDBPyConnection, info: ModelInfo) -> pd.DataFrame:
    """The model's alert rules (id, kind, target, threshold, severity, params, enabled, created_at)."""
    return astore.list_rules(con, info.name)


def delete_rule(con: duckdb.DuckDBPyConnection, rule_id: int) -> None:
    """Delete an alert rule; raise NotFoundError."""
    with transaction(con):
        astore.delete_rule(con, int(rule_id))


def list_alerts(con: duckdb.DuckDBPyConnection, model: str | None = None, *, open_only: bool = False) -> pd.DataFrame:
    """Alerts, newest first (of one model, or all); ``open_only`` hides acknowledged ones."""
    return astore.list_alerts(con, model, open_only)


def acknowledge(con: duckdb.DuckDBPyConnection, alert_id: int, *, actor: str) -> bool:
    """Acknowledge an alert and audit it; return False when it was already acknowledged. Raises NotFoundError."""
    now = utcnow()
    with transaction(con):
        model = astore.acknowledge(con, int(alert_id), actor, now)
        if model is not None:
            runstore.insert_audit(con, actor=actor, action="acknowledge_alert", model=model,
                                  reason=f"alert {alert_id} acknowledged", details={"alert_id": int(alert_id)}, at=now)
    return model is not None


# --- evaluation ------------------------------------------------------------------------------


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4g}"


def _rule_params(rule) -> dict:
    p = rule.get("params")
    if isinstance(p, str) and p:
        try:
            return json.loads(p)
        except ValueError:
            return {}
    return p or {}


def _metric_alerts(rule: dict, perf_df: pd.DataFrame, finished: set, window: str) -> list[dict]:
    params = _rule_params(rule)
    if perf_df.empty:
        return []
    metric = rule.get("target") or str(perf_df["metric"].iloc[0])
    if metric not in perf_df.columns:
        return []
    min_labels = int(params.get("min_labels", DEFAULT_MIN_LABELS))
    use_ci = bool(params.get("use_interval", True))
    below = rule["kind"] == "metric_below"
    out = []
    for r in perf_df.itertuples(index=False):
        row = r._asdict()
        if row["window_start"] not in finished or row["n_labelled"] < min_labels:
            continue
        value = row[metric]
        if value is None or not math.isfinite(value):
            continue
        has_ci = row.get("metric") == metric and row.get("ci_low") is not None and math.isfinite(row.get("ci_low", math.nan))
        bound = (row["ci_high"] if below else row["ci_low"]) if (use_ci and has_ci) else value
        if (below and bound < rule["threshold"]) or (not below and bound > rule["threshold"]):
            word = "below" if below else "above"
            ci = f" (95% CI {_fmt(row['ci_low'])}–{_fmt(row['ci_high'])})" if has_ci else ""
            out.append(dict(window_start=row["window_start"], message=(
                f"{metric} {_fmt(value)}{ci} of version {row['version']} is {word} {_fmt(rule['threshold'])} in the "
                f"{window} from {row['window_start']:%Y-%m-%d %H:%M} ({row['n_labelled']} labelled predictions)."),
                details={"metric": metric, "value": value, "ci_low": row.get("ci_low"), "ci_high": row.get("ci_high"),
                         "version": int(row["version"]), "n_labelled": int(row["n_labelled"])},
                key_suffix=f"v{row['version']}"))
    return out


def _drift_alerts(rule: dict, drift_df: pd.DataFrame, share: pd.DataFrame, finished: set, window: str) -> list[dict]:
    out = []
    if rule["kind"] == "drift_share_above":
        for r in share.itertuples(index=False):
            if r.window_start in finished and r.share > rule["threshold"]:
                feats = drift_df[(drift_df["window_start"] == r.window_start) & drift_df["drifted"]
                                 & ~drift_df["feature"].isin(PSEUDO_FEATURES)]["feature"].unique().tolist()
                out.append(dict(window_start=r.window_start, message=(
                    f"{r.n_drifted} of {r.n_features} features drifted ({r.share:.0%}, above {rule['threshold']:.0%}) "
                    f"in the {window} from {r.window_start:%Y-%m-%d %H:%M}: {', '.join(sorted(feats))}."),
                    details={"share": float(r.share), "features": sorted(feats)}))
        return out
    target = rule.get("target")
    hits = drift_df[drift_df["drifted"] & drift_df["window_start"].isin(finished)]
    if target:
        hits = hits[hits["feature"] == target]
    else:
        hits = hits[~hits["feature"].isin(PSEUDO_FEATURES)]
    for ws, part in hits.groupby("window_start"):
        desc = ", ".join(f"{p.feature} ({p.method} {_fmt(p.statistic)} ≥ {_fmt(p.threshold)})" for p in part.itertuples())
        what = {"__prediction__": "Prediction drift", "__score__": "Score drift", "__target__": "Target drift"}.get(
            target, "Feature drift")
        out.append(dict(window_start=ws, message=f"{what} in the {window} from {ws:%Y-%m-%d %H:%M}: {desc}.",
                        details={"features": part["feature"].tolist(), "statistics": part["statistic"].tolist()}))
    return out


def _finished_windows(starts, window: str, now: datetime) -> set:
    length = WINDOW_LENGTH[window]
    return {ws for ws in starts if ws + length <= now}


def run_monitoring(store: Store, info: ModelInfo, *, now: datetime | None = None, window: str = "day",
                   lookback: int | None = None, trigger: str = "schedule", actor: str = "monitor") -> MonitoringResult:
    """Compute and store drift for the recent windows, evaluate the alert rules, store new alerts.

    Idempotent and safe from cron: drift rows of a window are replaced, alerts are deduplicated
    per rule and window. The first run computes the whole log (so charts have history); later
    runs recompute the last ``lookback`` windows (default: 14 days / 48 hours / 4 weeks).
    Writes a ``runs`` row of kind ``monitor`` (failed, with the error, when something breaks); a succeeded
    one is checked against the earlier monitor runs (``run_checks``) in the transaction that records it.
    Returns a MonitoringResult. Raises InvalidInputError (window).
    """
    t0 = time.perf_counter()
    check_window(window)
    now = now or utcnow()
    with store.transaction() as con:
        run_id = runstore.insert_run(con, model=info.name, kind="monitor", trigger=trigger, actor=actor,
                                     status="running", params={"window": window, "now": now.isoformat()},
                                     created_at=now)
    try:
        result = _monitor(store, info, run_id, now, window, lookback)
    except Exception as exc:
        with store.transaction() as con:
            runstore.update_run(con, run_id, status="failed", error=str(exc),
                                finished_at=now + timedelta(seconds=time.perf_counter() - t0),
                                duration_s=time.perf_counter() - t0, message="monitoring failed")
        raise
    result.seconds = time.perf_counter() - t0
    with store.transaction() as con:
        runstore.update_run(
            con, run_id, status="succeeded", progress=1.0, finished_at=now + timedelta(seconds=result.seconds),
            duration_s=result.seconds,
            message=f"{len(result.alerts)} new alert(s); drift share {_fmt(result.drift_share)}; "
                    f"{result.headline_metric} {_fmt(result.headline_value)}",
            metrics={"drift_share": result.drift_share, result.headline_metric or "metric": result.headline_value},
            statistics={"windows_computed": result.windows_computed, "alerts": len(result.alerts),
                        "drifted_features": result.drifted_features, "predictions": result.predictions,
                        "label_coverage": result.label_coverage, "positive_rate": result.positive_rate})
        result.run_anomalies = run_checks.check_finished_run(con, run_id)
    return result


def _monitor(store: Store, info: ModelInfo, run_id: str, now: datetime, window: str,
             lookback: int | None) -> MonitoringResult:
    model = info.name
    length = WINDOW_LENGTH[window]
    with store.connect() as con:
        ref_id = driftmod.default_reference_id(con, model)
        last_stored = dstore.last_window(con, model, ref_id, window)
        first_ts, _ = pstore.log_time_range(con, info)
    result = MonitoringResult(model=model, run_id=run_id, window=window, windows_computed=0,
                              headline_metric=metrics.headline(info.task))
    n_back = lookback if lookback is not None else RECOMPUTE_WINDOWS[window]
    start = None if last_stored is None and lookback is None else now - n_back * length
    drift_df = pd.DataFrame()
    if first_ts is not None:
        drift_df = driftmod.over_time(store, info, window=window, start=start, end=now, reference_id=ref_id,
                                      store_results=True)
        result.windows_computed = int(drift_df["window_start"].nunique()) if len(drift_df) else 0
    share = driftmod.share(drift_df)
    finished = _finished_windows(set(drift_df["window_start"]) if len(drift_df) else set(), window, now)
    done_share = share[share["window_start"].isin(finished)] if len(share) else share
    if len(done_share):
        last = done_share.iloc[-1]
        result.drift_window = last["window_start"].to_pydatetime()
        result.drift_share = float(last["share"])
        part = drift_df[(drift_df["window_start"] == last["window_start"]) & drift_df["drifted"]]
        result.drifted_features = sorted(part.loc[~part["feature"].isin(PSEUDO_FEATURES), "feature"].unique())

    perf_start = now - n_back * length if start is not None else None
    with store.connect() as con:
        log = logs.view(con, store.logs, info, perf_start, now)
    with store.engine() as con:
        perf_df = perf.over_time(con, log, window=window, start=perf_start, end=now)
    perf_done = perf_df[perf_df["window_start"].isin(_finished_windows(set(perf_df["window_start"]), window, now))] \
        if len(perf_df) else perf_df
    _traffic(result, perf_done, info)
    labelled = perf_done[perf_done["n_labelled"] >= DEFAULT_MIN_LABELS] if len(perf_done) else perf_done
    if len(labelled):
        newest = labelled[labelled["window_start"] == labelled["window_start"].max()]
        top = newest.sort_values("n_labelled").iloc[-1]
        result.metric_window = top["window_start"].to_pydatetime()
        result.headline_value = float(top[result.headline_metric])
        result.metrics = {m: (float(top[m]) if pd.notna(top[m]) else None)
                          for m in metrics.names(info.task, info.binary) if m in top}

    with store.transaction() as con:
        rules = astore.list_rules(con, model)
        if rules.empty:
            for r in default_rules(con, info):
                astore.upsert_rule(con, model, r["kind"], r["target"], r["threshold"], r["severity"], r["params"])
                result.rules_created += 1
            rules = astore.list_rules(con, model)
        elif info.feature_binding is not None and not (rules["kind"] == "stale_feature_view").any():
            r = STALE_VIEW_RULE  # bound to the feature store after its first rules were made
            astore.upsert_rule(con, model, r["kind"], r["target"], r["threshold"], r["severity"], r["params"])
            result.rules_created += 1
            rules = astore.list_rules(con, model)
        rules = rules[rules["enabled"]]
        for rule in rules.to_dict(orient="records"):
            for hit in _evaluate_rule(con, info, rule, drift_df, share, perf_df, finished, window, now, length):
                ws = hit.get("window_start")
                ws = ws.to_pydatetime() if isinstance(ws, pd.Timestamp) else ws
                key = f"rule:{rule['id']}:{ws.isoformat() if ws else ''}" + (
                    f":{hit['key_suffix']}" if hit.get("key_suffix") else "")
                alert_id = astore.insert_alert(
                    con, model=model, kind=rule["kind"], severity=rule["severity"], message=hit["message"],
                    rule_id=int(rule["id"]), window_start=ws, dedup_key=key,
                    details={**hit.get("details", {}), "run_id": run_id}, raised_at=now)
                if alert_id is not None:
                    result.alerts.append(RaisedAlert(alert_id, rule["kind"], rule["severity"], hit["message"], ws))
    return result


def _traffic(result: MonitoringResult, perf_done: pd.DataFrame, info: ModelInfo) -> None:
    """Predictions, label coverage and positive rate of the finished windows looked at (for run anomalies)."""
    n = int(perf_done["n"].sum()) if len(perf_done) else 0
    if not n:
        return
    result.predictions = n
    result.label_coverage = float(perf_done["n_labelled"].sum()) / n
    if info.binary and "positive_rate" in perf_done.columns:
        rated = perf_done[perf_done["positive_rate"].notna()]
        if int(rated["n"].sum()):
            result.positive_rate = float((rated["positive_rate"] * rated["n"]).sum() / rated["n"].sum())


def _evaluate_rule(con, info, rule, drift_df, share, perf_df, finished, window, now, length) -> list[dict]:
    kind = rule["kind"]
    if kind in ("metric_below", "metric_above"):
        done = _finished_windows(set(perf_df["window_start"]), window, now) if len(perf_df) else set()
        return _metric_alerts(rule, perf_df, done, window)
    if kind in ("drift_share_above", "feature_drift"):
        if drift_df.empty:
            return []
        return _drift_alerts(rule, drift_df, share, finished, window)
    if kind == "validation_anomalies":
        out = []
        for ws in sorted(finished)[-RECOMPUTE_WINDOWS[window]:]:
            ws_dt = ws.to_pydatetime() if isinstance(ws, pd.Timestamp) else ws
            count = astore.validation_anomaly_counts(con, info.name, ws_dt, ws_dt + length)
            if count > (rule["threshold"] or 0):
                out.append(dict(window_start=ws_dt, message=(
                    f"{count} validation anomalies in the {window} from {ws_dt:%Y-%m-%d %H:%M} "
                    f"(more than {_fmt(rule['threshold'])})."), details={"anomalies": count}))
        return out
    if kind == "stale_feature_view":
        return _stale_view_alerts(con, info, rule, now)
    if kind == "no_traffic":
        _, last = pstore.log_time_range(con, info)
        hours = float(rule["threshold"])
        silent = (now - last).total_seconds() / 3600 if last is not None else None
        if last is None or silent >= hours:
            since = f"since {last:%Y-%m-%d %H:%M}" if last is not None else "ever"
            # one alert per silent stretch: the key is the last prediction's time
            return [dict(window_start=last, message=f"No predictions logged {since} ({_fmt(silent)} h, limit {hours:g} h).",
                         details={"last_prediction": last, "hours": silent})]
        return []
    return []


def _stale_view_alerts(con, info: ModelInfo, rule: dict, now: datetime) -> list[dict]:
    """One hit per stale view of the rule (see the module docstring); ``con``: a metadata visit."""
    target = rule.get("target")
    target = None if target is None or (isinstance(target, float) and math.isnan(target)) else str(target)
    views = [target] if target else (info.feature_binding.views if info.feature_binding else [])
    threshold = rule.get("threshold")
    hours = None if threshold is None or (isinstance(threshold, float) and math.isnan(threshold)) else float(threshold)
    out = []
    for name in views:
        try:
            view = fstore.get_view(con, name)
        except NotFoundError:
            out.append(dict(window_start=None, key_suffix=f"view={name}:undefined",
                            message=f"Feature view {name!r}, which {info.name} takes features from, is not defined.",
                            details={"view": name}))
            continue
        fresh = fstore.freshness(con, view, now)
        limit = hours * 3600 if hours is not None else fresh.stale_after_s
        newest = fresh.newest_event_ts
        if newest is not None and (limit is None or fresh.age_s <= limit):
            continue
        if newest is None:
            message = f"Feature view {name!r} has no rows; {info.name} gets no values from it."
        else:
            message = (f"Feature view {name!r} is stale: its newest event time is {newest:%Y-%m-%d %H:%M} "
                       f"({fresh.age_s / 3600:.1f} h ago, limit {limit / 3600:g} h); {info.name} is served ever older "
                       "values until they pass the view's TTL. Check the source feeding it.")
        out.append(dict(window_start=newest, key_suffix=f"view={name}", message=message,
                        details={"view": name, "newest_event_ts": newest, "age_h": None if newest is None
                                 else fresh.age_s / 3600, "limit_h": None if limit is None else limit / 3600}))
    return out


def check_feature_freshness(store: Store, info: ModelInfo, *, now: datetime | None = None) -> list[RaisedAlert]:
    """Evaluate only the model's ``stale_feature_view`` rules (adding the default one to a model bound to the feature
    store that has none) and store new alerts; return them. What ``run_monitoring`` does for these rules, without
    the drift and performance work."""
    now = now or utcnow()
    raised = []
    with store.transaction() as con:
        rules = astore.list_rules(con, info.name)
        if info.feature_binding is not None and not (rules["kind"] == "stale_feature_view").any():
            r = STALE_VIEW_RULE
            astore.upsert_rule(con, info.name, r["kind"], r["target"], r["threshold"], r["severity"], r["params"])
            rules = astore.list_rules(con, info.name)
        rules = rules[(rules["kind"] == "stale_feature_view") & rules["enabled"]]
        for rule in rules.to_dict(orient="records"):
            for hit in _stale_view_alerts(con, info, rule, now):
                ws = hit.get("window_start")
                key = f"rule:{rule['id']}:{ws.isoformat() if ws else ''}:{hit['key_suffix']}"
                alert_id = astore.insert_alert(con, model=info.name, kind=rule["kind"], severity=rule["severity"],
                                               message=hit["message"], rule_id=int(rule["id"]), window_start=ws,
                                               dedup_key=key, details=hit.get("details", {}), raised_at=now)
                if alert_id is not None:
                    raised.append(RaisedAlert(alert_id, rule["kind"], rule["severity"], hit["message"], ws))
    return raised


__all__ = [
    "RULE_KINDS",
    "SEVERITIES",
    "MonitoringResult",
    "RaisedAlert",
    "acknowledge",
    "check_feature_freshness",
    "default_rules",
    "delete_rule",
    "list_alerts",
    "list_rules",
    "run_monitoring",
    "set_rule",
]

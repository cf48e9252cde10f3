"""Data, prediction and target drift: each method a small pure function (``registry``), and drift over time.

See ``registry`` for the methods, their statistics and default thresholds, and
docs/monitoring.md for the formulas and their sources.

Decision rule ("trustworthy alarms"): p-value tests call any shift significant once samples
are large, so the default decision is an **effect size** (a distance) over its threshold.
Small windows have noisy distances, so a distance only counts as drift when a significance
guard agrees as well: the KS test (numeric) or the chi-square test (categorical) on the same
data must give p < ``GUARD_ALPHA`` (0.01). For the distance methods ``p_value`` reports that
guard's p-value. So: large n -> the effect size decides (no alarm for meaningless shifts);
small n -> the test decides (false alarms stay at most ``GUARD_ALPHA``).

Binning: numeric features use the reference's decile bins (open outer bins, see
``mlops_core.data.reference``); categorical features use the reference's categories plus one
bin for categories the reference never saw. Nulls (and NaN) are left out of every
distribution (their rate is a validation concern).

Against raw data (``compare``) KS and Wasserstein are exact (KS equals ``scipy.stats.ks_2samp``).
Against a stored reference (``compare_with_reference``, ``over_time``) only bin counts and
means exist: KS and W1 are estimated from them (see ``ks`` and ``wasserstein``).
"""
from __future__ import annotations

import math
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mlops_core.data import reference as refmod
from mlops_core.entities import (
    PSEUDO_FEATURES,
    TARGET,
    DriftSpec,
    FeatureCounts,
    FeatureReference,
    ModelInfo,
    WindowCounts,
)
from mlops_core.errors import InvalidInputError, NotFoundError
from mlops_core.monitoring import window_results
from mlops_core.monitoring.drift import registry
from mlops_core.monitoring.drift.method import Sample
from mlops_core.store import Store, engines, logs, transaction, window_cache
from mlops_core.store import drift as dstore
from mlops_core.store import models as mstore
from mlops_core.store import references as rstore
from mlops_core.store.conditions import check_window
from mlops_core.store.logs import LogView

#: Significance the guard test must reach before a distance counts as drift.
GUARD_ALPHA = 0.01
RESULT_COLUMNS = ["feature", "method", "statistic", "p_value", "threshold", "drifted"]
SERIES_COLUMNS = ["window_start", *RESULT_COLUMNS, "n_reference", "n_current"]


# --- evaluating a feature ---------------------------------------------------------------------


def _methods_for(feature: str, kind: str, methods) -> list[str]:
    """The methods to run on ``feature``; explicit methods that do not apply to its kind are skipped."""
    chosen = methods.get(feature) if isinstance(methods, dict) else methods
    if chosen is None:
        return [registry.DEFAULT[kind]]
    names = [registry.get(m).name for m in ([chosen] if isinstance(chosen, str) else chosen)]
    usable = [m for m in names if kind in registry.METHODS[m].kinds]
    if not usable and isinstance(methods, dict) and feature in methods:
        raise InvalidInputError(
            f"None of the methods {names} applies to the {kind} feature {feature!r}; use one of "
            f"{', '.join(registry.for_kind(kind))}.", feature=feature, methods=names)
    return usable


def _threshold(feature: str, method: str, thresholds) -> float:
    if thresholds:
        for key in ((feature, method), f"{feature}:{method}", feature, method):
            if key in thresholds:
                value = thresholds[key]
                if isinstance(value, dict):
                    value = value.get(method)
                    if value is None:
                        continue
                try:
                    return float(value)
                except (TypeError, ValueError) as exc:
                    raise InvalidInputError(f"Drift threshold for {feature!r}/{method} must be a number, got {value!r}.",
                                            feature=feature, method=method) from exc
    return registry.METHODS[method].default_threshold


def evaluate(feature: str, s: Sample, methods: list[str], thresholds, alpha: float | None) -> list[dict]:
    """One result row per method for one feature's sample (see the module docstring for the decision rule)."""
    rows = []
    empty = s.n_ref == 0 or s.n_cur == 0
    guard_p = float("nan")
    if not empty and alpha is not None:
        guard_p = registry.METHODS[registry.GUARD[s.kind]].compute(s)[1]
    for name in methods:
        method = registry.METHODS[name]
        thr = _threshold(feature, name, thresholds)
        stat, p = method.compute(s)
        if method.p_value:
            drifted = bool(not math.isnan(p) and p < thr)
        else:
            p = guard_p
            significant = alpha is None or (not math.isnan(guard_p) and guard_p < alpha)
            drifted = bool(not math.isnan(stat) and stat >= thr and significant)
        rows.append({"feature": feature, "method": name, "statistic": stat, "p_value": p, "threshold": thr,
                     "drifted": drifted, "n_reference": s.n_ref, "n_current": s.n_cur})
    return rows


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "n_reference", "n_current"])[RESULT_COLUMNS]
    return df.astype({"statistic": "float64", "p_value": "float64", "threshold": "float64", "drifted": "bool"})


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _numeric(values) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)


def _categorical_counts(ref: pd.Series, cur: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    r = ref.dropna().astype(str).value_counts()
    c = cur.dropna().astype(str).value_counts()
    cats = sorted(set(r.index) | set(c.index))
    return (r.reindex(cats, fill_value=0).to_numpy(dtype=float), c.reindex(cats, fill_value=0).to_numpy(dtype=float))


def compare(reference: pd.DataFrame, current: pd.DataFrame, methods=None, thresholds=None, *,
            alpha: float | None = GUARD_ALPHA) -> pd.DataFrame:
    """Drift of every column of ``reference`` also in ``current``: one row per (feature, method).

    Columns: feature, method, statistic, p_value (NaN where the method has none), threshold, drifted.
    A column is numeric when its reference dtype is numeric (not bool), else categorical.
    ``methods``: None (the kind's default), a name or list (applied where it fits), or
    {feature: name | list}. ``thresholds``: {method | feature | (feature, method): value}.
    ``alpha``: the guard's significance level (None switches the guard off).
    Raises InvalidInputError for an unknown method or a bad threshold.
    """
    if not isinstance(reference, pd.DataFrame) or not isinstance(current, pd.DataFrame):
        raise InvalidInputError("compare() takes two pandas DataFrames (reference, current).")
    rows = []
    for feature in reference.columns:
        if feature not in current.columns:
            continue
        ref, cur = reference[feature], current[feature]
        kind = "numeric" if _is_numeric(ref) else "categorical"
        use = _methods_for(feature, kind, methods)
        if not use:
            continue
        if kind == "numeric":
            a, b = _numeric(ref), _numeric(cur)
            edges = refmod.decile_edges(a)
            fa, fb = a[np.isfinite(a)], b[np.isfinite(b)]
            sample = Sample("numeric", refmod.bin_counts(a, edges).astype(float), refmod.bin_counts(b, edges).astype(float),
                            edges=edges, ref_mean=float(fa.mean()) if fa.size else None,
                            ref_std=float(fa.std()) if fa.size else None,
                            cur_mean=float(fb.mean()) if fb.size else None, ref_values=a, cur_values=b)
        else:
            rc, cc = _categorical_counts(ref, cur)
            sample = Sample("categorical", rc, cc)
        rows += evaluate(feature, sample, use, thresholds, alpha)
    return _frame(rows)


def spec_of(ref: FeatureReference) -> DriftSpec:
    """What to count per window to compare with the stored reference ``ref``."""
    if ref.kind == "numeric":
        ok = ref.mad is not None and len(ref.quantiles) == len(refmod.QUANTILE_LEVELS)
        return DriftSpec(ref.feature, "numeric", edges=tuple(float(e) for e in ref.edges),
                         centre=ref.quantiles[50] if ok else None)
    return DriftSpec(ref.feature, "categorical", categories=tuple(b.category for b in ref.bins))


def _reference_counts(ref: FeatureReference) -> np.ndarray:
    counts = np.array([b.count for b in ref.bins], dtype=float)
    return counts if ref.kind == "numeric" else np.append(counts, 0.0)


def sample_from_values(ref: FeatureReference, values) -> Sample:
    """A sample of current raw ``values`` against the stored reference ``ref`` (binned on its edges/categories)."""
    spec = spec_of(ref)
    ref_counts = _reference_counts(ref)
    if ref.kind == "numeric":
        v = _numeric(values)
        v = v[~np.isnan(v)]
        edges = np.asarray(spec.edges, dtype=float)
        cur = refmod.bin_counts(v, edges).astype(float)
        mad = float(np.abs(v - spec.centre).mean()) if v.size and spec.centre is not None else None
        return Sample("numeric", ref_counts, cur, edges=edges, ref_mean=ref.mean, ref_std=ref.std,
                      cur_mean=float(v.mean()) if v.size else None, ref_mad=ref.mad if spec.centre is not None else None,
                      cur_mad=mad)
    s = pd.Series(values).dropna().astype(str)
    vc = s.value_counts()
    known = vc.reindex(list(spec.categories), fill_value=0).to_numpy(dtype=float)
    return Sample("categorical", ref_counts, np.append(known, float(len(s) - known.sum())))


def sample_from_counts(ref: FeatureReference, counts: FeatureCounts) -> Sample:
    """A sample from one window's SQL counts (``store.drift.window_counts``) against the stored reference ``ref``."""
    spec = spec_of(ref)
    ref_counts = _reference_counts(ref)
    n = counts.n
    if ref.kind == "numeric":
        cum = [n, *counts.at_least, 0]
        cur = np.array([cum[i] - cum[i + 1] for i in range(len(cum) - 1)], dtype=float)
        mean = counts.total / n if n and counts.total is not None else None
        mad = counts.deviation / n if n and counts.deviation is not None else None
        return Sample("numeric", ref_counts, cur, edges=np.asarray(spec.edges, dtype=float), ref_mean=ref.mean,
                      ref_std=ref.std, cur_mean=mean, ref_mad=ref.mad if spec.centre is not None else None,
                      cur_mad=mad)
    return Sample("categorical", ref_counts, np.array([*counts.per_category, n - sum(counts.per_category)],
                                                      dtype=float))


def compare_with_reference(reference: list[FeatureReference], current: pd.DataFrame, methods=None, thresholds=None, *,
                           alpha: float | None = GUARD_ALPHA) -> pd.DataFrame:
    """Drift of ``current`` against a stored reference summary: same columns as ``compare``.

    Current values are binned on the reference's decile edges / categories (unseen
    categories share one extra bin); KS and Wasserstein use the binned estimates.
    Features of the reference missing from ``current`` are skipped.
    Raises InvalidInputError for an unknown method or a bad threshold.
    """
    rows = []
    for ref in reference:
        if ref.feature not in current.columns:
            continue
        use = _methods_for(ref.feature, ref.kind, methods)
        if not use:
            continue
        rows += evaluate(ref.feature, sample_from_values(ref, current[ref.feature]), use, thresholds, alpha)
    return _frame(rows)


# --- configuration --------------------------------------------------------------------------------


def configure(con: duckdb.DuckDBPyConnection, info: ModelInfo, feature: str = "*", methods=None, *,
              threshold: float | None = None, thresholds: dict | None = None, actor: str) -> pd.DataFrame:
    """Store the drift method(s) and threshold(s) of one feature of the model (``*``: every feature).

    ``methods``: a name or list; None clears the feature's setting (back to the defaults).
    ``threshold`` applies to every method given; ``thresholds`` = {method: value} per method.
    Drift over time and the monitor use the stored settings unless a call passes its own.
    Returns the model's settings. Raises InvalidInputError (feature, method, threshold).
    """
    names = [] if methods is None else [registry.get(m).name for m in ([methods] if isinstance(methods, str) else methods)]
    rows = []
    for m in names:
        value = (thresholds or {}).get(m, threshold)
        if value is not None:
            try:
                value = float(value)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"Drift threshold for {feature!r}/{m} must be a number, got {value!r}.") from exc
            if not math.isfinite(value):
                raise InvalidInputError(f"Drift threshold for {feature!r}/{m} must be finite, got {value!r}.")
        rows.append((m, value))
    known = {*info.feature_names, *PSEUDO_FEATURES, "*"}
    if feature not in known:
        raise InvalidInputError(f"Model {info.name!r} has no feature {feature!r}. Features: "
                                f"{', '.join(info.feature_names)} (or {', '.join(PSEUDO_FEATURES)}, or * for all).",
                                feature=feature)
    if feature != "*" and names:
        spec = info.feature(feature)
        if spec is not None:
            _methods_for(feature, spec.kind, {feature: names})  # raises when none applies
    with transaction(con):
        dstore.replace_setting(con, info.name, feature, rows, actor)
    return dstore.settings(con, info.name)


def settings(con: duckdb.DuckDBPyConnection, info: ModelInfo) -> pd.DataFrame:
    """The stored drift settings of the model (feature, method, threshold, updated_at, updated_by)."""
    return dstore.settings(con, info.name)


def _stored_config(con, model: str, features: list[str]) -> tuple[dict | None, dict | None]:
    """(methods, thresholds) in ``compare``'s form from the stored settings, or (None, None)."""
    df = dstore.settings(con, model)
    if df.empty:
        return None, None
    methods, thresholds = {}, {}
    everyone = df[df["feature"] == "*"]
    for f in features:
        own = df[df["feature"] == f]
        use = own if len(own) else everyone
        if len(use):
            methods[f] = list(use["method"])
            for r in use.itertuples():
                if r.threshold is not None and not (isinstance(r.threshold, float) and math.isnan(r.threshold)):
                    thresholds[(f, r.method)] = float(r.threshold)
    return methods or None, thresholds or None


# --- over time, against the stored reference --------------------------------------------------


def default_reference_id(con: duckdb.DuckDBPyConnection, model: str) -> int:
    """The training reference of the production version (else the newest stored reference); raise NotFoundError."""
    version = mstore.current_alias(con, model)
    if version is not None:
        return rstore.latest_training_reference_id(con, model, version)
    newest = rstore.newest_reference_id(con, model)
    if newest is None:
        raise NotFoundError(f"Model {model!r} has no stored reference to compare against.", model=model)
    return newest


def _specs(info: ModelInfo, refs: list[FeatureReference]) -> tuple[list[DriftSpec], DriftSpec | None]:
    """Count specs for the model's features and pseudo-features found in the reference (the target apart)."""
    order = {name: i for i, name in enumerate([*info.feature_names, *PSEUDO_FEATURES])}
    specs = [spec_of(r) for r in refs if r.feature in order and r.feature != TARGET]
    specs.sort(key=lambda s: order[s.feature])
    target = next((spec_of(r) for r in refs if r.feature == TARGET), None)
    return specs, target


def _plan(con, info: ModelInfo, reference_id: int | None) -> tuple[int, list[FeatureReference]]:
    """On a metadata visit: the reference to compare with (the given id, else ``default_reference_id``) and its
    features."""
    ref_id = int(reference_id) if reference_id is not None else default_reference_id(con, info.name)
    return ref_id, rstore.load_reference(con, ref_id)


def window_counts(con, log: LogView, window: str, specs: list[DriftSpec], start: datetime | None,
                  end: datetime | None, target: DriftSpec | None = None) -> list[WindowCounts]:
    """``store.drift.window_counts`` per window through ``window_results.per_window``: the counts of windows whose
    files did not change come from the cache (the bins are fixed by the specs, part of the cache's name)."""

    def compute(c, view: LogView, lo, hi) -> dict:
        return {w.window_start: w for w in dstore.window_counts(c, view, window, specs, lo, hi, target)}

    def encode(counts: WindowCounts) -> dict:
        return {"rows": counts.rows, "features": {f: asdict(fc) for f, fc in counts.features.items()}}

    def decode(start_of_window: datetime, data: dict) -> WindowCounts:
        return WindowCounts(start_of_window, int(data["rows"]),
                            {f: FeatureCounts(**fc) for f, fc in data["features"].items()})

    parameters = {"specs": [asdict(s) for s in specs], "target": asdict(target) if target is not None else None}
    series = window_cache.series_name("drift", window, parameters, window_cache.code_digest((dstore.__file__,)))
    return list(window_results.per_window(con, log, window, start, end, series=series, compute=compute,
                                          encode=encode, decode=decode).values())


def over_time(store: Store, info: ModelInfo, *, window: str = "day", start: datetime | None = None,
              end: datetime | None = None, reference_id: int | None = None, store_results: bool = True,
              methods=None, thresholds=None, alpha: float | None = GUARD_ALPHA,
              engine: str | None = None) -> pd.DataFrame:
    """Drift per window and feature (plus ``__prediction__``, ``__score__``, ``__target__``) against a stored reference.

    Bin counts of every window come from one scan of the log on the log engine (the target from one
    more, joined to the labels). Returns columns window_start, feature, method, statistic, p_value,
    threshold, drifted, n_reference, n_current, reference_id, oldest first. ``methods``/``thresholds``
    as in ``compare``; when both are None the model's stored settings apply (``configure``), else the
    defaults. With ``store_results`` every window is written to ``drift_results`` (replacing earlier rows
    of the same model, reference, window size and window start). The reference defaults to the
    production version's training data. ``engine``: the log engine that counts the bins (``duckdb``, the
    default, or ``spark``; see ``store.engines``). Raises NotFoundError (reference), InvalidInputError (window,
    methods, engine), SparkUnavailableError.
    """
    check_window(window)
    engine = engines.check_engine(engine)
    with store.connect() as con:
        ref_id, refs = _plan(con, info, reference_id)
        if methods is None and thresholds is None:
            methods, thresholds = _stored_config(con, info.name, [r.feature for r in refs])
        log = logs.view(con, store.logs, info, start, end)
    by_name = {r.feature: r for r in refs}
    specs, target = _specs(info, refs)
    with engines.open_engine(engine, store) as con:
        windows = window_counts(con, log, window, specs, start, end, target)
    rows = []
    for w in windows:
        for feature, counts in w.features.items():
            ref = by_name[feature]
            use = _methods_for(feature, ref.kind, methods)
            for r in evaluate(feature, sample_from_counts(ref, counts), use, thresholds, alpha):
                r["window_start"] = w.window_start
                rows.append(r)
    result = pd.DataFrame(rows, columns=SERIES_COLUMNS)
    if len(result):
        result["window_start"] = pd.to_datetime(result["window_start"])
    result = result.astype({"statistic": "float64", "p_value": "float64", "threshold": "float64", "drifted": "bool"})
    if store_results and len(result):
        with store.transaction() as con:
            dstore.replace_results(con, info.name, ref_id, window, result)
    result["reference_id"] = ref_id
    return result


def stored(store: Store, info: ModelInfo, *, window: str = "day", start: datetime | None = None,
           end: datetime | None = None, reference_id: int | None = None, compute_missing: bool = True) -> pd.DataFrame:
    """The stored drift time series (as ``over_time`` wrote it), oldest first.

    When nothing is stored for this window size (e.g. hourly windows while the monitor stores
    daily ones) and ``compute_missing`` is true, the series is computed without storing it.
    """
    with store.connect() as con:
        df = dstore.results(con, info.name, window, start, end, reference_id)
        missing = df.empty and compute_missing and not dstore.has_results(con, info.name, window)
    if missing:
        df = over_time(store, info, window=window, start=start, end=end, reference_id=reference_id,
                       store_results=False)
    if len(df):
        df["window_start"] = pd.to_datetime(df["window_start"])
    return df


def share(df: pd.DataFrame) -> pd.DataFrame:
    """Share of drifted features per window of a drift series (features only, not prediction/score/target).

    Columns window_start, n_features (with a result), n_drifted, share. A feature checked by
    several methods counts as drifted when any of them says so.
    """
    cols = ["window_start", "n_features", "n_drifted", "share"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    feats = df[~df["feature"].isin(PSEUDO_FEATURES) & df["statistic"].notna()]
    if feats.empty:
        return pd.DataFrame(columns=cols)
    per = feats.groupby(["window_start", "feature"])["drifted"].any().reset_index()
    out = per.groupby("window_start")["drifted"].agg(n_features="size", n_drifted="sum").reset_index()
    out["n_drifted"] = out["n_drifted"].astype("int64")
    out["share"] = out["n_drifted"] / out["n_features"]
    return out[cols]


def share_over_time(store: Store, info: ModelInfo, *, window: str = "day", start: datetime | None = None,
                    end: datetime | None = None) -> pd.DataFrame:
    """``share`` of the stored series (see ``stored`` for when it computes instead)."""
    return share(stored(store, info, window=window, start=start, end=end))


def _bin_label(lower, upper) -> str:
    if lower is None and upper is None:
        return "all values"
    if lower is None:
        return f"< {upper:.4g}"
    if upper is None:
        return f"≥ {lower:.4g}"
    return f"[{lower:.4g}, {upper:.4g})"


def distribution(store: Store, info: ModelInfo, feature: str, *, start: datetime | None = None,
                 end: datetime | None = None, reference_id: int | None = None) -> pd.DataFrame:
    """Reference against current shares per bin (numeric) or category, for overlay charts.

    Columns: bin (label), reference_count, current_count, reference_share, current_share. Current =
    the log in [start, end). Raises NotFoundError (feature, reference).
    """
    with store.connect() as con:
        _, refs = _plan(con, info, reference_id)
        log = logs.view(con, store.logs, info, start, end)
    by_name = {r.feature: r for r in refs}
    if feature not in by_name:
        raise NotFoundError(f"Feature {feature!r} is not in the reference of model {info.name!r}. "
                            f"Features: {', '.join(sorted(by_name))}.", model=info.name, feature=feature)
    ref = by_name[feature]
    spec = spec_of(ref)
    is_target = feature == TARGET
    with store.engine() as con:
        windows = dstore.window_counts(con, log, "week", [] if is_target else [spec], start, end,
                                       spec if is_target else None)
    ref_counts = _reference_counts(ref)
    if ref.kind == "numeric":
        labels = [_bin_label(b.lower, b.upper) for b in ref.bins]
    else:
        labels = [str(b.category) for b in ref.bins] + ["(unseen)"]
    cur = np.zeros_like(ref_counts)
    for w in windows:
        if feature in w.features:
            cur += sample_from_counts(ref, w.features[feature]).cur_counts
    out = pd.DataFrame({"bin": labels, "reference_count": ref_counts.astype("int64"), "current_count": cur.astype("int64")})
    if ref.kind == "categorical" and out["current_count"].iloc[-1] == 0:
        out = out.iloc[:-1]
    rs, cs = out["reference_count"].sum(), out["current_count"].sum()
    out["reference_share"] = out["reference_count"] / rs if rs else 0.0
    out["current_share"] = out["current_count"] / cs if cs else 0.0
    return out


def latest(store: Store, info: ModelInfo, *, window: str = "day") -> pd.DataFrame:
    """Each feature's result in the newest stored window, most severe first (drifted, then statistic / threshold).

    Adds a ``score`` column (statistic / threshold). Computes the last week of windows (without
    storing) when nothing is stored.
    """
    df = stored(store, info, window=window, compute_missing=False)
    empty = pd.DataFrame(columns=["window_start", *RESULT_COLUMNS, "n_current", "score"])
    if df.empty:
        with store.connect() as con:
            last = logs.facts(con, info.name).last_ts
        if last is None:
            return empty
        df = over_time(store, info, window=window, start=last - timedelta(days=7), store_results=False)
        if df.empty:
            return empty
    newest = df[df["window_start"] == df["window_start"].max()].copy()
    thr = newest["threshold"].where(newest["threshold"] > 0)
    is_p = newest["method"].map(lambda m: registry.METHODS[m].p_value if m in registry.METHODS else False)
    newest["score"] = np.where(is_p, np.nan, newest["statistic"] / thr)
    newest = newest.sort_values(["drifted", "score"], ascending=[False, False], na_position="last")
    return newest.reset_index(drop=True)


# --- references -------------------------------------------------------------------------------


def _log_columns(info: ModelInfo) -> dict[str, str]:
    pred_kind = "categorical" if info.task == "classification" else "numeric"
    columns = {f.name: f.kind for f in info.features}
    columns.update({"__prediction__": pred_kind, "__score__": "numeric", TARGET: pred_kind})
    return columns


def reference_from_window(store: Store, info: ModelInfo, start: datetime | None, end: datetime | None) -> int:
    """Summarise the log in [start, end) (features, prediction, score, labels) into a stored reference; return its id.

    Raises InvalidInputError (no predictions in the window).
    """
    columns = _log_columns(info)
    with store.connect() as con:
        log = logs.view(con, store.logs, info, start, end)
    with store.engine() as con:
        table = dstore.log_arrow(con, log, list(columns), start, end)
    if table.num_rows == 0:
        raise InvalidInputError(f"Model {info.name!r} has no predictions between {start} and {end}; pick another "
                                "window.", model=info.name)
    refs = refmod.summarise_arrow(table, columns)
    with store.transaction() as con:
        return rstore.save_reference(con, info.name, refs, kind="window", window_start=start, window_end=end,
                                     rows=table.num_rows)


def reference_from_file(con: duckdb.DuckDBPyConnection, info: ModelInfo, path, *, version: int | None = None) -> int:
    """Summarise a CSV or Parquet file (training data) into a stored reference of the model; return its id.

    Columns named like the model's features are summarised, plus ``__prediction__``/``__score__``
    and the target (as ``__target__``) when present. Raises NotFoundError (file),
    InvalidInputError (unreadable file, no usable column).
    """
    import pyarrow as pa

    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"No file at {p}.", path=str(p))
    wanted = _log_columns(info)
    wanted[info.target] = wanted.pop(TARGET)
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            present = set(pq.read_schema(p).names)
            table = pq.read_table(p, columns=[c for c in wanted if c in present])
        else:
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(p)
    except (OSError, pa.ArrowException) as exc:
        fmt = "Parquet" if p.suffix.lower() in (".parquet", ".pq") else "CSV"
        raise InvalidInputError(f"Cannot read {p} as {fmt}: {exc}", path=str(p)) from exc
    if info.target in table.column_names:
        table = table.rename_columns([TARGET if c == info.target else c for c in table.column_names])
    columns = {(TARGET if c == info.target else c): k for c, k in wanted.items()}
    columns = {c: k for c, k in columns.items() if c in table.column_names}
    if not any(c in columns for c in info.feature_names):
        raise InvalidInputError(f"{p} has none of the features of model {info.name!r} "
                                f"({', '.join(info.feature_names)}).", path=str(p))
    refs = refmod.summarise_arrow(table, columns)
    with transaction(con):
        return rstore.save_reference(con, info.name, refs, kind="training", version=version, rows=table.num_rows)


__all__ = [
    "GUARD_ALPHA",
    "compare",
    "compare_with_reference",
    "configure",
    "default_reference_id",
    "distribution",
    "evaluate",
    "latest",
    "over_time",
    "reference_from_file",
    "reference_from_window",
    "sample_from_counts",
    "sample_from_values",
    "settings",
    "share",
    "share_over_time",
    "spec_of",
    "stored",
]

"""Data, prediction and target drift: one small pure function per statistic, and drift over time.

Methods (``method`` names; ``js`` is accepted for ``jensen_shannon``), see docs/monitoring.md
for the formulas and their sources:

=================  ==========================================  ======================  ==========
method             statistic                                   applies to              threshold
=================  ==========================================  ======================  ==========
wasserstein        W1(reference, current) / std(reference)     numeric (default)       0.1
jensen_shannon     JS distance, log base 2, in [0, 1]          both (categorical dflt) 0.1
psi                sum (q - p) ln(q / p), shares floored 1e-4  both                    0.2
linf               max |q - p| over categories                 categorical             0.1
ks                 Kolmogorov-Smirnov D (p-value decides)      numeric                 p < 0.05
chi2               chi-square of the 2 x k contingency table   both (bins for numeric) p < 0.05
=================  ==========================================  ======================  ==========

Decision rule ("trustworthy alarms"): p-value tests call any shift significant once samples
are large, so the default decision is an **effect size** (a distance) over its threshold.
Small windows have noisy distances, so a distance only counts as drift when a significance
guard agrees as well: the KS test (numeric) or the chi-square test (categorical) on the same
data must give p < ``GUARD_ALPHA`` (0.01). For the distance methods ``p_value`` reports that
guard's p-value. So: large n -> the effect size decides (no alarm for meaningless shifts);
small n -> the test decides (false alarms stay at most ``GUARD_ALPHA``).

Binning: numeric features use the reference's decile bins (open outer bins, see
``mlops_core.reference``); categorical features use the reference's categories plus one
bin for categories the reference never saw. Nulls (and NaN) are left out of every
distribution (their rate is a validation concern, see ``mlops_core.validation``).

Against raw data (``compare``) KS and Wasserstein are exact (KS equals ``scipy.stats.ks_2samp``).
Against a stored reference (``compare_with_reference``, ``over_time``) only bin counts and
means exist: KS is the largest CDF gap at the decile edges (a lower bound of the exact D,
so its p-value is conservative; p from Stephens' approximation) and W1 is estimated as the larger of the trapezoid
integral of |F_ref - F_cur| over the inner bins and |mean_cur - mean_ref| (both lower
bounds of W1; the second is exact for a pure location shift).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_core.data import reference as refmod
from mlops_core.errors import InvalidInputError, NotFoundError
from mlops_core.data.reference import FeatureReference

PSEUDO_FEATURES = ("__prediction__", "__score__", "__target__")
NUMERIC_METHODS = ("wasserstein", "ks", "psi", "jensen_shannon", "chi2")
CATEGORICAL_METHODS = ("jensen_shannon", "chi2", "psi", "linf")
METHODS = ("wasserstein", "jensen_shannon", "psi", "linf", "ks", "chi2")
ALIASES = {"js": "jensen_shannon", "jensenshannon": "jensen_shannon", "chi_square": "chi2", "chisquare": "chi2",
           "kolmogorov_smirnov": "ks", "l_inf": "linf", "wasserstein_normed": "wasserstein"}
DEFAULT_METHOD = {"numeric": "wasserstein", "categorical": "jensen_shannon"}
DEFAULT_THRESHOLDS = {"wasserstein": 0.1, "jensen_shannon": 0.1, "psi": 0.2, "linf": 0.1, "ks": 0.05, "chi2": 0.05}
#: Methods whose threshold is a significance level: drifted when p_value < threshold.
P_VALUE_METHODS = ("ks", "chi2")
#: Significance the guard test must reach before a distance counts as drift.
GUARD_ALPHA = 0.01
#: Floor of a bin share in PSI (an empty bin would make ln(q/p) infinite).
PSI_EPS = 1e-4
RESULT_COLUMNS = ["feature", "method", "statistic", "p_value", "threshold", "drifted"]


# --- statistics: pure functions on counts or values -------------------------------------------


def _shares(counts) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    return c / total if total > 0 else np.full_like(c, np.nan)


def psi(ref_counts, cur_counts, eps: float = PSI_EPS) -> float:
    """Population stability index sum_i (q_i - p_i) ln(q_i / p_i), shares floored at ``eps``; NaN when a side is empty."""
    p, q = _shares(ref_counts), _shares(cur_counts)
    if np.isnan(p).any() or np.isnan(q).any():
        return float("nan")
    p, q = np.maximum(p, eps), np.maximum(q, eps)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(ref_counts, cur_counts) -> float:
    """Jensen-Shannon distance (square root of the divergence, log base 2, in [0, 1]); NaN when a side is empty.

    Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``; empty bins need no floor (0 ln 0 = 0).
    """
    p, q = _shares(ref_counts), _shares(cur_counts)
    if np.isnan(p).any() or np.isnan(q).any():
        return float("nan")
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(math.sqrt(max((kl_p + kl_q) / 2, 0.0)))


def linf(ref_counts, cur_counts) -> float:
    """L-infinity distance max_i |q_i - p_i| between the category shares; NaN when a side is empty."""
    p, q = _shares(ref_counts), _shares(cur_counts)
    if np.isnan(p).any() or np.isnan(q).any():
        return float("nan")
    return float(np.max(np.abs(q - p))) if p.size else 0.0


def chi2(ref_counts, cur_counts) -> tuple[float, float]:
    """Chi-square test of homogeneity on the 2 x k table [reference; current] (bins empty on both sides dropped).

    Equals ``scipy.stats.chi2_contingency`` on that table, including its Yates correction when
    k = 2 (each observed count moved up to 0.5 towards its expected count); written out with
    ``scipy.special.chdtrc`` because the generic function costs ~1 ms a call, and drift over
    time makes thousands. One non-empty bin: (0, 1). A side with no values: (NaN, NaN).
    """
    from scipy.special import chdtrc

    table = np.vstack([np.asarray(ref_counts, dtype=float), np.asarray(cur_counts, dtype=float)])
    if table[0].sum() <= 0 or table[1].sum() <= 0:
        return float("nan"), float("nan")
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    dof = table.shape[1] - 1
    if dof == 1:
        diff = expected - table
        table = table + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(np.sum((table - expected) ** 2 / expected))
    return stat, float(chdtrc(dof, stat))


def ks(ref_values, cur_values) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov (D, p) of the non-NaN values: ``scipy.stats.ks_2samp``; NaN when a side is empty."""
    from scipy.stats import ks_2samp

    a = np.asarray(ref_values, dtype=float)
    b = np.asarray(cur_values, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan")
    res = ks_2samp(a, b)
    return float(res.statistic), float(res.pvalue)


def ks_binned(ref_counts, cur_counts) -> tuple[float, float]:
    """KS from bin counts: D = max gap of the two CDFs at the bin edges, p from the Kolmogorov distribution.

    D is a lower bound of the exact statistic, so p is conservative. p = Q_KS((sqrt(en) + 0.12 +
    0.11 / sqrt(en)) * D) with en = nm / (n + m) (Stephens 1970; Numerical Recipes 14.3), which
    tracks ``scipy.stats.kstwo`` to a few percent and, unlike it, costs microseconds at any n.
    """
    from scipy.special import kolmogorov  # the survival function of the Kolmogorov distribution (kstwobign.sf)

    r = np.asarray(ref_counts, dtype=float)
    c = np.asarray(cur_counts, dtype=float)
    n, m = r.sum(), c.sum()
    if n <= 0 or m <= 0:
        return float("nan"), float("nan")
    d = float(np.max(np.abs(np.cumsum(r) / n - np.cumsum(c) / m))) if r.size else 0.0
    en = math.sqrt(n * m / (n + m))
    return d, float(np.clip(kolmogorov((en + 0.12 + 0.11 / en) * d), 0.0, 1.0))


def _normalise(w: float, ref_std: float | None) -> float:
    if ref_std is None or not np.isfinite(ref_std) or math.isnan(w):
        return float("nan") if ref_std is None or math.isnan(w) else float("inf")
    if ref_std > 0:
        return float(w / ref_std)
    return 0.0 if w == 0 else float("inf")  # a constant reference: any spread or move is drift


def wasserstein(ref_values, cur_values, ref_std: float | None = None) -> float:
    """Wasserstein-1 distance of the finite values divided by the reference's std (ddof=0).

    Equals ``scipy.stats.wasserstein_distance(ref, cur) / ref.std()``. A constant reference gives
    0 when the current values equal it and +inf otherwise; NaN when a side has no finite value.
    """
    from scipy.stats import wasserstein_distance

    a = np.asarray(ref_values, dtype=float)
    b = np.asarray(cur_values, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    std = float(a.std()) if ref_std is None else ref_std
    return _normalise(float(wasserstein_distance(a, b)), std)


def wasserstein_binned(edges, ref_counts, cur_counts, ref_mean: float | None, cur_mean: float | None,
                       ref_std: float | None, ref_mad: float | None = None, cur_mad: float | None = None) -> float:
    """W1 / std(reference) estimated from bin counts on shared ``edges``, the two means and mean absolute deviations.

    max( trapezoid integral of |F_ref - F_cur| over the inner bins, |mean_cur - mean_ref|,
    |mad_cur - mad_ref| ) / std_ref, where mad = E|X - c| about the same centre c (the reference
    median). The last two are |E f(X) - E f(Y)| for 1-Lipschitz f, hence lower bounds of W1
    (Kantorovich-Rubinstein duality); the mean term is exact for a location shift, the mad term
    for a scale change of a symmetric distribution.
    """
    r = np.asarray(ref_counts, dtype=float)
    c = np.asarray(cur_counts, dtype=float)
    if r.sum() <= 0 or c.sum() <= 0:
        return float("nan")
    e = np.asarray(edges, dtype=float)
    w = 0.0
    if e.size >= 2:
        gap = np.abs(np.cumsum(r)[:-1] / r.sum() - np.cumsum(c)[:-1] / c.sum())  # CDF gap just below each edge
        w = float(np.sum(np.diff(e) * (gap[:-1] + gap[1:]) / 2))
    if ref_mean is not None and cur_mean is not None and not (math.isnan(ref_mean) or math.isnan(cur_mean)):
        w = max(w, abs(cur_mean - ref_mean))
    if ref_mad is not None and cur_mad is not None and math.isfinite(ref_mad) and not math.isnan(cur_mad):
        w = max(w, abs(cur_mad - ref_mad))
    return _normalise(w, ref_std)


# --- evaluating a feature ---------------------------------------------------------------------


def _method_name(name: str) -> str:
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in METHODS:
        raise InvalidInputError(f"Unknown drift method {name!r}. Choose from: {', '.join(METHODS)} (or js).",
                                method=name, valid=list(METHODS))
    return key


def _methods_for(feature: str, kind: str, methods) -> list[str]:
    """The methods to run on ``feature``; explicit methods that do not apply to its kind are skipped."""
    chosen = methods.get(feature) if isinstance(methods, dict) else methods
    if chosen is None:
        return [DEFAULT_METHOD[kind]]
    names = [_method_name(m) for m in ([chosen] if isinstance(chosen, str) else chosen)]
    allowed = NUMERIC_METHODS if kind == "numeric" else CATEGORICAL_METHODS
    usable = [m for m in names if m in allowed]
    if not usable and isinstance(methods, dict) and feature in methods:
        raise InvalidInputError(
            f"None of the methods {names} applies to the {kind} feature {feature!r}; use one of {', '.join(allowed)}.",
            feature=feature, methods=names)
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
    return DEFAULT_THRESHOLDS[method]


@dataclass
class _Sample:
    """One feature's reference and current data as the statistics need it."""

    kind: str
    ref_counts: np.ndarray
    cur_counts: np.ndarray
    edges: np.ndarray | None = None
    ref_mean: float | None = None
    ref_std: float | None = None
    cur_mean: float | None = None
    ref_mad: float | None = None
    cur_mad: float | None = None
    ref_values: np.ndarray | None = None  # raw values, when available: exact KS and Wasserstein
    cur_values: np.ndarray | None = None

    @property
    def n_ref(self) -> int:
        return int(self.ref_counts.sum())

    @property
    def n_cur(self) -> int:
        return int(self.cur_counts.sum())


def _evaluate(feature: str, s: _Sample, methods: list[str], thresholds, alpha: float | None) -> list[dict]:
    rows = []
    empty = s.n_ref == 0 or s.n_cur == 0
    guard_p = float("nan")
    if not empty and alpha is not None:
        if s.kind == "numeric":
            guard_p = (ks(s.ref_values, s.cur_values)[1] if s.ref_values is not None
                       else ks_binned(s.ref_counts, s.cur_counts)[1])
        else:
            guard_p = chi2(s.ref_counts, s.cur_counts)[1]
    for method in methods:
        thr = _threshold(feature, method, thresholds)
        p = float("nan")
        if empty:
            stat = float("nan")
        elif method == "ks":
            stat, p = ks(s.ref_values, s.cur_values) if s.ref_values is not None else ks_binned(s.ref_counts, s.cur_counts)
        elif method == "chi2":
            stat, p = chi2(s.ref_counts, s.cur_counts)
        elif method == "psi":
            stat = psi(s.ref_counts, s.cur_counts)
        elif method == "jensen_shannon":
            stat = jensen_shannon(s.ref_counts, s.cur_counts)
        elif method == "linf":
            stat = linf(s.ref_counts, s.cur_counts)
        else:  # wasserstein
            if s.ref_values is not None:
                stat = wasserstein(s.ref_values, s.cur_values, s.ref_std)
            else:
                stat = wasserstein_binned(s.edges, s.ref_counts, s.cur_counts, s.ref_mean, s.cur_mean, s.ref_std,
                                          s.ref_mad, s.cur_mad)
        if method in P_VALUE_METHODS:
            drifted = bool(not math.isnan(p) and p < thr)
        else:
            p = guard_p
            significant = alpha is None or (not math.isnan(guard_p) and guard_p < alpha)
            drifted = bool(not math.isnan(stat) and stat >= thr and significant)
        rows.append({"feature": feature, "method": method, "statistic": stat, "p_value": p, "threshold": thr,
                     "drifted": drifted, "n_reference": s.n_ref, "n_current": s.n_cur})
    return rows


def _frame(rows: list[dict], extra: bool = False) -> pd.DataFrame:
    cols = RESULT_COLUMNS + (["n_reference", "n_current"] if extra else [])
    df = pd.DataFrame(rows, columns=RESULT_COLUMNS + ["n_reference", "n_current"])[cols]
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
            sample = _Sample("numeric", refmod.bin_counts(a, edges).astype(float), refmod.bin_counts(b, edges).astype(float),
                             edges=edges, ref_mean=float(fa.mean()) if fa.size else None,
                             ref_std=float(fa.std()) if fa.size else None,
                             cur_mean=float(fb.mean()) if fb.size else None, ref_values=a, cur_values=b)
        else:
            rc, cc = _categorical_counts(ref, cur)
            sample = _Sample("categorical", rc, cc)
        rows += _evaluate(feature, sample, use, thresholds, alpha)
    return _frame(rows)


def _reference_sample(ref: FeatureReference) -> tuple[np.ndarray, dict]:
    counts = np.array([b.count for b in ref.bins], dtype=float)
    if ref.kind == "numeric":
        ok = ref.mad is not None and len(ref.quantiles) == len(refmod.QUANTILE_LEVELS)
        return counts, {"edges": np.asarray(ref.edges, dtype=float), "centre": ref.quantiles[50] if ok else None,
                        "ref_mad": ref.mad if ok else None}
    return np.append(counts, 0.0), {"categories": [b.category for b in ref.bins]}


def compare_with_reference(reference: list[FeatureReference], current: pd.DataFrame, methods=None, thresholds=None, *,
                           alpha: float | None = GUARD_ALPHA) -> pd.DataFrame:
    """Drift of ``current`` against a stored reference summary: same columns as ``compare``.

    Current values are binned on the reference's decile edges / categories (unseen
    categories share one extra bin); KS and Wasserstein use the binned estimates described
    in the module docstring. Features of the reference missing from ``current`` are skipped.
    Raises InvalidInputError for an unknown method or a bad threshold.
    """
    rows = []
    for ref in reference:
        if ref.feature not in current.columns:
            continue
        use = _methods_for(ref.feature, ref.kind, methods)
        if not use:
            continue
        rows += _evaluate(ref.feature, _sample_from_values(ref, current[ref.feature]), use, thresholds, alpha)
    return _frame(rows)


def _sample_from_values(ref: FeatureReference, values) -> _Sample:
    ref_counts, geo = _reference_sample(ref)
    if ref.kind == "numeric":
        v = _numeric(values)
        v = v[~np.isnan(v)]
        cur = refmod.bin_counts(v, geo["edges"]).astype(float)
        mad = float(np.abs(v - geo["centre"]).mean()) if v.size and geo["centre"] is not None else None
        return _Sample("numeric", ref_counts, cur, edges=geo["edges"], ref_mean=ref.mean, ref_std=ref.std,
                       cur_mean=float(v.mean()) if v.size else None, ref_mad=geo["ref_mad"], cur_mad=mad)
    s = pd.Series(values).dropna().astype(str)
    vc = s.value_counts()
    cats = geo["categories"]
    known = vc.reindex(cats, fill_value=0).to_numpy(dtype=float)
    cur = np.append(known, float(len(s) - known.sum()))
    return _Sample("categorical", ref_counts, cur)


def _sample_from_row(ref: FeatureReference, row, entry: dict) -> _Sample:
    """A sample from one window's SQL counts (``entry``: column names of ``store.monitoring.drift_counts``)."""
    ref_counts, geo = _reference_sample(ref)
    n = row[entry["n"]]
    n = 0 if n is None or pd.isna(n) else int(n)
    if ref.kind == "numeric":
        ge = [0 if pd.isna(row[c]) else int(row[c]) for c in entry["ge"]]
        cum = [n, *ge, 0]
        cur = np.array([cum[i] - cum[i + 1] for i in range(len(cum) - 1)], dtype=float)
        total = row[entry["sum"]]
        mean = float(total) / n if n and total is not None and not pd.isna(total) else None
        dev = row[entry["dev"]] if "dev" in entry else None
        mad = float(dev) / n if n and dev is not None and not pd.isna(dev) else None
        return _Sample("numeric", ref_counts, cur, edges=geo["edges"], ref_mean=ref.mean, ref_std=ref.std, cur_mean=mean,
                       ref_mad=geo["ref_mad"], cur_mad=mad)
    eq = [0 if pd.isna(row[c]) else int(row[c]) for c in entry["eq"]]
    return _Sample("categorical", ref_counts, np.array([*eq, n - sum(eq)], dtype=float))


# --- over time, against the stored reference --------------------------------------------------


def _connect(db, create=False):
    from mlops_core.store import connect

    return connect(db, create=create)


def configure(model: str, feature: str = "*", methods=None, *, threshold: float | None = None,
              thresholds: dict | None = None, actor: str = "cli", db=None) -> pd.DataFrame:
    """Store the drift method(s) and threshold(s) of one feature of ``model`` (``*``: every feature).

    ``methods``: a name or list; None clears the feature's setting (back to the defaults).
    ``threshold`` applies to every method given; ``thresholds`` = {method: value} per method.
    Drift over time and the monitor use the stored settings unless a call passes its own.
    Returns the model's settings. Raises NotFoundError (model), InvalidInputError (method, threshold).
    """
    from mlops_core.store import models as mstore
    from mlops_core.store import monitoring as monstore
    from mlops_core.store import transaction

    names = [] if methods is None else [_method_name(m) for m in ([methods] if isinstance(methods, str) else methods)]
    rows = []
    for m in names:
        value = (thresholds or {}).get(m, threshold)
        if value is not None:
            try:
                value = float(value)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"Drift threshold for {feature!r}/{m} must be a number, got {value!r}.") from exc
        rows.append((m, value))
    with _connect(db, create=False) as con:
        info = mstore.get_model(con, model)
    known = {*info.feature_names, *PSEUDO_FEATURES, "*"}
    if feature not in known:
        raise InvalidInputError(f"Model {model!r} has no feature {feature!r}. Features: {', '.join(info.feature_names)} "
                                f"(or {', '.join(PSEUDO_FEATURES)}, or * for all).", feature=feature)
    if feature != "*" and names:
        kind = next((f.kind for f in info.features if f.name == feature), None)
        if kind is not None:
            _methods_for(feature, kind, {feature: names})  # raises when none applies
    with _connect(db, create=False) as con, transaction(con):
        monstore.replace_drift_setting(con, model, feature, rows, actor)
        return monstore.drift_settings(con, model)


def settings(model: str, *, db=None) -> pd.DataFrame:
    """The stored drift settings of ``model`` (feature, method, threshold, updated_at, updated_by)."""
    from mlops_core.store import models as mstore
    from mlops_core.store import monitoring as monstore

    with _connect(db, create=False) as con:
        mstore.get_model(con, model)
    with _connect(db, create=False) as con:
        return monstore.drift_settings(con, model)


def _stored_config(con, model: str, features: list[str]) -> tuple[dict | None, dict | None]:
    """(methods, thresholds) in ``compare``'s form from the stored settings, or (None, None)."""
    from mlops_core.store import monitoring as monstore

    df = monstore.drift_settings(con, model)
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


def default_reference_id(con, model: str) -> int:
    """The training reference of the production version (else of the newest version); raise NotFoundError."""
    from mlops_core.store import models as mstore
    from mlops_core.store import references as rstore

    version = mstore.current_alias(con, model)
    if version is not None:
        return rstore.latest_training_reference_id(con, model, version)
    row = con.execute("SELECT max(id) FROM drift_references WHERE model = ?", [model]).fetchone()
    if row[0] is None:
        raise NotFoundError(f"Model {model!r} has no stored reference to compare against.", model=model)
    return int(row[0])


def _specs(info, refs: list[FeatureReference]) -> tuple[list[dict], dict | None, dict[str, FeatureReference]]:
    """SQL count specs for the model's features and pseudo-features found in the reference."""
    wanted = set(info.feature_names) | {"__prediction__", "__score__"}
    by_name = {r.feature: r for r in refs}
    specs, target = [], None
    for r in refs:
        if r.feature not in wanted and r.feature != "__target__":
            continue
        _, geo = _reference_sample(r)
        spec = {"feature": r.feature, "kind": r.kind, **geo}
        if r.feature == "__target__":
            target = spec
        else:
            specs.append(spec)
    order = {name: i for i, name in enumerate([*info.feature_names, *PSEUDO_FEATURES])}
    specs.sort(key=lambda s: order.get(s["feature"], len(order)))
    return specs, target, by_name


def _window_rows(wide: pd.DataFrame, layout: dict, by_name: dict, methods, thresholds, alpha) -> pd.DataFrame:
    rows = []
    for rec in wide.to_dict(orient="records"):
        for feature, entry in layout.items():
            ref = by_name[feature]
            use = _methods_for(feature, ref.kind, methods)
            if not use:
                continue
            for r in _evaluate(feature, _sample_from_row(ref, rec, entry), use, thresholds, alpha):
                r["window_start"] = rec["window_start"]
                rows.append(r)
    cols = ["window_start", *RESULT_COLUMNS, "n_reference", "n_current"]
    df = pd.DataFrame(rows, columns=cols)
    if len(df):
        df["window_start"] = pd.to_datetime(df["window_start"])
    return df.astype({"statistic": "float64", "p_value": "float64", "threshold": "float64", "drifted": "bool"})


def over_time(model: str, *, window: str = "day", start=None, end=None, reference_id: int | None = None,
              store: bool = True, db=None, methods=None, thresholds=None, alpha: float | None = GUARD_ALPHA) -> pd.DataFrame:
    """Drift per window and feature (plus ``__prediction__``, ``__score__``, ``__target__``) against a stored reference.

    Bin counts of every window come from one SQL scan of the log (the target from one more,
    joined to the labels). Returns columns window_start, feature, method, statistic, p_value,
    threshold, drifted, n_reference, n_current, oldest first. ``methods``/``thresholds`` as in
    ``compare``; when both are None the model's stored settings apply (``configure``), else the
    defaults. With ``store`` every window is
    written to ``drift_results`` (replacing earlier rows of the same model, reference, window
    size and window start). The reference defaults to the production version's training data.
    Raises NotFoundError (model, reference), InvalidInputError (window, dates, methods).
    """
    from mlops_core.monitoring.performance import parse_time
    from mlops_core.store import models as mstore
    from mlops_core.store import monitoring as monstore
    from mlops_core.store import references as rstore

    monstore.check_window(window)
    start, end = parse_time(start), parse_time(end, end=True)
    with _connect(db) as con:
        info = mstore.get_model(con, model)
        ref_id = int(reference_id) if reference_id is not None else default_reference_id(con, model)
        refs = rstore.load_reference(con, ref_id)
        specs, target, by_name = _specs(info, refs)
        if methods is None and thresholds is None:
            methods, thresholds = _stored_config(con, model, list(by_name))
        wide, layout = monstore.drift_counts(con, info, window, specs, start, end, target)
    result = _window_rows(wide, layout, by_name, methods, thresholds, alpha)
    if store and len(result):
        from mlops_core.store import transaction

        with _connect(db, create=False) as con, transaction(con):
            monstore.replace_drift_results(con, model, ref_id, window, result)
    result["reference_id"] = ref_id
    return result


def stored(model: str, *, window: str = "day", start=None, end=None, reference_id: int | None = None, db=None,
           compute_missing: bool = True) -> pd.DataFrame:
    """The stored drift time series (as ``over_time`` wrote it), oldest first.

    When nothing is stored for this window size (e.g. hourly windows while the monitor stores
    daily ones) and ``compute_missing`` is true, the series is computed without storing it.
    Raises NotFoundError (model).
    """
    from mlops_core.monitoring.performance import parse_time
    from mlops_core.store import models as mstore
    from mlops_core.store import monitoring as monstore

    start, end = parse_time(start), parse_time(end, end=True)
    with _connect(db) as con:
        mstore.get_model(con, model)
        df = monstore.drift_results(con, model, window, start, end, reference_id)
        nothing_stored = df.empty and not monstore.has_drift_results(con, model, window)
    if nothing_stored and compute_missing:
        df = over_time(model, window=window, start=start, end=end, reference_id=reference_id, store=False, db=db)
    if len(df):
        df["window_start"] = pd.to_datetime(df["window_start"])
    return df


def share_over_time(model: str, *, window: str = "day", start=None, end=None, db=None) -> pd.DataFrame:
    """Share of drifted features per window (features only, not prediction/score/target).

    Columns window_start, n_features (with a result), n_drifted, share. A feature checked by
    several methods counts as drifted when any of them says so. Reads the stored series (see
    ``stored`` for when it computes instead). Raises NotFoundError (model).
    """
    return _share(stored(model, window=window, start=start, end=end, db=db))


def _share(df: pd.DataFrame) -> pd.DataFrame:
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


def _bin_label(lower, upper) -> str:
    if lower is None and upper is None:
        return "all values"
    if lower is None:
        return f"< {upper:.4g}"
    if upper is None:
        return f"≥ {lower:.4g}"
    return f"[{lower:.4g}, {upper:.4g})"


def distribution(model: str, feature: str, *, start=None, end=None, reference_id: int | None = None, db=None) -> pd.DataFrame:
    """Reference against current shares per bin (numeric) or category, for overlay charts.

    Columns: bin (label), reference_count, current_count, reference_share, current_share, and
    ``reference``/``current`` (the shares again, the chart functions' names). Current = the log in
    [start, end). Raises NotFoundError (model, feature, reference).
    """
    from mlops_core.monitoring.performance import parse_time
    from mlops_core.store import models as mstore
    from mlops_core.store import monitoring as monstore
    from mlops_core.store import references as rstore

    start, end = parse_time(start), parse_time(end, end=True)
    with _connect(db) as con:
        info = mstore.get_model(con, model)
        ref_id = int(reference_id) if reference_id is not None else default_reference_id(con, model)
        refs = {r.feature: r for r in rstore.load_reference(con, ref_id)}
        if feature not in refs:
            raise NotFoundError(f"Feature {feature!r} is not in the reference of model {model!r}. "
                                f"Features: {', '.join(sorted(refs))}.", model=model, feature=feature)
        ref = refs[feature]
        _, geo = _reference_sample(ref)
        spec = {"feature": feature, "kind": ref.kind, **geo}
        is_target = feature == "__target__"
        wide, layout = monstore.drift_counts(con, info, "week", [] if is_target else [spec], start, end,
                                             spec if is_target else None)
    ref_counts = np.array([b.count for b in ref.bins], dtype=float)
    if ref.kind == "numeric":
        labels = [_bin_label(b.lower, b.upper) for b in ref.bins]
    else:
        labels = [str(b.category) for b in ref.bins] + ["(unseen)"]
        ref_counts = np.append(ref_counts, 0.0)
    cur = np.zeros_like(ref_counts)
    entry = layout[feature]
    for rec in wide.to_dict(orient="records"):
        cur += _sample_from_row(ref, rec, entry).cur_counts
    out = pd.DataFrame({"bin": labels, "reference_count": ref_counts.astype("int64"), "current_count": cur.astype("int64")})
    if ref.kind == "categorical" and out["current_count"].iloc[-1] == 0:
        out = out.iloc[:-1]
    rs, cs = out["reference_count"].sum(), out["current_count"].sum()
    out["reference_share"] = out["reference_count"] / rs if rs else 0.0
    out["current_share"] = out["current_count"] / cs if cs else 0.0
    out["reference"] = out["reference_share"]
    out["current"] = out["current_share"]
    return out


def latest(model: str, *, window: str = "day", db=None) -> pd.DataFrame:
    """Each feature's result in the newest stored window, most severe first (drifted, then statistic / threshold).

    Adds a ``score`` column (statistic / threshold). Computes the last week of windows (without
    storing) when nothing is stored. Raises NotFoundError (model).
    """
    df = stored(model, window=window, db=db, compute_missing=False)
    if df.empty:
        from datetime import timedelta

        from mlops_core.store import models as mstore
        from mlops_core.store import monitoring as monstore

        with _connect(db) as con:
            info = mstore.get_model(con, model)
            _, last = monstore.log_time_range(con, info)
        if last is None:
            return pd.DataFrame(columns=["window_start", *RESULT_COLUMNS, "n_current", "score"])
        df = over_time(model, window=window, start=last - timedelta(days=7), store=False, db=db)
        if df.empty:
            return pd.DataFrame(columns=["window_start", *RESULT_COLUMNS, "n_current", "score"])
    newest = df[df["window_start"] == df["window_start"].max()].copy()
    thr = newest["threshold"].where(newest["threshold"] > 0)
    newest["score"] = np.where(newest["method"].isin(P_VALUE_METHODS), np.nan, newest["statistic"] / thr)
    newest = newest.sort_values(["drifted", "score"], ascending=[False, False], na_position="last")
    return newest.reset_index(drop=True)


def summarise_arrow(table, columns: dict[str, str]) -> list[FeatureReference]:
    """Summarise the ``columns`` ({name: numeric|categorical}) of a pyarrow Table, one column per thread.

    Gives what ``mlops_core.reference.summarise`` gives for the same rows (numeric columns go
    through ``reference.summarise_numeric``; categories are counted by Arrow and compared as
    strings, sorted), without a pandas copy of the table.
    """
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.compute as pc

    def one(name: str) -> FeatureReference:
        col = table.column(name)
        if columns[name] == "numeric":
            values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
            return refmod.summarise_numeric(name, values)
        text = col if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) else pc.cast(col, pa.string())
        vc = pc.value_counts(text)
        pairs = sorted((v, int(c)) for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())
                       if v is not None)
        n = sum(c for _, c in pairs)
        return FeatureReference(feature=name, kind="categorical", n=n, null_count=len(col) - n,
                                bins=[refmod.Bin(bin=i, count=c, category=v) for i, (v, c) in enumerate(pairs)])

    names = [c for c in columns if c in table.column_names]
    with ThreadPoolExecutor(max_workers=max(1, min(len(names), os.cpu_count() or 1))) as pool:
        return list(pool.map(one, names))


def reference_from_window(model: str, start, end, *, db=None) -> int:
    """Summarise the log in [start, end) (features, prediction, score, labels) into a stored reference; return its id.

    Raises NotFoundError (model), InvalidInputError (no predictions in the window).
    """
    from mlops_core.monitoring.performance import parse_time
    from mlops_core.store import models as mstore
    from mlops_core.store import monitoring as monstore
    from mlops_core.store import references as rstore
    from mlops_core.store import transaction

    start, end = parse_time(start), parse_time(end, end=True)
    with _connect(db) as con:
        info = mstore.get_model(con, model)
        pred_kind = "categorical" if info.task == "classification" else "numeric"
        columns = {f.name: f.kind for f in info.features}
        columns.update({"__prediction__": pred_kind, "__score__": "numeric", "__target__": pred_kind})
    with _connect(db) as con:  # a fresh connection: the lookup above leaves a pending result behind
        table = monstore.log_arrow(con, info, list(columns), start, end)
    if table.num_rows == 0:
        raise InvalidInputError(f"Model {model!r} has no predictions between {start} and {end}; pick another window.",
                                model=model)
    refs = summarise_arrow(table, columns)
    with _connect(db) as con, transaction(con):
        return rstore.save_reference(con, model, refs, kind="window", window_start=start, window_end=end,
                                     rows=table.num_rows)


def reference_from_file(model: str, path, *, version: int | None = None, db=None) -> int:
    """Summarise a CSV or Parquet file (training data) into a stored reference of ``model``; return its id.

    Columns named like the model's features are summarised, plus ``__prediction__``/``__score__``
    and the target (as ``__target__``) when present. Raises NotFoundError (model, file),
    InvalidInputError (unreadable file, no usable column).
    """
    from pathlib import Path

    import pyarrow as pa

    from mlops_core.store import models as mstore
    from mlops_core.store import references as rstore
    from mlops_core.store import transaction

    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"No file at {p}.", path=str(p))
    with _connect(db) as con:
        info = mstore.get_model(con, model)
    pred_kind = "categorical" if info.task == "classification" else "numeric"
    wanted = {f.name: f.kind for f in info.features}
    wanted.update({"__prediction__": pred_kind, "__score__": "numeric", info.target: pred_kind})
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            present = set(pq.read_schema(p).names)
            table = pq.read_table(p, columns=[c for c in wanted if c in present])
        else:
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(p)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInputError(f"Cannot read {p} as {'Parquet' if p.suffix.lower() in ('.parquet', '.pq') else 'CSV'}: "
                                f"{exc}", path=str(p)) from exc
    if info.target in table.column_names:
        table = table.rename_columns(["__target__" if c == info.target else c for c in table.column_names])
    columns = {("__target__" if c == info.target else c): k for c, k in wanted.items()}
    columns = {c: k for c, k in columns.items() if c in table.column_names}
    if not any(c in columns for c in info.feature_names):
        raise InvalidInputError(f"{p} has none of the features of model {model!r} ({', '.join(info.feature_names)}).",
                                path=str(p))
    refs = summarise_arrow(table, columns)
    with _connect(db) as con, transaction(con):
        return rstore.save_reference(con, model, refs, kind="training", version=version, rows=table.num_rows)


__all__ = ["compare", "compare_with_reference", "over_time", "stored", "share_over_time", "distribution", "latest",
           "reference_from_window", "reference_from_file", "summarise_arrow", "configure", "settings", "psi", "jensen_shannon", "linf", "chi2", "ks", "ks_binned", "wasserstein",
           "wasserstein_binned", "METHODS", "DEFAULT_METHOD", "DEFAULT_THRESHOLDS", "GUARD_ALPHA"]

"""Normalised Wasserstein-1 distance: W1(reference, current) / std(reference).

On raw values: ``scipy.stats.wasserstein_distance(ref, cur) / ref.std()`` (ddof=0), over the
finite values. From bin counts (a stored reference), W1 is estimated as the largest of
three lower bounds: the trapezoid integral of |F_ref - F_cur| over the inner bins,
|mean_cur - mean_ref|, and |mad_cur - mad_ref| with mad = E|X - c| about the same centre c
(the reference median). The last two are |E f(X) - E f(Y)| for 1-Lipschitz f, hence lower
bounds of W1 (Kantorovich-Rubinstein duality); the mean term is exact for a location shift,
the mad term for a scale change of a symmetric distribution. A constant reference gives 0
when the current values equal it and +inf otherwise.
"""
from __future__ import annotations

import math

import numpy as np

from mlops_core.monitoring.drift.method import NAN, DriftMethod, Sample


def _normalise(w: float, ref_std: float | None) -> float:
    if ref_std is None or not np.isfinite(ref_std) or math.isnan(w):
        return NAN if ref_std is None or math.isnan(w) else float("inf")
    if ref_std > 0:
        return float(w / ref_std)
    return 0.0 if w == 0 else float("inf")  # a constant reference: any spread or move is drift


def wasserstein(ref_values, cur_values, ref_std: float | None = None) -> float:
    """W1 of the finite values divided by the reference's std (ddof=0); NaN when a side has no finite value."""
    from scipy.stats import wasserstein_distance

    a = np.asarray(ref_values, dtype=float)
    b = np.asarray(cur_values, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return NAN
    std = float(a.std()) if ref_std is None else ref_std
    return _normalise(float(wasserstein_distance(a, b)), std)


def wasserstein_binned(edges, ref_counts, cur_counts, ref_mean: float | None, cur_mean: float | None,
                       ref_std: float | None, ref_mad: float | None = None, cur_mad: float | None = None) -> float:
    """W1 / std(reference) estimated from bin counts on shared ``edges``, the means and mean absolute deviations."""
    r = np.asarray(ref_counts, dtype=float)
    c = np.asarray(cur_counts, dtype=float)
    if r.sum() <= 0 or c.sum() <= 0:
        return NAN
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


def _values(s: Sample) -> tuple[float, float]:
    return wasserstein(s.ref_values, s.cur_values, s.ref_std), NAN


def _counts(s: Sample) -> tuple[float, float]:
    return wasserstein_binned(s.edges, s.ref_counts, s.cur_counts, s.ref_mean, s.cur_mean, s.ref_std, s.ref_mad,
                              s.cur_mad), NAN


METHOD = DriftMethod(
    name="wasserstein", label="Wasserstein distance (normalised)", kinds=frozenset({"numeric"}),
    default_threshold=0.1, p_value=False, on_counts=_counts, on_values=_values, aliases=("wasserstein_normed",),
    source="scipy.stats.wasserstein_distance; Kantorovich-Rubinstein duality for the binned bounds",
)

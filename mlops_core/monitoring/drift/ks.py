"""Two-sample Kolmogorov-Smirnov test: D = the largest gap between the two empirical CDFs.

On raw values it is ``scipy.stats.ks_2samp`` exactly. From bin counts (a stored reference)
D is the largest CDF gap at the decile edges, a lower bound of the exact D, so its p-value is
conservative; p = Q_KS((sqrt(en) + 0.12 + 0.11 / sqrt(en)) * D) with en = nm / (n + m)
(Stephens 1970; Numerical Recipes 14.3), which tracks ``scipy.stats.kstwo`` to a few percent
and, unlike it, costs microseconds at any n.
"""
from __future__ import annotations

import math

import numpy as np

from mlops_core.monitoring.drift.method import DriftMethod, Sample


def ks(ref_values, cur_values) -> tuple[float, float]:
    """(D, p) of the non-NaN values: ``scipy.stats.ks_2samp``; NaN when a side is empty."""
    from scipy.stats import ks_2samp

    a = np.asarray(ref_values, dtype=float)
    b = np.asarray(cur_values, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan")
    res = ks_2samp(a, b)
    return float(res.statistic), float(res.pvalue)


def ks_binned(ref_counts, cur_counts) -> tuple[float, float]:
    """(D, p) from counts over the same bins (see the module docstring)."""
    from scipy.special import kolmogorov  # the survival function of the Kolmogorov distribution (kstwobign.sf)

    r = np.asarray(ref_counts, dtype=float)
    c = np.asarray(cur_counts, dtype=float)
    n, m = r.sum(), c.sum()
    if n <= 0 or m <= 0:
        return float("nan"), float("nan")
    d = float(np.max(np.abs(np.cumsum(r) / n - np.cumsum(c) / m))) if r.size else 0.0
    en = math.sqrt(n * m / (n + m))
    return d, float(np.clip(kolmogorov((en + 0.12 + 0.11 / en) * d), 0.0, 1.0))


def _values(s: Sample) -> tuple[float, float]:
    return ks(s.ref_values, s.cur_values)


def _counts(s: Sample) -> tuple[float, float]:
    return ks_binned(s.ref_counts, s.cur_counts)


METHOD = DriftMethod(
    name="ks", label="Kolmogorov–Smirnov test", kinds=frozenset({"numeric"}), default_threshold=0.05, p_value=True,
    on_counts=_counts, on_values=_values, aliases=("kolmogorov_smirnov",),
    source="scipy.stats.ks_2samp; Stephens (1970) for the binned p-value",
)

"""Jensen-Shannon distance: the square root of the Jensen-Shannon divergence, log base 2, in [0, 1].

JS(p, q) = sqrt((KL(p || m) + KL(q || m)) / 2) with m = (p + q) / 2 (Lin 1991; Endres &
Schindelin 2003 for the distance). Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``;
empty bins need no floor (0 ln 0 = 0).
"""
from __future__ import annotations

import math

import numpy as np

from mlops_core.monitoring.drift.method import NAN, DriftMethod, shares


def jensen_shannon(ref_counts, cur_counts) -> float:
    """Jensen-Shannon distance of two count vectors over the same bins; NaN when a side is empty."""
    p, q = shares(ref_counts), shares(cur_counts)
    if np.isnan(p).any() or np.isnan(q).any():
        return NAN
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(math.sqrt(max((kl_p + kl_q) / 2, 0.0)))


METHOD = DriftMethod(
    name="jensen_shannon", label="Jensen–Shannon distance", kinds=frozenset({"numeric", "categorical"}),
    default_threshold=0.1, p_value=False, on_counts=lambda s: (jensen_shannon(s.ref_counts, s.cur_counts), NAN),
    aliases=("js", "jensenshannon"), source="Lin (1991); scipy.spatial.distance.jensenshannon",
)

"""L-infinity distance: the largest absolute difference between the category shares, max_i |q_i - p_i|."""
from __future__ import annotations

import numpy as np

from mlops_core.monitoring.drift.method import NAN, DriftMethod, shares


def linf(ref_counts, cur_counts) -> float:
    """L-infinity distance of two count vectors over the same categories; NaN when a side is empty."""
    p, q = shares(ref_counts), shares(cur_counts)
    if np.isnan(p).any() or np.isnan(q).any():
        return NAN
    return float(np.max(np.abs(q - p))) if p.size else 0.0


METHOD = DriftMethod(
    name="linf", label="L-infinity distance", kinds=frozenset({"categorical"}), default_threshold=0.1, p_value=False,
    on_counts=lambda s: (linf(s.ref_counts, s.cur_counts), NAN), aliases=("l_inf",),
)

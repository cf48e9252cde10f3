"""Population stability index (PSI): sum_i (q_i - p_i) ln(q_i / p_i) over the bins.

p, q: reference and current shares per bin, floored at ``PSI_EPS`` so an empty bin does not
make the logarithm infinite (Siddiqi 2006, "Credit Risk Scorecards", ch. 8; the usual
reading: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift).
"""
from __future__ import annotations

import numpy as np

from mlops_core.monitoring.drift.method import NAN, DriftMethod, shares

#: Floor of a bin share (an empty bin would make ln(q/p) infinite).
PSI_EPS = 1e-4


def psi(ref_counts, cur_counts, eps: float = PSI_EPS) -> float:
    """PSI of two count vectors over the same bins; NaN when a side is empty."""
    p, q = shares(ref_counts), shares(cur_counts)
    if np.isnan(p).any() or np.isnan(q).any():
        return NAN
    p, q = np.maximum(p, eps), np.maximum(q, eps)
    return float(np.sum((q - p) * np.log(q / p)))


METHOD = DriftMethod(
    name="psi", label="PSI", kinds=frozenset({"numeric", "categorical"}), default_threshold=0.2, p_value=False,
    on_counts=lambda s: (psi(s.ref_counts, s.cur_counts), NAN), source="Siddiqi (2006)",
)

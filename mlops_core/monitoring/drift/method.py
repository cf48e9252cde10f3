"""What a drift method is: a small pure statistic on one feature's reference and current data.

A ``DriftMethod`` is registered once (``registry.METHODS``) with its name, the feature
kinds it applies to, its default threshold and whether that threshold is a p-value.
It computes from a ``Sample``: bin counts always (the form the SQL engine delivers for a
stored reference: counts per reference decile bin or category), and the raw values when
a caller has them (``compare`` on two DataFrames), where an exact form exists.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Sample:
    """One feature's reference and current data as the statistics need it.

    ``ref_counts``/``cur_counts``: counts per bin (numeric: the reference's decile bins; categorical:
    the reference's categories plus one bin for unseen ones). The means, the reference's standard
    deviation and the mean absolute deviations about the reference median are there for numeric
    features; ``ref_values``/``cur_values`` only when raw values are available.
    """

    kind: str
    ref_counts: np.ndarray
    cur_counts: np.ndarray
    edges: np.ndarray | None = None
    ref_mean: float | None = None
    ref_std: float | None = None
    cur_mean: float | None = None
    ref_mad: float | None = None
    cur_mad: float | None = None
    ref_values: np.ndarray | None = None
    cur_values: np.ndarray | None = None

    @property
    def n_ref(self) -> int:
        return int(self.ref_counts.sum())

    @property
    def n_cur(self) -> int:
        return int(self.cur_counts.sum())

    @property
    def raw(self) -> bool:
        return self.ref_values is not None and self.cur_values is not None


#: A statistic: (statistic, p-value), NaN where undefined (a side without values; no p-value for a distance).
Statistic = Callable[[Sample], "tuple[float, float]"]


@dataclass(frozen=True)
class DriftMethod:
    """A registered drift method (see the module docstring)."""

    name: str
    label: str
    kinds: frozenset[str]
    default_threshold: float
    p_value: bool  # True: drifted when p < threshold; False: drifted when statistic >= threshold
    on_counts: Statistic
    on_values: Statistic | None = None  # the exact form on raw values, where one exists
    aliases: tuple[str, ...] = ()
    source: str = ""  # where the formula comes from

    def compute(self, sample: Sample) -> tuple[float, float]:
        """(statistic, p-value) of ``sample``: the exact form when raw values are there, else the binned one."""
        if sample.n_ref == 0 or sample.n_cur == 0:
            return float("nan"), float("nan")
        if sample.raw and self.on_values is not None:
            return self.on_values(sample)
        return self.on_counts(sample)


def shares(counts) -> np.ndarray:
    """Counts as shares of their total (NaN everywhere when the total is 0)."""
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    return c / total if total > 0 else np.full_like(c, np.nan)


NAN = float("nan")

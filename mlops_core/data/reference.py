"""Reference distributions, summarised once so drift queries never reread the raw data.

For a numeric column we keep n, nulls, mean, population standard deviation
(``ddof=0``), the mean absolute deviation about the median (``mad``), min, max, the 101 quantiles 0%, 1%, ..., 100% (numpy's default linear
interpolation) and **decile bins**: the edges are the distinct 10%, 20%, ..., 90%
quantiles of the finite reference values, the outer bins are open
(``(-inf, q10)``, ``[q10, q20)``, ..., ``[q90, +inf)``), so every current value,
however far out, falls in some bin. For a categorical column we keep the count of
every category. The edges are stored as rows (``reference_bins``), not as an engine
function, so the same binning runs in DuckDB or any other SQL engine.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from mlops_core.entities import Bin, FeatureReference, FeatureSpec

N_BINS = 10
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)


def decile_edges(values: np.ndarray) -> np.ndarray:
    """Return the distinct 10%..90% quantiles of the finite ``values`` (empty for no finite values)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.array([], dtype=float)
    return np.unique(np.quantile(finite, np.linspace(0.1, 0.9, N_BINS - 1)))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Count non-NaN ``values`` per bin ``[e_i, e_{i+1})`` with open outer bins; length len(edges)+1."""
    v = values[~np.isnan(values)]
    idx = np.searchsorted(edges, v, side="right")
    return np.bincount(idx, minlength=len(edges) + 1)


def _sorted_quantiles(ordered: np.ndarray, levels) -> np.ndarray:
    """``np.quantile(ordered, levels)`` (method "linear") of an already sorted array, without re-selecting.

    Replicates numpy's virtual index ``q * (n - 1)`` and its two-sided lerp, so results are identical.
    """
    q = np.asarray(levels, dtype=float)
    n = ordered.size
    virtual = q * (n - 1)
    prev = np.clip(np.floor(virtual).astype(np.intp), 0, n - 1)
    nxt = np.clip(prev + 1, 0, n - 1)
    gamma = virtual - np.floor(virtual)
    a, b = ordered[prev], ordered[nxt]
    diff = b - a
    out = a + diff * gamma
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), out)


def summarise_numeric(name: str, values) -> FeatureReference:
    """Summarise one numeric column (NaN counts as null; +-inf are kept and land in the outer bins).

    Same numbers as ``decile_edges``/``bin_counts``/``np.quantile`` on the raw values, from one
    sort: quantiles are read off the sorted values, bins are binary searches of the edges.
    """
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    valid = v[~np.isnan(v)]
    nulls = int(v.size - valid.size)
    ordered = np.sort(valid)
    lo, hi = np.searchsorted(ordered, -np.inf, side="right"), np.searchsorted(ordered, np.inf, side="left")
    finite_sorted = ordered[lo:hi]
    ref = FeatureReference(feature=name, kind="numeric", n=int(valid.size), null_count=nulls)
    edges = np.array([], dtype=float)
    if finite_sorted.size:
        finite = valid[np.isfinite(valid)] if lo or hi < ordered.size else valid
        ref.mean = float(finite.mean())
        ref.std = float(finite.std(ddof=0))
        ref.min = float(finite_sorted[0])
        ref.max = float(finite_sorted[-1])
        ref.quantiles = [float(q) for q in _sorted_quantiles(finite_sorted, QUANTILE_LEVELS)]
        ref.mad = float(np.abs(finite - ref.quantiles[50]).mean())
        edges = np.unique(_sorted_quantiles(finite_sorted, np.linspace(0.1, 0.9, N_BINS - 1)))
    below = np.searchsorted(ordered, edges, side="left")  # values < each edge
    counts = np.diff(np.r_[0, below, ordered.size])
    bounds = [None, *edges.tolist(), None]
    ref.bins = [Bin(bin=i, count=int(c), lower=bounds[i], upper=bounds[i + 1]) for i, c in enumerate(counts)]
    return ref


def summarise_categorical(name: str, values) -> FeatureReference:
    """Summarise one categorical column: the count of each category (values compared as strings)."""
    s = pd.Series(values)
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) == "string":
        counts = s.value_counts(dropna=False)  # Python strings already compare as strings: one counting pass
        missing = counts.index.isna()
        nulls = int(counts[missing].sum())
        counts = counts[~missing].sort_index()
    else:
        nulls = int(s.isna().sum())
        counts = s.dropna().astype(str).value_counts().sort_index()
    ref = FeatureReference(feature=name, kind="categorical", n=int(len(s) - nulls), null_count=nulls)
    ref.bins = [Bin(bin=i, count=int(c), category=str(cat)) for i, (cat, c) in enumerate(counts.items())]
    return ref


def summarise(df: pd.DataFrame, specs: list[FeatureSpec], extra: dict[str, str] | None = None) -> list[FeatureReference]:
    """Summarise every feature of ``specs`` found in ``df``, plus ``extra`` columns {name: kind}
    (e.g. ``__score__``: numeric, ``__target__``: categorical)."""
    out = []
    kinds = {s.name: s.kind for s in specs}
    kinds.update(extra or {})
    for name, kind in kinds.items():
        if name not in df.columns:
            continue
        if kind == "numeric":
            out.append(summarise_numeric(name, df[name]))
        else:
            out.append(summarise_categorical(name, df[name]))
    return out


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
            return summarise_numeric(name, values)
        text = col if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) else pc.cast(col, pa.string())
        vc = pc.value_counts(text)
        pairs = sorted((v, int(c)) for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=False)
                       if v is not None)
        n = sum(c for _, c in pairs)
        return FeatureReference(feature=name, kind="categorical", n=n, null_count=len(col) - n,
                                bins=[Bin(bin=i, count=c, category=v) for i, (v, c) in enumerate(pairs)])

    names = [c for c in columns if c in table.column_names]
    with ThreadPoolExecutor(max_workers=max(1, min(len(names), os.cpu_count() or 1))) as pool:
        return list(pool.map(one, names))

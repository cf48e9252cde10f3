"""Anomalies in pipeline runs: a finished run's statistics against the recent runs of its series.

Pure functions (numpy only; no database). ``check(run, history)`` returns the statistics
of ``run`` that lie far from the same statistic in ``history``; ``assess`` is the
vectorised rule over a matrix of past values (one column per statistic).

**Series.** A run is compared with earlier succeeded runs of the same model and the same
series: its kind, refined by the batch kind of an ingest (``ingest:predictions``,
``ingest:labels``) and set apart for policy evaluations (``monitor:policy``), because a
label batch and a prediction batch of one model have nothing in common but the name.

**Rule** (the modified z-score of Iglewicz & Hoaglin, *How to Detect and Handle
Outliers*, ASQC 1993, section 3.3)::

    z = (T(x) - median(T(h))) / s        s = 1.4826 * MAD(T(h))

over the last ``HISTORY_RUNS`` (50) runs ``h`` of the series that hold the statistic; MAD
is the median absolute deviation from the median, and 1.4826 makes ``s`` estimate the
standard deviation of normal data. A statistic is flagged when ``|z| > THRESHOLD`` (3.5,
the value Iglewicz & Hoaglin recommend) and at least ``MIN_HISTORY`` (20) earlier runs
hold it; with fewer nothing is flagged (a median of a handful of runs says little, and
the spread of a MAD from n runs shrinks like 1/sqrt(n)). Both directions are flagged
(a run much faster or with many more rows is as unexplained as a slow or short one).

**Degenerate spread.** When MAD is 0 (half the runs or more share one value, e.g. batches
of exactly 1,000 rows or a null rate that is always 0), ``s`` falls back to 1.2533 times
the mean absolute deviation from the median (sqrt(pi/2): the same normal consistency for
the mean deviation; IBM SPSS Modeler's modified z-score does the same). ``s`` is then
raised to the statistic's ``floor`` (smallest spread, in compared units), so a series
whose values never varied flags only a change larger than ``THRESHOLD * floor``, and
for rates to the binomial standard error ``sqrt(p (1 - p) / n)`` of the run's own count
``n`` at the history's median ``p`` (``p`` kept at least ``1/n`` from 0 and 1), so that
a tiny batch's rate is not judged by the spread of large ones.

**Scales** ``T``: durations, row counts and error metrics (RMSE, MAE, log loss) are
compared as ``log(x + offset)``: they vary by factors, not by amounts, and their spread
grows with their size. The offset (1 s for durations, 1 row for counts) turns the
comparison absolute near zero, where a 50 ms run taking 250 ms is noise, not a 5x
slowdown. Rates and shares (positive rate, null rates, label coverage, accuracy-like
metrics) and R² are compared as they are.

Statistics a run can hold (``RunInfo.statistics`` keys; ``duration_s`` is the run's):
``duration_s``, ``rows``, ``rows_written``, ``train_rows``, ``holdout_rows``,
``predictions``, ``positive_rate``, ``label_coverage``, ``null_rates`` (per feature,
checked as ``null_rate:<feature>``), ``training_metrics`` and ``candidate_metrics``
(checked as ``training:<metric>`` and ``holdout:<metric>``). Any run kind that records
them is checked the same way.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from mlops_core import metrics
from mlops_core.entities import RunAnomaly, RunInfo

#: Earlier runs of the series a run is compared with (the newest ones).
HISTORY_RUNS = 50
#: Fewest earlier runs holding a statistic before it is judged at all.
MIN_HISTORY = 20
#: |robust z| above which a statistic is flagged (Iglewicz & Hoaglin 1993).
THRESHOLD = 3.5
#: MAD -> standard deviation of normal data: 1 / Phi^-1(3/4) = 1.4826 (scipy's ``scale="normal"``).
MAD_TO_SD = 1.0 / NormalDist().inv_cdf(0.75)
#: Mean absolute deviation -> standard deviation of normal data: sqrt(pi / 2) = 1.2533.
MEAN_AD_TO_SD = math.sqrt(math.pi / 2)

SECONDS, COUNT, SHARE, VALUE = "s", "count", "share", "value"


@dataclass(frozen=True)
class Watched:
    """How one statistic is compared with its history."""

    label: str
    unit: str  # s | count | share | value
    log: bool  # compare log(x + offset)
    offset: float = 0.0
    floor: float = 0.01  # least spread, in compared units
    denominators: tuple[str, ...] = ()  # rates: the count (first one the run has) behind the rate


_DURATION = Watched("duration", SECONDS, True, 1.0, 0.1)


def _count(label: str) -> Watched:
    return Watched(label, COUNT, True, 1.0, 0.05)


def _rate(label: str, *denominators: str) -> Watched:
    return Watched(label, SHARE, False, 0.0, 0.01, denominators)


#: Scalar statistics by their key in a run's statistics.
SCALARS: dict[str, Watched] = {
    "rows": _count("rows"),
    "rows_written": _count("rows written"),
    "train_rows": _count("training rows"),
    "holdout_rows": _count("holdout rows"),
    "predictions": _count("predictions"),
    "positive_rate": _rate("positive rate", "rows", "predictions"),
    "label_coverage": _rate("label coverage", "predictions", "rows"),
}
#: Statistics held per feature or per metric: key in the run's statistics -> prefix of the checked name.
GROUPS = {"null_rates": "null_rate:", "training_metrics": "training:", "candidate_metrics": "holdout:"}


@lru_cache(maxsize=4096)
def watched(name: str) -> Watched | None:
    """How the statistic ``name`` (as ``observations`` names it) is compared, or None when it is not watched."""
    if name == "duration_s":
        return _DURATION
    if name in SCALARS:
        return SCALARS[name]
    prefix, _, rest = name.partition(":")
    if prefix == "null_rate" and rest:
        return _rate(f"null rate of {rest}", "rows")
    if prefix in ("training", "holdout") and rest in metrics.CATALOGUE:
        m = metrics.CATALOGUE[rest]
        label = f"{prefix} {m.label}"
        if m.unit == SHARE:
            return _rate(label, "train_rows" if prefix == "training" else "holdout_rows")
        if m.direction == metrics.LOWER:  # errors: positive, vary by factors
            return Watched(label, VALUE, True, 0.0, 0.02)
        return Watched(label, VALUE, False, 0.0, 0.01)
    return None


def series(run: RunInfo) -> str:
    """The series a run belongs to: its kind, with an ingest's batch kind, or ``monitor:policy``."""
    params = run.params or {}
    if run.kind == "monitor" and params.get("policy_evaluation"):
        return "monitor:policy"
    sub = params.get("kind")
    return f"{run.kind}:{sub}" if run.kind == "ingest" and isinstance(sub, str) else run.kind


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def observations(run: RunInfo) -> dict[str, float]:
    """The watched statistics a run holds, by name (finite numbers only)."""
    stats = run.statistics or {}
    out: dict[str, float] = {}
    d = _number(run.duration_s)
    if d is not None:
        out["duration_s"] = d
    for key in SCALARS:
        v = _number(stats.get(key))
        if v is not None:
            out[key] = v
    for key, prefix in GROUPS.items():
        group = stats.get(key)
        if isinstance(group, dict):
            for name, value in group.items():
                v = _number(value)
                if v is not None and watched(prefix + str(name)) is not None:
                    out[prefix + str(name)] = v
    return out


@dataclass
class Assessment:
    """The rule applied to each statistic (arrays aligned with the statistics; NaN where not judged)."""

    history: np.ndarray  # earlier values holding the statistic
    centre: np.ndarray  # median of the history, in compared units
    spread: np.ndarray  # s, in compared units
    z: np.ndarray  # robust z of the current value
    flagged: np.ndarray  # bool


def assess(history: np.ndarray, current: np.ndarray, floor: np.ndarray, counts: np.ndarray | None = None,
           rate: np.ndarray | None = None, *, threshold: float = THRESHOLD,
           min_history: int = MIN_HISTORY) -> Assessment:
    """Robust z of ``current`` (m values, compared units) against ``history`` (k x m, NaN = missing).

    ``floor``: each statistic's least spread; ``rate`` (bool, m) marks rates, whose spread is at least the
    binomial standard error for ``counts`` (m, the run's count behind each rate; NaN or 0 = unknown).
    Returns an Assessment; a statistic with fewer than ``min_history`` values, or without a current value,
    is not judged (z NaN, not flagged). Raises ValueError for mismatched shapes.
    """
    history = np.asarray(history, dtype=float)
    current = np.asarray(current, dtype=float)
    if history.ndim != 2 or history.shape[1] != current.shape[0] or np.shape(floor) != current.shape:
        raise ValueError(f"history must be (runs, {current.shape[0]}) and floor ({current.shape[0]},); got "
                         f"{history.shape} and {np.shape(floor)}")
    m = current.shape[0]
    n = np.isfinite(history).sum(axis=0)
    centre, spread, z = np.full(m, np.nan), np.full(m, np.nan), np.full(m, np.nan)
    judged = (n >= max(min_history, 1)) & np.isfinite(current)
    if judged.any():
        h = history[:, judged]
        med = np.nanmedian(h, axis=0)
        dev = np.abs(h - med)
        mad = np.nanmedian(dev, axis=0)
        s = np.where(mad > 0, MAD_TO_SD * mad, MEAN_AD_TO_SD * np.nanmean(dev, axis=0))
        s = np.maximum(s, np.asarray(floor, dtype=float)[judged])
        if rate is not None and counts is not None:
            cnt = np.asarray(counts, dtype=float)[judged]
            usable = np.asarray(rate, dtype=bool)[judged] & np.isfinite(cnt) & (cnt > 0)
            safe = np.where(usable, cnt, 1.0)
            p = np.clip(med, 1.0 / safe, 1.0 - 1.0 / safe)
            se = np.sqrt(np.clip(p * (1.0 - p), 0.0, None) / safe)
            s = np.where(usable, np.maximum(s, se), s)
        centre[judged], spread[judged] = med, s
        z[judged] = (current[judged] - med) / s
    flagged = np.zeros(m, dtype=bool)
    flagged[judged] = np.abs(z[judged]) > threshold
    return Assessment(n.astype(int), centre, spread, z, flagged)


def _compared(values: np.ndarray, how: Watched) -> np.ndarray:
    if not how.log:
        return values
    with np.errstate(invalid="ignore", divide="ignore"):
        shifted = values + how.offset
        return np.where(shifted > 0, np.log(np.where(shifted > 0, shifted, 1.0)), np.nan)


def _original(centre: float, how: Watched) -> float:
    return math.exp(centre) - how.offset if how.log else centre


def describe_value(value: float, unit: str) -> str:
    """A statistic's value as a person reads it (seconds, a count, a percentage or a number)."""
    if unit == SECONDS:
        return f"{value:.3g} s" if value < 10 else f"{value:,.0f} s"
    if unit == COUNT:
        return f"{value:,.0f}"
    if unit == SHARE:
        return f"{value:.1%}"
    return f"{value:.4g}"


def _message(how: Watched, *, value: float, median: float, z: float, n: int, name: str, threshold: float) -> str:
    if how.log and median + how.offset > 0:
        change = f"{(value + how.offset) / (median + how.offset):.2g}x the median"
    elif how.unit == SHARE:
        change = f"{100 * (value - median):+.1f} percentage points"
    else:
        change = f"{value - median:+.4g} from the median"
    return (f"{how.label} {describe_value(value, how.unit)} against a median of {describe_value(median, how.unit)} "
            f"over the last {n} {name} runs ({change}; robust z {z:+.1f}, limit ±{threshold:g})")


def check(run: RunInfo, history: Sequence[RunInfo], *, threshold: float = THRESHOLD,
          min_history: int = MIN_HISTORY, history_runs: int = HISTORY_RUNS) -> list[RunAnomaly]:
    """The statistics of ``run`` that lie far from the newest ``history_runs`` runs of ``history``.

    ``history``: earlier succeeded runs of the same model and series, newest first (``run`` itself is
    skipped if present). Returns one RunAnomaly per flagged statistic (``alert_id`` and ``detected_at``
    unset), in the order of the statistics' names; empty when nothing is unusual or the history is short.
    """
    now = observations(run)
    names = sorted(name for name in now if watched(name) is not None)
    past = [observations(r) for r in [h for h in history if h.id != run.id][:history_runs]]
    if not names or len(past) < min_history:
        return []
    hows = [watched(name) for name in names]
    raw = np.array([[p.get(name, np.nan) for name in names] for p in past], dtype=float).reshape(len(past), len(names))
    hist = np.column_stack([_compared(raw[:, j], how) for j, how in enumerate(hows)])
    cur = np.array([_compared(np.array([now[name]]), how)[0] for name, how in zip(names, hows, strict=True)])
    counts = np.array([next((now[d] for d in how.denominators if d in now), np.nan) for how in hows])
    result = assess(hist, cur, np.array([how.floor for how in hows]), counts,
                    np.array([how.unit == SHARE and bool(how.denominators) for how in hows]),
                    threshold=threshold, min_history=min_history)
    which = series(run)
    out = []
    for j in np.flatnonzero(result.flagged):
        name, how = names[j], hows[j]
        median = _original(float(result.centre[j]), how)
        z = float(result.z[j])
        n = int(result.history[j])
        out.append(RunAnomaly(run_id=run.id, model=run.model or "", run_kind=run.kind, series=which, statistic=name,
                              value=now[name], median=median, robust_z=z, threshold=threshold, history=n,
                              message=_message(how, value=now[name], median=median, z=z, n=n, name=which,
                                               threshold=threshold)))
    return out


__all__ = ["HISTORY_RUNS", "MIN_HISTORY", "THRESHOLD", "Assessment", "Watched", "assess", "check",
           "describe_value", "observations", "series", "watched"]

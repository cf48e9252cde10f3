"""Confidence-based performance estimation (CBPE) of a binary classifier while its labels are missing.

Pure, vectorised statistics on arrays; the SQL that feeds them lives in ``store/estimation.py``
and the orchestration (which calibration, which windows, storing) in
``monitoring/estimated_performance.py``.

Method (NannyML's CBPE, binary case; NannyML 0.13.1 ``performance_estimation/confidence_based``
and ``calibration.py``, and Nuyttens & Bialek, "Estimating model performance without ground
truth", NannyML docs, *How it works: CBPE*):

1. **Calibration.** On labelled reference rows (a version's holdout, or a labelled window of the
   log) fit an isotonic regression of the label on the positive-class score (scikit-learn's
   ``IsotonicRegression(out_of_bounds="clip")``: the pool-adjacent-violators fit, linear between
   the pools' end points). It is used only if it helps: NannyML's check fits it on 10 stratified
   90/10 splits (seed 42) and compares the expected calibration error of the pooled test parts
   before and after (10 equal-count bins, ``ECE = Σ_b (n_b/n)·|mean score_b - mean label_b|``);
   calibration is skipped when it does not lower the ECE, when the reference has one class, or when
   its ROC AUC exceeds 0.999. A calibrated probability ``p_i`` is the chance that row ``i`` is positive.

2. **Expected confusion matrix.** With labels drawn independently as ``y_i ~ Bernoulli(p_i)``, the
   expected counts of a window are ``TP = Σ_{pred=1} p``, ``FP = Σ_{pred=1} (1-p)``,
   ``FN = Σ_{pred=0} p``, ``TN = Σ_{pred=0} (1-p)``, and the estimates are the metrics of that
   matrix: accuracy ``(TP+TN)/n``, precision ``TP/(TP+FP)``, recall ``TP/(TP+FN)``,
   F1 ``2TP/(2TP+FP+FN)`` (0 when a denominator is 0, as ``zero_division=0``).

3. **ROC AUC** (NannyML's ``estimate_roc_auc``): order the rows by score, descending; the expected
   ROC curve has ``tpr = cumsum(p)/Σp`` and ``fpr = cumsum(1-p)/Σ(1-p)``, and its trapezoidal area is
   ``(Σ_{a above b} p_a(1-p_b) + ½ Σ_a p_a(1-p_a)) / (P·N)`` with ``P = Σp``, ``N = n - P``.

Speed: the map is stored as breakpoints on a grid of ``grid`` cells over [0, 1] (``GRID``), and
it is linear between consecutive breakpoints, so a window needs only, per (bin between
breakpoints, predicted class), the count ``n``, ``Σs`` and ``Σs²`` of its scores: with
``p = α + β·s`` in a bin, ``Σp = α·n + β·Σs`` and ``Σp² = α²·n + 2αβ·Σs + β²·Σs²`` exactly.
One SQL scan of the log gives them (``store.estimation.bin_sums``). Only ROC AUC loses something:
rows of one bin count as tied. Within a bin the exact area exceeds the tied one by
``½ Σ_{pairs} |p_a - p_b|``, between 0 and ``n_b(n_b-1)/4 · d_b`` with ``d_b`` the smaller of the bin's
rise of ``p`` and ``sqrt(2·n_b·var_b/(n_b-1))`` (the root mean square pair difference); the estimate
adds half of that bound, so it is within ``auc_bound/2 = Σ_b n_b(n_b-1)·d_b / (8·P·N)`` of the exact
one. Isotonic plateaus have no rise (exact); breakpoints are added where a linear piece rises more
than ``MAX_RISE``, and at 100 reference percentiles.

Band (an alternative to NannyML's ``±3·σ_reference/√n``, documented in docs/monitoring.md): a normal
interval ``estimate ± z·sqrt(var_sampling + var_calibration)`` at ``level`` (default 95%), clipped to
[0, 1], for the value the metric will take once every row of the window is labelled:

- ``var_sampling``: the variance of the realized metric when the labels are drawn as above
  (Poisson-binomial counts): accuracy ``Σ p(1-p)/n²``; precision ``v₁/n₁²``; recall and F1 by the
  delta method on ``A = Σ_{pred=1} y`` and ``B = Σ_{pred=0} y`` (independent, variances ``v₁``,
  ``v₀``); ROC AUC by the delta method on the rank-sum form ``AUC = (R - P(P-1)/2)/(P(n-P))``, ``R = Σ r_i y_i``
  (``r_i`` the mid-rank from 0), linear in the labels (Mann & Whitney 1947; Hanley & McNeil 1982).
- ``var_calibration``: the variance the finite reference adds. Each isotonic pool's value is the
  share of positives among its ``m_k`` reference rows, variance ``q(1-q)/m_k`` with
  ``q = (m_k·mean + ½)/(m_k + 1)`` (so a pure pool is not taken as certain); pools are independent,
  the estimate is a smooth function of the pool values, and the delta method sums
  ``(∂estimate/∂pool_k)²·var_k``. Zero when the scores are used as they are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from mlops_core.entities import ReferencePerformance, ScoreCalibration
from mlops_core.errors import InvalidInputError

#: Breakpoints lie on multiples of 1/GRID in [0, 1]: the score resolution of the calibration map.
GRID = 10_000
#: Reference percentiles added as breakpoints (they bound how many rows a bin holds).
REFERENCE_QUANTILES = 100
#: A linear piece of the map rising more than this is split (bounds the ROC AUC binning error).
MAX_RISE = 0.01
#: Default level of the band.
BAND_LEVEL = 0.95
#: Fewest labelled reference rows a calibration is fitted on.
MIN_REFERENCE_ROWS = 100
#: NannyML's calibration check: ECE bins, splits, test share, seed, and the ROC AUC above which it skips.
ECE_BINS, CHECK_SPLITS, CHECK_TEST_SHARE, CHECK_SEED, SEPARABLE_AUC = 10, 10, 0.1, 42, 0.999

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
ESTIMATE_COLUMNS = ["group", "metric", "estimate", "band_low", "band_high", "std_error", "sampling_error",
                    "calibration_error", "n", "auc_bound"]


# --- calibration ------------------------------------------------------------------------------------


@dataclass
class CalibrationCheck:
    """Whether isotonic calibration lowers the expected calibration error of the reference scores."""

    needed: bool
    ece_before: float | None
    ece_after: float | None
    reason: str


def expected_calibration_error(labels, probabilities, bins: int = ECE_BINS) -> float:
    """ECE = Σ_b (n_b/n)·|mean p_b - mean y_b| over ``bins`` equal-count bins of the rows sorted by p.

    Returns NaN for no rows. Fewer than 2·bins rows use n//2 bins (NannyML's rule).
    """
    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(labels, dtype=float)
    n = len(p)
    if n == 0:
        return math.nan
    bins = max(1, min(bins, n // 2)) if n <= 2 * bins else bins
    order = np.argsort(p, kind="stable")
    parts = np.array_split(np.arange(n), bins)
    p, y = p[order], y[order]
    return float(sum(len(ix) / n * abs(p[ix].mean() - y[ix].mean()) for ix in parts if len(ix)))


def calibration_check(scores, labels) -> CalibrationCheck:
    """NannyML's ``needs_calibration``: isotonic calibration is needed when it lowers the ECE of held-out rows.

    Not needed (no check run) when the labels have one class or the scores separate them (ROC AUC > 0.999).
    """
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedShuffleSplit

    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=int)
    if len(np.unique(y)) < 2:
        return CalibrationCheck(False, None, None, "the reference labels have one class")
    if roc_auc_score(y, s) > SEPARABLE_AUC:
        return CalibrationCheck(False, None, None, "the reference scores separate the classes")
    if np.bincount(y, minlength=2).min() < 2:
        return CalibrationCheck(False, None, None, "a class has fewer than 2 reference rows")
    split = StratifiedShuffleSplit(n_splits=CHECK_SPLITS, test_size=CHECK_TEST_SHARE, random_state=CHECK_SEED)
    truth, raw, fixed = [], [], []
    for train, test in split.split(s.reshape(-1, 1), y):
        iso = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(s[train], y[train])
        truth.append(y[test])
        raw.append(s[test])
        fixed.append(iso.predict(s[test]))
    truth, raw, fixed = np.concatenate(truth), np.concatenate(raw), np.concatenate(fixed)
    before = expected_calibration_error(truth, raw)
    after = expected_calibration_error(truth, fixed)
    needed = after < before
    return CalibrationCheck(needed, before, after,
                            "calibration lowers the ECE" if needed else "calibration does not lower the ECE")


@dataclass
class _Blocks:
    """The pools of an isotonic fit: score range, mean label and size of each, in score order."""

    low: np.ndarray
    high: np.ndarray
    means: np.ndarray
    rows: np.ndarray

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(block_low, block_high, weight) of each x: the map there is (1-w)·means[lo] + w·means[hi].

        Constant on each pool, linear between the last score of one pool and the first of the next,
        constant beyond the ends: scikit-learn's ``IsotonicRegression.predict`` with ``out_of_bounds="clip"``.
        """
        x = np.asarray(x, dtype=float)
        k = np.searchsorted(self.low, x, side="right") - 1
        below = k < 0
        k = np.clip(k, 0, len(self.low) - 1)
        nxt = np.minimum(k + 1, len(self.low) - 1)
        gap = (x > self.high[k]) & (nxt > k)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(gap, (x - self.high[k]) / (self.low[nxt] - self.high[k]), 0.0)
        hi = np.where(gap, nxt, k)
        return np.where(below, 0, k), np.where(below, 0, hi), np.where(below, 0.0, np.clip(w, 0.0, 1.0))


def _isotonic_blocks(s: np.ndarray, y: np.ndarray) -> _Blocks:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(s, y)
    order = np.argsort(s, kind="stable")
    xs, fitted = s[order], iso.predict(s[order])
    starts = np.flatnonzero(np.r_[True, fitted[1:] != fitted[:-1]])
    ends = np.r_[starts[1:], len(xs)] - 1
    return _Blocks(low=xs[starts], high=xs[ends], means=fitted[starts].astype(float),
                   rows=(ends - starts + 1).astype(np.int64))


def _split_rises(cells: np.ndarray, value_at, max_rise: float) -> np.ndarray:
    """Add breakpoints (on the grid) inside pieces whose value rises more than ``max_rise``."""
    for _ in range(8):
        values = value_at(cells)
        rise = np.abs(np.diff(values))
        width = np.diff(cells)
        split = (rise > max_rise) & (width > 1)
        if not split.any():
            break
        extra = []
        for i in np.flatnonzero(split):
            pieces = int(min(width[i], math.ceil(rise[i] / max_rise)))
            extra.append(np.round(np.linspace(cells[i], cells[i + 1], pieces + 1)[1:-1]).astype(np.int64))
        cells = np.unique(np.concatenate([cells, *extra]))
    return cells


def _reference_performance(y: np.ndarray, s: np.ndarray, predicted_positive) -> ReferencePerformance:
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else None
    if predicted_positive is None:
        return ReferencePerformance(roc_auc=auc)
    pred = np.asarray(predicted_positive, dtype=bool)
    pos = y.astype(bool)
    tp = float(np.sum(pred & pos))
    n_pred, n_pos = float(pred.sum()), float(pos.sum())
    return ReferencePerformance(accuracy=float(np.mean(pred == pos)), precision=tp / n_pred if n_pred else 0.0,
                                recall=tp / n_pos if n_pos else 0.0,
                                f1=2 * tp / (n_pred + n_pos) if n_pred + n_pos else 0.0, roc_auc=auc)


def fit_calibration(scores, labels, predicted_positive=None, *, grid: int = GRID, check: bool = True,
                    max_rise: float = MAX_RISE) -> ScoreCalibration:
    """Fit the calibration map of a positive-class score on labelled reference rows.

    ``labels``: 1/True for the positive class; ``predicted_positive`` (optional): whether each
    row was predicted positive, for the reference's realized metrics. ``check=False`` calibrates
    without NannyML's check. Returns a ``ScoreCalibration`` (identity map when calibration is not
    needed). Raises InvalidInputError (lengths differ, non-finite scores, labels not 0/1, fewer
    than ``MIN_REFERENCE_ROWS`` rows).
    """
    s = np.asarray(scores, dtype=float)
    y = _binary_labels(labels)
    if len(s) != len(y):
        raise InvalidInputError(f"Scores and labels differ in length ({len(s)} and {len(y)}).")
    if predicted_positive is not None and len(predicted_positive) != len(s):
        raise InvalidInputError(f"Predictions and scores differ in length ({len(predicted_positive)} and {len(s)}).")
    if len(s) < MIN_REFERENCE_ROWS:
        raise InvalidInputError(
            f"Only {len(s)} labelled reference rows with a score; calibration needs at least {MIN_REFERENCE_ROWS}. "
            "Choose a longer reference window with labels.", rows=len(s))
    if not np.all(np.isfinite(s)):
        raise InvalidInputError("The reference scores contain NaN or infinite values.")
    verdict = calibration_check(s, y) if check else CalibrationCheck(True, None, None, "not checked")
    quantiles = np.quantile(np.clip(s, 0, 1), np.linspace(0, 1, REFERENCE_QUANTILES + 1))
    base = [np.array([0, grid]), np.round(quantiles * grid).astype(np.int64)]
    if verdict.needed:
        blocks = _isotonic_blocks(s, y)
        # Both grid points around each end of a pool: the map then equals the isotonic fit outside the grid
        # cells that hold a pool's end (and everywhere when the scores lie on the grid).
        ends = np.clip(np.r_[blocks.low, blocks.high], 0, 1) * grid
        base += [np.floor(ends).astype(np.int64), np.ceil(ends).astype(np.int64)]
    cells = np.unique(np.clip(np.concatenate(base), 0, grid))
    if verdict.needed:
        def value_at(c):
            lo, hi, w = blocks.evaluate(c / grid)
            return (1 - w) * blocks.means[lo] + w * blocks.means[hi]

        cells = _split_rises(cells, value_at, max_rise)
        lo, hi, w = blocks.evaluate(cells / grid)
        values = (1 - w) * blocks.means[lo] + w * blocks.means[hi]
        means, rows = blocks.means, blocks.rows
    else:
        cells = _split_rises(cells, lambda c: c / grid, max_rise)
        values = cells / grid
        lo = hi = np.full(len(cells), -1, dtype=np.int64)
        w = np.zeros(len(cells))
        means, rows = np.zeros(0), np.zeros(0, dtype=np.int64)
    return ScoreCalibration(
        grid=int(grid), cells=cells.astype(np.int64), values=np.asarray(values, dtype=float),
        block_low=np.asarray(lo, dtype=np.int64), block_high=np.asarray(hi, dtype=np.int64),
        weights=np.asarray(w, dtype=float), block_means=np.asarray(means, dtype=float),
        block_rows=np.asarray(rows, dtype=np.int64), applied=bool(verdict.needed), ece_before=verdict.ece_before,
        ece_after=verdict.ece_after, rows=len(s), positives=int(y.sum()),
        reference=_reference_performance(y, s, predicted_positive))


def _binary_labels(labels) -> np.ndarray:
    y = np.asarray(labels)
    if y.dtype == bool:
        return y.astype(np.int64)
    try:
        yf = y.astype(float)
    except (TypeError, ValueError):
        raise InvalidInputError("Labels must be 0/1 or True/False (1 = the positive class).") from None
    if not np.all(np.isin(yf, (0.0, 1.0))):
        raise InvalidInputError("Labels must be 0/1 or True/False (1 = the positive class); found other values.")
    return yf.astype(np.int64)


def score_cells(scores, grid: int) -> np.ndarray:
    """The grid cell of each score: -1 below 0, ``grid`` from 1 on, else floor(score·grid).

    ``store.estimation`` computes the same with ``CASE WHEN`` and ``floor`` in SQL.
    """
    s = np.asarray(scores, dtype=float)
    with np.errstate(invalid="ignore"):
        inner = np.floor(np.clip(s, 0, 1) * grid)
    return np.where(s < 0, -1, np.where(s >= 1, grid, inner)).astype(np.int64)


def cell_bins(calibration: ScoreCalibration) -> tuple[np.ndarray, np.ndarray]:
    """(cells -1..grid, the bin of each): the lookup table the SQL scan joins the log to.

    Bin 0 holds scores below 0, bin j (1..K-1) the cells from breakpoint j-1 up to breakpoint j,
    bin K (K breakpoints) the scores from 1 on.
    """
    cells = np.arange(-1, calibration.grid + 1, dtype=np.int64)
    return cells, np.searchsorted(calibration.cells, cells, side="right").astype(np.int64)


def score_bins(calibration: ScoreCalibration, scores) -> np.ndarray:
    """The bin of each score (see ``cell_bins``)."""
    return np.searchsorted(calibration.cells, score_cells(scores, calibration.grid), side="right").astype(np.int64)


def _bin_lines(calibration: ScoreCalibration) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per bin (0..K): intercept α, slope β (p = α + β·s), lower score and width (width 0 for the end bins)."""
    x = calibration.cells / calibration.grid
    v = np.asarray(calibration.values, dtype=float)
    slope = np.diff(v) / np.diff(x)
    alpha = np.r_[v[0], v[:-1] - slope * x[:-1], v[-1]]
    beta = np.r_[0.0, slope, 0.0]
    lower = np.r_[x[0], x[:-1], x[-1]]
    width = np.r_[0.0, np.diff(x), 0.0]
    return alpha, beta, lower, width


def calibrate(calibration: ScoreCalibration, scores) -> np.ndarray:
    """Calibrated probabilities of ``scores`` (the map, linear between breakpoints, constant beyond them)."""
    s = np.asarray(scores, dtype=float)
    alpha, beta, _, _ = _bin_lines(calibration)
    b = score_bins(calibration, s)
    return np.clip(alpha[b] + beta[b] * s, 0.0, 1.0)


# --- per-window sums --------------------------------------------------------------------------------


@dataclass
class BinSums:
    """Per (group, bin, predicted class) sums of scored predictions: what one scan of the log returns.

    ``group``: an integer code (e.g. of a (window, version) pair); ``bin``: see ``cell_bins``;
    ``positive``: predicted the positive class; ``n``, ``score_sum``, ``score_sq_sum``: the count,
    Σs and Σs² of the rows. Arrays of equal length.
    """

    group: np.ndarray
    bin: np.ndarray
    positive: np.ndarray
    n: np.ndarray
    score_sum: np.ndarray
    score_sq_sum: np.ndarray

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, group: np.ndarray) -> BinSums:
        """From ``store.estimation.bin_sums`` columns (bin, positive, n, score_sum, score_sq_sum) and group codes."""
        return cls(np.asarray(group, dtype=np.int64), frame["bin"].to_numpy(np.int64),
                   frame["positive"].to_numpy().astype(bool), frame["n"].to_numpy(float),
                   frame["score_sum"].to_numpy(float), frame["score_sq_sum"].to_numpy(float))


def aggregate(calibration: ScoreCalibration, scores, predicted_positive, groups=None) -> BinSums:
    """The ``BinSums`` of rows (what ``store.estimation.bin_sums`` computes in SQL), sorted by group, bin, class.

    Rows with a NaN score are left out (the SQL leaves out NULL and NaN). ``groups``: integer code per row (default: one group).
    """
    s = np.asarray(scores, dtype=float)
    pred = np.asarray(predicted_positive, dtype=bool)
    g = np.zeros(len(s), dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    if not (len(s) == len(pred) == len(g)):
        raise InvalidInputError(f"Scores, predictions and groups differ in length ({len(s)}, {len(pred)}, {len(g)}).")
    keep = ~np.isnan(s)
    s, pred, g = s[keep], pred[keep], g[keep]
    nb = len(calibration.cells) + 1
    key = (g * nb + score_bins(calibration, s)) * 2 + pred
    uk, inv = np.unique(key, return_inverse=True)
    return BinSums(group=uk // (2 * nb), bin=(uk // 2) % nb, positive=(uk % 2).astype(bool),
                   n=np.bincount(inv, minlength=len(uk)).astype(float),
                   score_sum=np.bincount(inv, weights=s, minlength=len(uk)),
                   score_sq_sum=np.bincount(inv, weights=s * s, minlength=len(uk)))


# --- estimates ----------------------------------------------------------------------------------------


def z_of(level: float) -> float:
    """The two-sided normal quantile of a band at ``level`` (0.95 -> 1.96); raise InvalidInputError outside (0, 1)."""
    if not 0 < level < 1:
        raise InvalidInputError(f"The band level must lie between 0 and 1 (e.g. 0.95), not {level}.", level=level)
    return NormalDist().inv_cdf(0.5 + level / 2)


def _div(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = b > 0
    return np.where(ok, a / np.where(ok, b, 1.0), 0.0)


def _group_starts(sorted_groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first = np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]
    starts = np.flatnonzero(first)
    return starts, np.cumsum(first) - 1


def _within_group_exclusive_cumsum(values: np.ndarray, starts: np.ndarray, member: np.ndarray) -> np.ndarray:
    c = np.cumsum(values) - values
    return c - c[starts][member]


def estimate(sums: BinSums, calibration: ScoreCalibration, *, level: float = BAND_LEVEL) -> pd.DataFrame:
    """CBPE estimates of every group in ``sums``: one row per (group, metric), groups in ascending order.

    Columns: group, metric (accuracy, precision, recall, f1, roc_auc), estimate, band_low,
    band_high, std_error (sqrt of both variances), sampling_error, calibration_error, n (rows),
    auc_bound (roc_auc rows: the width of the binning error interval, see the module docstring;
    NaN otherwise). ROC AUC is NaN where the expected positives or negatives are 0. Raises
    InvalidInputError (level).
    """
    z = z_of(level)
    if len(sums.group) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "metric" else float) for c in ESTIMATE_COLUMNS})
    alpha, beta, _lower, width = _bin_lines(calibration)
    b = sums.bin
    n, s1, s2 = sums.n, sums.score_sum, sums.score_sq_sum
    a_, b_ = alpha[b], beta[b]
    S = a_ * n + b_ * s1  # Σp per row of sums
    Q = a_ * a_ * n + 2 * a_ * b_ * s1 + b_ * b_ * s2  # Σp²
    S = np.clip(S, 0.0, n)
    V = np.clip(S - Q, 0.0, None)  # Σp(1-p)
    groups, g = np.unique(sums.group, return_inverse=True)
    G = len(groups)
    pos = sums.positive

    def per_group(x, mask=None):
        return np.bincount(g, weights=np.where(mask, x, 0.0) if mask is not None else x, minlength=G)

    n_g, n1, tp, fn = per_group(n), per_group(n, pos), per_group(S, pos), per_group(S, ~pos)
    v1, v0 = per_group(V, pos), per_group(V, ~pos)
    n0 = n_g - n1
    est = {
        "accuracy": _div(tp + n0 - fn, n_g),
        "precision": _div(tp, n1),
        "recall": _div(tp, tp + fn),
        "f1": _div(2 * tp, n1 + tp + fn),
    }
    d_f1 = n1 + tp + fn
    var_s = {
        "accuracy": _div(v1 + v0, n_g ** 2),
        "precision": _div(v1, n1 ** 2),
        "recall": _div(fn ** 2 * v1 + tp ** 2 * v0, (tp + fn) ** 4),
        "f1": _div(4 * (n1 + fn) ** 2 * v1 + 4 * tp ** 2 * v0, d_f1 ** 4),
    }
    # d estimate / d Σp of a row of sums (by its predicted class): the calibration variance's chain rule.
    grad = {
        "accuracy": np.where(pos, _div(1.0, n_g)[g], -_div(1.0, n_g)[g]),
        "precision": np.where(pos, _div(1.0, n1)[g], 0.0),
        "recall": np.where(pos, _div(fn, (tp + fn) ** 2)[g], -_div(tp, (tp + fn) ** 2)[g]),
        "f1": np.where(pos, _div(2 * (n1 + fn), d_f1 ** 2)[g], -_div(2 * tp, d_f1 ** 2)[g]),
    }

    # ROC AUC over bins (both predicted classes together), in score order within each group.
    nb = len(calibration.cells) + 1
    key = g * nb + b
    uk, kinv = np.unique(key, return_inverse=True)
    kg = uk // nb
    kb = uk % nb
    Nk = np.bincount(kinv, weights=n, minlength=len(uk))
    Sk = np.bincount(kinv, weights=S, minlength=len(uk))
    Vk = np.bincount(kinv, weights=V, minlength=len(uk))
    s1k = np.bincount(kinv, weights=s1, minlength=len(uk))
    s2k = np.bincount(kinv, weights=s2, minlength=len(uk))
    starts, member = _group_starts(kg)
    negk = Nk - Sk
    neg_below = _within_group_exclusive_cumsum(negk, starts, member)
    rows_below = _within_group_exclusive_cumsum(Nk, starts, member)
    P = np.add.reduceat(Sk, starts)
    Ng = np.add.reduceat(Nk, starts)
    Neg = Ng - P
    D = P * Neg
    U = np.add.reduceat(Sk * neg_below + 0.5 * Sk * negk, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        var_score = np.clip(s2k / np.where(Nk > 0, Nk, 1) - (s1k / np.where(Nk > 0, Nk, 1)) ** 2, 0.0, None)
        rms_pair = np.sqrt(np.where(Nk > 1, 2 * Nk * var_score / np.where(Nk > 1, Nk - 1, 1), 0.0)) * np.abs(beta[kb])
    spread = np.minimum(np.abs(beta[kb]) * width[kb], rms_pair)
    slack = np.add.reduceat(Nk * np.clip(Nk - 1, 0, None) * spread / 4, starts)
    ok = (P > 1e-12) & (Neg > 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        est["roc_auc"] = np.where(ok, (U + slack / 2) / np.where(ok, D, 1), np.nan)
        auc_bound = np.where(ok, slack / np.where(ok, D, 1), np.nan)
        r = rows_below + (Nk - 1) / 2
        ER = np.add.reduceat(r * Sk, starts)
        var_R = np.add.reduceat(r * r * Vk, starts)
        cov_RP = np.add.reduceat(r * Vk, starts)
        var_P = np.add.reduceat(Vk, starts)
        Dsafe = np.where(ok, D, 1.0)
        gR = 1 / Dsafe
        gP = (-(P - 0.5) * D - (ER - P * (P - 1) / 2) * (Ng - 2 * P)) / Dsafe ** 2
        var_s["roc_auc"] = np.where(ok, np.clip(gR * gR * var_R + 2 * gR * gP * cov_RP + gP * gP * var_P, 0, None),
                                    np.nan)
        p_above = P[member] - (_within_group_exclusive_cumsum(Sk, starts, member) + Sk)
        du = neg_below - p_above + 0.5 * Nk - Sk
        gk = np.where(ok[member], (du * D[member] - U[member] * (Ng - 2 * P)[member]) / Dsafe[member] ** 2, 0.0)
    grad["roc_auc"] = gk[kinv]

    var_c = _calibration_variances(calibration, sums, g, G, grad)
    rows = []
    for m in METRICS:
        se_s = np.sqrt(var_s[m])
        se_c = np.sqrt(var_c[m])
        se = np.sqrt(var_s[m] + var_c[m])
        e = est[m]
        rows.append(pd.DataFrame({
            "group": groups, "metric": m, "estimate": e,
            "band_low": np.clip(e - z * se, 0.0, 1.0), "band_high": np.clip(e + z * se, 0.0, 1.0),
            "std_error": se, "sampling_error": se_s, "calibration_error": se_c, "n": n_g,
            "auc_bound": auc_bound if m == "roc_auc" else np.nan,
        }))
    out = pd.concat(rows, ignore_index=True)
    order = {m: i for i, m in enumerate(METRICS)}
    out["_m"] = out["metric"].map(order)
    return out.sort_values(["group", "_m"], kind="stable").drop(columns="_m").reset_index(drop=True)


def _calibration_variances(calibration: ScoreCalibration, sums: BinSums, g: np.ndarray, G: int,
                           grad: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Delta-method variance of each group's estimates from the reference pools' sampling error."""
    B = len(calibration.block_means)
    if not calibration.applied or B == 0:
        return {m: np.zeros(G) for m in grad}
    K = len(calibration.cells)
    x = calibration.cells / calibration.grid
    b = sums.bin
    # The breakpoint "mass" of each row of sums: Σp = Σ_j mass_j · value_j (two breakpoints per inner bin).
    inner = (b >= 1) & (b <= K - 1)
    j = np.clip(b, 1, K - 1)
    lo_x, span = x[j - 1], x[j] - x[j - 1]
    upper_mass = np.where(inner, np.clip((sums.score_sum - sums.n * lo_x) / span, 0.0, sums.n), 0.0)
    lower_mass = np.where(inner, sums.n - upper_mass, 0.0)
    lower_knot = np.where(b == 0, 0, np.where(b >= K, K - 1, j - 1))
    lower_mass = np.where(inner, lower_mass, sums.n)
    upper_knot = j
    # Breakpoint -> pool weights, as a dense (K x B) matrix (K and B are hundreds).
    A = np.zeros((K, B))
    np.add.at(A, (np.arange(K), calibration.block_low), 1 - calibration.weights)
    np.add.at(A, (np.arange(K), calibration.block_high), calibration.weights)
    m_rows = calibration.block_rows.astype(float)
    q = (m_rows * calibration.block_means + 0.5) / (m_rows + 1)
    var_block = q * (1 - q) / m_rows
    out = {}
    for name, d in grad.items():
        dk = np.bincount(g * K + lower_knot, weights=d * lower_mass, minlength=G * K)
        dk += np.bincount(g * K + upper_knot, weights=d * upper_mass, minlength=G * K)
        H = dk.reshape(G, K) @ A
        out[name] = (H * H) @ var_block
    return out


def estimate_rows(calibration: ScoreCalibration, scores, predicted_positive, *,
                  level: float = BAND_LEVEL) -> pd.DataFrame:
    """CBPE estimates of one window from its rows (binned like the SQL path): one row per metric."""
    return estimate(aggregate(calibration, scores, predicted_positive), calibration, level=level).drop(columns="group")


@dataclass
class ExactEstimate:
    """CBPE estimates of one window computed row by row from calibrated probabilities (no binning)."""

    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float


def exact_estimate(probabilities, scores, predicted_positive) -> ExactEstimate:
    """NannyML's definitions on the rows themselves: the expected confusion matrix, and the expected ROC curve
    ordered by ``scores`` (rows of equal score counted as tied; their probabilities are equal too when they come
    from one calibration map). The reference for the binned estimate's error."""
    p = np.asarray(probabilities, dtype=float)
    s = np.asarray(scores, dtype=float)
    pred = np.asarray(predicted_positive, dtype=bool)
    n = len(p)
    if n == 0:
        return ExactEstimate(*(math.nan,) * 5)
    tp, fp = float(p[pred].sum()), float((1 - p[pred]).sum())
    fn, tn = float(p[~pred].sum()), float((1 - p[~pred]).sum())
    uniq, inv = np.unique(s, return_inverse=True)
    S = np.bincount(inv, weights=p, minlength=len(uniq))
    N = np.bincount(inv, minlength=len(uniq)).astype(float)
    neg = N - S
    below = np.cumsum(neg) - neg
    P, Neg = S.sum(), n - S.sum()
    auc = float((S * below + 0.5 * S * neg).sum() / (P * Neg)) if P > 1e-12 and Neg > 1e-12 else math.nan
    div = lambda a, b: a / b if b > 0 else 0.0  # noqa: E731
    return ExactEstimate(accuracy=(tp + tn) / n, precision=div(tp, tp + fp), recall=div(tp, tp + fn),
                         f1=div(2 * tp, 2 * tp + fp + fn), roc_auc=auc)


__all__ = [
    "BAND_LEVEL",
    "GRID",
    "METRICS",
    "MIN_REFERENCE_ROWS",
    "BinSums",
    "CalibrationCheck",
    "ExactEstimate",
    "aggregate",
    "calibrate",
    "calibration_check",
    "cell_bins",
    "estimate",
    "estimate_rows",
    "exact_estimate",
    "expected_calibration_error",
    "fit_calibration",
    "score_bins",
    "score_cells",
    "z_of",
]

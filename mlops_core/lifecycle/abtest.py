"""A/B test between the champion and a challenger on live, labelled traffic.

The two arms are the labelled predictions each version served (``by="version"``), or
each value of the log's ``variant`` column (``by="variant"``), in the same time range.
Outcome counts come from one SQL aggregation (``store.training_data.arm_outcomes``).

- Classification: accuracy per arm, compared with the two-sided **two-proportion z-test**
  with pooled variance, z = (p_b - p_a) / sqrt(p(1-p)(1/n_a + 1/n_b)), p the pooled rate
  (identical to Pearson's chi-square test of the 2x2 table without continuity correction,
  ``scipy.stats.chi2_contingency(..., correction=False)``, since chi2 = z^2). The 95%
  interval of the difference uses the unpooled (Wald) standard error.
- Regression: mean absolute error per arm, compared with **Welch's t-test** on the
  absolute errors (``scipy.stats.ttest_ind_from_stats(..., equal_var=False)``) from
  their count, sum and sum of squares.

Decision (defaults): the challenger takes over only when each arm has at least
``min_samples`` = 200 labelled predictions, the p-value is below ``alpha`` = 0.05, and the
challenger is the better arm. Anything else keeps the champion, with the reason.
Degenerate input (an empty arm, zero variance) is reported, never divided by.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from mlops_core.entities import ModelInfo, Promotion
from mlops_core.errors import InvalidInputError
from mlops_core.lifecycle import registry
from mlops_core.store import Store, logs
from mlops_core.store import models as mstore
from mlops_core.store import training_data as tdstore

DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SAMPLES = 200


@dataclass
class ABTestResult:
    """The comparison of two arms and the decision."""

    model: str
    champion: int | str
    challenger: int | str
    metric: str            # accuracy | mae
    n_champion: int
    n_challenger: int
    champion_value: float | None
    challenger_value: float | None
    difference: float | None      # challenger - champion
    ci_low: float | None
    ci_high: float | None
    statistic: float | None       # z (classification) or Welch's t (regression)
    p_value: float | None
    test: str
    alpha: float
    significant: bool
    challenger_wins: bool
    message: str


def two_proportion_ztest(success_a: int, n_a: int, success_b: int, n_b: int) -> tuple[float | None, float | None]:
    """(z, two-sided p) for p_b - p_a with pooled variance; (None, None) when undefined."""
    from scipy.stats import norm

    if n_a == 0 or n_b == 0:
        return None, None
    pooled = (success_a + success_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return None, None
    z = (success_b / n_b - success_a / n_a) / se
    return z, float(2 * norm.sf(abs(z)))


def welch_from_sums(n_a: int, s_a: float, ss_a: float, n_b: int, s_b: float, ss_b: float):
    """(t, two-sided p, mean_a, mean_b) of Welch's t-test from counts, sums and sums of squares."""
    from scipy.stats import ttest_ind_from_stats

    if n_a < 2 or n_b < 2:
        return None, None, (s_a / n_a if n_a else None), (s_b / n_b if n_b else None)
    m_a, m_b = s_a / n_a, s_b / n_b
    var_a = max((ss_a - n_a * m_a * m_a) / (n_a - 1), 0.0)
    var_b = max((ss_b - n_b * m_b * m_b) / (n_b - 1), 0.0)
    if var_a == 0 and var_b == 0:
        return None, None, m_a, m_b
    res = ttest_ind_from_stats(m_b, math.sqrt(var_b), n_b, m_a, math.sqrt(var_a), n_a, equal_var=False)
    return float(res.statistic), float(res.pvalue), m_a, m_b


def evaluate(store: Store, info: ModelInfo, challenger, *, champion=None, by: str = "version",
             start: datetime | None = None, end: datetime | None = None, alpha: float = DEFAULT_ALPHA,
             min_samples: int = DEFAULT_MIN_SAMPLES, shadow: bool = False) -> ABTestResult:
    """Compare ``challenger`` with ``champion`` (default: the production version) on labelled traffic.

    ``shadow``: also read the shadow rows of the log (a challenger scored in shadow mode, arm ``shadow``).

    Raises NotFoundError (version), InvalidInputError (``by``, same arm twice, no champion).
    """
    from scipy.stats import norm

    model = info.name
    if by not in ("version", "variant"):
        raise InvalidInputError(f"Arms are split by 'version' or 'variant', not {by!r}.")
    with store.connect() as con:
        if champion is None:
            if by == "variant":
                raise InvalidInputError("With by='variant' name the champion's variant too.")
            champion = mstore.current_alias(con, model)
            if champion is None:
                raise InvalidInputError(f"{model!r} has no production version to act as champion.")
        if by == "version":
            champion, challenger = int(champion), int(challenger)
            mstore.get_version(con, model, challenger)
        if champion == challenger:
            raise InvalidInputError(f"The challenger {challenger} is the champion; pick another arm.")
        log = logs.view(con, store.logs, info, start, end, kinds=("predictions", "shadow") if shadow else
                        ("predictions",))
    with store.engine() as con:
        counts = tdstore.arm_outcomes(con, log, [champion, challenger], start, end, by=by)
    rows = {r["arm"]: r for r in counts.to_dict(orient="records")}
    a = rows.get(champion, {"n": 0})
    b = rows.get(challenger, {"n": 0})
    n_a, n_b = int(a["n"]), int(b["n"])
    z975 = float(norm.ppf(1 - alpha / 2))
    if info.task == "classification":
        metric, test, higher = "accuracy", "two-proportion z-test", True
        c_a, c_b = int(a.get("correct") or 0), int(b.get("correct") or 0)
        v_a = c_a / n_a if n_a else None
        v_b = c_b / n_b if n_b else None
        stat, p = two_proportion_ztest(c_a, n_a, c_b, n_b)
        se = math.sqrt(v_a * (1 - v_a) / n_a + v_b * (1 - v_b) / n_b) if n_a and n_b else None
    else:
        metric, test, higher = "mae", "Welch's t-test on absolute errors", False
        stat, p, v_a, v_b = welch_from_sums(n_a, float(a.get("sum_abs") or 0), float(a.get("sum_abs2") or 0),
                                            n_b, float(b.get("sum_abs") or 0), float(b.get("sum_abs2") or 0))
        se = None
        if n_a >= 2 and n_b >= 2:
            var_a = max((float(a["sum_abs2"]) - n_a * v_a * v_a) / (n_a - 1), 0.0)
            var_b = max((float(b["sum_abs2"]) - n_b * v_b * v_b) / (n_b - 1), 0.0)
            se = math.sqrt(var_a / n_a + var_b / n_b)
    diff = (v_b - v_a) if v_a is not None and v_b is not None else None
    lo = hi = None
    if diff is not None and se:
        lo, hi = diff - z975 * se, diff + z975 * se
    significant = p is not None and p < alpha
    better = diff is not None and ((diff > 0) if higher else (diff < 0))
    enough = n_a >= min_samples and n_b >= min_samples
    wins = bool(enough and significant and better)
    def name(arm) -> str:
        return f"v{arm}" if by == "version" else repr(arm)

    if not enough:
        msg = (f"Not enough labelled traffic yet: {n_a} for {name(champion)} and {n_b} for {name(challenger)}; "
               f"each arm needs {min_samples}. Keep the champion for now.")
    elif p is None:
        msg = f"The {test} is undefined here (no variation in the outcomes); keep the champion."
    else:
        verdict = ("the challenger is significantly better: it may take over" if wins else
                   "the challenger is significantly worse: keep the champion" if significant else
                   "the difference is not significant: keep the champion")
        msg = (f"{metric}: {name(champion)} {v_a:.4f} (n={n_a}) vs {name(challenger)} {v_b:.4f} (n={n_b}); "
               f"difference {diff:+.4f}" + (f" [95% CI {lo:+.4f}, {hi:+.4f}]" if lo is not None else "")
               + f", p = {p:.4g} ({test}) — {verdict}.")
    return ABTestResult(model, champion, challenger, metric, n_a, n_b, v_a, v_b, diff, lo, hi, stat, p, test, alpha,
                        significant, wins, msg)


def promote_if_better(store: Store, info: ModelInfo, challenger: int, *, actor: str,
                      alpha: float = DEFAULT_ALPHA, min_samples: int = DEFAULT_MIN_SAMPLES, start=None,
                      end=None) -> tuple[ABTestResult, Promotion | None]:
    """Run the A/B test of version ``challenger`` against production and promote it when it wins.

    Returns (ABTestResult, the promotion or None). The promotion's audit reason carries the test's message.
    The challenger's artifact is checked before the promotion (``registry.promote``); raises IntegrityError
    when it fails its check (nothing changes then).
    """
    result = evaluate(store, info, challenger, alpha=alpha, min_samples=min_samples, start=start, end=end)
    if not result.challenger_wins:
        return result, None
    return result, registry.promote(store, info.name, challenger, actor=actor, reason=f"A/B test: {result.message}",
                                    action="ab_promote")


# --- fixed-horizon sample size (the guard against peeking) --------------------------------------------

#: Power of the fixed-horizon design and the smallest effects worth detecting (absolute accuracy; share of MAE).
DEFAULT_POWER = 0.8
DEFAULT_MDE_ACCURACY = 0.02
DEFAULT_MDE_MAE_SHARE = 0.05


def sample_size_proportions(p_a: float, p_b: float, *, alpha: float = DEFAULT_ALPHA,
                            power: float = DEFAULT_POWER) -> int | None:
    """Labelled predictions needed per arm for the two-sided two-proportion z-test to detect ``p_b`` against
    ``p_a`` with ``power`` at ``alpha`` (None when p_a == p_b or a rate lies outside (0, 1)).

    n = (z_{1-a/2} sqrt(2 p(1-p)) + z_{1-b} sqrt(p_a(1-p_a) + p_b(1-p_b)))^2 / (p_a - p_b)^2, p = (p_a + p_b) / 2
    (Fleiss, Levin & Paik, *Statistical Methods for Rates and Proportions*, 3rd ed., eq. 4.14, without continuity
    correction, which matches the pooled test ``evaluate`` runs), rounded up.
    """
    from scipy.stats import norm

    if not (0 < p_a < 1 and 0 < p_b < 1) or p_a == p_b:
        return None
    pooled = (p_a + p_b) / 2
    z_a, z_b = float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))
    top = z_a * math.sqrt(2 * pooled * (1 - pooled)) + z_b * math.sqrt(p_a * (1 - p_a) + p_b * (1 - p_b))
    return math.ceil(top * top / (p_a - p_b) ** 2)


def sample_size_means(sd: float, delta: float, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER) -> int | None:
    """Observations needed per arm for a two-sided two-sample test of means to detect a difference ``delta``
    between arms of standard deviation ``sd`` (normal approximation to Welch's test):
    n = 2 sd^2 (z_{1-a/2} + z_{1-b})^2 / delta^2, rounded up. None when sd or delta is not positive."""
    from scipy.stats import norm

    if not (sd > 0 and delta > 0):
        return None
    z = float(norm.ppf(1 - alpha / 2)) + float(norm.ppf(power))
    return math.ceil(2 * sd * sd * z * z / (delta * delta))


@dataclass
class Horizon:
    """The fixed sample size of an A/B test, set before it starts from the champion's recorded holdout metrics.

    ``needed``: labelled predictions per arm; ``basis``: how it was computed; None when it cannot be
    (no holdout metric recorded).
    """

    needed: int | None
    metric: str
    baseline: float | None
    effect: float | None
    alpha: float
    power: float
    basis: str


def horizon(info: ModelInfo, holdout_metrics: dict, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER,
            mde: float | None = None) -> Horizon:
    """The fixed horizon of a test against a champion whose holdout metrics are ``holdout_metrics``.

    Classification: detect an accuracy ``mde`` (default 0.02) below or above the champion's holdout accuracy
    (the larger of the two sample sizes, so either direction is covered). Regression: detect a change of
    ``mde`` (default 5%) of the champion's holdout MAE, with the standard deviation of the absolute error
    sqrt(RMSE^2 - MAE^2) from the same holdout (Var|e| = E[e^2] - E[|e|]^2).
    """
    if info.task == "classification":
        base = holdout_metrics.get("accuracy")
        effect = DEFAULT_MDE_ACCURACY if mde is None else float(mde)
        if base is None:
            return Horizon(None, "accuracy", None, effect, alpha, power, "no holdout accuracy recorded")
        sizes = [sample_size_proportions(base, min(max(base + d, 1e-6), 1 - 1e-6), alpha=alpha, power=power)
                 for d in (-effect, effect)]
        known = [n for n in sizes if n]
        return Horizon(max(known) if known else None, "accuracy", base, effect, alpha, power,
                       f"two-proportion z-test detecting ±{effect:.3f} accuracy around the champion's holdout "
                       f"accuracy {base:.3f} with power {power:.0%} at alpha {alpha:g}")
    mae, rmse = holdout_metrics.get("mae"), holdout_metrics.get("rmse")
    share = DEFAULT_MDE_MAE_SHARE if mde is None else float(mde)
    if mae is None or rmse is None:
        return Horizon(None, "mae", mae, None, alpha, power, "no holdout MAE/RMSE recorded")
    sd = math.sqrt(max(rmse * rmse - mae * mae, 0.0))
    n = sample_size_means(sd, share * mae, alpha=alpha, power=power)
    return Horizon(n, "mae", mae, share * mae, alpha, power,
                   f"test of mean absolute errors detecting a change of {share:.0%} of the champion's holdout MAE "
                   f"{mae:.3g} (sd of |error| {sd:.3g}) with power {power:.0%} at alpha {alpha:g}")


# --- per-arm metrics over time -----------------------------------------------------------------------


def arms_over_time(counts, task: str, *, z: float = 1.959963984540054):
    """Per window and arm (``store.deployments.arm_counts``): ``value`` of the A/B metric with a 95% interval.

    Classification: accuracy with the Wilson score interval (as ``monitoring.performance``); regression: MAE
    with the normal interval mean ± z·sd/√n of the absolute errors (None below 2 labelled rows).
    Columns: window_start, arm, n, n_labelled, metric, value, ci_low, ci_high.
    """
    import numpy as np
    import pandas as pd

    from mlops_core.monitoring.performance import wilson_interval

    out = counts.copy()
    cols = ["window_start", "arm", "n", "n_labelled", "metric", "value", "ci_low", "ci_high"]
    if out.empty:
        return pd.DataFrame(columns=cols)
    n = out["n_labelled"].astype(float).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        if task == "classification":
            correct = out["correct"].astype(float).to_numpy()
            out["metric"] = "accuracy"
            out["value"] = np.where(n > 0, correct / np.where(n > 0, n, 1), np.nan)
            out["ci_low"], out["ci_high"] = wilson_interval(correct, n, z)
        else:
            s, ss = out["sum_abs"].astype(float).to_numpy(), out["sum_abs2"].astype(float).to_numpy()
            mean = np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)
            var = np.where(n > 1, np.maximum(ss - n * mean * mean, 0) / np.where(n > 1, n - 1, 1), np.nan)
            half = z * np.sqrt(var / np.where(n > 0, n, 1))
            out["metric"] = "mae"
            out["value"] = mean
            out["ci_low"], out["ci_high"] = mean - half, mean + half
    return out[cols]

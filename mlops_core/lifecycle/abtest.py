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
             min_samples: int = DEFAULT_MIN_SAMPLES) -> ABTestResult:
    """Compare ``challenger`` with ``champion`` (default: the production version) on labelled traffic.

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
        log = logs.view(con, store.logs, info, start, end)
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

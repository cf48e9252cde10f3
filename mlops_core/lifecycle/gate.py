"""The promotion gate: may a freshly trained candidate replace the champion?

A gate is a list of rules, stored per model with its policy (``automation.Policy.gate``).
Each rule names a metric of the holdout metrics (see ``training``) and is one of:

- ``min``: the candidate's value must be at least ``threshold`` (``roc_auc`` >= 0.70);
- ``max``: the candidate's value must be at most ``threshold`` (``log_loss`` <= 0.6);
- ``improve``: the candidate must beat the champion, on the *same* holdout, by at least
  ``threshold`` in the metric's good direction. ``relative=False``: an absolute delta
  (0.01 = one AUC point); ``relative=True``: a fraction of the champion's value
  (0.02 = 2% better). A threshold of 0 means "not worse"; a negative one is a tolerance
  ("at most 0.005 worse").

Direction comes from the metric catalogue (``mlops_core.metrics``): larger is better for
accuracy, precision, recall, f1, roc_auc, r2; smaller is better for log_loss, mae, rmse,
mape. ``positive_rate`` has no good direction and may only be used with min/max.

Defined behaviour at the edges:

- no champion (or the champion could not be evaluated): ``improve`` rules are skipped,
  with a reason saying so; ``min``/``max`` rules still apply;
- a metric the candidate lacks (e.g. ROC AUC when the holdout has one class only): the
  rule fails, because the gate cannot vouch for it;
- a metric the champion lacks: the ``improve`` rule is skipped, with a reason;
- no rules at all: the gate passes, and its reason says that nothing was checked.

Default gate (``default_rules``): the candidate must not be worse than the champion on
the task's headline metric (``metrics.headline``: accuracy for classifiers, rmse for
regression), i.e. one ``improve`` rule with threshold 0.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlops_core import metrics
from mlops_core.data.schema import finite_number, finite_or_none, shown
from mlops_core.entities import GateCheck, GateDecision
from mlops_core.errors import InvalidInputError

RULE_KINDS = ("min", "max", "improve")


@dataclass
class GateRule:
    """One condition of the gate (see the module docstring)."""

    metric: str
    kind: str
    threshold: float
    relative: bool = False

    def __post_init__(self):
        if not isinstance(self.metric, str) or self.metric not in metrics.CATALOGUE:
            raise InvalidInputError(
                f"Unknown gate metric {shown(self.metric)}; choose one of: {', '.join(sorted(metrics.CATALOGUE))}.",
                metric=self.metric,
            )
        if not isinstance(self.kind, str) or self.kind not in RULE_KINDS:
            raise InvalidInputError(f"Unknown gate rule kind {shown(self.kind)}; choose one of: "
                                    f"{', '.join(RULE_KINDS)}.", kind=self.kind)
        if self.kind == "improve" and metrics.get(self.metric).direction is None:
            raise InvalidInputError(f"{self.metric!r} has no better direction; use it with min or max, not improve.",
                                    metric=self.metric)
        self.threshold = finite_number(self.threshold, f"Gate threshold for {self.metric}")
        self.relative = bool(self.relative)

    def describe(self) -> str:
        """The rule as a short sentence fragment, e.g. ``roc_auc >= 0.7``."""
        if self.kind == "min":
            return f"{self.metric} >= {self.threshold:g}"
        if self.kind == "max":
            return f"{self.metric} <= {self.threshold:g}"
        unit = f"{self.threshold:.1%}" if self.relative else f"{self.threshold:g}"
        return f"{self.metric} better than the champion by >= {unit}"

    @classmethod
    def parse(cls, text: str) -> GateRule:
        """Parse ``roc_auc>=0.7``, ``log_loss<=0.6``, ``roc_auc+=0.01`` (absolute) or ``roc_auc+=2%`` (relative).

        Raises InvalidInputError naming the accepted forms.
        """
        t = text.replace(" ", "")
        for op, kind in ((">=", "min"), ("<=", "max"), ("+=", "improve")):
            if op in t:
                metric, value = t.split(op, 1)
                relative = value.endswith("%")
                try:
                    number = float(value.rstrip("%"))
                except ValueError:
                    break
                return cls(metric, kind, number / 100 if relative else number, relative)
        raise InvalidInputError(
            f"Cannot read gate rule {shown(text)}. Write METRIC>=VALUE, METRIC<=VALUE, METRIC+=DELTA or METRIC+=PCT%, "
            "e.g. roc_auc>=0.7 or roc_auc+=0.005.", rule=text,
        )


def default_rules(task: str) -> list[GateRule]:
    """The gate used when a model's policy names none: not worse than the champion on the headline metric."""
    return [GateRule(metrics.headline(task), "improve", 0.0)]


def rules_from_dicts(items) -> list[GateRule]:
    """Build rules from stored dicts (``{"metric", "kind", "threshold", "relative"}``); raise InvalidInputError."""
    if items is not None and not isinstance(items, (list, tuple)):
        raise InvalidInputError(f"Gate rules come as a list, e.g. ['roc_auc>=0.7']; got {shown(items)}.")
    out = []
    for it in items or []:
        if isinstance(it, GateRule):
            out.append(it)
        elif isinstance(it, str):
            out.append(GateRule.parse(it))
        elif isinstance(it, dict):
            try:
                out.append(GateRule(it["metric"], it["kind"], it["threshold"], it.get("relative", False)))
            except KeyError as exc:
                raise InvalidInputError(f"Gate rule {shown(it)} lacks {exc}; give metric, kind and threshold.") from exc
        else:
            raise InvalidInputError(f"Cannot read gate rule {shown(it)}.")
    return out


def evaluate_gate(candidate: dict, champion: dict | None, rules: list[GateRule], *,
                  champion_version: int | None = None) -> GateDecision:
    """Apply ``rules`` to the candidate's (and champion's) holdout metrics; return the decision.

    ``champion`` is None when there is no champion to compare with. Pure function.
    """
    if not rules:
        return GateDecision(True, ["No gate rules are set, so nothing was checked and the candidate passes."], [],
                            champion_version)
    checks: list[GateCheck] = []
    for rule in rules:
        c = finite_or_none(candidate.get(rule.metric))
        ch = finite_or_none(champion.get(rule.metric)) if champion else None
        desc = rule.describe()
        if rule.kind in ("min", "max"):
            if c is None:
                checks.append(GateCheck(desc, "failed", None, ch, f"{rule.metric} could not be computed for the "
                                        f"candidate, so the rule {desc} cannot be confirmed."))
                continue
            ok = c >= rule.threshold if rule.kind == "min" else c <= rule.threshold
            word = "at least" if rule.kind == "min" else "at most"
            verdict = "meets" if ok else "misses"
            checks.append(GateCheck(desc, "passed" if ok else "failed", c, ch,
                                    f"Candidate {rule.metric} {c:.4f} {verdict} the required {word} {rule.threshold:g}."))
            continue
        # improve
        if champion is None:
            checks.append(GateCheck(desc, "skipped", c, None,
                                    f"No champion to compare with, so '{desc}' was skipped."))
            continue
        if c is None:
            checks.append(GateCheck(desc, "failed", None, ch, f"{rule.metric} could not be computed for the candidate, "
                                    f"so it cannot be shown to beat the champion."))
            continue
        if ch is None:
            checks.append(GateCheck(desc, "skipped", c, None, f"The champion has no {rule.metric} on this holdout, "
                                    f"so '{desc}' was skipped."))
            continue
        gain = metrics.get(rule.metric).gain(c, ch)
        if rule.relative:
            needed = abs(ch) * rule.threshold
            need_text = f"{rule.threshold:.1%} of the champion's {ch:.4f} ({needed:+.4f})"
        else:
            needed = rule.threshold
            need_text = f"{needed:+g}"
        ok = gain >= needed - 1e-12
        better = "better" if gain > 0 else ("worse" if gain < 0 else "equal")
        checks.append(GateCheck(
            desc, "passed" if ok else "failed", c, ch,
            f"Candidate {rule.metric} {c:.4f} vs champion {ch:.4f}: {better} by {abs(gain):.4f}; "
            f"required improvement {need_text} — {'met' if ok else 'not met'}.",
        ))
    passed = all(ch.outcome != "failed" for ch in checks)
    return GateDecision(passed, [ch.reason for ch in checks], checks, champion_version)

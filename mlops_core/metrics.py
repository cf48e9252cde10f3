"""The one catalogue of model metrics: name, task, good direction, label, unit, and the headline.

Every consumer asks the catalogue instead of keeping its own list: the promotion gate
(which way is "better"), performance over time (which columns a task has), alerts and
policies (which way is "worse"), and the dashboard (labels, units, axis direction).

Headline metric (what the dashboard leads with, the default alert rule and the default
promotion gate watch): **accuracy** for classifiers (Wilson interval, readable without
a threshold discussion), **rmse** for regression (in the target's unit).

Units: ``share`` metrics are fractions in [0, 1] (shown as such); ``target`` metrics are
in the unit of the model's target (e.g. minutes), given at registration with ``--unit``;
the rest have no unit.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlops_core.errors import InvalidInputError

HIGHER, LOWER = "higher", "lower"


@dataclass(frozen=True)
class Metric:
    """One metric: what it is called, for which task, which way is better and how to show it."""

    name: str
    label: str
    task: str  # classification | regression
    direction: str | None  # higher | lower | None (no good direction, e.g. positive_rate)
    unit: str | None = None  # share | target | None
    binary_only: bool = False  # defined for binary classifiers only (needs the positive class's score)
    needs_labels: bool = True
    description: str = ""

    @property
    def lower_is_better(self) -> bool:
        return self.direction == LOWER

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b`` (False for a metric without direction)."""
        if self.direction == HIGHER:
            return a > b
        if self.direction == LOWER:
            return a < b
        return False

    def gain(self, candidate: float, champion: float) -> float:
        """How much better ``candidate`` is than ``champion`` in the good direction (negative: worse)."""
        return candidate - champion if self.direction != LOWER else champion - candidate

    def worse_than(self, value: float, threshold: float) -> bool:
        """Whether ``value`` is on the bad side of ``threshold`` (below it, or above it for errors)."""
        return value > threshold if self.direction == LOWER else value < threshold

    def unit_label(self, target_unit: str | None = None) -> str:
        """The unit as words for an axis or a column header ('' when the metric has none)."""
        if self.unit == "target":
            return target_unit or ""
        return ""

    def display(self, target_unit: str | None = None) -> str:
        """``label`` with its unit, e.g. ``RMSE (minutes)``."""
        unit = self.unit_label(target_unit)
        return f"{self.label} ({unit})" if unit else self.label


CATALOGUE: dict[str, Metric] = {m.name: m for m in (
    Metric("accuracy", "Accuracy", "classification", HIGHER, "share",
           description="share of labelled predictions that equal the label"),
    Metric("precision", "Precision", "classification", HIGHER, "share",
           description="positive class (binary) or macro average: correct among predicted"),
    Metric("recall", "Recall", "classification", HIGHER, "share",
           description="positive class (binary) or macro average: found among actual"),
    Metric("f1", "F1", "classification", HIGHER, "share", description="harmonic mean of precision and recall"),
    Metric("roc_auc", "ROC AUC", "classification", HIGHER, "share", binary_only=True,
           description="area under the ROC curve of the positive-class score"),
    Metric("log_loss", "Log loss", "classification", LOWER, binary_only=True,
           description="mean -ln p(true class), p clipped as sklearn does"),
    Metric("positive_rate", "Positive rate", "classification", None, "share", binary_only=True, needs_labels=False,
           description="share of all predictions that are the positive class"),
    Metric("mae", "MAE", "regression", LOWER, "target", description="mean absolute error"),
    Metric("rmse", "RMSE", "regression", LOWER, "target", description="root mean squared error"),
    Metric("r2", "R²", "regression", HIGHER, description="coefficient of determination"),
    Metric("mape", "MAPE", "regression", LOWER, "share", description="mean absolute percentage error (non-zero labels)"),
)}

#: Columns of a classification / regression performance frame, in display order.
CLASSIFICATION = [m.name for m in CATALOGUE.values() if m.task == "classification"]
REGRESSION = [m.name for m in CATALOGUE.values() if m.task == "regression"]


def get(name: str) -> Metric:
    """The catalogue entry of ``name``; raise InvalidInputError listing the known metrics."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise InvalidInputError(f"Unknown metric {name!r}; choose one of: {', '.join(CATALOGUE)}.",
                                metric=name, valid=list(CATALOGUE)) from None


def for_task(task: str, binary: bool = True) -> list[Metric]:
    """The metrics of ``task`` in display order (without the binary-only ones for a multiclass model)."""
    return [m for m in CATALOGUE.values() if m.task == task and (binary or not m.binary_only)]


def names(task: str, binary: bool = True) -> list[str]:
    return [m.name for m in for_task(task, binary)]


def headline(task: str) -> str:
    """The headline metric of a task: accuracy (classification) or rmse (regression)."""
    return "rmse" if task == "regression" else "accuracy"


def directed() -> list[str]:
    """Metrics with a good direction (those a gate's ``improve`` rule or a policy trigger may use)."""
    return [m.name for m in CATALOGUE.values() if m.direction is not None]


def label(name: str, target_unit: str | None = None) -> str:
    """The display label of a metric with its unit; unknown names come back readable (``hour_of_day`` ->
    ``hour of day``)."""
    m = CATALOGUE.get(name)
    if m is None:
        return name.replace("_", " ")
    return m.display(target_unit)

"""A verdict per model: healthy, watch or act, the one or two reasons that decide it, and the next step.

The verdict reads the production version's labelled predictions, the stored drift of the features,
the open incidents and the registry, always on **full days** up to the log's clock (``as_of``, the
newest logged prediction; ``monitoring.windows``): the current day is partial and never decides.
Every figure comes with the rows behind it; a figure from fewer than ``performance.MIN_LABELLED_ROWS``
labelled predictions decides nothing.

Rules (the level is the highest any rule gives; the reasons shown are those of that level, in this order):

1. **Performance** of the headline metric (accuracy, or RMSE), pooled over the labelled predictions of
   the production version in the last ``PERIOD_DAYS`` (7) full days, with its 95% interval
   (``performance``), against the alert threshold of the model's metric rule (default: the training
   holdout's value less 0.05, or times 1.25 for RMSE: ``alerts.default_metric_threshold``):

   - **act** when the whole interval is on the wrong side of the threshold;
   - **watch** when the value is on the wrong side but the interval reaches the threshold, or when it is
     worse than in the ``PERIOD_DAYS`` days before by more than ``DROP_TOLERANCE`` (0.03 for metrics in
     [0, 1], 10% of the earlier value for errors) with the two intervals apart;
   - **watch** when the last days hold predictions but fewer labelled ones than the minimum (no judgement
     is possible yet).
2. **Drift** of the features (the stored daily results, ``drift``), **watch** when
   - the share of drifted features in the latest full day is above the drift threshold (the model's
     ``drift_share_above`` rule, default ``alerts.DEFAULT_DRIFT_SHARE``, 0.30, the automation policy's
     default trigger too), or
   - a feature drifted on each of the last ``PERSISTENT_DAYS`` (3) full days (a persistent shift rather
     than one noisy day).
   Drift alone never makes **act**: a shift of the inputs matters when the performance suffers.
3. **Incidents**: an open critical ``no_traffic`` incident is **act**; other open incidents that no rule
   above covers (validation anomalies, unusual runs, the policy) are **watch**.
4. **Traffic**: no prediction for longer than the ``no_traffic`` rule allows (default 24 hours) is
   **watch** (evaluated against the wall clock, so only for a verdict of now).

Next step: for **act**, a retrain that is running (wait for it), else the candidate that passed its gate
(**Promote**), else a production version promoted within the last ``2 * PERIOD_DAYS`` days with an
earlier one to go back to, when the performance decides (**Roll back**), else **Retrain**. For **watch**,
the open incidents to **Acknowledge** (someone looks into it), else a passing candidate to promote, else
nothing but looking (the page that shows the reason). **Healthy** needs no step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from mlops_core import metrics
from mlops_core.clock import utcnow
from mlops_core.entities import PSEUDO_FEATURES, ModelInfo
from mlops_core.monitoring import alerts as alertsmod
from mlops_core.monitoring import drift as driftmod
from mlops_core.monitoring import incidents as incidentsmod
from mlops_core.monitoring import performance as perf
from mlops_core.store import Store, logs
from mlops_core.store import alerts as astore

LEVELS = ("healthy", "watch", "act")
#: Days of the period whose performance is judged (and of the period before it, for the change).
PERIOD_DAYS = 7
#: Full days in a row a feature must have drifted for the drift rule.
PERSISTENT_DAYS = 3
#: A drop that counts against the previous period: absolute for metrics in [0, 1], relative for errors.
DROP_TOLERANCE = 0.03
ERROR_DROP_TOLERANCE = 0.10
#: Incident kinds the performance and drift rules cover (their incidents are not reasons of their own).
COVERED_KINDS = ("metric_below", "metric_above", "drift_share_above", "feature_drift")


@dataclass
class Situation:
    """What the next step depends on besides the data: the registry and the jobs (gathered by the public API)."""

    production_version: int | None
    holdout: dict = field(default_factory=dict)  # the production version's holdout metrics
    production_since: datetime | None = None
    passing_candidate: int | None = None  # a candidate newer than production that passed its gate
    rollback_target: int | None = None
    retrain_running: bool = False


@dataclass
class Reason:
    """One finding: its level, what it is about (performance, drift, incidents, traffic, labels), in words."""

    level: str
    topic: str
    text: str


@dataclass
class NextStep:
    """What to do: ``action`` is retrain, promote, rollback, acknowledge, wait or none; ``label`` names the button."""

    action: str
    label: str
    text: str
    version: int | None = None
    alert_ids: list[int] = field(default_factory=list)


@dataclass
class Figures:
    """The headline figures behind the verdict (None where there is nothing to show)."""

    metric: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    labelled: int = 0
    previous: float | None = None
    previous_labelled: int = 0
    threshold: float | None = None
    lower_is_better: bool = False
    period_start: datetime | None = None
    period_end: datetime | None = None
    predictions: int = 0
    previous_predictions: int = 0
    label_coverage: float | None = None
    drift_share: float | None = None
    drift_share_previous: float | None = None
    drift_day: datetime | None = None
    drifted_features: list[str] = field(default_factory=list)
    open_incidents: int = 0

    @property
    def delta(self) -> float | None:
        """Change against the previous period, when both periods have enough labels."""
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous


@dataclass
class Verdict:
    """The verdict on one model (see the module docstring)."""

    model: str
    level: str  # healthy | watch | act | unknown (no production version or no traffic)
    reasons: list[Reason]
    next_step: NextStep
    as_of: datetime | None
    production_version: int | None
    figures: Figures

    @property
    def deciding(self) -> list[Reason]:
        """The one or two reasons of the verdict's level (what decides it)."""
        return [r for r in self.reasons if r.level == self.level][:2]

    def line(self) -> str:
        """One line: the level, the deciding reasons and the next step."""
        why = "; ".join(r.text for r in self.deciding) or "no finding"
        step = "" if self.next_step.action == "none" else f" Next step: {self.next_step.text}"
        return f"{self.level}: {why}.{step}"


def _day(t: datetime) -> datetime:
    return datetime(t.year, t.month, t.day)


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    text = f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return f"{text} {unit}".rstrip()


def _when(t) -> str:
    return f"{pd.Timestamp(t):%-d %b}"


def _rule_threshold(rules: pd.DataFrame, kinds: tuple[str, ...], target: str | None = None) -> float | None:
    if rules.empty:
        return None
    pick = rules[rules["enabled"] & rules["kind"].isin(kinds)]
    if target is not None:
        pick = pick[pick["target"].isna() | (pick["target"] == target)]
    thr = pick["threshold"].dropna()
    return float(thr.iloc[0]) if len(thr) else None


def _period(con, log, start: datetime, end: datetime, version: int | None) -> pd.Series | None:
    frame = perf.pooled(con, log, start=start, end=end, versions=[version] if version is not None else None)
    if frame.empty:
        return None
    if version is None:
        return frame.sort_values("n").iloc[-1]
    part = frame[frame["version"] == version]
    return part.iloc[0] if len(part) else None


def _performance(fig: Figures, info: ModelInfo, current: pd.Series | None, previous: pd.Series | None, *,
                 threshold: float | None, holdout: float | None) -> list[Reason]:
    m = metrics.get(fig.metric)
    unit = m.unit_label(info.unit)
    days = f"the last {PERIOD_DAYS} full days"
    if current is None or int(current["n"]) == 0:
        return []
    fig.predictions = int(current["n"])
    fig.labelled = int(current["n_labelled"])
    fig.label_coverage = fig.labelled / fig.predictions if fig.predictions else None
    if previous is not None:
        fig.previous_predictions = int(previous["n"])
        fig.previous_labelled = int(previous["n_labelled"])
        if fig.previous_labelled >= perf.MIN_LABELLED_ROWS and pd.notna(previous[fig.metric]):
            fig.previous = float(previous[fig.metric])
    if fig.labelled < perf.MIN_LABELLED_ROWS or pd.isna(current[fig.metric]):
        return [Reason("watch", "labels", f"only {fig.labelled} of {fig.predictions:,} predictions of {days} are "
                                          f"labelled (at least {perf.MIN_LABELLED_ROWS} are needed to judge "
                                          f"{m.label})")]
    fig.value = float(current[fig.metric])
    lo, hi = current.get(f"{fig.metric}_low"), current.get(f"{fig.metric}_high")
    fig.low = float(lo) if pd.notna(lo) else None
    fig.high = float(hi) if pd.notna(hi) else None
    ci = f" (95% CI {_fmt(fig.low)}–{_fmt(fig.high)})" if fig.low is not None and fig.high is not None else ""
    base = f"{m.label} {_fmt(fig.value, unit)}{ci} over {days}"
    was = f", {_fmt(fig.previous, unit)} the {PERIOD_DAYS} days before" if fig.previous is not None else ""
    out: list[Reason] = []
    if threshold is not None:
        where = "above" if m.lower_is_better else "below"
        ref = f" (training holdout {_fmt(holdout, unit)})" if holdout is not None else ""
        # the end of the interval nearest to good: the whole interval is bad when that end is
        best = fig.low if m.lower_is_better else fig.high
        worse_all = m.worse_than(best if best is not None else fig.value, threshold)
        if worse_all:
            out.append(Reason("act", "performance", f"{base}, {where} the alert threshold {_fmt(threshold, unit)}"
                                                    f"{ref}{was}"))
        elif m.worse_than(fig.value, threshold):
            out.append(Reason("watch", "performance", f"{base}, {where} the alert threshold {_fmt(threshold, unit)}"
                                                      f"{ref}, though its interval reaches it{was}"))
    if not out and fig.previous is not None and previous is not None:
        drop = -m.gain(fig.value, fig.previous)
        tolerance = ERROR_DROP_TOLERANCE * abs(fig.previous) if m.lower_is_better else DROP_TOLERANCE
        p_lo, p_hi = previous.get(f"{fig.metric}_low"), previous.get(f"{fig.metric}_high")
        apart = (pd.notna(p_lo) and pd.notna(p_hi) and fig.low is not None and fig.high is not None
                 and (fig.high < p_lo or fig.low > p_hi))
        if drop > tolerance and apart:
            word = "up" if m.lower_is_better else "down"
            out.append(Reason("watch", "performance", f"{m.label} {_fmt(fig.value, unit)}{ci} over {days}, {word} "
                                                      f"from {_fmt(fig.previous, unit)} the {PERIOD_DAYS} days before"))
    if not out:
        where = "under" if m.lower_is_better else "above"
        thr = f", {where} the alert threshold {_fmt(threshold, unit)}" if threshold is not None else ""
        out.append(Reason("healthy", "performance", f"{base}{thr}"))
    return out


def _drift(fig: Figures, stored: pd.DataFrame, day_end: datetime, threshold: float) -> list[Reason]:
    if stored is None or stored.empty:
        return []
    feats = stored[~stored["feature"].isin(PSEUDO_FEATURES) & stored["statistic"].notna()]
    feats = feats[pd.to_datetime(feats["window_start"]) + timedelta(days=1) <= day_end]
    if feats.empty:
        return []
    per = feats.groupby(["window_start", "feature"])["drifted"].any().unstack("feature").fillna(False).astype(bool)
    per = per.sort_index()
    latest = per.index.max()
    row = per.loc[latest]
    share = float(row.mean())
    fig.drift_share, fig.drift_day = share, pd.Timestamp(latest).to_pydatetime()
    fig.drifted_features = sorted(row[row].index)
    earlier = per[per.index <= latest - timedelta(days=PERIOD_DAYS)]
    fig.drift_share_previous = float(earlier.iloc[-1].mean()) if len(earlier) else None
    out = []
    if share > threshold:
        names = ", ".join(fig.drifted_features[:4]) + (" and more" if len(fig.drifted_features) > 4 else "")
        out.append(Reason("watch", "drift", f"{int(row.sum())} of {len(row)} features drifted on {_when(latest)} "
                                            f"({share:.0%}, above {threshold:.0%}): {names}"))
    days = per.index[per.index > latest - timedelta(days=PERSISTENT_DAYS)]
    if len(days) == PERSISTENT_DAYS:
        steady = per.loc[days].all()
        names = sorted(steady[steady].index)
        if names and not out:
            since = {}
            for f in names:
                run = per[f][::-1]
                first_false = run[~run]
                since[f] = first_false.index[0] + timedelta(days=1) if len(first_false) else per.index.min()
            start = min(since.values())
            listed = " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]
            out.append(Reason("watch", "drift", f"{listed} drifted on each of the last {PERSISTENT_DAYS} full days "
                                                f"(since {_when(start)})"))
    return out


def _incidents(open_incidents: pd.DataFrame) -> list[Reason]:
    if open_incidents is None or open_incidents.empty:
        return []
    own = open_incidents[~open_incidents["kind"].isin(COVERED_KINDS)]
    out = []
    silent = own[(own["kind"] == "no_traffic") & (own["severity"] == "critical")]
    if len(silent):
        out.append(Reason("act", "incidents", str(silent["message"].iloc[0]).rstrip(".")))
    rest = own[own["kind"] != "no_traffic"]
    if len(rest):
        titles = list(dict.fromkeys(str(t) for t in rest["title"].fillna(rest["kind"])))
        more = f" and {len(titles) - 2} more" if len(titles) > 2 else ""
        out.append(Reason("watch", "incidents", f"{len(rest)} open incident(s) to look at: "
                                                f"{', '.join(titles[:2])}{more}"))
    return out


def _next_step(level: str, reasons: list[Reason], situation: Situation, open_ids: list[int],
               as_of: datetime) -> NextStep:
    deciding = [r for r in reasons if r.level == level]
    if level == "act":
        if situation.retrain_running:
            return NextStep("wait", "Retrain running", "a retrain is running: wait for its result and its gate.")
        if situation.passing_candidate is not None:
            v = situation.passing_candidate
            return NextStep("promote", f"Promote v{v}", f"promote v{v}, the candidate that passed its gate.", v)
        recent = situation.production_since is not None and \
            as_of - situation.production_since <= timedelta(days=2 * PERIOD_DAYS)
        if recent and situation.rollback_target is not None and any(r.topic == "performance" for r in deciding):
            v = situation.rollback_target
            return NextStep("rollback", f"Roll back to v{v}",
                            f"roll back to v{v}: the production version changed in the last {2 * PERIOD_DAYS} days "
                            "and its performance fell.", v)
        if any(r.topic in ("performance", "drift") for r in deciding):
            return NextStep("retrain", "Retrain", "retrain on fresh labelled data and let the gate judge the "
                                                  "candidate against production.")
        if open_ids:
            return NextStep("acknowledge", f"Acknowledge {len(open_ids)} incident(s)",
                            "acknowledge the open incidents and find out why.", alert_ids=open_ids)
        return NextStep("none", "", "")
    if level == "watch":
        if open_ids:
            return NextStep("acknowledge", f"Acknowledge {len(open_ids)} incident(s)",
                            "acknowledge the open incidents (someone is looking into them).", alert_ids=open_ids)
        if situation.passing_candidate is not None:
            v = situation.passing_candidate
            return NextStep("promote", f"Promote v{v}", f"consider promoting v{v}, the candidate that passed its "
                                                        "gate.", v)
        topic = deciding[0].topic if deciding else "performance"
        page = {"drift": "the Drift page", "labels": "the Performance page"}.get(topic, "the Performance page")
        return NextStep("none", "", f"keep watching on {page}.")
    return NextStep("none", "", "")


def evaluate(store: Store, info: ModelInfo, situation: Situation, *, as_of: datetime | None = None,
             now: datetime | None = None) -> Verdict:
    """The verdict on ``info`` (see the module docstring) at ``as_of`` (default: the newest logged prediction,
    from the log as it was then: later predictions and labels are left out). ``now`` is the wall clock the
    traffic rule compares with (default: the current time; not applied when ``as_of`` is given).
    """
    metric = metrics.headline(info.task)
    fig = Figures(metric, lower_is_better=metrics.get(metric).lower_is_better)
    explicit = as_of is not None
    with store.connect() as con:
        facts = logs.facts(con, info.name)
        as_of = as_of or facts.last_ts
        rules = astore.list_rules(con, info.name)
        open_incidents = incidentsmod.list_incidents(con, info.name, open_only=True)
        if as_of is not None:
            end = _day(as_of)
            log = logs.view(con, store.logs, info, end - timedelta(days=2 * PERIOD_DAYS), end).until(as_of)
    if situation.production_version is None or as_of is None:
        why = "the model has no production version" if situation.production_version is None else \
            "no prediction is logged yet"
        return Verdict(info.name, "unknown", [Reason("unknown", "traffic", why)], NextStep("none", "", ""), as_of,
                       situation.production_version, fig)
    end = _day(as_of)
    start = end - timedelta(days=PERIOD_DAYS)
    fig.period_start, fig.period_end = start, end
    with store.engine() as econ:
        current = _period(econ, log, start, end, situation.production_version)
        previous = _period(econ, log, start - timedelta(days=PERIOD_DAYS), start, situation.production_version)
    holdout = situation.holdout.get(metric)
    holdout = float(holdout) if isinstance(holdout, (int, float)) else None
    threshold = _rule_threshold(rules, ("metric_below", "metric_above"), metric)
    if threshold is None:
        threshold = alertsmod.default_metric_threshold(info.task, situation.holdout)
    fig.threshold = threshold
    reasons = _performance(fig, info, current, previous, threshold=threshold, holdout=holdout)

    drift_threshold = _rule_threshold(rules, ("drift_share_above",)) or alertsmod.DEFAULT_DRIFT_SHARE
    stored = driftmod.stored(store, info, window="day", start=start - timedelta(days=PERIOD_DAYS), end=end)
    reasons += _drift(fig, stored, end, drift_threshold)

    if explicit:
        open_incidents = open_incidents[pd.to_datetime(open_incidents["first_seen"]) <= pd.Timestamp(as_of)] \
            if len(open_incidents) else open_incidents
    fig.open_incidents = len(open_incidents)
    reasons += _incidents(open_incidents)
    if not explicit and facts.last_ts is not None:
        limit = _rule_threshold(rules, ("no_traffic",)) or 24.0
        silent = ((now or utcnow()) - facts.last_ts).total_seconds() / 3600
        if silent > limit:
            reasons.append(Reason("watch", "traffic", f"no prediction logged for {silent:,.0f} hours (since "
                                                      f"{facts.last_ts:%Y-%m-%d %H:%M} UTC; limit {limit:g} hours)"))
    level = max((r.level for r in reasons), key=LEVELS.index, default="healthy")
    order = {"performance": 0, "labels": 1, "drift": 2, "incidents": 3, "traffic": 4}
    reasons.sort(key=lambda r: (-LEVELS.index(r.level), order.get(r.topic, 9)))
    open_ids = [int(i) for i in open_incidents["id"]] if len(open_incidents) else []
    step = _next_step(level, reasons, situation, open_ids, as_of)
    return Verdict(info.name, level, reasons, step, as_of, situation.production_version, fig)


__all__ = [
    "LEVELS",
    "PERIOD_DAYS",
    "PERSISTENT_DAYS",
    "Figures",
    "NextStep",
    "Reason",
    "Situation",
    "Verdict",
    "evaluate",
]

"""The verdict per model on the demo's timeline: healthy before the drift, watch while it grows, act after the
concept shift; the next step; the CLI's status line.

The small demo (40 days, 300 predictions a day) scales the 90-day timeline: covariate drift from day 22,
the concept shift on day 31, v2 promoted on day 13. Each verdict is taken ``as_of`` a moment of that
timeline, on the log as it was then (later predictions and labels left out). The assertions are about
levels at clear points, not figures, so a slightly different demo keeps them true.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from _dashboard_support import DEMO_END, copy_db, shared_demo

from mlops_core import ControlRoom
from mlops_core.cli import main
from mlops_core.monitoring import verdict

DAYS = 40
START = datetime(DEMO_END.year, DEMO_END.month, DEMO_END.day) - timedelta(days=DAYS - 1)


def day(default_day: int) -> int:
    """A day of the default 90-day timeline on the small demo's (as the demo builder scales it)."""
    return round(default_day * DAYS / 90)


def at(d: float) -> datetime:
    return START + timedelta(days=d, hours=12)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return copy_db(shared_demo(), tmp_path_factory.mktemp("verdict"))


@pytest.mark.parametrize("model", ["credit_default", "delivery_time"])
def test_healthy_before_the_drift_and_act_after_the_concept_shift(demo, model):
    m = ControlRoom(demo).model(model)
    # well after v1's start and before the drift; delivery_time also after v2's promotion (credit_default's v2 starts
    # with few labels and its manual policy asks for a retrain: watch, rightly)
    for d in (day(20), day(45)) if model == "delivery_time" else (day(20),):
        v = m.verdict(as_of=at(d))
        assert v.level == "healthy", (d, v.line())
        assert v.next_step.action == "none" and v.deciding[0].topic == "performance"
    for d in range(day(20), day(70)):  # nothing is wrong enough to act before the concept shift
        assert m.verdict(as_of=at(d)).level != "act", d
    end = m.verdict()
    assert end.level == "act", end.line()
    assert end.deciding[0].topic == "performance"
    assert "below the alert threshold" in end.line() or "above the alert threshold" in end.line()
    assert end.next_step.action == "retrain" and end.next_step.label == "Retrain"
    f = end.figures
    assert f.value is not None and f.low <= f.value <= f.high and f.labelled >= 50
    assert f.period_end == datetime(DEMO_END.year, DEMO_END.month, DEMO_END.day)  # full days only: today is partial


def test_watch_while_the_credit_features_drift(demo):
    credit = ControlRoom(demo).model("credit_default")
    levels = {d: credit.verdict(as_of=at(d)) for d in range(day(56), day(72) + 1)}
    watching = [v for v in levels.values() if v.level == "watch"]
    assert watching, {d: v.line() for d, v in levels.items()}
    assert any(r.topic == "drift" for v in watching for r in v.deciding)
    assert all("drifted" in r.text for v in watching for r in v.deciding if r.topic == "drift")


def test_a_partial_day_never_decides(demo):
    """Early or late in a day, the verdict judges the same full days before it: the predictions of the day in
    progress are not part of it (only labels of the earlier days that arrived meanwhile change its figures)."""
    credit = ControlRoom(demo).model("credit_default")
    morning = credit.verdict(as_of=START + timedelta(days=day(80), hours=1))
    evening = credit.verdict(as_of=START + timedelta(days=day(80), hours=23))
    assert morning.figures.period_end == evening.figures.period_end == START + timedelta(days=day(80))
    assert morning.figures.predictions == evening.figures.predictions
    assert morning.figures.labelled <= evening.figures.labelled


def test_next_step_prefers_a_passing_candidate_then_a_rollback_then_a_retrain(demo):
    room = ControlRoom(demo)
    info = room.model("credit_default").info
    base = dict(production_version=2, holdout={"accuracy": 0.81})
    promote = verdict.evaluate(room.store, info, verdict.Situation(**base, passing_candidate=4))
    assert promote.level == "act" and (promote.next_step.action, promote.next_step.version) == ("promote", 4)
    assert promote.next_step.label == "Promote v4"
    recent = verdict.evaluate(room.store, info, verdict.Situation(
        **base, production_since=DEMO_END - timedelta(days=3), rollback_target=1))
    assert (recent.next_step.action, recent.next_step.version) == ("rollback", 1)
    old = verdict.evaluate(room.store, info, verdict.Situation(
        **base, production_since=DEMO_END - timedelta(days=60), rollback_target=1))
    assert old.next_step.action == "retrain"
    running = verdict.evaluate(room.store, info, verdict.Situation(**base, retrain_running=True))
    assert running.next_step.action == "wait"


def test_no_production_version_or_traffic_is_unknown(registered_credit_db):
    v = ControlRoom(registered_credit_db).model("credit").verdict()
    assert v.level == "unknown" and "no prediction" in v.line()


def test_status_prints_the_verdict_its_next_command_and_times_with_their_zone(demo, capsys):
    assert main(["status", "--model", "delivery_time", "--verdict", "--db", str(demo)]) == 0
    out = capsys.readouterr().out
    assert "verdict: act: RMSE" in out and "minutes" in out
    assert "next step: mlops retrain --model delivery_time" in out
    assert "last prediction: 2026-03-31" in out and "UTC" in out.split("last prediction:")[1]

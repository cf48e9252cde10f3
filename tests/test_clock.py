"""The clock: simulated time for backfills, demos and tests (``mlops_core.simulated_time``)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from conftest import make_training_frame

from mlops_core import ControlRoom, Identity, SimulatedClock, set_clock, simulated_time, utcnow

START = datetime(2025, 3, 1, 0, 15)


def test_a_simulated_clock_runs_on_from_the_moment_it_was_set():
    clock = SimulatedClock(START)
    first = clock()
    time.sleep(0.05)
    later = clock.now
    assert START <= first < later < START + timedelta(seconds=5)
    assert later - first >= timedelta(seconds=0.04)  # real time passes
    assert clock.set(datetime(2025, 3, 2, 9, 0)) == datetime(2025, 3, 2, 9, 0)
    assert datetime(2025, 3, 2, 9, 0) <= clock() < datetime(2025, 3, 2, 9, 0, 5)
    clock.set(START)  # backwards is allowed (a test may rewind)
    assert clock() < datetime(2025, 3, 1, 0, 16)
    aware = datetime(2025, 3, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert clock.set(aware) == datetime(2025, 3, 1, 0, 0)  # naive UTC, like every stored time
    with pytest.raises(TypeError, match="datetime"):
        clock.set("2025-03-01")


def test_simulated_time_dates_what_the_core_writes_and_restores_the_clock(tmp_path):
    db = tmp_path / "mlops.duckdb"
    with simulated_time(START) as clock:
        assert START <= utcnow() < START + timedelta(minutes=1)
        ControlRoom(db, identity=Identity("maria", "admin")).register("credit", "classification", "default",
                                                                      make_training_frame())
        clock.set(START + timedelta(days=3))
        ControlRoom(db, identity=Identity("maria", "admin")).model("credit").set_policy(mode="automated")
    assert utcnow() > datetime(2026, 1, 1)  # the real clock again
    room = ControlRoom(db)
    version = room.model("credit").version(1)
    assert START <= version.created_at < START + timedelta(minutes=1)
    audit = room.audit("credit").sort_values("occurred_at")
    assert audit["action"].tolist() == ["register", "policy_change"]
    assert START + timedelta(days=3) <= audit["occurred_at"].iloc[1] < START + timedelta(days=3, minutes=1)
    run = room.runs("credit").iloc[0]
    assert run["started_at"] <= run["finished_at"] < START + timedelta(minutes=1) and run["duration_s"] > 0


def test_simulated_time_restores_the_previous_clock_after_an_error():
    frozen = datetime(2024, 1, 1)
    set_clock(lambda: frozen)
    with pytest.raises(RuntimeError, match="boom"), simulated_time(START):
        assert utcnow() >= START
        raise RuntimeError("boom")
    assert utcnow() == frozen

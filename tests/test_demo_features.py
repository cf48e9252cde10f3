"""The demo's feature view on a small built demo: rows, the stale episode, the binding, point-in-time values."""
from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from _dashboard_support import DEMO_END, copy_db, shared_demo
from conftest import log_sql

from mlops_core import ControlRoom, Identity
from mlops_core.demo.features import VIEW, add_applicant_history, applicant_ids


@pytest.fixture
def demo_with_features(tmp_path):
    db = copy_db(shared_demo(), tmp_path / "copy")
    apps = log_sql(db, "SELECT request_id, ts, credit_score, num_open_accounts, utilization FROM log_credit_default",
                   frame=True)
    room = ControlRoom(db, identity=Identity("demo", "admin"))
    summary = add_applicant_history(room, apps, end=DEMO_END)
    return db, room, apps, summary


def test_the_demo_view_is_used_by_credit_default_and_stale_on_first_start(demo_with_features):
    _db, room, apps, summary = demo_with_features
    assert summary.bound_model == "credit_default"
    assert summary.bound_features == ["credit_score", "num_open_accounts", "utilization"]
    assert summary.applicants == len(apps) and summary.batches >= 5
    fresh = room.features.freshness([VIEW], now=DEMO_END)[0]
    assert fresh.rows == summary.rows and fresh.used_by == ["credit_default"]
    assert fresh.stale and fresh.newest_event_ts <= DEMO_END - timedelta(days=3)
    assert fresh.materialized_at is not None and fresh.online_rows > 0
    open_alerts = room.model("credit_default").alerts(open_only=True)
    stale = open_alerts[open_alerts["kind"] == "stale_feature_view"]
    assert len(stale) == 1 and VIEW in stale["message"].iloc[0]
    days = room.features.rows_per_day(VIEW)
    assert pd.Timestamp(days["day"].max()) <= pd.Timestamp(DEMO_END - timedelta(days=3))


def test_the_point_in_time_join_gives_back_what_the_model_saw_and_never_the_later_update(demo_with_features):
    _db, room, apps, summary = demo_with_features
    sample = apps.sample(400, random_state=0).reset_index(drop=True)
    before_gap = sample[sample["ts"] < summary.stale_since].reset_index(drop=True)
    entities = pd.DataFrame({"applicant_id": applicant_ids(before_gap["request_id"]), "ts": before_gap["ts"]})
    got = room.features.training_set(entities, [f"{VIEW}:credit_score", f"{VIEW}:num_open_accounts",
                                                f"{VIEW}:utilization"], event_times=True)
    # the bureau pull before each application: the values it logged (a pull inside the gap never arrived)
    pulled = got[f"{VIEW}__event_ts"].notna().to_numpy()
    assert pulled.mean() > 0.9
    assert (got.loc[pulled, "credit_score"].to_numpy() == before_gap.loc[pulled, "credit_score"].to_numpy()).all()
    assert (got.loc[pulled, "utilization"].to_numpy() == before_gap.loc[pulled, "utilization"].to_numpy()).all()
    assert (got.loc[pulled, f"{VIEW}__event_ts"].to_numpy() <= before_gap.loc[pulled, "ts"].to_numpy()).all()

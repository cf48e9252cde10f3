"""Point-in-time joins against a brute-force reference, on random data (hypothesis).

The reference is the contract written out in plain Python: for each entity row (key k, time t) and each view,
the row of the view with key k, the greatest event time <= t and, among rows with that event time, the last
ingested (later batch, or later row of the same batch); its values when t - event time < TTL, else None.
The random data have many ties in event time, rows ingested late (older event times in later batches),
entities the views never saw, values that expire, NULL values, several views of two entities joined at once,
and an entity row exactly at an event time. The online store is checked against the same reference at the
moment it was materialized.
"""
from __future__ import annotations

import math
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_core import ControlRoom, Identity

T0 = datetime(2026, 3, 1)
USERS = ["a", "b", "c", "d"]
SHOPS = [1, 2, 3]
#: view -> (key column, features, ttl in hours or None)
VIEWS = {
    "profile": ("user_id", ["score", "tier"], None),
    "activity": ("user_id", ["clicks"], 6),
    "shop_stats": ("shop_id", ["orders"], 30),
}


def hours(h: int) -> datetime:
    return T0 + timedelta(hours=h)


def make_room(folder: Path) -> ControlRoom:
    room = ControlRoom(folder / "fs.duckdb", identity=Identity("tester", "admin"))
    fs = room.features
    fs.define_entity("user", {"user_id": "string"})
    fs.define_entity("shop", {"shop_id": "int"})
    fs.define_view("profile", "user", "ts", {"score": "int", "tier": "string"})
    fs.define_view("activity", "user", "ts", {"clicks": "float"}, ttl="6h")
    fs.define_view("shop_stats", "shop", "ts", {"orders": "int"}, ttl="30h")
    return room


def feature_row(view: str):
    key, features, _ = VIEWS[view]
    keys = st.sampled_from(SHOPS) if key == "shop_id" else st.sampled_from(USERS[:3])  # "d" never has rows
    values = {
        "score": st.one_of(st.none(), st.integers(300, 850)),
        "tier": st.one_of(st.none(), st.sampled_from(["gold", "silver", "x"])),
        "clicks": st.one_of(st.none(), st.floats(0, 100, allow_nan=False).map(lambda v: round(v, 3))),
        "orders": st.integers(0, 50),
    }
    return st.fixed_dictionaries({key: keys, "ts": st.integers(0, 48).map(hours),
                                  **{f: values[f] for f in features}})


def batches(view: str):
    return st.lists(st.lists(feature_row(view), min_size=1, max_size=12), min_size=1, max_size=3)


entity_rows = st.lists(st.fixed_dictionaries({
    "user_id": st.sampled_from(USERS), "shop_id": st.sampled_from([*SHOPS, 9]),
    "event_timestamp": st.integers(0, 60).map(hours), "label": st.integers(0, 1)}), min_size=1, max_size=25)


def reference_value(batches_of_view: list[list[dict]], key_col: str, key, t: datetime, *, ttl_h: int | None,
                    feature: str):
    """The contract, by brute force."""
    best, best_rank = None, None
    for b, rows in enumerate(batches_of_view):
        for i, row in enumerate(rows):
            if row[key_col] != key or row["ts"] > t:
                continue
            rank = (row["ts"], b, i)
            if best_rank is None or rank > best_rank:
                best, best_rank = row, rank
    if best is None or (ttl_h is not None and t - best["ts"] >= timedelta(hours=ttl_h)):
        return None
    return best[feature]


def plain(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if v is pd.NA or v is pd.NaT:
        return None
    if hasattr(v, "item"):
        v = v.item()
    return v


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(profile=batches("profile"), activity=batches("activity"), shops=batches("shop_stats"), entities=entity_rows)
def test_training_set_equals_the_brute_force_reference(profile, activity, shops, entities):
    folder = Path(tempfile.mkdtemp(prefix="pit-"))
    try:
        room = make_room(folder)
        data = {"profile": profile, "activity": activity, "shop_stats": shops}
        for view, view_batches in data.items():
            for rows in view_batches:
                room.features.ingest(view, pd.DataFrame(rows))
        ent = pd.DataFrame(entities)
        # an entity row exactly at an event time: a value stamped at t is known at t
        ent.loc[len(ent)] = {"user_id": profile[0][0]["user_id"], "shop_id": 1,
                             "event_timestamp": profile[0][0]["ts"], "label": 1}
        refs = [f"{v}:{f}" for v, (_, feats, _) in VIEWS.items() for f in feats]
        got = room.features.training_set(ent, refs)
        assert list(got.columns) == [*ent.columns, "score", "tier", "clicks", "orders"]
        assert got["label"].tolist() == ent["label"].tolist()  # order and passthrough kept
        for i, row in ent.iterrows():
            for view, (key_col, feats, ttl) in VIEWS.items():
                for f in feats:
                    want = reference_value(data[view], key_col, row[key_col], row["event_timestamp"], ttl_h=ttl, feature=f)
                    assert plain(got.at[i, f]) == want, (view, f, dict(row))

        # the online store at the moment it was materialized holds the same values
        at = hours(40)
        room.features.materialize(as_of=at)
        keys = [{"user_id": u} for u in USERS]
        online = room.features.get_online_features(["profile:score", "activity:clicks"], keys, now=at)
        for k, o in zip(keys, online, strict=True):
            for feature, view in (("score", "profile"), ("clicks", "activity")):
                key_col, _, ttl = VIEWS[view]
                assert o.value(feature) == reference_value(data[view], key_col, k["user_id"], at, ttl_h=ttl, feature=feature), \
                    (k, feature)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_value_from_the_future_is_never_used(tmp_path):
    room = make_room(tmp_path)
    room.features.ingest("profile", pd.DataFrame({"user_id": ["a", "a"], "ts": [hours(0), hours(10)],
                                                  "score": [500, 800], "tier": ["old", "new"]}))
    ent = pd.DataFrame({"user_id": ["a"] * 4, "event_timestamp": [hours(0) - timedelta(microseconds=1), hours(0),
                                                                  hours(10) - timedelta(microseconds=1), hours(10)]})
    got = room.features.training_set(ent, ["profile:score"])
    assert [plain(v) for v in got["score"]] == [None, 500, 500, 800]


def test_ttl_expiry_is_exclusive_at_the_ttl(tmp_path):
    room = make_room(tmp_path)
    room.features.ingest("activity", pd.DataFrame({"user_id": ["a"], "ts": [hours(0)], "clicks": [3.0]}))
    ent = pd.DataFrame({"user_id": ["a"] * 3,
                        "event_timestamp": [hours(5), hours(6) - timedelta(microseconds=1), hours(6)]})
    got = room.features.training_set(ent, "activity:clicks")
    assert [plain(v) for v in got["clicks"]] == [3.0, 3.0, None]


def test_a_late_row_is_used_and_an_equal_event_time_is_replaced_by_the_later_batch(tmp_path):
    room = make_room(tmp_path)
    fs = room.features
    fs.ingest("profile", pd.DataFrame({"user_id": ["a", "a"], "ts": [hours(0), hours(20)], "score": [1, 3],
                                       "tier": ["x", "z"]}))
    late = fs.ingest("profile", pd.DataFrame({"user_id": ["a"], "ts": [hours(10)], "score": [2], "tier": ["y"]}))
    assert late.superseded == 0
    fix = fs.ingest("profile", pd.DataFrame({"user_id": ["a"], "ts": [hours(10)], "score": [22], "tier": ["yy"]}))
    assert fix.superseded == 1 and any("replace" in n for n in fix.notes)
    ent = pd.DataFrame({"user_id": ["a", "a", "a"], "event_timestamp": [hours(5), hours(15), hours(25)]})
    got = fs.training_set(ent, ["profile:score", "profile:tier"])
    assert got["score"].tolist() == [1, 22, 3] and got["tier"].tolist() == ["x", "yy", "z"]
    # the superseded row no longer counts, in the listing as in the join
    assert fs.freshness(["profile"])[0].rows == 3


def test_within_one_batch_the_last_of_equal_rows_wins(tmp_path):
    room = make_room(tmp_path)
    r = room.features.ingest("profile", pd.DataFrame({"user_id": ["a", "a", "a"], "ts": [hours(1)] * 3,
                                                      "score": [1, 2, 3], "tier": ["p", "q", "r"]}))
    assert r.rows == 3 and r.rows_written == 1
    got = room.features.training_set(pd.DataFrame({"user_id": ["a"], "timestamp": [hours(2)]}), "profile:*")
    assert got[["score", "tier"]].iloc[0].tolist() == [3, "r"]


def test_full_names_and_event_times(tmp_path):
    room = make_room(tmp_path)
    room.features.ingest("profile", pd.DataFrame({"user_id": ["a"], "ts": [hours(1)], "score": [7], "tier": ["g"]}))
    got = room.features.training_set(pd.DataFrame({"user_id": ["a", "b"], "ts": [hours(2), hours(2)]}),
                                     ["profile:score"], full_names=True, event_times=True)
    assert list(got.columns) == ["user_id", "ts", "profile__score", "profile__event_ts"]
    assert plain(got["profile__score"][0]) == 7 and got["profile__event_ts"][0] == pd.Timestamp(hours(1))
    assert pd.isna(got["profile__event_ts"][1])


@pytest.mark.parametrize("entities,refs,message", [
    (pd.DataFrame({"user_id": ["a"]}), ["profile:score"], "need a time column"),
    (pd.DataFrame({"ts": [T0]}), ["profile:score"], "lack the key column"),
    (pd.DataFrame({"user_id": ["a"], "ts": ["not a time"]}), ["profile:score"], "not timestamps"),
    (pd.DataFrame({"user_id": ["a"], "ts": [None]}, dtype=object), ["profile:score"], "no time"),
    (pd.DataFrame({"user_id": ["a"], "ts": [T0], "score": [1]}), ["profile:score"], "would appear twice"),
    (pd.DataFrame({"user_id": ["a"], "ts": [T0]}), ["profile:nope"], "has no feature 'nope'"),
    (pd.DataFrame({"user_id": ["a"], "ts": [T0]}), ["nothing:score"], "Unknown feature view 'nothing'"),
    (pd.DataFrame({"user_id": ["a"], "ts": [T0]}), ["profile"], "view:feature"),
])
def test_bad_requests_say_what_is_wrong(tmp_path, entities, refs, message):
    from mlops_core.errors import MlopsError

    room = make_room(tmp_path)
    with pytest.raises(MlopsError, match=message) as exc:
        room.features.training_set(entities, refs)
    assert exc.value.exit_code == 2

"""The A/B page, the deployment form of the Versions page, and the serving parts of Overview and Performance."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from _dashboard_support import copy_db, shared_demo
from test_pages import assert_clean, open_page, texts

from mlops_core import ControlRoom, Identity
from mlops_core.store import Store, utcnow
from mlops_core.store import models as mstore
from mlops_core.store import predictions as pstore

MODEL = "credit_default"
ADMIN = Identity("tester", "admin")


@pytest.fixture
def demo_db(tmp_path, monkeypatch):
    path = copy_db(shared_demo(), tmp_path / "copy")
    monkeypatch.setenv("MLOPS_DB", str(path))
    return path


def log_arms(db, n: int, accuracy: dict, start) -> None:
    """``n`` labelled predictions per arm (champion/challenger) with the given accuracies, from ``start`` on."""
    from mlops_core.demo.simulate import credit_features

    store = Store(db)
    with store.connect() as con:
        info = mstore.get_model(con, MODEL)
        prod = mstore.current_alias(con, MODEL)
    from mlops_core.lifecycle import deployments

    with store.connect() as con:
        challenger = deployments.current(con, MODEL).challenger
    frames = []
    rng = np.random.default_rng(0)
    for arm, version in (("champion", prod), ("challenger", challenger)):
        f = credit_features(rng, n)
        for c in f.columns:
            if isinstance(f[c].dtype, pd.CategoricalDtype):
                f[c] = f[c].astype(str)
        f["request_id"] = [f"ab-{arm}-{i}" for i in range(n)]
        f["version"] = version
        f["variant"] = arm
        f["ts"] = [start + timedelta(seconds=i) for i in range(n)]
        f["prediction"] = np.where(rng.permutation(np.arange(n) < round(accuracy[arm] * n)), "1", "0")
        f["score"] = 0.5
        frames.append(f)
    log = pd.concat(frames, ignore_index=True)
    pstore.append(store, info, "predictions", log)
    pstore.append(store, info, "labels", pd.DataFrame({"request_id": log["request_id"], "label": "1",
                                                       "label_ts": log["ts"]}))


def test_ab_page_without_a_deployment_explains_how_to_start_one(demo_db):
    at = open_page("pages/ab_test.py")
    assert_clean(at)
    assert "No A/B test runs" in texts(at) and "Never configured" in texts(at)


def test_versions_form_sets_a_split_as_the_signed_in_operator_and_overview_shows_it(demo_db):
    at = open_page("pages/versions.py")
    at.radio(key="deploy_mode").set_value("split")
    at.selectbox(key="deploy_challenger").set_value(1)
    at.slider(key="deploy_weight").set_value(0.3)
    at.text_input(key="deploy_reason").input("try v1 again")
    at.button(key="FormSubmitter:deployment_form-Apply").click().run()
    assert_clean(at)
    config = ControlRoom(demo_db).model(MODEL).deployment()
    assert (config.mode, config.challenger, config.weight, config.actor) == ("split", 1, 0.3, "pat")
    assert any("now serving split" in s.value for s in at.success)
    assert "split: v1 answers 30% of the requests, v2 the rest" in texts(at)
    at.switch_page("pages/overview.py").run()
    assert_clean(at)
    assert "Serving: split: v1 answers 30% of the requests" in texts(at)


def test_ab_page_waits_for_the_horizon_then_promotes_the_winner(demo_db):
    room = ControlRoom(demo_db, identity=ADMIN)
    m = room.model(MODEL)
    m.set_deployment("split", challenger=1, weight=0.5, reason="A/B")
    at = open_page("pages/ab_test.py")
    assert_clean(at)
    body = texts(at)
    assert "Keep collecting" in body and "Per arm over time" in body
    assert at.button(key="ab_promote").disabled
    needed = m.ab_status().horizon.needed
    log_arms(demo_db, needed + 50, {"champion": 0.80, "challenger": 0.86}, utcnow() + timedelta(seconds=1))
    st.cache_data.clear()  # the page's reads are cached for a minute; the traffic above is newer
    at = open_page("pages/ab_test.py")
    assert_clean(at)
    assert "significantly better" in texts(at)
    button = at.button(key="ab_promote")
    assert not button.disabled and button.label == "Promote the winner (v1)"
    at.text_input(key="ab_reason").input("v1 won")
    at.button(key="ab_promote").click().run()
    assert_clean(at)
    assert ControlRoom(demo_db).model(MODEL).production_version() == 1
    event = ControlRoom(demo_db).audit(MODEL)
    promoted = event[event["action"] == "ab_promote"].iloc[0]
    assert (promoted["actor"], promoted["to_version"], promoted["reason"]) == ("pat", 1, "v1 won")
    assert ControlRoom(demo_db).model(MODEL).serving().config.mode == "champion"
    assert any("won the A/B test" in s.value for s in at.success)


def test_a_viewer_sees_how_requests_are_served_but_no_form_or_promote_button(demo_db):
    ControlRoom(demo_db, identity=ADMIN).model(MODEL).set_deployment("split", challenger=1, weight=0.5, reason="A/B")
    at = open_page("pages/versions.py", identity=Identity("vic", "viewer"))
    assert_clean(at)
    assert "split: v1 answers 50% of the requests" in texts(at)
    assert not [r for r in at.radio if r.key == "deploy_mode"]
    assert "changing how requests are served needs the operator role" in texts(at)
    at.switch_page("pages/ab_test.py").run()
    assert_clean(at)
    assert not [b for b in at.button if b.key == "ab_promote"]
    assert "promoting its winner needs the operator role" in texts(at)


def test_performance_splits_by_arm(demo_db):
    at = open_page("pages/performance.py")
    assert_clean(at)
    assert "Split by arm (A/B)" in [e.label for e in at.expander]
    # the demo's A/B period logged champion and challenger arms
    assert any(c.key == "perf_arms" for c in at.get("plotly_chart")) or "No predictions with an arm" in texts(at)

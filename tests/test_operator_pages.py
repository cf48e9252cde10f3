"""What an operator sees, page by page, under AppTest on a copy of the small demo: the verdict and its next step,
honest figures on thin and partial windows, human labels, and the defects a first look at the dashboard found.

Each test names the finding of the newcomer walk it covers (1: no verdict, 2: thin and partial windows,
4: Versions, 6: data quality, 7: Retrain, 8: contradictions, 9: raw internals on screen). Charts that only
a browser draws (band wedges, overlapping markers) are checked in tests/test_browser.py.
"""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from _dashboard_support import copy_db, shared_demo
from test_pages import MODEL, PAGES, assert_clean, open_page, texts

from mlops_core import ControlRoom, Identity

VIEWER = Identity("vic", "viewer")


@pytest.fixture
def demo_db(tmp_path, monkeypatch):
    """A private copy of the small demo database, named by MLOPS_DB."""
    path = copy_db(shared_demo(), tmp_path / "copy")
    monkeypatch.setenv("MLOPS_DB", str(path))
    return path


def _tables(at) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe]


# --- 1: a verdict and a next step -------------------------------------------------------------------------------

def test_overview_gives_each_model_a_verdict_with_reasons_and_a_next_step(demo_db):
    at = open_page()
    assert_clean(at)
    badges = [m.value for m in at.markdown if "-badge[" in m.value]
    assert len([b for b in badges if re.search(r"(Healthy|Watch|Act)\]", b)]) == 2
    body = texts(at)
    assert "below the alert threshold" in body and "above the alert threshold" in body  # accuracy and RMSE
    buttons = {b.key: b.label for b in at.button}
    assert buttons.get(f"next_overview_{MODEL}") == "Retrain"
    assert "alert" not in [b for b in badges if "Act" not in b]  # no bare "alert" badge any more


@pytest.mark.parametrize("page", [p for p in PAGES if p != "pages/overview.py"])
def test_every_other_page_starts_with_the_verdict_of_the_selected_model(demo_db, page):
    at = open_page(page)
    assert_clean(at)
    first = [m.value for m in at.markdown][:2]
    assert any(re.search(r"(Healthy|Watch|Act)\]", m) for m in first), first
    assert any(b.key == f"next_banner_{MODEL}" for b in at.button)


def test_viewers_read_the_next_step_without_a_button(demo_db):
    at = open_page(identity=VIEWER)
    assert_clean(at)
    assert not [b for b in at.button if (b.key or "").startswith("next_")]
    assert "Next step for an operator: retrain" in texts(at)


def test_the_retrain_next_step_starts_a_retrain_and_opens_the_retrain_page(demo_db):
    at = open_page()
    at.button(key=f"next_overview_{MODEL}").click().run()
    assert_clean(at)
    active = ControlRoom(demo_db).model(MODEL).active_retrain()
    try:
        assert active is not None and active.actor == "pat"
        assert at.title[0].value == "Retrain"
        assert "Retrain of credit\\_default started" in texts(at) or "Retrain of credit_default started" in texts(at)
    finally:
        if active is not None:
            ControlRoom(demo_db).wait(active.id, timeout=300)


# --- 2: thin and partial windows --------------------------------------------------------------------------------

def test_overview_figures_come_from_full_days_and_a_zero_change_has_no_arrow(demo_db):
    at = open_page()
    assert_clean(at)
    for m in at.metric:
        assert m.delta not in ("+0.000", "-0.000", "+0 pts", "-0 pts", "+0%", "-0%"), (m.label, m.delta)
    v = ControlRoom(demo_db).model(MODEL).verdict()
    assert v.figures.period_end.date() == v.as_of.date()  # up to the start of the partial day
    shown = {m.label: m.value for m in at.metric}
    assert shown["Accuracy"] == f"{v.figures.value:.3f}"


def test_the_default_confusion_window_is_full_and_has_enough_labels(demo_db):
    at = open_page("pages/performance.py")
    assert_clean(at)
    pick = next(s for s in at.selectbox if (s.key or "").startswith("perf_window_"))
    assert "in progress" not in pick.format_func(pick.value)
    labelled = int(re.search(r"\(([\d,]+) labelled\)", pick.format_func(pick.value)).group(1).replace(",", ""))
    assert labelled >= 50
    body = texts(at)
    assert "hollow one has fewer" in body


def test_drift_ranks_the_latest_full_window_not_the_day_in_progress(demo_db):
    at = open_page("pages/drift.py")
    assert_clean(at)
    body = texts(at)
    assert "Latest full day: 30 Mar" in body and "day in progress (31 Mar)" in body
    ranking = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert "30 Mar (latest full day)" in ranking["layout"]["title"]["text"]


# --- 3: estimated performance -----------------------------------------------------------------------------------

def test_performance_draws_the_estimate_for_a_classifier_and_says_why_not_for_regression(demo_db):
    at = open_page("pages/performance.py")
    assert_clean(at)
    assert "Dashed: the value estimated from the model's scores" in texts(at)
    names = [t.get("name") for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert "v2 estimated (labels missing)" in names
    at.selectbox(key="model").set_value("delivery_time").run()
    assert_clean(at)
    assert "No estimate is available while labels are missing" in texts(at)


# --- 4: Versions ------------------------------------------------------------------------------------------------

def test_versions_never_offers_a_rejected_version_first_nor_as_the_primary_action(demo_db):
    at = open_page("pages/versions.py")
    assert_clean(at)
    box = at.selectbox(key=f"promote_version_{MODEL}")
    statuses = {v.version: v.status for v in ControlRoom(demo_db).model(MODEL).versions()}
    assert statuses[box.value] != "rejected"
    assert statuses[box.options_values[-1] if hasattr(box, "options_values") else int(box.options[-1][1:].split()[0])] \
        == "rejected"
    rejected = next(v for v, s in statuses.items() if s == "rejected")
    box.set_value(rejected).run()
    assert_clean(at)
    promote = at.button(key="promote")
    assert promote.proto.type != "primary"
    assert "overrides the gate" in texts(at)


def test_compare_defaults_to_versions_with_traffic_and_says_which_served_none(demo_db):
    at = open_page("pages/versions.py")
    assert_clean(at)
    chosen = at.multiselect(key=f"compare_versions_{MODEL}").value
    traffic = ControlRoom(demo_db).model(MODEL).performance(window="day").groupby("version")["n"].sum()
    assert all(traffic.get(v, 0) > 0 for v in chosen)
    at.multiselect(key=f"compare_versions_{MODEL}").set_value([2, 3]).run()
    assert_clean(at)
    assert "v3 served no traffic" in texts(at)
    bars = json.loads(at.get("plotly_chart")[1].proto.spec)["data"][0]  # recorded metrics, each with its direction
    assert "Accuracy ↑" in bars["x"] and "Log loss ↓" in bars["x"] and "Positive rate" in bars["x"]


# --- 6: data quality --------------------------------------------------------------------------------------------

def test_anomalies_of_an_old_batch_are_dated_by_its_data(demo_db, tmp_path):
    frame = ControlRoom(demo_db).model(MODEL)
    logged = frame.performance(window="day")
    day = pd.Timestamp(logged["window_start"].iloc[len(logged) // 2]).to_pydatetime()
    from conftest import log_sql

    rows = log_sql(demo_db, f"SELECT * FROM log_{MODEL} ORDER BY ts LIMIT 200", frame=True)
    batch = rows.drop(columns=["batch_id"]).rename(columns={"ts": "timestamp"})
    batch["request_id"] = "dq-" + batch["request_id"]
    batch["timestamp"] = day + (batch["timestamp"] - batch["timestamp"].min())
    batch.loc[:20, "income"] = 99_999.0
    path = tmp_path / "old.csv"
    batch.to_csv(path, index=False)
    report = ControlRoom(demo_db).model(MODEL).validate(path)
    assert report.window_start.date() == day.date()
    ControlRoom(demo_db).model(MODEL).validate(path)  # again: replaced, not counted twice
    at = open_page("pages/data_quality.py")
    assert_clean(at)
    table = next(t for t in _tables(at) if "Data from" in t.columns and "Feature" in t.columns)
    mine = table[table["Checked in"] == str(path)]
    assert len(mine) == len(report.anomalies) and set(mine["Data from"].str[:10]) == {f"{day:%Y-%m-%d}"}


# --- 7: Retrain -------------------------------------------------------------------------------------------------

def test_retrain_result_names_its_champion_and_shows_no_empty_values(demo_db):
    at = open_page("pages/retrain.py")
    assert_clean(at)
    table = next(t for t in _tables(at) if "Metric" in t.columns)
    champion = [c for c in table.columns if c.startswith("Champion")]
    assert champion == ["Champion v2"]
    assert not table.isin(["None", "nan", ""]).any().any()
    body = texts(at)
    assert "( to )" not in body and "vNone" not in body


# --- 8: contradictions ------------------------------------------------------------------------------------------

def test_automation_shows_what_automation_did_and_one_drift_threshold(demo_db):
    at = open_page("pages/automation.py")
    assert_clean(at)
    body = texts(at)
    assert "No policy stored yet" not in body and "has not been evaluated yet" not in body
    done = next(t for t in _tables(at) if "What and why" in t.columns)
    assert "register version" in set(done["Action"]) and "v3" in set(done["Version"])
    policy = ControlRoom(demo_db).model(MODEL).policy()
    rules = ControlRoom(demo_db).model(MODEL).alert_rules()
    share = float(rules.loc[rules["kind"] == "drift_share_above", "threshold"].iloc[0])
    assert share == pytest.approx(policy.drift_share_above)  # the alert and the trigger agree


def test_the_performance_page_opens_on_the_headline_metric_with_its_unit(demo_db):
    at = open_page()
    at.selectbox(key="model").set_value("delivery_time").run()
    assert "RMSE (minutes)" in [m.label for m in at.metric]
    at.switch_page("pages/performance.py").run()
    assert_clean(at)
    assert at.selectbox(key="perf_metric_delivery_time").value == "rmse"
    assert "RMSE (minutes)" in json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["yaxis"]["title"]["text"]


# --- 9: raw internals on screen ---------------------------------------------------------------------------------

@pytest.mark.parametrize("page", list(PAGES))
def test_no_page_shows_machine_names_empty_values_or_raw_json(demo_db, page):
    at = open_page(page)
    assert_clean(at)
    for table in _tables(at):
        for col in table.columns:
            assert "_" not in str(col), (page, col)
        cells = table.astype(str)
        for bad in ("None", "nan", "NaT"):
            assert not (cells == bad).any().any(), (page, bad, table.columns.tolist())
        assert not cells.apply(lambda c: c.str.startswith("{")).any().any(), (page, "raw JSON")
        assert not cells.apply(lambda c: c.str.contains("__prediction__", regex=False)).any().any(), page
        for col in table.columns:
            assert not cells[col].str.fullmatch(r"[0-9a-f]{12}").any(), (page, col, "hex id")
    body = texts(at)
    assert "__prediction__" not in body and "vNone" not in body


# --- 6 (auto-refresh) -------------------------------------------------------------------------------------------

def test_auto_refresh_is_opt_in_on_the_monitoring_pages_and_kept_across_pages(demo_db):
    at = open_page()
    box = at.selectbox(key="auto_refresh")
    assert box.value == 0 and box.format_func(box.value) == "Off"  # off unless chosen
    box.set_value(300).run()
    assert_clean(at)
    at.switch_page("pages/versions.py").run()
    assert not [s for s in at.selectbox if s.key == "auto_refresh"]  # an action page does not refresh
    at.switch_page("pages/drift.py").run()
    assert_clean(at)
    assert at.selectbox(key="auto_refresh").value == 300

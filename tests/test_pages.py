"""Every dashboard page under Streamlit's AppTest, on a copy of a small demo database.

AppTest starts every run in Streamlit's old multipage mode (there is a ``pages/`` folder beside
``dashboard.py``), so a page other than the Overview reaches its frame through ``frame.enter()``;
the browser tests cover the router's own path.

Flows that change state (promote, roll back, retrain) check the database afterwards
through ``mlops_core.registry``.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _dashboard_support import ROOT, copy_db, shared_demo
from streamlit.testing.v1 import AppTest

from mlops_core import ControlRoom, Identity
from ui.widgets import md

APP = str(ROOT / "dashboard.py")
PAGES = {
    "pages/overview.py": "MLOps control room",
    "pages/performance.py": "Performance",
    "pages/drift.py": "Drift",
    "pages/data_quality.py": "Data quality",
    "pages/features.py": "Features",
    "pages/versions.py": "Versions",
    "pages/ab_test.py": "A/B test",
    "pages/retrain.py": "Retrain",
    "pages/runs.py": "Runs & audit",
    "pages/automation.py": "Automation",
}
#: Per page: text it must show and how many plotly charts at least.
KEY_CONTENT = {
    "pages/overview.py": (["Open incidents", "Latest actions", "delivery_time"], 0),
    "pages/performance.py": (["Errors in one window"], 2),
    "pages/drift.py": (["One feature: reference against current", "Prediction and target drift"], 4),
    "pages/data_quality.py": (["Schema", "Training–serving skew"], 2),
    "pages/features.py": ([], 0),
    "pages/versions.py": (["Change production", "Serving", "Compare versions", "Hyperparameters", "Lineage"], 2),
    "pages/ab_test.py": (["No A/B test runs", "Deployment history"], 0),
    "pages/retrain.py": (["Settings", "Latest retrain"], 0),
    "pages/runs.py": ([], 1),
    "pages/automation.py": (["Policy", "What automation did", "Incidents", "Notifications"], 0),
}
MODEL = "credit_default"


@pytest.fixture
def demo_db(tmp_path, monkeypatch):
    """A private copy of the small demo database, named by MLOPS_DB."""
    path = copy_db(shared_demo(), tmp_path / "copy")
    monkeypatch.setenv("MLOPS_DB", str(path))
    return path


#: Who the page tests are signed in as (the login itself is tested in tests/test_login.py and in a browser).
OPERATOR = Identity("pat", "operator")


def open_page(page: str | None = None, *, identity: Identity | None = OPERATOR) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if identity is not None:
        at.session_state["signed_in"] = identity
    at.run()
    if page and page != "pages/overview.py":
        at.switch_page(page).run()
    return at


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("title", "subheader", "markdown", "caption", "info", "success", "warning", "error"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert not errors, errors


@pytest.mark.parametrize("page,title", PAGES.items())
def test_every_page_renders_on_the_demo(demo_db, page, title):
    at = open_page(page)
    assert_clean(at)
    assert at.title[0].value == title
    words, charts = KEY_CONTENT[page]
    body = texts(at)
    for word in words:
        assert word in body, (page, word)
    assert len(at.get("plotly_chart")) >= charts, page
    # the shared sidebar: model, date range and window, with their keys
    assert at.selectbox(key="model").value == MODEL
    assert at.radio(key="window").value == "day"
    assert len(at.date_input(key="date_range").value) == 2


def _first_call(script: Path) -> str:
    """The dotted name of the first top-level call in a page script (imports, constants and functions skipped)."""
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and not calls:
            continue
        return ast.unparse(calls[0].func) if calls else ast.unparse(node)
    return ""


def test_every_page_script_is_in_the_navigation_and_opens_the_frame_first():
    """A page that draws before ``frame.enter()`` would be drawn twice, or without its sidebar, on a first request."""
    from ui import frame

    scripts = {p.stem: p for p in (ROOT / "pages").glob("*.py")}
    registered = [name for pages in frame.SECTIONS.values() for name, _title, _icon in pages]
    assert sorted(registered) == sorted(scripts) == sorted(Path(p).stem for p in PAGES)
    for name, script in scripts.items():
        assert _first_call(script) == "frame.enter", name


def test_overview_lists_models_with_production_version(demo_db):
    at = open_page()
    assert_clean(at)
    body = texts(at)
    for model in ControlRoom(demo_db).models():
        prod = ControlRoom(demo_db).model(model.name).production_version()
        assert model.name in body
        assert f"production v{prod}" in body
    assert len(at.dataframe) >= 1  # latest actions


def test_versions_page_shows_comparison_and_actions(demo_db):
    at = open_page("pages/versions.py")
    assert_clean(at)
    labels = [b.label for b in at.button]
    assert "Promote" in labels and "Roll back" in labels
    assert at.toggle(key="versions_diff_only").value is True
    assert "Lineage" in texts(at)


def test_runs_page_offers_csv_downloads(demo_db):
    at = open_page("pages/runs.py")
    assert_clean(at)
    assert len(at.get("download_button")) == 2
    assert len(at.dataframe) >= 1


def test_runs_page_marks_runs_unlike_their_history(demo_db):
    from datetime import timedelta

    from _dashboard_support import DEMO_END

    from mlops_core.monitoring import run_anomalies, run_checks
    from mlops_core.store import Store
    from mlops_core.store import runs as runstore

    store = Store(demo_db)
    start = DEMO_END - timedelta(days=3)
    for i in range(run_anomalies.MIN_HISTORY + 1):
        at = start + timedelta(hours=i)
        with store.transaction() as con:
            run_id = runstore.insert_run(con, model=MODEL, kind="ingest", trigger="api", actor="loader",
                                         status="running", params={"kind": "labels"}, created_at=at)
            duration = 8.0 + i % 3 if i < run_anomalies.MIN_HISTORY else 80.0
            runstore.update_run(con, run_id, status="succeeded", progress=1.0, statistics={"rows": 400},
                                started_at=at, finished_at=at + timedelta(seconds=duration), duration_s=duration)
            found = run_checks.check_finished_run(con, run_id)
    assert [a.statistic for a in found] == ["duration_s"]
    at = open_page("pages/runs.py")
    assert_clean(at)
    # the demo's own runs have findings too (the concept shift moves the labels' positive rate), so the count is
    # theirs plus this one
    import re

    shown = re.search(r"(\d+) run\(s\) unlike the recent runs of their kind", texts(at))
    assert shown and int(shown.group(1)) >= 1
    spec = at.get("plotly_chart")[0].proto.spec
    assert "unusual run" in spec and run_id in spec


def test_shared_widgets_keep_their_value_across_pages(demo_db):
    at = open_page()
    at.selectbox(key="model").set_value("delivery_time").run()
    at.radio(key="window").set_value("week").run()
    at.switch_page("pages/performance.py").run()
    assert_clean(at)
    assert at.selectbox(key="model").value == "delivery_time"
    assert at.radio(key="window").value == "week"
    assert "delivery_time" in texts(at)


def test_empty_database_shows_the_first_step_on_every_page(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_DB", str(tmp_path / "nothing-here.duckdb"))
    at = open_page()
    for page in PAGES:
        if page != "pages/overview.py":
            at.switch_page(page).run()
        assert_clean(at)
        assert "python -m mlops_core demo" in texts(at), page
    assert not (tmp_path / "nothing-here.duckdb").exists()  # looking does not create a database


def test_unreadable_database_is_an_error_message_not_a_traceback(tmp_path, monkeypatch):
    bad = tmp_path / "folder.duckdb"
    bad.mkdir()  # a folder where the database file should be
    (bad / "x").write_text("x")
    monkeypatch.setenv("MLOPS_DB", str(bad))
    at = open_page()
    assert not at.exception
    assert at.error and "folder" in at.error[0].value


def _promotable(db):
    prod = ControlRoom(db).model(MODEL).production_version()
    others = [v for v in ControlRoom(db).model(MODEL).versions() if v.version != prod]
    return prod, others[-1]


def test_promote_flow_changes_production_and_audit(demo_db):
    before, target = _promotable(demo_db)
    at = open_page("pages/versions.py")
    at.selectbox(key=f"promote_version_{MODEL}").set_value(target.version).run()
    at.button(key="promote").click().run()
    assert_clean(at)
    body = texts(at)
    assert f"moves from **v{before}** to **v{target.version}**" in body
    assert [b.label for b in at.button if b.key == "promote_confirm"] == ["Confirm"]
    # nothing changes before Confirm
    assert ControlRoom(demo_db).model(MODEL).production_version() == before
    if target.status == "rejected":
        at.checkbox(key="promote_force").check().run()
    at.text_input(key="promote_reason").input("checked on the dashboard").run()
    at.button(key="promote_confirm").click().run()
    assert_clean(at)
    assert any(f"v{target.version} is now in production" in s.value for s in at.success)
    assert ControlRoom(demo_db).model(MODEL).production_version() == target.version
    event = ControlRoom(demo_db).audit(MODEL).iloc[0]
    assert (event["action"], event["actor"], event["from_version"], event["to_version"], event["reason"]) == (
        "promote", "pat", before, target.version, "checked on the dashboard")
    # the page shows the new state: the version list and the dialog is gone
    assert not [b for b in at.button if b.key == "promote_confirm"]
    assert f"production is v{target.version}" in texts(at)


def test_rollback_flow_restores_the_previous_version(demo_db):
    before, target = _promotable(demo_db)
    ControlRoom(demo_db, identity=Identity("test", 'admin')).model(MODEL).promote(target.version, force=True)
    at = open_page("pages/versions.py")
    assert f"Roll back puts v{before}" in texts(at)
    at.button(key="rollback").click().run()
    assert_clean(at)
    assert f"goes back from **v{target.version}** to **v{before}**" in texts(at)
    at.button(key="rollback_confirm").click().run()
    assert_clean(at)
    assert ControlRoom(demo_db).model(MODEL).production_version() == before
    event = ControlRoom(demo_db).audit(MODEL).iloc[0]
    assert (event["action"], event["actor"], event["to_version"]) == ("rollback", "pat", before)
    assert any(f"rolled back to v{before}" in s.value for s in at.success)


def test_cancel_leaves_production_alone(demo_db):
    before, target = _promotable(demo_db)
    at = open_page("pages/versions.py")
    at.selectbox(key=f"promote_version_{MODEL}").set_value(target.version).run()
    at.button(key="promote").click().run()
    at.button(key="promote_cancel").click().run()
    assert_clean(at)
    assert not [b for b in at.button if b.key == "promote_confirm"]
    assert ControlRoom(demo_db).model(MODEL).production_version() == before


@pytest.mark.slow
def test_retrain_flow_shows_progress_then_the_gate_decision(demo_db):
    at = open_page("pages/retrain.py")
    at.button(key="retrain").click().run()
    assert_clean(at)
    active = ControlRoom(demo_db).model(MODEL).active_retrain()
    assert active is not None and active.actor == "pat"
    # while it runs the button is disabled (and the core refuses a second one: tests/test_jobs.py)
    assert at.button(key="retrain").disabled
    run = ControlRoom(demo_db).wait(active.id, timeout=240)
    at.run()
    assert_clean(at)
    assert not at.button(key="retrain").disabled
    body = texts(at)
    assert "**Latest retrain** · succeeded · started by pat" in body and "Gate decision" in body
    assert "None" not in body
    cand = run.statistics["candidate_version"]
    assert (f"v{cand} passed the gate" in body) == bool(run.statistics["gate"]["passed"])
    for reason in run.statistics["gate"]["reasons"]:
        assert md(reason) in body  # shown as literal text (Markdown characters escaped)


def test_the_retrain_page_starts_the_job_worker_for_operators_only(demo_db):
    from mlops_core.lifecycle import worker
    from mlops_core.store import Store

    store = Store(demo_db)
    at = open_page("pages/retrain.py", identity=Identity("vic", "viewer"))
    assert_clean(at)
    assert worker.running_pid(store) is None  # a viewer cannot retrain: nothing to warm up
    at = open_page("pages/retrain.py")
    assert_clean(at)
    try:
        pid = jobs_wait_for(lambda: worker.running_pid(store))
        at.run()  # later reruns of the session leave the running worker alone
        assert worker.running_pid(store) == pid
    finally:
        worker.stop(store)


def jobs_wait_for(predicate, timeout: float = 60.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_policy_form_saves_the_policy(demo_db):

    at = open_page("pages/automation.py")
    assert_clean(at)
    at.radio(key="policy_mode").set_value("automated")
    at.text_input(key="policy_gate").input("roc_auc>=0.7")
    at.form_submit_button[0].click().run()
    assert_clean(at)
    p = ControlRoom(demo_db).model(MODEL).policy()
    assert p.mode == "automated" and p.stored and p.updated_by == "pat"
    assert p.gate == [{"metric": "roc_auc", "kind": "min", "threshold": 0.7, "relative": False}]
    assert any("saved (mode automated)" in s.value for s in at.success)


def test_incidents_are_acknowledged_resolved_and_snoozed_with_one_click(demo_db):
    open_before = ControlRoom(demo_db).model(MODEL).alerts(open_only=True)
    assert len(open_before) >= 2, "the demo has open incidents"
    first, second = (int(i) for i in open_before["id"].iloc[:2])
    at = open_page("pages/automation.py")
    at.button(key=f"ack_{first}").click().run()
    assert_clean(at)
    after = ControlRoom(demo_db).model(MODEL).alerts().set_index("id")
    assert after.loc[first, "status"] == "acknowledged" and after.loc[first, "acknowledged_by"] == "pat"
    assert first not in set(ControlRoom(demo_db).model(MODEL).alerts(open_only=True)["id"])
    at.button(key=f"snooze_{second}").click().run()
    assert_clean(at)
    assert second not in set(ControlRoom(demo_db).model(MODEL).alerts(open_only=True)["id"])
    at.segmented_control(key=f"incidents_show_{MODEL}").set_value("acknowledged").run()
    at.button(key=f"resolve_{first}").click().run()
    assert_clean(at)
    assert ControlRoom(demo_db).model(MODEL).alerts().set_index("id").loc[first, "status"] == "resolved"
    audit = ControlRoom(demo_db).audit(MODEL)
    steps = audit[audit["actor"] == "pat"]["action"].tolist()
    assert {"acknowledge_alert", "snooze_alert", "resolve_alert"} <= set(steps)


def test_viewers_see_incidents_but_no_buttons(demo_db):
    at = open_page("pages/automation.py", identity=Identity("vic", "viewer"))
    assert_clean(at)
    keys = [b.key for b in at.button]
    assert not [k for k in keys if k and k.startswith(("ack_", "resolve_", "snooze_", "next_"))]
    assert "which reads only" in texts(at)


def test_monitoring_pages_do_not_import_scikit_learn(demo_db):
    """scikit-learn costs about a second to import: only actions and the optional re-scoring may load it."""
    script = f"""
import sys
from streamlit.testing.v1 import AppTest
from mlops_core import Identity
at = AppTest.from_file({APP!r}, default_timeout=60)
at.session_state["signed_in"] = Identity("pat", "viewer")
at.run()
for page in ("performance", "drift", "data_quality", "versions", "ab_test", "retrain", "runs", "automation"):
    at.switch_page(f"pages/{{page}}.py").run()
    assert not at.exception, (page, [e.value for e in at.exception])
print("sklearn" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_a_model_without_traffic_renders_every_page(tmp_path, monkeypatch):
    from conftest import make_training_frame

    db = tmp_path / "fresh.duckdb"
    ControlRoom(db).register(MODEL, "classification", "default", make_training_frame())
    monkeypatch.setenv("MLOPS_DB", str(db))
    at = open_page()
    for page in PAGES:
        if page != "pages/overview.py":
            at.switch_page(page).run()
        assert_clean(at)
    at.switch_page("pages/performance.py").run()
    assert "ingest predictions" in texts(at)


def test_features_page_shows_freshness_rows_nulls_drift_and_the_stale_view(demo_db):
    from _dashboard_support import DEMO_END
    from conftest import log_sql

    from mlops_core.demo.features import add_applicant_history

    apps = log_sql(demo_db, "SELECT request_id, ts, credit_score, num_open_accounts, utilization "
                            "FROM log_credit_default", frame=True)
    add_applicant_history(ControlRoom(demo_db, identity=Identity("demo", "admin")), apps, end=DEMO_END)
    at = open_page("pages/features.py")
    assert_clean(at)
    body = texts(at)
    assert "**applicant_history** is stale" in body and "credit_default" in body
    assert "Definition" in body and "Every feature view is fresh" not in body
    assert at.selectbox(key="feature_view").value == "applicant_history"
    assert len(at.get("plotly_chart")) >= 4

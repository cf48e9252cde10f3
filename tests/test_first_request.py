"""A page opened as a server's very first request is whole: a real Chromium against a fresh `streamlit run`.

With page scripts in ``pages/`` beside ``dashboard.py``, Streamlit starts every server process in
its old multipage mode: the first script run executes the requested page script itself, without
the router. Each test here starts its own ``streamlit run`` process (the readiness check only asks
``/_stcore/health``, which runs no script), opens one page by its URL as the first request, and
checks the page's own content together with what the router adds: the shared sidebar (model,
date range, window) and the navigation grouped in sections. It then switches page from the
sidebar and checks that the model and the window chosen on the first page are still selected.
"""
from __future__ import annotations

import pytest
from _dashboard_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    StreamlitServer,
    assert_no_traceback,
    copy_db,
    open_as,
    require_browser,
    settle,
    shared_demo,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FAILED_SHOTS = ROOT / "test-results" / "screenshots"
FIRST_MODEL, OTHER_MODEL = "credit_default", "delivery_time"  # the demo's classifier and regressor
#: (url path, model) -> (title, texts the page itself shows, plotly charts at least).
PAGES = {
    ("performance", FIRST_MODEL): ("Performance", ["Errors in one window"], 2),
    ("performance", OTHER_MODEL): ("Performance", ["Residuals in one window"], 2),
    ("versions", FIRST_MODEL): ("Versions", ["Change production", "Compare versions"], 2),
    ("versions", OTHER_MODEL): ("Versions", ["Change production", "Compare versions"], 0),  # one version only
}
SECTIONS = ("Monitor", "Act", "Records")


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def fresh_server(tmp_path):
    """A new `streamlit run dashboard.py` process that has not run any script yet."""
    db = copy_db(shared_demo(), tmp_path / "db")
    with StreamlitServer(db, tmp_path / "streamlit.log") as srv:
        yield srv


def sidebar(pg):
    return pg.locator('[data-testid="stSidebar"]')


def model_select(pg):
    return sidebar(pg).get_by_role("combobox", name="Model", exact=True)


def assert_whole_page(pg, server, path: str, model: str, window: str) -> None:
    """The page's title, texts and charts, the shared sidebar with ``model`` and ``window``, the sectioned navigation."""
    title, texts, charts = PAGES[path, model]
    try:
        pg.get_by_role("heading", name=title, exact=True).wait_for()
        settle(pg)
        main = pg.locator('[data-testid="stMain"]')
        for text in texts:
            main.get_by_text(text, exact=True).first.wait_for()
        if charts:
            # the charts on show (a chart inside a closed expander, such as the split by arm, is drawn hidden)
            main.locator('[data-testid="stPlotlyChart"] >> visible=true').nth(charts - 1).wait_for()
        model_select(pg).wait_for(timeout=15_000)
        sidebar(pg).locator('[data-testid="stDateInput"]').filter(has_text="Date range").wait_for(timeout=5_000)
        sidebar(pg).locator('[data-testid="stRadio"]').filter(has_text="Window").wait_for(timeout=5_000)
        nav = sidebar(pg).locator('[data-testid="stSidebarNav"]')
        for section in SECTIONS:
            nav.get_by_text(section, exact=True).wait_for(timeout=5_000)
    except Exception as exc:
        FAILED_SHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(FAILED_SHOTS / f"failed_first_request_{path}_{model}.png"), full_page=True)
        pytest.fail(f"/{path} is not whole ({exc}); server log: {server.log()[-2000:]}")
    assert_no_traceback(pg, f"/{path}")
    assert model_select(pg).input_value() == model
    assert sidebar(pg).get_by_role("radio", name=window, exact=True).is_checked()
    assert model in main.inner_text()  # the page reads the sidebar's choice


@pytest.mark.parametrize("first,then", [("performance", "versions"), ("versions", "performance")])
def test_first_request_of_a_server_renders_the_whole_page(browser, fresh_server, first, then):
    context = browser.new_context(viewport={"width": 1440, "height": 1700}, color_scheme="light")
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        open_as(pg, f"{fresh_server.url}/{first}")
        assert_whole_page(pg, fresh_server, first, FIRST_MODEL, "day")

        # choose another model and window, then go to another page through the sidebar's navigation
        model_select(pg).click()
        pg.get_by_role("option", name=OTHER_MODEL, exact=True).click()
        pg.locator('[data-testid="stMain"]').get_by_text(OTHER_MODEL).first.wait_for()
        settle(pg)
        sidebar(pg).locator('[data-testid="stRadio"]').get_by_text("week", exact=True).click()
        sidebar(pg).get_by_role("radio", name="week", exact=True, checked=True).wait_for()
        settle(pg)
        sidebar(pg).locator('[data-testid="stSidebarNav"]').locator(f'a[href$="/{then}"]').click()
        pg.wait_for_url(f"**/{then}")
        assert_whole_page(pg, fresh_server, then, OTHER_MODEL, "week")
    finally:
        context.close()

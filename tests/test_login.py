"""The dashboard's login and roles under AppTest (the same flows in a real browser: tests/test_browser.py)."""
from __future__ import annotations

import pytest
from _dashboard_support import PASSWORD, ROOT, copy_db, shared_demo
from streamlit.testing.v1 import AppTest

from mlops_core import ControlRoom, Identity

APP = str(ROOT / "dashboard.py")


@pytest.fixture
def demo_db(tmp_path, monkeypatch):
    path = copy_db(shared_demo(), tmp_path / "copy")
    monkeypatch.setenv("MLOPS_DB", str(path))
    from ui import auth

    auth._failures.clear()
    return path


def fresh(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    if page:
        at.switch_page(page).run()
    return at


def log_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    next(b for b in at.button if b.label == "Log in").click()
    return at.run()


def shown(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("title", "subheader", "markdown", "caption", "error", "info")
                     for e in getattr(at, kind))


def test_nothing_but_the_login_before_signing_in(demo_db):
    for page in (None, "pages/versions.py", "pages/retrain.py"):
        at = fresh(page)
        assert not at.exception
        assert [t.value for t in at.title] == ["MLOps control room"]
        assert "Log in" in [s.value for s in at.subheader]
        assert not at.sidebar.selectbox, "the sidebar's model choice is drawn only after a login"
        assert "credit_default" not in shown(at)


def test_wrong_password_is_refused_and_the_right_one_signs_in(demo_db):
    at = log_in(fresh(), "pat", "not the password")
    assert [e.value for e in at.error] == ["Unknown user name or wrong password \\(or the account is disabled\\)\\."]
    assert "Log in" in [s.value for s in at.subheader]
    at = log_in(at, "pat", PASSWORD)
    assert not at.error and not at.exception
    assert at.session_state["signed_in"] == Identity("pat", "operator")
    assert at.sidebar.selectbox(key="model").value == "credit_default"


def test_repeated_failures_lock_the_name_for_a_while(demo_db):
    at = fresh()
    for _ in range(5):
        at = log_in(at, "pat", "not the password")
    at = log_in(at, "pat", PASSWORD)
    assert "Too many failed logins" in at.error[0].value
    assert "signed_in" not in at.session_state


def test_a_viewer_sees_no_action_controls(demo_db):
    at = log_in(fresh(), "vic", PASSWORD)
    for page, absent in (("pages/versions.py", ["promote", "rollback"]), ("pages/retrain.py", ["retrain"]),
                         ("pages/automation.py", ["ack", "resolve", "snooze"])):
        at.switch_page(page).run()
        assert not at.exception and not at.error, page
        keys = {b.key for b in at.button}
        assert not _controls(keys, absent), (page, keys)
        assert "reads only" in shown(at), page
    save = [b for b in at.button if b.label == "Save policy"]
    assert save and save[0].disabled
    at.switch_page("pages/overview.py").run()  # the verdict's next step is a sentence, not a button
    assert not at.exception and not _controls({b.key for b in at.button}, ["next"])


def test_an_operator_sees_them(demo_db):
    at = log_in(fresh(), "pat", PASSWORD)
    for page, present in (("pages/versions.py", {"promote", "rollback"}), ("pages/retrain.py", {"retrain"}),
                          ("pages/automation.py", {"ack"}), ("pages/overview.py", {"next"})):
        at.switch_page(page).run()
        assert _controls({b.key for b in at.button}, present) == set(present), page


def _controls(keys, names) -> set[str]:
    """The names among ``names`` with a button: key ``name`` itself or ``name_<id>`` (one per incident, model)."""
    return {n for n in names for k in keys if k and (k == n or k.startswith(f"{n}_"))}


def test_log_out_shows_the_login_again(demo_db):
    at = log_in(fresh(), "pat", PASSWORD)
    at.button(key="logout").click().run()
    assert "signed_in" not in at.session_state
    assert "Log in" in [s.value for s in at.subheader]
    assert not at.sidebar.selectbox


def test_a_disabled_account_cannot_sign_in(demo_db):
    ControlRoom(demo_db, identity=Identity("setup", "admin")).disable_user("pat")
    at = log_in(fresh(), "pat", PASSWORD)
    assert "signed_in" not in at.session_state and at.error


def test_markdown_in_stored_text_is_shown_literally(demo_db):
    """An actor or reason with Markdown (an image link) is escaped wherever a page renders it as Markdown."""
    from ui.widgets import md

    text = "![t](http://attacker.example/x.png) :red[alarm] $x$"
    escaped = md(text)
    assert "![" not in escaped and "](" not in escaped and ":red[" not in escaped and "$x$" not in escaped
    assert escaped.replace("\\", "") == text

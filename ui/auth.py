"""Who is looking: the login in front of every page, the signed-in identity, and what its role may do.

Two ways in, both ending in an ``Identity`` (name and role) kept in the session:

- **Password** (the default, local set-up): the accounts of the database (``mlops users``),
  argon2id hashes checked by ``ControlRoom.login``. After ``MAX_FAILURES`` wrong passwords in a
  row for one name, that name must wait ``LOCKOUT_S`` seconds between tries (per dashboard
  process); the message never says whether the name exists.
- **Single sign-on** (OpenID Connect, Streamlit's ``st.login``) when ``.streamlit/secrets.toml``
  has an ``[auth]`` section. The provider proves who the person is (their e-mail address, or
  the token's subject); the role comes from the account of that name, else
  ``$MLOPS_SSO_DEFAULT_ROLE`` (default ``viewer``; set it to ``none`` to let in only people who
  have an account). A disabled account is refused.

A session lasts until the browser tab closes or the person logs out. Nothing on a page is
drawn before a login: ``gate()`` runs inside the page frame before the sidebar and the page.
"""
from __future__ import annotations

import os
import threading
import time

import streamlit as st

from mlops_core import ControlRoom, Identity
from mlops_core.errors import AuthenticationError, MlopsError
from ui import widgets

SESSION_KEY = "signed_in"
MAX_FAILURES = 5
LOCKOUT_S = 30.0

_failures: dict[str, tuple[int, float]] = {}
_failures_lock = threading.Lock()


def current() -> Identity | None:
    """The identity signed in to this session, or None."""
    ident = st.session_state.get(SESSION_KEY)
    return ident if isinstance(ident, Identity) else None


def can(role: str) -> bool:
    """Whether the signed-in identity's role includes ``role`` (operator: change production)."""
    ident = current()
    return ident is not None and ident.can(role)


def read_only_note(what: str) -> None:
    """Say why action controls are missing for a viewer."""
    ident = current()
    role = ident.role if ident else "no"
    st.caption(f":material/visibility: You are signed in with the {role} role, which reads only; {what} needs the "
               "operator role (an admin grants it with `mlops users set-role NAME operator`).")


def sso_providers() -> list[str | None] | None:
    """The OpenID Connect providers of ``.streamlit/secrets.toml`` (``[None]`` for a single unnamed one), or None
    when single sign-on is not configured."""
    try:
        conf = st.secrets.get("auth")
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return None
    if not conf:
        return None
    named = [k for k, v in conf.items() if hasattr(v, "keys")]
    return named or [None]


def _locked_for(name: str) -> float:
    with _failures_lock:
        count, last = _failures.get(name.lower(), (0, 0.0))
    wait = LOCKOUT_S - (time.monotonic() - last)
    return wait if count >= MAX_FAILURES and wait > 0 else 0.0


def _record(name: str, ok: bool) -> None:
    key = name.lower()
    with _failures_lock:
        if ok:
            _failures.pop(key, None)
        else:
            count, _ = _failures.get(key, (0, 0.0))
            _failures[key] = (count + 1, time.monotonic())


def attempt(db: str, name: str, password: str) -> Identity:
    """Check one password login (with the lockout); AuthenticationError says why it was refused."""
    name = (name or "").strip()
    if not name or not password:
        raise AuthenticationError("Enter your user name and password.")
    wait = _locked_for(name)
    if wait:
        raise AuthenticationError(f"Too many failed logins for this name; try again in {wait:.0f} s.")
    try:
        identity = ControlRoom.login(db, name, password).identity
    except AuthenticationError:
        _record(name, ok=False)
        raise
    _record(name, ok=True)
    return identity


def _sso_identity(db: str) -> Identity | None:
    """The identity of a person the provider signed in, or None (after saying why) when they may not enter."""
    user = st.user
    name = user.get("email") or user.get("sub")
    if not name:
        st.error("The sign-on provider sent no e-mail address or subject; ask an admin to check its settings.")
        return None
    default = os.environ.get("MLOPS_SSO_DEFAULT_ROLE", "viewer").strip().lower()
    try:
        return ControlRoom.for_account(db, str(name), default_role=None if default == "none" else default).identity
    except MlopsError as exc:
        st.error(widgets.md(exc))
        return None


def gate(db: str) -> Identity:
    """Return the signed-in identity, or draw the login and stop the run until someone signs in."""
    ident = current()
    if ident is not None:
        return ident
    providers = sso_providers()
    if providers is not None and st.user.is_logged_in:
        ident = _sso_identity(db)
        if ident is not None:
            st.session_state[SESSION_KEY] = ident
            return ident
        if st.button("Log out of single sign-on"):
            st.logout()
        st.stop()
    _login_form(db, providers)
    st.stop()
    raise AssertionError("unreachable")  # st.stop raises


def _login_form(db: str, providers: list[str | None] | None) -> None:
    st.title("MLOps control room")
    left, _ = st.columns([2, 3])
    with left:
        st.subheader("Log in")
        if providers:
            for provider in providers:
                label = f"Log in with {provider}" if provider else "Log in with single sign-on"
                if st.button(label, key=f"sso_{provider}", type="primary"):
                    st.login(provider) if provider else st.login()
            st.caption("Or with a password:")
        with st.form("login", border=True):
            name = st.text_input("User name", key="login_name", autocomplete="username")
            password = st.text_input("Password", type="password", key="login_password",
                                     autocomplete="current-password")
            submitted = st.form_submit_button("Log in", type="primary" if not providers else "secondary")
        if submitted:
            try:
                st.session_state[SESSION_KEY] = attempt(db, name, password)
            except AuthenticationError as exc:
                st.error(widgets.md(exc))
            except MlopsError as exc:
                st.error(f"Logging in failed: {widgets.md(exc)}")
            else:
                st.rerun()
        st.caption("No account yet? An admin adds one with `mlops users add NAME --role operator`. "
                   "On a fresh set-up, `make run` created the first admin and printed its password; "
                   "`mlops users reset-password admin` prints a new one.")


def account_menu(db: str) -> None:
    """The sidebar's account part: who is signed in, change password, log out."""
    ident = current()
    if ident is None:
        return
    with st.sidebar.popover(f"{ident.name} · {ident.role}", icon=":material/account_circle:", width="stretch"):
        if sso_providers() is None or not st.user.is_logged_in:
            with st.form("change_password", border=False):
                st.markdown("**Change password**")
                old = st.text_input("Current password", type="password", key="pw_old",
                                    autocomplete="current-password")
                new = st.text_input("New password (at least 10 characters)", type="password", key="pw_new",
                                    autocomplete="new-password")
                if st.form_submit_button("Change password"):
                    try:
                        ControlRoom(db, identity=ident).change_password(old, new)
                    except MlopsError as exc:
                        st.error(widgets.md(exc))
                    else:
                        st.success("Password changed.")
        if st.button("Log out", key="logout", icon=":material/logout:", width="stretch"):
            log_out()


def log_out() -> None:
    """End the session's login (and the sign-on cookie when there is one), then show the login."""
    st.session_state.pop(SESSION_KEY, None)
    for key in ("login_password", "pw_old", "pw_new"):
        st.session_state.pop(key, None)
    if sso_providers() is not None and st.user.is_logged_in:
        st.logout()
    st.rerun()

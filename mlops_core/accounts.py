"""Accounts: who may log in to the dashboard (and the scoring service), with which role.

Accounts live in the metadata database (table ``users``), so that a backup, a restore and the
audit log cover them like every other change; there is no second file to protect. Whoever can
write the database file can change anything in it anyway (see docs/security.md), so the file's
permissions are the boundary for local users, and accounts are the boundary for people who
reach the dashboard or the service over the network.

Passwords are hashed with argon2id (argon2-cffi's ``PasswordHasher`` with its default
parameters, the RFC 9106 low-memory profile); only the encoded hash, which carries its salt and
cost, is stored. A login that names no account still spends one hash verification, so the time
a refusal takes does not tell which names exist, and every refusal has the same message.

Rules: names are 1-64 characters of letters, digits and ``. _ @ + -`` (an e-mail address is a
valid name, for accounts that log in with OpenID Connect); passwords have at least 10
characters; the last enabled admin can be neither demoted nor disabled, so the database never
locks out its own administration.
"""
from __future__ import annotations

import re
import secrets
from functools import lru_cache

from mlops_core.access import ROLES, Identity
from mlops_core.clock import utcnow
from mlops_core.entities import UserInfo
from mlops_core.errors import (
    AlreadyExistsError,
    AuthenticationError,
    DatabaseBusyError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ReadOnlyError,
)
from mlops_core.store import Store
from mlops_core.store import runs as runstore
from mlops_core.store import users as ustore

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
#: The account ``bootstrap`` creates when a database has none.
FIRST_ADMIN = "admin"
REFUSED = "Unknown user name or wrong password (or the account is disabled)."


@lru_cache(maxsize=1)
def _hasher():
    """argon2-cffi's hasher (imported on first use: commands that check no password do not load it)."""
    from argon2 import PasswordHasher

    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def check_name(name: str) -> str:
    """``name`` if it is a valid account name, else InvalidInputError saying what is allowed."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInputError(
            f"Invalid user name {str(name)[:70]!r}: use 1-64 letters, digits and . _ @ + - , starting with a letter "
            "or digit.", user=str(name)[:70])
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInputError(f"Unknown role {role!r}; choose one of: {', '.join(ROLES)}.", role=role)
    return role


def check_password(password: str, name: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInputError(f"A password needs at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise InvalidInputError(f"A password may have at most {MAX_PASSWORD} characters.")
    if password.strip().lower() == name.lower():
        raise InvalidInputError("A password may not be the user name.")
    return password


def check_actor(name: str) -> str:
    """``name`` if it can stand in the audit log as an actor (a valid account name, or ``automation``)."""
    return check_name(name)


def new_password() -> str:
    """A random password of 20 URL-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)


def list_users(store: Store) -> list[UserInfo]:
    if not store.exists():
        return []
    with store.connect() as con:
        return ustore.list_users(con)


def get_user(store: Store, name: str) -> UserInfo:
    with store.connect() as con:
        user = ustore.get_user(con, name)
    if user is None:
        raise NotFoundError(f"No user {name!r}. `mlops users list` shows the accounts.", user=name)
    return user


def role_of(store: Store, name: str) -> str | None:
    """The role of the enabled account ``name``; None when there is no such account or it is disabled."""
    if not store.exists():
        return None
    with store.connect() as con:
        row = ustore.password_hash(con, name)
    return row[1] if row and not row[2] else None


def has_account(store: Store, name: str) -> bool:
    if not store.exists():
        return False
    with store.connect() as con:
        return ustore.get_user(con, name) is not None


def add_user(store: Store, name: str, role: str, password: str | None, *, actor: str) -> UserInfo:
    """Create an account; ``password`` None makes an account that cannot log in with a password (OpenID
    Connect only)."""
    check_name(name)
    check_role(role)
    encoded = _hasher().hash(check_password(password, name)) if password is not None else None
    at = utcnow()
    with store.transaction(create=True) as con:
        taken = ustore.find_case_insensitive(con, name)
        if taken:
            raise AlreadyExistsError(
                f"User {taken!r} already exists" + ("" if taken == name else " (names may not differ only in case)")
                + "; pick another name, or change it with `mlops users set-role` / `reset-password`.", user=name)
        ustore.insert_user(con, name, role, encoded, actor=actor, at=at)
        runstore.insert_audit(con, actor=actor, action="user_add", model=None, reason=f"added {name} as {role}",
                              details={"user": name, "role": role}, at=at)
        return ustore.get_user(con, name)  # type: ignore[return-value]


def _existing(con, name: str) -> UserInfo:
    user = ustore.get_user(con, name)
    if user is None:
        raise NotFoundError(f"No user {name!r}. `mlops users list` shows the accounts.", user=name)
    return user


def _keeps_an_admin(con, user: UserInfo, what: str) -> None:
    if user.role == "admin" and not user.disabled and ustore.count_users(con, role="admin") <= 1:
        raise InvalidInputError(f"{user.name} is the last enabled admin and cannot be {what}; make another "
                                "admin first (`mlops users add NAME --role admin`).", user=user.name)


def set_role(store: Store, name: str, role: str, *, actor: str) -> UserInfo:
    check_role(role)
    at = utcnow()
    with store.transaction() as con:
        user = _existing(con, name)
        if user.role == role:
            return user
        if role != "admin":
            _keeps_an_admin(con, user, f"made {role}")
        ustore.set_role(con, name, role)
        runstore.insert_audit(con, actor=actor, action="user_role", model=None,
                              reason=f"{name}: {user.role} -> {role}", details={"user": name, "from": user.role,
                                                                              "to": role}, at=at)
        return _existing(con, name)


def set_password(store: Store, name: str, password: str, *, actor: str) -> None:
    check_password(password, name)
    encoded = _hasher().hash(password)
    at = utcnow()
    with store.transaction() as con:
        _existing(con, name)
        ustore.set_password_hash(con, name, encoded, at)
        runstore.insert_audit(con, actor=actor, action="user_password", model=None, reason=f"password of {name} set",
                              details={"user": name}, at=at)


def set_disabled(store: Store, name: str, disabled: bool, *, actor: str) -> UserInfo:
    at = utcnow()
    with store.transaction() as con:
        user = _existing(con, name)
        if user.disabled == disabled:
            return user
        if disabled:
            _keeps_an_admin(con, user, "disabled")
        ustore.set_disabled(con, name, disabled)
        action = "user_disable" if disabled else "user_enable"
        runstore.insert_audit(con, actor=actor, action=action, model=None,
                              reason=f"{name} {'disabled' if disabled else 'enabled'}", details={"user": name}, at=at)
        return _existing(con, name)


def authenticate(store: Store, name: str, password: str) -> Identity:
    """The identity of account ``name`` when ``password`` is its password; AuthenticationError otherwise.

    Works on a read-only database; an outdated hash is upgraded when the database can be written.
    """
    if not isinstance(name, str) or not isinstance(password, str) or not store.exists() \
            or len(password) > MAX_PASSWORD or not NAME_PATTERN.fullmatch(name):
        _spend_one_verification(password if isinstance(password, str) else "")
        raise AuthenticationError(REFUSED)
    with store.connect() as con:
        row = ustore.password_hash(con, name)
    if row is None or row[0] is None:
        _spend_one_verification(password)
        raise AuthenticationError(REFUSED)
    encoded, role, disabled = row
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        _hasher().verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError) as exc:
        raise AuthenticationError(REFUSED) from exc
    if disabled:
        raise AuthenticationError(REFUSED)
    if _hasher().check_needs_rehash(encoded):
        try:
            with store.transaction() as con:
                ustore.set_password_hash(con, name, _hasher().hash(password), utcnow())
        except (ReadOnlyError, DatabaseBusyError):
            pass  # the old hash keeps working; the upgrade happens at a later login
    return Identity(name, role)


def _spend_one_verification(password: str) -> None:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        _hasher().verify(_dummy_hash(), password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        pass


def change_own_password(store: Store, identity: Identity, current: str, new: str) -> None:
    """Let a logged-in user replace their own password, after proving the current one."""
    try:
        authenticate(store, identity.name, current)
    except AuthenticationError as exc:
        raise PermissionDeniedError("The current password is wrong; the password was not changed.") from exc
    set_password(store, identity.name, new, actor=identity.name)


def bootstrap(store: Store, *, actor: str, name: str = FIRST_ADMIN) -> str | None:
    """Create the first admin ``name`` with a random password when the database has no account; return that
    password (to show once), or None when accounts exist already."""
    if store.exists():
        with store.connect() as con:
            if ustore.count_users(con, enabled_only=False):
                return None
    password = new_password()
    try:
        add_user(store, name, "admin", password, actor=actor)
    except AlreadyExistsError:
        return None  # another process bootstrapped in between
    return password


__all__ = [
    "FIRST_ADMIN",
    "MIN_PASSWORD",
    "REFUSED",
    "add_user",
    "authenticate",
    "bootstrap",
    "change_own_password",
    "check_actor",
    "check_name",
    "check_password",
    "check_role",
    "get_user",
    "has_account",
    "list_users",
    "new_password",
    "role_of",
    "set_disabled",
    "set_password",
    "set_role",
]

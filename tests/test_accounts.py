"""Accounts and roles: argon2id passwords, one refusal message, the last admin, audit rows, the CLI identity."""
from __future__ import annotations

import getpass
import time

import pytest

from mlops_core import ControlRoom, Identity
from mlops_core.cli import main
from mlops_core.errors import (
    AlreadyExistsError,
    AuthenticationError,
    InvalidInputError,
    PermissionDeniedError,
)

PASSWORD = "correct horse battery"


@pytest.fixture
def room(registered_credit_db):
    return ControlRoom(registered_credit_db, identity=Identity("root-admin", "admin"))


def test_add_and_log_in_with_argon2id(room, registered_credit_db):
    room.add_user("maria", "operator", PASSWORD)
    stored = room.store.connect()
    with stored as con:
        encoded = con.execute("SELECT password_hash FROM users WHERE name = 'maria'").fetchone()[0]
    assert encoded.startswith("$argon2id$") and PASSWORD not in encoded
    signed_in = ControlRoom.login(registered_credit_db, "maria", PASSWORD)
    assert signed_in.identity == Identity("maria", "operator")
    assert [u.name for u in room.users()] == ["maria"]


def test_every_refusal_has_the_same_message(room, registered_credit_db):
    room.add_user("maria", "operator", PASSWORD)
    room.add_user("olga", "viewer", PASSWORD)
    room.disable_user("olga")
    messages = set()
    for name, password in (("maria", "wrong password!"), ("nobody", PASSWORD), ("olga", PASSWORD),
                           ("maria", ""), ("x" * 500, PASSWORD), ("maria", "p" * 5000)):
        with pytest.raises(AuthenticationError) as err:
            ControlRoom.login(registered_credit_db, name, password)
        messages.add(str(err.value))
        assert err.value.exit_code == 6
    assert len(messages) == 1


def test_unknown_name_costs_a_hash_like_a_known_one(room, registered_credit_db):
    """A refusal for a name that does not exist takes about as long as one for a wrong password."""
    room.add_user("maria", "operator", PASSWORD)

    def timed(name):
        t0 = time.perf_counter()
        with pytest.raises(AuthenticationError):
            ControlRoom.login(registered_credit_db, name, "wrong password!")
        return time.perf_counter() - t0

    timed("maria"), timed("nobody")  # warm up
    known = sorted(timed("maria") for _ in range(5))[2]
    unknown = sorted(timed("nobody") for _ in range(5))[2]
    assert unknown > known / 3


def test_name_and_password_rules(room):
    with pytest.raises(InvalidInputError, match="at least 10 characters"):
        room.add_user("maria", "operator", "short")
    with pytest.raises(InvalidInputError, match="may not be the user name"):
        room.add_user("maria.lopez", "operator", "Maria.Lopez")
    with pytest.raises(InvalidInputError, match="Invalid user name"):
        room.add_user("![t](http://host/x.png)", "viewer", PASSWORD)
    with pytest.raises(InvalidInputError, match="Unknown role"):
        room.add_user("maria", "superuser", PASSWORD)
    room.add_user("maria", "operator", PASSWORD)
    with pytest.raises(AlreadyExistsError, match="differ only in case"):
        room.add_user("MARIA", "viewer", PASSWORD)
    room.add_user("sso.user@example.com", "viewer", None)
    with pytest.raises(AuthenticationError):
        ControlRoom.login(room.location, "sso.user@example.com", "")


def test_the_last_admin_stays(room):
    room.add_user("ada", "admin", PASSWORD)
    with pytest.raises(InvalidInputError, match="last enabled admin"):
        room.set_role("ada", "operator")
    with pytest.raises(InvalidInputError, match="last enabled admin"):
        room.disable_user("ada")
    room.add_user("bea", "admin", PASSWORD)
    assert room.set_role("ada", "operator").role == "operator"
    with pytest.raises(InvalidInputError, match="last enabled admin"):
        room.disable_user("bea")


def test_changes_are_audited_without_secrets(room):
    room.add_user("maria", "viewer", PASSWORD)
    room.set_role("maria", "operator")
    new = room.reset_password("maria")
    room.disable_user("maria")
    room.disable_user("maria", False)
    audit = room.audit()
    assert list(audit["action"])[:5] == ["user_enable", "user_disable", "user_password", "user_role", "user_add"]
    assert set(audit["actor"][:5]) == {"root-admin"}
    assert not audit.astype(str).apply(lambda c: c.str.contains(new, regex=False)).any().any()
    assert ControlRoom.login(room.location, "maria", new).identity.role == "operator"


def test_roles_gate_every_client(room, registered_credit_db):
    room.add_user("vic", "viewer", PASSWORD)
    room.add_user("pat", "operator", PASSWORD)
    viewer = ControlRoom.login(registered_credit_db, "vic", PASSWORD)
    operator = ControlRoom.login(registered_credit_db, "pat", PASSWORD)
    for action in (lambda r: r.model("credit").promote(1), lambda r: r.model("credit").rollback(),
                   lambda r: r.model("credit").retrain({}), lambda r: r.acknowledge(1),
                   lambda r: r.model("credit").set_policy(mode="automated")):
        with pytest.raises(PermissionDeniedError, match=r"vic \(viewer\) may not"):
            action(viewer)
    with pytest.raises(PermissionDeniedError, match="needs the admin role"):
        operator.add_user("eve", "admin", PASSWORD)
    with pytest.raises(PermissionDeniedError):
        operator.users()
    assert operator.model("credit").set_policy(mode="manual").mode == "manual"


def test_change_own_password(room, registered_credit_db):
    room.add_user("pat", "operator", PASSWORD)
    me = ControlRoom.login(registered_credit_db, "pat", PASSWORD)
    with pytest.raises(PermissionDeniedError, match="current password is wrong"):
        me.change_password("not it at all", "a brand new password")
    me.change_password(PASSWORD, "a brand new password")
    assert ControlRoom.login(registered_credit_db, "pat", "a brand new password").identity.name == "pat"
    with pytest.raises(AuthenticationError):
        ControlRoom.login(registered_credit_db, "pat", PASSWORD)


def test_single_sign_on_identity(room, registered_credit_db):
    room.add_user("ops@example.com", "operator", None)
    room.add_user("gone@example.com", "operator", None)
    room.disable_user("gone@example.com")
    assert ControlRoom.for_account(registered_credit_db, "ops@example.com").identity.role == "operator"
    assert ControlRoom.for_account(registered_credit_db, "new@example.com",
                                   default_role="viewer").identity == Identity("new@example.com", "viewer")
    with pytest.raises(AuthenticationError, match="no enabled account"):
        ControlRoom.for_account(registered_credit_db, "new@example.com")
    with pytest.raises(AuthenticationError, match="no enabled account"):
        ControlRoom.for_account(registered_credit_db, "gone@example.com", default_role="viewer")


def test_bootstrap_creates_one_admin_once(tmp_path):
    room = ControlRoom(tmp_path / "fresh.duckdb", identity=Identity("root-admin", "admin"))
    password = room.bootstrap_admin()
    assert password and len(password) >= 20
    assert room.bootstrap_admin() is None
    assert ControlRoom.login(room.location, "admin", password).identity == Identity("admin", "admin")


def test_cli_users_commands(registered_credit_db, capsys, monkeypatch):
    db = ["--db", str(registered_credit_db)]
    assert main(["users", "bootstrap", *db]) == 0
    out = capsys.readouterr().out
    password = out.split("password:")[1].split()[0]
    assert ControlRoom.login(registered_credit_db, "admin", password)
    assert main(["users", "add", "maria", "--role", "operator", *db]) == 0
    generated = capsys.readouterr().out.split("shown once): ")[1].strip()
    assert ControlRoom.login(registered_credit_db, "maria", generated).identity.role == "operator"
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("from standard input\n"))
    assert main(["users", "reset-password", "maria", "--password-stdin", *db]) == 0
    assert "shown once" not in capsys.readouterr().out
    assert ControlRoom.login(registered_credit_db, "maria", "from standard input")
    assert main(["users", "set-role", "maria", "viewer", *db]) == 0
    assert main(["users", "disable", "maria", *db]) == 0
    capsys.readouterr()
    assert main(["users", "list", *db]) == 0
    listing = capsys.readouterr().out
    assert "maria" in listing and "disabled" in listing and "$argon2" not in listing
    assert main(["users", "set-role", "nobody", "viewer", *db]) == 2
    assert "No user 'nobody'" in capsys.readouterr().err


def test_cli_acts_as_the_os_user_with_the_role_of_their_account(registered_credit_db, capsys):
    me = getpass.getuser()
    db = ["--db", str(registered_credit_db)]
    admin = ControlRoom(registered_credit_db, identity=Identity("root-admin", "admin"))
    admin.add_user("ada", "admin", PASSWORD)

    def policy(*extra):
        return main(["policy", "--model", "credit", "--mode", "manual", *extra, *db])

    # no account of the OS user: admin, and --actor may name someone else (automation, a script)
    assert policy("--actor", "automation") == 0
    assert ControlRoom(registered_credit_db).model("credit").policy().updated_by == "automation"
    assert policy() == 0
    assert ControlRoom(registered_credit_db).model("credit").policy().updated_by == me
    admin.add_user(me, "viewer", PASSWORD)
    capsys.readouterr()
    assert policy() == 6
    assert f"{me} (viewer) may not change the automation policy" in capsys.readouterr().err
    admin.set_role(me, "operator")
    assert policy() == 0
    assert policy("--actor", "ada") == 6
    assert "act as 'ada'" in capsys.readouterr().err
    admin.set_role(me, "admin")
    assert policy("--actor", "![t](http://x/y.png)") == 2
    assert "Invalid user name" in capsys.readouterr().err
    admin.disable_user(me)
    assert policy() == 6

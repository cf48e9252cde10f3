"""CLI commands for accounts: ``mlops users list|add|set-role|reset-password|disable|enable|bootstrap``.

Accounts are who may log in to the dashboard (and the scoring service). Managing them needs
the admin role; the local OS user acts as admin unless their own account says otherwise.
A password is never taken from the command line (other users could read it in the process
list): ``add`` and ``reset-password`` make a random one and print it once, or read one line
from standard input with ``--password-stdin``.
"""
from __future__ import annotations

import sys

from mlops_core.cli import room
from mlops_core.cli.output import print_json
from mlops_core.errors import InvalidInputError


def add_commands(sub, common) -> None:
    """Add the ``users`` command and its sub-commands to the parser."""
    p = sub.add_parser("users", help="accounts of the dashboard: add, change role, reset password, disable",
                       description=__doc__.split("\n\n")[1].replace("\n", " "))
    us = p.add_subparsers(dest="users_command", metavar="ACTION")
    us.required = True

    q = us.add_parser("list", parents=[common], help="every account with its role")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)

    q = us.add_parser("add", parents=[common], help="create an account (prints its random password once)")
    q.add_argument("name")
    q.add_argument("--role", choices=("viewer", "operator", "admin"), default="viewer",
                   help="viewer reads; operator also retrains, promotes, rolls back; admin also manages users and "
                        "registers models (default: viewer)")
    _password_options(q, allow_none=True)
    q.set_defaults(func=cmd_add)

    q = us.add_parser("set-role", parents=[common], help="change an account's role")
    q.add_argument("name")
    q.add_argument("role", choices=("viewer", "operator", "admin"))
    q.set_defaults(func=cmd_set_role)

    q = us.add_parser("reset-password", parents=[common], help="set a new password (random unless --password-stdin)")
    q.add_argument("name")
    _password_options(q, allow_none=False)
    q.set_defaults(func=cmd_reset_password)

    for action, disabled, text in (("disable", True, "stop an account from logging in (kept in the records)"),
                                   ("enable", False, "let a disabled account log in again")):
        q = us.add_parser(action, parents=[common], help=text)
        q.add_argument("name")
        q.set_defaults(func=cmd_disable, disabled=disabled)

    q = us.add_parser("bootstrap", parents=[common],
                      help="create the first admin 'admin' with a random password when there is no account yet")
    q.set_defaults(func=cmd_bootstrap)


def _password_options(q, *, allow_none: bool) -> None:
    g = q.add_mutually_exclusive_group()
    g.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input (at least 10 characters)")
    if allow_none:
        g.add_argument("--no-password", action="store_true",
                       help="no password login: the account logs in through OpenID Connect only")


def _read_password() -> str:
    line = sys.stdin.readline()
    if not line:
        raise InvalidInputError("--password-stdin: standard input was empty; pipe the password in, e.g. "
                                "`printf '%s\\n' \"$PASSWORD\" | mlops users add NAME --password-stdin`.")
    return line.rstrip("\r\n")


def cmd_list(args) -> int:
    users = room(args).users()
    if args.json:
        print_json(users)
        return 0
    if not users:
        print("No accounts yet: `mlops users bootstrap` creates the first admin.")
        return 0
    for u in users:
        state = "disabled" if u.disabled else ("password" if u.has_password else "single sign-on only")
        print(f"{u.name:<24} {u.role:<9} {state:<20} added {u.created_at:%Y-%m-%d} by {u.created_by}")
    return 0


def cmd_add(args) -> int:
    generated = not (args.password_stdin or args.no_password)
    password = None if args.no_password else (_read_password() if args.password_stdin else None)
    r = room(args)
    if generated:
        from mlops_core.accounts import new_password

        password = new_password()
    user = r.add_user(args.name, args.role, password)
    print(f"Added {user.name} as {user.role}.")
    if generated:
        print(f"Password (shown once): {password}")
    return 0


def cmd_set_role(args) -> int:
    user = room(args).set_role(args.name, args.role)
    print(f"{user.name} is now {user.role}.")
    return 0


def cmd_reset_password(args) -> int:
    given = _read_password() if args.password_stdin else None
    password = room(args).reset_password(args.name, given)
    print(f"Password of {args.name} replaced.")
    if given is None:
        print(f"New password (shown once): {password}")
    return 0


def cmd_disable(args) -> int:
    user = room(args).disable_user(args.name, args.disabled)
    print(f"{user.name} is {'disabled' if user.disabled else 'enabled'}.")
    return 0


def cmd_bootstrap(args) -> int:
    password = room(args).bootstrap_admin()
    if password is None:
        print("Accounts exist already; nothing changed (`mlops users list`).")
        return 0
    print("Created the first admin account.\n"
          f"  user name: admin\n  password:  {password}\n"
          "Log in to the dashboard with these; add people with `mlops users add NAME --role operator`. "
          "Lost it? `mlops users reset-password admin` prints a new one.")
    return 0

"""``python -m mlops_core COMMAND ...``: every action of the dashboard, from a shell or cron.

Each module holds the commands of one job and adds their sub-parsers with
``add_commands(subparsers, common)``: ``models`` (register, models, status, versions),
``ingest`` (ingest, validate), ``monitor`` (performance, drift, alerts, monitor),
``deploy`` (promote, rollback, compare, abtest), ``retrain`` (retrain, policy),
``records`` (runs, audit), ``demo``, ``serve`` (serve, score, export, deployment, spool).
Exit codes: 0 ok; 1 anomalies found / unexpected error; 2 invalid input or not found;
3 conflict (e.g. already running); 4 database busy; 5 integrity check failed (an artifact
that is missing, changed or does not load: promote, rollback, ``retrain --wait``);
6 permission denied. ``retrain --wait`` exits with the code of the error that failed the job.
Errors are one line on stderr, never a traceback (set ``MLOPS_DEBUG=1`` to see one).
"""
from __future__ import annotations

import argparse
import os
import sys

from mlops_core.errors import MlopsError


def common_parser() -> argparse.ArgumentParser:
    """Options every command takes."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--db", help="database file (default: $MLOPS_DB, else ./mlops.duckdb)")
    return p


def room(args, *, actor: str | None = None):
    """The control room of ``--db``, acting as the local identity (or ``actor`` when given)."""
    from mlops_core.access import Identity
    from mlops_core.room import ControlRoom, local_identity

    me = local_identity()
    if actor:
        me = Identity(actor, me.role)
    return ControlRoom(args.db, identity=me)


def build_parser() -> argparse.ArgumentParser:
    from mlops_core.cli import demo, deploy, ingest, models, monitor, records, retrain, serve

    parser = argparse.ArgumentParser(
        prog="mlops", description="MLOps control room: log, monitor, decide and act on deployed models."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    common = common_parser()
    for module in (models, ingest, demo, monitor, deploy, retrain, records, serve):
        module.add_commands(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        return int(code or 0)
    except MlopsError as exc:
        if os.environ.get("MLOPS_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: a message, not a traceback
        if os.environ.get("MLOPS_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set MLOPS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1

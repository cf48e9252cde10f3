"""``python -m mlops_core COMMAND ...``: every action of the dashboard, from a shell or cron.

Each module holds the commands of one job and adds their sub-parsers with
``add_commands(subparsers, common)``: ``models`` (register, models, status, versions),
``ingest`` (ingest, validate), ``monitor`` (performance, drift, alerts, monitor),
``deploy`` (promote, rollback, compare, abtest), ``retrain`` (retrain, policy),
``records`` (runs, audit), ``features`` (the feature store: ``features define|entity|view|list|ingest|
training-set|materialize|get|freshness``), ``users`` (accounts), ``backup`` (backup, restore, verify-backup),
``serve`` (serve, score, export, deployment, spool), ``demo``.

Errors are one line on stderr, never a traceback (set ``MLOPS_DEBUG=1`` to see one); the
exit code says what kind (``EXIT_CODES_HELP``, also printed by ``mlops --help``).
"""
from __future__ import annotations

import argparse
import os
import sys

from mlops_core.errors import MlopsError, is_storage_failure, storage_error

EXIT_CODES_HELP = """exit codes:
  0    ok
  1    anomalies found (validate) or an unexpected error
  2    invalid input or not found (a refused batch writes nothing)
  3    conflict (e.g. a retrain already running, promoting a rejected version without --force)
  4    database busy (another process held it past MLOPS_LOCK_TIMEOUT)
  5    integrity check failed (an artifact or backup file that is missing, changed or does not load)
  6    permission denied (the acting identity's role) or login refused
  7    disk full (what was half-written is removed)
  8    the database or its folder is read-only here (read commands still work)
  141  the reader of the output went away (e.g. `mlops runs | head`); nothing is printed
retrain --wait exits with the code of the error that failed the job."""


def common_parser() -> argparse.ArgumentParser:
    """Options every command takes."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--db", help="database: a DuckDB file or a postgresql:// URL (default: $MLOPS_METADATA_URL, "
                                "$MLOPS_DB, else ./mlops.duckdb)")
    return p


def parse_settings(items: list[str]) -> dict:
    """``--set PARAM=VALUE`` options as a dict; a VALUE that reads as JSON (0.05, 60, true, null) becomes that
    value, anything else stays text. Raises InvalidInputError for an item without ``=``."""
    import json

    from mlops_core.errors import InvalidInputError

    out = {}
    for item in items:
        if "=" not in item:
            raise InvalidInputError(f"--set takes PARAM=VALUE, e.g. learning_rate=0.05; got {item!r}.")
        key, text = (part.strip() for part in item.split("=", 1))
        if not key:
            raise InvalidInputError(f"--set needs a parameter name before '=', e.g. max_iter=60; got {item!r}.")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


def room(args, *, actor: str | None = None):
    """The control room of ``--db``, acting as the OS user with the role of their account (admin when they
    have none); ``actor`` (``--actor``) acts under another name, for admins only."""
    from mlops_core.room import ControlRoom, local_identity_at

    return ControlRoom(args.db, identity=local_identity_at(args.db, actor))


def build_parser() -> argparse.ArgumentParser:
    from mlops_core.cli import backup, demo, deploy, features, ingest, models, monitor, records, retrain, serve, users

    parser = argparse.ArgumentParser(
        prog="mlops", description="MLOps control room: log, monitor, decide and act on deployed models.",
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    common = common_parser()
    for module in (models, ingest, features, demo, monitor, deploy, retrain, records, serve, users, backup):
        module.add_commands(sub, common)
    return parser


#: Exit code when the reader of our output went away (``mlops runs | head``): 128 + SIGPIPE, as a shell reports it.
BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()
        return int(code or 0)
    except BrokenPipeError:
        return _quiet_exit()
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
        if is_storage_failure(exc):
            known = storage_error(exc, f"running {args.command}")
            print(f"error: {known}", file=sys.stderr)
            return known.exit_code
        print(f"error: unexpected {type(exc).__name__}: {exc} (set MLOPS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def _quiet_exit() -> int:
    """The reader of stdout is gone: say nothing more (Python would complain when it flushes at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return BROKEN_PIPE

"""``python -m mlops_core COMMAND ...``: every action of the dashboard, from a shell or cron.

Each domain keeps its commands in its own module (``foundation``, ``monitoring``,
``operations``), which adds sub-parsers with ``add_commands(subparsers, common)``.
Exit codes: 0 ok; 1 anomalies found / unexpected error; 2 invalid input or not found;
3 conflict (e.g. already running); 4 database busy; 5 integrity check failed.
Errors are one line on stderr, never a traceback (set ``MLOPS_DEBUG=1`` to see one).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from datetime import date, datetime

from mlops_core.errors import MlopsError


def common_parser() -> argparse.ArgumentParser:
    """Options every command takes."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--db", help="database file (default: $MLOPS_DB, else ./mlops.duckdb)")
    return p


def _json_default(o):
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(o)
    return str(o)


def _sanitize(o):
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _sanitize(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_sanitize(v) for v in o]
    return o


def print_json(obj) -> None:
    """Print ``obj`` as JSON (datetimes as ISO 8601, NaN/inf as null)."""
    text = json.dumps(obj, default=_json_default)
    print(json.dumps(_sanitize(json.loads(text)), indent=2))


def frame_records(df) -> list[dict]:
    """A DataFrame as JSON-ready records (timestamps ISO 8601, NaN as None)."""
    import pandas as pd

    out = []
    for rec in df.to_dict(orient="records"):
        clean = {}
        for k, v in rec.items():
            if isinstance(v, pd.Timestamp):
                v = None if pd.isna(v) else v.isoformat()
            elif v is pd.NaT:
                v = None
            elif isinstance(v, float) and not math.isfinite(v):
                v = None
            elif hasattr(v, "item"):
                v = v.item()
            clean[k] = v
        out.append(clean)
    return out


def build_parser() -> argparse.ArgumentParser:
    from mlops_core.cli import ingest as data, demo, models as foundation, monitor as monitoring, operate as operations

    parser = argparse.ArgumentParser(
        prog="python -m mlops_core", description="MLOps control room: log, monitor, decide and act on deployed models."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    common = common_parser()
    for module in (foundation, data, demo, monitoring, operations):
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

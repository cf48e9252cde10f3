"""How the CLI prints: JSON documents and frames as records."""
from __future__ import annotations

import json

from mlops_core.entities import jsonable


def print_json(obj) -> None:
    """Print ``obj`` as JSON (records and dicts recursively, datetimes as ISO 8601, NaN/inf as null)."""
    print(json.dumps(jsonable(obj), indent=2))


def frame_records(df) -> list[dict]:
    """A DataFrame as JSON-ready records (timestamps ISO 8601, NaN as None)."""
    return jsonable(df.to_dict(orient="records"))


def promotion_text(model: str, promotion, *, what: str = "") -> str:
    """``Promoted MODEL vN<what> to production (was vM)``: how every command that promotes begins its report
    (``promotion``: an ``entities.Promotion``); the caller ends the sentence."""
    was = f"v{promotion.from_version}" if promotion.from_version is not None else "none"
    return f"Promoted {model} v{promotion.to_version}{what} to production (was {was})"


def add_format_options(p) -> None:
    """``--json`` and ``--csv`` (mutually exclusive) for a command that lists records."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="print JSON")
    g.add_argument("--csv", action="store_true",
                   help="print CSV, safe to open in a spreadsheet (text that a spreadsheet would run as a formula "
                        "gets a leading apostrophe)")


def print_csv(df) -> None:
    """Print a frame as CSV with every text cell neutralized (``mlops_core.exports``)."""
    import sys

    from mlops_core.exports import safe_csv

    sys.stdout.write(safe_csv(df))

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

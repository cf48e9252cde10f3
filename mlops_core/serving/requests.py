"""Prediction requests: JSON records checked against the model's schema, field by field.

A request body is one record (a JSON object) or a list of them. A record holds every feature of
the model (``null`` for a missing value, which the model's imputers fill as in training), and
optionally ``request_id`` (default: a new random id; it must be unique, since labels are joined to
predictions by it) and the deployment's sticky key field. Other fields are ignored.

A numeric feature takes a JSON number (``true``/``false`` and non-finite values are refused); a
categorical feature takes a string (a number or boolean is taken as its text, as ``ingest`` reads a
CSV). Anything else is a ``RecordError`` naming the record, the field and the reason, which the
service answers with 422; values outside the training range or categories never seen in training are
served and flagged later by the log's validation reports, as for any ingested batch.
"""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlops_core.entities import ModelInfo

#: At most this many records in one request.
MAX_RECORDS = 1000
MAX_REQUEST_ID = 200


@dataclass(frozen=True)
class FieldError:
    """One reason a record was refused: its position in the request, the field and why."""

    record: int
    field: str
    reason: str


class RecordError(ValueError):
    """Raised when a request's records do not match the model's schema; ``errors`` says where and why."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        first = errors[0]
        super().__init__(f"record {first.record}, field {first.field!r}: {first.reason}")


@dataclass
class Records:
    """Checked records, column by column: ``values`` per feature (None for missing), request ids, sticky keys."""

    values: dict[str, list] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.request_ids)


def new_request_id() -> str:
    return uuid.uuid4().hex


def _numeric(value):
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"must be a number or null, got {type(value).__name__} {value!r}"[:160]
    if isinstance(value, float) and not math.isfinite(value):
        return None, f"must be a finite number, got {value!r}"
    return float(value), None


def _categorical(value):
    if value is None or isinstance(value, str):
        return value, None
    if isinstance(value, bool):
        return str(value), None
    if isinstance(value, (int, float)):
        return str(value), None
    return None, f"must be a string or null, got {type(value).__name__}"


def check_records(info: ModelInfo, payload, *, sticky_key: str | None = None,
                  header_request_id: str | None = None) -> tuple[Records, bool]:
    """Check a decoded request body; return (the records column by column, whether the body was one record).

    Raises RecordError listing every field at fault (at most 50).
    """
    single = isinstance(payload, dict)
    records = [payload] if single else payload
    if not isinstance(records, list):
        raise RecordError([FieldError(0, "(body)", "must be a JSON object (one record) or a list of records")])
    if not records:
        raise RecordError([FieldError(0, "(body)", "the list of records is empty")])
    if len(records) > MAX_RECORDS:
        raise RecordError([FieldError(0, "(body)", f"at most {MAX_RECORDS} records per request; got {len(records)}")])
    errors: list[FieldError] = []
    out = Records({f.name: [] for f in info.features})
    checks = [(f.name, _numeric if f.kind == "numeric" else _categorical) for f in info.features]
    seen: set[str] = set()
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            errors.append(FieldError(i, "(record)", f"must be a JSON object, got {type(rec).__name__}"))
            continue
        for name, check in checks:
            if name not in rec:
                errors.append(FieldError(i, name, "missing (send null for a missing value)"))
                out.values[name].append(None)
                continue
            value, problem = check(rec[name])
            if problem:
                errors.append(FieldError(i, name, problem))
            out.values[name].append(value)
        rid = rec.get("request_id", header_request_id if single else None)
        if rid is None:
            rid = new_request_id()
        elif not isinstance(rid, str) or not rid.strip() or len(rid) > MAX_REQUEST_ID:
            errors.append(FieldError(i, "request_id", f"must be a non-empty string of at most {MAX_REQUEST_ID} "
                                                      "characters"))
            rid = ""
        elif rid in seen:
            errors.append(FieldError(i, "request_id", f"{rid!r} occurs twice in the request; a request id is "
                                                      "logged once"))
        seen.add(rid)
        out.request_ids.append(rid)
        key = rec.get(sticky_key) if sticky_key else None
        out.keys.append(str(key) if key is not None else rid)
        if len(errors) >= 50:
            break
    if errors:
        raise RecordError(errors)
    return out, single


def frame_of(info: ModelInfo, values: dict[str, list]) -> pd.DataFrame:
    """The records' features as the frame a model of this schema was fitted on: float64 numeric columns,
    object columns of strings with NaN for a missing category (``data.schema.coerce_features``' form)."""
    cols = {}
    for f in info.features:
        vals = values[f.name]
        if f.kind == "numeric":
            cols[f.name] = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)
        else:
            # an object Series, not a bare array: pandas would make an Arrow string column of it, which
            # scikit-learn's encoders read row by row (several times slower)
            cols[f.name] = pd.Series(np.array([np.nan if v is None else v for v in vals], dtype=object),
                                     dtype=object)
    return pd.DataFrame(cols)


def concat_values(info: ModelInfo, parts: list[dict[str, list]]) -> dict[str, list]:
    """The values of several requests' records, one list per feature, in order."""
    if len(parts) == 1:
        return parts[0]
    return {f.name: [v for p in parts for v in p[f.name]] for f in info.features}

"""SQL for stored reference distributions (``drift_references``, ``reference_stats``, ``reference_bins``)."""
from __future__ import annotations

import json
import math
from datetime import datetime

import duckdb
import pyarrow as pa

from mlops_core.clock import utcnow
from mlops_core.entities import Bin, FeatureReference
from mlops_core.errors import NotFoundError


def save_reference(
    con: duckdb.DuckDBPyConnection,
    model: str,
    features: list[FeatureReference],
    *,
    kind: str = "training",
    version: int | None = None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    rows: int,
) -> int:
    """Store a summarised reference and return its id. Call inside the caller's transaction."""
    ref_id = con.execute(
        "INSERT INTO drift_references (model, kind, version, window_start, window_end, rows, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [model, kind, version, window_start, window_end, rows, utcnow()],
    ).fetchone()[0]
    def num(x):  # NaN is stored as NULL, as everywhere else
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

    stats = pa.table({
        "reference_id": pa.array([ref_id] * len(features), pa.int64()),
        "feature": pa.array([f.feature for f in features], pa.string()),
        "kind": pa.array([f.kind for f in features], pa.string()),
        "n": pa.array([f.n for f in features], pa.int64()),
        "null_count": pa.array([f.null_count for f in features], pa.int64()),
        **{k: pa.array([num(getattr(f, k)) for f in features], pa.float64()) for k in ("mean", "std", "min", "max")},
        "quantiles": pa.array([json.dumps(f.quantiles) if f.quantiles else None for f in features], pa.string()),
        "mad": pa.array([num(f.mad) for f in features], pa.float64()),
    })
    rows = [(f.feature, b) for f in features for b in f.bins]
    bins = pa.table({
        "reference_id": pa.array([ref_id] * len(rows), pa.int64()),
        "feature": pa.array([f for f, _ in rows], pa.string()),
        "bin": pa.array([b.bin for _, b in rows], pa.int32()),
        "lower": pa.array([num(b.lower) for _, b in rows], pa.float64()),
        "upper": pa.array([num(b.upper) for _, b in rows], pa.float64()),
        "category": pa.array([b.category for _, b in rows], pa.string()),
        "count": pa.array([b.count for _, b in rows], pa.int64()),
    })
    cols = ", ".join(stats.column_names)
    con.register("_ref_stats", stats)
    con.register("_ref_bins", bins)
    try:
        con.execute(f"INSERT INTO reference_stats ({cols}) SELECT {cols} FROM _ref_stats")
        con.execute('INSERT INTO reference_bins SELECT * FROM _ref_bins')
    finally:
        con.unregister("_ref_stats")
        con.unregister("_ref_bins")
    return int(ref_id)


def latest_training_reference_id(con: duckdb.DuckDBPyConnection, model: str, version: int) -> int:
    """Return the id of the newest training reference of ``model`` version ``version``; raise NotFoundError."""
    row = con.execute(
        "SELECT max(id) FROM drift_references WHERE model = ? AND kind = 'training' AND version = ?",
        [model, version],
    ).fetchone()
    if row[0] is None:
        raise NotFoundError(f"No training reference stored for model {model!r} version {version}.", model=model, version=version)
    return int(row[0])


def load_reference(con: duckdb.DuckDBPyConnection, reference_id: int) -> list[FeatureReference]:
    """Return the features of a stored reference, with their bins in order; raise NotFoundError."""
    stats = con.execute(
        "SELECT feature, kind, n, null_count, mean, std, min, max, quantiles, mad FROM reference_stats "
        "WHERE reference_id = ? ORDER BY feature",
        [reference_id],
    ).fetchall()
    if not stats:
        raise NotFoundError(f"No stored reference with id {reference_id}.", reference_id=reference_id)
    bins = con.execute(
        'SELECT feature, bin, lower, upper, category, "count" FROM reference_bins WHERE reference_id = ? ORDER BY feature, bin',
        [reference_id],
    ).fetchall()
    by_feature: dict[str, list[Bin]] = {}
    for feature, b, lower, upper, category, count in bins:
        by_feature.setdefault(feature, []).append(Bin(bin=b, count=int(count), lower=lower, upper=upper, category=category))
    out = []
    for feature, kind, n, nulls, mean, std, mn, mx, q, dev in stats:
        out.append(
            FeatureReference(
                feature=feature, kind=kind, n=int(n), null_count=int(nulls), mean=mean, std=std, min=mn, max=mx,
                quantiles=json.loads(q) if q else [], bins=by_feature.get(feature, []), mad=dev,
            )
        )
    return out


def newest_reference_id(con: duckdb.DuckDBPyConnection, model: str) -> int | None:
    """The id of the newest stored reference of ``model`` of any kind, or None."""
    row = con.execute("SELECT max(id) FROM drift_references WHERE model = ?", [model]).fetchone()
    return None if row[0] is None else int(row[0])


def feature_range(con: duckdb.DuckDBPyConnection, reference_id: int, feature: str) -> tuple[float, float] | None:
    """(min, max) of one numeric feature of a stored reference (e.g. ``__target__``), or None."""
    row = con.execute("SELECT min, max FROM reference_stats WHERE reference_id = ? AND feature = ? AND kind = 'numeric'",
                      [reference_id, feature]).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return None
    return float(row[0]), float(row[1])

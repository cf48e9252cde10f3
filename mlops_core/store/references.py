"""SQL for stored reference distributions (``drift_references``, ``reference_stats``, ``reference_bins``)."""
from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pandas as pd

from ..reference import Bin, FeatureReference
from ..errors import NotFoundError
from .clock import utcnow


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
    stats = pd.DataFrame(
        [
            {
                "reference_id": ref_id,
                "feature": f.feature,
                "kind": f.kind,
                "n": f.n,
                "null_count": f.null_count,
                "mean": f.mean,
                "std": f.std,
                "min": f.min,
                "max": f.max,
                "quantiles": json.dumps(f.quantiles) if f.quantiles else None,
            }
            for f in features
        ],
        columns=["reference_id", "feature", "kind", "n", "null_count", "mean", "std", "min", "max", "quantiles"],
    )
    bins = pd.DataFrame(
        [
            {"reference_id": ref_id, "feature": f.feature, "bin": b.bin, "lower": b.lower, "upper": b.upper,
             "category": b.category, "count": b.count}
            for f in features
            for b in f.bins
        ],
        columns=["reference_id", "feature", "bin", "lower", "upper", "category", "count"],
    )
    bins = bins.astype({"lower": "float64", "upper": "float64", "category": "object"})
    stats = stats.astype({"mean": "float64", "std": "float64", "min": "float64", "max": "float64", "quantiles": "object"})
    stat_cols = "reference_id, feature, kind, n, null_count, mean, std, min, max, quantiles"
    if _has_mad(con):
        stats["mad"] = pd.Series([f.mad for f in features], dtype="float64")
        stat_cols += ", mad"
    con.register("_ref_stats", stats)
    con.register("_ref_bins", bins)
    try:
        con.execute(f"INSERT INTO reference_stats ({stat_cols}) SELECT {stat_cols} FROM _ref_stats")
        con.execute('INSERT INTO reference_bins SELECT * FROM _ref_bins')
    finally:
        con.unregister("_ref_stats")
        con.unregister("_ref_bins")
    return int(ref_id)


def _has_mad(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``reference_stats`` has the ``mad`` column (migration 030)."""
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'reference_stats' AND column_name = 'mad'"
    ).fetchall()[0][0])


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
    mad = "mad" if _has_mad(con) else "NULL"
    stats = con.execute(
        f"SELECT feature, kind, n, null_count, mean, std, min, max, quantiles, {mad} FROM reference_stats "
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

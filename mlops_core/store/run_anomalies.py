"""SQL for the anomalies found in pipeline runs (``run_anomalies``)."""
from __future__ import annotations

import duckdb

from mlops_core.entities import RunAnomaly

_COLUMNS = ("run_id", "model", "run_kind", "series", "statistic", "value", "median", "robust_z", "threshold",
            "history", "message", "alert_id", "detected_at")


def insert(con: duckdb.DuckDBPyConnection, found: list[RunAnomaly]) -> None:
    """Store the findings of one run (call in the transaction that marks it succeeded)."""
    if not found:
        return
    con.executemany(
        f"INSERT INTO run_anomalies ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})",
        [[getattr(a, c) for c in _COLUMNS] for a in found])


def find(con: duckdb.DuckDBPyConnection, model: str | None = None,
         run_ids: list[str] | None = None) -> list[RunAnomaly]:
    """Stored findings (of one model, and/or of the given runs), newest first, then by statistic."""
    sql, params = f"SELECT {', '.join(_COLUMNS)} FROM run_anomalies WHERE 1 = 1", []
    if model is not None:
        sql += " AND model = ?"
        params.append(model)
    if run_ids is not None:
        if not run_ids:
            return []
        sql += f" AND run_id IN ({', '.join('?' for _ in run_ids)})"
        params.extend(run_ids)
    rows = con.execute(sql + " ORDER BY detected_at DESC, run_id, statistic", params).fetchall()
    return [RunAnomaly(**dict(zip(_COLUMNS, r, strict=True))) for r in rows]

"""SQL of performance estimation (CBPE): calibrations, the per-window bin sums, stored estimates.

``bin_sums`` reads the log once: every scored prediction is put in the bin of its version's
calibration map (the map's breakpoints are stored as data, ``estimation_breakpoints``; the
query joins the log to a small lookup table of (version, grid cell, bin) built from them, an
equality join) and counted per (window, version, bin, predicted class) with the sum and the sum
of squares of its scores. Portable SQL only (``date_trunc``, ``CASE WHEN``, ``floor``, ``CAST``,
``count``, ``sum``, ``isnan``), so the same query runs on every log engine (``store.engines``: DuckDB as
written, Spark SQL through sqlglot, the lookup table sent as a small DataFrame that Spark broadcasts).
Tables: ``estimation_calibrations``, ``estimation_breakpoints``, ``estimation_blocks``,
``performance_estimates`` (migration 033).
"""
from __future__ import annotations

import json
import math
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from mlops_core.clock import utcnow
from mlops_core.entities import CalibrationRecord, ReferencePerformance, ScoreCalibration, jsonable
from mlops_core.errors import NotFoundError
from mlops_core.store import engines
from mlops_core.store.conditions import check_window, in_list, time_range
from mlops_core.store.logs import LogView

ESTIMATE_COLUMNS = ["model", "version", "window_size", "window_start", "metric", "calibration_id", "estimate",
                    "band_low", "band_high", "band_level", "std_error", "n", "n_labelled", "realized", "estimated_at"]
BIN_SUM_COLUMNS = ["window_start", "version", "bin", "positive", "n", "score_sum", "score_sq_sum"]


# --- calibrations -------------------------------------------------------------------------------


def save_calibration(con: duckdb.DuckDBPyConnection, record: CalibrationRecord) -> int:
    """Store a calibration (header, breakpoints, pools) and return its id. Call inside the caller's transaction."""
    c = record.calibration
    cal_id = int(con.execute(
        "INSERT INTO estimation_calibrations (model, version, source, window_start, window_end, rows, positives, "
        "applied, ece_before, ece_after, grid, reference_metrics, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [record.model, int(record.version), record.source, record.window_start, record.window_end, int(c.rows),
         int(c.positives), bool(c.applied), _num(c.ece_before), _num(c.ece_after), int(c.grid),
         json.dumps(jsonable(c.reference)), record.created_at or utcnow()]).fetchone()[0])
    identity = np.asarray(c.block_low) < 0
    knots = pd.DataFrame({
        "calibration_id": np.full(len(c.cells), cal_id, dtype=np.int64),
        "knot": np.arange(len(c.cells), dtype=np.int32),
        "cell": np.asarray(c.cells, dtype=np.int32),
        "value": np.asarray(c.values, dtype=float),
        "block_low": pd.Series(np.asarray(c.block_low), dtype="Int32").mask(identity),
        "block_high": pd.Series(np.asarray(c.block_high), dtype="Int32").mask(identity),
        "weight": pd.Series(np.asarray(c.weights, dtype=float)).where(~identity),
    })
    blocks = pd.DataFrame({
        "calibration_id": np.full(len(c.block_means), cal_id, dtype=np.int64),
        "block": np.arange(len(c.block_means), dtype=np.int32),
        "mean": np.asarray(c.block_means, dtype=float),
        "rows": np.asarray(c.block_rows, dtype=np.int64),
    })
    con.register("_est_knots", knots)
    con.register("_est_blocks", blocks)
    try:
        con.execute("INSERT INTO estimation_breakpoints (calibration_id, knot, cell, value, block_low, block_high, "
                    "weight) SELECT calibration_id, knot, cell, value, block_low, block_high, weight FROM _est_knots")
        con.execute('INSERT INTO estimation_blocks (calibration_id, block, "mean", "rows") '
                    'SELECT calibration_id, block, "mean", "rows" FROM _est_blocks')
    finally:
        con.unregister("_est_knots")
        con.unregister("_est_blocks")
    return cal_id


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


_HEADER = ("id, model, version, source, window_start, window_end, rows, positives, applied, ece_before, ece_after, "
           "grid, reference_metrics, created_at")


def _record(con, row) -> CalibrationRecord:
    (cal_id, model, version, source, w_start, w_end, rows, positives, applied, ece_before, ece_after, grid,
     reference, created) = row
    knots = con.execute("SELECT cell, value, block_low, block_high, weight FROM estimation_breakpoints "
                        "WHERE calibration_id = ? ORDER BY knot", [cal_id]).fetchnumpy()
    blocks = con.execute('SELECT "mean", "rows" FROM estimation_blocks WHERE calibration_id = ? ORDER BY block',
                         [cal_id]).fetchnumpy()

    def ints(a):
        return np.asarray(pd.array(a, dtype="Int64").fillna(-1), dtype=np.int64)

    calibration = ScoreCalibration(
        grid=int(grid), cells=np.asarray(knots["cell"], dtype=np.int64), values=np.asarray(knots["value"], float),
        block_low=ints(knots["block_low"]), block_high=ints(knots["block_high"]),
        weights=np.nan_to_num(np.asarray(pd.array(knots["weight"], dtype="Float64").fillna(0.0), dtype=float)),
        block_means=np.asarray(blocks["mean"], dtype=float), block_rows=np.asarray(blocks["rows"], dtype=np.int64),
        applied=bool(applied), ece_before=ece_before, ece_after=ece_after, rows=int(rows), positives=int(positives),
        reference=ReferencePerformance(**json.loads(reference)) if reference else ReferencePerformance())
    return CalibrationRecord(id=int(cal_id), model=model, version=int(version), source=source, calibration=calibration,
                             window_start=w_start, window_end=w_end, created_at=created)


def latest_calibration(con: duckdb.DuckDBPyConnection, model: str, version: int) -> CalibrationRecord | None:
    """The newest stored calibration of a model version, or None."""
    row = con.execute(f"SELECT {_HEADER} FROM estimation_calibrations WHERE model = ? AND version = ? "
                      "ORDER BY created_at DESC, id DESC LIMIT 1", [model, int(version)]).fetchone()
    return _record(con, row) if row else None


def get_calibration(con: duckdb.DuckDBPyConnection, calibration_id: int) -> CalibrationRecord:
    """One stored calibration; raise NotFoundError."""
    row = con.execute(f"SELECT {_HEADER} FROM estimation_calibrations WHERE id = ?", [int(calibration_id)]).fetchone()
    if row is None:
        raise NotFoundError(f"No calibration with id {calibration_id}.", calibration_id=calibration_id)
    return _record(con, row)


def calibrations(con: duckdb.DuckDBPyConnection, model: str) -> pd.DataFrame:
    """Stored calibrations of a model, newest first (header columns only)."""
    return con.execute(f"SELECT {_HEADER} FROM estimation_calibrations WHERE model = ? "
                       "ORDER BY created_at DESC, id DESC", [model]).df()


# --- the log ----------------------------------------------------------------------------------------


def reference_rows(con, log: LogView, version: int, start: datetime | None,
                   end: datetime | None) -> pd.DataFrame:
    """Labelled, scored predictions of ``version`` in [start, end): score, positive (label is the positive
    class), predicted_positive. When a label was sent twice the one that arrived last counts. ``con``: a log
    engine (or a DuckDB cursor of ``connection.engine``)."""
    eng = engines.of(con)
    rng, params = time_range("l.ts", start, end)
    sql = f"""
        SELECT l.score AS score, CASE WHEN lb.label = ? THEN 1 ELSE 0 END AS positive,
               CASE WHEN l.prediction = ? THEN 1 ELSE 0 END AS predicted_positive
        FROM {eng.predictions(log)} l
        JOIN (SELECT request_id, arg_max(label, label_ts) AS label FROM {eng.labels(log)}
              WHERE label IS NOT NULL GROUP BY request_id) lb ON lb.request_id = l.request_id
        WHERE l.version = ? AND l.score IS NOT NULL AND NOT isnan(l.score) AND l.prediction IS NOT NULL {rng}
    """
    pos = log.info.positive_class
    return eng.frame(sql, [pos, pos, int(version), *params])


def logged_versions(con, log: LogView, start: datetime | None, end: datetime | None) -> list[int]:
    """The versions with logged predictions in [start, end), ascending."""
    eng = engines.of(con)
    rng, params = time_range("ts", start, end)
    rows = eng.rows(f"SELECT DISTINCT version FROM {eng.predictions(log)} WHERE 1 = 1 {rng} ORDER BY 1", params)
    return [int(r[0]) for r in rows]


def bin_sums(con, log: LogView, window: str, grid: int,
             cells: pd.DataFrame, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
    """Per (window, version, bin, predicted class) of the scored predictions in [start, end): n, Σ score, Σ score².

    ``cells``: the lookup table (version, cell, bin) for the versions to count, cells -1..``grid``
    (see ``monitoring.estimation.cell_bins``); a version missing from it is not counted. A score's cell
    is -1 below 0, ``grid`` from 1 on, else floor(score·grid). The join is on one integer key,
    ``version·(grid + 2) + cell + 1`` (half the time of joining on the pair), and the bin and predicted
    class are grouped as one key, ``2·bin + class``. Columns: window_start,
    version, bin, positive (1: predicted the positive class), n, score_sum, score_sq_sum.
    """
    check_window(window)
    eng = engines.of(con)
    rng, params = time_range("l.ts", start, end)
    versions = sorted({int(v) for v in cells["version"].unique()})
    ver, vparams = in_list("l.version", versions)
    g = int(grid)
    sql = f"""
        SELECT date_trunc('{window}', l.ts) AS window_start, l.version AS version,
               m.bin * 2 + CASE WHEN l.prediction = ? THEN 1 ELSE 0 END AS bin_class,
               count(*) AS n, sum(l.score) AS score_sum, sum(l.score * l.score) AS score_sq_sum
        FROM {eng.predictions(log)} l
        JOIN _estimation_cells m ON m.cell_key = CAST(l.version AS BIGINT) * {g + 2} + 1 +
             CASE WHEN l.score < 0 THEN -1 WHEN l.score >= 1 THEN {g} ELSE CAST(floor(l.score * {g}) AS BIGINT) END
        WHERE l.score IS NOT NULL AND NOT isnan(l.score) AND l.prediction IS NOT NULL {rng} {ver}
        GROUP BY 1, 2, 3
    """
    lookup = pd.DataFrame({
        "cell_key": cells["version"].to_numpy(np.int64) * (g + 2) + 1 + cells["cell"].to_numpy(np.int64),
        "bin": cells["bin"].to_numpy(np.int32)})
    with eng.lookup("_estimation_cells", lookup):
        out = eng.frame(sql, [log.info.positive_class, *params, *vparams])
    if not len(out):
        return pd.DataFrame(columns=BIN_SUM_COLUMNS)
    key = out["bin_class"].to_numpy(np.int64)
    return out.assign(bin=key // 2, positive=key % 2)[BIN_SUM_COLUMNS]


# --- stored estimates -----------------------------------------------------------------------------


def replace_estimates(con: duckdb.DuckDBPyConnection, model: str, window: str, rows: pd.DataFrame) -> int:
    """Replace the stored estimates of the (version, window, metric) in ``rows``; return rows written.

    ``rows``: columns version, window_start, metric, calibration_id, estimate, band_low, band_high,
    band_level, std_error, n, n_labelled, realized. Call inside the caller's transaction.
    """
    check_window(window)
    if rows.empty:
        return 0
    frame = rows.assign(model=model, window_size=window, estimated_at=utcnow())[ESTIMATE_COLUMNS]
    frame = frame.astype({"version": "int32", "calibration_id": "int64", "n": "int64", "n_labelled": "int64",
                          "estimate": "float64", "band_low": "float64", "band_high": "float64",
                          "band_level": "float64", "std_error": "float64", "realized": "float64"})
    con.register("_estimate_rows", frame)
    try:
        con.execute(
            "DELETE FROM performance_estimates WHERE model = ? AND window_size = ? AND EXISTS ("
            "SELECT 1 FROM _estimate_rows r WHERE r.version = performance_estimates.version "
            "AND r.window_start = performance_estimates.window_start AND r.metric = performance_estimates.metric)",
            [model, window])
        cols = ", ".join(ESTIMATE_COLUMNS)
        con.execute(f"INSERT INTO performance_estimates ({cols}) SELECT {cols} FROM _estimate_rows")
    finally:
        con.unregister("_estimate_rows")
    return len(frame)


def stored_estimates(con: duckdb.DuckDBPyConnection, model: str, window: str, start: datetime | None = None,
                     end: datetime | None = None, versions=None) -> pd.DataFrame:
    """Stored estimates of ``model`` for this window size in [start, end), oldest first (columns ESTIMATE_COLUMNS)."""
    check_window(window)
    rng, p1 = time_range("window_start", start, end)
    ver, p2 = in_list("version", [int(v) for v in versions or []])
    return con.execute(
        f"SELECT {', '.join(ESTIMATE_COLUMNS)} FROM performance_estimates WHERE model = ? AND window_size = ? "
        f"{rng} {ver} ORDER BY window_start, version, metric", [model, window, *p1, *p2]).df()

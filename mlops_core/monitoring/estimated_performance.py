"""Estimated performance per window and version while labels are missing (CBPE), beside the realized values.

A binary classifier's recent windows have few or no labels (they arrive days late, some
never). Each version's positive-class score is calibrated once on labelled reference rows
(its holdout, at registration; or a labelled window of its log), and every window's accuracy,
precision, recall, F1 and ROC AUC are estimated from its scores and predictions alone, with a
band for the value the metric will take once the window is labelled (the statistics:
``monitoring.estimation``; the SQL: ``store.estimation``). Where labels exist the realized value
(``performance.over_time``) stands beside the estimate, and stored estimates can be compared
with the labels that arrived after them (``stored``).

Regression models get no estimate: CBPE needs class probabilities, and estimating a regressor's
error without labels (direct loss estimation) is not implemented.
"""
from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from mlops_core.entities import CalibrationRecord, ModelInfo
from mlops_core.errors import InvalidInputError, NotFoundError
from mlops_core.monitoring import estimation, performance
from mlops_core.store import Store, engines, logs, utcnow
from mlops_core.store import estimation as estore
from mlops_core.store import models as mstore
from mlops_core.store.conditions import check_window

#: Columns of ``over_time`` (one row per window, version and metric).
FRAME_COLUMNS = ["window_start", "version", "metric", "estimate", "band_low", "band_high", "std_error", "realized",
                 "n", "n_labelled", "label_coverage", "calibration_id", "auc_bound"]
#: Columns of ``stored``: the stored estimate and the labels that arrived since.
STORED_COLUMNS = ["window_start", "version", "metric", "estimate", "band_low", "band_high", "band_level", "n",
                  "n_labelled_then", "realized", "n_labelled", "error", "in_band", "estimated_at", "calibration_id"]


def check_estimable(info: ModelInfo) -> None:
    """Raise InvalidInputError unless ``info`` is a binary classifier (the only kind CBPE estimates)."""
    if info.task == "regression":
        raise InvalidInputError(
            f"No estimate is available for {info.name!r}: it is a regression model, and estimating performance "
            "without labels is implemented for binary classifiers only (confidence-based estimation needs class "
            f"probabilities). Its realized error metrics need labels: `mlops performance --model {info.name}`.",
            model=info.name)
    if info.positive_class is None:
        raise InvalidInputError(
            f"No estimate is available for {info.name!r}: it is a multiclass classifier, and estimating performance "
            "without labels is implemented for binary classifiers only (those that log the positive class's score). "
            f"Its realized metrics need labels: `mlops performance --model {info.name}`.", model=info.name)


def fit_window_calibration(store: Store, info: ModelInfo, version: int, start: datetime,
                           end: datetime, *, engine: str | None = None) -> CalibrationRecord:
    """A calibration of ``version`` fitted on its labelled, scored predictions in [start, end) (not stored), read
    on the log engine ``engine`` (default duckdb).

    Raises InvalidInputError (not a binary classifier; too few labelled rows in the window).
    """
    check_estimable(info)
    if start is None or end is None or start >= end:
        raise InvalidInputError("A reference window needs a start before its end.", start=start, end=end)
    with store.connect() as con:
        log = logs.view(con, store.logs, info, start, end)
    with engines.open_engine(engine, store) as con:
        rows = estore.reference_rows(con, log, version, start, end)
    if len(rows) < estimation.MIN_REFERENCE_ROWS:
        raise InvalidInputError(
            f"Version {version} of {info.name!r} has {len(rows)} labelled, scored predictions from {start:%Y-%m-%d %H:%M} "
            f"to {end:%Y-%m-%d %H:%M}; calibration needs at least {estimation.MIN_REFERENCE_ROWS}. Choose a longer "
            "reference window whose labels have arrived.", rows=len(rows))
    cal = estimation.fit_calibration(rows["score"].to_numpy(float), rows["positive"].to_numpy(),
                                     rows["predicted_positive"].to_numpy().astype(bool))
    return CalibrationRecord(id=None, model=info.name, version=int(version), source="window", calibration=cal,
                             window_start=start, window_end=end, created_at=utcnow())


def calibrate_window(store: Store, info: ModelInfo, version: int, start: datetime,
                     end: datetime) -> CalibrationRecord:
    """Fit a calibration of ``version`` on a labelled window of its log and store it (it becomes the one in use)."""
    record = fit_window_calibration(store, info, version, start, end)
    with store.transaction() as con:
        record.id = estore.save_calibration(con, record)
    return record


def calibration_of(con: duckdb.DuckDBPyConnection, info: ModelInfo, version: int) -> CalibrationRecord:
    """The calibration in use for ``version`` (the newest stored); raise NotFoundError saying how to make one."""
    check_estimable(info)
    record = estore.latest_calibration(con, info.name, int(version))
    if record is None:
        raise NotFoundError(
            f"Version {version} of {info.name!r} has no calibration for performance estimation (it is made from the "
            "holdout at registration; versions registered before that have none). Fit one on a labelled window of "
            f"its log: `mlops performance --model {info.name} --estimate --version {version} --reference-from DAY "
            "--reference-to DAY`.", model=info.name, version=version)
    return record


def _versions(con, log, start, end, versions, econ) -> list[int]:
    """The versions asked for (each must exist; NotFoundError names the known ones), else those logged in range.
    ``con``: a metadata visit; ``econ``: the log engine."""
    if versions:
        wanted = sorted({int(v) for v in versions})
        for v in wanted:
            mstore.get_version(con, log.info.name, v)
        return wanted
    return estore.logged_versions(econ, log, start, end)


def over_time(store: Store, info: ModelInfo, *, window: str = "day", start: datetime | None = None,
              end: datetime | None = None, versions=None, reference_start: datetime | None = None,
              reference_end: datetime | None = None, level: float = estimation.BAND_LEVEL, realized: bool = True,
              store_estimates: bool = False, engine: str | None = None) -> pd.DataFrame:
    """Estimated metrics per (window, version, metric) in [start, end), oldest first, beside the realized ones.

    Columns (``FRAME_COLUMNS``): window_start, version, metric (accuracy, precision, recall, f1,
    roc_auc), estimate, band_low, band_high (the band at ``level`` for the value once the whole
    window is labelled), std_error, realized (on the labelled rows; NaN without labels), n (scored
    predictions), n_labelled, label_coverage, calibration_id, auc_bound (roc_auc: width of the
    binning error interval). ``versions``: default every version logged in the range. With
    ``reference_start``/``reference_end`` each version is calibrated on that labelled window of its
    log (stored when ``store``), else its stored calibration is used. ``realized=False`` skips the
    labels (n_labelled and realized are then missing). ``store_estimates`` keeps the estimates in
    ``performance_estimates``. The log is scanned on the log engine ``engine`` (``duckdb``, the default, or
    ``spark``). Raises InvalidInputError (not a binary classifier, window, level, reference window, engine),
    NotFoundError (a version without calibration), SparkUnavailableError.
    """
    check_estimable(info)
    check_window(window)
    engine = engines.check_engine(engine)
    estimation.z_of(level)
    if (reference_start is None) != (reference_end is None):
        raise InvalidInputError("Give both ends of the reference window (reference start and reference end).")
    with engines.open_engine(engine, store) as econ:
        return _over_time(store, info, econ, window, start, end, versions, reference_start=reference_start,
                          reference_end=reference_end, level=level, realized=realized,
                          store_estimates=store_estimates, engine=engine)


def _over_time(store: Store, info: ModelInfo, econ, window, start, end, versions, *, reference_start, reference_end,
               level, realized, store_estimates, engine) -> pd.DataFrame:
    with store.connect() as con:
        log = logs.view(con, store.logs, info, start, end)
        wanted = _versions(con, log, start, end, versions, econ)
        if reference_start is None:
            records = {v: calibration_of(con, info, v) for v in wanted}
    if reference_start is not None:
        records = {v: fit_window_calibration(store, info, v, reference_start, reference_end, engine=engine) for v in wanted}
    frames = []
    for grid in sorted({r.calibration.grid for r in records.values()}):
        group = {v: r for v, r in records.items() if r.calibration.grid == grid}
        lookup = []
        for v, r in group.items():
            cells, bins = estimation.cell_bins(r.calibration)
            lookup.append(pd.DataFrame({"version": v, "cell": cells, "bin": bins}))
        if lookup:
            sums = estore.bin_sums(econ, log, window, grid, pd.concat(lookup, ignore_index=True), start, end)
        else:
            sums = pd.DataFrame(columns=estore.BIN_SUM_COLUMNS)
        for v, r in group.items():
            part = sums[sums["version"] == v]
            if part.empty:
                continue
            starts, codes = np.unique(pd.to_datetime(part["window_start"]).to_numpy(), return_inverse=True)
            est = estimation.estimate(estimation.BinSums.from_frame(part, codes), r.calibration, level=level)
            est["window_start"] = pd.to_datetime(starts[est["group"].to_numpy()])
            est["version"] = v
            est["_record"] = id(r)
            frames.append(est.drop(columns="group"))
    est = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[c for c in estimation.ESTIMATE_COLUMNS if c != "group"] + ["window_start", "version", "_record"])
    out = _with_realized(econ, log, est, window, start, end, wanted) if realized else _without_realized(est)
    if store_estimates:  # the window calibrations and the estimates made with them: one transaction
        with store.transaction() as con:
            if reference_start is not None:
                for r in records.values():
                    r.id = estore.save_calibration(con, r)
            out = _typed(out, {id(r): r.id for r in records.values()})
            rows = out[out["estimate"].notna()].assign(band_level=float(level))
            estore.replace_estimates(con, info.name, window, rows.assign(n_labelled=rows["n_labelled"].fillna(0)))
        return out
    return _typed(out, {id(r): r.id for r in records.values()})


def _realized_long(econ, log, window: str, start, end, versions) -> pd.DataFrame:
    perf = performance.over_time(econ, log, window=window, start=start, end=end, versions=versions, auc=True)
    if perf.empty:
        return pd.DataFrame(columns=["window_start", "version", "metric", "realized", "n_labelled", "label_coverage",
                                     "n_all"])
    long = perf.melt(id_vars=["window_start", "version", "n", "n_labelled", "label_coverage"],
                     value_vars=list(estimation.METRICS), var_name="metric", value_name="realized")
    return long.rename(columns={"n": "n_all"})


def _with_realized(econ, log, est: pd.DataFrame, window, start, end, versions) -> pd.DataFrame:
    real = _realized_long(econ, log, window, start, end, versions)
    out = est.merge(real, on=["window_start", "version", "metric"], how="outer")
    out["n"] = out["n"].fillna(0)
    out["n_labelled"] = out["n_labelled"].fillna(0)
    out["label_coverage"] = out["label_coverage"].fillna(0.0)
    return out.drop(columns=["n_all"])


def _without_realized(est: pd.DataFrame) -> pd.DataFrame:
    return est.assign(realized=np.nan, n_labelled=pd.NA, label_coverage=np.nan)


def holdout_calibration(info: ModelInfo, version: int, labels, predictions, scores) -> CalibrationRecord | None:
    """The calibration of a new version fitted on its holdout (labels, predictions and positive-class scores as
    class names and numbers), or None when there is nothing to calibrate: not a binary classifier, no scores,
    non-finite scores, or fewer than ``estimation.MIN_REFERENCE_ROWS`` holdout rows."""
    if info.task != "classification" or info.positive_class is None or scores is None:
        return None
    s = np.asarray(scores, dtype=float)
    if len(s) < estimation.MIN_REFERENCE_ROWS or not np.all(np.isfinite(s)):
        return None
    positive = np.asarray(pd.Series(labels).astype(str)) == info.positive_class
    predicted = np.asarray(pd.Series(predictions).astype(str)) == info.positive_class
    cal = estimation.fit_calibration(s, positive, predicted)
    return CalibrationRecord(id=None, model=info.name, version=int(version), source="holdout", calibration=cal,
                             created_at=utcnow())


def _typed(out: pd.DataFrame, calibration_ids: dict[int, int | None]) -> pd.DataFrame:
    out = out.assign(calibration_id=out["_record"].map(calibration_ids)).drop(columns="_record")
    order = {m: i for i, m in enumerate(estimation.METRICS)}
    out = out.assign(_m=out["metric"].map(order)).sort_values(["window_start", "version", "_m"], kind="stable")
    out = out.drop(columns="_m").reset_index(drop=True)
    typed = pd.DataFrame({
        "window_start": pd.to_datetime(out["window_start"]),
        "version": out["version"].astype("int64"),
        "metric": out["metric"].astype(str),
        **{c: pd.to_numeric(out[c], errors="coerce").astype("float64")
           for c in ("estimate", "band_low", "band_high", "std_error", "realized")},
        "n": out["n"].astype("int64"),
        "n_labelled": out["n_labelled"].astype("Int64"),
        "label_coverage": pd.to_numeric(out["label_coverage"], errors="coerce").astype("float64"),
        "calibration_id": out["calibration_id"].astype("Int64"),
        "auc_bound": pd.to_numeric(out["auc_bound"], errors="coerce").astype("float64"),
    })
    return typed[FRAME_COLUMNS]


def stored(store: Store, info: ModelInfo, *, window: str = "day", start: datetime | None = None,
           end: datetime | None = None, versions=None) -> pd.DataFrame:
    """The stored estimates in [start, end) against the labels present now, oldest first.

    Columns (``STORED_COLUMNS``): the stored estimate and band (with its level), n, n_labelled_then
    (labels when it was made), realized and n_labelled now, error (realized - estimate), in_band
    (whether realized lies in the band; missing without labels), estimated_at, calibration_id.
    """
    check_estimable(info)
    with store.connect() as con:
        rows = estore.stored_estimates(con, info.name, window, start, end, versions)
        log = logs.view(con, store.logs, info, start, end)
    if rows.empty:
        return pd.DataFrame(columns=STORED_COLUMNS)
    rows = rows.rename(columns={"n_labelled": "n_labelled_then", "realized": "realized_then"})
    rows["window_start"] = pd.to_datetime(rows["window_start"])
    with store.engine() as econ:
        real = _realized_long(econ, log, window, start, end, sorted(rows["version"].unique().tolist()))
    real["window_start"] = pd.to_datetime(real["window_start"])
    out = rows.merge(real.drop(columns=["n_all", "label_coverage"]), on=["window_start", "version", "metric"],
                     how="left")
    out["n_labelled"] = out["n_labelled"].fillna(0).astype("int64")
    out["realized"] = pd.to_numeric(out["realized"], errors="coerce").astype("float64")
    out["error"] = out["realized"] - out["estimate"]
    inside = (out["realized"] >= out["band_low"]) & (out["realized"] <= out["band_high"])
    out["in_band"] = pd.array(np.where(out["realized"].notna(), inside, pd.NA), dtype="boolean")
    order = {m: i for i, m in enumerate(estimation.METRICS)}
    out = out.assign(_m=out["metric"].map(order)).sort_values(["window_start", "version", "_m"], kind="stable")
    return out.drop(columns="_m").reset_index(drop=True)[STORED_COLUMNS]


__all__ = [
    "FRAME_COLUMNS",
    "STORED_COLUMNS",
    "calibrate_window",
    "calibration_of",
    "check_estimable",
    "fit_window_calibration",
    "holdout_calibration",
    "over_time",
    "stored",
]

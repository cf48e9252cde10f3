"""Cached reads for the pages: thin ``st.cache_data`` wrappers around ``mlops_core`` calls.

Every reader takes the database path as its first argument so that two databases never
share a cache entry; results are copies (``st.cache_data`` pickles them), so a page may
change what it gets; a running job's state is not cached (the Retrain page reads it live).
``clear()`` empties every cache and is called after each action that changes state
(``ui.actions``). Core modules are imported lazily: scikit-learn alone costs
about a second, and only the retrain and compare paths need it.
"""
from __future__ import annotations

import importlib
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from mlops_core.config import resolve_db_path

#: Seconds a read stays cached: short enough that a cron ingest shows up within a minute.
TTL = 60


class Unavailable(Exception):
    """A core function this view needs is not present in the installed ``mlops_core``."""


_MODULES = {"registry": "mlops_core.lifecycle.registry", "jobs": "mlops_core.lifecycle.jobs",
            "automation": "mlops_core.lifecycle.policies", "performance": "mlops_core.monitoring.performance",
            "drift": "mlops_core.monitoring.drift", "alerts": "mlops_core.monitoring.alerts",
            "validation": "mlops_core.monitoring.validation"}


def core(module: str):
    """Return ``mlops_core.<module>``; raises Unavailable when it cannot be imported."""
    try:
        return importlib.import_module(_MODULES.get(module, f"mlops_core.{module}"))
    except ImportError as exc:
        raise Unavailable(f"mlops_core.{module} is not available in this installation ({exc}).") from exc


def fn(module: str, name: str):
    """Return ``mlops_core.<module>.<name>``; raises Unavailable when it is missing."""
    mod = core(module)
    func = getattr(mod, name, None)
    if func is None:
        raise Unavailable(f"mlops_core.{module}.{name} is not available in this installation.")
    return func


def db_path() -> str:
    """The database the dashboard shows: ``$MLOPS_DB``, else ``./mlops.duckdb``."""
    return str(resolve_db_path(None))


def clear() -> None:
    """Forget every cached read (after promote, rollback, retrain, acknowledge, policy change)."""
    st.cache_data.clear()


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """Turn an inclusive date range into [start 00:00, end+1 00:00) naive-UTC datetimes."""
    return datetime.combine(start, time()), datetime.combine(end + timedelta(days=1), time())


# --- registry -------------------------------------------------------------------------------

@st.cache_data(ttl=TTL, show_spinner=False)
def models(db: str) -> list:
    """ModelInfo of every registered model (empty list when the database does not exist yet)."""
    if not Path(db).exists():
        return []
    return fn("registry", "list_models")(db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def model_info(db: str, model: str):
    return fn("registry", "get_model")(model, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def versions(db: str, model: str) -> list:
    """VersionInfo of every version of ``model``, oldest first."""
    return fn("registry", "list_versions")(model, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def production(db: str, model: str) -> int | None:
    return fn("registry", "production_version")(model, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def deployment_history(db: str, model: str) -> pd.DataFrame:
    return fn("registry", "deployment_history")(model, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def compare(db: str, model: str, version_list: tuple[int, ...]):
    """``registry.compare`` of the versions, on the labelled rows up to the newest prediction (not "now", so an
    old database still compares on its most recent traffic)."""
    end = last_prediction(db, model)
    return fn("registry", "compare")(model, list(version_list), db=db, end=end)


@st.cache_data(ttl=TTL, show_spinner=False)
def runs(db: str, model: str | None) -> pd.DataFrame:
    return fn("registry", "runs")(model, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def audit(db: str, model: str | None) -> pd.DataFrame:
    return fn("registry", "audit_log")(model, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def last_prediction(db: str, model: str) -> datetime | None:
    """Timestamp of the newest logged prediction of ``model`` (None without traffic)."""
    from mlops_core.store import connect
    from mlops_core.store import models as mstore
    from mlops_core.store import predictions as pstore

    with connect(db, create=False) as con:
        return pstore.last_prediction_at(con, mstore.get_model(con, model))


# --- monitoring -----------------------------------------------------------------------------

@st.cache_data(ttl=TTL, show_spinner=False)
def summary(db: str, model: str, days: int = 7) -> dict:
    """``performance.summary`` over the last ``days`` up to the newest prediction (not "now": an idle model's last
    week of traffic is still its last week), plus ``drift_share`` / ``drift_share_previous``: the share of drifted
    features in the newest stored window and in the window ``days`` earlier."""
    last = last_prediction(db, model)
    out = dict(fn("performance", "summary")(model, days=days, now=last, db=db))
    out["drift_share"] = out["drift_share_previous"] = None
    if last is not None:
        share = fn("drift", "share_over_time")(model, window="day", start=last - timedelta(days=days + 1), end=last,
                                               db=db)
        if len(share):
            share = share.sort_values("window_start")
            out["drift_share"] = float(share["share"].iloc[-1])
            earlier = share[share["window_start"] <= share["window_start"].iloc[-1] - timedelta(days=days)]
            if len(earlier):
                out["drift_share_previous"] = float(earlier["share"].iloc[-1])
    return out


@st.cache_data(ttl=TTL, show_spinner=False)
def performance(db: str, model: str, window: str, start: datetime, end: datetime,
                version_list: tuple[int, ...] | None = None, auc: bool = True) -> pd.DataFrame:
    """Metrics per window and version; ``auc=False`` skips the exact ROC AUC (the one part that sorts scores,
    more than half the time on a big log), so a page asks for it only when it shows it."""
    return fn("performance", "over_time")(model, window=window, start=start, end=end,
                                          versions=list(version_list) if version_list else None, db=db, auc=auc)


@st.cache_data(ttl=TTL, show_spinner=False)
def confusion(db: str, model: str, start: datetime, end: datetime, version: int | None = None) -> pd.DataFrame:
    return fn("performance", "confusion")(model, start=start, end=end, version=version, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def residuals(db: str, model: str, start: datetime, end: datetime, version: int | None = None) -> pd.DataFrame:
    return fn("performance", "residuals")(model, start=start, end=end, version=version, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def drift_stored(db: str, model: str, window: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The stored drift time series (one row per feature, window and method)."""
    return fn("drift", "stored")(model, window=window, start=start, end=end, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def drift_share(db: str, model: str, window: str, start: datetime, end: datetime) -> pd.DataFrame:
    return fn("drift", "share_over_time")(model, window=window, start=start, end=end, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def drift_distribution(db: str, model: str, feature: str, start: datetime, end: datetime):
    return fn("drift", "distribution")(model, feature, start=start, end=end, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def alerts(db: str, model: str | None, open_only: bool = False) -> pd.DataFrame:
    return fn("alerts", "list_alerts")(model, open_only=open_only, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def validation_reports(db: str, model: str, start: datetime, end: datetime) -> pd.DataFrame:
    return fn("validation", "reports")(model, start=start, end=end, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def validation_anomalies(db: str, model: str, start: datetime, end: datetime) -> pd.DataFrame:
    return fn("validation", "anomalies")(model, start=start, end=end, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def null_rates(db: str, model: str, window: str, start: datetime, end: datetime) -> pd.DataFrame:
    return fn("validation", "null_rates")(model, window=window, start=start, end=end, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def skew(db: str, model: str, start: datetime, end: datetime) -> pd.DataFrame:
    return fn("validation", "skew")(model, start=start, end=end, db=db)


# --- automation and jobs --------------------------------------------------------------------

@st.cache_data(ttl=TTL, show_spinner=False)
def policy(db: str, model: str):
    return fn("automation", "get_policy")(model, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def evaluations(db: str, model: str) -> pd.DataFrame:
    return fn("automation", "recent_evaluations")(model, db=db)




def latest_run(db: str, model: str, kind: str = "retrain"):
    """The newest run of ``kind`` for ``model`` (any status), or None. Not cached: it follows a live job."""
    from mlops_core.store import connect
    from mlops_core.store import runs as runstore

    with connect(db, create=False) as con:
        found = runstore.find_runs(con, model, kind=kind, limit=1)
    return found[0] if found else None


@st.cache_data(ttl=TTL, show_spinner=False)
def versions_frame(db: str, model: str) -> pd.DataFrame:
    return fn("registry", "versions_frame")(model, db=db)


@st.cache_data(ttl=TTL, show_spinner=False)
def rollback_target(db: str, model: str) -> int | None:
    """The version a plain rollback would restore (None when there is none)."""
    return fn("registry", "rollback_target")(model, db=db)

"""Cached reads for the pages: thin ``st.cache_data`` wrappers around the public API (``mlops_core.room``).

Every reader takes the database path as its first argument so that two databases never
share a cache entry; results are copies (``st.cache_data`` pickles them), so a page may
change what it gets; a running job's state is not cached (the Retrain page reads it live).
``clear()`` empties every cache and is called after each action that changes state
(``ui.actions``). Reads need no role, so they use a room without a login.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from mlops_core import ControlRoom, Model
from mlops_core.access import Identity
from mlops_core.config import resolve_location
from mlops_core.entities import ModelInfo, RunInfo, VersionInfo
from mlops_core.errors import InvalidInputError, NotFoundError
from mlops_core.monitoring.verdict import Verdict

#: Seconds a read stays cached: short enough that a cron ingest shows up within a minute.
TTL = 60
#: The identity of reads (reads need no role; actions use the logged-in identity, see ``ui.actions``).
READER = Identity("dashboard", "viewer")


def db_path() -> str:
    """Where the metadata the dashboard shows lives: ``$MLOPS_METADATA_URL``, ``$MLOPS_DB``, else
    ``./mlops.duckdb`` (a file path or a PostgreSQL URL)."""
    return str(resolve_location(None))


def room(db: str) -> ControlRoom:
    return ControlRoom(db, identity=READER)


def model(db: str, name: str) -> Model:
    return room(db).model(name)


def clear() -> None:
    """Forget every cached read (after promote, rollback, retrain, acknowledge, policy change)."""
    st.cache_data.clear()


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """Turn an inclusive date range into [start 00:00, end+1 00:00) naive-UTC datetimes."""
    return datetime.combine(start, time()), datetime.combine(end + timedelta(days=1), time())


# --- registry -------------------------------------------------------------------------------

@st.cache_data(ttl=TTL, show_spinner=False)
def models(db: str) -> list[ModelInfo]:
    """Every registered model (empty list when the database does not exist yet)."""
    return room(db).models()


@st.cache_data(ttl=TTL, show_spinner=False)
def model_info(db: str, name: str) -> ModelInfo:
    return model(db, name).info


@st.cache_data(ttl=TTL, show_spinner=False)
def versions(db: str, name: str) -> list[VersionInfo]:
    """Every version of the model, oldest first."""
    return model(db, name).versions()


@st.cache_data(ttl=TTL, show_spinner=False)
def production(db: str, name: str) -> int | None:
    return model(db, name).production_version()


@st.cache_data(ttl=TTL, show_spinner=False)
def deployment_history(db: str, name: str) -> pd.DataFrame:
    return model(db, name).deployment_history()


@st.cache_data(ttl=TTL, show_spinner=False)
def compare(db: str, name: str, version_list: tuple[int, ...]):
    """The comparison of the versions, on the labelled rows up to the newest prediction (not "now", so an
    old database still compares on its most recent traffic)."""
    m = model(db, name)
    return m.compare(list(version_list), end=m.last_prediction())


@st.cache_data(ttl=TTL, show_spinner=False)
def runs(db: str, name: str | None) -> pd.DataFrame:
    return room(db).runs(name)


@st.cache_data(ttl=TTL, show_spinner=False)
def audit(db: str, name: str | None) -> pd.DataFrame:
    return room(db).audit(name)


@st.cache_data(ttl=TTL, show_spinner=False)
def times_outside_range(db: str, name: str) -> tuple[int, datetime | None, datetime | None]:
    return model(db, name).times_outside_range()


@st.cache_data(ttl=TTL, show_spinner=False)
def last_prediction(db: str, name: str) -> datetime | None:
    """Timestamp of the newest logged prediction of the model (None without traffic)."""
    return model(db, name).last_prediction()


@st.cache_data(ttl=TTL, show_spinner=False)
def versions_frame(db: str, name: str) -> pd.DataFrame:
    return model(db, name).versions_frame()


@st.cache_data(ttl=TTL, show_spinner=False)
def rollback_target(db: str, name: str) -> int | None:
    """The version a plain rollback would restore (None when there is none)."""
    return model(db, name).rollback_target()


# --- monitoring -----------------------------------------------------------------------------

@st.cache_data(ttl=TTL, show_spinner=False)
def verdict(db: str, name: str) -> Verdict:
    """Healthy, watch or act, why, and the next step (``Model.verdict``)."""
    return model(db, name).verdict()


@st.cache_data(ttl=TTL, show_spinner=False)
def estimated_performance(db: str, name: str, window: str, start: datetime, end: datetime) -> tuple[pd.DataFrame, str]:
    """(estimated metrics per window and version beside the realized ones, "" ) for a binary classifier, or (an
    empty frame, why there is no estimate). Nothing is stored (a read)."""
    try:
        return model(db, name).estimate_performance(window=window, start=start, end=end, store=False), ""
    except (InvalidInputError, NotFoundError) as exc:
        return pd.DataFrame(), str(exc)


@st.cache_data(ttl=TTL, show_spinner=False)
def performance(db: str, name: str, window: str, start: datetime, end: datetime,
                version_list: tuple[int, ...] | None = None, auc: bool = True) -> pd.DataFrame:
    """Metrics per window and version; ``auc=False`` skips the exact ROC AUC (the one part that sorts scores,
    more than half the time on a big log), so a page asks for it only when it shows it."""
    return model(db, name).performance(window=window, start=start, end=end,
                                       versions=list(version_list) if version_list else None, auc=auc)


@st.cache_data(ttl=TTL, show_spinner=False)
def confusion(db: str, name: str, start: datetime, end: datetime, version: int | None = None) -> pd.DataFrame:
    return model(db, name).confusion(start=start, end=end, version=version)


@st.cache_data(ttl=TTL, show_spinner=False)
def residuals(db: str, name: str, start: datetime, end: datetime, version: int | None = None) -> pd.DataFrame:
    return model(db, name).residuals(start=start, end=end, version=version)


@st.cache_data(ttl=TTL, show_spinner=False)
def drift_stored(db: str, name: str, window: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The stored drift time series (one row per feature, window and method)."""
    return model(db, name).drift_stored(window=window, start=start, end=end)


@st.cache_data(ttl=TTL, show_spinner=False)
def drift_share(db: str, name: str, window: str, start: datetime, end: datetime) -> pd.DataFrame:
    return model(db, name).drift_share(window=window, start=start, end=end)


@st.cache_data(ttl=TTL, show_spinner=False)
def drift_distribution(db: str, name: str, feature: str, start: datetime, end: datetime) -> pd.DataFrame:
    return model(db, name).drift_distribution(feature, start=start, end=end)


@st.cache_data(ttl=TTL, show_spinner=False)
def alerts(db: str, name: str | None, open_only: bool = False, statuses: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Incidents, the most recently seen first (``open_only``: open and not snoozed)."""
    if name is None:
        return room(db).alerts(open_only=open_only, statuses=statuses)
    return model(db, name).alerts(open_only=open_only, statuses=statuses)


@st.cache_data(ttl=TTL, show_spinner=False)
def webhook_deliveries(db: str, name: str | None) -> pd.DataFrame:
    """Recent deliveries of incidents to webhooks (addresses shortened to their host)."""
    return room(db).webhook_deliveries(name)


@st.cache_data(ttl=TTL, show_spinner=False)
def alert_rules(db: str, name: str) -> pd.DataFrame:
    return model(db, name).alert_rules()


@st.cache_data(ttl=TTL, show_spinner=False)
def validation_reports(db: str, name: str, start: datetime, end: datetime) -> pd.DataFrame:
    return model(db, name).validation_reports(start, end)


@st.cache_data(ttl=TTL, show_spinner=False)
def validation_anomalies(db: str, name: str, start: datetime, end: datetime) -> pd.DataFrame:
    return model(db, name).anomalies(start, end)


@st.cache_data(ttl=TTL, show_spinner=False)
def null_rates(db: str, name: str, window: str, start: datetime, end: datetime) -> pd.DataFrame:
    return model(db, name).null_rates(window, start, end)


@st.cache_data(ttl=TTL, show_spinner=False)
def skew(db: str, name: str, start: datetime, end: datetime) -> pd.DataFrame:
    return model(db, name).skew(start, end)


# --- automation and jobs --------------------------------------------------------------------

@st.cache_data(ttl=TTL, show_spinner=False)
def policy(db: str, name: str):
    return model(db, name).policy()


@st.cache_data(ttl=TTL, show_spinner=False)
def evaluations(db: str, name: str) -> pd.DataFrame:
    return model(db, name).evaluations()


def latest_run(db: str, name: str, kind: str = "retrain") -> RunInfo | None:
    """The newest run of ``kind`` for the model (any status), or None. Not cached: it follows a live job."""
    return model(db, name).latest_run(kind)


def active_retrain(db: str, name: str) -> RunInfo | None:
    """The queued or running retrain of the model, or None. Not cached: it follows a live job."""
    return model(db, name).active_retrain()


def run(db: str, run_id: str) -> RunInfo:
    """One run, live (not cached)."""
    return room(db).run(run_id)


# --- feature store --------------------------------------------------------------------------

@st.cache_data(ttl=TTL, show_spinner=False)
def feature_views(db: str) -> pd.DataFrame:
    """One row per feature view: definition, rows, newest event time, age, staleness, models using it."""
    return room(db).features.list()


@st.cache_data(ttl=TTL, show_spinner=False)
def feature_view(db: str, view: str):
    """The newest definition of a view (FeatureViewDef)."""
    return room(db).features.view(view)


@st.cache_data(ttl=TTL, show_spinner=False)
def feature_freshness(db: str):
    """Each view's freshness now (ViewFreshness records)."""
    return room(db).features.freshness()


@st.cache_data(ttl=TTL, show_spinner=False)
def feature_rows_per_day(db: str, view: str) -> pd.DataFrame:
    return room(db).features.rows_per_day(view)


@st.cache_data(ttl=TTL, show_spinner=False)
def feature_stats(db: str, view: str, window: str) -> pd.DataFrame:
    return room(db).features.stats(view, window=window)


@st.cache_data(ttl=TTL, show_spinner=False)
def feature_drift(db: str, view: str, days: int = 7) -> pd.DataFrame:
    return room(db).features.drift(view, days=days)


@st.cache_data(ttl=TTL, show_spinner=False)
def feature_batches(db: str, view: str) -> pd.DataFrame:
    return room(db).features.batches(view)
# --- serving --------------------------------------------------------------------------------

@st.cache_data(ttl=TTL, show_spinner=False)
def serving(db: str, name: str):
    """What serves the model now (``Model.serving``: production, config in force, since when)."""
    return model(db, name).serving()


@st.cache_data(ttl=TTL, show_spinner=False)
def deployment_configs(db: str, name: str) -> pd.DataFrame:
    return model(db, name).deployment_configs()


@st.cache_data(ttl=TTL, show_spinner=False)
def ab_status(db: str, name: str, window: str):
    """The A/B test of the current deployment (``Model.ab_status``)."""
    return model(db, name).ab_status(window=window)


@st.cache_data(ttl=TTL, show_spinner=False)
def arm_performance(db: str, name: str, window: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The A/B metric per window and arm with 95% intervals."""
    return model(db, name).arm_performance(window=window, start=start, end=end)

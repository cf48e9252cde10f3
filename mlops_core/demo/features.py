"""The demo's feature store: credit bureau history of the applicants, with a feed that stopped.

``add_applicant_history(room, applications, end=...)`` (a client of the public API only) defines the
entity ``applicant`` (key ``applicant_id``) and the view ``applicant_history``: bureau snapshots of
``credit_score``, ``num_open_accounts``, ``utilization`` and ``past_defaults``, valid for 30 days
(TTL) and expected daily (freshness 1 day). From the credit applications (the credit_default
predictions: ``request_id``, a time, and the bureau columns as the model saw them) it writes, per
application:

- the bureau pull the model used: a snapshot 2 hours to 10 days before the application, with the
  values the application logged (so the point-in-time join gives back what serving saw);
- an older snapshot 35 to 90 days before, with other values (it has expired by the application);
- a later update 1 to 20 days after the application (utilization and the score moved), which a
  leakage-free join must never use for that application.

The stale episode: the bureau feed stopped ``stale_days`` (default 3) before ``end``: no row has an
event time after that, so on first start the view is stale (its newest event time is older than a
day) and the monitor's ``stale_feature_view`` alert is open. Rows are ingested in weekly batches
(late snapshots arrive with the batch of their event week), the online store is materialized as of
``end``, and ``credit_default`` is bound to the view for the bureau features it has, so the
Features page shows which model uses it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

ENTITY, VIEW = "applicant", "applicant_history"
#: Bureau columns of a credit application the view holds, with their types.
BUREAU = {"credit_score": "float", "num_open_accounts": "int", "utilization": "float"}
TTL, FRESHNESS = "30d", "1d"


@dataclass
class ApplicantHistory:
    """What ``add_applicant_history`` wrote."""

    view: str
    applicants: int
    rows: int
    batches: int
    newest_event_ts: datetime | None
    stale_since: datetime
    bound_model: str | None
    bound_features: list[str] = field(default_factory=list)
    alerts: int = 0


def applicant_ids(request_ids: pd.Series) -> pd.Series:
    """``ap-<n>`` for the request ``cd-<n>`` (one applicant per application; other ids keep their text)."""
    text = request_ids.astype(str)
    return "ap-" + text.str.replace(r"^cd-", "", regex=True)


def bureau_rows(applications: pd.DataFrame, *, end: datetime, stale_days: float = 3.0,
                seed: int = 0) -> pd.DataFrame:
    """The view's rows for ``applications`` (see the module docstring), oldest first; pure."""
    rng = np.random.default_rng([seed, 7])
    when_col = next(c for c in ("ts", "timestamp", "event_timestamp") if c in applications.columns)
    apps = applications.reset_index(drop=True)
    t = pd.to_datetime(apps[when_col]).to_numpy(dtype="datetime64[us]")
    n = len(apps)
    ids = applicant_ids(apps["request_id"]).to_numpy()

    def hours(lo: float, hi: float) -> np.ndarray:
        return (rng.uniform(lo, hi, n) * 3_600_000_000).astype("timedelta64[us]")

    score = apps["credit_score"].to_numpy(dtype=float)
    accounts = apps["num_open_accounts"].to_numpy(dtype=float)
    util = apps["utilization"].to_numpy(dtype=float)
    defaults = rng.poisson(0.15, n)
    pulled = pd.DataFrame({"applicant_id": ids, "as_of": t - hours(2, 240), "credit_score": score,
                           "num_open_accounts": accounts, "utilization": util, "past_defaults": defaults})
    older = pd.DataFrame({"applicant_id": ids, "as_of": t - hours(35 * 24, 90 * 24),
                          "credit_score": np.clip(np.round(score - rng.normal(5, 25, n)), 300, 850),
                          "num_open_accounts": np.maximum(accounts - rng.integers(0, 2, n), 0),
                          "utilization": np.clip(np.round(util - rng.normal(0.02, 0.08, n), 4), 0, 1),
                          "past_defaults": np.maximum(defaults - rng.integers(0, 2, n), 0)})
    later = pd.DataFrame({"applicant_id": ids, "as_of": t + hours(24, 20 * 24),
                          "credit_score": np.clip(np.round(score + rng.normal(-10, 20, n)), 300, 850),
                          "num_open_accounts": accounts + 1,
                          "utilization": np.clip(np.round(util + rng.uniform(0.05, 0.3, n), 4), 0, 1),
                          "past_defaults": defaults})
    rows = pd.concat([older, pulled, later], ignore_index=True)
    stop = np.datetime64(end - timedelta(days=stale_days), "us")
    rows = rows[rows["as_of"].to_numpy() <= stop].sort_values("as_of", kind="stable").reset_index(drop=True)
    rows["num_open_accounts"] = rows["num_open_accounts"].astype("int64")
    rows["past_defaults"] = rows["past_defaults"].astype("int64")
    return rows


def add_applicant_history(room, applications: pd.DataFrame, *, end: datetime, model: str = "credit_default",
                          stale_days: float = 3.0, seed: int = 0) -> ApplicantHistory:
    """Define, fill and materialize the view ``applicant_history`` from the credit applications, bind ``model`` to
    it, and raise the stale-view alert as of ``end``; return what was written. ``room``: a ControlRoom whose
    identity has the admin role (binding a model needs it)."""
    fs = room.features
    fs.define_entity(ENTITY, {"applicant_id": "string"}, description="A person who applies for credit")
    fs.define_view(VIEW, ENTITY, "as_of", {**BUREAU, "past_defaults": "int"}, ttl=TTL, freshness=FRESHNESS,
                   owner="credit-bureau-feed",
                   description="Credit bureau snapshots per applicant: pulled before each application, updated "
                               "after; the feed stopped for the last days of the demo")
    rows = bureau_rows(applications, end=end, stale_days=stale_days, seed=seed)
    week = (rows["as_of"] - rows["as_of"].min()).dt.days // 7
    batches = 0
    for _, part in rows.groupby(week, sort=True):
        fs.ingest(VIEW, part.reset_index(drop=True), source_name=f"bureau feed, week of {part['as_of'].min():%Y-%m-%d}")
        batches += 1
    fs.materialize([VIEW], as_of=end)
    bound: list[str] = []
    bound_model = None
    if model in {m.name for m in room.models()}:
        handle = room.model(model)
        bound = [f for f in BUREAU if f in handle.info.feature_names]
        if bound:
            handle.bind_features([f"{VIEW}:{f}" for f in bound])
            bound_model = model
    raised = fs.check_freshness(now=end) if bound_model else []
    stop = end - timedelta(days=stale_days)
    newest = rows["as_of"].max().to_pydatetime() if len(rows) else None
    return ApplicantHistory(VIEW, int(rows["applicant_id"].nunique()), len(rows), batches, newest, stop, bound_model,
                            bound, len(raised))

"""How current and how healthy each feature view is: freshness, row counts and null rates over time, samples.

Freshness of a view at ``now``: its newest event time (from the listing: no file is read) against
its staleness limit (``freshness``, else the TTL). A view is stale when it has no row at all, or
when ``now - newest event time`` exceeds the limit: the source stopped updating, and serving is
handing out ever older values (until they pass the TTL and disappear). The monitor turns that into
an alert (``stale_feature_view`` rules, see ``monitoring.alerts``).
"""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from mlops_core.clock import utcnow
from mlops_core.entities import ViewFreshness
from mlops_core.store import Store
from mlops_core.store import feature_queries as fqueries
from mlops_core.store import features as fstore
from mlops_core.store.conditions import check_window


def freshness(store: Store, views: list[str] | None = None, *, now: datetime | None = None) -> list[ViewFreshness]:
    """The freshness of each view (every view when None) at ``now`` (default: the clock), by name."""
    now = now or utcnow()
    with store.connect() as con:
        defs = [fstore.get_view(con, v) for v in views] if views else fstore.list_views(con)
        users = fstore.models_using(con)
        return [fstore.freshness(con, v, now, users.get(v.name)) for v in defs]


def stats(store: Store, view: str, *, window: str = "day", start: datetime | None = None,
          end: datetime | None = None) -> pd.DataFrame:
    """Per window of event time: ``rows`` and, per feature, its null rate (long form: window_start, rows, feature,
    null_rate, mean), from one scan of the view's files with event time in [start, end)."""
    check_window(window)
    with store.connect() as con:
        definition = fstore.get_view(con, view)
        rows = fqueries.view_rows(con, store.logs, definition, start, end)
    with store.engine() as eng:
        wide = fqueries.window_stats(eng, rows, window, start, end)
    out = []
    for f in definition.features:
        part = pd.DataFrame({"window_start": wide["window_start"], "rows": wide["rows"], "feature": f.name})
        part["null_rate"] = 1.0 - wide[f"n_{f.name}"] / wide["rows"].where(wide["rows"] > 0)
        part["mean"] = wide[f"mean_{f.name}"] if f"mean_{f.name}" in wide.columns else float("nan")
        out.append(part)
    if not out:
        return pd.DataFrame(columns=["window_start", "rows", "feature", "null_rate", "mean"])
    return pd.concat(out, ignore_index=True)


def samples(store: Store, view: str, split: datetime, *, start: datetime | None = None, end: datetime | None = None,
            limit: int = 50_000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current): the view's feature values with event time in [start, split) and [split, end), each a
    repeatable sample of at most ``limit`` rows; what distribution drift per feature compares."""
    with store.connect() as con:
        definition = fstore.get_view(con, view)
        rows = fqueries.view_rows(con, store.logs, definition, start, end)
    with store.engine() as eng:
        out = [fqueries.sample_features(eng, rows, lo, hi, limit=limit, seed=seed)
               for lo, hi in ((start, split), (split, end))]
    return out[0], out[1]


def rows_per_day(store: Store, view: str) -> pd.DataFrame:
    """Rows listed per event day (``day``, ``rows``, ``files``, ``last_ingested_at``), from the listing."""
    with store.connect() as con:
        fstore.get_view(con, view)
        return fstore.rows_per_day(con, view)


def batches(store: Store, view: str) -> pd.DataFrame:
    """The view's ingested batches, newest first."""
    with store.connect() as con:
        fstore.get_view(con, view)
        return fstore.batches_frame(con, view)

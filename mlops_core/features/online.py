"""The online store: the newest row per entity of each view, for lookups at serving time in microseconds.

``materialize`` writes, per view, one Parquet snapshot of the newest row per entity key with event time
at or before ``as_of`` (default: now; rows stamped in the future wait for a later run), lists it in
``online_snapshots`` (retiring the one before) and then replaces the view's ``CURRENT`` file, a small
JSON document naming the snapshot and the definition it was built with. Run it after each ingest, or
from cron.

``get_online_features`` serves lookups from an in-process cache: the first lookup of a view reads its
snapshot into a hash index (entity key -> row); later lookups cost one ``stat`` of ``CURRENT`` (a
changed file means a new snapshot: the cache reloads) and a dict lookup, without opening the database.
A value older than the view's TTL at the time of the lookup comes back as ``expired`` with no value,
as the point-in-time join would give NULL for it; an entity without a row is ``missing``.

Serving (``mlops_core.serving``) calls it with a model's binding (``ModelInfo.feature_binding``)::

    rows = online.get_online_features(store, binding.features, [{"applicant_id": "ap-1"}])
    features = {**request_features, **rows[0].row()}
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mlops_core.clock import utcnow
from mlops_core.entities import FeatureColumn, FeatureValue, FeatureViewDef, MaterializeResult, OnlineFeatures
from mlops_core.errors import InvalidInputError, NotFoundError
from mlops_core.features.join import parse_refs
from mlops_core.store import Store
from mlops_core.store import feature_queries as fqueries
from mlops_core.store import features as fstore
from mlops_core.store import runs as runstore

POINTER = "CURRENT"
#: Retired snapshots are deleted this long after they were replaced (a reader may still be loading one).
RETIRED_GRACE_S = 600.0


def materialize(store: Store, views: list[str] | None = None, *, as_of: datetime | None = None,
                actor: str) -> list[MaterializeResult]:
    """Write the online snapshot of each view (every view when None) as of ``as_of`` (default now); return what
    was written. Raises NotFoundError (view)."""
    as_of = as_of or utcnow()
    with store.connect() as con:
        defs = [fstore.get_view(con, v) for v in views] if views else fstore.list_views(con)
    return [_materialize_view(store, view, as_of, actor) for view in defs]


def _materialize_view(store: Store, view: FeatureViewDef, as_of: datetime, actor: str) -> MaterializeResult:
    t0, started = time.perf_counter(), utcnow()
    root = store.logs
    with store.connect() as con:
        rows = fqueries.view_rows(con, root, view, None, as_of)
    folder = fstore.online_folder(root, view.name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{started:%Y%m%dT%H%M%S%f}_{os.getpid()}.parquet"
    with store.engine() as eng:
        n, newest = fqueries.latest_rows_facts(eng, rows, as_of)
        fqueries.write_latest_rows(eng, rows, as_of, path)
    rel = str(path.relative_to(root))
    snap = fstore.Snapshot(rel, view.name, view.version, int(n), newest, as_of, utcnow())
    try:
        with store.transaction() as con:
            fstore.replace_snapshot(con, snap)
            expired = fstore.expired_snapshots(con, view.name, snap.materialized_at - timedelta(seconds=RETIRED_GRACE_S))
            run_id = runstore.insert_run(con, model=None, kind="materialize", trigger="api", actor=actor,
                                         status="running", created_at=started,
                                         params={"view": view.name, "as_of": as_of.isoformat()})
            runstore.update_run(con, run_id, status="succeeded", progress=1.0,
                                message=f"materialized {n} entities of feature view {view.name}",
                                statistics={"view": view.name, "rows": int(n), "newest_event_ts": newest},
                                started_at=started, finished_at=snap.materialized_at,
                                duration_s=time.perf_counter() - t0)
            runstore.insert_audit(con, actor=actor, action="materialize_features", model=None, run_id=run_id,
                                  at=snap.materialized_at, reason=f"{n} entities of feature view {view.name}",
                                  details={"view": view.name, "rows": int(n), "as_of": as_of})
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    _write_pointer(folder, snap, view)
    for old in expired:
        (root / old).unlink(missing_ok=True)
    return MaterializeResult(view.name, int(n), newest, as_of, rel, time.perf_counter() - t0)


def _write_pointer(folder: Path, snap: fstore.Snapshot, view: FeatureViewDef) -> None:
    doc = {"path": snap.path, "version": view.version, "as_of": snap.as_of.isoformat(),
           "materialized_at": snap.materialized_at.isoformat(), "ttl_s": view.ttl_s,
           "keys": [[k.name, k.dtype] for k in view.keys], "features": [[f.name, f.dtype] for f in view.features]}
    tmp = folder / f".{POINTER}.{os.getpid()}.{threading.get_ident()}"
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, folder / POINTER)  # atomic: a reader sees the old document or the new one


# --- lookups -----------------------------------------------------------------------------------------------


@dataclass
class _Loaded:
    """One view's snapshot in memory: a hash index from entity key to row, and the columns as Python lists."""

    stamp: tuple[int, int]  # (mtime_ns, size) of CURRENT when it was read
    view: str
    keys: list[FeatureColumn]
    ttl_s: float | None
    index: dict[tuple, int]
    event_ts: list[datetime]
    columns: dict[str, list] = field(default_factory=dict)


_cache: dict[tuple[str, str], _Loaded] = {}
_cache_lock = threading.Lock()


def _load(root: Path, view: str, stamp: tuple[int, int], doc: dict) -> _Loaded:
    import pyarrow.parquet as pq

    table = pq.read_table(root / doc["path"])
    keys = [FeatureColumn(n, t) for n, t in doc["keys"]]
    key_lists = [table.column(k.name).to_pylist() for k in keys]
    index = {k: i for i, k in enumerate(zip(*key_lists, strict=True))}
    columns = {n: table.column(n).to_pylist() for n, _ in doc["features"] if n in table.column_names}
    return _Loaded(stamp, view, keys, doc.get("ttl_s"), index, table.column(fstore.EVENT_TS).to_pylist(), columns)


def _loaded(store: Store, view: str) -> _Loaded:
    """The view's snapshot in this process's cache, reloaded when ``CURRENT`` changed."""
    root = store.logs
    pointer = fstore.online_folder(root, view) / POINTER
    try:
        st = os.stat(pointer)
    except FileNotFoundError:
        st = None
    key = (str(root), view)
    cached = _cache.get(key)
    if st is not None and cached is not None and cached.stamp == (st.st_mtime_ns, st.st_size):
        return cached
    with _cache_lock:
        if st is None:
            _restore_pointer(store, view)
            st = os.stat(pointer)
        stamp = (st.st_mtime_ns, st.st_size)
        cached = _cache.get(key)
        if cached is None or cached.stamp != stamp:
            cached = _cache[key] = _load(root, view, stamp, json.loads(pointer.read_text()))
        return cached


def _restore_pointer(store: Store, view: str) -> None:
    """Write ``CURRENT`` from the listing (a copied database, or a crash after the listing); raises NotFoundError
    when the view was never materialized."""
    with store.connect() as con:
        definition = fstore.get_view(con, view)
        snap = fstore.current_snapshot(con, view)
        if snap is not None:
            definition = fstore.get_view(con, view, snap.view_version)
    if snap is None:
        raise NotFoundError(f"Feature view {view!r} has no online snapshot yet; run `mlops features materialize "
                            f"{view}` first.", view=view)
    _write_pointer(fstore.online_folder(store.logs, view), snap, definition)


def _key_value(value: Any, col: FeatureColumn) -> Any:
    if value is None:
        return None
    if col.dtype == "int":
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"Key {col.name!r} must be a whole number, not {value!r}.", key=col.name) from exc
    if col.dtype == "float":
        return float(value)
    if col.dtype == "bool":
        return bool(value)
    return str(value)


def _key_rows(entity_keys: Any, names: list[str]) -> list[dict]:
    """Entity keys as one mapping per entity, from a list of mappings, a mapping of lists, or (one key column) a list
    of values."""
    if isinstance(entity_keys, dict):
        columns = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in entity_keys.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise InvalidInputError("The entity key columns have different lengths.")
        n = lengths.pop() if lengths else 0
        return [{k: v[i] for k, v in columns.items()} for i in range(n)]
    rows = list(entity_keys)
    if rows and not isinstance(rows[0], dict):
        if len(names) != 1:
            raise InvalidInputError(f"Give each entity's keys by name ({', '.join(names)}).")
        return [{names[0]: v} for v in rows]
    return rows


def get_online_features(store: Store, refs: Any, entity_keys: Any, *, now: datetime | None = None
                        ) -> list[OnlineFeatures]:
    """The newest values of the features ``refs`` (``view:feature`` strings or FeatureRefs) for each entity, from the
    online store; one OnlineFeatures per entity, in the order given.

    ``entity_keys``: a list of mappings key column -> value (``[{"applicant_id": "ap-1"}]``), a mapping of key column
    -> list of values, or a list of values when every view has one key column. ``now`` (default: the clock) decides
    which values have expired. Raises NotFoundError (a view never materialized, a feature it lacks),
    InvalidInputError (a key missing or of the wrong type).
    """
    wanted = parse_refs(refs)
    now = now or utcnow()
    loaded: dict[str, _Loaded] = {}
    for r in wanted:
        if r.view not in loaded:
            loaded[r.view] = _loaded(store, r.view)
    plan: list[tuple[_Loaded, list[str]]] = []
    for view, snap in loaded.items():
        names = [r.feature for r in wanted if r.view == view]
        if "*" in names:
            names = list(snap.columns)
        unknown = [n for n in names if n not in snap.columns]
        if unknown:
            raise NotFoundError(f"View {view!r} has no feature {', '.join(map(repr, unknown))} in its online snapshot "
                                f"(features: {', '.join(snap.columns)}); materialize it after redefining the view.",
                                view=view)
        plan.append((snap, names))
    key_cols = {k.name: k for snap, _ in plan for k in snap.keys}
    key_names = list(key_cols)
    out = []
    for given in _key_rows(entity_keys, key_names):
        missing = [k for k in key_names if k not in given]
        if missing:
            raise InvalidInputError(f"An entity key lacks {', '.join(map(repr, missing))} (given: {given!r}).",
                                    keys=missing)
        values: list[FeatureValue] = []
        for snap, names in plan:
            i = snap.index.get(tuple(_key_value(given[k.name], k) for k in snap.keys))
            if i is None:
                values += [FeatureValue(snap.view, n, None, None, "missing") for n in names]
                continue
            ts = snap.event_ts[i]
            if snap.ttl_s and (now - ts).total_seconds() >= snap.ttl_s:
                values += [FeatureValue(snap.view, n, None, ts, "expired") for n in names]
            else:
                values += [FeatureValue(snap.view, n, snap.columns[n][i], ts, "present") for n in names]
        out.append(OnlineFeatures(tuple(_key_value(given[n], key_cols[n]) for n in key_names), values))
    return out


def forget_cache() -> None:
    """Drop every cached snapshot of this process (tests; after deleting a database)."""
    with _cache_lock:
        _cache.clear()


__all__ = ["forget_cache", "get_online_features", "materialize"]

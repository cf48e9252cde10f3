"""SQL of the feature store's metadata: definitions, the listing of feature files and batches, online snapshots,
bindings and freshness. The queries over the files themselves (ingest, the point-in-time join, snapshots,
statistics) are ``store.feature_queries``.

Layout under the log folder (``Store.logs``), beside the prediction logs::

    features/view=<name>/date=<YYYY-MM-DD>/<batch>_<n>.parquet   a batch's rows, by event day
    features/view=<name>/superseded/<batch>.parquet              orders of stored rows the batch replaced
    features/online/view=<name>/<stamp>.parquet                  the newest row per entity (online store)
    features/online/view=<name>/CURRENT                          which snapshot is current (JSON)

A feature file holds the view's key columns (typed), ``__event_ts`` (the event time), the features,
``__order`` (the ingest order: the batch's sequence number times 2^32 plus the row's number in the
batch) and ``batch_id``. As with the prediction logs, a file is part of the view exactly when a row
of ``feature_files`` lists it, and a batch's files are listed in the transaction that records the
batch. Ingest keeps one invariant that makes the point-in-time join a plain ASOF JOIN: among the rows
that are not superseded, no two share an entity key and an event time (the later ingested wins; the
earlier one's order is written to a ``superseded`` file).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from mlops_core.clock import utcnow
from mlops_core.entities import EntityDef, FeatureBinding, FeatureColumn, FeatureSource, FeatureViewDef, ViewFreshness
from mlops_core.errors import NotFoundError
from mlops_core.store.logs import WrittenFile
from mlops_core.store.models import binding_to_json

EVENT_TS, ORDER, BATCH = "__event_ts", "__order", "batch_id"
#: Rows of one batch: the order of a row is seq * ORDER_STRIDE + its 1-based row number.
ORDER_STRIDE = 1 << 32
#: Names a key or feature may not take (the files' own columns, and the Hive partition column).
RESERVED = (EVENT_TS, ORDER, BATCH, "date", "__row", "__t")


def _columns_json(cols: list[FeatureColumn]) -> str:
    return json.dumps([asdict(c) for c in cols])


def _columns_from(text: str) -> list[FeatureColumn]:
    return [FeatureColumn(**d) for d in json.loads(text)]


def view_folder(root: Path, view: str) -> Path:
    return root / "features" / f"view={view}"


def online_folder(root: Path, view: str) -> Path:
    return root / "features" / "online" / f"view={view}"


# --- definitions ------------------------------------------------------------------------------------


_ENTITY_COLS = "name, version, keys, description, created_at, created_by"


def _entity(row) -> EntityDef:
    name, version, keys, desc, created, by = row
    return EntityDef(name, _columns_from(keys), desc, int(version), created, by)


def list_entities(con: duckdb.DuckDBPyConnection) -> list[EntityDef]:
    """The newest version of every entity, by name."""
    return [_entity(r) for r in con.execute(
        f"SELECT {_ENTITY_COLS} FROM feature_entities WHERE (name, version) IN "
        f"(SELECT name, max(version) FROM feature_entities GROUP BY name) ORDER BY name").fetchall()]


def _newest(con: duckdb.DuckDBPyConnection, table: str, columns: str, name: str, version: int | None):
    """The row (``columns``) of definition ``name`` in ``table``: version ``version``, or its newest; None if absent."""
    sql = f"SELECT {columns} FROM {table} WHERE name = ?"
    params: list = [name]
    if version is not None:
        sql += " AND version = ?"
        params.append(int(version))
    return con.execute(sql + " ORDER BY version DESC LIMIT 1", params).fetchone()


def get_entity(con: duckdb.DuckDBPyConnection, name: str, version: int | None = None) -> EntityDef:
    """An entity (its newest version when ``version`` is None); raises NotFoundError naming the known ones."""
    row = _newest(con, "feature_entities", _ENTITY_COLS, name, version)
    if row is None:
        known = [e.name for e in list_entities(con)]
        raise NotFoundError(f"Unknown entity {name!r}{'' if version is None else f' version {version}'}. "
                            f"Known entities: {', '.join(known) or 'none (define one first)'}.", entity=name)
    return _entity(row)


def insert_entity(con: duckdb.DuckDBPyConnection, entity: EntityDef) -> None:
    con.execute(f"INSERT INTO feature_entities ({_ENTITY_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                [entity.name, entity.version, _columns_json(entity.keys), entity.description,
                 entity.created_at or utcnow(), entity.created_by])


_VIEW_COLS = ("name, version, entity, keys, ts_column, features, ttl_s, freshness_s, source, owner, description, "
              "created_at, created_by")


def _view(row) -> FeatureViewDef:
    name, version, entity, keys, ts, feats, ttl, fresh, source, owner, desc, created, by = row
    src = FeatureSource(**json.loads(source)) if source else None
    return FeatureViewDef(name, entity, _columns_from(keys), ts, _columns_from(feats), ttl, fresh, src, owner, desc,
                          int(version), created, by)


def list_views(con: duckdb.DuckDBPyConnection) -> list[FeatureViewDef]:
    """The newest version of every feature view, by name."""
    return [_view(r) for r in con.execute(
        f"SELECT {_VIEW_COLS} FROM feature_views WHERE (name, version) IN "
        f"(SELECT name, max(version) FROM feature_views GROUP BY name) ORDER BY name").fetchall()]


def view_versions(con: duckdb.DuckDBPyConnection, name: str) -> list[FeatureViewDef]:
    """Every version of a view, oldest first (empty when it does not exist)."""
    return [_view(r) for r in con.execute(
        f"SELECT {_VIEW_COLS} FROM feature_views WHERE name = ? ORDER BY version", [name]).fetchall()]


def get_view(con: duckdb.DuckDBPyConnection, name: str, version: int | None = None) -> FeatureViewDef:
    """A feature view (its newest version when ``version`` is None); raises NotFoundError naming the known ones."""
    row = _newest(con, "feature_views", _VIEW_COLS, name, version)
    if row is None:
        known = [v.name for v in list_views(con)]
        raise NotFoundError(f"Unknown feature view {name!r}{'' if version is None else f' version {version}'}. "
                            f"Known views: {', '.join(known) or 'none (define one with `mlops features define`)'}.",
                            view=name)
    return _view(row)


def insert_view(con: duckdb.DuckDBPyConnection, view: FeatureViewDef) -> None:
    source = json.dumps(asdict(view.source)) if view.source is not None else None
    con.execute(f"INSERT INTO feature_views ({_VIEW_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [view.name, view.version, view.entity, _columns_json(view.keys), view.timestamp,
                 _columns_json(view.features), view.ttl_s, view.freshness_s, source, view.owner, view.description,
                 view.created_at or utcnow(), view.created_by])


# --- bindings ---------------------------------------------------------------------------------------


def set_binding(con: duckdb.DuckDBPyConnection, model: str, binding: FeatureBinding | None) -> None:
    """Record (or clear) the model's feature binding."""
    con.execute("UPDATE models SET feature_binding = ? WHERE name = ?", [binding_to_json(binding), model])


def models_using(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """View name -> the models whose binding takes features from it (by name)."""
    from mlops_core.store.models import binding_from_json

    out: dict[str, list[str]] = {}
    for name, text in con.execute(
            "SELECT name, feature_binding FROM models WHERE feature_binding IS NOT NULL ORDER BY name").fetchall():
        binding = binding_from_json(text)
        for view in binding.views if binding else []:
            out.setdefault(view, []).append(name)
    return out


# --- feature files and batches -------------------------------------------------------------------------


def view_files(con: duckdb.DuckDBPyConnection, root: Path, view: str, *, kind: str = "rows",
               start: datetime | None = None, end: datetime | None = None) -> list[str]:
    """Absolute paths of the listed files of ``view`` (``rows`` or ``superseded``); rows files only when their
    event times may fall in [start, end] (both inclusive)."""
    sql = "SELECT path FROM feature_files WHERE view = ? AND kind = ? AND retired_at IS NULL"
    params: list = [view, kind]
    if start is not None:
        sql += " AND max_ts >= ?"
        params.append(start)
    if end is not None:
        sql += " AND min_ts <= ?"
        params.append(end)
    return [str(root / r[0]) for r in con.execute(sql + " ORDER BY path", params).fetchall()]


def next_batch_seq(con: duckdb.DuckDBPyConnection, view: str) -> int:
    return int(con.execute("SELECT coalesce(max(seq), 0) + 1 FROM feature_batches WHERE view = ?", [view]
                           ).fetchone()[0])


@dataclass
class FeatureBatch:
    """A stored feature batch (found by its fingerprint)."""

    batch_id: str
    source: str | None
    rows: int
    rows_written: int
    ingested_at: datetime


def find_batch(con: duckdb.DuckDBPyConnection, view: str, fingerprint: str) -> FeatureBatch | None:
    row = con.execute("SELECT batch_id, source, rows, rows_written, ingested_at FROM feature_batches "
                      "WHERE view = ? AND fingerprint = ? ORDER BY ingested_at LIMIT 1", [view, fingerprint]).fetchone()
    return FeatureBatch(*row) if row else None


def record_batch(con: duckdb.DuckDBPyConnection, *, view: str, batch_id: str, seq: int, source: str | None,
                 fingerprint: str, rows: int, files: list[WrittenFile], superseded: WrittenFile | None,
                 superseded_rows: int, actor: str, at: datetime) -> None:
    """List a batch's files (and its superseded file) and record the batch; call inside one transaction."""
    listed = [(f, "rows") for f in files] + ([(superseded, "superseded")] if superseded is not None else [])
    if listed:
        con.executemany(
            "INSERT INTO feature_files (path, view, kind, batch_id, day, rows, min_ts, max_ts, bytes, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[f.path, view, kind, batch_id, f.day, f.rows, f.min_ts, f.max_ts, f.bytes, at] for f, kind in listed])
    spans = [t for f in files for t in (f.min_ts, f.max_ts) if t is not None]
    con.execute("INSERT INTO feature_batches (batch_id, view, seq, source, fingerprint, rows, rows_written, superseded, "
                "min_ts, max_ts, actor, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [batch_id, view, seq, source, fingerprint, rows, sum(f.rows for f in files), superseded_rows,
                 min(spans) if spans else None, max(spans) if spans else None, actor, at])


def batches_frame(con: duckdb.DuckDBPyConnection, view: str) -> pd.DataFrame:
    """The view's batches, newest first: batch_id, seq, source, rows, rows_written, superseded, min_ts, max_ts,
    actor, ingested_at."""
    return con.execute("SELECT batch_id, seq, source, rows, rows_written, superseded, min_ts, max_ts, actor, "
                       "ingested_at FROM feature_batches WHERE view = ? ORDER BY seq DESC", [view]).df()


def rows_per_day(con: duckdb.DuckDBPyConnection, view: str) -> pd.DataFrame:
    """Rows listed per event day (``day``, ``rows``) and how many were ingested that day or later, from the
    listing: the shape of the view's history, gaps included."""
    return con.execute("SELECT day, sum(rows) AS rows, count(*) AS files, max(created_at) AS last_ingested_at "
                       "FROM feature_files WHERE view = ? AND kind = 'rows' AND retired_at IS NULL "
                       "GROUP BY day ORDER BY day", [view]).df()


# --- the files' columns ----------------------------------------------------------------------------------


def file_columns(view: FeatureViewDef) -> list[tuple[str, str]]:
    """(column, SQL type) of the view's feature files, in file order."""
    return ([(k.name, k.sql_type) for k in view.keys] + [(EVENT_TS, "TIMESTAMP")]
            + [(f.name, f.sql_type) for f in view.features] + [(ORDER, "BIGINT"), (BATCH, "VARCHAR")])


# --- facts and freshness ------------------------------------------------------------------------------


@dataclass
class ViewFacts:
    """Size and time span of a view's rows, from the listing."""

    rows: int
    files: int
    oldest: datetime | None
    newest: datetime | None
    last_ingested_at: datetime | None


def view_facts(con: duckdb.DuckDBPyConnection, view: str) -> ViewFacts:
    row = con.execute("SELECT coalesce(sum(rows), 0), count(*), min(min_ts), max(max_ts), max(created_at) "
                      "FROM feature_files WHERE view = ? AND kind = 'rows' AND retired_at IS NULL", [view]).fetchone()
    superseded = con.execute("SELECT coalesce(sum(rows), 0) FROM feature_files WHERE view = ? AND kind = 'superseded' "
                             "AND retired_at IS NULL", [view]).fetchone()[0]
    return ViewFacts(int(row[0]) - int(superseded), int(row[1]), row[2], row[3], row[4])


def freshness(con: duckdb.DuckDBPyConnection, view: FeatureViewDef, now: datetime,
              used_by: list[str] | None = None) -> ViewFreshness:
    """The view's freshness at ``now``, from the listing and its current online snapshot."""
    facts = view_facts(con, view.name)
    snap = current_snapshot(con, view.name)
    return ViewFreshness(view.name, view.entity, view.version, view.owner, facts.rows, facts.files, facts.oldest,
                         facts.newest, facts.last_ingested_at, snap.materialized_at if snap else None,
                         snap.rows if snap else 0, view.ttl_s, view.stale_after_s, now, list(used_by or []))


# --- online snapshots ------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """A listed online snapshot of a view."""

    path: str  # relative to the log folder
    view: str
    view_version: int
    rows: int
    newest_ts: datetime | None
    as_of: datetime
    materialized_at: datetime


def current_snapshot(con: duckdb.DuckDBPyConnection, view: str) -> Snapshot | None:
    row = con.execute("SELECT path, view, view_version, rows, newest_ts, as_of, materialized_at FROM online_snapshots "
                      "WHERE view = ? AND retired_at IS NULL ORDER BY materialized_at DESC LIMIT 1", [view]).fetchone()
    return Snapshot(*row) if row else None


def replace_snapshot(con: duckdb.DuckDBPyConnection, snap: Snapshot) -> list[str]:
    """List ``snap`` as the view's current snapshot and retire the ones before; return the retired paths (to delete
    once no reader can still be using them). Call inside a transaction."""
    old = [r[0] for r in con.execute("SELECT path FROM online_snapshots WHERE view = ? AND retired_at IS NULL",
                                     [snap.view]).fetchall()]
    con.execute("UPDATE online_snapshots SET retired_at = ? WHERE view = ? AND retired_at IS NULL",
                [snap.materialized_at, snap.view])
    con.execute("INSERT INTO online_snapshots (path, view, view_version, rows, newest_ts, as_of, materialized_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", [snap.path, snap.view, snap.view_version, snap.rows, snap.newest_ts,
                                                 snap.as_of, snap.materialized_at])
    return old


def expired_snapshots(con: duckdb.DuckDBPyConnection, view: str, before: datetime) -> list[str]:
    """Paths of the view's snapshots retired before ``before``; their rows are deleted."""
    paths = [r[0] for r in con.execute("SELECT path FROM online_snapshots WHERE view = ? AND retired_at < ?",
                                       [view, before]).fetchall()]
    con.execute("DELETE FROM online_snapshots WHERE view = ? AND retired_at < ?", [view, before])
    return paths

"""Point-in-time correct training sets: entity rows joined with feature values as they were at each row's time.

Semantics (the contract the tests check against a brute-force reference): for each entity row with key
``k`` and time ``t``, and each view ``V`` asked for, the value of a feature is taken from the row ``r``
of ``V`` with key ``k`` and the greatest event time ``r.ts <= t``; when ``t - r.ts >= TTL`` (the view's
time to live) or there is no such row, the value is NULL. So a value never comes from the future
(``r.ts > t``) and never from longer ago than the TTL. Rows of ``V`` with equal key and event time
cannot both exist: the later ingested one replaced the earlier (see ``offline``), which is how ties
are broken. Event time decides, not ingest time: a late row (ingested after ``t`` with an event time
before it) is used, as it would have been had it arrived on time.

Entity rows keep their order and all their columns; NULL keys match nothing; an entity row's time must
be present. The join is one DuckDB ASOF LEFT JOIN per view (``store.feature_queries.point_in_time_join``) over
the view's Parquet files whose time span can matter (pruned with the rows' time range and the TTL).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mlops_core.entities import FeatureRef, FeatureViewDef
from mlops_core.errors import InvalidInputError, NotFoundError
from mlops_core.store import Store
from mlops_core.store import feature_queries as fqueries
from mlops_core.store import features as fstore
from mlops_core.store.validation import Column, typed_column

#: Entity time columns looked for, in order, when none is named.
TIME_COLUMNS = ("event_timestamp", "timestamp", "ts")


def parse_refs(refs: Any) -> list[FeatureRef]:
    """FeatureRefs from ``"view:feature,view:feature"``, a list of such strings, or FeatureRefs (``view:*``: every
    feature of the view, expanded by ``resolve``). Raises InvalidInputError."""
    if isinstance(refs, str):
        refs = [r for r in refs.split(",") if r.strip()]
    out = []
    for r in refs or []:
        if isinstance(r, FeatureRef):
            out.append(r)
            continue
        view, sep, feature = str(r).strip().partition(":")
        if not sep or not view or not feature:
            raise InvalidInputError(f"Feature {r!r} is not of the form view:feature (or view:* for every feature of "
                                    "the view).", value=str(r))
        out.append(FeatureRef(view.strip(), feature.strip()))
    if not out:
        raise InvalidInputError("Name at least one feature as view:feature.")
    return out


@dataclass
class Resolved:
    """Features asked for, checked against the views: per view (in order of first mention), its features."""

    views: list[FeatureViewDef]
    features: dict[str, list[str]]

    @property
    def refs(self) -> list[FeatureRef]:
        return [FeatureRef(v.name, f) for v in self.views for f in self.features[v.name]]


def resolve(con, refs: list[FeatureRef]) -> Resolved:
    """Check that every view and feature exists (``*`` expands to every feature); raises NotFoundError."""
    views: dict[str, FeatureViewDef] = {}
    features: dict[str, list[str]] = {}
    for r in refs:
        if r.view not in views:
            views[r.view] = fstore.get_view(con, r.view)
            features[r.view] = []
        view = views[r.view]
        names = view.feature_names if r.feature == "*" else [r.feature]
        for name in names:
            if view.feature(name) is None:
                raise NotFoundError(f"View {view.name!r} has no feature {name!r}. Its features: "
                                    f"{', '.join(view.feature_names)}.", view=view.name, feature=name)
            if name not in features[r.view]:
                features[r.view].append(name)
    return Resolved(list(views.values()), features)


def read_entities(source: Any) -> tuple[pa.Table, str]:
    """Entity rows as an Arrow table (types inferred, as pandas and DuckDB would) and a name for messages."""
    if isinstance(source, pa.Table):
        return source, "Arrow table"
    if isinstance(source, pd.DataFrame):
        return pa.Table.from_pandas(source.reset_index(drop=True), preserve_index=False), "DataFrame"
    path = Path(os.fspath(source))
    if not path.is_file():
        raise NotFoundError(f"The entity file {path} does not exist.", path=str(path))
    try:
        if path.suffix.lower() == ".csv":
            import pyarrow.csv as pacsv

            return pacsv.read_csv(path), str(path)
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(path), str(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInputError(f"Cannot read the entity file {path}: {exc}", path=str(path)) from exc
    raise InvalidInputError(f"Cannot read {path}: give a .csv or .parquet file of entity rows.", path=str(path))


def output_names(resolved: Resolved, taken: list[str], full_names: bool) -> dict[tuple[str, str], str]:
    """(view, feature) -> output column: the feature's name, or ``view__feature`` with ``full_names``. Raises
    InvalidInputError when two outputs, or an output and an entity column, share a name."""
    out = {}
    for view in resolved.views:
        for f in resolved.features[view.name]:
            out[(view.name, f)] = f"{view.name}__{f}" if full_names else f
    names = list(out.values()) + list(taken)
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise InvalidInputError(f"Column name(s) {', '.join(map(repr, clash))} would appear twice in the training set "
                                "(two views share a feature name, or the entity rows have such a column); ask for "
                                "full names (view__feature: full_names=True, --full-names) or rename the column.",
                                columns=clash)
    return out


def training_set(store: Store, entities: Any, refs: Any, *, timestamp_column: str | None = None,
                 full_names: bool = False, event_times: bool = False) -> pa.Table:
    """The entity rows (a file, DataFrame or Arrow table with the views' key columns and a time column) with the
    point-in-time values of the features ``refs`` (``view:feature``; see the module docstring), in the entity rows'
    order. ``event_times``: also a ``<view>__event_ts`` column per view (the event time of the values used).

    Raises NotFoundError (file, view, feature), InvalidInputError (missing or mistyped key or time column, empty
    times, clashing names).
    """
    table, name = read_entities(entities)
    refs = parse_refs(refs)
    ts = timestamp_column or next((c for c in TIME_COLUMNS if c in table.column_names), None)
    if ts is None or ts not in table.column_names:
        raise InvalidInputError(f"The entity rows {name} need a time column: {timestamp_column or ' or '.join(TIME_COLUMNS)}"
                                f". They have: {', '.join(table.column_names)}.", source=name)
    with store.connect() as con:
        resolved = resolve(con, refs)
    keys = {k.name: k for v in resolved.views for k in v.keys}
    missing = [k for k in keys if k not in table.column_names]
    if missing:
        raise InvalidInputError(f"The entity rows {name} lack the key column(s) {', '.join(map(repr, missing))} of "
                                f"view(s) {', '.join(v.name for v in resolved.views)}. They have: "
                                f"{', '.join(table.column_names)}.", source=name, columns=missing)
    names = output_names(resolved, table.column_names, full_names)
    row = fqueries.ENTITY_ROW
    if row in table.column_names:
        raise InvalidInputError(f"The entity rows {name} have a column named {row!r}, which is reserved.")
    table = table.append_column(row, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    types = dict(zip(table.column_names, table.schema.types, strict=True))
    ts_col = typed_column("__t", ts, "timestamp", types[ts])
    key_cols = {k: typed_column(k, k, col.dtype, types[k]) for k, col in keys.items()}
    with store.engine() as eng, fqueries.entity_rows(eng, table):
        _check_entities(eng, name, ts, ts_col, key_cols)
        lo, hi = fqueries.entity_time_span(eng, ts_col)
        parts = []
        with store.connect() as con:
            for view in resolved.views:
                start = None if lo is None or not view.ttl_s else lo - timedelta(seconds=view.ttl_s)
                rows = fqueries.view_rows(con, store.logs, view, start, hi)
                parts.append(fqueries.JoinPart(rows, tuple((f, names[(view.name, f)])
                                                           for f in resolved.features[view.name])))
        return fqueries.point_in_time_join(eng, ts_col, key_cols, parts,
                                           passthrough=[c for c in table.column_names if c != row],
                                           event_times=event_times)


def _check_entities(eng, name: str, ts: str, ts_col: Column, key_cols: dict[str, Column]) -> None:
    tests = [(ts, "timestamps", ts_col), *((k, c.what, c) for k, c in key_cols.items())]
    for column, what, col in tests:
        bad = fqueries.bad_entity_values(eng, col)
        if bad is not None:
            shown = ", ".join(f"row {r}: {v!r}" for r, v in bad.first)
            raise InvalidInputError(f"The entity rows {name}: column {column!r} has {bad.count} value(s) that are not "
                                    f"{what} ({shown}).", column=column)
    empty = fqueries.entities_without_time(eng, ts_col)
    if empty:
        raise InvalidInputError(f"The entity rows {name}: {empty} row(s) have no time in column {ts!r}; every row "
                                "needs the moment its features are wanted for.", column=ts)

"""Models whose features come from the feature store: their binding, and their training data from the store.

A binding (``entities.FeatureBinding``, stored on the model) names one entity, its key columns and
the features (``view:feature``) the model takes from the store. Its prediction log then records the
entity key of every prediction beside the feature values used (``ModelInfo.entity_keys``), so that:

- serving can be sent the entity key alone and fetch the rest (``online.get_online_features``);
- a retrain rebuilds the training rows from the store at each prediction's time
  (``rebuild_from_store``): the labelled predictions give the keys, times and labels, the
  point-in-time join gives the values, as the serving path would have seen them.

A model is registered with a feature list (``training_data``) from entity rows (keys, a time
column, the target and any request-time features): the point-in-time join adds the store's
features, the key and time columns are dropped, and the rest is the training frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlops_core.entities import FeatureBinding, FeatureRef, ModelInfo
from mlops_core.errors import InvalidInputError
from mlops_core.features.join import TIME_COLUMNS, parse_refs, read_entities, resolve, training_set
from mlops_core.store import Store


def binding_for(con, refs: Any) -> FeatureBinding:
    """The binding of the features ``refs`` (``view:feature``; ``view:*``); every view must be of one entity.
    Raises NotFoundError, InvalidInputError."""
    resolved = resolve(con, parse_refs(refs))
    entities = sorted({v.entity for v in resolved.views})
    if len(entities) > 1:
        raise InvalidInputError(f"A model takes features of one entity; these views are of {', '.join(entities)}.",
                                entities=entities)
    names = [r.feature for r in resolved.refs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInputError(f"Feature name(s) {', '.join(map(repr, dupes))} come from more than one view; a model's "
                                "features need distinct names.", features=dupes)
    return FeatureBinding(entities[0], list(resolved.views[0].keys), resolved.refs)


@dataclass
class StoreTrainingData:
    """A training frame built from entity rows and the store, and where it came from."""

    frame: pd.DataFrame
    binding: FeatureBinding
    start: Any
    end: Any
    description: str


def training_data(store: Store, entities: Any, refs: Any, target: str, *,
                  timestamp_column: str | None = None) -> StoreTrainingData:
    """The training frame of a model registered with a feature list: the entity rows (keys, time, ``target`` and
    any request-time features) joined point in time with the features ``refs``, oldest first, without the key and
    time columns. Raises NotFoundError, InvalidInputError."""
    table, name = read_entities(entities)
    if target not in table.column_names:
        raise InvalidInputError(f"The entity rows {name} have no target column {target!r}. Columns: "
                                f"{', '.join(table.column_names)}.", column=target)
    with store.connect() as con:
        binding = binding_for(con, refs)
    ts = timestamp_column or next((c for c in TIME_COLUMNS if c in table.column_names), None)
    joined = training_set(store, table, binding.features, timestamp_column=ts)
    frame = joined.to_pandas()
    if ts is None or ts not in frame.columns:  # training_set raised already; keeps the type checker calm
        raise InvalidInputError(f"The entity rows {name} need a time column.")
    times = pd.to_datetime(frame[ts], utc=True, errors="coerce").dt.tz_localize(None)
    order = np.argsort(times.to_numpy(), kind="stable")
    frame = frame.iloc[order].reset_index(drop=True)
    times = times.iloc[order].reset_index(drop=True)
    frame = frame.drop(columns=[ts, *binding.key_names])
    views = ", ".join(binding.views)
    return StoreTrainingData(frame, binding, times.iloc[0].to_pydatetime() if len(times) else None,
                             times.iloc[-1].to_pydatetime() if len(times) else None,
                             f"feature store ({views}) at the times of {name}")


def check_bindable(info: ModelInfo, binding: FeatureBinding) -> None:
    """Raise InvalidInputError unless every bound feature is a feature of the model (the store then supplies it)
    and no key column is one."""
    names = set(info.feature_names)
    missing = [r.feature for r in binding.features if r.feature not in names]
    if missing:
        raise InvalidInputError(f"Model {info.name!r} has no feature(s) {', '.join(map(repr, missing))}; a model "
                                f"takes from the store features it was trained on. Its features: "
                                f"{', '.join(info.feature_names)}.", model=info.name)
    clash = [k for k in binding.key_names if k in names]
    if clash:
        raise InvalidInputError(f"The entity key column(s) {', '.join(clash)} of {binding.entity!r} are features of "
                                f"model {info.name!r}; a key identifies the entity and is not a feature.",
                                model=info.name)


@dataclass
class Rebuilt:
    """What ``rebuild_from_store`` did to a labelled window."""

    rows_from_store: int
    rows_without_key: int
    differs_from_log: dict[str, float] = field(default_factory=dict)  # feature -> share of keyed rows that differ
    missing_in_store: dict[str, float] = field(default_factory=dict)  # feature -> share of keyed rows without value


def rebuild_from_store(store: Store, table: pa.Table, binding: FeatureBinding, *, ts: str = "ts"
                       ) -> tuple[pa.Table, Rebuilt]:
    """The labelled rows ``table`` (key columns, ``ts``, the features, the label) with each bound feature taken from
    the store at the row's time ``ts`` (point in time), and the key columns dropped.

    Rows without an entity key (logged before the model was bound) keep their logged values. Also returns how many
    rows came from the store and, per feature, the share of them whose store value differs from the logged value
    (what serving used): a measure of training-serving skew.
    """
    keys = binding.key_names
    entity = table.select([*keys, ts])
    joined = training_set(store, entity, binding.features, timestamp_column=ts)
    has_key = pc.fill_null(pc.and_(*[pc.is_valid(table.column(k)) for k in keys]) if len(keys) > 1
                           else pc.is_valid(table.column(keys[0])), False)
    keyed = int(pc.sum(has_key).as_py() or 0)
    report = Rebuilt(keyed, table.num_rows - keyed)
    out = table
    for ref in binding.features:
        logged, stored = table.column(ref.feature), joined.column(ref.feature)
        if stored.type != logged.type:
            stored = stored.cast(logged.type, safe=False)
        both = pc.and_kleene(has_key, pc.is_valid(stored))
        same = pc.fill_null(pc.equal(logged, stored), False)
        differs = pc.and_(both, pc.invert(same))
        if keyed:
            report.differs_from_log[ref.feature] = float(pc.sum(differs).as_py() or 0) / keyed
            report.missing_in_store[ref.feature] = float(pc.sum(pc.and_(has_key, pc.is_null(stored))).as_py() or 0) / keyed
        value = pc.if_else(has_key, stored, logged)
        out = out.set_column(out.column_names.index(ref.feature), ref.feature, value)
    return out.drop_columns(keys), report


def refs_text(refs: list[FeatureRef]) -> str:
    return ", ".join(map(str, refs))

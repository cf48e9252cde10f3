"""Definitions of the feature store: entities and feature views, from a TOML file or from arguments.

A definition file (TOML; ``tomllib`` is in the standard library)::

    [[entities]]
    name = "applicant"
    keys = { applicant_id = "string" }          # key column = type, in order (several make a composite key)
    description = "A person who applies for credit"

    [[views]]
    name = "applicant_history"
    entity = "applicant"
    timestamp = "as_of"                         # event-time column of the source rows
    ttl = "30d"                                 # a value serves events up to 30 days after its event time
    freshness = "1d"                            # stale when the newest event time is older (default: the ttl)
    source = "data/bureau/"                     # a CSV/Parquet file or a folder; or { path = "w.duckdb", table = "t" }
    owner = "risk-data"
    description = "Credit bureau snapshots"
    [views.features]
    credit_score = "int"                        # name = type, or { type = "int", description = "..." }
    utilization = "float"

Types: ``float``, ``int``, ``bool``, ``string``. Durations: a number and a unit ``s``, ``m``, ``h``, ``d``
or ``w`` (``90d``, ``12h``); ``0`` or ``none`` for no expiry. Relative source paths are relative to
the definition file.

Validation (InvalidInputError, CLI exit 2, nothing stored): names are identifiers and not reserved;
types and durations are known; no two entities, views, keys or features share a name, and no feature
is named like a key or the timestamp; a view's entity exists (in the file or stored); a source exists
and has every key, timestamp and feature column with values of the declared types. Storing is
versioned: a changed definition becomes the next version (the old ones stay), an identical one
changes nothing. A view that has rows keeps its entity, and an entity whose views have rows keeps its
key columns (define a new view instead).
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from mlops_core.clock import utcnow
from mlops_core.data.schema import check_identifier
from mlops_core.entities import FEATURE_TYPES, DefinitionChange, EntityDef, FeatureColumn, FeatureSource, FeatureViewDef
from mlops_core.errors import InvalidInputError, NotFoundError
from mlops_core.features import sources
from mlops_core.store import Store
from mlops_core.store import features as fstore
from mlops_core.store import runs as runstore
from mlops_core.store import validation as vstore

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 1}


def parse_duration(value: Any, what: str) -> float | None:
    """Seconds from ``90d``, ``12h``, ``30m``, ``45s``, ``2w`` or a number of seconds; None for 0, ``none`` or None.

    Raises InvalidInputError naming ``what`` for anything else.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "0")):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise InvalidInputError(f"{what} {value!r} is not a duration; write a number and a unit s, m, h, d or w "
                                    "(e.g. 90d, 12h), or none.", value=str(value))
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInputError(f"{what} {value!r} must be a positive duration.", value=str(value))
    return seconds or None


def describe_duration(seconds: float | None) -> str:
    """``90d``, ``12h``... for a number of seconds (``none`` for None)."""
    if not seconds:
        return "none"
    for unit in ("w", "d", "h", "m"):
        n = seconds / _UNITS[unit]
        if n >= 1 and n == int(n):
            return f"{int(n)}{unit}"
    return f"{seconds:g}s"


def _name(name: Any, what: str) -> str:
    check_identifier(name, what)
    if name in fstore.RESERVED or name.startswith("__"):
        raise InvalidInputError(f"{what} {name!r} is reserved by the feature store; rename it "
                                f"(reserved: {', '.join(fstore.RESERVED)} and names starting with __).", name=name)
    return name


def _column(name: Any, spec: Any, what: str) -> FeatureColumn:
    """A key or feature column from ``name = "type"`` or ``name = { type = ..., description = ... }``."""
    _name(name, what)
    description = None
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"type", "description"})
        if unknown:
            raise InvalidInputError(f"{what} {name!r} has unknown setting(s) {', '.join(unknown)}; "
                                    "use type and description.", name=name)
        description, spec = spec.get("description"), spec.get("type")
    if spec not in FEATURE_TYPES:
        raise InvalidInputError(f"{what} {name!r} has the unknown type {spec!r}; choose one of: "
                                f"{', '.join(FEATURE_TYPES)}.", name=name, type=str(spec))
    return FeatureColumn(name, spec, description)


def _columns(spec: Any, what: str, owner: str) -> list[FeatureColumn]:
    if isinstance(spec, dict):
        items = list(spec.items())
    elif isinstance(spec, list):  # ["name:type", ...] from the CLI
        items = []
        for item in spec:
            name, sep, dtype = str(item).partition(":")
            if not sep:
                raise InvalidInputError(f"{what} {item!r} of {owner} needs a type: write name:type "
                                        f"(types: {', '.join(FEATURE_TYPES)}).", value=str(item))
            items.append((name.strip(), dtype.strip()))
    else:
        raise InvalidInputError(f"The {what.lower()}s of {owner} must be a table of name = type.", owner=owner)
    cols = [_column(n, t, what) for n, t in items]
    names = [c.name for c in cols]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInputError(f"{owner} names the {what.lower()}(s) {', '.join(map(repr, dupes))} more than once.",
                                owner=owner)
    if not cols:
        raise InvalidInputError(f"{owner} needs at least one {what.lower()}.", owner=owner)
    return cols


def _check_keys(doc: dict, allowed: set[str], what: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise InvalidInputError(f"{what} has unknown setting(s) {', '.join(unknown)}; valid: "
                                f"{', '.join(sorted(allowed))}.", unknown=unknown)


def entity_from(doc: dict) -> EntityDef:
    """An entity from its table in a definition file (or the CLI's arguments); raises InvalidInputError."""
    _check_keys(doc, {"name", "keys", "description"}, f"Entity {doc.get('name')!r}")
    name = _name(doc.get("name"), "Entity name")
    return EntityDef(name, _columns(doc.get("keys"), "Key column", f"entity {name!r}"), doc.get("description"))


def _source(spec: Any, base: Path | None, view: str) -> FeatureSource | None:
    if spec is None or spec == "":
        return None
    def resolve(p: str) -> str:
        path = Path(os.path.expanduser(p))
        return str(path if path.is_absolute() or base is None else base / path)
    if isinstance(spec, dict):
        _check_keys(spec, {"path", "table"}, f"The source of view {view!r}")
        if not spec.get("path"):
            raise InvalidInputError(f"The source of view {view!r} needs a path.", view=view)
        if spec.get("table"):
            return FeatureSource("table", resolve(spec["path"]), str(spec["table"]))
        return sources.source_of(resolve(spec["path"]))
    return sources.source_of(resolve(str(spec)))


def view_from(doc: dict, base: Path | None = None) -> FeatureViewDef:
    """A feature view from its table in a definition file (or the CLI's arguments), keys not yet resolved; raises
    InvalidInputError. ``base``: the folder relative source paths start from."""
    _check_keys(doc, {"name", "entity", "timestamp", "features", "ttl", "freshness", "source", "owner",
                      "description"}, f"View {doc.get('name')!r}")
    name = _name(doc.get("name"), "View name")
    if not doc.get("entity"):
        raise InvalidInputError(f"View {name!r} needs an entity.", view=name)
    if not doc.get("timestamp"):
        raise InvalidInputError(f"View {name!r} needs its event-timestamp column (timestamp = \"...\").", view=name)
    ts = _name(doc["timestamp"], f"Timestamp column of view {name!r}")
    features = _columns(doc.get("features"), "Feature", f"view {name!r}")
    return FeatureViewDef(
        name=name, entity=str(doc["entity"]), keys=[], timestamp=ts, features=features,
        ttl_s=parse_duration(doc.get("ttl"), f"The ttl of view {name!r}"),
        freshness_s=parse_duration(doc.get("freshness"), f"The freshness of view {name!r}"),
        source=_source(doc.get("source"), base, name), owner=doc.get("owner"), description=doc.get("description"))


def read_file(path: str | os.PathLike) -> tuple[list[EntityDef], list[FeatureViewDef]]:
    """The entities and views of a TOML definition file; raises NotFoundError or InvalidInputError."""
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"The definition file {p} does not exist.", path=str(p))
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"Cannot read {p} as TOML: {exc}", path=str(p)) from exc
    _check_keys(doc, {"entities", "views"}, f"The definition file {p}")
    ents, views = doc.get("entities", []), doc.get("views", [])
    if not isinstance(ents, list) or not isinstance(views, list):
        raise InvalidInputError(f"In {p}, write entities as [[entities]] and views as [[views]] tables.", path=str(p))
    if not ents and not views:
        raise InvalidInputError(f"The definition file {p} defines no entity and no view.", path=str(p))
    return [entity_from(e) for e in ents], [view_from(v, p.parent.resolve()) for v in views]


def _same(a: Any, b: Any) -> bool:
    skip = {"version", "created_at", "created_by"}
    return all(getattr(a, f.name) == getattr(b, f.name) for f in dataclasses.fields(a) if f.name not in skip)


def _duplicates(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


def check_source(store: Store, view: FeatureViewDef) -> list[str]:
    """Check that the view's source has every key, timestamp and feature column with values of the declared types;
    return notes (columns the view ignores). Raises InvalidInputError naming the missing or mistyped columns."""
    if view.source is None:
        return []
    sources.check_source_exists(view.source)
    if view.source.kind == "folder" and not any(Path(view.source.path).iterdir()):
        return [f"the source folder {view.source.path} is empty; its columns are checked on ingest"]
    try:
        rows = sources.read_rows(view.source)
    except InvalidInputError as exc:
        raise InvalidInputError(f"The source of view {view.name!r}: {exc}", view=view.name) from exc
    types = dict(rows.batch.types)
    needed = [*view.key_names, view.timestamp, *view.feature_names]
    missing = [c for c in needed if c not in types]
    if missing:
        raise InvalidInputError(
            f"View {view.name!r} names column(s) {', '.join(map(repr, missing))} that its source "
            f"{view.source.describe()} does not have. The source has: {', '.join(types) or 'no columns'}.",
            view=view.name, columns=missing)
    from mlops_core.features.offline import count_bad_values

    with store.engine() as con:
        rows.batch.stage(con)
        try:
            bad = count_bad_values(con, view, types)
        finally:
            vstore.unstage(con)
    if bad:
        detail = "; ".join(f"{c!r}: {n} value(s) are not {what}" for c, n, what in bad)
        raise InvalidInputError(f"The source of view {view.name!r} has values of the wrong type: {detail}.",
                                view=view.name)
    extra = [c for c in types if c not in needed]
    return [f"source column(s) {', '.join(map(repr, extra))} are not part of the view and are ignored"] if extra else []


def define(store: Store, entities: list[EntityDef], views: list[FeatureViewDef], *,
           actor: str) -> list[DefinitionChange]:
    """Validate and store entities and views (new versions where they changed); return what happened to each.

    Everything is checked before anything is stored; the changes are stored in one transaction with one audit row
    each. Raises InvalidInputError (see the module docstring), NotFoundError (an unknown entity).
    """
    for what, names in (("entity", [e.name for e in entities]), ("view", [v.name for v in views])):
        dupes = _duplicates(names)
        if dupes:
            raise InvalidInputError(f"The {what} name(s) {', '.join(map(repr, dupes))} are defined more than once.",
                                    names=dupes)
    with store.connect(create=True) as con:
        stored_entities = {e.name: e for e in fstore.list_entities(con)}
        stored_views = {v.name: v for v in fstore.list_views(con)}
        facts = {v: fstore.view_facts(con, v) for v in stored_views}
    given = {e.name: e for e in entities}
    notes: dict[str, list[str]] = {}
    resolved = []
    for given_view in views:
        entity = given.get(given_view.entity) or stored_entities.get(given_view.entity)
        if entity is None:
            known = sorted(set(given) | set(stored_entities))
            raise InvalidInputError(f"View {given_view.name!r} names the unknown entity {given_view.entity!r}. "
                                    f"Known entities: {', '.join(known) or 'none: define it in the same file'}.",
                                    view=given_view.name, entity=given_view.entity)
        clash = [f for f in given_view.feature_names if f in entity.key_names or f == given_view.timestamp]
        if clash or given_view.timestamp in entity.key_names:
            names = clash or [given_view.timestamp]
            raise InvalidInputError(f"View {given_view.name!r}: {', '.join(map(repr, names))} is both a feature (or "
                                    "the timestamp) and a key column or the timestamp; give each column one role.",
                                    view=given_view.name)
        view = dataclasses.replace(given_view, keys=list(entity.keys))
        old = stored_views.get(view.name)
        if old is not None and facts[view.name].rows and (old.entity != view.entity or old.keys != view.keys):
            raise InvalidInputError(f"View {view.name!r} has rows for entity {old.entity!r} "
                                    f"({', '.join(old.key_names)}); its entity and keys cannot change. Define a view "
                                    "with another name instead.", view=view.name)
        notes[view.name] = check_source(store, view)
        resolved.append(view)
    for entity in entities:
        old = stored_entities.get(entity.name)
        if old is not None and old.keys != entity.keys:
            used = [v for v in stored_views.values() if v.entity == entity.name and facts[v.name].rows]
            if used:
                raise InvalidInputError(
                    f"Entity {entity.name!r} keys the rows of view(s) {', '.join(v.name for v in used)}; its key "
                    "columns cannot change. Define an entity with another name instead.", entity=entity.name)
    changes: list[DefinitionChange] = []
    now = utcnow()
    with store.transaction() as con:
        for given_entity in entities:
            old = stored_entities.get(given_entity.name)
            if old is not None and _same(old, given_entity):
                changes.append(DefinitionChange("entity", given_entity.name, old.version, "unchanged"))
                continue
            entity = dataclasses.replace(given_entity, version=(old.version + 1) if old else 1, created_at=now,
                                         created_by=actor)
            fstore.insert_entity(con, entity)
            changes.append(DefinitionChange("entity", entity.name, entity.version, "updated" if old else "created"))
            runstore.insert_audit(con, actor=actor, action="define_entity", model=None, at=now,
                                  reason=f"entity {entity.name} v{entity.version}",
                                  details={"entity": entity.name, "version": entity.version,
                                           "keys": [k.name for k in entity.keys]})
        for checked in resolved:
            old = stored_views.get(checked.name)
            if old is not None and _same(old, checked):
                changes.append(DefinitionChange("view", checked.name, old.version, "unchanged", notes[checked.name]))
                continue
            view = dataclasses.replace(checked, version=(old.version + 1) if old else 1, created_at=now,
                                       created_by=actor)
            fstore.insert_view(con, view)
            changes.append(DefinitionChange("view", view.name, view.version, "updated" if old else "created",
                                            notes[view.name]))
            runstore.insert_audit(con, actor=actor, action="define_feature_view", model=None, at=now,
                                  reason=f"feature view {view.name} v{view.version}",
                                  details={"view": view.name, "version": view.version, "entity": view.entity,
                                           "features": view.feature_names, "ttl_s": view.ttl_s})
    return changes

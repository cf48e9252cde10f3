"""CLI commands of the feature store: ``mlops features define|entity|view|list|ingest|training-set|materialize|get|
freshness``.

Exit codes: 0 ok; 1 (``freshness``) a view is stale; 2 invalid definition, refused batch, unknown view or
feature, bad entity rows; 4 database busy; 6 permission denied. See docs/features.md.
"""
from __future__ import annotations

from pathlib import Path

from mlops_core.cli import room
from mlops_core.cli.output import frame_records, print_json
from mlops_core.errors import InvalidInputError


def add_commands(sub, common) -> None:
    """Add the ``features`` command and its sub-commands to the parser."""
    p = sub.add_parser("features", help="the feature store: define views, ingest rows, build training sets, serve",
                       description="Entities and feature views, the offline store (point-in-time training sets) and "
                                   "the online store. See docs/features.md.")
    cmds = p.add_subparsers(dest="features_command", metavar="SUBCOMMAND")
    cmds.required = True

    c = cmds.add_parser("define", parents=[common], help="register the entities and views of a TOML file (versioned)")
    c.add_argument("file", metavar="FILE", help="definition file (.toml)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_define)

    c = cmds.add_parser("entity", parents=[common], help="define an entity from arguments")
    c.add_argument("name")
    c.add_argument("--key", action="append", required=True, metavar="COLUMN:TYPE",
                   help="a key column and its type (float, int, bool, string); repeat for a composite key")
    c.add_argument("--description")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_entity)

    c = cmds.add_parser("view", parents=[common], help="define a feature view from arguments")
    c.add_argument("name")
    c.add_argument("--entity", required=True)
    c.add_argument("--timestamp", required=True, help="event-time column of the source rows")
    c.add_argument("--feature", action="append", required=True, metavar="NAME:TYPE", help="repeat for each feature")
    c.add_argument("--ttl", help="how long a value serves after its event time, e.g. 30d (default: forever)")
    c.add_argument("--freshness", help="stale when the newest event time is older than this (default: the ttl)")
    c.add_argument("--source", help="CSV/Parquet file or folder the rows come from")
    c.add_argument("--owner")
    c.add_argument("--description")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_view)

    c = cmds.add_parser("list", parents=[common], help="the views: version, features, rows, freshness, models using them")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_list)

    c = cmds.add_parser("ingest", parents=[common], help="append rows to a view (all or nothing, idempotent)")
    c.add_argument("view")
    c.add_argument("file", nargs="?", metavar="FILE", help="CSV/Parquet file or folder (default: the view's source)")
    c.add_argument("--actor", help="who ingests (recorded in the run and audit log)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_ingest)

    c = cmds.add_parser("training-set", parents=[common],
                        help="entity rows joined point in time with features (never a value from the future)")
    c.add_argument("--entities", required=True, help="CSV/Parquet file: key columns and a time column (and labels)")
    c.add_argument("--features", required=True, help="view:feature,view:feature (view:* for all of a view)")
    c.add_argument("--out", required=True, help="output file (.csv or .parquet)")
    c.add_argument("--timestamp", help="time column of the entity rows (default: event_timestamp, timestamp or ts)")
    c.add_argument("--full-names", action="store_true", help="name the columns view__feature")
    c.add_argument("--event-times", action="store_true", help="add <view>__event_ts: the event time of the values")
    c.set_defaults(func=cmd_training_set)

    c = cmds.add_parser("materialize", parents=[common], help="write the newest row per entity to the online store")
    c.add_argument("views", nargs="*", metavar="VIEW", help="views (default: every view)")
    c.add_argument("--as-of", help="rows with event time up to this moment (ISO 8601 UTC; default now)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_materialize)

    c = cmds.add_parser("get", parents=[common], help="online lookup of features for entity keys")
    c.add_argument("--features", required=True, help="view:feature,...")
    c.add_argument("--key", action="append", required=True, metavar="COLUMN=VALUE",
                   help="an entity's key, e.g. applicant_id=ap-1 (repeat for several entities or key columns; "
                        "columns of one entity separated by commas: region=eu,shop=3)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_get)

    c = cmds.add_parser("freshness", parents=[common],
                        help="each view's newest event time against its limit; exit 1 when one is stale")
    c.add_argument("--alert", action="store_true",
                   help="also raise stale_feature_view alerts for the models that use a stale view")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_freshness)


def _print_changes(changes, as_json: bool) -> int:
    if as_json:
        print_json(changes)
        return 0
    for ch in changes:
        print(f"{ch.kind} {ch.name}: {ch.action} (version {ch.version})")
        for note in ch.notes:
            print(f"  note: {note}")
    return 0


def cmd_define(args) -> int:
    return _print_changes(room(args).features.define(args.file), args.json)


def cmd_entity(args) -> int:
    return _print_changes([room(args).features.define_entity(args.name, args.key, description=args.description)],
                          args.json)


def cmd_view(args) -> int:
    change = room(args).features.define_view(args.name, args.entity, args.timestamp, args.feature, ttl=args.ttl,
                                             freshness=args.freshness, source=args.source, owner=args.owner,
                                             description=args.description)
    return _print_changes([change], args.json)


def cmd_list(args) -> int:
    df = room(args).features.list()
    if args.json:
        print_json(frame_records(df))
        return 0
    if df.empty:
        print("No feature view is defined yet: `mlops features define FILE.toml` (see docs/features.md).")
        return 0
    for r in df.to_dict(orient="records"):
        newest = "no rows" if r["newest_event_ts"] is None or r["newest_event_ts"] != r["newest_event_ts"] else \
            f"newest {r['newest_event_ts']:%Y-%m-%d %H:%M} ({r['age_h']:.1f} h ago)"
        state = "STALE" if r["stale"] else "fresh"
        print(f"{r['view']} v{r['version']} ({r['entity']}: {r['keys']}) {r['rows']:,} rows, {newest}, {state} "
              f"(limit {r['stale_after']}, ttl {r['ttl']})")
        print(f"  features: {r['features']}")
        if r["used_by"]:
            print(f"  used by: {r['used_by']}")
    return 0


def cmd_ingest(args) -> int:
    r = room(args, actor=args.actor).features.ingest(args.view, args.file)
    if args.json:
        print_json(r)
        return 0
    if r.already_ingested:
        print(f"{r.source}: {r.notes[0]}")
        return 0
    span = f" (event times {r.min_event_ts:%Y-%m-%d %H:%M} to {r.max_event_ts:%Y-%m-%d %H:%M})" if r.min_event_ts else ""
    print(f"Ingested {r.rows_written:,} of {r.rows:,} rows into feature view {r.view} as batch {r.batch_id}{span} "
          f"in {r.duration_s:.2f} s.")
    for note in r.notes:
        print(f"note: {note}")
    return 0


def cmd_training_set(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise InvalidInputError(f"--out {out}: give a .csv or .parquet file name.")
    table = room(args).features.training_set(args.entities, args.features, timestamp_column=args.timestamp,
                                             full_names=args.full_names, event_times=args.event_times, arrow=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, out)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, out)
    print(f"Wrote {table.num_rows:,} rows with {table.num_columns} columns to {out}.")
    return 0


def cmd_materialize(args) -> int:
    results = room(args).features.materialize(args.views or None, as_of=args.as_of)
    if args.json:
        print_json(results)
        return 0
    for r in results:
        newest = f", newest event time {r.newest_event_ts:%Y-%m-%d %H:%M}" if r.newest_event_ts else ""
        print(f"{r.view}: {r.rows:,} entities as of {r.as_of:%Y-%m-%d %H:%M}{newest} ({r.duration_s:.2f} s)")
    return 0


def _keys(specs: list[str]) -> list[dict]:
    out = []
    for spec in specs:
        entity = {}
        for part in spec.split(","):
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise InvalidInputError(f"--key {spec!r}: write COLUMN=VALUE (e.g. applicant_id=ap-1).")
            entity[name.strip()] = value.strip()
        out.append(entity)
    return out


def cmd_get(args) -> int:
    rows = room(args).features.get_online_features(args.features, _keys(args.key))
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        print(", ".join(map(str, r.key)) + ":")
        for v in r.values:
            when = f" (event time {v.event_ts:%Y-%m-%d %H:%M})" if v.event_ts else ""
            print(f"  {v.view}:{v.feature} = {v.value!r} [{v.status}]{when}")
    return 0


def cmd_freshness(args) -> int:
    r = room(args)
    fresh = r.features.freshness()
    raised = r.features.check_freshness() if args.alert else []
    if args.json:
        print_json({"views": [{**vars(f), "age_s": f.age_s, "stale": f.stale} for f in fresh], "alerts": raised})
    else:
        for f in fresh:
            limit = "no limit" if f.stale_after_s is None else f"limit {f.stale_after_s / 3600:g} h"
            age = "no rows" if f.age_s is None else f"newest {f.newest_event_ts:%Y-%m-%d %H:%M}, {f.age_s / 3600:.1f} h ago"
            print(f"{f.view}: {'STALE' if f.stale else 'fresh'} ({age}; {limit})"
                  + (f"; used by {', '.join(f.used_by)}" if f.used_by else ""))
        for a in raised:
            print(f"alert {a.id} ({a.severity}): {a.message}")
    return 1 if any(f.stale for f in fresh) else 0

"""CLI commands for backups: ``mlops backup --out DIR``, ``mlops restore DIR [--force]``, ``mlops verify-backup DIR``."""
from __future__ import annotations

from mlops_core.cli import room
from mlops_core.cli.output import print_json


def add_commands(sub, common) -> None:
    """Add this module's sub-commands to the parser."""
    p = sub.add_parser("backup", parents=[common],
                       help="copy the database, its artifacts and its logs into a new folder, with a sha256 manifest")
    p.add_argument("--out", required=True, metavar="DIR", help="a new (or empty) folder for the backup")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", parents=[common],
                       help="replace the database by a backup after checking every file's sha256")
    p.add_argument("folder", metavar="DIR", help="a folder written by `mlops backup`")
    p.add_argument("--force", action="store_true",
                   help="replace an existing database (it is moved aside as <name>.before-restore-<time>)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("verify-backup", parents=[common], help="check a backup against its manifest, restoring nothing")
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)


def _summary(info) -> str:
    return (f"{info.models} model(s), {info.versions} version(s), {info.artifacts} artifact(s), "
            f"{info.log_files} log file(s) with {info.log_rows:,} rows; {info.bytes / 1e6:,.1f} MB, "
            f"{len(info.files)} files, schema {info.schema_version:03d}")


def _doc(info, **more) -> dict:
    return {"folder": str(info.folder), "source": info.source, "created_at": info.created_at,
            "schema_version": info.schema_version, "models": info.models, "versions": info.versions,
            "artifacts": info.artifacts, "log_files": info.log_files, "log_rows": info.log_rows, "bytes": info.bytes,
            "files": len(info.files), **more}


def cmd_backup(args) -> int:
    info = room(args).backup(args.out)
    if args.json:
        print_json(_doc(info))
    else:
        print(f"Backed up {info.source} to {info.folder}: {_summary(info)}.")
    return 0


def cmd_restore(args) -> int:
    r = room(args)
    info, aside = r.restore(args.folder, force=args.force)
    if args.json:
        print_json(_doc(info, restored_to=str(r.store.path), previous_moved_to=str(aside) if aside else None))
        return 0
    print(f"Restored {r.store.path} from {info.folder} (taken {info.created_at:%Y-%m-%d %H:%M} UTC): {_summary(info)}.")
    if aside:
        print(f"The database it replaced was moved to {aside}.")
    return 0


def cmd_verify(args) -> int:
    from mlops_core.room import ControlRoom

    info = ControlRoom.verify_backup(args.folder)
    if args.json:
        print_json(_doc(info, verified=True))
    else:
        print(f"{info.folder} is intact: {_summary(info)}.")
    return 0

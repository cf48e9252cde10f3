"""CLI commands that get data in: ``ingest predictions|labels FILE`` and ``validate``.

Exit codes: ingest 0 when written or already ingested (content anomalies are warnings),
2 when the batch was refused (nothing written). validate 0 clean, 1 anomalies found,
2 structural problem or unreadable file.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from mlops_core.cli import room
from mlops_core.cli.output import print_json
from mlops_core.errors import InvalidInputError


def add_commands(sub, common) -> None:
    """Add this domain's sub-commands to the parser."""
    p = sub.add_parser("ingest", help="append a batch of predictions or labels (CSV/Parquet)",
                       description="Validate a batch and append it in one transaction; a batch with a structural "
                                   "problem is refused whole (exit 2) and nothing is written.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    for kind, text in (("predictions", "logged predictions: request_id, timestamp, features, prediction[, score, "
                                       "version, variant]"),
                       ("labels", "ground truth: request_id, label (or the target column)[, timestamp]")):
        k = kinds.add_parser(kind, parents=[common], help=text)
        k.add_argument("file", metavar="FILE", help="CSV or Parquet file")
        k.add_argument("--model", required=True)
        k.add_argument("--actor", help="who ingests (recorded in the run and audit log; default: your user name)")
        k.add_argument("--json", action="store_true")
        k.set_defaults(func=cmd_ingest, kind=kind)

    p = sub.add_parser("validate", parents=[common], help="check a batch file (or a window of the log) against the schema",
                       description="Exit 0 when clean, 1 when anomalies were found, 2 when the file cannot be read "
                                   "or has a structural problem. Without FILE, validates the logged predictions "
                                   "between --from and --to (default: the last day).")
    p.add_argument("file", metavar="FILE", nargs="?", help="CSV or Parquet batch")
    p.add_argument("--model", required=True)
    p.add_argument("--labels", action="store_true", help="FILE is a label batch")
    p.add_argument("--from", dest="start", help="window start (ISO date or time, UTC) when no FILE is given")
    p.add_argument("--to", dest="end", help="window end (exclusive; default now)")
    p.add_argument("--no-store", action="store_true", help="do not save the report")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_validate)


def cmd_ingest(args) -> int:
    r = room(args, actor=args.actor).model(args.model).ingest(args.file, args.kind)
    if args.json:
        print_json(r)
        return 0
    if r.already_ingested:
        print(f"{args.file}: {r.warnings[0]}")
        return 0
    print(f"Ingested {r.rows_written:,} of {r.rows:,} {r.kind} into {r.model} as batch {r.batch_id} "
          f"(validation report {r.report_id}) in {r.duration_s:.2f} s.")
    for w in r.warnings:
        print(w if w.startswith("note:") else f"warning: {w}")
    for finding in r.run_anomalies:
        print(f"unusual run: {finding.message} (incident {finding.alert_id})")
    return 0


def _when(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInputError(f"{what} {text!r} is not a date or time; use e.g. 2026-01-31 or 2026-01-31T12:00.") from exc


def cmd_validate(args) -> int:
    from mlops_core.store import utcnow

    model = room(args).model(args.model)
    if args.file:
        report = model.validate(args.file, kind="labels" if args.labels else "predictions", store=not args.no_store)
    else:
        end = _when(args.end, "--to") or utcnow()
        start = _when(args.start, "--from") or end - timedelta(days=1)
        report = model.validate_window(start, end, store=not args.no_store)
    code = {"clean": 0, "anomalies": 1, "rejected": 2}[report.status]
    if args.json:
        print_json(report)
        return code
    print(f"{report.source}: {report.rows:,} rows, {report.status}"
          + (f" (report {report.report_id})" if report.report_id else ""))
    if report.ingested_as:
        print(f"  this file was ingested already (batch {report.ingested_as}); its ingest report stands, so this "
              "check was not stored again")
    for a in report.anomalies:
        where = f" {a.feature!r}" if a.feature else ""
        print(f"  {a.severity}: {a.kind}{where}: {a.detail}")
    if report.skew_note:
        print(f"  note: {report.skew_note}")
    return code

"""CLI commands that read the records: runs (pipeline metadata) and audit."""
from __future__ import annotations

import json
import math

from mlops_core.cli import room
from mlops_core.cli.output import add_format_options, frame_records, print_csv, print_json


def add_commands(sub, common) -> None:
    """Add this module's sub-commands to the parser."""
    p = sub.add_parser("runs", parents=[common], help="pipeline runs (newest first)")
    p.add_argument("--model")
    p.add_argument("--limit", type=int, default=20)
    add_format_options(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("audit", parents=[common], help="audit events (newest first)")
    p.add_argument("--model")
    p.add_argument("--limit", type=int, default=50)
    add_format_options(p)
    p.set_defaults(func=cmd_audit)


def cmd_runs(args) -> int:
    df = room(args).runs(args.model).head(args.limit)
    if args.csv:
        print_csv(df)
        return 0
    if args.json:
        recs = frame_records(df)
        for r in recs:
            for k in ("params", "metrics", "statistics"):
                r[k] = json.loads(r[k]) if r.get(k) else {}
            r["anomalies"] = json.loads(r["anomalies"]) if r.get("anomalies") else []
        print_json(recs)
        return 0
    for r in df.to_dict(orient="records"):
        dur = f"{r['duration_s']:.1f}s" if r["duration_s"] == r["duration_s"] and r["duration_s"] is not None else "-"
        print(f"{r['id']}  {r['created_at']:%Y-%m-%d %H:%M:%S} UTC  {r['model'] or '-':<16} {r['kind']:<8} {r['status']:<9} "
              f"{r['progress']:4.0%} {dur:>7}  {r['actor']}: {_text(r['error']) or _text(r['message'])}")
        for finding in json.loads(r["anomalies"]) if _text(r.get("anomalies")) else []:
            print(f"    unusual: {finding['message']}")
    return 0


def cmd_audit(args) -> int:
    df = room(args).audit(args.model).head(args.limit)
    if args.csv:
        print_csv(df)
        return 0
    if args.json:
        recs = frame_records(df)
        for r in recs:
            r["details"] = json.loads(r["details"]) if r.get("details") else None
        print_json(recs)
        return 0
    for r in df.to_dict(orient="records"):
        versions = ""
        if not _missing(r["to_version"]):
            fv = r["from_version"]
            versions = (" -> " if _missing(fv) else f" v{int(fv)} -> ") + f"v{int(r['to_version'])}"
        print(f"{r['occurred_at']:%Y-%m-%d %H:%M:%S} UTC  {r['actor']:<11} {r['action']:<18} {r['model'] or '-'}{versions}"
              f"  {_text(r['reason'])}")
    return 0


def _missing(value) -> bool:
    """None, or NaN (how a frame holds a missing number)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value) -> str:
    """A cell as text: '' for a missing value (None, or NaN from a frame), never 'nan'."""
    return "" if _missing(value) else str(value)

"""CLI commands of the demo domain: ``demo`` builds the demo database."""
from __future__ import annotations

from datetime import datetime, timezone

from mlops_core.errors import InvalidInputError


def add_commands(sub, common) -> None:
    """Add this domain's sub-commands to the parser."""
    p = sub.add_parser("demo", parents=[common],
                       help="build a realistic demo database (two models, 90 days of traffic, history)")
    p.add_argument("--days", type=int, default=90, help="days of simulated traffic ending now (default 90)")
    p.add_argument("--daily", type=int, default=2000,
                   help="credit_default predictions per day (delivery_time gets half; default 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed and day: same database)")
    p.add_argument("--force", action="store_true", help="replace an existing database and its artifacts")
    p.add_argument("--end", help="last moment of traffic, ISO 8601 UTC (default: now); fix it to rebuild an identical database")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from mlops_core.demo.build import build_demo

    end = None
    if args.end:
        try:
            end = datetime.fromisoformat(args.end)
        except ValueError as exc:
            raise InvalidInputError(f"--end {args.end!r} is not an ISO 8601 time such as 2026-11-26T00:00.") from exc
        if end.tzinfo is not None:
            end = end.astimezone(timezone.utc).replace(tzinfo=None)
    summary = build_demo(args.db, days=args.days, daily=args.daily, seed=args.seed, force=args.force, end=end)
    print("\n".join(summary.lines()))
    return 0

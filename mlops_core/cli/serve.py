"""CLI commands that serve models and get them out: serve, score, export, deployment, spool.

``serve`` runs the HTTP scoring service of one model (see docs/serving.md); ``score`` scores a file
the same way and logs it; ``export`` writes a version's artifact and model card; ``deployment`` shows
and sets how requests are served (champion, split, shadow, canary) and acts on the A/B test;
``spool load`` moves what a stopped service left in its spool into the log.
Exit codes as every command: 2 invalid input (a refused file writes nothing), 3 conflict, 5 integrity.
"""
from __future__ import annotations

import sys
from pathlib import Path

from mlops_core.cli import room
from mlops_core.cli.output import frame_records, print_json, promotion_text
from mlops_core.entities import jsonable


def add_commands(sub, common) -> None:
    """Add this module's sub-commands to the parser."""
    p = sub.add_parser("serve", parents=[common], help="serve a model over HTTP (follows promote/rollback live)",
                       description="Answer POST /v1/models/NAME/predict with the production version (or the "
                                   "deployment's split), log every answer through a local spool, expose /healthz "
                                   "and /metrics. Stops cleanly on SIGTERM/SIGINT (the spool is loaded first).")
    p.add_argument("--model", required=True)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--spool", metavar="DIR", help="spool folder (default: <db>_spool/<model> beside the database)")
    p.add_argument("--segment-rows", type=int, default=1000, help="rows per spool segment (what a crash can leave "
                                                                  "unsealed; default 1000)")
    p.add_argument("--segment-seconds", type=float, default=5.0, help="seal a segment after this many seconds")
    p.add_argument("--load-rows", type=int, default=5000, help="ingest when this many rows are sealed ...")
    p.add_argument("--load-delay", type=float, default=5.0, help="... or when the oldest sealed segment is this old")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between two reads of the registry")
    p.add_argument("--actor", help="who writes the log (run and audit rows; default: your user name)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("score", parents=[common], help="score a CSV/Parquet file with the production version (or the "
                                                       "live split), log it and write the scored file")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--model", required=True)
    p.add_argument("--out", metavar="FILE", help="scored file (.csv or .parquet; default FILE.scored.<ext>)")
    p.add_argument("--actor", help="who writes the log (default: your user name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("export", parents=[common], help="write a version's artifact and model card into a folder")
    p.add_argument("--model", required=True)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", type=int)
    which.add_argument("--alias", choices=["production", "challenger"], help="default: production")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("deployment", help="show or set how a model's requests are served; the A/B test")
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    acts.required = True
    a = acts.add_parser("show", parents=[common], help="what serves now and the A/B test's state")
    a.add_argument("--model", required=True)
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_deployment_show)
    a = acts.add_parser("set", parents=[common], help="serve champion only, a split, a shadow or a canary (audited)")
    a.add_argument("--model", required=True)
    a.add_argument("--mode", required=True, choices=["champion", "split", "shadow", "canary"])
    a.add_argument("--challenger", type=int, help="the challenger version (split, shadow, canary)")
    a.add_argument("--weight", type=float, help="split: share of requests the challenger answers (default 0.5)")
    a.add_argument("--steps", help="canary: SHARE:HOLD,... e.g. 5%%:1h,25%%:1h,50%% (the default)")
    a.add_argument("--sticky-key", help="record field whose hash picks the arm (default: the request id)")
    a.add_argument("--guard-alpha", type=float, default=0.01, help="canary: stop when worse at this level")
    a.add_argument("--guard-min-samples", type=int, default=100, help="canary: labelled predictions per arm first")
    a.add_argument("--force", action="store_true", help="let a version the gate rejected answer requests")
    a.add_argument("--reason")
    a.add_argument("--actor", help="who changes it (audit log; default: your user name)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_deployment_set)
    a = acts.add_parser("history", parents=[common], help="every deployment config, oldest first")
    a.add_argument("--model", required=True)
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_deployment_history)
    a = acts.add_parser("check", parents=[common], help="run the canary's guard once (cron-safe)")
    a.add_argument("--model", required=True)
    a.add_argument("--actor")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_deployment_check)
    a = acts.add_parser("promote-winner", parents=[common], help="act on a decided A/B test (audited)")
    a.add_argument("--model", required=True)
    a.add_argument("--reason")
    a.add_argument("--actor")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_deployment_promote_winner)

    p = sub.add_parser("spool", help="the scoring service's spool")
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    acts.required = True
    a = acts.add_parser("load", parents=[common], help="load what a stopped or killed service left in its spool")
    a.add_argument("--model", required=True)
    a.add_argument("--spool", metavar="DIR")
    a.add_argument("--actor")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_spool_load)


def cmd_serve(args) -> int:
    import logging

    from mlops_core.serving.app import ServiceSettings, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model = room(args, actor=args.actor).model(args.model)
    settings = ServiceSettings(poll_s=args.poll, segment_rows=args.segment_rows, segment_seconds=args.segment_seconds,
                               batch_rows=args.load_rows, max_delay_s=args.load_delay,
                               spool_dir=None if args.spool is None else Path(args.spool))
    service = model.scoring_service(settings)
    print(f"Serving {args.model} on http://{args.host}:{args.port} (POST /v1/models/{args.model}/predict, "
          f"GET /healthz, GET /metrics); spool {service.spool.folder}. Stop with Ctrl-C or SIGTERM.",
          file=sys.stderr, flush=True)
    serve(service, host=args.host, port=args.port)  # logs what the final drain loaded when it stops
    return 0


def cmd_score(args) -> int:
    r = room(args, actor=args.actor).model(args.model).score(args.file, out=args.out)
    if args.json:
        print_json(r)
        return 0
    arms = ", ".join(f"{a}: {n:,}" for a, n in r.arms.items())
    print(f"Scored {r.rows:,} rows of {r.source} ({r.mode}; {arms}) into {r.out} in {r.duration_s:.2f} s; logged as "
          f"batch {r.batch_id}" + (f", {r.shadow_rows:,} shadow rows as batch {r.shadow_batch_id}" if r.shadow_rows
                                   else "") + ".")
    for a in r.anomalies:
        print(f"warning: {a}")
    return 0


def cmd_export(args) -> int:
    r = room(args).model(args.model).export(args.out, version=args.version, alias=args.alias)
    if args.json:
        print_json(r)
    else:
        print(f"Exported {r.model} v{r.version}: {r.artifact} (sha256 {r.sha256}) and {r.card}.")
    return 0


def _status_text(s) -> str:
    return f"{s.model}: {s.description}" + (f" (since {s.since:%Y-%m-%d %H:%M} UTC)" if s.since else "")


def cmd_deployment_show(args) -> int:
    model = room(args).model(args.model)
    s = model.serving()
    ab = model.ab_status() if s.config.mode != "champion" else None
    if args.json:
        out = {"serving": s, "ab_test": None}
        if ab is not None:
            out["ab_test"] = {"test": ab.test, "horizon": ab.horizon, "remaining": ab.remaining, "decided": ab.decided,
                              "winner": ab.winner, "recommendation": ab.recommendation,
                              "arms": frame_records(ab.arms)}
        print_json(out)
        return 0
    print(_status_text(s))
    if ab is not None:
        print(ab.recommendation)
    return 0


def cmd_deployment_set(args) -> int:
    c = room(args, actor=args.actor).model(args.model).set_deployment(
        args.mode, challenger=args.challenger, weight=args.weight, steps=args.steps, sticky_key=args.sticky_key,
        guard_alpha=args.guard_alpha, guard_min_samples=args.guard_min_samples, reason=args.reason, force=args.force)
    if args.json:
        print_json(c)
    else:
        s = room(args).model(args.model).serving()
        print(f"Deployment of {args.model} set: {s.description}.")
    return 0


def cmd_deployment_history(args) -> int:
    df = room(args).model(args.model).deployment_configs()
    if args.json:
        print_json(frame_records(df))
        return 0
    for r in df.to_dict(orient="records"):
        ch = f" v{int(r['challenger'])}" if r["challenger"] == r["challenger"] and r["challenger"] is not None else ""
        end = f" until {r['ended_at']:%Y-%m-%d %H:%M} ({r['end_reason']})" if r["ended_at"] is not None and \
            r["ended_at"] == r["ended_at"] else " (in force)"
        print(f"{r['started_at']:%Y-%m-%d %H:%M}  {r['mode']:<8}{ch} weight={r['weight']:.2f} by {r['actor']}{end}"
              f"  {r['reason'] or ''}")
    if len(df) == 0:
        print(f"{args.model} was never configured: the production version answers every request.")
    return 0


def cmd_deployment_check(args) -> int:
    r = room(args, actor=args.actor).model(args.model).check_canary()
    if args.json:
        print_json(r)
    else:
        print(r.message)
    return 0


def cmd_deployment_promote_winner(args) -> int:
    r = room(args, actor=args.actor).model(args.model).promote_winner(reason=args.reason)
    if args.json:
        print_json({"winner": r.status.winner, "promotion": r.promotion, "config": r.config,
                    "test": jsonable(r.status.test)})
    elif r.promotion is not None:
        print(promotion_text(args.model, r.promotion, what=" (the A/B winner)") + "; serving champion only.")
    else:
        print(f"The champion stays; the test ended and {args.model} serves champion only.")
    return 0


def cmd_spool_load(args) -> int:
    done = room(args, actor=args.actor).model(args.model).load_spool(args.spool)
    if args.json:
        print_json(done)
    else:
        print(f"Loaded {done.segments} segment(s): {done.rows:,} predictions and {done.shadow_rows:,} shadow rows "
              "into the log.")
    return 0

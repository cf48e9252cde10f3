"""CLI commands of retraining and automation: retrain (and the background job), the job worker, policy."""
from __future__ import annotations

import signal
import sys

from mlops_core.cli import parse_settings, room
from mlops_core.cli.output import print_json
from mlops_core.errors import InvalidInputError, exit_code_of

UNSET = object()  # tells "flag not given" from "--every-days none" (which clears the field)


def add_commands(sub, common) -> None:
    """Add this module's sub-commands to the parser."""
    p = sub.add_parser("retrain", parents=[common], help="retrain a model on fresh labelled data, gate it and register the candidate")
    p.add_argument("--model", help="model to retrain")
    p.add_argument("--run-id", help=argparse_suppress())
    p.add_argument("--wait", action="store_true", help="wait for the job and print its outcome and exit with its code: "
                   "0 succeeded, 5 an artifact failed its integrity check, 2 invalid data or parameters, 1 other "
                   "failures (default: print the run id and return)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--window-days", type=float, help="labelled rows of the last N days (default 30)")
    p.add_argument("--end", help="end of the data window, ISO date/time (default: now)")
    p.add_argument("--min-rows", type=int, help="fewest labelled rows to train on (default 200)")
    p.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                   help="override a hyperparameter of the champion's estimator, e.g. --set learning_rate=0.05 (repeatable)")
    p.add_argument("--promote", action="store_true", help="promote the candidate if it passes the gate")
    p.add_argument("--actor", help="act under another name in the audit log (admins only; default: your user name)")
    p.add_argument("--timeout", type=float, help="with --wait: give up waiting after N seconds (the job goes on)")
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("worker", parents=[common],
                       help="run the database's job worker in the foreground (the app starts one on demand), "
                            "or show or stop the running one")
    p.add_argument("--idle", type=float, metavar="SECONDS",
                   help="exit after this long without work (default: $MLOPS_WORKER_IDLE_S, else 600)")
    p.add_argument("--status", action="store_true", help="print the running worker's pid (exit 1 when none runs)")
    p.add_argument("--stop", action="store_true", help="stop the running worker (a job it runs is marked failed)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("policy", parents=[common], help="show or change a model's automation policy")
    p.add_argument("--model", required=True)
    p.add_argument("--mode", choices=["manual", "automated"])
    p.add_argument("--drift-share-above", type=_float_or_none, metavar="X|none", default=UNSET)
    p.add_argument("--metric", help="metric watched by --metric-threshold (default: the headline metric)")
    p.add_argument("--metric-threshold", type=_float_or_none, metavar="Y|none", default=UNSET,
                   help="trigger when the metric is worse than Y")
    p.add_argument("--every-days", type=_float_or_none, metavar="N|none", default=UNSET, help="retrain on a schedule")
    p.add_argument("--cooldown-hours", type=float)
    p.add_argument("--window-days", type=float, help="retrain data window")
    p.add_argument("--min-rows", type=int)
    p.add_argument("--gate", action="append", metavar="RULE",
                   help="gate rule (repeatable) e.g. 'roc_auc>=0.7', 'roc_auc+=0.005', 'rmse+=2%%'; 'default' restores the default gate, 'none' disables it")
    p.add_argument("--actor", help="act under another name in the audit log (admins only; default: your user name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_policy)


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def _float_or_none(text: str):
    if text.lower() in ("none", "off", ""):
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise InvalidInputError(f"Expected a number or 'none', got {text!r}.") from exc


def _retrain_summary(run) -> dict:
    s = run.statistics or {}
    gate = s.get("gate") or {}
    return {
        "run_id": run.id, "model": run.model, "status": run.status, "error": run.error, "message": run.message,
        "candidate_version": s.get("candidate_version"), "candidate_status": s.get("status"),
        "candidate_metrics": s.get("candidate_metrics"), "champion_version": s.get("champion_version"),
        "champion_metrics": s.get("champion_metrics"),
        "gate": {"passed": gate.get("passed"), "reasons": gate.get("reasons", [])} if gate else None,
        "promoted": s.get("promoted"), "rows": s.get("rows"), "train_rows": s.get("train_rows"),
        "holdout_rows": s.get("holdout_rows"), "window_start": s.get("window_start"), "window_end": s.get("window_end"),
        "duration_s": run.duration_s,
    }


def _fmt_metrics(m: dict | None) -> str:
    if not m:
        return "n/a"
    return ", ".join(f"{k}={v:.4f}" for k, v in m.items() if isinstance(v, (int, float)))


def cmd_retrain(args) -> int:
    if args.run_id:  # the background job itself
        signal.signal(signal.SIGTERM, _raise_interrupt)
        room(args).execute_retrain(args.run_id)
        return 0
    if not args.model:
        raise InvalidInputError("retrain needs --model NAME.")
    params = {"window_days": args.window_days, "end": args.end, "min_rows": args.min_rows,
              "auto_promote": args.promote}
    if args.set:
        params["hyperparameters"] = parse_settings(args.set)
    params = {k: v for k, v in params.items() if v is not None}
    r = room(args, actor=args.actor)
    run_id = r.model(args.model).retrain(params)
    if not args.wait:
        if args.json:
            print_json({"run_id": run_id, "status": "queued"})
        else:
            print(f"Started retrain {run_id} of {args.model} in the background. Follow it with "
                  f"`mlops runs --model {args.model}` or add --wait.")
        return 0
    progress = None if args.json else (lambda r: print(f"  [{r.progress:4.0%}] {r.message}", file=sys.stderr))
    run = r.wait(run_id, timeout=args.timeout, on_progress=progress)
    summary = _retrain_summary(run)
    if args.json:
        print_json(summary)
    elif run.status == "failed":
        print(f"Retrain {run_id} failed: {run.error}")
    else:
        print(f"Retrain {run_id}: version {summary['candidate_version']} registered as {summary['candidate_status']} "
              f"({summary['train_rows']:,} training rows, holdout {summary['holdout_rows']:,}).")
        print(f"  candidate:  {_fmt_metrics(summary['candidate_metrics'])}")
        print(f"  champion v{summary['champion_version']}: {_fmt_metrics(summary['champion_metrics'])}")
        print(f"  gate {'PASSED' if summary['gate']['passed'] else 'FAILED'}:")
        for r in summary["gate"]["reasons"]:
            print(f"    - {r}")
        if summary["promoted"]:
            print(f"  promoted v{summary['candidate_version']} to production.")
    if run.status == "succeeded":
        return 0
    # The job ran in another process: the kind of error it recorded picks the exit code (integrity -> 5).
    return exit_code_of((run.statistics or {}).get("error_kind"))


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_worker(args) -> int:
    from mlops_core.lifecycle import worker
    from mlops_core.store import Store

    store = Store(args.db)
    if args.status or args.stop:
        pid = worker.running_pid(store)
        if args.stop:
            stopped = worker.stop(store)
            print(f"Worker {pid} stopped." if pid and stopped else "No worker was running." if stopped
                  else f"Worker {pid} is still running.")
            return 0 if stopped else 1
        print(f"Worker {pid} serves {store.display}." if pid else f"No worker serves {store.display}.")
        return 0 if pid else 1
    if not store.exists():
        from mlops_core.errors import NotFoundError

        raise NotFoundError(f"No database at {store.display}.", path=store.display)
    return worker.serve(store, idle=args.idle)


def cmd_policy(args) -> int:
    from mlops_core import metrics

    changes = {}
    for name in ("mode", "cooldown_hours", "window_days", "min_rows", "metric"):
        v = getattr(args, name)
        if v is not None:
            changes[name] = v
    for name in ("drift_share_above", "metric_threshold", "every_days"):
        if getattr(args, name) is not UNSET:
            changes[name] = getattr(args, name)
    if args.gate:
        if args.gate == ["default"]:
            changes["gate"] = None
        elif args.gate == ["none"]:
            changes["gate"] = []
        else:
            changes["gate"] = list(args.gate)
    model = room(args, actor=args.actor).model(args.model)
    pol = model.set_policy(**changes) if changes else model.policy()
    if args.json:
        print_json(pol)
        return 0
    info = model.info
    rules = pol.gate_rules(info.task)
    print(f"Policy of {args.model}: mode {pol.mode}" + ("" if pol.stored else " (defaults; nothing stored yet)"))
    metric = pol.metric or metrics.headline(info.task)
    triggers = [f"drift share above {pol.drift_share_above:g}" if pol.drift_share_above is not None else None,
                f"{metric} worse than {pol.metric_threshold:g}" if pol.metric_threshold is not None else None,
                f"every {pol.every_days:g} days" if pol.every_days is not None else None]
    print("  triggers: " + ("; ".join(t for t in triggers if t) or "none (the policy never fires)"))
    print(f"  cool-down {pol.cooldown_hours:g} h; retrain window {pol.window_days:g} days, min rows {pol.min_rows}")
    print("  gate: " + ("; ".join(r.describe() for r in rules) or "no rules (everything passes)")
          + (" (default)" if pol.gate is None else ""))
    return 0



"""CLI commands of the operations domain: retrain, promote, rollback, versions, compare, runs, audit, policy, monitor."""
from __future__ import annotations

import json
import signal
import sys

from mlops_core.errors import InvalidInputError
from mlops_core.store import jobs as _jobs  # noqa: F401  (registers the dead-job reaper for every command)
from mlops_core.cli import frame_records, print_json

UNSET = object()  # tells "flag not given" from "--every-days none" (which clears the field)


def add_commands(sub, common) -> None:
    """Add this domain's sub-commands to the parser."""
    p = sub.add_parser("retrain", parents=[common], help="retrain a model on fresh labelled data, gate it and register the candidate")
    p.add_argument("--model", help="model to retrain")
    p.add_argument("--run-id", help=argparse_suppress())
    p.add_argument("--wait", action="store_true", help="wait for the job and print its outcome (default: print the run id and return)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--window-days", type=float, help="labelled rows of the last N days (default 30)")
    p.add_argument("--end", help="end of the data window, ISO date/time (default: now)")
    p.add_argument("--min-rows", type=int, help="fewest labelled rows to train on (default 200)")
    p.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                   help="override a hyperparameter of the champion's estimator, e.g. --set learning_rate=0.05 (repeatable)")
    p.add_argument("--promote", action="store_true", help="promote the candidate if it passes the gate")
    p.add_argument("--actor", default="cli")
    p.add_argument("--timeout", type=float, help="with --wait: give up waiting after N seconds (the job goes on)")
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("promote", parents=[common], help="make a version the production version")
    p.add_argument("--model", required=True)
    p.add_argument("--version", required=True, type=int)
    p.add_argument("--reason")
    p.add_argument("--force", action="store_true", help="promote even a version the gate rejected (the audit says so)")
    p.add_argument("--actor", default="cli")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("rollback", parents=[common], help="put back the previous production version (again: further back)")
    p.add_argument("--model", required=True)
    p.add_argument("--to", type=int, help="an earlier production version to go back to")
    p.add_argument("--reason")
    p.add_argument("--actor", default="cli")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("versions", parents=[common], help="a model's versions with status, metrics and gate verdict")
    p.add_argument("--model", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_versions)

    p = sub.add_parser("compare", parents=[common], help="versions side by side: same holdout, windows, hyperparameters, lineage")
    p.add_argument("--model", required=True)
    p.add_argument("--versions", required=True, help="comma-separated, e.g. 2,3")
    p.add_argument("--all-hyperparameters", action="store_true", help="show every hyperparameter, not only differences")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("runs", parents=[common], help="pipeline runs (newest first)")
    p.add_argument("--model")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("audit", parents=[common], help="audit events (newest first)")
    p.add_argument("--model")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)

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
    p.add_argument("--actor", default="cli")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_policy)

    p = sub.add_parser("abtest", parents=[common], help="A/B test a challenger version against production on labelled traffic")
    p.add_argument("--model", required=True)
    p.add_argument("--challenger", required=True, type=int, help="version serving the challenger arm")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--min-samples", type=int, default=200, help="labelled predictions needed per arm")
    p.add_argument("--promote", action="store_true", help="promote the challenger when it wins")
    p.add_argument("--actor", default="cli")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_abtest)

    p = sub.add_parser("monitor", parents=[common], help="run monitoring and evaluate the policy once (for cron)")
    p.add_argument("--model", required=True)
    p.add_argument("--wait", action="store_true", help="if a retrain starts, wait for it and report its outcome")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_monitor)


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


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


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
    from mlops_core.lifecycle import jobs, retrain

    if args.run_id:  # the background job itself
        signal.signal(signal.SIGTERM, _raise_interrupt)
        retrain.execute(args.run_id, db=args.db)
        return 0
    if not args.model:
        raise InvalidInputError("retrain needs --model NAME.")
    params = {"window_days": args.window_days, "end": args.end, "min_rows": args.min_rows,
              "auto_promote": args.promote}
    if args.set:
        hp = {}
        for item in args.set:
            if "=" not in item:
                raise InvalidInputError(f"--set takes PARAM=VALUE, e.g. learning_rate=0.05; got {item!r}.")
            k, v = item.split("=", 1)
            hp[k.strip()] = _parse_value(v.strip())
        params["hyperparameters"] = hp
    params = {k: v for k, v in params.items() if v is not None}
    run_id = jobs.start_retrain(args.model, actor=args.actor, trigger="manual", params=params, db=args.db)
    if not args.wait:
        if args.json:
            print_json({"run_id": run_id, "status": "queued"})
        else:
            print(f"Started retrain {run_id} of {args.model} in the background. Follow it with "
                  f"`python -m mlops_core runs --model {args.model}` or add --wait.")
        return 0
    progress = None if args.json else (lambda r: print(f"  [{r.progress:4.0%}] {r.message}", file=sys.stderr))
    run = jobs.wait(run_id, timeout=args.timeout, db=args.db, on_progress=progress)
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
    return 0 if run.status == "succeeded" else 1


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_promote(args) -> int:
    from mlops_core.lifecycle import registry

    r = registry.promote(args.model, args.version, actor=args.actor, reason=args.reason, force=args.force, db=args.db)
    if args.json:
        print_json(r)
    else:
        was = f"v{r['from_version']}" if r["from_version"] is not None else "none"
        print(f"Promoted {args.model} v{r['to_version']} to production (was {was})"
              + (" — forced over the gate's rejection." if r["forced"] else "."))
    return 0


def cmd_rollback(args) -> int:
    from mlops_core.lifecycle import registry

    r = registry.rollback(args.model, to=args.to, actor=args.actor, reason=args.reason, db=args.db)
    if args.json:
        print_json(r)
    else:
        print(f"Rolled {args.model} back from v{r['from_version']} to v{r['to_version']}.")
    return 0


def cmd_versions(args) -> int:
    from mlops_core.lifecycle import registry

    df = registry.versions_frame(args.model, db=args.db)
    if args.json:
        print_json(frame_records(df))
        return 0
    for rec in df.to_dict(orient="records"):
        metrics = {k[len("holdout_"):]: v for k, v in rec.items() if k.startswith("holdout_") and k != "holdout_rows"}
        gate = "" if rec["gate_passed"] is None or rec["gate_passed"] != rec["gate_passed"] else (
            " gate passed" if rec["gate_passed"] else " gate FAILED")
        print(f"v{rec['version']:<3} {rec['status']:<10} {rec['algorithm']} rows={rec['train_rows']} "
              f"created {rec['created_at']:%Y-%m-%d %H:%M} by {rec['created_by']}{gate}")
        print(f"     holdout: {_fmt_metrics(metrics)}")
    return 0


def cmd_compare(args) -> int:
    from mlops_core.lifecycle import registry

    try:
        versions = [int(v) for v in args.versions.split(",") if v.strip()]
    except ValueError as exc:
        raise InvalidInputError(f"--versions takes numbers separated by commas, e.g. 2,3; got {args.versions!r}.") from exc
    c = registry.compare(args.model, versions, db=args.db)
    hp = c.hyperparameters if args.all_hyperparameters else c.hyperparameter_differences()
    if args.json:
        print_json({
            "model": c.model, "versions": c.versions, "holdout_source": c.holdout_source,
            "holdout": json.loads(c.holdout.to_json()), "recorded_holdout": json.loads(c.recorded.to_json()),
            "hyperparameters": json.loads(hp.to_json()), "lineage": frame_records(c.lineage),
            "windows": frame_records(c.windows) if len(c.windows) else [], "errors": c.errors or {},
        })
        return 0
    print(f"{c.model}: versions {', '.join(f'v{v}' for v in c.versions)}")
    print(f"\nHoldout metrics on {c.holdout_source}:")
    print(c.holdout.to_string() if len(c.holdout) else "  (none)")
    print("\nHoldout metrics recorded at registration (each on its own holdout):")
    print(c.recorded.to_string())
    print("\nHyperparameters" + ("" if args.all_hyperparameters else " that differ") + ":")
    print(hp.to_string() if len(hp) else "  (identical)")
    print("\nLineage:")
    print(c.lineage.drop(columns=["artifact_path"]).to_string(index=False))
    for k, v in (c.errors or {}).items():
        print(f"\nnote ({k}): {v}")
    return 0


def cmd_runs(args) -> int:
    from mlops_core.lifecycle import registry

    df = registry.runs(args.model, db=args.db).head(args.limit)
    if args.json:
        recs = frame_records(df)
        for r in recs:
            for k in ("params", "metrics", "statistics"):
                r[k] = json.loads(r[k]) if r.get(k) else {}
        print_json(recs)
        return 0
    for r in df.to_dict(orient="records"):
        dur = f"{r['duration_s']:.1f}s" if r["duration_s"] == r["duration_s"] and r["duration_s"] is not None else "-"
        print(f"{r['id']}  {r['created_at']:%Y-%m-%d %H:%M:%S}  {r['model'] or '-':<16} {r['kind']:<8} {r['status']:<9} "
              f"{r['progress']:4.0%} {dur:>7}  {r['actor']}: {r['error'] or r['message'] or ''}")
    return 0


def cmd_audit(args) -> int:
    from mlops_core.lifecycle import registry

    df = registry.audit_log(args.model, db=args.db).head(args.limit)
    if args.json:
        recs = frame_records(df)
        for r in recs:
            r["details"] = json.loads(r["details"]) if r.get("details") else None
        print_json(recs)
        return 0
    for r in df.to_dict(orient="records"):
        versions = ""
        if r["to_version"] == r["to_version"] and r["to_version"] is not None:
            fv = r["from_version"]
            versions = (f" v{int(fv)} -> " if fv == fv and fv is not None else " -> ") + f"v{int(r['to_version'])}"
        print(f"{r['occurred_at']:%Y-%m-%d %H:%M:%S}  {r['actor']:<11} {r['action']:<18} {r['model'] or '-'}{versions}"
              f"  {r['reason'] or ''}")
    return 0


def cmd_policy(args) -> int:
    from dataclasses import asdict

    from mlops_core.lifecycle import policies as automation

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
    pol = automation.set_policy(args.model, actor=args.actor, db=args.db, **changes) if changes else \
        automation.get_policy(args.model, db=args.db)
    if args.json:
        print_json(asdict(pol))
        return 0
    from mlops_core.lifecycle import gate, registry

    info = registry.get_model(args.model, db=args.db)
    rules = pol.gate_rules(info.task, info.positive_class)
    print(f"Policy of {args.model}: mode {pol.mode}" + ("" if pol.stored else " (defaults; nothing stored yet)"))
    metric = pol.metric or gate.headline_metric(info.task, info.positive_class)
    triggers = [f"drift share above {pol.drift_share_above:g}" if pol.drift_share_above is not None else None,
                f"{metric} worse than {pol.metric_threshold:g}" if pol.metric_threshold is not None else None,
                f"every {pol.every_days:g} days" if pol.every_days is not None else None]
    print("  triggers: " + ("; ".join(t for t in triggers if t) or "none (the policy never fires)"))
    print(f"  cool-down {pol.cooldown_hours:g} h; retrain window {pol.window_days:g} days, min rows {pol.min_rows}")
    print("  gate: " + ("; ".join(r.describe() for r in rules) or "no rules (everything passes)")
          + (" (default)" if pol.gate is None else ""))
    return 0


def cmd_monitor(args) -> int:
    from mlops_core.lifecycle import policies as automation, jobs

    d = automation.evaluate(args.model, db=args.db)
    out = {"model": d.model, "mode": d.mode, "evaluated_at": d.evaluated_at, "signals": d.signals,
           "triggers": d.triggers, "action": d.action, "message": d.message, "retrain_run_id": d.retrain_run_id,
           "alert_ids": d.alert_ids}
    if args.wait and d.retrain_run_id:
        out["retrain"] = _retrain_summary(jobs.wait(d.retrain_run_id, db=args.db))
    if args.json:
        print_json(out)
        return 0
    print(f"{d.model} (mode {d.mode}): {d.message}")
    if "retrain" in out:
        r = out["retrain"]
        if r["status"] == "failed":
            print(f"  retrain {r['run_id']} failed: {r['error']}")
        else:
            print(f"  retrain {r['run_id']}: v{r['candidate_version']} {r['candidate_status']}"
                  + ("; promoted to production" if r["promoted"] else ""))
    return 0


def cmd_abtest(args) -> int:
    from dataclasses import asdict

    from mlops_core.lifecycle import abtest

    if args.promote:
        result, promo = abtest.promote_if_better(args.model, args.challenger, actor=args.actor, alpha=args.alpha,
                                                 min_samples=args.min_samples, db=args.db)
    else:
        result, promo = abtest.evaluate(args.model, args.challenger, alpha=args.alpha, min_samples=args.min_samples,
                                        db=args.db), None
    if args.json:
        print_json({**asdict(result), "promoted": promo is not None})
        return 0
    print(result.message)
    if promo is not None:
        print(f"Promoted {args.model} v{promo['to_version']} to production (was v{promo['from_version']}).")
    return 0

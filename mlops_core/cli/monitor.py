"""CLI commands that watch models: performance, drift, drift settings, alerts, alert rules, monitor."""
from __future__ import annotations

import json
import math

from mlops_core.cli import room
from mlops_core.cli.output import add_format_options, frame_records, print_csv, print_json
from mlops_core.clock import utcnow
from mlops_core.entities import feature_label, jsonable


def add_commands(sub, common) -> None:
    """Add this domain's sub-commands to the parser."""
    p = sub.add_parser("performance", parents=[common], help="metrics per time window and version (labels joined as they arrive)")
    p.add_argument("--model", required=True)
    p.add_argument("--window", default="day", choices=["hour", "day", "week"])
    p.add_argument("--from", dest="start", help="first day/time (YYYY-MM-DD[THH:MM], UTC)")
    p.add_argument("--to", dest="end", help="last day (inclusive) or time (exclusive)")
    p.add_argument("--version", type=int, action="append", help="only this version (repeatable)")
    p.add_argument("--estimate", action="store_true",
                   help="estimate accuracy, precision, recall, F1 and ROC AUC from scores while labels are missing "
                        "(binary classifiers), with a band and the realized value where labels exist")
    p.add_argument("--estimate-history", action="store_true",
                   help="stored estimates against the labels that arrived since (error, realized value in band)")
    p.add_argument("--level", type=float, default=0.95, help="level of the estimate's band (default 0.95)")
    p.add_argument("--reference-from", help="with --estimate: calibrate each version on its labelled log from this "
                                            "day/time (with --reference-to) instead of its stored calibration")
    p.add_argument("--reference-to", help="last day (inclusive) or time (exclusive) of the reference window")
    p.add_argument("--no-store", action="store_true", help="with --estimate: compute only; store nothing")
    p.add_argument("--no-auc", action="store_true",
                   help="skip the exact ROC AUC (the one metric that sorts the scores: on Spark its per-score counts "
                        "are collected to this process)")
    _add_engine_option(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_performance)

    p = sub.add_parser("drift", parents=[common], help="drift per feature and window against the training reference (stored)")
    p.add_argument("--model", required=True)
    p.add_argument("--window", default="day", choices=["hour", "day", "week"])
    p.add_argument("--from", dest="start", help="first day/time (YYYY-MM-DD[THH:MM], UTC)")
    p.add_argument("--to", dest="end", help="last day (inclusive) or time (exclusive)")
    p.add_argument("--reference-id", type=int, help="stored reference to compare with (default: production training data)")
    p.add_argument("--method", action="append", help="method for every feature: wasserstein, jensen_shannon, psi, linf, ks, chi2")
    p.add_argument("--reference-from", help="use the log from this day/time as the reference (with --reference-to)")
    p.add_argument("--reference-to", help="last day (inclusive) or time (exclusive) of the reference window")
    p.add_argument("--no-store", action="store_true", help="compute only; do not write drift_results")
    p.add_argument("--all", action="store_true", help="print every window, feature and method (default: a summary of "
                                                    "the latest full window)")
    p.add_argument("--top", type=int, default=10, help="features listed by score in the summary (default 10)")
    _add_engine_option(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_drift)

    p = sub.add_parser("drift-settings", parents=[common], help="show or set a model's drift method and threshold per feature")
    p.add_argument("--model", required=True)
    p.add_argument("--feature", default="*", help="feature (or __prediction__, __score__, __target__); * = every feature")
    p.add_argument("--method", action="append", help="wasserstein, jensen_shannon, psi, linf, ks, chi2 (repeatable)")
    p.add_argument("--threshold", type=float, help="threshold for the given method(s) (default: the method's)")
    p.add_argument("--clear", action="store_true", help="remove the feature's setting (back to the defaults)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_drift_settings)

    p = sub.add_parser("alerts", parents=[common], help="list incidents (open ones by default), or acknowledge, "
                                                        "resolve or snooze one: alerts ack|resolve|snooze ID")
    p.add_argument("action", nargs="?", default="list", choices=["list", "ack", "resolve", "snooze"],
                   help="list (default), ack (someone is on it), resolve (done; it reopens if it fires again), "
                        "snooze (hide it for --hours)")
    p.add_argument("id", nargs="?", type=int, help="incident id (with ack, resolve, snooze)")
    p.add_argument("--model", help="only this model's incidents")
    p.add_argument("--all", action="store_true", help="every incident: acknowledged, snoozed and resolved ones too")
    p.add_argument("--hours", type=float, default=24.0, help="with snooze: for how long (default 24, at most 720)")
    p.add_argument("--actor", help="act under another name in the audit log (admins only; default: your user name)")
    add_format_options(p)
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("webhook", parents=[common], help="where incidents are posted (Slack-compatible JSON): "
                                                         "webhook add|list|remove|test|deliver")
    p.add_argument("action", choices=["add", "list", "remove", "test", "deliver"],
                   help="add --url URL; list; remove ID; test ID (post a test message); deliver (send what is "
                        "queued now, with --retry-failed the failed ones too)")
    p.add_argument("id", nargs="?", type=int, help="webhook id (with remove, test)")
    p.add_argument("--url", help="with add: an http(s) address, e.g. a Slack incoming webhook")
    p.add_argument("--model", help="with add: only this model's incidents (default: every model); with list: the "
                                   "webhooks of this model")
    p.add_argument("--min-severity", default="warning", choices=["info", "warning", "critical"],
                   help="with add: the least severe incidents posted (default warning)")
    p.add_argument("--retry-failed", action="store_true", help="with deliver: send failed deliveries again")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_webhook)

    p = sub.add_parser("ack-alert", parents=[common], help="acknowledge an incident (same as alerts ack ID)")
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--actor", help="act under another name in the audit log (admins only; default: your user name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ack)

    p = sub.add_parser("alert-rules", parents=[common], help="list, set or delete a model's alert rules")
    p.add_argument("--model", required=True)
    p.add_argument("--set", dest="kind", help="rule kind to create/update: metric_below, metric_above, drift_share_above, "
                                             "feature_drift, validation_anomalies, no_traffic")
    p.add_argument("--target", help="metric or feature the rule watches")
    p.add_argument("--threshold", type=float)
    p.add_argument("--severity", default="warning", choices=["info", "warning", "critical"])
    p.add_argument("--params", help='JSON object, e.g. {"min_labels": 100}')
    p.add_argument("--disable", action="store_true", help="store the rule disabled")
    p.add_argument("--delete", type=int, metavar="RULE_ID", help="delete this rule")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rules)

    p = sub.add_parser("monitor", parents=[common], help="run monitoring and evaluate the policy once (for cron)")
    p.add_argument("--model", required=True)
    p.add_argument("--wait", action="store_true", help="if a retrain starts, wait for it and report its outcome")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_monitor)


def _add_engine_option(p) -> None:
    p.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb",
                   help="where the log is scanned: duckdb (default, in this process) or spark (the master or Spark "
                        "Connect URL in MLOPS_SPARK_MASTER, default local[2]; needs pip install -e '.[spark]' and Java 17)")


def _fmt(v, spec=".4f") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, spec)


def cmd_performance(args) -> int:
    from mlops_core import metrics

    if args.estimate or args.estimate_history:
        return _estimated_performance(args)
    model = room(args).model(args.model)
    df = model.performance(window=args.window, start=args.start, end=args.end, versions=args.version,
                           auc=not args.no_auc, engine=args.engine)
    if args.json:
        print_json(frame_records(df))
        return 0
    if df.empty:
        print(f"No predictions of {args.model} in this range.")
        return 0
    names = metrics.names(model.info.task, model.info.binary)
    head = f"{'window (UTC)':<17} {'ver':>3} {'n':>7} {'labelled':>8} " + " ".join(f"{m:>9}" for m in names) + \
        f" {'95% CI':>15}"
    print(head)
    for r in df.to_dict(orient="records"):
        print(f"{r['window_start']:%Y-%m-%d %H:%M} {r['version']:>3} {r['n']:>7} {r['n_labelled']:>8} "
              + " ".join(f"{_fmt(r[m]):>9}" for m in names)
              + f" {_fmt(r['ci_low'], '.3f'):>7}-{_fmt(r['ci_high'], '.3f'):<7}")
    return 0


def _estimated_performance(args) -> int:
    import pandas as pd

    from mlops_core.errors import InvalidInputError

    model = room(args).model(args.model)
    if bool(args.reference_from) != bool(args.reference_to):
        raise InvalidInputError("Give both --reference-from and --reference-to for a reference window of the log.")
    if args.estimate_history:
        df = model.estimates_stored(window=args.window, start=args.start, end=args.end, version=args.version)
        if args.json:
            print_json(frame_records(df))
            return 0
        if df.empty:
            print(f"No stored estimates of {args.model} in this range; make some with --estimate.")
            return 0
        print(f"{'window':<17} {'ver':>3} {'metric':<9} {'estimate':>8} {'band':>13} {'realized':>8} {'error':>7} "
              f"{'labelled':>8}  in band")
        for r in df.to_dict(orient="records"):
            inside = "-" if r["in_band"] is None or r["in_band"] is pd.NA else ("yes" if r["in_band"] else "NO")
            print(f"{r['window_start']:%Y-%m-%d %H:%M} {r['version']:>3} {r['metric']:<9} {_fmt(r['estimate']):>8} "
                  f"{_fmt(r['band_low'], '.3f'):>6}-{_fmt(r['band_high'], '.3f'):<6} {_fmt(r['realized']):>8} "
                  f"{_fmt(r['error'], '+.4f'):>7} {r['n_labelled']:>8}  {inside}")
        covered = df["in_band"].dropna()
        if len(covered):
            print(f"{int(covered.sum())} of {len(covered)} realized values lie in their band.")
        return 0
    df = model.estimate_performance(window=args.window, start=args.start, end=args.end, version=args.version,
                                    reference_start=args.reference_from, reference_end=args.reference_to,
                                    level=args.level, store=not args.no_store, engine=args.engine)
    if args.json:
        print_json(frame_records(df))
        return 0
    if df.empty:
        print(f"No predictions of {args.model} in this range.")
        return 0
    band = f"{args.level:.0%} band"
    print(f"{'window':<17} {'ver':>3} {'n':>7} {'labelled':>8} {'metric':<9} {'estimate':>8} {band:>13} {'realized':>8}")
    for r in df.to_dict(orient="records"):
        labelled = "-" if r["n_labelled"] is pd.NA else r["n_labelled"]
        print(f"{r['window_start']:%Y-%m-%d %H:%M} {r['version']:>3} {r['n']:>7} {labelled:>8} {r['metric']:<9} "
              f"{_fmt(r['estimate']):>8} {_fmt(r['band_low'], '.3f'):>6}-{_fmt(r['band_high'], '.3f'):<6} "
              f"{_fmt(r['realized']):>8}")
    return 0


def cmd_drift(args) -> int:
    from mlops_core.monitoring import drift

    model = room(args).model(args.model)
    ref_id = args.reference_id
    if args.reference_from or args.reference_to:
        if not (args.reference_from and args.reference_to):
            from mlops_core.errors import InvalidInputError

            raise InvalidInputError("Give both --reference-from and --reference-to for a reference window of the log.")
        ref_id = model.reference_from_window(args.reference_from, args.reference_to)
        if not args.json:
            print(f"Reference {ref_id}: the log from {args.reference_from} to {args.reference_to}.")
    df = model.drift(window=args.window, start=args.start, end=args.end, reference_id=ref_id,
                     store=not args.no_store, methods=args.method, engine=args.engine)
    if args.json:
        print_json(frame_records(df))
        return 0
    if df.empty:
        print(f"No predictions of {args.model} in this range.")
        return 0
    if args.all:
        _print_drift_rows(df, drift.share(df))
    else:
        _print_drift_summary(args, df, drift.share(df), model.last_prediction())
    return 0


def _print_drift_rows(df, share) -> None:
    for ws, part in df.groupby("window_start"):
        s = share[share["window_start"] == ws]
        share_txt = f"{float(s['share'].iloc[0]):.0%} of features drifted" if len(s) else ""
        print(f"{ws:%Y-%m-%d %H:%M} UTC  {share_txt}")
        for r in part.to_dict(orient="records"):
            flag = "DRIFT" if r["drifted"] else "ok"
            print(f"  {feature_label(r['feature']):<24} {r['method']:<15} {_fmt(r['statistic']):>9} "
                  f"(threshold {_fmt(r['threshold'], 'g')}, p {_fmt(r['p_value'], '.3g')}, n {r['n_current']})  {flag}")


def _print_drift_summary(args, df, share, as_of) -> None:
    """The latest full window: the drifted features and the top features by score (statistic ÷ threshold)."""
    import pandas as pd

    from mlops_core.monitoring import windows

    starts = sorted(df["window_start"].unique())
    latest = windows.latest_full(starts, args.window, as_of)
    first, last = pd.Timestamp(starts[0]), pd.Timestamp(starts[-1])
    print(f"{args.model}: drift per {args.window} in {len(starts)} window(s), {first:%Y-%m-%d %H:%M} to "
          f"{last:%Y-%m-%d %H:%M} UTC" + ("" if args.no_store else " (stored)") + ".")
    if latest is None:
        print(f"No full {args.window} yet: the only window is still in progress. Every row: --all.")
        return
    part = df[df["window_start"] == latest].copy()
    part["score"] = part["statistic"] / part["threshold"].where(part["threshold"] > 0)
    part.loc[part["method"].isin(["ks", "chi2"]), "score"] = float("nan")  # p-value methods: no distance score
    feats = part[~part["feature"].str.startswith("__")]
    drifted = sorted(feats.loc[feats["drifted"].astype(bool), "feature"].unique())
    s = share[share["window_start"] == latest]
    n_feat = int(s["n_features"].iloc[0]) if len(s) else feats["feature"].nunique()
    print(f"Latest full {args.window}, {latest:%Y-%m-%d %H:%M} UTC: {len(drifted)} of {n_feat} features drifted"
          + (f": {', '.join(drifted)}." if drifted else "."))
    top = feats.sort_values(["score", "statistic"], ascending=False, na_position="last").drop_duplicates("feature")
    print(f"Top {min(args.top, len(top))} by score (statistic ÷ threshold; above 1 is drift):")
    for r in top.head(args.top).to_dict(orient="records"):
        flag = "DRIFT" if r["drifted"] else "ok"
        print(f"  {r['feature']:<24} {r['method']:<15} {_fmt(r['statistic']):>9} (threshold {_fmt(r['threshold'], 'g')})"
              f"  score {_fmt(r['score'], '.2f'):>5}  {flag}")
    for r in part[part["feature"].str.startswith("__")].to_dict(orient="records"):
        flag = "DRIFT" if r["drifted"] else "ok"
        print(f"  {feature_label(r['feature']):<24} {r['method']:<15} {_fmt(r['statistic']):>9} "
              f"(threshold {_fmt(r['threshold'], 'g')})  {flag}")
    newer = [t for t in starts if pd.Timestamp(t) > latest]
    if newer:
        print(f"({pd.Timestamp(newer[-1]):%Y-%m-%d %H:%M} UTC is still in progress: not ranked.)")
    print(f"Every window, feature and method: --all ({len(df):,} rows).")


def _print_alerts(df) -> None:
    import pandas as pd

    if df.empty:
        print("No incidents.")
        return
    for r in df.to_dict(orient="records"):
        state = r["status"]
        if state == "acknowledged":
            state = f"acknowledged by {r['acknowledged_by']}"
        elif state == "resolved":
            state = f"resolved by {r['resolved_by']}"
        until = r.get("snoozed_until")
        if until is not None and pd.notna(until) and pd.Timestamp(until) > pd.Timestamp(utcnow()):
            state += f", snoozed until {pd.Timestamp(until):%Y-%m-%d %H:%M} UTC"
        print(f"#{r['id']} {r['model']} [{r['severity']}] {r['title'] or r['kind']} ({state})")
        seen = f"seen in {int(r['windows'] or 1)} window(s), {_when(r['first_seen'])} to {_when(r['last_seen'])}"
        now = f"now {r['current_text']}; " if r.get("current_text") else ""
        print(f"    {now}{seen}" + (f"; reopened {int(r['reopened'])} time(s)" if r.get("reopened") else ""))
        print(f"    {r['message']}")


def _when(t) -> str:
    import pandas as pd

    return "-" if t is None or pd.isna(t) else f"{pd.Timestamp(t):%Y-%m-%d %H:%M} UTC"


def cmd_alerts(args) -> int:
    if args.action != "list":
        if args.id is None:
            from mlops_core.errors import InvalidInputError

            raise InvalidInputError(f"Give the incident id: `alerts {args.action} ID` (see `alerts --model NAME`).")
        if args.action == "ack":
            return _ack(args, args.id)
        r = room(args, actor=args.actor)
        if args.action == "resolve":
            changed = r.resolve(args.id)
            out = {"id": args.id, "resolved": True, "changed": changed}
            text = f"Incident {args.id} resolved." if changed else f"Incident {args.id} was resolved already."
        else:
            until = r.snooze(args.id, args.hours)
            out = {"id": args.id, "snoozed_until": until}
            text = f"Incident {args.id} snoozed until {until:%Y-%m-%d %H:%M} UTC."
        print_json(out) if args.json else print(text)
        return 0
    r = room(args)
    df = r.model(args.model).alerts(open_only=not args.all) if args.model else r.alerts(open_only=not args.all)
    if getattr(args, "csv", False):
        print_csv(df)
    elif args.json:
        print_json(frame_records(df))
    else:
        _print_alerts(df)
    return 0


def _ack(args, alert_id: int) -> int:
    changed = room(args, actor=args.actor).acknowledge(alert_id)
    if args.json:
        print_json({"id": alert_id, "acknowledged": True, "changed": changed})
    else:
        print(f"Incident {alert_id} acknowledged." if changed else f"Incident {alert_id} was not open (acknowledged "
              "or resolved already).")
    return 0


def cmd_ack(args) -> int:
    return _ack(args, args.id)


def cmd_webhook(args) -> int:
    from mlops_core.errors import InvalidInputError
    from mlops_core.monitoring.webhooks import shown_url

    r = room(args)
    if args.action == "add":
        if not args.url:
            raise InvalidInputError("Give the address: `webhook add --url https://hooks.example/...`.")
        hook = r.add_webhook(args.url, model=args.model, min_severity=args.min_severity)
        if args.json:
            print_json({**jsonable(hook), "url": shown_url(hook.url)})
        else:
            print(f"Webhook {hook.id} added: {shown_url(hook.url)} gets the new and reopened incidents of "
                  f"{hook.model or 'every model'} from {hook.min_severity} up.")
        return 0
    if args.action == "list":
        hooks = r.webhooks(args.model)
        if args.json:
            print_json([{**jsonable(h), "url": shown_url(h.url)} for h in hooks])
        elif not hooks:
            print("No webhooks.")
        for h in hooks if not args.json else []:
            print(f"#{h.id} {shown_url(h.url)} {h.model or 'every model'} from {h.min_severity} up"
                  + ("" if h.enabled else " (off)") + f", added {_when(h.created_at)} by {h.created_by}")
        return 0
    if args.action in ("remove", "test"):
        if args.id is None:
            raise InvalidInputError(f"Give the webhook id: `webhook {args.action} ID` (see `webhook list`).")
        if args.action == "remove":
            hook = r.remove_webhook(args.id)
            print_json({"id": hook.id, "removed": True}) if args.json else print(f"Webhook {hook.id} removed.")
            return 0
        outcome = r.test_webhook(args.id)
        if args.json:
            print_json({**jsonable(outcome), "url": shown_url(outcome.url)})
        else:
            print(f"Test message delivered to {shown_url(outcome.url)} (HTTP {outcome.http_status})." if outcome.delivered
                  else f"Test message NOT delivered to {shown_url(outcome.url)} after {outcome.attempts} attempt(s): "
                       f"{outcome.error}")
        return 0 if outcome.delivered else 1
    outcomes = r.deliver_webhooks(retry_failed=args.retry_failed)
    if args.json:
        print_json([{**jsonable(o), "url": shown_url(o.url)} for o in outcomes])
    else:
        sent = sum(o.delivered for o in outcomes)
        print(f"{sent} of {len(outcomes)} notification(s) delivered.")
        for o in outcomes:
            if not o.delivered:
                print(f"  incident {o.alert_id} to {shown_url(o.url)}: {o.error} after {o.attempts} attempt(s)")
    return 0 if all(o.delivered for o in outcomes) else 1


def cmd_rules(args) -> int:
    from mlops_core.errors import InvalidInputError

    r = room(args)
    model = r.model(args.model)
    if args.delete is not None:
        r.delete_alert_rule(args.delete)
        if not args.json:
            print(f"Rule {args.delete} deleted.")
    elif args.kind:
        params = None
        if args.params:
            try:
                params = json.loads(args.params)
            except ValueError as exc:
                raise InvalidInputError(f"--params must be a JSON object, got {args.params!r}.") from exc
        rule_id = model.set_alert_rule(args.kind, target=args.target, threshold=args.threshold,
                                       severity=args.severity, params=params, enabled=not args.disable)
        if not args.json:
            print(f"Rule {rule_id} saved.")
    df = model.alert_rules()
    if args.json:
        print_json(frame_records(df))
    elif df.empty:
        print(f"{args.model} has no alert rules yet (the first `monitor` run creates the defaults).")
    else:
        for r in df.to_dict(orient="records"):
            tgt = f" {r['target']}" if r["target"] else ""
            thr = "" if r["threshold"] is None or (isinstance(r["threshold"], float) and math.isnan(r["threshold"])) \
                else f" {r['threshold']:g}"
            print(f"#{r['id']} {r['kind']}{tgt}{thr} [{r['severity']}]{'' if r['enabled'] else ' (disabled)'} {r['params']}")
    return 0


def cmd_drift_settings(args) -> int:
    model = room(args).model(args.model)
    if args.clear or args.method:
        df = model.configure_drift(args.feature, None if args.clear else args.method, threshold=args.threshold)
    else:
        df = model.drift_settings()
    if args.json:
        print_json(frame_records(df))
    elif df.empty:
        print(f"{args.model}: default drift methods (wasserstein >= 0.1 for numeric, jensen_shannon >= 0.1 for "
              "categorical features, each guarded by a test at p < 0.01).")
    else:
        for r in df.to_dict(orient="records"):
            thr = r["threshold"]
            shown = "default" if thr is None or (isinstance(thr, float) and math.isnan(thr)) else f"{thr:g}"
            print(f"{r['feature']:<24} {r['method']:<15} threshold {shown}")
    return 0


def cmd_monitor(args) -> int:
    from mlops_core.cli.retrain import _retrain_summary

    r = room(args)
    d = r.model(args.model).evaluate_policy()
    out = {"model": d.model, "mode": d.mode, "evaluated_at": d.evaluated_at, "signals": d.signals,
           "triggers": d.triggers, "action": d.action, "message": d.message, "retrain_run_id": d.retrain_run_id,
           "alert_ids": d.alert_ids}
    if args.wait and d.retrain_run_id:
        out["retrain"] = _retrain_summary(r.wait(d.retrain_run_id))
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

"""CLI commands about the registry's models: register, models, status, versions."""
from __future__ import annotations

from mlops_core.cli import parse_settings, room
from mlops_core.cli.output import frame_records, print_json


def add_commands(sub, common) -> None:
    p = sub.add_parser("register", parents=[common], help="register a new model from its training data (version 1 goes to production)")
    p.add_argument("--model", required=True, help="model name (letters, digits, _)")
    p.add_argument("--task", required=True, choices=["classification", "regression"])
    p.add_argument("--target", required=True, help="target column of the training file")
    p.add_argument("--training-data", required=True, help="CSV or Parquet file with the features and the target (with "
                                                          "--features: entity rows with keys, a time column and the target)")
    p.add_argument("--features", metavar="VIEW:FEATURE,...",
                   help="take these features from the feature store: the training data is then joined point in time "
                        "with them, and the model records the binding (see docs/features.md)")
    p.add_argument("--timestamp", help="with --features: the time column of the entity rows")
    p.add_argument("--artifact", metavar="FILE",
                   help="a fitted scikit-learn estimator/Pipeline saved with skops.io.dump (a .skops file; loads "
                        "without running code, only scikit-learn/numpy/scipy types); default: train the default "
                        "pipeline. A pickle/joblib file is refused unless --trust-pickle is given")
    p.add_argument("--trust-pickle", action="store_true",
                   help="also accept a pickle/joblib --artifact. Loading a pickle RUNS ANY CODE inside the file: use "
                        "it only for a file you built yourself. Needs the admin role")
    p.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                   help="a hyperparameter of the default pipeline's estimator, e.g. --set max_iter=60 (repeatable; "
                        "not with --artifact)")
    p.add_argument("--unit", help="unit of a regression target, e.g. minutes (shown with MAE and RMSE)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("status", parents=[common], help="a model's versions, production version and log sizes; with "
                                                            "--verdict also its verdict (healthy, watch, act) and next step")
    p.add_argument("--model", required=True)
    p.add_argument("--verdict", action="store_true",
                   help="judge the last 7 full days of the log too (reads the log: slower than the status alone)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("models", parents=[common], help="list the registered models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("versions", parents=[common], help="a model's versions with status, metrics and gate verdict")
    p.add_argument("--model", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_versions)


def cmd_register(args) -> int:
    r = room(args).register(args.model, args.task, args.target, args.training_data, artifact=args.artifact,
                            hyperparameters=parse_settings(args.set), seed=args.seed, unit=args.unit,
                            trust_pickle=args.trust_pickle, features=args.features, timestamp_column=args.timestamp)
    if args.json:
        print_json(r)
    else:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in r.holdout_metrics.items() if v is not None)
        print(f"Registered {r.model} version {r.version} ({r.algorithm}) in production.")
        print(f"Trained on {r.train_rows} rows; holdout of {r.holdout_rows} rows: {metrics}")
    return 0


#: The command that takes each next step of a verdict (``{model}``, ``{version}`` filled in).
NEXT_STEP_COMMANDS = {
    "retrain": "mlops retrain --model {model}",
    "promote": "mlops promote --model {model} --version {version}",
    "rollback": "mlops rollback --model {model}",
    "acknowledge": "mlops alerts --model {model}, then mlops alerts ack ID",
}


def _when(t) -> str:
    return f"{t:%Y-%m-%d %H:%M} UTC" if t is not None else "never"


def cmd_status(args) -> int:
    model = room(args).model(args.model)
    s = model.status()
    # The verdict reads the log (pandas, the performance queries): opt-in, so that `status` stays a quick look.
    v = model.verdict() if args.verdict else None
    if args.json:
        print_json({"model": s.model, "task": s.task, "target": s.target, "production_version": s.production_version,
                    "versions": [{"version": x.version, "status": x.status, "algorithm": x.algorithm,
                                  "created_at": x.created_at} for x in s.versions],
                    "predictions": s.predictions, "labels": s.labels, "last_prediction_at": s.last_prediction_at,
                    "features": s.features, **({"verdict": v} if v is not None else {})})
        return 0
    print(f"{s.model} ({s.task}, target {s.target}" + (f" in {model.info.unit}" if model.info.unit else "") + ")")
    if v is not None:
        print(f"  verdict: {v.line()}")
        command = NEXT_STEP_COMMANDS.get(v.next_step.action)
        if command:
            print(f"  next step: {command.format(model=s.model, version=v.next_step.version)}")
    print("  production version: " + (f"v{s.production_version}" if s.production_version is not None else "none"))
    for x in s.versions:
        print(f"  v{x.version}: {x.status} ({x.algorithm}), created {_when(x.created_at)}")
    print(f"  predictions: {s.predictions:,}  labels: {s.labels:,}  last prediction: {_when(s.last_prediction_at)}")
    return 0


def cmd_models(args) -> int:
    r = room(args)
    rows = [{"model": m.name, "task": m.task, "production_version": r.model(m.name).production_version()}
            for m in r.models()]
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            prod = f"production v{row['production_version']}" if row["production_version"] is not None else \
                "no production version"
            print(f"{row['model']}\t{row['task']}\t{prod}")
        if not rows:
            print("No models yet: run `mlops demo` or `mlops register ...`.")
    return 0


def _fmt_metrics(m: dict | None) -> str:
    if not m:
        return "n/a"
    return ", ".join(f"{k}={v:.4f}" for k, v in m.items() if isinstance(v, (int, float)))


def cmd_versions(args) -> int:
    model = room(args).model(args.model)
    df = model.versions_frame()
    if args.json:
        records = frame_records(df)
        files = {v.version: v for v in model.versions()}
        for rec in records:
            v = files[rec["version"]]
            rec["artifact_path"] = model.artifact_file(v.version)
            rec["artifact_sha256"] = v.artifact_sha256
        print_json(records)
        return 0
    for rec in df.to_dict(orient="records"):
        metrics = {k[len("holdout_"):]: v for k, v in rec.items() if k.startswith("holdout_") and k != "holdout_rows"}
        gate = "" if rec["gate_passed"] is None or rec["gate_passed"] != rec["gate_passed"] else (
            " gate passed" if rec["gate_passed"] else " gate FAILED")
        print(f"v{rec['version']:<3} {rec['status']:<10} {rec['algorithm']} rows={rec['train_rows']} "
              f"created {rec['created_at']:%Y-%m-%d %H:%M} UTC by {rec['created_by']}{gate}")
        print(f"     holdout: {_fmt_metrics(metrics)}")
    return 0

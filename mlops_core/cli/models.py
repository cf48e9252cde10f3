"""CLI commands that get data in and describe it: register, demo, ingest, status, models."""
from __future__ import annotations

from mlops_core.cli import print_json


def add_commands(sub, common) -> None:
    p = sub.add_parser("register", parents=[common], help="register a new model from its training data (version 1 goes to production)")
    p.add_argument("--model", required=True, help="model name (letters, digits, _)")
    p.add_argument("--task", required=True, choices=["classification", "regression"])
    p.add_argument("--target", required=True, help="target column of the training file")
    p.add_argument("--training-data", required=True, help="CSV or Parquet file with the features and the target")
    p.add_argument("--artifact", help="a fitted scikit-learn estimator/Pipeline saved with joblib (default: train the default pipeline)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("status", parents=[common], help="a model's versions, production version and log sizes")
    p.add_argument("--model", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("models", parents=[common], help="list the registered models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)


def cmd_register(args) -> int:
    from mlops_core.lifecycle.registry import register_model

    r = register_model(args.model, args.task, args.target, args.training_data, artifact=args.artifact, db=args.db,
                       seed=args.seed)
    if args.json:
        print_json(r)
    else:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in r.holdout_metrics.items() if v is not None)
        print(f"Registered {r.model} version {r.version} ({r.algorithm}) in production.")
        print(f"Trained on {r.train_rows} rows; holdout of {r.holdout_rows} rows: {metrics}")
    return 0


def status_dict(model: str, db=None) -> dict:
    from mlops_core.store import connect
    from mlops_core.store import models as mstore
    from mlops_core.store import predictions as pstore

    with connect(db, create=False) as con:
        info = mstore.get_model(con, model)
        versions = mstore.list_versions(con, model)
        return {
            "model": info.name,
            "task": info.task,
            "target": info.target,
            "production_version": mstore.current_alias(con, model),
            "versions": [{"version": v.version, "status": v.status, "algorithm": v.algorithm,
                          "created_at": v.created_at} for v in versions],
            "predictions": pstore.count_predictions(con, info),
            "labels": pstore.count_labels(con, info),
            "last_prediction_at": pstore.last_prediction_at(con, info),
            "features": [f.name for f in info.features],
        }


def cmd_status(args) -> int:
    s = status_dict(args.model, args.db)
    if args.json:
        print_json(s)
        return 0
    print(f"{s['model']} ({s['task']}, target {s['target']})")
    print(f"  production version: {s['production_version']}")
    for v in s["versions"]:
        print(f"  v{v['version']}: {v['status']} ({v['algorithm']})")
    print(f"  predictions: {s['predictions']:,}  labels: {s['labels']:,}  last prediction: {s['last_prediction_at']}")
    return 0


def cmd_models(args) -> int:
    from mlops_core.lifecycle.registry import list_models
    from mlops_core.store import connect
    from mlops_core.store import models as mstore

    with connect(args.db, create=False) as con:
        rows = [{"model": m, "task": mstore.get_model(con, m).task, "production_version": mstore.current_alias(con, m)}
                for m in mstore.list_model_names(con)]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['model']}\t{r['task']}\tproduction v{r['production_version']}")
        if not rows:
            print("No models yet: run `python -m mlops_core demo` or `python -m mlops_core register ...`.")
    return 0

"""CLI commands that change or weigh what serves production: promote, rollback, compare, abtest."""
from __future__ import annotations

import json

from mlops_core.cli import room
from mlops_core.cli.output import frame_records, print_json, promotion_text
from mlops_core.entities import jsonable
from mlops_core.errors import InvalidInputError


def add_commands(sub, common) -> None:
    """Add this module's sub-commands to the parser."""
    p = sub.add_parser("promote", parents=[common], help="make a version the production version")
    p.add_argument("--model", required=True)
    p.add_argument("--version", required=True, type=int)
    p.add_argument("--reason")
    p.add_argument("--force", action="store_true", help="promote even a version the gate rejected (the audit says so)")
    p.add_argument("--actor", help="act under another name in the audit log (admins only; default: your user name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("rollback", parents=[common], help="put back the previous production version (again: further back)")
    p.add_argument("--model", required=True)
    p.add_argument("--to", type=int, help="an earlier production version to go back to")
    p.add_argument("--reason")
    p.add_argument("--actor", help="act under another name in the audit log (admins only; default: your user name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("compare", parents=[common], help="versions side by side: same holdout, windows, hyperparameters, lineage")
    p.add_argument("--model", required=True)
    p.add_argument("--versions", required=True, help="comma-separated, e.g. 2,3")
    p.add_argument("--all-hyperparameters", action="store_true", help="show every hyperparameter, not only differences")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("abtest", parents=[common], help="A/B test a challenger version against production on labelled traffic")
    p.add_argument("--model", required=True)
    p.add_argument("--challenger", required=True, type=int, help="version serving the challenger arm")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--min-samples", type=int, default=200, help="labelled predictions needed per arm")
    p.add_argument("--promote", action="store_true", help="promote the challenger when it wins")
    p.add_argument("--actor", help="act under another name in the audit log (admins only; default: your user name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_abtest)


def cmd_promote(args) -> int:
    r = room(args, actor=args.actor).model(args.model).promote(args.version, reason=args.reason, force=args.force)
    if args.json:
        print_json(r)
    else:
        print(promotion_text(args.model, r) + (" — forced over the gate's rejection." if r.forced else "."))
    return 0


def cmd_rollback(args) -> int:
    r = room(args, actor=args.actor).model(args.model).rollback(to=args.to, reason=args.reason)
    if args.json:
        print_json(r)
    else:
        print(f"Rolled {args.model} back from v{r.from_version} to v{r.to_version}.")
    return 0


def cmd_compare(args) -> int:
    try:
        versions = [int(v) for v in args.versions.split(",") if v.strip()]
    except ValueError as exc:
        raise InvalidInputError(f"--versions takes numbers separated by commas, e.g. 2,3; got {args.versions!r}.") from exc
    c = room(args).model(args.model).compare(versions)
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


def cmd_abtest(args) -> int:
    model = room(args, actor=args.actor).model(args.model)
    if args.promote:
        result, promo = model.promote_if_better(args.challenger, alpha=args.alpha, min_samples=args.min_samples)
    else:
        result, promo = model.ab_test(args.challenger, alpha=args.alpha, min_samples=args.min_samples), None
    if args.json:
        print_json({**jsonable(result), "promoted": promo is not None})
        return 0
    print(result.message)
    if promo is not None:
        print(promotion_text(args.model, promo) + ".")
    return 0

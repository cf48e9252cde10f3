"""Artifact format: loading and saving the default credit pipeline as skops vs joblib (pickle).

The pipeline is the one ``register`` trains on ``sample_data/credit_default_train.csv``
(imputers, one-hot encoder, HistGradientBoostingClassifier with 100 iterations). Timed:

- load: ``artifacts.load_artifact`` of the skops file (read, sha256, allow-list of
  ``skops.io.get_untrusted_types``, ``skops.io.loads``, tree-structure check) vs
  ``artifacts.load_artifact`` of the same pipeline as a legacy joblib file (read, sha256,
  ``joblib.load``), and bare ``joblib.load`` of the file for reference;
- save: ``artifacts.save_artifact`` (serialise, allow-list check, write, fsync, hash) vs
  ``joblib.dump`` to a file.

Each round times both formats back to back (alternating which goes first); printed are
the median and worst of each and the median of the rounds' own ratios. The retrain job
loads its champion once and saves its candidate once, so ``load + save`` extra time is
what the format adds to a retrain; ``bench_retrain.py`` measures the whole job.

    .venv/bin/python benchmarks/bench_artifacts.py [--repeat 30]
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops_core.data.schema import infer_schema  # noqa: E402
from mlops_core.lifecycle import artifacts, training  # noqa: E402


def default_credit_pipeline():
    df = pd.read_csv(ROOT / "sample_data" / "credit_default_train.csv")
    features = infer_schema(df, "default")
    y = training.prepare_target(df["default"], "classification", "default")
    X = training.coerce_features(df.loc[y.index].drop(columns=["default"]), features)
    return training.default_pipeline("classification", features, 0).fit(X, y), X


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def summary(name: str, xs: list[float]) -> str:
    return f"{name:<44} median {1e3 * statistics.median(xs):7.1f} ms   worst {1e3 * max(xs):7.1f} ms"


def main() -> None:
    import joblib

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    pipe, X = default_credit_pipeline()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rel_skops, sha_skops = artifacts.save_artifact(pipe, root, "credit", 1)
        rel_joblib = "credit/v1-legacy.joblib"
        joblib.dump(pipe, root / rel_joblib)
        sha_joblib = hashlib.sha256((root / rel_joblib).read_bytes()).hexdigest()
        # the same estimator back from both, and a warm-up of the imports each path needs
        a = artifacts.load_artifact(root, rel_skops, sha_skops)
        b = artifacts.load_artifact(root, rel_joblib, sha_joblib)
        assert (a.predict_proba(X) == b.predict_proba(X)).all()

        loads = {"skops": [], "joblib": [], "bare": []}
        saves = {"skops": [], "joblib": []}
        for i in range(args.repeat):
            order = ("skops", "joblib") if i % 2 == 0 else ("joblib", "skops")
            for fmt in order:
                if fmt == "skops":
                    loads["skops"].append(timed(lambda: artifacts.load_artifact(root, rel_skops, sha_skops)))
                    saves["skops"].append(timed(lambda: artifacts.save_artifact(pipe, root, "credit", 2)))
                else:
                    loads["joblib"].append(timed(lambda: artifacts.load_artifact(root, rel_joblib, sha_joblib)))
                    loads["bare"].append(timed(lambda: joblib.load(root / rel_joblib)))
                    saves["joblib"].append(timed(lambda: joblib.dump(pipe, root / "credit" / "tmp.joblib")))
        size_skops = (root / rel_skops).stat().st_size
        size_joblib = (root / rel_joblib).stat().st_size

    print(f"default credit pipeline (HistGradientBoostingClassifier, {pipe[-1].n_iter_} iterations); "
          f"{args.repeat} paired rounds")
    print(f"file size: skops {size_skops / 1024:.0f} KiB, joblib {size_joblib / 1024:.0f} KiB")
    print(summary("load skops (hash + allow-list + trees)", loads["skops"]))
    print(summary("load joblib (hash + joblib.load)", loads["joblib"]))
    print(summary("bare joblib.load", loads["bare"]))
    ratio = statistics.median(s / j for s, j in zip(loads["skops"], loads["joblib"], strict=False))
    print(f"load ratio skops / joblib, median of rounds: {ratio:.2f}x")
    print(summary("save skops (serialise + allow-list + write)", saves["skops"]))
    print(summary("save joblib.dump", saves["joblib"]))
    extra = (statistics.median(loads["skops"]) + statistics.median(saves["skops"])
             - statistics.median(loads["joblib"]) - statistics.median(saves["joblib"]))
    print(f"extra time per retrain (one champion load + one candidate save): {1e3 * extra:.0f} ms")


if __name__ == "__main__":
    main()

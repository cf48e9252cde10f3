"""What checking a run for anomalies adds to an ingest: paired rounds with and without the check.

Registers a credit-default-like model (13 features) in a fresh database and ingests
``--history`` prediction batches of ``--rows`` rows (default 200 batches of 2,000 rows), so
every check reads a full history (the 200 runs ``run_checks`` scans, 50 of the series). Then,
``--rounds`` times, ingests two more batches of the same size in alternating order:

- with: ``data.ingest.ingest`` with ``on_recorded=run_checks.check_finished_run`` (what
  ``Model.ingest`` does): the history read, the rule over 17 statistics, the findings
  stored, inside the ingest's write transaction;
- without: the same call with ``on_recorded=None``.

Prints the median and worst of the per-round times and of their difference (the check's
cost), and the median ratio. Small batches are where the fixed cost of the check shows most.
On a shared machine the difference of two ingests is noisy, so the check is also timed
alone, ``--rounds`` times on the last run, each in a write transaction rolled back after it.

    .venv/bin/python benchmarks/bench_run_checks.py [--rows 2000] [--history 200] [--rounds 15]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import features  # noqa: E402

from mlops_core import ControlRoom  # noqa: E402
from mlops_core.data import ingest as ingestmod  # noqa: E402
from mlops_core.monitoring import run_checks  # noqa: E402


def batch(n: int, seed: int, prefix: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = features(n, rng)
    df.insert(0, "request_id", [f"{prefix}{i}" for i in range(n)])
    df.insert(1, "timestamp", pd.Timestamp("2026-01-01") + pd.Timedelta(minutes=seed)
              + pd.to_timedelta(np.arange(n), unit="ms"))
    df["prediction"] = (rng.random(n) < 0.3).astype(int)
    df["score"] = rng.random(n).round(4)
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--history", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-run-checks-") as folder:
        room = ControlRoom(Path(folder) / "mlops.duckdb")
        train = features(2000, np.random.default_rng(0))
        train["default"] = (np.random.default_rng(1).random(2000) < 0.3).astype(int)
        room.register("credit", "classification", "default", train)
        model = room.model("credit")
        for i in range(args.history):
            model.ingest(batch(args.rows, i, f"h{i}-"))
        store, info = room.store, model.info
        seed = args.history
        times = {"with": [], "without": []}
        for r in range(args.rounds):
            order = ("with", "without") if r % 2 == 0 else ("without", "with")
            for arm in order:
                seed += 1
                frame = batch(args.rows, seed, f"{arm}{r}-")
                hook = run_checks.check_finished_run if arm == "with" else None
                t = time.perf_counter()
                result = ingestmod.ingest(store, info, frame, "predictions", actor="bench", on_recorded=hook)
                times[arm].append(time.perf_counter() - t)
        alone = []
        for _ in range(args.rounds):
            with store.connect(write=True) as con:
                con.execute("BEGIN TRANSACTION")
                t = time.perf_counter()
                run_checks.check_finished_run(con, result.run_id)
                alone.append(time.perf_counter() - t)
                con.execute("ROLLBACK")
    diff = [a - b for a, b in zip(times["with"], times["without"], strict=True)]
    ratio = [a / b for a, b in zip(times["with"], times["without"], strict=True)]
    print(f"ingest of {args.rows:,} rows after {args.history} earlier batches, {args.rounds} paired rounds")
    for arm in ("with", "without"):
        print(f"  {arm:<8} check: median {statistics.median(times[arm]) * 1000:7.1f} ms, "
              f"worst {max(times[arm]) * 1000:7.1f} ms")
    print(f"  check's cost: median {statistics.median(diff) * 1000:+.1f} ms, worst round {max(diff) * 1000:+.1f} ms; "
          f"ratio median {statistics.median(ratio):.3f}, worst {max(ratio):.3f}")
    print(f"  the check alone (history read, rule, findings): median {statistics.median(alone) * 1000:.1f} ms, "
          f"worst {max(alone) * 1000:.1f} ms")


if __name__ == "__main__":
    main()

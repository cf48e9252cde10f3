"""Run every benchmark of benchmarks/ in turn (``make bench``); each prints its own figures and ratios.

``--quick`` runs each at a small size (minutes in all, for a smoke check that the scripts work);
without it each runs at the size its targets are stated for (an hour or more on 2 cores).
Peers (Evidently, NannyML) run from their own virtualenv, benchmarks/.venv-peers or the interpreter named by
$MLOPS_PEERS_PYTHON, when it exists
(see benchmarks/requirements-peers.txt); a script skips its peer part otherwise and says so.
Exits 1 when any script fails.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (script, arguments at full size, arguments for --quick)
BENCHMARKS = [
    ("bench_ingest.py", ["--rows", "2000000", "--repeat", "3"], ["--rows", "100000"]),
    ("bench_performance.py", ["--rows", "10000000"], ["--rows", "200000"]),
    ("bench_drift.py", ["--rows", "1000000"], ["--rows", "20000", "--log-rows", "200000", "--rounds", "2"]),
    ("bench_retrain.py", ["--rows", "100000"], ["--rows", "5000", "--repeat", "2"]),
    ("bench_jobs.py", ["--rows", "100000"], ["--rows", "5000", "--rounds", "2"]),
    ("bench_cli.py", [], ["--daily", "2000", "--rounds", "1"]),
    ("bench_demo.py", [], ["--days", "30", "--daily", "200"]),
    ("bench_pages.py", ["--cold-rounds", "3"], ["--repeat", "1"]),
    ("bench_scale.py", ["--max-rows", "100000000"], ["--quick"]),
    ("bench_serving.py", ["--rounds", "3", "--seconds", "20"], ["--rounds", "1", "--seconds", "5", "--batch-rows", "20000"]),
    ("bench_readers.py", [], ["--quick"]),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: check that every script runs")
    ap.add_argument("--only", action="append", help="run only this script (repeatable), e.g. bench_drift.py")
    args = ap.parse_args(argv)
    failed = []
    for script, full, quick in BENCHMARKS:
        if args.only and script not in args.only:
            continue
        cmd = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        print(f"\n=== {script} {' '.join(cmd[2:])}", flush=True)
        t = time.perf_counter()
        code = subprocess.call(cmd)
        print(f"=== {script}: exit {code} after {time.perf_counter() - t:.0f} s", flush=True)
        if code:
            failed.append(script)
    if failed:
        print(f"\nFailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Background retrain through the job worker against the same retrain run in process, in paired rounds.

    .venv/bin/python benchmarks/bench_jobs.py [--rows 100000] [--rounds 8]

A model with ``--rows`` labelled predictions over the last 29 days (the credit simulation) is
retrained over and over (each retrain registers a candidate; nothing is promoted):

- in process: ``model.retrain(spawn=False)`` then ``execute_retrain`` in this process (what a
  job costs once everything is imported);
- detached: ``model.retrain()``, which queues the job for the database's standing job worker
  (``lifecycle.worker``), then ``wait`` (reading the run every 0.05 s at first) until it has
  finished: what a person who clicks Retrain, or runs ``mlops retrain --wait``, waits for.

Both are timed from the call that queues the job to the moment the caller knows it finished.
Each round runs both back to back, in ABBA order, after one warm-up of each (the worker is
started and has run a job; this process has imported the same modules). Target: detached within
1.3x of in process in the median and the worst round. Also printed once: a detached job whose
worker had to start first (interpreter start and imports, as when no worker ran).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_retrain import MODEL, build  # noqa: E402  (the same database: the model and its labelled log)

from mlops_core import ControlRoom, Identity  # noqa: E402
from mlops_core.lifecycle import worker  # noqa: E402
from mlops_core.store import Store  # noqa: E402

TARGET = 1.3


def operator(db: Path) -> ControlRoom:
    return ControlRoom(db, identity=Identity("bench", "operator"))


def in_process(db: Path) -> tuple[float, float]:
    t, cpu = time.perf_counter(), time.process_time()
    run_id = operator(db).model(MODEL).retrain(spawn=False)
    operator(db).execute_retrain(run_id)
    elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
    run = ControlRoom(db).run(run_id)
    assert run.status == "succeeded", run.error
    return elapsed, cpu


def detached(db: Path) -> tuple[float, int, str]:
    t = time.perf_counter()
    run_id = operator(db).model(MODEL).retrain()
    run = ControlRoom(db).wait(run_id, poll=0.5)
    elapsed = time.perf_counter() - t
    assert run.status == "succeeded", run.error
    return elapsed, run.pid, run_id


def job_seconds(store: Store, run_id: str, wait: float = 5.0) -> tuple[float, float]:
    """(wall, CPU) seconds the worker spent running ``run_id``, from its log's line "finished retrain <id> in <s> s
    (CPU <s> s)" (written just after the run is marked finished: waited for up to ``wait`` seconds)."""
    deadline = time.monotonic() + wait
    while True:
        for line in worker.worker_log_path(store).read_text().splitlines():
            parts = line.replace("(", " ").replace(")", " ").split()
            if "finished" in parts and run_id in parts:
                i = parts.index("in", parts.index(run_id))
                return float(parts[i + 1]), float(parts[i + 4])
        if time.monotonic() > deadline:
            return float("nan"), float("nan")
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        store = Store(db)
        t = time.perf_counter()
        build(db, args.rows)
        print(f"built a log of {args.rows:,} labelled predictions in {time.perf_counter() - t:.1f} s")
        try:
            cold, _, _ = detached(db)  # no worker yet: it starts, imports, then runs the job
            in_process(db)  # warm-up of this process
            detached(db)
            ours, theirs, pids, ids, our_cpu = [], [], set(), [], []
            for i in range(args.rounds):
                order = ("in", "out") if i % 2 == 0 else ("out", "in")
                for what in order:
                    if what == "in":
                        seconds, cpu = in_process(db)
                        ours.append(seconds)
                        our_cpu.append(cpu)
                    else:
                        seconds, pid, run_id = detached(db)
                        theirs.append(seconds)
                        pids.add(pid)
                        ids.append(run_id)
                job_wall, job_cpu = job_seconds(store, ids[-1])
                print(f"  round {i + 1}: in process {ours[-1]:.2f} s (CPU {our_cpu[-1]:.2f} s), detached "
                      f"{theirs[-1]:.2f} s (the job in the worker {job_wall:.2f} s, CPU {job_cpu:.2f} s): "
                      f"{theirs[-1] / ours[-1]:.2f}x", flush=True)
        finally:
            worker.stop(store)
        ratios = [o / i for o, i in zip(theirs, ours, strict=True)]
        print(f"\nrows={args.rows:,}, {args.rounds} paired rounds; every detached job ran in worker pid "
              f"{', '.join(map(str, sorted(pids)))}")
        print(f"in process : median {statistics.median(ours):.2f} s, worst {max(ours):.2f} s")
        print(f"detached   : median {statistics.median(theirs):.2f} s, worst {max(theirs):.2f} s")
        print(f"ratio detached / in process: median {statistics.median(ratios):.2f}x, worst {max(ratios):.2f}x "
              f"(target <= {TARGET}x) -> {'met' if max(ratios) <= TARGET else 'NOT met'}")
        print(f"detached with no worker running yet (it starts first): {cold:.2f} s")


if __name__ == "__main__":
    main()

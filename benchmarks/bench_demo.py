"""Demo build speed: ``build_demo`` at the default size, a bigger one with ``--daily``, or ~10M predictions (``--big``).

Builds the demo database into benchmarks/data/ (gitignored) with a fixed end time and
prints the wall time, the CPU time of this process, rows written (predictions + labels)
per second and the time of each stage (registration, simulation, scoring, Arrow tables,
the ingest of predictions and of labels, retrains, monitoring, policy evaluations). The
build is a client of the public API: every day's log and every label arrival day is a
real, validated ``Model.ingest`` (one run and one validation report each). As a floor for
the writing part it then copies the finished log and label tables into a fresh database
file with DuckDB's bare ``CREATE TABLE ... AS SELECT`` (no validation, no runs) in the
same run, and prints the time of our ingests against it.

    .venv/bin/python benchmarks/bench_demo.py                  # 90 days x 2,000/day (target: about 30 s idle)
    .venv/bin/python benchmarks/bench_demo.py --daily 20000    # 90 days x 20,000/day: 1.8M + 0.9M predictions
    .venv/bin/python benchmarks/bench_demo.py --big            # 90 days x 111,200/day: ~10M credit + ~5M delivery
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops_core.demo.build import build_demo  # noqa: E402

BIG_DAILY = 111_200


def _bare_copy(src: Path, dst: Path) -> tuple[float, int]:
    """Seconds for DuckDB to copy the log and label tables into a fresh file, and the rows copied."""
    if dst.exists():
        dst.unlink()
    con = duckdb.connect(str(dst))
    try:
        con.execute(f"ATTACH '{src}' AS src (READ_ONLY)")
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'src' "
            "AND (table_name LIKE 'log_%' OR table_name LIKE 'labels_%')").fetchall()]
        t = time.perf_counter()
        rows = 0
        for name in tables:
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM src."{name}"')
            rows += con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        con.execute("CHECKPOINT")
        return time.perf_counter() - t, rows
    finally:
        con.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", action="store_true", help=f"--daily {BIG_DAILY} (about 10M credit_default predictions)")
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--daily", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    daily = args.daily or (BIG_DAILY if args.big else 2000)
    folder = ROOT / "benchmarks" / "data" / "demo"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    db = folder / "mlops.duckdb"

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cpu0 = time.process_time()
    s = build_demo(db, days=args.days, daily=daily, seed=args.seed, force=True, end=datetime(2026, 11, 26))
    cpu = time.process_time() - cpu0
    preds = sum(s.predictions.values())
    labels = sum(s.labels.values())
    print(f"demo build: {args.days} days x {daily:,}/day -> {preds:,} predictions + {labels:,} labels")
    print(f"  wall {s.seconds:.1f} s, CPU of this process {cpu:.1f} s (load average at start {load:.1f} on "
          f"{os.cpu_count()} cores)")
    print(f"  {preds / s.seconds:,.0f} predictions/s, {(preds + labels) / s.seconds:,.0f} rows/s written overall")
    for stage, sec in s.timings.items():
        print(f"  {stage:<26} {sec:7.2f} s")
    bare, rows = _bare_copy(db, folder / "bare.duckdb")
    ours = s.timings.get("ingest predictions", 0.0) + s.timings.get("ingest labels", 0.0)
    print(f"  bare DuckDB copy of the same {rows:,} log+label rows: {bare:.2f} s; our validated ingests {ours:.2f} s "
          f"(ratio {ours / bare:.1f})")
    for line in s.lines()[1:-1]:
        print(f"  {line.strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

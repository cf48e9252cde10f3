"""Ingest speed: ``Model.ingest`` from Parquet against DuckDB's bare INSERT of the same file.

Registers a credit-default-like model (13 features) in a fresh database, writes a
Parquet batch of ``--rows`` predictions (default 2,000,000) with realistic values
(unique request ids, rounded numbers, low-cardinality categories), then in the same run:

- ours: ``Model.ingest`` (mlops_core.data.ingest) (reading, every structural and content
  check, fingerprint, duplicate checks against the log, the insert, report, run and
  audit rows in one transaction), into the model's log;
- bare: ``INSERT INTO t SELECT * FROM read_parquet(file)`` into a table of the same
  shape in another fresh database file, then closing the connection (DuckDB checkpoints
  the new rows into the file then; ``Model.ingest`` closes its connection too):
  no checks at all.

Prints rows/s of both and the ratio. Data goes to benchmarks/data/ (gitignored).

    .venv/bin/python benchmarks/bench_ingest.py [--rows 2000000] [--repeat 1]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mlops_core import ControlRoom  # noqa: E402
from mlops_core.store import forget_database  # noqa: E402

CATEGORIES = {
    "home_ownership": ["rent", "own", "mortgage"],
    "purpose": ["debt_consolidation", "car", "home_improvement", "education", "medical", "other"],
    "region": ["north", "south", "east", "west"],
    "employment_type": ["salaried", "self_employed", "unemployed", "retired"],
}


def features(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({
        "age": rng.integers(18, 80, n),
        "income": rng.lognormal(3.8, 0.4, n).round(2),
        "loan_amount": rng.lognormal(2.4, 0.6, n).round(2),
        "loan_term_months": rng.choice([12, 24, 36, 48, 60], n),
        "credit_score": rng.integers(350, 850, n),
        "debt_to_income": rng.beta(2, 5, n).round(4),
        "num_open_accounts": rng.integers(0, 20, n),
        "months_employed": rng.integers(0, 400, n),
        "utilization": rng.beta(2, 3, n).round(4),
        **{c: rng.choice(v, n) for c, v in CATEGORIES.items()},
    })


def training_frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = features(n, rng)
    logit = (df["debt_to_income"] - 0.3) * 6 + (df["utilization"] - 0.4) * 3 - (df["credit_score"] - 600) / 100
    df["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def batch_frame(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = features(n, rng)
    df.insert(0, "request_id", pd.Series(np.arange(n)).map("req-{:010d}".format))
    df.insert(1, "timestamp", pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n) * 40, unit="ms"))
    df.insert(2, "version", np.ones(n, dtype=np.int64))
    df.insert(3, "variant", "champion")
    score = rng.random(n)
    df["prediction"] = np.where(score >= 0.5, "1", "0")
    df["score"] = score
    return df


def fresh(path: Path) -> Path:
    path.unlink(missing_ok=True)
    Path(str(path) + ".wal").unlink(missing_ok=True)
    shutil.rmtree(path.parent / f"{path.stem}_artifacts", ignore_errors=True)
    forget_database(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each side (best is reported)")
    ap.add_argument("--dir", default=str(ROOT / "benchmarks" / "data"))
    args = ap.parse_args()
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    parquet = work / f"ingest_{args.rows}.parquet"
    if not parquet.exists():
        t = time.perf_counter()
        batch_frame(args.rows).to_parquet(parquet, index=False)
        print(f"wrote {parquet} ({parquet.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")

    ours, bare = [], []
    for i in range(args.repeat):
        db = fresh(work / "bench_ingest.duckdb")
        ControlRoom(db).register("credit_default", "classification", "default", training_frame())
        t = time.perf_counter()
        r = ControlRoom(db).model("credit_default").ingest(parquet)
        ours.append(time.perf_counter() - t)
        assert r.rows_written == args.rows, r

        bare_db = fresh(work / "bench_bare.duckdb")
        con = duckdb.connect(str(bare_db))
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{parquet}') LIMIT 0")
        t = time.perf_counter()
        con.execute(f"INSERT INTO t SELECT * FROM read_parquet('{parquet}')")
        con.close()  # both sides pay for the checkpoint that makes the rows part of the file
        bare.append(time.perf_counter() - t)
        print(f"run {i + 1}: Model.ingest {ours[-1]:.2f} s, bare INSERT {bare[-1]:.2f} s")

    o, b = min(ours), min(bare)
    print(f"rows: {args.rows:,}")
    print(f"Model.ingest (all checks, one transaction): {args.rows / o:,.0f} rows/s ({o:.2f} s)")
    print(f"bare INSERT ... SELECT * FROM read_parquet:      {args.rows / b:,.0f} rows/s ({b:.2f} s)")
    print(f"ratio ours / bare (time): {o / b:.2f}x")
    for p in (work / "bench_ingest.duckdb", work / "bench_bare.duckdb"):
        fresh(p)


if __name__ == "__main__":
    main()

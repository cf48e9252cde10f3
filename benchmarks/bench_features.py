"""Feature store speed: the point-in-time join against DuckDB's bare ASOF JOIN, and online lookups of one entity.

Builds a fresh store in benchmarks/data/features/ (gitignored): one view with ``--feature-rows`` rows
(default 10,000,000: 200,000 entities, an int key, three features, event times over 90 days, ingested
through ``FeatureStore.ingest`` with all its checks) and ``--entity-rows`` entity rows (default
1,000,000, random keys and times, 5% of them keys the view never saw). Then, in paired rounds (the
order alternates, so neither side always runs on a warmer machine):

- ours: ``FeatureStore.training_set(entities, "view:*", arrow=True)``: the entity rows in their
  order with the three features, TTL applied, superseded rows left out, as an Arrow table;
- bare: ``SELECT e.*, f.clicks, f.spend, f.segment FROM entities e ASOF LEFT JOIN read_parquet(the same
  files) f ON e.key = f.key AND e.ts >= f.event_ts``, as an Arrow table, on the same in-memory DuckDB
  instance: the same output columns, but no TTL, no superseded rows left out, no order, no metadata visit.

Prints each round, the median and the worst of the ratio ours / bare (target: at most 1.5).

Online: ``materialize``, then ``--lookups`` (default 20,000) lookups of one random entity each through
``FeatureStore.get_online_features`` (the Python call serving makes), timed one by one; prints the first
lookup (which loads the snapshot into the cache), then p50, p99 and the worst (target: p99 under 5 ms).

    .venv/bin/python benchmarks/bench_features.py [--feature-rows 10000000] [--entity-rows 1000000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mlops_core import ControlRoom, Identity  # noqa: E402

T0 = datetime(2026, 1, 1)
US_PER_DAY = 86_400_000_000


def feature_rows(n: int, entities: int, rng: np.random.Generator) -> pa.Table:
    base = np.datetime64(T0, "us").astype(np.int64)
    return pa.table({
        "user_id": rng.integers(0, entities, n),
        "event_ts": pa.array(base + rng.integers(0, 90 * US_PER_DAY, n), pa.timestamp("us")),
        "clicks": rng.poisson(3.0, n).astype(np.int64),
        "spend": rng.lognormal(3.0, 1.0, n).round(2),
        "segment": pa.array(rng.choice(["new", "casual", "loyal", "vip"], n)),
    })


def entity_rows(n: int, entities: int, rng: np.random.Generator) -> pa.Table:
    base = np.datetime64(T0, "us").astype(np.int64)
    keys = rng.integers(0, int(entities * 1.05), n)  # about 5% never seen by the view
    return pa.table({"user_id": keys, "ts": pa.array(base + rng.integers(0, 95 * US_PER_DAY, n), pa.timestamp("us")),
                     "label": rng.integers(0, 2, n)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--feature-rows", type=int, default=10_000_000)
    ap.add_argument("--entity-rows", type=int, default=1_000_000)
    ap.add_argument("--entities", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lookups", type=int, default=20_000)
    args = ap.parse_args()
    folder = ROOT / "benchmarks" / "data" / "features"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    room = ControlRoom(folder / "bench.duckdb", identity=Identity("bench", "admin"))
    fs = room.features
    fs.define_entity("user", {"user_id": "int"})
    fs.define_view("activity", "user", "event_ts", {"clicks": "int", "spend": "float", "segment": "string"},
                   ttl="30d")
    rows = feature_rows(args.feature_rows, args.entities, rng)
    t = time.perf_counter()
    r = fs.ingest("activity", rows)
    print(f"ingest: {r.rows_written:,} feature rows in {time.perf_counter() - t:.1f} s "
          f"({r.rows_written / (time.perf_counter() - t):,.0f} rows/s, with every check)")
    del rows
    entities = entity_rows(args.entity_rows, args.entities, rng)
    files = sorted(str(p) for p in (room.store.logs / "features" / "view=activity").glob("date=*/*.parquet"))
    listed = ", ".join(f"'{f}'" for f in files)
    # The same output columns as ours: the entity rows and the three features.
    bare_sql = (f"SELECT e.*, f.clicks, f.spend, f.segment FROM bench_entities e ASOF LEFT JOIN read_parquet([{listed}], "
                "hive_partitioning = false) f ON e.user_id = f.user_id AND e.ts >= f.__event_ts")

    def ours() -> float:
        t0 = time.perf_counter()
        out = fs.training_set(entities, "activity:*", arrow=True)
        elapsed = time.perf_counter() - t0
        assert out.num_rows == entities.num_rows
        return elapsed

    def bare() -> float:
        with room.store.engine() as eng:
            eng.register("bench_entities", entities)
            t0 = time.perf_counter()
            out = eng.sql(bare_sql).to_arrow_table()
            elapsed = time.perf_counter() - t0
            eng.unregister("bench_entities")
        assert out.num_rows == entities.num_rows
        return elapsed

    ours(), bare()  # warm the file cache and the instance once
    ratios = []
    print(f"point-in-time join of {entities.num_rows:,} entity rows against {r.rows_written:,} feature rows "
          f"({len(files)} files):")
    for i in range(args.rounds):
        if i % 2 == 0:
            a, b = ours(), bare()
        else:
            b, a = bare(), ours()
        ratios.append(a / b)
        print(f"  round {i + 1}: ours {a:.2f} s, bare ASOF JOIN {b:.2f} s, ratio {a / b:.2f}")
    print(f"  ratio ours / bare: median {statistics.median(ratios):.2f}, worst {max(ratios):.2f} (target <= 1.5)")

    t = time.perf_counter()
    [m] = fs.materialize(["activity"], as_of=datetime(2026, 4, 1))
    print(f"materialize: {m.rows:,} entities in {time.perf_counter() - t:.2f} s")
    keys = rng.integers(0, args.entities, args.lookups)
    now = datetime(2026, 4, 1)
    t0 = time.perf_counter()
    fs.get_online_features(["activity:clicks", "activity:spend", "activity:segment"], [int(keys[0])], now=now)
    first = time.perf_counter() - t0
    times = np.empty(args.lookups)
    for i, k in enumerate(keys):
        t0 = time.perf_counter_ns()
        got = fs.get_online_features(["activity:clicks", "activity:spend", "activity:segment"], [int(k)], now=now)
        times[i] = (time.perf_counter_ns() - t0) / 1e6
        assert got[0].key == (int(k),)
    p50, p99 = np.percentile(times, [50, 99])
    print(f"online lookup of one entity ({args.lookups:,} lookups): first {first * 1000:.0f} ms (loads the snapshot), "
          f"then p50 {p50:.3f} ms, p99 {p99:.3f} ms, worst {times.max():.3f} ms (target p99 < 5 ms)")


if __name__ == "__main__":
    main()

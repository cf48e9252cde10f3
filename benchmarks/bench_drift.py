"""Drift benchmarks: our engine against Evidently's DataDriftPreset, and per-day drift against a bare scan.

    .venv/bin/python benchmarks/bench_drift.py [--rows 1000000] [--rounds 3] [--log-rows 10000000] [--skip-peer]
                                               [--skip-log]

1. Drift of 20 features (15 numeric, 5 categorical, 5 of them shifted), ``--rows`` current rows
   against a reference of ``--rows`` rows:
   a. ours, reference already stored: ``drift.over_time`` on a model log holding the current rows
      (one window), against the stored reference summary;
   b. ours, reference summarised first: ``drift.reference_from_file`` summarises the reference
      Parquet in the engine and stores it, then (a);
   c. Evidently 0.7.23 ``Report([DataDriftPreset()]).run(current, reference)`` on the same Parquet
      files, in its own virtualenv (``benchmarks/.venv-peers``, or the interpreter named by
      ``$MLOPS_PEERS_PYTHON``; create it with ``python3 -m venv benchmarks/.venv-peers &&
      benchmarks/.venv-peers/bin/pip install -r benchmarks/requirements-peers.txt``).
   Each runs in a fresh subprocess, which reports its wall time and peak RSS; ours with
   ``MLOPS_WINDOW_CACHE=0`` (computed from the log every time, like the peer). (a) and (c) run
   back to back in ``--rounds`` paired rounds (ABBA order); printed: the median and the worst
   of each, and of the rounds' own ratios. Targets: (a) under 500 MB peak RSS and at least 300x
   faster than (c) in every round.
2. Drift per day over 90 days of a ``--log-rows`` prediction log with the same 20 features:
   ``drift.over_time(window="day")`` (one scan of the log; results stored) next to a bare
   ``SELECT count(*), sum(...)`` scan of the same table.

Generated data lives in ``benchmarks/data/`` (git-ignored) and is reused across runs.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
#: The peers' interpreter: $MLOPS_PEERS_PYTHON, else benchmarks/.venv-peers.
PEER_PY = Path(os.environ.get("MLOPS_PEERS_PYTHON") or HERE / ".venv-peers" / "bin" / "python")
sys.path.insert(0, str(ROOT))
from mlops_core import ControlRoom  # noqa: E402
from mlops_core.entities import PSEUDO_FEATURES  # noqa: E402

N_NUM, N_CAT = 15, 5
NUMERIC = [f"num_{i:02d}" for i in range(N_NUM)]
CATEGORICAL = [f"cat_{i}" for i in range(N_CAT)]
SHIFTED = ["num_00", "num_01", "num_02", "num_03", "cat_0"]
CATS = ["a", "b", "c", "d", "e", "f"]
CAT_P = [0.3, 0.25, 0.2, 0.12, 0.08, 0.05]
CAT_P_SHIFTED = [0.2, 0.2, 0.2, 0.15, 0.15, 0.1]
MODEL = "bench"


def make_frame(n: int, seed: int, shifted: bool):
    """20 features: normal, lognormal, integer and beta numerics, six-level categoricals; some shifted."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols = {}
    for i, name in enumerate(NUMERIC):
        kind = i % 4
        if kind == 0:
            v = rng.normal(50, 10, n)
        elif kind == 1:
            v = rng.lognormal(0, 0.8, n)
        elif kind == 2:
            v = rng.integers(0, 100, n).astype(float)
        else:
            v = rng.beta(2, 5, n)
        if shifted and name in SHIFTED:
            v = v + 0.3 * np.std(v)
        cols[name] = v
    for name in CATEGORICAL:
        p = CAT_P_SHIFTED if shifted and name in SHIFTED else CAT_P
        cols[name] = rng.choice(CATS, n, p=p)
    return pd.DataFrame(cols)


def specs():
    from mlops_core.data.schema import FeatureSpec

    return ([FeatureSpec(n, "numeric", "float") for n in NUMERIC]
            + [FeatureSpec(n, "categorical", "string", categories=CATS) for n in CATEGORICAL])


def ensure_parquet(rows: int) -> tuple[Path, Path]:
    DATA.mkdir(exist_ok=True)
    ref, cur = DATA / f"drift_ref_{rows}.parquet", DATA / f"drift_cur_{rows}.parquet"
    if not ref.exists():
        make_frame(rows, 1, False).to_parquet(ref)
    if not cur.exists():
        make_frame(rows, 2, True).to_parquet(cur)
    return ref, cur


def create_model(db: Path, start: datetime, parquet: Path, copies: int, days: float) -> None:
    """A model whose log holds ``copies`` times the rows of ``parquet`` (feature columns), timestamps spread evenly
    over ``days`` from ``start``, written as the prediction log's Parquet files (one append per copy)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_core.store import Store, connect, transaction
    from mlops_core.store import models as mstore
    from mlops_core.store import predictions as pstore

    for old in (db, db.with_name(db.name + ".wal")):
        old.unlink(missing_ok=True)
    import shutil

    from mlops_core.config import artifacts_dir, logs_dir

    shutil.rmtree(logs_dir(db), ignore_errors=True)
    shutil.rmtree(artifacts_dir(db), ignore_errors=True)
    with connect(db, create=True) as con, transaction(con):
        info = mstore.create_model(con, MODEL, "classification", "y", specs(), positive_class="1", classes=["0", "1"])
    chunk = pq.read_table(parquet, columns=NUMERIC + CATEGORICAL)
    n = chunk.num_rows
    total = n * copies
    step_us = days * 86400e6 / total
    for k in range(copies):
        rn = np.arange(k * n, (k + 1) * n)
        ts = np.datetime64(start, "us") + (rn * step_us).astype("timedelta64[us]")
        num_00 = chunk.column("num_00").to_numpy()
        table = chunk.append_column("request_id", pa.array(rn.astype(str))) \
            .append_column("version", pa.array(np.ones(n, dtype=np.int32))) \
            .append_column("variant", pa.nulls(n, pa.string())) \
            .append_column("ts", pa.array(ts)) \
            .append_column("prediction", pa.array(np.where(num_00 > 55, "1", "0"))) \
            .append_column("score", chunk.column("num_07"))
        pstore.append(Store(db), info, "predictions", table, batch_id=f"bench-{k}")


def store_reference_from(db: Path, frame) -> int:
    from mlops_core.data import reference
    from mlops_core.store import connect, transaction
    from mlops_core.store import references as rstore

    refs = reference.summarise(frame, specs())
    with connect(db, write=True) as con, transaction(con):
        return rstore.save_reference(con, MODEL, refs, kind="training", version=1, rows=len(frame))


def peak_rss_mb() -> float:
    """This process's own peak RSS: VmHWM of its address space. (Linux carries ``ru_maxrss`` over from the process
    that forked it, so a child of this benchmark, which holds the data in memory, would report the parent's.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the measured runs (each in its own subprocess) ---------------------------------------------


def _warm_imports() -> None:
    """Import what a running service has loaded already (Evidently's imports are not timed either)."""
    import pandas  # noqa: F401
    import scipy.stats  # noqa: F401

    from mlops_core.monitoring import drift, performance  # noqa: F401
    from mlops_core.store import drift as drift_store  # noqa: F401


def run_ours_stored(db: Path, ref_id: int) -> dict:
    _warm_imports()

    t, cpu = time.perf_counter(), time.process_time()
    out = ControlRoom(db).model(MODEL).drift(window="week", reference_id=ref_id, store=False)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    feats = out[~out["feature"].isin(PSEUDO_FEATURES)]
    return {"seconds": seconds, "cpu": cpu, "peak_mb": peak_rss_mb(),
            "drifted": sorted(feats.loc[feats["drifted"], "feature"]), "windows": int(out["window_start"].nunique())}


def run_ours_summarise(db: Path, ref_parquet: Path) -> dict:
    _warm_imports()


    t = time.perf_counter()
    ref_id = ControlRoom(db).model(MODEL).reference_from_file(ref_parquet)
    out = ControlRoom(db).model(MODEL).drift(window="week", reference_id=ref_id, store=False)
    seconds = time.perf_counter() - t
    feats = out[~out["feature"].isin(PSEUDO_FEATURES)]
    return {"seconds": seconds, "peak_mb": peak_rss_mb(), "drifted": sorted(feats.loc[feats["drifted"], "feature"])}


PEER_CODE = r"""
import json, resource, sys, time
import pandas as pd
from evidently import Report, Dataset, DataDefinition
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
num = [c for c in ref.columns if c.startswith("num_")]; cat = [c for c in ref.columns if c.startswith("cat_")]
t, cpu = time.perf_counter(), time.process_time()
dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
r = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(ref, data_definition=dd))
res = r.dict()
seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
drifted = []
for m in res.get("metrics", []):
    name = str(m.get("metric_name", "")) + str(m.get("metric_id", ""))
    cfg = m.get("config", {}) or {}
    col = cfg.get("column")
    val = m.get("value")
    thr = cfg.get("threshold")
    if col and "ValueDrift" in name and isinstance(val, (int, float)) and thr is not None:
        method = str(cfg.get("method", ""))
        is_p = "p_value" in method or "test" in method.lower()
        if (val < thr) if is_p else (val >= thr):
            drifted.append(col)
peak = next((int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:")),
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": peak, "drifted": sorted(set(drifted))}))
"""


def run_peer(ref_parquet: Path, cur_parquet: Path) -> dict | None:
    if not PEER_PY.exists():
        print("  Evidently not installed: python3 -m venv benchmarks/.venv-peers && "
              "benchmarks/.venv-peers/bin/pip install -r benchmarks/requirements-peers.txt")
        return None
    proc = subprocess.run([str(PEER_PY), "-c", PEER_CODE, str(ref_parquet), str(cur_parquet)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        print("  Evidently failed:", proc.stderr[-2000:])
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child(kind: str, *args) -> dict:
    # Every run computes from the log, as Evidently does: the per-window results kept by earlier runs
    # (store.window_cache) would make every run after the first a read of a small JSON file.
    env = {**os.environ, "MLOPS_WINDOW_CACHE": "0"}
    proc = subprocess.run([sys.executable, __file__, "--child", kind, *map(str, args)], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_vs_peer(rows: int, skip_peer: bool, rounds: int) -> None:
    print(f"\n== Drift of 20 features, {rows:,} current rows vs a reference of {rows:,} rows "
          f"(5 shifted: {', '.join(SHIFTED)}), {rounds} paired rounds")
    ref_p, cur_p = ensure_parquet(rows)
    db = DATA / f"drift_bench_{rows}.duckdb"
    create_model(db, datetime(2026, 1, 5), cur_p, 1, days=6)  # one week: one window
    import pandas as pd

    ref_id = store_reference_from(db, pd.read_parquet(ref_p))
    summ = _child("summarise", db, ref_p)
    print(f"  ours, summarise the reference first: {summ['seconds']:.3f} s, peak RSS {summ['peak_mb']:.0f} MB")
    ours, theirs = [], []
    for i in range(rounds):  # ABBA order: a change of machine load hits both alike
        order = ("ours", "peer") if i % 2 == 0 else ("peer", "ours")
        for what in order:
            if what == "ours":
                ours.append(_child("stored", db, ref_id))
            elif not skip_peer:
                theirs.append(run_peer(ref_p, cur_p))
        line = (f"  round {i + 1}: ours {ours[-1]['seconds']:.3f} s (CPU {ours[-1]['cpu']:.2f} s) / "
                f"{ours[-1]['peak_mb']:.0f} MB")
        if theirs and theirs[-1]:
            line += (f", Evidently {theirs[-1]['seconds']:.1f} s (CPU {theirs[-1]['cpu']:.1f} s) / "
                     f"{theirs[-1]['peak_mb']:.0f} MB: {theirs[-1]['seconds'] / ours[-1]['seconds']:.0f}x "
                     f"(CPU {theirs[-1]['cpu'] / ours[-1]['cpu']:.0f}x)")
        print(line, flush=True)
    secs, mbs = [o["seconds"] for o in ours], [o["peak_mb"] for o in ours]
    print(f"  ours, stored reference : median {statistics.median(secs):.3f} s, worst {max(secs):.3f} s; peak RSS "
          f"median {statistics.median(mbs):.0f} MB, worst {max(mbs):.0f} MB (target < 500 MB)   "
          f"drifted: {', '.join(ours[-1]['drifted'])}")
    if theirs and all(theirs):
        peer_s = [t["seconds"] for t in theirs]
        ratios = [t / o for t, o in zip(peer_s, secs, strict=False)]
        print(f"  Evidently DataDriftPreset: median {statistics.median(peer_s):.1f} s, worst {max(peer_s):.1f} s; "
              f"peak RSS median {statistics.median([t['peak_mb'] for t in theirs]):.0f} MB   "
              f"drifted: {', '.join(theirs[-1]['drifted']) or '(see report)'}")
        print(f"  ratio Evidently / ours per round: median {statistics.median(ratios):.0f}x, worst {min(ratios):.0f}x "
              f"(target >= 300x in every round) -> {'met' if min(ratios) >= 300 else 'NOT met'}")
        cpu_ratios = [t["cpu"] / o["cpu"] for t, o in zip(theirs, ours, strict=False)]
        print(f"  the same in CPU seconds (less sensitive to a busy machine): median "
              f"{statistics.median(cpu_ratios):.0f}x, worst {min(cpu_ratios):.0f}x")


def bench_log(log_rows: int) -> None:
    print(f"\n== Drift per day over 90 days of a {log_rows:,}-row log, 20 features + prediction/score/target")
    db = DATA / f"drift_log_{log_rows}.duckdb"
    ref_p, _ = ensure_parquet(1_000_000)
    if not db.exists():
        t = time.perf_counter()
        chunk = DATA / "drift_log_chunk.parquet"
        if not chunk.exists():
            import pandas as pd

            pd.concat([make_frame(1_000_000, 3, False), ], ignore_index=True).to_parquet(chunk)
        copies = max(1, log_rows // 1_000_000)
        create_model(db, datetime(2026, 1, 1), chunk, copies, days=90)
        import pandas as pd

        store_reference_from(db, pd.read_parquet(ref_p))
        print(f"  (built the log in {time.perf_counter() - t:.1f} s)")
    from mlops_core.store import connect

    with connect(db) as con:
        ref_id = con.execute("SELECT max(id) FROM drift_references").fetchall()[0][0]
    res = _child("log", db, ref_id)
    print(f"  bare scan SELECT count(*), sum(<20 features>) : {res['scan']:7.3f} s")
    print(f"  bare scan of the same, GROUP BY day           : {res['scan_day']:7.3f} s")
    print(f"  drift.over_time(window='day'), stored         : {res['ours']:7.3f} s  ({res['windows']} windows, "
          f"{res['rows']} results; the one SQL scan alone {res['sql']:.3f} s)")
    print(f"  ratio to the bare scan (GROUP BY day)         : {res['ours'] / res['scan']:7.1f} x "
          f"({res['ours'] / res['scan_day']:.1f} x)")


def run_log(db: Path, ref_id: int) -> dict:
    _warm_imports()
    from mlops_core.monitoring import drift
    from mlops_core.store import Store, logs
    from mlops_core.store import drift as dstore
    from mlops_core.store import models as mstore
    from mlops_core.store import references as rstore

    def best(fn, k=2):
        times = []
        for _ in range(k):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    store = Store(db)
    with store.connect() as con:
        info = mstore.get_model(con, MODEL)
        view = logs.view(con, store.logs, info)
        refs = rstore.load_reference(con, ref_id)
    specs = [drift.spec_of(r) for r in refs if r.feature != "__target__"]
    target = next((drift.spec_of(r) for r in refs if r.feature == "__target__"), None)
    sums = ", ".join(f"sum({c})" for c in NUMERIC) + ", " + ", ".join(f"count({c})" for c in CATEGORICAL)
    with store.engine() as con:
        con.execute(f"SELECT count(*), {sums} FROM {view.predictions}").fetchall()  # warm the file cache
        scan = best(lambda: con.execute(f"SELECT count(*), {sums} FROM {view.predictions}").fetchall())
        scan_day = best(lambda: con.execute(
            f"SELECT date_trunc('day', ts), count(*), {sums} FROM {view.predictions} GROUP BY 1").fetchall())
        sql = best(lambda: dstore.window_counts(con, view, "day", specs, None, None, target))
    out = None

    def run():
        nonlocal out
        out = ControlRoom(db).model(MODEL).drift(window="day", reference_id=ref_id, store=True)

    ours = best(run)
    return {"scan": scan, "scan_day": scan_day, "ours": ours, "sql": sql, "windows": int(out["window_start"].nunique()),
            "rows": len(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--log-rows", type=int, default=10_000_000)
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--skip-log", action="store_true")
    ap.add_argument("--skip-peer-bench", action="store_true", help="only the per-day log benchmark")
    ap.add_argument("--rounds", type=int, default=3, help="paired rounds of ours against Evidently (default 3)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        if kind == "stored":
            res = run_ours_stored(Path(rest[0]), int(rest[1]))
        elif kind == "summarise":
            res = run_ours_summarise(Path(rest[0]), Path(rest[1]))
        else:
            res = run_log(Path(rest[0]), int(rest[1]))
        print(json.dumps(res))
        return
    import duckdb

    print(f"machine: {os.cpu_count()} cores; duckdb {duckdb.__version__}")
    if not a.skip_peer_bench:
        bench_vs_peer(a.rows, a.skip_peer, a.rounds)
    if not a.skip_log:
        bench_log(a.log_rows)


if __name__ == "__main__":
    main()

"""Serving speed and loss: the HTTP service, batch scoring and the spool loader, each against a baseline run
alongside it.

On a copy of the demo database (``credit_default``, its production version: the demo's gradient-boosted
pipeline of 13 features), in paired rounds (median and worst reported):

1. **Latency**: ``mlops serve`` on a free 127.0.0.1 port; an open-loop generator (``loadgen.py``: fixed
   rate, latency from the scheduled send, bounded count) sends single records at 200 and at 400 requests/s
   for ``--seconds`` each. Next to it in the same round: the bare in-process ``predict_proba`` of one row
   (the same estimator, one OpenMP thread like the service), p50 and p99. Targets: p99 < 15 ms at 200/s,
   p99 < 50 ms at 400/s, zero errors. Also the service process's CPU time per answered request (from
   /proc), which other processes on the machine do not inflate the way they inflate wall-clock latency.
2. **Loss**: after the rounds the service gets SIGTERM (a clean stop); every answered request id must be in
   the log (lost = answered - logged).
3. **Batch scoring**: ``Model.score`` (read, check, predict, log through ingest, write the scored file) of
   ``--batch-rows`` rows against the bare ``predict_proba`` of the same rows; ratio of throughputs
   (target >= 0.8).
4. **Loader under dashboard reads**: 1,000 predictions/s spooled for ``--seconds`` while another process
   reads the dashboard's Overview figures (``Model.summary`` and ``Model.performance``) in a loop; the
   loader's backlog must stay bounded and every row must arrive; read latency p95 (target < 2 s).

    .venv/bin/python benchmarks/bench_serving.py [--rounds 3] [--seconds 20] [--batch-rows 200000]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from loadgen import load  # noqa: E402

from mlops_core import ControlRoom, Identity, load_model  # noqa: E402

MODEL = "credit_default"
PATH = f"/v1/models/{MODEL}/predict"
ADMIN = Identity("bench", "admin")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo(folder: Path) -> Path:
    from mlops_core.demo.build import build_demo

    db = folder / "demo.duckdb"
    build_demo(db, days=40, daily=300, seed=0, end=datetime(2026, 3, 31, 12))
    return db


def feature_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` credit applications from the demo's data-generating process (features only)."""
    from mlops_core.demo.simulate import credit_features

    df = credit_features(np.random.default_rng(seed), n)
    for c in df.columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype(object)
    return df


def bare_one_row(model, rows: pd.DataFrame, n: int = 300) -> np.ndarray:
    """Seconds per ``predict_proba`` of one row (coerced frame), one OpenMP thread."""
    from threadpoolctl import threadpool_limits

    frames = [model.features(rows.iloc[[i % len(rows)]]) for i in range(n)]
    out = []
    with threadpool_limits(1):
        for f in frames[:20]:
            model.estimator.predict_proba(f)
        for f in frames:
            t = time.perf_counter()
            model.estimator.predict_proba(f)
            out.append(time.perf_counter() - t)
    return np.array(out)


def ms(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q) * 1000)


class Server:
    def __init__(self, db: Path, log: Path):
        self.db, self.port, self.log = db, free_port(), log

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "mlops_core", "serve", "--db", str(self.db), "--model",
                                      MODEL, "--port", str(self.port)], cwd=ROOT, stdout=open(self.log, "wb"),
                                     stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                    if json.loads(r.read())["status"] == "ok":
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"the service did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(120)

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc; Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency_rounds(db: Path, args, work: Path) -> dict:
    model = load_model(MODEL, db=db)
    rows = feature_rows(2000, seed=1)
    bodies = [json.dumps(r).encode() for r in rows.astype(object).to_dict(orient="records")]
    answered: list[str] = []
    rounds = []
    with Server(db, work / "serve.log") as srv:
        load("127.0.0.1", srv.port, PATH, bodies, rate=100, seconds=3)  # warm-up (answers logged too)
        warm = 300
        for r in range(args.rounds):
            bare = bare_one_row(model, rows)
            c0 = cpu_seconds(srv.proc.pid)
            at200 = load("127.0.0.1", srv.port, PATH, bodies, rate=200, seconds=args.seconds, keep_ids=True)
            c1 = cpu_seconds(srv.proc.pid)
            at400 = load("127.0.0.1", srv.port, PATH, bodies, rate=400, seconds=args.seconds, keep_ids=True)
            c2 = cpu_seconds(srv.proc.pid)
            answered += at200.answered_ids + at400.answered_ids
            one = {"bare_p50": ms(bare, 50), "bare_p99": ms(bare, 99),
                   "p50_200": at200.percentile(50), "p99_200": at200.percentile(99), "errors_200": at200.errors,
                   "p50_400": at400.percentile(50), "p99_400": at400.percentile(99), "errors_400": at400.errors,
                   "throughput_400": at400.throughput, "load": os.getloadavg()[0],
                   "cpu_ms_200": (c1 - c0) / max(at200.ok, 1) * 1000, "cpu_ms_400": (c2 - c1) / max(at400.ok, 1) * 1000}
            rounds.append(one)
            print(f"round {r + 1}: bare predict_proba 1 row p50 {one['bare_p50']:.2f} ms p99 {one['bare_p99']:.2f} ms | "
                  f"200/s: p50 {one['p50_200']:.2f} ms p99 {one['p99_200']:.2f} ms errors {one['errors_200']} | "
                  f"400/s: p50 {one['p50_400']:.2f} ms p99 {one['p99_400']:.2f} ms errors {one['errors_400']} "
                  f"throughput {one['throughput_400']:.0f}/s | service CPU per request {one['cpu_ms_200']:.2f} ms "
                  f"(200/s), {one['cpu_ms_400']:.2f} ms (400/s) | load average {one['load']:.1f}", flush=True)
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        batch_line = [ln for ln in metrics.splitlines() if ln.startswith("mlops_batch_rows_sum")
                      or ln.startswith("mlops_batch_rows_count")]
        code = srv.stop()
    from mlops_core.store import Store, logs
    from mlops_core.store import models as mstore

    store = Store(db)
    with store.connect() as con:
        view = logs.view(con, store.logs, mstore.get_model(con, MODEL))
    with store.engine() as con:
        con.register("answered", pd.DataFrame({"request_id": answered}))
        logged = con.execute(f"SELECT count(*) FROM answered a WHERE EXISTS (SELECT 1 FROM {view.predictions} p "
                             "WHERE p.request_id = a.request_id)").fetchone()[0]
    lost = len(answered) - int(logged)
    print(f"clean stop (exit {code}): {len(answered):,} measured requests answered, {logged:,} in the log, "
          f"lost {lost}; micro-batches: {'; '.join(batch_line)}", flush=True)
    del warm
    return {"rounds": rounds, "answered": len(answered), "logged": int(logged), "lost": lost}


def batch_rounds(db: Path, args, work: Path) -> dict:
    room = ControlRoom(db, identity=ADMIN)
    m = room.model(MODEL)
    loaded = load_model(MODEL, db=db)
    rows = feature_rows(args.batch_rows, seed=2)
    src = work / "batch.parquet"
    rows.to_parquet(src)
    out = []
    for r in range(args.rounds):
        frame = loaded.features(rows)
        t = time.perf_counter()
        loaded.estimator.predict_proba(frame)
        bare = time.perf_counter() - t
        t = time.perf_counter()
        res = m.score(src, out=work / f"scored-{r}.parquet")
        ours = time.perf_counter() - t
        steps = ", ".join(f"{k} {v:.2f}" for k, v in res.seconds.items())
        out.append({"bare_s": bare, "score_s": ours, "ratio": bare / ours})
        print(f"round {r + 1}: {len(rows):,} rows: bare predict_proba {bare:.2f} s ({len(rows) / bare:,.0f} rows/s), "
              f"score {ours:.2f} s ({len(rows) / ours:,.0f} rows/s; {steps}), throughput ratio {bare / ours:.2f}",
              flush=True)
    return {"rounds": out}


READER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from mlops_core import ControlRoom
m = ControlRoom(sys.argv[2]).model(sys.argv[3])
end = time.monotonic() + float(sys.argv[4])
lat = []
while time.monotonic() < end:
    t = time.perf_counter()
    last = m.last_prediction()
    m.summary(days=7, now=last)
    m.performance(window="day", auc=False)
    lat.append(time.perf_counter() - t)
print(json.dumps(lat))
"""


def loader_run(db: Path, args, work: Path) -> dict:
    from mlops_core.serving import loader as loadermod
    from mlops_core.serving import requests as reqmod
    from mlops_core.serving import scorer
    from mlops_core.serving import spool as spoolmod
    from mlops_core.serving.router import Router
    from mlops_core.store import Store, utcnow

    store = Store(db)
    info = ControlRoom(db).model(MODEL).info
    router = Router(store, info)
    router.refresh()
    rows = feature_rows(1000, seed=3)
    frame = reqmod.frame_of(info, {c: rows[c].tolist() for c in rows.columns})
    ids = [reqmod.new_request_id() for _ in range(1000)]
    # scored once: the feed below only renames the rows, so that feeding costs the loader no CPU
    parts = [scorer.score_frame(router.live, frame.iloc[i:i + 100].reset_index(drop=True), ids[i:i + 100],
                                ids[i:i + 100], at=utcnow()).rows for i in range(0, 1000, 100)]
    folder = work / "spool"
    spool = spoolmod.Spool(folder, info)
    loader = loadermod.Loader(store, info, folder, actor="bench", spool=spool)
    loader.start()
    reader = subprocess.Popen([sys.executable, "-c", READER, str(ROOT), str(db), MODEL, str(args.seconds)],
                              stdout=subprocess.PIPE, text=True)
    fed, backlog = 0, []
    t0 = time.perf_counter()
    tick = 0
    while time.perf_counter() - t0 < args.seconds:  # 100 rows every 0.1 s: 1,000 predictions/s
        part = parts[tick % 10]
        fresh = pa.array([f"{tick}-{i}" for i in range(100)], type=pa.string())
        spool.append(part.set_column(0, "request_id", fresh).set_column(
            3, "ts", pa.array(np.full(100, np.datetime64(utcnow(), "us")), type=pa.timestamp("us"))))
        fed += 100
        tick += 1
        if tick % 10 == 0:
            backlog.append(loader.backlog())
        delay = t0 + tick * 0.1 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    rate = fed / (time.perf_counter() - t0)
    lat = np.array(json.loads(reader.communicate(timeout=600)[0]))
    done = loader.stop(drain=True)
    total = loader.stats.rows_loaded
    print(f"loader: fed {fed:,} rows at {rate:,.0f}/s for {args.seconds:.0f} s; loaded {total:,} "
          f"(final drain {done.rows:,}); {loader.stats.batches} ingests, last {loader.stats.last_batch_seconds:.2f} s; "
          f"backlog max {max(backlog) if backlog else 0:,} rows; dashboard reads during writes: "
          f"{len(lat)} reads, p50 {np.percentile(lat, 50):.2f} s, p95 {np.percentile(lat, 95):.2f} s", flush=True)
    return {"fed": fed, "loaded": total, "rate": rate, "backlog_max": max(backlog) if backlog else 0,
            "read_p50": float(np.percentile(lat, 50)), "read_p95": float(np.percentile(lat, 95))}


def summarise(lat: dict, batch: dict, loader: dict) -> None:
    rounds = lat["rounds"]

    def col(k):
        return np.array([r[k] for r in rounds])

    print("\nSummary (median / worst of paired rounds):")
    print(f"  bare predict_proba, 1 row:  p50 {np.median(col('bare_p50')):.2f} / {col('bare_p50').max():.2f} ms, "
          f"p99 {np.median(col('bare_p99')):.2f} / {col('bare_p99').max():.2f} ms")
    for rate in (200, 400):
        p50, p99, err = col(f"p50_{rate}"), col(f"p99_{rate}"), col(f"errors_{rate}")
        ratio = p50 / col("bare_p50")
        print(f"  HTTP at {rate}/s: p50 {np.median(p50):.2f} / {p50.max():.2f} ms, p99 {np.median(p99):.2f} / "
              f"{p99.max():.2f} ms, errors {int(err.sum())}; p50 vs bare p50: {np.median(ratio):.1f}x / "
              f"{ratio.max():.1f}x")
    cpu = col("cpu_ms_400")
    print(f"  service CPU per request at 400/s: {np.median(cpu):.2f} / {cpu.max():.2f} ms (one core answers about "
          f"{1000 / np.median(cpu):,.0f} requests/s at that cost)")
    thr = col("throughput_400")
    print(f"  throughput at the 400/s step: {np.median(thr):.0f} / {thr.min():.0f} requests/s")
    print(f"  lost predictions after a clean stop: {lat['lost']} of {lat['answered']:,}")
    ratios = np.array([r["ratio"] for r in batch["rounds"]])
    print(f"  batch scoring throughput vs bare predict_proba: {np.median(ratios):.2f} / {ratios.min():.2f} "
          "(target >= 0.8)")
    print(f"  loader at {loader['rate']:,.0f} predictions/s: all {loader['loaded']:,} of {loader['fed']:,} loaded, "
          f"backlog max {loader['backlog_max']:,}; dashboard read p95 {loader['read_p95']:.2f} s (target < 2 s)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds of traffic per rate and round")
    ap.add_argument("--batch-rows", type=int, default=200_000)
    ap.add_argument("--db", help="a demo database to copy (default: build a small demo)")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    if args.db:
        from shutil import copy, copytree

        src = Path(args.db)
        db = work / src.name
        copy(src, db)
        for suffix in ("_artifacts", "_logs"):
            if (src.parent / f"{src.stem}{suffix}").exists():
                copytree(src.parent / f"{src.stem}{suffix}", work / f"{db.stem}{suffix}")
    else:
        db = demo(work)
    print(f"database {db}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}", flush=True)
    lat = latency_rounds(db, args, work)
    batch = batch_rounds(db, args, work)
    loader = loader_run(db, args, work)
    summarise(lat, batch, loader)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

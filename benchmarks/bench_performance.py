"""Performance-per-window benchmark: ``performance.over_time`` against a hand-written GROUP BY and sklearn per window.

    .venv/bin/python benchmarks/bench_performance.py [--rows 10000000]

A binary classifier's log of ``--rows`` predictions over 90 days from 5 versions (450
day x version groups), 80% labelled. Measured in this process; the SQL runs are interleaved
over 5 paired rounds; printed: medians, and the median and worst of the rounds' ratios
(both sides list the log's files and open an engine):

- baseline A: one hand-written ``GROUP BY day, version`` over the log joined to its labels,
  computing n, labelled, correct, tp, fp, fn (the counting metrics' inputs);
- ours: ``performance.over_time(window="day")`` with ``auc=False`` (counting metrics, log
  loss, Wilson intervals) and with the exact ROC AUC (default);
- baseline B: the labelled rows fetched into pandas and ``sklearn.metrics`` (accuracy,
  precision, recall, f1, roc_auc, log_loss) called per (day, version).

Generated data lives in ``benchmarks/data/`` (git-ignored) and is reused.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
sys.path.insert(0, str(HERE.parent))
from mlops_core import ControlRoom  # noqa: E402

MODEL = "perfbench"


def build(db: Path, rows: int) -> None:
    """The model and its log of ``rows`` predictions (about 80% labelled), written as the log's Parquet files."""
    import duckdb

    from mlops_core.data.schema import FeatureSpec
    from mlops_core.store import Store, connect, transaction
    from mlops_core.store import models as mstore
    from mlops_core.store import predictions as pstore

    with connect(db, create=True) as con, transaction(con):
        info = mstore.create_model(con, MODEL, "classification", "y",
                                   [FeatureSpec("x", "numeric", "float"), FeatureSpec("c", "categorical", "string")],
                                   positive_class="1", classes=["0", "1"])
    gen = duckdb.connect()
    gen.execute("SELECT setseed(0.42)").fetchall()
    log = gen.sql(
        f"""SELECT CAST(i AS VARCHAR) AS request_id, 1 + CAST(floor(random() * 5) AS INTEGER) AS version,
               CAST(NULL AS VARCHAR) AS variant,
               ?::TIMESTAMP + to_microseconds(CAST(i * ? AS BIGINT)) AS ts, random() AS x, 'a' AS c,
               CASE WHEN s >= 0.5 THEN '1' ELSE '0' END AS prediction, s AS score
        FROM (SELECT i, round(random(), 4) AS s FROM range({rows}) t(i))""",
        params=[datetime(2026, 1, 1), 90 * 86400e6 / rows]).to_arrow_table()
    gen.register("log", log)
    labels = gen.sql(
        """SELECT request_id, CASE WHEN random() < 0.2 + 0.6 * score THEN '1' ELSE '0' END AS label, ts AS label_ts
        FROM log WHERE random() < 0.8""").to_arrow_table()
    gen.close()
    pstore.append(Store(db), info, "predictions", log, batch_id="bench")
    pstore.append(Store(db), info, "labels", labels, batch_id="bench")


BASELINE_SQL = """
SELECT date_trunc('day', l.ts) AS d, l.version, count(*) AS n, count(lb.label) AS labelled,
       sum(CASE WHEN lb.label = l.prediction THEN 1 ELSE 0 END) AS correct,
       sum(CASE WHEN lb.label = '1' AND l.prediction = '1' THEN 1 ELSE 0 END) AS tp,
       sum(CASE WHEN lb.label = '0' AND l.prediction = '1' THEN 1 ELSE 0 END) AS fp,
       sum(CASE WHEN lb.label = '1' AND l.prediction = '0' THEN 1 ELSE 0 END) AS fn
FROM {log} l LEFT JOIN {labels} lb ON l.request_id = lb.request_id
GROUP BY 1, 2
"""


@contextmanager
def log_engine(db: Path):
    """(engine cursor, LogView of the model's whole log): what ``performance.over_time`` reads too."""
    from mlops_core.store import Store, logs

    store = Store(db)
    info = ControlRoom(db).model(MODEL).info
    with store.connect() as con:
        view = logs.view(con, store.logs, info)
    with store.engine() as con:
        yield con, view


def best(fn, k=3) -> float:
    times = []
    for _ in range(k):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def sklearn_per_window(db: Path) -> tuple[float, float, int]:
    """(seconds incl. fetching the rows, seconds of the sklearn calls alone, groups)."""
    import numpy as np
    from sklearn import metrics as skm

    t = time.perf_counter()
    with log_engine(db) as (con, view):
        df = con.execute(
            "SELECT date_trunc('day', l.ts) AS d, l.version, l.prediction, l.score, lb.label "
            f"FROM {view.predictions} l JOIN {view.labels} lb ON l.request_id = lb.request_id").df()
    t_fetch = time.perf_counter() - t
    t2 = time.perf_counter()
    groups = 0
    for _, g in df.groupby(["d", "version"], sort=False):
        y, p, s = g["label"].to_numpy(), g["prediction"].to_numpy(), g["score"].to_numpy()
        yb = (y == "1").astype(int)
        skm.accuracy_score(y, p)
        skm.precision_score(y, p, pos_label="1", zero_division=0)
        skm.recall_score(y, p, pos_label="1", zero_division=0)
        skm.f1_score(y, p, pos_label="1", zero_division=0)
        if len(np.unique(yb)) == 2:
            skm.roc_auc_score(yb, s)
        skm.log_loss(yb, s, labels=[0, 1])
        groups += 1
    t_sk = time.perf_counter() - t2
    return t_fetch + t_sk, t_sk, groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    a = ap.parse_args()
    import duckdb
    import sklearn.metrics  # noqa: F401  (imports are not part of the measured times)

    DATA.mkdir(exist_ok=True)
    db = DATA / f"perf_{a.rows}.duckdb"
    if not db.exists():
        t = time.perf_counter()
        build(db, a.rows)
        print(f"(built the {a.rows:,}-row log in {time.perf_counter() - t:.1f} s)")
    print(f"machine: {os.cpu_count()} cores; duckdb {duckdb.__version__}")
    with log_engine(db) as (con, view):
        groups = con.execute(BASELINE_SQL.format(log=view.predictions, labels=view.labels)).df()

    def baseline():  # opens the log as ours does: list the files, then one engine
        with log_engine(db) as (con, view):
            con.execute(BASELINE_SQL.format(log=view.predictions, labels=view.labels)).fetchall()

    # interleaved (paired) rounds: the machine is shared, so load shifts between runs
    runs = {"base": baseline, "counts": lambda: ControlRoom(db).model(MODEL).performance(window="day", auc=False),
            "full": lambda: ControlRoom(db).model(MODEL).performance(window="day")}
    times = {k: [] for k in runs}
    for _ in range(5):
        for k, fn in runs.items():
            times[k].append(best(fn, 1))
    t_base, t_counts, t_full = (statistics.median(times[k]) for k in ("base", "counts", "full"))
    r_counts = [c / b for c, b in zip(times["counts"], times["base"], strict=True)]
    r_full = [f / b for f, b in zip(times["full"], times["base"], strict=True)]
    ours = ControlRoom(db).model(MODEL).performance(window="day")
    t_sk, t_sk_only, n_groups = sklearn_per_window(db)
    assert len(ours) == len(groups) == n_groups
    print(f"\n== Performance per day x version, {a.rows:,} predictions, {len(groups)} groups")
    print("  (5 paired rounds; times are medians, ratios the median and worst of the rounds' own ratios)")
    print(f"  A. hand-written GROUP BY (join + confusion counts)       : {t_base:7.3f} s")
    print(f"  ours, over_time(auc=False): all counting metrics, log loss, CI: {t_counts:7.3f} s  "
          f"= {statistics.median(r_counts):.2f} x A (worst {max(r_counts):.2f} x)")
    print(f"  ours, over_time(): + exact ROC AUC per window             : {t_full:7.3f} s  "
          f"= {statistics.median(r_full):.2f} x A (worst {max(r_full):.2f} x)")
    print(f"  B. sklearn.metrics per window (fetch + calls)             : {t_sk:7.3f} s  "
          f"(calls alone {t_sk_only:.3f} s)")
    print(f"  ours vs B                                                  : {t_sk / t_full:7.1f} x faster with AUC, "
          f"{t_sk / t_counts:.1f} x without")


if __name__ == "__main__":
    main()

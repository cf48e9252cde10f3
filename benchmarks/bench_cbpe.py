"""Performance estimation without labels: our CBPE against NannyML 0.13.1's CBPE, on the same data in the same run.

    .venv/bin/python benchmarks/bench_cbpe.py [--rounds 5] [--log-rows 10000000] [--peer-rows 1000000,2000000]
                                              [--skip-log]

Data no one here wrote: NannyML's synthetic car-loan data (50,000 reference rows, 50,000
analysis rows with their targets), exported once from NannyML in its own virtualenv
(``benchmarks/.venv-peers``: ``python3 -m venv benchmarks/.venv-peers &&
benchmarks/.venv-peers/bin/pip install -r benchmarks/requirements-peers.txt``).

Each round (paired: both tools see the same scores in the same round; the rounds differ by the
model's seed):

1. a HistGradientBoostingClassifier (``random_state`` = round) is trained on the first half of
   the reference; it scores the second half (the calibration rows, with labels) and the analysis
   rows, cut into 10 chunks of 5,000 rows;
2. ours: the rows go into a model's prediction log (the calibration rows on the days before, one
   analysis chunk per day); ``Model.calibrate_estimation`` fits the calibration on the labelled
   calibration days, ``Model.estimate_performance`` estimates every day (timed with and without
   the realized values, which join the labels);
3. NannyML: ``CBPE(metrics=[...], chunk_size=5000)`` fitted on the calibration rows, ``estimate``
   on the analysis rows (in a subprocess of its virtualenv, timed there); then, for the log-size
   comparison, ``estimate`` on the analysis scores resampled to each ``--peer-rows`` size, spread
   over 100 days and chunked by day (``chunk_period="D"``), the rows already in memory;
4. mean absolute error per chunk against the realized value (from the analysis targets) of
   accuracy and ROC AUC, for ours, NannyML's and "assume the reference performance" (the metric
   on the calibration rows); how often the realized value lies in each tool's band (ours: 95%;
   NannyML: ±3 sampling errors).

The 10M-row log: the analysis scores resampled into ``--log-rows`` predictions over 100 days
(100,000 a day), 90% labelled; ours estimates every day (``estimate_performance``) in each
round (after one untimed run that brings the file into the page cache), and the time to read NannyML's input (timestamp, score, predicted class) from the log into
pandas is measured beside it. NannyML is timed at the ``--peer-rows`` sizes in each round (by
default up to the log's size; a smaller largest size is extrapolated linearly, its cost per row
printed for each size to show whether that holds).

Generated data lives in ``benchmarks/data/`` (git-ignored) and is reused.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
PEER_PY = HERE / ".venv-peers" / "bin" / "python"
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mlops_core import ControlRoom, Identity  # noqa: E402

FEATURES = ["car_value", "salary_range", "debt_to_income_ratio", "loan_length", "repaid_loan_on_prev_car",
            "size_of_downpayment", "driver_tenure"]
CATEGORICAL = ["salary_range", "size_of_downpayment"]
CHUNK = 5000
LOG_DAYS = 100
T0 = datetime(2026, 1, 1)
ANALYSIS_DAY0 = 10  # analysis chunk k is day ANALYSIS_DAY0 + k; calibration rows are days 0..4
MODEL = "carloan"
PEER_ENV = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}

EXPORT_CODE = r"""
import sys
import nannyml as nml
reference, analysis, targets = nml.load_synthetic_car_loan_dataset()
out = sys.argv[1]
reference.to_parquet(f"{out}/car_loan_reference.parquet")
analysis.merge(targets, on="id").to_parquet(f"{out}/car_loan_analysis.parquet")
"""

PEER_CODE = r"""
import json, sys, time, warnings
import numpy as np, pandas as pd
import nannyml as nml
warnings.filterwarnings("ignore")
calib_path, analysis_path, sizes = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",") if x]
calib, analysis = pd.read_parquet(calib_path), pd.read_parquet(analysis_path)
metrics = ["accuracy", "roc_auc", "precision", "recall", "f1"]
def make(**chunking):
    return nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="repaid", metrics=metrics,
                    problem_type="classification_binary", **chunking)
t = time.perf_counter(); est = make(chunk_size=5000).fit(calib); fit_s = time.perf_counter() - t
t = time.perf_counter(); res = est.estimate(analysis); est_s = time.perf_counter() - t
df = res.filter(period="analysis").to_df()
out = {"fit_s": fit_s, "estimate_s": est_s, "needs_calibration": bool(est.needs_calibration), "chunks": {}}
for m in metrics:
    out["chunks"][m] = {"value": df[(m, "value")].tolist(),
                        "low": df[(m, "lower_confidence_boundary")].tolist(),
                        "high": df[(m, "upper_confidence_boundary")].tolist()}
scaling = {}
base = analysis[["y_pred_proba", "y_pred"]]
days = int(sys.argv[4])
for n in sizes:  # the log's shape: n rows over `days` days, one chunk a day (NannyML's period chunker)
    big = base.iloc[(np.arange(n) * 7919) % len(base)].reset_index(drop=True)
    big["timestamp"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n) * (days * 86400e6 / n), unit="us")
    est = make(timestamp_column_name="timestamp", chunk_period="D").fit(calib.assign(timestamp=pd.Timestamp("2025-12-25")))
    t = time.perf_counter(); res = est.estimate(big); scaling[str(n)] = time.perf_counter() - t
    assert len(res.filter(period="analysis").to_df()) == days
    del big, res
out["scaling"] = scaling
print(json.dumps(out))
"""


# --- data ------------------------------------------------------------------------------------------


def export_car_loan() -> tuple[pd.DataFrame, pd.DataFrame]:
    DATA.mkdir(exist_ok=True)
    ref_path, ana_path = DATA / "car_loan_reference.parquet", DATA / "car_loan_analysis.parquet"
    if not (ref_path.exists() and ana_path.exists()):
        if not PEER_PY.exists():
            sys.exit("NannyML's virtualenv is missing: python3 -m venv benchmarks/.venv-peers && "
                     "benchmarks/.venv-peers/bin/pip install -r benchmarks/requirements-peers.txt")
        subprocess.run([str(PEER_PY), "-c", EXPORT_CODE, str(DATA)], check=True, env=PEER_ENV)
    return pd.read_parquet(ref_path), pd.read_parquet(ana_path)


def features(frame: pd.DataFrame) -> pd.DataFrame:
    X = frame[FEATURES].copy()
    for c in CATEGORICAL:
        X[c] = X[c].astype("category")
    X["repaid_loan_on_prev_car"] = X["repaid_loan_on_prev_car"].astype(float)
    return X


def score_round(reference: pd.DataFrame, analysis: pd.DataFrame, seed: int):
    """Train on the first half of the reference; return (calibration rows, analysis rows): y_pred_proba, y_pred,
    repaid (and chunk for the analysis)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    half = len(reference) // 2
    train, calib = reference.iloc[:half], reference.iloc[half:]
    clf = HistGradientBoostingClassifier(random_state=seed, categorical_features="from_dtype")
    clf.fit(features(train), train["repaid"].astype(int))

    def outputs(frame):
        proba = clf.predict_proba(features(frame))[:, 1]
        return pd.DataFrame({"y_pred_proba": proba, "y_pred": (proba >= 0.5).astype(int),
                             "repaid": frame["repaid"].astype(int).to_numpy()})

    ana = outputs(analysis)
    ana["chunk"] = np.arange(len(ana)) // CHUNK
    return outputs(calib), ana


def create_model(db: Path):
    """The benchmark's model: a binary classifier whose version 1 was trained outside (no artifact is loaded)."""
    from mlops_core.data.schema import FeatureSpec
    from mlops_core.entities import VersionInfo
    from mlops_core.store import connect, transaction
    from mlops_core.store import models as mstore

    with connect(db) as con, transaction(con):
        info = mstore.create_model(con, MODEL, "classification", "repaid", [FeatureSpec("x", "numeric", "float")],
                                   positive_class="1", classes=["0", "1"])
        mstore.insert_version(con, VersionInfo(model=MODEL, version=1, algorithm="HistGradientBoostingClassifier",
                                               hyperparameters={}, status="production", artifact_path="-",
                                               artifact_sha256="-", created_at=T0))
        mstore.move_alias(con, MODEL, 1, actor="bench", action="register", reason="benchmark", run_id=None, at=T0)
    return info


def build_log(db: Path, calib: pd.DataFrame, analysis: pd.DataFrame) -> None:
    """A model log: calibration rows (labelled) spread over days 0..4, analysis chunk k on day ANALYSIS_DAY0 + k,
    every analysis row labelled (the realized values come from the same log)."""
    from mlops_core.store import connect, forget_database, transaction

    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    forget_database(db)  # a new file: migrate it again
    info = create_model(db)
    n_cal = len(calib)
    cal_ts = pd.Timestamp(T0) + pd.to_timedelta(np.arange(n_cal) * (5 * 86400e6 / n_cal), unit="us")
    within = np.arange(len(analysis)) % CHUNK
    ana_ts = (pd.Timestamp(T0) + pd.to_timedelta((ANALYSIS_DAY0 + analysis["chunk"].to_numpy()) * 86400e6
                                                 + within * (86400e6 / CHUNK), unit="us"))
    rows = pd.concat([calib.assign(ts=cal_ts), analysis.drop(columns="chunk").assign(ts=ana_ts)], ignore_index=True)
    log = pd.DataFrame({"request_id": [f"r{i}" for i in range(len(rows))], "version": np.int32(1), "variant": None,
                        "ts": rows["ts"], "x": 0.0, "prediction": rows["y_pred"].astype(str),
                        "score": rows["y_pred_proba"], "batch_id": "bench"})
    labels = pd.DataFrame({"request_id": log["request_id"], "label": rows["repaid"].astype(str), "label_ts": log["ts"],
                           "batch_id": "labels"})
    from mlops_core.store import predictions as pstore

    with connect(db) as con, transaction(con):
        pstore.append_predictions(con, info, log)
        pstore.append_labels(con, info, labels)


def build_big_log(db: Path, calib: pd.DataFrame, analysis: pd.DataFrame, rows: int) -> None:
    """``rows`` predictions over LOG_DAYS days resampled from the analysis rows (90% labelled), after the labelled
    calibration rows on days before; made in SQL (seconds, not minutes)."""
    from mlops_core.store import connect

    if db.exists():
        return
    tmp = db.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    info = create_model(tmp)
    src = pd.DataFrame({"k": np.arange(len(analysis)), "score": analysis["y_pred_proba"],
                        "label": analysis["repaid"].astype(str)})
    cal = pd.DataFrame({"k": np.arange(len(calib)), "score": calib["y_pred_proba"], "label": calib["repaid"].astype(str)})
    start = T0 - timedelta(days=7)
    with connect(tmp) as con:
        con.register("_src", src)
        con.register("_cal", cal)
        con.execute("SELECT setseed(0.5)")
        con.execute(f"""INSERT INTO {info.log_table} (request_id, version, ts, x, prediction, score, batch_id)
            SELECT 'c' || CAST(k AS VARCHAR), 1, ?::TIMESTAMP + to_microseconds(CAST(k * ? AS BIGINT)), 0.0,
                   CASE WHEN score >= 0.5 THEN '1' ELSE '0' END, score, 'cal' FROM _cal""",
                    [start, 5 * 86400e6 / len(cal)])
        con.execute(f"""INSERT INTO {info.label_table} (request_id, label, label_ts, batch_id)
            SELECT 'c' || CAST(k AS VARCHAR), label, ?::TIMESTAMP, 'cal' FROM _cal""", [start])
        con.execute(f"""INSERT INTO {info.log_table} (request_id, version, ts, x, prediction, score, batch_id)
            SELECT CAST(i AS VARCHAR), 1, ?::TIMESTAMP + to_microseconds(CAST(i * ? AS BIGINT)), 0.0,
                   CASE WHEN s.score >= 0.5 THEN '1' ELSE '0' END, s.score, 'log'
            FROM range({rows}) t(i) JOIN _src s ON s.k = (i * 7919) % {len(src)}""",
                    [T0, LOG_DAYS * 86400e6 / rows])
        con.execute(f"""INSERT INTO {info.label_table} (request_id, label, label_ts, batch_id)
            SELECT CAST(i AS VARCHAR), s.label, ?::TIMESTAMP, 'log'
            FROM range({rows}) t(i) JOIN _src s ON s.k = (i * 7919) % {len(src)} WHERE random() < 0.9""", [T0])
        con.unregister("_src")
        con.unregister("_cal")
        con.execute("CHECKPOINT")
    ControlRoom(tmp).model(MODEL).calibrate_estimation(start, start + timedelta(days=5))
    from mlops_core.store import forget_database

    forget_database(tmp)
    tmp.rename(db)


# --- the runs ----------------------------------------------------------------------------------------


def run_peer(calib: pd.DataFrame, analysis: pd.DataFrame, sizes: list[int]) -> dict:
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        cpath, apath = Path(tmp) / "calib.parquet", Path(tmp) / "analysis.parquet"
        calib.to_parquet(cpath)
        analysis[["y_pred_proba", "y_pred"]].to_parquet(apath)
        proc = subprocess.run([str(PEER_PY), "-c", PEER_CODE, str(cpath), str(apath), ",".join(map(str, sizes)),
                               str(LOG_DAYS)],
                              capture_output=True, text=True, env=PEER_ENV)
    if proc.returncode != 0:
        raise SystemExit(f"NannyML failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def realized_per_chunk(analysis: pd.DataFrame) -> pd.DataFrame:
    from sklearn.metrics import accuracy_score, roc_auc_score

    return pd.DataFrame([{"chunk": k, "accuracy": accuracy_score(part["repaid"], part["y_pred"]),
                          "roc_auc": roc_auc_score(part["repaid"], part["y_pred_proba"])}
                         for k, part in analysis.groupby("chunk")]).set_index("chunk")


def run_ours(db: Path) -> dict:
    room = ControlRoom(db, identity=Identity("bench", "operator"))
    model = room.model(MODEL)
    t = time.perf_counter()
    model.calibrate_estimation(T0, T0 + timedelta(days=5), version=1)
    fit_s = time.perf_counter() - t
    start = T0 + timedelta(days=ANALYSIS_DAY0)
    t = time.perf_counter()
    est = model.estimate_performance(start=start, store=False, realized=False)
    est_s = time.perf_counter() - t
    t = time.perf_counter()
    model.estimate_performance(start=start, store=False, realized=True)
    est_realized_s = time.perf_counter() - t
    record = model.estimation_calibration(1)
    est = est.assign(chunk=(est["window_start"] - pd.Timestamp(start)).dt.days)
    return {"fit_s": fit_s, "estimate_s": est_s, "estimate_realized_s": est_realized_s, "frame": est,
            "applied": record.calibration.applied, "reference": record.calibration.reference}


def time_big_log(db: Path) -> dict:
    """Ours on the big log (estimates only, and with the realized values), and what reading NannyML's input from
    the same log costs (the rows a DataFrame-based tool must hold: timestamp, score, predicted class)."""
    from mlops_core.store import connect

    model = ControlRoom(db).model(MODEL)
    t = time.perf_counter()
    model.estimate_performance(start=T0, store=False, realized=False)
    only = time.perf_counter() - t
    t = time.perf_counter()
    model.estimate_performance(start=T0, store=False, realized=True)
    both = time.perf_counter() - t
    t = time.perf_counter()
    with connect(db) as con:
        frame = con.execute(f"SELECT ts AS timestamp, score AS y_pred_proba, "
                            f"CAST(prediction = '1' AS INTEGER) AS y_pred FROM log_{MODEL} WHERE ts >= ?", [T0]).df()
    read = time.perf_counter() - t
    del frame
    return {"only": only, "both": both, "read": read}


def estimation_metrics():
    from mlops_core.monitoring.estimation import METRICS

    return METRICS


def fmt_stats(values: list[float], spec: str = ".4f", worst=max) -> str:
    return f"median {format(statistics.median(values), spec)}, worst {format(worst(values), spec)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--log-rows", type=int, default=10_000_000)
    ap.add_argument("--peer-rows", default="1000000,10000000",
                    help="sizes NannyML is timed at in memory (comma-separated; the largest is scaled to --log-rows)")
    ap.add_argument("--skip-log", action="store_true")
    args = ap.parse_args()
    peer_sizes = [int(x) for x in args.peer_rows.split(",") if x]

    reference, analysis_raw = export_car_loan()
    print(f"NannyML car-loan data: {len(reference):,} reference rows (half to train, half to calibrate), "
          f"{len(analysis_raw):,} analysis rows in chunks of {CHUNK:,}; {args.rounds} paired rounds.")
    db = DATA / "cbpe_bench.duckdb"
    big_db = DATA / f"cbpe_log_{args.log_rows}.duckdb"
    per_round = []
    for r in range(args.rounds):
        calib, analysis = score_round(reference, analysis_raw, seed=r)
        truth = realized_per_chunk(analysis)
        peer = run_peer(calib, analysis, peer_sizes if not args.skip_log else [])
        build_log(db, calib, analysis)
        ours = run_ours(db)
        if not args.skip_log:
            if r == 0:
                build_big_log(big_db, calib, analysis, args.log_rows)
                time_big_log(big_db)  # untimed: the first read of the file after it was written or booted
            big = time_big_log(big_db)
        else:
            big = {"only": None, "both": None, "read": None}
        big_only = big["only"]
        ref_perf = ours["reference"]
        row = {"round": r, "ours_fit_s": ours["fit_s"], "ours_est_s": ours["estimate_s"],
               "ours_est_realized_s": ours["estimate_realized_s"], "peer_fit_s": peer["fit_s"],
               "peer_est_s": peer["estimate_s"], "scaling": peer["scaling"], "big_only": big["only"],
               "big_both": big["both"], "big_read": big["read"], "ours_applied": ours["applied"],
               "peer_applied": peer["needs_calibration"]}
        frame = ours["frame"]
        for m in ("accuracy", "roc_auc"):
            mine = frame[frame["metric"] == m].set_index("chunk").sort_index()
            real = truth[m]
            theirs = np.asarray(peer["chunks"][m]["value"])
            row[f"{m}_ours"] = float(np.mean(np.abs(mine["estimate"].to_numpy() - real.to_numpy())))
            row[f"{m}_peer"] = float(np.mean(np.abs(theirs - real.to_numpy())))
            row[f"{m}_ref"] = float(np.mean(np.abs(getattr(ref_perf, m) - real.to_numpy())))
            row[f"{m}_gap"] = float(np.mean(np.abs(mine["estimate"].to_numpy() - theirs)))
            row[f"{m}_cover_ours"] = float(np.mean((mine["band_low"] <= real) & (real <= mine["band_high"])))
            row[f"{m}_cover_peer"] = float(np.mean((np.asarray(peer["chunks"][m]["low"]) <= real)
                                                   & (real <= np.asarray(peer["chunks"][m]["high"]))))
            row[f"{m}_width_ours"] = float(np.mean(mine["band_high"] - mine["band_low"]))
            row[f"{m}_width_peer"] = float(np.mean(np.asarray(peer["chunks"][m]["high"])
                                                   - np.asarray(peer["chunks"][m]["low"])))
        per_round.append(row)
        print(f"round {r}: accuracy MAE ours {row['accuracy_ours']:.4f} / NannyML {row['accuracy_peer']:.4f} / "
              f"reference {row['accuracy_ref']:.4f}; ROC AUC MAE ours {row['roc_auc_ours']:.4f} / NannyML "
              f"{row['roc_auc_peer']:.4f} / reference {row['roc_auc_ref']:.4f}; 50k estimate ours "
              f"{row['ours_est_s']:.3f} s, NannyML {row['peer_est_s']:.3f} s"
              + (f"; {args.log_rows:,}-row log ours {big_only:.2f} s" if big_only is not None else ""), flush=True)

    R = per_round
    print("\n== Estimation error per chunk of 5,000 (mean absolute error against the realized value; "
          f"{len(R)} rounds: median, worst) ==")
    for m in ("accuracy", "roc_auc"):
        print(f"{m:<9} ours {fmt_stats([x[f'{m}_ours'] for x in R])} | NannyML {fmt_stats([x[f'{m}_peer'] for x in R])}"
              f" | assume reference performance {fmt_stats([x[f'{m}_ref'] for x in R])}")
        diff = [x[f"{m}_ours"] - x[f"{m}_peer"] for x in R]
        print(f"{'':<9} ours - NannyML: {fmt_stats(diff, '+.4f')} (target: <= +0.003); mean |ours - NannyML| per chunk "
              f"{fmt_stats([x[f'{m}_gap'] for x in R])}")
        print(f"{'':<9} realized value in band: ours (95%) {fmt_stats([x[f'{m}_cover_ours'] for x in R], '.2f', min)}"
              f" | NannyML (±3 sampling errors) {fmt_stats([x[f'{m}_cover_peer'] for x in R], '.2f', min)}")
        print(f"{'':<9} mean band width: ours {fmt_stats([x[f'{m}_width_ours'] for x in R])} | NannyML "
              f"{fmt_stats([x[f'{m}_width_peer'] for x in R])}")
    print(f"calibration applied: ours {[x['ours_applied'] for x in R]}, NannyML {[x['peer_applied'] for x in R]}")

    print("\n== Time (seconds; median, worst over rounds) ==")
    print(f"fit on 25,000 calibration rows: ours {fmt_stats([x['ours_fit_s'] for x in R], '.3f')} "
          f"| NannyML {fmt_stats([x['peer_fit_s'] for x in R], '.3f')}")
    print(f"estimate 50,000 rows (10 chunks): ours {fmt_stats([x['ours_est_s'] for x in R], '.3f')} "
          f"(with realized values {fmt_stats([x['ours_est_realized_s'] for x in R], '.3f')}) "
          f"| NannyML {fmt_stats([x['peer_est_s'] for x in R], '.3f')}")
    ratios = [x["peer_est_s"] / x["ours_est_s"] for x in R]
    print(f"  NannyML / ours, paired: {fmt_stats(ratios, '.1f', min)}x")
    if not args.skip_log:
        for n in peer_sizes:
            secs = [x["scaling"][str(n)] for x in R]
            print(f"NannyML estimate on {n:,} rows in memory ({LOG_DAYS} daily chunks): {fmt_stats(secs, '.2f')} "
                  f"({statistics.median(secs) / n * 1e6:.2f} µs per row)")
        largest = max(peer_sizes)
        how = "measured" if largest == args.log_rows else f"extrapolated linearly from {largest:,} rows"
        peer_big = [x["scaling"][str(largest)] * args.log_rows / largest for x in R]
        print(f"{args.log_rows:,}-row log, every day estimated ({LOG_DAYS} days of {args.log_rows // LOG_DAYS:,} rows):")
        print(f"  ours, from the log: {fmt_stats([x['big_only'] for x in R], '.2f')} s (with the realized values, "
              f"i.e. the label join and exact ROC AUC: {fmt_stats([x['big_both'] for x in R], '.2f')} s)")
        print(f"  NannyML, rows already in memory ({how}): {fmt_stats(peer_big, '.2f')} s; reading its input from the "
              f"log into pandas first: {fmt_stats([x['big_read'] for x in R], '.2f')} s more")
        compute = [p / x["big_only"] for p, x in zip(peer_big, R, strict=False)]
        total = [(p + x["big_read"]) / x["big_only"] for p, x in zip(peer_big, R, strict=False)]
        print(f"  NannyML / ours, paired: in-memory compute only {fmt_stats(compute, '.1f', min)}x; "
              f"from the log {fmt_stats(total, '.1f', min)}x (target: >= 10x)")


if __name__ == "__main__":
    main()

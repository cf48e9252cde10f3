"""Many writers at once against metadata in PostgreSQL: nothing lost, no lock error, every audit row present.

For ``--seconds`` seconds, each in its own process, on one model:

- 4 ingest loops append batches of predictions (unique request ids) and labels for half of them;
- 1 retrain loop queues and runs retrains (registers candidate versions);
- 2 users (``ana`` and ``ben``, operators) promote a candidate or roll back, again and again;
- 1 dashboard reader reads what the pages read (models, status, performance, audit, runs) and times it.

Then it checks: every row an ingest acknowledged is in the log (and no other row is), the listing's
row counts equal the rows read from the Parquet files, every acknowledged batch, retrain, promote and
rollback has its audit row, exactly one production alias row is open, and no process met a
DatabaseBusyError or any other error besides the refusals the domain gives on purpose (a promote of
the version already in production, a rollback with nothing to roll back to).

    python benchmarks/many_writers.py --seconds 300            # starts a throwaway cluster (mlops_core/demo/local_postgres.py)
    python benchmarks/many_writers.py --url postgresql://...   # an existing, empty database

Prints the figures and exits 1 when a check fails. ``tests/test_postgres.py`` runs it for ~30 s.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "credit"
INGESTERS = 4
BATCH = 200
EXPECTED_REFUSALS = ("ConflictError", "NotFoundError")


@dataclass
class WorkerResult:
    """What one process did."""

    role: str
    ops: int = 0
    rows: int = 0
    labels: int = 0
    batches: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    promotions: int = 0
    rollbacks: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    busy: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


@dataclass
class Figures:
    """The outcome of a run: what was done, how long reads took, and what the checks found."""

    seconds: float
    rows_acknowledged: int
    rows_in_log: int
    rows_listed: int
    labels_acknowledged: int
    labels_in_log: int
    batches: int
    ingest_audit_rows: int
    retrains: int
    retrain_audit_rows: int
    promotions: int
    rollbacks: int
    promote_audit_rows: int
    rollback_audit_rows: int
    open_production_rows: int
    lock_errors: int
    other_errors: list[str]
    refusals: dict[str, int]
    read_p50_ms: float
    read_p95_ms: float
    read_max_ms: float
    reads: int

    @property
    def failures(self) -> list[str]:
        out = []
        if self.rows_in_log != self.rows_acknowledged:
            out.append(f"{self.rows_acknowledged} rows acknowledged but {self.rows_in_log} in the log")
        if self.rows_listed != self.rows_in_log:
            out.append(f"the listing counts {self.rows_listed} rows, the files hold {self.rows_in_log}")
        if self.labels_in_log != self.labels_acknowledged:
            out.append(f"{self.labels_acknowledged} labels acknowledged but {self.labels_in_log} in the log")
        if self.ingest_audit_rows != self.batches:
            out.append(f"{self.batches} batches but {self.ingest_audit_rows} ingest audit rows")
        if self.retrain_audit_rows != self.retrains:
            out.append(f"{self.retrains} retrains but {self.retrain_audit_rows} retrain audit rows")
        if self.promote_audit_rows != self.promotions:
            out.append(f"{self.promotions} promotions but {self.promote_audit_rows} promote audit rows")
        if self.rollback_audit_rows != self.rollbacks:
            out.append(f"{self.rollbacks} rollbacks but {self.rollback_audit_rows} rollback audit rows")
        if self.open_production_rows != 1:
            out.append(f"{self.open_production_rows} open production rows (expected 1)")
        if self.lock_errors:
            out.append(f"{self.lock_errors} lock errors (DatabaseBusyError)")
        if self.other_errors:
            out.append(f"{len(self.other_errors)} other errors: {self.other_errors[:3]}")
        return out


def _env(url: str, folder: Path) -> None:
    os.environ["MLOPS_DB"] = url
    os.environ["MLOPS_ARTIFACTS_DIR"] = str(folder / "artifacts")
    os.environ["MLOPS_LOG_DIR"] = str(folder / "logs")


def _count(result: WorkerResult, exc: BaseException) -> None:
    from mlops_core.errors import DatabaseBusyError

    name = type(exc).__name__
    if isinstance(exc, DatabaseBusyError):
        result.busy += 1
        result.errors.append(f"{name}: {exc}")
    elif name in EXPECTED_REFUSALS:
        result.refusals[name] = result.refusals.get(name, 0) + 1
    else:
        result.errors.append(f"{name}: {exc}\n{traceback.format_exc(limit=6)}")


def _frame(worker: int, k: int, rng, *, prefix: str = "w", rows: int = BATCH):
    import numpy as np
    import pandas as pd

    from mlops_core.clock import utcnow

    df = pd.DataFrame({
        "request_id": [f"{prefix}{worker}-{k}-{i}" for i in range(rows)],
        "timestamp": pd.Timestamp(utcnow()) - pd.to_timedelta(rng.integers(0, 3600, rows), unit="s"),
        "age": rng.integers(18, 80, rows), "income": rng.normal(50.0, 10.0, rows).round(2),
        "region": rng.choice(["north", "south", "east"], rows),
    })
    df["prediction"] = (df["income"] > 50).astype(int)
    df["score"] = np.clip((df["income"] - 30) / 40, 0, 1).round(4)
    return df


def _ingester(worker: int, url: str, folder: str, until: float, out) -> None:
    import numpy as np

    from mlops_core import ControlRoom, Identity

    _env(url, Path(folder))
    result = WorkerResult(f"ingest-{worker}")
    rng = np.random.default_rng(worker)
    room = ControlRoom(url, identity=Identity(f"loader{worker}", "operator"))
    k = 0
    while time.time() < until:
        k += 1
        df = _frame(worker, k, rng)
        try:
            r = room.model(MODEL).ingest(df)
            result.rows += r.rows_written
            result.batches.append(r.batch_id)
            labels = df.iloc[: BATCH // 2][["request_id"]].assign(label=(df["income"].iloc[: BATCH // 2] > 52)
                                                                  .astype(int))
            r = room.model(MODEL).ingest(labels, "labels")
            result.labels += r.rows_written
            result.batches.append(r.batch_id)
            result.ops += 2
        except Exception as exc:
            _count(result, exc)
    out.put(asdict(result))


def _retrainer(url: str, folder: str, until: float, out) -> None:
    from mlops_core import ControlRoom, Identity

    _env(url, Path(folder))
    result = WorkerResult("retrain")
    room = ControlRoom(url, identity=Identity("trainer", "operator"))
    while time.time() < until:
        try:
            run_id = room.model(MODEL).retrain(params={"hyperparameters": {"max_iter": 20}}, spawn=False)
            outcome = room.execute_retrain(run_id)
            run = room.run(run_id)
            if run.status != "succeeded":
                result.errors.append(f"retrain {run_id} {run.status}: {run.error} ({outcome})")
            result.runs.append(run_id)
            result.ops += 1
        except Exception as exc:
            _count(result, exc)
    out.put(asdict(result))


def _operator(name: str, url: str, folder: str, until: float, out) -> None:
    import random

    from mlops_core import ControlRoom, Identity

    _env(url, Path(folder))
    result = WorkerResult(f"user-{name}")
    room = ControlRoom(url, identity=Identity(name, "operator"))
    rnd = random.Random(name)
    while time.time() < until:
        try:
            model = room.model(MODEL)
            if rnd.random() < 0.5:
                candidates = [v.version for v in model.versions() if v.status in ("candidate", "archived")]
                if candidates:
                    model.promote(rnd.choice(candidates), reason=f"{name} tries it", force=True)
                    result.promotions += 1
            else:
                model.rollback(reason=f"{name} goes back")
                result.rollbacks += 1
            result.ops += 1
        except Exception as exc:
            _count(result, exc)
        time.sleep(rnd.uniform(0.05, 0.3))
    out.put(asdict(result))


def _reader(url: str, folder: str, until: float, out) -> None:
    from mlops_core import ControlRoom, Identity

    _env(url, Path(folder))
    result = WorkerResult("dashboard")
    room = ControlRoom(url, identity=Identity("dashboard", "viewer"))
    while time.time() < until:
        t0 = time.perf_counter()
        try:
            room.models()
            model = room.model(MODEL)
            model.status()
            model.performance(window="day")
            room.audit(MODEL)
            room.runs(MODEL)
            result.ops += 1
            result.latencies.append(time.perf_counter() - t0)
        except Exception as exc:
            _count(result, exc)
        time.sleep(0.1)
    out.put(asdict(result))


def setup(url: str, folder: Path) -> None:
    """Register the model (v1 in production) and log a first day of labelled traffic."""
    from mlops_core import ControlRoom, Identity

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import make_training_frame

    _env(url, folder)
    room = ControlRoom(url, identity=Identity("setup", "admin"))
    room.register(MODEL, "classification", "default", make_training_frame(800), hyperparameters={"max_iter": 20})
    # Enough labelled rows for the first retrain, whatever the ingest loops have logged by then (request ids
    # "s...": the checks count the loops' "w..." rows only).
    import numpy as np

    first = _frame(0, 0, np.random.default_rng(0), prefix="s", rows=400)
    model = room.model(MODEL)
    model.ingest(first)
    model.ingest(first[["request_id"]].assign(label=(first["income"] > 52).astype(int)), "labels")


def run(url: str, folder: Path, seconds: float) -> Figures:
    """Run the writers and the reader for ``seconds`` against the (empty) database at ``url``; return the figures."""
    setup(url, folder)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    until = time.time() + seconds
    procs = [ctx.Process(target=_ingester, args=(i, url, str(folder), until, out)) for i in range(INGESTERS)]
    procs.append(ctx.Process(target=_retrainer, args=(url, str(folder), until, out)))
    procs += [ctx.Process(target=_operator, args=(n, url, str(folder), until, out)) for n in ("ana", "ben")]
    procs.append(ctx.Process(target=_reader, args=(url, str(folder), until, out)))
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [WorkerResult(**out.get(timeout=seconds + 600)) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    elapsed = time.perf_counter() - t0
    return check(url, folder, results, elapsed)


def check(url: str, folder: Path, results: list[WorkerResult], elapsed: float) -> Figures:
    import numpy as np

    from mlops_core.store import Store, logs
    from mlops_core.store import models as mstore

    _env(url, folder)
    store = Store(url)
    with store.connect() as con:
        info = mstore.get_model(con, MODEL)
        view = logs.view(con, store.logs, info)
        listed = logs.facts(con, MODEL)
        audit = con.execute("SELECT action, count(*) FROM audit_events WHERE model = ? GROUP BY action",
                            [MODEL]).fetchall()
        batch_audits = {json.loads(r[0])["batch_id"] for r in con.execute(
            "SELECT details FROM audit_events WHERE model = ? AND action LIKE 'ingest%'", [MODEL]).fetchall()}
        open_prod = con.execute("SELECT count(*) FROM deployments WHERE model = ? AND alias = 'production' "
                                "AND ended_at IS NULL", [MODEL]).fetchone()[0]
        requested = {r[0] for r in con.execute(
            "SELECT run_id FROM audit_events WHERE model = ? AND action = 'retrain_requested'", [MODEL]).fetchall()}
        registered = {r[0] for r in con.execute(
            "SELECT run_id FROM audit_events WHERE model = ? AND action = 'register_version'", [MODEL]).fetchall()}
        retrain_runs = requested & registered
    with store.engine() as eng:
        in_log = eng.execute(f"SELECT count(*), count(DISTINCT request_id) FROM {view.predictions} "
                             "WHERE request_id LIKE 'w%'").fetchone()
        labels_in_log = eng.execute(f"SELECT count(*) FROM {view.labels} WHERE request_id LIKE 'w%'").fetchone()[0]
        setup_rows = eng.execute(f"SELECT count(*) FROM {view.predictions} WHERE request_id NOT LIKE 'w%'"
                                 ).fetchone()[0]
    by_action = dict(audit)
    batches = [b for r in results for b in r.batches]
    runs = [x for r in results for x in r.runs]
    lat = np.array([x for r in results for x in r.latencies]) * 1000 if any(r.latencies for r in results) \
        else np.array([0.0])
    refusals: dict[str, int] = {}
    for r in results:
        for k, v in r.refusals.items():
            refusals[k] = refusals.get(k, 0) + v
    rows_in_log = int(in_log[0]) if in_log[0] == in_log[1] else -int(in_log[0])  # a duplicate would be lost rows
    return Figures(
        seconds=round(elapsed, 1),
        rows_acknowledged=sum(r.rows for r in results), rows_in_log=rows_in_log,
        rows_listed=listed.predictions - int(setup_rows),
        labels_acknowledged=sum(r.labels for r in results), labels_in_log=int(labels_in_log),
        batches=len(batches), ingest_audit_rows=len(set(batches) & batch_audits),
        retrains=len(runs), retrain_audit_rows=len(set(runs) & retrain_runs),
        promotions=sum(r.promotions for r in results), rollbacks=sum(r.rollbacks for r in results),
        promote_audit_rows=int(by_action.get("promote", 0)), rollback_audit_rows=int(by_action.get("rollback", 0)),
        open_production_rows=int(open_prod), lock_errors=sum(r.busy for r in results),
        other_errors=[e for r in results for e in r.errors if not e.startswith("DatabaseBusyError")],
        refusals=refusals, read_p50_ms=round(float(np.percentile(lat, 50)), 1),
        read_p95_ms=round(float(np.percentile(lat, 95)), 1), read_max_ms=round(float(lat.max()), 1),
        reads=int(sum(r.ops for r in results if r.role == "dashboard")))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--url", help="an existing empty PostgreSQL database (default: a throwaway local cluster)")
    args = ap.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="many-writers-"))
    cluster = None
    try:
        url = args.url
        if url is None:
            from mlops_core.demo.local_postgres import LocalCluster

            cluster = LocalCluster().start()
            url = cluster.create_database("many_writers")
        figures = run(url, folder, args.seconds)
    finally:
        if cluster is not None:
            cluster.stop()
    print(json.dumps({**asdict(figures), "failures": figures.failures}, indent=2, default=str))
    return 1 if figures.failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

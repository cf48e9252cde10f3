"""A registered model with two versions, and the scoring service as a real process on a free loopback port."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
from _dashboard_support import ROOT, free_port
from conftest import make_training_frame

from mlops_core import ControlRoom, Identity

MODEL = "credit"
ADMIN = Identity("tester", "admin")
_template: Path | None = None


def _build_template() -> Path:
    """``credit`` with v1 (production, the default pipeline) and v2 (a candidate with other hyperparameters)."""
    from mlops_core.lifecycle import training

    folder = Path(tempfile.mkdtemp(prefix="mlops-serving-"))
    db = folder / "mlops.duckdb"
    room = ControlRoom(db, identity=ADMIN)
    frame = make_training_frame(800, seed=0)
    room.register(MODEL, "classification", "default", frame)
    info = room.model(MODEL).info
    X, y = frame.drop(columns=["default"]), frame["default"].astype(str)
    from mlops_core.data.schema import coerce_features

    pipe = training.default_pipeline("classification", info.features, seed=1, max_iter=15, learning_rate=0.3)
    pipe.fit(coerce_features(X, info.features), y)
    room.model(MODEL).add_version(pipe, frame)
    return db


def two_versions(dst: Path) -> Path:
    """A private copy of the two-version database in ``dst``; return its path."""
    global _template
    if _template is None:
        _template = _build_template()
    dst.mkdir(parents=True, exist_ok=True)
    for p in _template.parent.iterdir():
        (shutil.copytree if p.is_dir() else shutil.copy)(p, dst / p.name)
    return dst / _template.name


def records(n: int, seed: int = 0, **extra) -> list[dict]:
    """``n`` feature records of ``credit`` as JSON-ready dicts."""
    df = make_training_frame(n, seed).drop(columns=["default"])
    recs = df.astype(object).to_dict(orient="records")
    for r in recs:
        r["age"] = int(r["age"])
        r.update(extra)
    return recs


def cli(db: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m mlops_core ARGS --db db`` from the project root; raise when it fails and ``check``."""
    out = subprocess.run([sys.executable, "-m", "mlops_core", *args, "--db", str(db)], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    if check and out.returncode != 0:
        raise AssertionError(f"mlops {' '.join(args)} exited {out.returncode}: {out.stderr}")
    return out


class Service:
    """``mlops serve`` as a subprocess on a free 127.0.0.1 port; a context manager that stops it cleanly."""

    def __init__(self, db: Path, *extra: str, log: Path | None = None):
        self.db, self.extra = db, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log or db.parent / f"serve-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Service:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_core", "serve", "--db", str(self.db), "--model", MODEL, "--port",
             str(self.port), *self.extra], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlops serve exited with {self.proc.returncode}: {self.log()}")
            try:
                if self.health()["status"] == "ok":
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"mlops serve did not answer within 60 s: {self.log()}")

    def health(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as r:
            return json.loads(r.read())

    def wait_for(self, predicate, timeout: float = 10.0) -> dict:
        """Poll /healthz until ``predicate(health)`` holds; return that health."""
        deadline = time.monotonic() + timeout
        while True:
            h = self.health()
            if predicate(h):
                return h
            if time.monotonic() > deadline:
                raise AssertionError(f"/healthz never satisfied the condition: {h}")
            time.sleep(0.1)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig`` to the service (only that process) and wait for it; return its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if not self._log.closed:
            self._log.close()


def logged(db: Path, kind: str = "predictions") -> pd.DataFrame:
    """The model's logged rows of ``kind`` (request_id, version, variant)."""
    from mlops_core.store import Store, logs
    from mlops_core.store import models as mstore

    store = Store(db)
    with store.connect() as con:
        view = logs.view(con, store.logs, mstore.get_model(con, MODEL), kinds=(kind,))
    with store.engine() as con:
        return con.execute(f"SELECT request_id, version, variant FROM {view.predictions}").df()

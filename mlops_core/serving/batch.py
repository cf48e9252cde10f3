"""Batch scoring: a CSV or Parquet file of feature rows scored by what serves the model now, logged, written out.

``score_file`` reads the file the way ``ingest`` reads a batch and checks its feature columns with the
same rules (``data.batches.check_features``): a structural problem (a missing feature column, text in a
numeric column, an unreadable file) refuses the whole file, nothing is scored, logged or written
(``BatchRejectedError``, CLI exit 2). The features then come out of the same SQL conversion ingest
applies, so a file scores exactly as its rows would be logged.

Rows are assigned to arms like the service's requests (``scorer.assign``: the deployment config in
force, sticky by the config's key column, else the request id), scored, and appended to the log through
``data.ingest.ingest`` (validated, all or nothing, one run and audit row) with their version and arm
(and, in shadow mode, the challenger's rows as ``shadow``). Only when the log has them is the scored file
written (atomically: a temporary file renamed), so a refused log write leaves no output behind.

Request ids: the file's ``request_id`` column when it has one (each must be new to the log), else fresh
random ids, returned in the output. Every row is stamped with the scoring time.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlops_core.data import batches
from mlops_core.data import ingest as ingestmod
from mlops_core.data.files import file_format
from mlops_core.data.schema import coerce_features
from mlops_core.entities import ModelInfo
from mlops_core.errors import BatchRejectedError, InvalidInputError
from mlops_core.serving import requests as reqmod
from mlops_core.serving import scorer
from mlops_core.serving.router import Router
from mlops_core.store import Store, utcnow
from mlops_core.store import validation as vstore


@dataclass
class ScoreResult:
    """What ``score_file`` did: rows scored per arm and version, where the output went, the log batches."""

    model: str
    source: str
    out: str
    rows: int
    arms: dict = field(default_factory=dict)       # arm -> rows
    versions: dict = field(default_factory=dict)   # version -> rows
    shadow_rows: int = 0
    batch_id: str | None = None
    shadow_batch_id: str | None = None
    anomalies: list[str] = field(default_factory=list)
    mode: str = "champion"
    duration_s: float = 0.0
    seconds: dict = field(default_factory=dict)    # time per step: read, check, predict, log, write


def default_out(source: str | os.PathLike) -> Path:
    """``<name>.scored<suffix>`` beside the input file."""
    p = Path(source)
    return p.with_name(f"{p.stem}.scored{p.suffix}")


def _features(con, info: ModelInfo, batch: batches.Batch, name: str):
    """Check the staged file's feature columns; return (the features as a coerced frame, content anomalies)."""
    check = batches.check_features(con, info, batch)
    if check.problems:
        raise BatchRejectedError(batches.rejection_message(name, check.problems), source=name,
                                 problems=[p.kind for p in check.problems])
    frame = vstore.normalised_frame(con, check.columns, check.params)
    return coerce_features(frame, info.features), check.anomalies


def score_file(store: Store, info: ModelInfo, source: str | os.PathLike, *, actor: str,
               out: str | os.PathLike | None = None, at: datetime | None = None) -> ScoreResult:
    """Score the rows of ``source`` with what serves ``info`` now, log them, write ``out`` (see the module
    docstring); return what happened. Raises BatchRejectedError (structural problem, request ids already
    logged: nothing written), InvalidInputError (output type), NotFoundError (file, no production version)."""
    t0 = time.perf_counter()
    seconds = {}
    out_path = Path(out) if out is not None else default_out(source)
    out_format = file_format(out_path)
    if out_path.resolve() == Path(source).resolve():
        raise InvalidInputError(f"--out {out_path} is the input file; write the scored rows elsewhere.")
    name = os.fspath(source)
    batch = batches.read_batch(source, what="scoring file")
    router = Router(store, info)
    router.refresh()
    live = router.live
    seconds["read"] = time.perf_counter() - t0
    with store.engine() as con:
        batch.stage(con)
        try:
            frame, anomalies = _features(con, info, batch, name)
            original = (batch.table.drop_columns([vstore.ROW]) if batch.table is not None
                        else pq.read_table(batch.parquet))
        finally:
            vstore.unstage(con)
    seconds["check"] = time.perf_counter() - t0 - seconds["read"]
    n = len(frame)
    if "request_id" in original.column_names:
        ids = [None if v is None else str(v) for v in original["request_id"].to_pylist()]
        if any(not v for v in ids):
            raise BatchRejectedError(f"Scoring file {name} refused, nothing was written: column 'request_id' has "
                                     "empty values; fill them or drop the column to get fresh ids.", source=name)
    else:
        ids = [reqmod.new_request_id() for _ in range(n)]
    key_column = live.config.sticky_key
    keys = ([str(v) if v is not None else rid for v, rid in zip(original[key_column].to_pylist(), ids, strict=True)]
            if key_column and key_column in original.column_names else ids)
    now = at or utcnow()
    t = time.perf_counter()
    scored = scorer.score_frame(live, frame, ids, keys, at=now)
    seconds["predict"] = time.perf_counter() - t
    t = time.perf_counter()  # the log and the scored file are written at once from here
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    output = original
    if "request_id" not in output.column_names:
        output = output.append_column("request_id", pa.array(ids, type=pa.string()))
    for col, values in (("version", pa.array(scored.version, type=pa.int32())),
                        ("arm", pa.array(scored.arm, type=pa.string())),
                        ("prediction", scored.rows["prediction"]), ("score", scored.rows["score"])):
        if col in output.column_names:
            output = output.drop_columns([col])
        output = output.append_column(col, values)
    out_path.parent.mkdir(parents=True, exist_ok=True)

    def write_output() -> float:
        started = time.perf_counter()
        if out_format == "csv":
            pacsv.write_csv(output, tmp)
        else:
            pq.write_table(output, tmp, compression="zstd")
        return time.perf_counter() - started

    # The scored file is written on another thread while the log is written (both release the GIL); it is
    # renamed into place only once the log has the rows.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="score-output") as pool:
        writing = pool.submit(write_output)
        try:
            logged = ingestmod.ingest(store, info, scored.rows, "predictions", actor=actor,
                                      source_name=f"score {name}")
            shadow = None
            if scored.shadow is not None:
                shadow = ingestmod.ingest(store, info, scored.shadow, "shadow", actor=actor,
                                          source_name=f"score {name} (shadow)")
            seconds["log"] = time.perf_counter() - t
            seconds["write"] = writing.result()
            os.replace(tmp, out_path)
        except BaseException:
            try:
                writing.result()
            finally:
                tmp.unlink(missing_ok=True)
            raise
    arms, counts = np.unique(scored.arm.astype(str), return_counts=True)
    versions, vcounts = np.unique(scored.version, return_counts=True)
    return ScoreResult(info.name, name, str(out_path), n, {str(a): int(c) for a, c in zip(arms, counts, strict=True)},
                       {int(v): int(c) for v, c in zip(versions, vcounts, strict=True)},
                       scored.shadow.num_rows if scored.shadow is not None else 0, logged.batch_id,
                       shadow.batch_id if shadow is not None else None,
                       [a.describe() for a in anomalies if a.severity != "info"], live.config.mode,
                       time.perf_counter() - t0, seconds)

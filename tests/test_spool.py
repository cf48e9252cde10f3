"""The spool and its loader on a real database: rotation, a torn segment, a dead writer's open segment,
idempotence after a crash between ingest and clean-up, request ids already logged, refused batches."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import numpy as np
import pyarrow as pa
import pytest
from _serving_support import ADMIN, MODEL, logged, records, two_versions

from mlops_core import ControlRoom
from mlops_core.serving import loader as loadermod
from mlops_core.serving import requests as reqmod
from mlops_core.serving import scorer
from mlops_core.serving import spool as spoolmod
from mlops_core.serving.router import Router
from mlops_core.store import Store, utcnow


@pytest.fixture
def db(tmp_path):
    return two_versions(tmp_path / "s")


def scored(db, n: int, seed: int = 0, ids: list[str] | None = None):
    """``n`` records scored by what serves now: (Live, Scored)."""
    store = Store(db)
    info = ControlRoom(db).model(MODEL).info
    router = Router(store, info)
    router.refresh()
    recs, _ = reqmod.check_records(info, records(n, seed))
    rids = ids or recs.request_ids
    return router.live, scorer.score_frame(router.live, reqmod.frame_of(info, recs.values), rids, rids, at=utcnow())


def make_loader(db, folder, spool=None, **kw):
    info = ControlRoom(db).model(MODEL).info
    return loadermod.Loader(Store(db), info, folder, actor="tester", spool=spool, **kw)


def test_segments_rotate_by_rows_and_a_clean_close_seals_the_rest(db, tmp_path):
    info = ControlRoom(db).model(MODEL).info
    spool = spoolmod.Spool(tmp_path / "spool", info, segment_rows=10, segment_seconds=3600)
    for _ in range(5):
        spool.append(scored(db, 4)[1].rows)
    sealed = sorted((tmp_path / "spool").glob("*.arrows"))
    assert [spoolmod.read_segment(p).num_rows for p in sealed] == [12]  # sealed once it reached 10 rows
    assert spool.stats.rows == 20
    spool.close()
    total = sum(spoolmod.read_segment(p).num_rows for p in (tmp_path / "spool").glob("*.arrows"))
    assert total == 20 and not list((tmp_path / "spool").glob("*.open"))
    with pytest.raises(RuntimeError):
        spool.append(scored(db, 1)[1].rows)


def test_loader_moves_segments_into_the_log_through_ingest(db, tmp_path):
    info = ControlRoom(db).model(MODEL).info
    spool = spoolmod.Spool(tmp_path / "spool", info, segment_rows=25)
    answered = []
    for seed in range(4):
        out = scored(db, 20, seed)[1]
        spool.append(out.rows)
        answered += out.rows["request_id"].to_pylist()
    loader = make_loader(db, tmp_path / "spool", spool, batch_rows=1000, max_delay_s=3600)
    assert loader.run_once().segments == 0  # below the batch size and young: wait
    done = loader.stop(drain=True)
    assert done.rows == 80 and not loader.sealed()
    log = logged(db)
    assert sorted(log["request_id"]) == sorted(answered) and set(log["variant"]) == {"champion"}
    runs = ControlRoom(db).runs(MODEL)
    ingests = runs[runs["kind"] == "ingest"]
    assert len(ingests) == 1 and ingests["actor"].iloc[0] == "tester"  # one validated batch, audited


def test_a_torn_segment_keeps_its_whole_batches_and_a_dead_writers_segment_is_sealed(db, tmp_path):
    folder = tmp_path / "spool"
    # a writer process that spools 3 batches of 7 rows, then dies mid-write of a fourth (torn bytes)
    script = f"""
import os, sys
sys.path.insert(0, {str(os.getcwd())!r})
sys.path.insert(0, {str(os.path.join(os.getcwd(), 'tests'))!r})
from test_spool import scored
from mlops_core import ControlRoom
from mlops_core.serving import spool as spoolmod
from pathlib import Path
db = Path({str(db)!r})
sp = spoolmod.Spool(Path({str(folder)!r}), ControlRoom(db).model({MODEL!r}).info, segment_rows=1000)
for seed in range(3):
    sp.append(scored(db, 7, seed)[1].rows)
sp._sink.write(b"\\xff\\xff\\xff\\xff\\x10\\x00")  # the first bytes of a batch that never finished
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120, cwd=os.getcwd())
    (opened,) = folder.glob("*.open")
    table = spoolmod.read_segment(opened)
    assert table.num_rows == 21
    assert spoolmod.seal_orphans(folder) == [opened.with_suffix(".arrows")]
    done = make_loader(db, folder).drain()
    assert done.rows == 21 and len(logged(db)) == 21


def test_a_pass_repeated_after_a_crash_is_idempotent_and_extra_segments_still_load(db, tmp_path):
    info = ControlRoom(db).model(MODEL).info
    folder = tmp_path / "spool"
    spool = spoolmod.Spool(folder, info, segment_rows=10)
    spool.append(scored(db, 10, 1)[1].rows)
    first = sorted(folder.glob("*.arrows"))
    backup = {p: p.read_bytes() for p in first}
    make_loader(db, folder).drain()
    for p, data in backup.items():  # the crash: the log has the rows, the segments were not deleted
        p.write_bytes(data)
    again = make_loader(db, folder).drain()
    assert again.rows == 0 and len(logged(db)) == 10  # same bytes, same fingerprint: already ingested
    for p, data in backup.items():
        p.write_bytes(data)
    spool.append(scored(db, 10, 2)[1].rows)  # and a new segment beside them
    loader = make_loader(db, folder)
    done = loader.drain()
    assert done.rows == 10 and loader.stats.rows_already_logged == 10
    assert len(logged(db)) == 20 and logged(db)["request_id"].is_unique


def test_shadow_rows_go_to_their_own_kind(db, tmp_path):
    ControlRoom(db, identity=ADMIN).model(MODEL).set_deployment("shadow", challenger=2)
    info = ControlRoom(db).model(MODEL).info
    live, out = scored(db, 15)
    assert live.config.mode == "shadow" and out.shadow.num_rows == 15
    spool = spoolmod.Spool(tmp_path / "spool", info)
    spool.append(out.rows)
    spool.append(out.shadow)
    spool.close()
    done = make_loader(db, tmp_path / "spool").drain()
    assert (done.rows, done.shadow_rows) == (15, 15)
    assert len(logged(db)) == 15 and set(logged(db)["variant"]) == {"champion"}
    shadow = logged(db, "shadow")
    assert set(shadow["variant"]) == {"shadow"} and sorted(shadow["request_id"]) == sorted(logged(db)["request_id"])
    status = ControlRoom(db).model(MODEL).status()
    assert status.predictions == 15  # the log's size counts served answers only


def test_a_refused_batch_is_set_aside_with_its_reason(db, tmp_path):
    info = ControlRoom(db).model(MODEL).info
    _, out = scored(db, 5)
    bad = out.rows.set_column(1, "version", pa.array(np.full(5, 99, dtype=np.int32)))  # a version that does not exist
    spool = spoolmod.Spool(tmp_path / "spool", info)
    spool.append(bad)
    spool.close()
    loader = make_loader(db, tmp_path / "spool")
    loader.drain()
    assert loader.stats.rows_rejected == 5 and len(logged(db)) == 0
    (reason,) = (tmp_path / "spool" / "rejected").glob("*.txt")
    assert "has no version 99" in reason.read_text()
    assert not loader.sealed()


def test_spool_folder_sits_beside_the_database_unless_configured(tmp_path, monkeypatch):
    assert spoolmod.spool_dir(tmp_path / "m.duckdb", "credit") == tmp_path / "m_spool" / "credit"
    monkeypatch.setenv("MLOPS_SPOOL_DIR", str(tmp_path / "elsewhere"))
    assert spoolmod.spool_dir(tmp_path / "m.duckdb", "credit") == (tmp_path / "elsewhere" / "credit").resolve()


def test_the_timestamps_of_scored_rows_are_microsecond_utc(db):
    _, out = scored(db, 3)
    assert out.rows.schema.field("ts").type == pa.timestamp("us")
    assert isinstance(out.rows["ts"][0].as_py(), datetime)

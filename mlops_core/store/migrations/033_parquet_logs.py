"""033: prediction logs and labels move out of the database file into Parquet files listed in ``log_files``.

Creates ``log_files`` and writes the rows of every model's ``log_<model>`` and ``labels_<model>``
tables (the layout up to 032) into the log folder beside the database, one file per day, lists
them and drops the tables. A database file then holds only metadata, so writing a batch of
predictions holds it for milliseconds instead of the length of the insert.
"""
from __future__ import annotations

from mlops_core.config import logs_dir
from mlops_core.store import logs
from mlops_core.store import models as mstore

LOG_FILES = """
CREATE TABLE log_files (
    path        VARCHAR PRIMARY KEY,       -- relative to the log folder: <kind>/model=<m>/date=<d>/<file>.parquet
    model       VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,          -- predictions | labels
    batch_id    VARCHAR,
    day         DATE NOT NULL,             -- predictions: day of the prediction; labels: day it arrived
    rows        BIGINT NOT NULL,
    min_ts      TIMESTAMP,
    max_ts      TIMESTAMP,
    bytes       BIGINT,
    created_at  TIMESTAMP NOT NULL,
    retired_at  TIMESTAMP                  -- replaced by a compacted file; deleted after a grace period
)"""


def _exists(con, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                            "AND table_catalog = current_database()", [table]).fetchone()[0])


def upgrade(con, db_path) -> None:
    con.execute(LOG_FILES)
    rows = con.execute("SELECT name, log_table, label_table FROM models ORDER BY name").fetchall()
    written = []
    try:
        for name, log_table, label_table in rows:
            info = mstore.get_model(con, name, binding=False)
            for kind, table in (("predictions", log_table), ("labels", label_table)):
                if not _exists(con, table):
                    continue
                files = logs.write(con, logs_dir(db_path), info, kind, f"SELECT * FROM {mstore.quote_ident(table)}",
                                   batch_id=f"migrated-{kind}")
                written += files
                logs.register(con, files)
                con.execute(f"DROP TABLE {mstore.quote_ident(table)}")
            con.execute("UPDATE models SET log_table = ?, label_table = ? WHERE name = ?",
                        [f"predictions/model={name}", f"labels/model={name}", name])
    except BaseException:
        logs.discard(logs_dir(db_path), written)
        raise

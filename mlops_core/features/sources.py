"""Reading feature rows: a CSV or Parquet file, a folder of them, a table of a DuckDB file, or a DataFrame.

Every form becomes a ``batches.Batch`` (the reader prediction ingest uses: CSV cells as text, so that
conversion and its errors happen in the checks; a Parquet file scanned by DuckDB itself) and the
object its fingerprint is computed from. A folder is read whole (every ``.parquet`` file, or every
``.csv`` file, in name order; one format per folder), a table through a read-only connection.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from mlops_core.data import batches
from mlops_core.entities import FeatureSource
from mlops_core.errors import BatchRejectedError, InvalidInputError
from mlops_core.store import feature_queries as fqueries
from mlops_core.store.validation import ROW

WHAT = "feature batch"


@dataclass
class SourceRows:
    """Rows read for ingest: the batch, what its fingerprint is computed from, and a name for messages."""

    batch: batches.Batch
    fingerprint_of: Any
    name: str


def source_of(spec: str | os.PathLike) -> FeatureSource:
    """The FeatureSource a path names: ``file`` or ``folder`` (whether it exists is checked on reading)."""
    path = Path(os.fspath(spec)).expanduser()
    return FeatureSource("folder" if path.is_dir() or str(spec).endswith(os.sep) else "file", str(path))


def read_rows(source: Any) -> SourceRows:
    """Read ``source``: a FeatureSource, a path (file or folder), a DataFrame or an Arrow table.

    Raises BatchRejectedError (nothing can be written) for a missing, empty or unreadable source.
    """
    if isinstance(source, (pd.DataFrame, pa.Table)):
        return SourceRows(batches.read_batch(source, what=WHAT), source,
                          "DataFrame" if isinstance(source, pd.DataFrame) else "Arrow table")
    spec = source if isinstance(source, FeatureSource) else source_of(source)
    if spec.kind == "table":
        table = _read_table(spec)
        return SourceRows(batches.read_batch(table, what=WHAT), table, spec.describe())
    path = Path(spec.path)
    if path.is_dir():
        table = _read_folder(path)
        return SourceRows(batches.read_batch(table, what=WHAT), table, str(path))
    return SourceRows(batches.read_batch(path, what=WHAT), path, str(path))


def _read_folder(folder: Path) -> pa.Table:
    import pyarrow.parquet as pq

    parquet = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".parquet", ".pq"))
    csv = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv")
    if parquet and csv:
        raise BatchRejectedError(f"The folder {folder} holds both CSV and Parquet files; keep one format per folder.",
                                 path=str(folder))
    if not parquet and not csv:
        raise BatchRejectedError(f"The folder {folder} holds no .parquet or .csv file; nothing was written.",
                                 path=str(folder))
    tables = []
    for p in parquet or csv:
        if p.stat().st_size == 0:
            continue
        try:
            if parquet:
                tables.append(pq.read_table(p))
            else:
                tables.append(batches.read_batch(p, what=WHAT).table.drop_columns([ROW]))
        except (pa.ArrowException, OSError) as exc:
            raise BatchRejectedError(f"Cannot read {p}: {exc}", path=str(p)) from exc
    if not tables:
        raise BatchRejectedError(f"Every file in the folder {folder} is empty; nothing was written.", path=str(folder))
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowException, ValueError) as exc:
        raise BatchRejectedError(f"The files in {folder} do not share one set of columns and types: {exc}",
                                 path=str(folder)) from exc


def _read_table(spec: FeatureSource) -> pa.Table:
    import duckdb

    path = Path(spec.path)
    if not path.is_file():
        raise BatchRejectedError(f"The DuckDB file {path} of the source table {spec.table!r} does not exist.",
                                 path=str(path))
    try:
        con = fqueries.open_read_only(path)
    except duckdb.Error as exc:
        raise BatchRejectedError(f"Cannot open {path} to read the table {spec.table!r}: {exc}", path=str(path)) from exc
    try:
        return fqueries.whole_table(con, spec.table or "")
    except duckdb.Error as exc:
        raise BatchRejectedError(f"Cannot read the table {spec.table!r} of {path}: {exc}", path=str(path)) from exc
    finally:
        con.close()


def check_source_exists(spec: FeatureSource) -> None:
    """Raise InvalidInputError when a defined source does not exist (a folder may be empty)."""
    path = Path(spec.path)
    if spec.kind == "table":
        if not path.is_file():
            raise InvalidInputError(f"The source database {path} does not exist.", path=str(path))
    elif spec.kind == "folder":
        if not path.is_dir():
            raise InvalidInputError(f"The source folder {path} does not exist.", path=str(path))
    elif not path.is_file():
        raise InvalidInputError(f"The source file {path} does not exist.", path=str(path))

"""Reading the user's CSV and Parquet files, with errors a person can act on."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from mlops_core.errors import InvalidInputError, NotFoundError

SUPPORTED = (".csv", ".parquet", ".pq")


def file_format(path: str | os.PathLike) -> str:
    """Return ``csv`` or ``parquet`` from the file's suffix; raise InvalidInputError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise InvalidInputError(
        f"Cannot read {path}: unsupported file type {suffix or '(none)'!r}; give a .csv or .parquet file.", path=str(path)
    )


def read_table(path: str | os.PathLike, *, what: str = "file") -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame.

    Raises NotFoundError when it does not exist and InvalidInputError when it is
    empty, unreadable or of an unsupported type (the message names the file).
    """
    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"The {what} {p} does not exist.", path=str(p))
    if p.is_dir():
        raise InvalidInputError(f"The {what} {p} is a folder; give a .csv or .parquet file.", path=str(p))
    fmt = file_format(p)
    if p.stat().st_size == 0:
        raise InvalidInputError(f"The {what} {p} is empty (0 bytes).", path=str(p))
    try:
        if fmt == "csv":
            df = pd.read_csv(p, low_memory=False)
        else:
            df = pd.read_parquet(p)
    except pd.errors.EmptyDataError as exc:
        raise InvalidInputError(f"The {what} {p} has no columns or rows.", path=str(p)) from exc
    except Exception as exc:  # parser errors of pandas / pyarrow
        raise InvalidInputError(f"Cannot read the {what} {p} as {fmt.upper()}: {exc}", path=str(p)) from exc
    if len(df) == 0:
        raise InvalidInputError(f"The {what} {p} has a header but no rows.", path=str(p))
    return df

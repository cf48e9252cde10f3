"""Feature schemas: what a model expects as input, inferred from its training data.

A ``FeatureSpec`` records for each input column its kind (``numeric`` or
``categorical``), the dtype seen in training, the observed range (numeric), the
categories (categorical) and the null rate. Ingest and validation compare incoming
batches with it; the prediction log gets one typed column per feature (DOUBLE for
numeric, VARCHAR for categorical).
"""
from __future__ import annotations

import math
import re
import sys

import numpy as np
import pandas as pd

from mlops_core.entities import FeatureSpec
from mlops_core.errors import InvalidInputError

#: Columns of a prediction batch that are not features; a feature may not use these names.
RESERVED_COLUMNS = ("request_id", "timestamp", "ts", "version", "variant", "prediction", "score", "label", "batch_id")

#: More distinct values than this in a text column and it is treated as an identifier, not a category.
MAX_CATEGORIES = 200

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def check_identifier(name: str, what: str) -> str:
    """Return ``name`` if it is a plain identifier (letters, digits, _; at most 63), else raise InvalidInputError."""
    if not isinstance(name, str) or not _IDENT.fullmatch(name):  # match() with $ let 'name\n' pass
        raise InvalidInputError(
            f"{what} {name!r} is not a valid name: use letters, digits and underscores, "
            "starting with a letter or underscore, at most 63 characters.",
            name=name,
        )
    return name


def infer_schema(df: pd.DataFrame, target: str) -> list[FeatureSpec]:
    """Return one FeatureSpec per column of ``df`` except ``target``.

    Numeric (int, float) columns are numeric features; bool, text and categorical
    columns are categorical features. Raises InvalidInputError for a column name that
    clashes with the log's own columns, or a column of a type we cannot log.
    """
    specs = []
    for col in df.columns:
        if col == target:
            continue
        check_identifier(col, "Feature column")
        if col.lower() in RESERVED_COLUMNS:
            raise InvalidInputError(
                f"Feature column {col!r} uses a name reserved for the prediction log "
                f"({', '.join(RESERVED_COLUMNS)}); rename it in the training data.",
                column=col,
            )
        s = df[col]
        null_rate = float(s.isna().mean()) if len(s) else 0.0
        if pd.api.types.is_bool_dtype(s):
            cats = sorted({str(v) for v in s.dropna().unique()})
            specs.append(FeatureSpec(col, "categorical", "bool", categories=cats, null_rate=null_rate))
        elif pd.api.types.is_numeric_dtype(s):
            vals = pd.to_numeric(s, errors="coerce").astype("float64")
            finite = vals[np.isfinite(vals)]
            dtype = "int" if pd.api.types.is_integer_dtype(s) else "float"
            specs.append(
                FeatureSpec(
                    col,
                    "numeric",
                    dtype,
                    min=float(finite.min()) if len(finite) else None,
                    max=float(finite.max()) if len(finite) else None,
                    null_rate=null_rate,
                )
            )
        elif pd.api.types.is_datetime64_any_dtype(s):
            raise InvalidInputError(
                f"Feature column {col!r} holds timestamps; derive numeric features from it (e.g. hour, age in days) before training.",
                column=col,
            )
        else:
            values = s.dropna().astype(str)
            cats = sorted(values.unique().tolist())
            if len(cats) > MAX_CATEGORIES:
                raise InvalidInputError(
                    f"Feature column {col!r} has {len(cats)} distinct text values (more than {MAX_CATEGORIES}); "
                    "it looks like an identifier. Drop it from the training data or encode it first.",
                    column=col,
                )
            specs.append(FeatureSpec(col, "categorical", "string", categories=cats, null_rate=null_rate))
    if not specs:
        raise InvalidInputError(f"The training data has no feature columns besides the target {target!r}.")
    return specs


def coerce_features(df: pd.DataFrame, specs: list[FeatureSpec]) -> pd.DataFrame:
    """Return ``df`` with each feature column in the dtype a model of this schema was fitted on.

    Numeric features become float64 (unparseable values NaN). Categorical features become
    object columns of Python strings with every missing value as NaN: scikit-learn's
    ``SimpleImputer`` recognises NaN in object columns, but not None. Columns already in
    that form are passed through without a copy of their values.
    """
    out = df.copy(deep=False)  # copy-on-write: replacing a column below never touches ``df``
    for s in specs:
        if s.name not in out.columns:
            continue
        col = out[s.name]
        if s.kind == "numeric":
            if col.dtype != "float64":
                out[s.name] = pd.to_numeric(col, errors="coerce").astype("float64")
            continue
        if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):
            pass  # already Python strings
        elif isinstance(col.dtype, pd.StringDtype) and col.dtype.storage == "pyarrow":
            out[s.name] = _arrow_strings_as_objects(col)  # e.g. read from DuckDB through Arrow
            continue
        elif pd.api.types.is_string_dtype(col.dtype) and col.dtype != object:
            col = col.astype(object)  # another pandas string column
        else:
            col = col.where(col.isna(), col.astype(str)).astype(object)
        missing = col.isna()
        if missing.any() and not all(isinstance(v, float) for v in col.to_numpy()[missing.to_numpy()]):
            col = col.where(~missing, np.nan)  # None or pd.NA among the missing values
        out[s.name] = col
    return out


def _arrow_strings_as_objects(col: pd.Series) -> pd.Series:
    """An Arrow-backed pandas string column as Python strings in an object column, missing values as NaN.

    Arrow converts the strings itself and knows its missing values from the validity bitmap,
    which is about three times faster than ``astype(object)`` followed by a scan for missing values.
    """
    import pyarrow as pa

    chunked = pa.array(col.array)  # the column's own Arrow data, through the __arrow_array__ protocol
    if isinstance(chunked, pa.Array):
        chunked = pa.chunked_array([chunked])
    values = chunked.to_numpy(zero_copy_only=False)
    if chunked.null_count:
        values[chunked.is_null().to_numpy(zero_copy_only=False)] = np.nan
    return pd.Series(values, index=col.index, name=col.name, dtype=object)


def shown(value, limit: int = 60) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters (a hostile value is not echoed whole; an integer
    too long for ``repr`` is described instead)."""
    try:
        text = repr(value)
    except ValueError:  # Python refuses to print integers of more than 4,300 digits
        text = f"an integer of more than {sys.get_int_max_str_digits():,} digits"
    return text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)"


def finite_number(value, what: str) -> float:
    """``value`` as a finite float. Raises InvalidInputError naming ``what`` when it is not a number (text, None,
    a list, an integer too large for a float) or is NaN or infinite."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{what} must be a number, not {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInputError(f"{what} must be a number, not {shown(value)}.") from exc
    if not math.isfinite(number):
        raise InvalidInputError(f"{what} must be a finite number, not {shown(value)}.")
    return number


def finite_or_none(x) -> float | None:
    """Return ``x`` as a float, or None when it is missing, NaN or infinite (JSON has no NaN)."""
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None

"""Derive the shipped bad and anomalous batches from the clean credit_default batch.

    .venv/bin/python sample_data/make_bad_batches.py [--folder sample_data/batches]

Reads ``credit_default_clean.csv`` and ``credit_default_labels.csv`` (written by the
demo) and writes one file per kind of structurally bad batch (each refused whole by
``ingest``, exit 2) plus ``anomalies_out_of_range.csv`` (accepted, with warnings).
Deterministic: the same inputs give byte-identical outputs. See sample_data/README.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
#: Rows (1 = first data row) that the bad files spoil, so the error messages are predictable.
BAD_ROWS = [5, 9, 12]
ROWS = 200


def _idx(rows: list[int]) -> list[int]:
    return [r - 1 for r in rows]


def make(folder: Path) -> list[Path]:
    clean = pd.read_csv(folder / "credit_default_clean.csv", dtype=str, keep_default_na=False)
    labels = pd.read_csv(folder / "credit_default_labels.csv", dtype=str, keep_default_na=False)
    base = clean.head(ROWS).copy()
    out: dict[str, pd.DataFrame | bytes] = {}

    out["bad_missing_column.csv"] = base.drop(columns=["income"])

    df = base.copy()
    df.loc[_idx(BAD_ROWS), "income"] = ["abc", "12k", "forty"]
    out["bad_wrong_type.csv"] = df

    df = base.copy()
    df.loc[_idx(BAD_ROWS[:2]), "request_id"] = ""
    out["bad_null_request_id.csv"] = df

    df = base.copy()
    df.loc[_idx(BAD_ROWS[:2]), "timestamp"] = ""
    out["bad_null_timestamp.csv"] = df

    df = base.copy()
    df.loc[_idx([10, 20]), "request_id"] = df.loc[_idx([4, 7]), "request_id"].to_numpy()
    out["bad_duplicate_ids.csv"] = df

    # Ten request ids of the clean batch plus ten new ones: refused once the clean batch is ingested.
    stored = clean.iloc[:10].copy()
    fresh = clean.iloc[10:20].copy()
    fresh["request_id"] = [f"dup-test-{i:04d}" for i in range(len(fresh))]
    out["bad_duplicate_of_stored.csv"] = pd.concat([fresh, stored], ignore_index=True)

    lab = labels.head(20).copy()
    lab.loc[_idx([3, 6, 7]), "request_id"] = ["never-logged-0001", "never-logged-0002", "never-logged-0003"]
    out["bad_labels_unknown_ids.csv"] = lab

    df = base.copy()
    if "version" not in df.columns:
        df.insert(2, "version", "")
    df.loc[_idx(BAD_ROWS), "version"] = "99"
    out["bad_unknown_version.csv"] = df

    out["bad_empty.csv"] = b""
    out["bad_header_only.csv"] = (",".join(clean.columns) + "\n").encode()
    out["bad_unreadable.parquet"] = b"This is not a Parquet file: the bytes of a CSV export were saved under a .parquet name.\n"

    # Content anomalies: accepted and flagged, stored exactly as given.
    df = clean.head(300).copy()
    df["request_id"] = [f"anomaly-{i:04d}" for i in range(len(df))]
    df.loc[_idx([2, 40, 77]), "age"] = ["150", "-3", "212"]
    df.loc[_idx([5, 6, 7, 8, 9]), "income"] = ["99999", "120000.5", "87000", "250000", "1e6"]
    df.loc[_idx([11, 12]), "purpose"] = "x'; DROP TABLE --"
    df.loc[_idx([13]), "region"] = "atlantis"
    rng = np.random.default_rng(7)
    empty = rng.choice(len(df), size=int(0.4 * len(df)), replace=False)
    df.loc[empty, "employment_type"] = ""
    out["anomalies_out_of_range.csv"] = df

    paths = []
    for name, content in out.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            content.to_csv(path, index=False, lineterminator="\n")
        paths.append(path)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", default=str(HERE / "batches"))
    args = ap.parse_args()
    for p in make(Path(args.folder)):
        print(p)


if __name__ == "__main__":
    main()

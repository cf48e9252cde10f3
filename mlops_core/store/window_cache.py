"""Per-window results kept beside the log, so a series over months of a big log computes only what changed.

A monitoring series (performance or drift bin counts per window and version) is a function of the
rows of each window: the predictions logged in it and the labels that join to them. The log is
immutable files listed in ``log_files``, each with the time span it touches (predictions: their own
times; labels: the times of the predictions they label, recorded when they are written, see
``logs.write``), so ``LogView.fingerprint(start, end)`` names exactly the rows a window's result
came from. A result is kept here with that fingerprint and reused while the fingerprint is the
same; a new batch of predictions or labels changes the fingerprints of the windows it touches only.

Files: ``<log folder>/cache/model=<name>/<series>.json``, one per series (its kind, window size and
parameters, and a digest of the code of the queries it caches, so a new release never reuses the
results of an older query). JSON, read with ``json`` (never unpickled); each entry is
``window start -> [fingerprint, payload]``. Written whole to a temporary file and renamed over the
old one, so a reader sees one version or the other; two processes computing the same window write
the same payload. The cache is a copy of what the log says: deleting the folder only costs time, and
a cache that cannot be written (a read-only log folder, a full disk) is skipped. ``MLOPS_WINDOW_CACHE=0``
turns it off (every series computed from the log).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: Bumped when the layout of the cache files changes.
FORMAT = 1


def enabled() -> bool:
    """Whether per-window results are kept and reused (``MLOPS_WINDOW_CACHE``, default on)."""
    return os.environ.get("MLOPS_WINDOW_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


@functools.lru_cache(maxsize=32)
def code_digest(files: tuple[str, ...]) -> str:
    """A short digest of the source files of the queries a series caches (their modules' ``__file__``); read once
    per process (a running process keeps the code it imported)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(str(FORMAT).encode())
    for name in files:
        try:
            digest.update(Path(name).read_bytes())
        except OSError:
            digest.update(name.encode())
    return digest.hexdigest()


def series_name(kind: str, window: str, parameters: object, code: str) -> str:
    """The file name of one series: its kind and window size, and a digest of its parameters (JSON) and code."""
    text = json.dumps(parameters, sort_keys=True, default=str)
    digest = hashlib.blake2b(f"{text}\0{code}".encode(), digest_size=8).hexdigest()
    return f"{kind}-{window}-{digest}"


def _path(root: Path, model: str, series: str) -> Path:
    return root / "cache" / f"model={model}" / f"{series}.json"


def load(root: Path, model: str, series: str) -> dict[str, list[Any]]:
    """The kept entries of a series: window start (ISO text) -> [fingerprint, payload]; empty when there are none
    or the file cannot be read (the series is then computed again)."""
    try:
        with open(_path(root, model, series), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("windows"), dict):
        return {}
    return data["windows"]


def save(root: Path, model: str, series: str, entries: dict[str, list[Any]]) -> bool:
    """Replace the kept entries of a series (atomically); False when the file could not be written."""
    path = _path(root, model, series)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{series}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o644)  # readable like the log files beside it (mkstemp makes it private)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"format": FORMAT, "windows": entries}, f, separators=(",", ":"))
        os.replace(tmp, path)
        return True
    except OSError:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False


__all__ = ["FORMAT", "code_digest", "enabled", "load", "save", "series_name"]

"""Model artifacts on disk: saved with joblib, addressed by sha256, verified before every load.

joblib (pickle) runs code when it loads a file, so an artifact is only loaded when its
bytes hash to the sha256 recorded in the registry when it was written. Artifacts live
under the store's artifacts folder (``Store.artifacts``); functions take that folder.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import joblib

from mlops_core.errors import IntegrityError, NotFoundError


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_artifact(estimator, root: Path, model: str, version: int) -> tuple[str, str]:
    """Write ``estimator`` atomically under ``root``; return (path relative to ``root``, sha256)."""
    folder = root / model
    folder.mkdir(parents=True, exist_ok=True)
    rel = f"{model}/v{version}-{uuid.uuid4().hex[:8]}.joblib"
    tmp = root / f"{rel}.tmp"
    joblib.dump(estimator, tmp)
    os.replace(tmp, root / rel)
    return rel, sha256_file(root / rel)


def load_artifact(root: Path, rel: str, expected_sha256: str, *, what: str = "artifact"):
    """Load an artifact after checking its sha256.

    Raises NotFoundError when the file is gone and IntegrityError when its hash differs
    from the registered one (the file is then not unpickled at all).
    """
    path = root / rel
    if not path.exists():
        raise NotFoundError(f"The {what} file {path} is missing.", path=str(path))
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise IntegrityError(
            f"Refusing to load the {what} {path}: its sha256 is {actual[:12]}..., but the registry recorded "
            f"{expected_sha256[:12]}.... The file was changed after it was registered; restore it or retrain.",
            path=str(path), expected=expected_sha256, actual=actual,
        )
    return joblib.load(path)


def remove_artifact(root: Path, rel: str) -> None:
    """Delete an artifact file if it exists (cleanup after a failed registration)."""
    try:
        (root / rel).unlink()
    except FileNotFoundError:
        pass


def load_estimator_file(path: str | os.PathLike):
    """Load a fitted scikit-learn estimator a user hands over (a joblib file); raise NotFoundError, InvalidInputError."""
    from mlops_core.errors import InvalidInputError

    p = os.fspath(path)
    if not os.path.exists(p):
        raise NotFoundError(f"The artifact file {p} does not exist.", path=p)
    try:
        est = joblib.load(p)
    except Exception as exc:
        raise InvalidInputError(f"Cannot load {p} with joblib: {exc}. Save a fitted estimator with joblib.dump().",
                                path=p) from exc
    if not hasattr(est, "predict"):
        raise InvalidInputError(f"{p} holds a {type(est).__name__}, not a fitted scikit-learn estimator (no predict()).",
                                path=p)
    return est

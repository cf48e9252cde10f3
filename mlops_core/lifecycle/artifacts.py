"""Model artifacts on disk: saved with joblib, addressed by sha256, verified before every load.

joblib (pickle) runs code when it loads a file, so an artifact is only loaded when its
bytes hash to the sha256 recorded in the registry when it was written. Artifacts live
under the database's artifacts folder (``config.artifacts_dir``).
"""
from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import joblib

from mlops_core.config import artifacts_dir
from mlops_core.errors import IntegrityError, NotFoundError


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_artifact(estimator, db_path: str | os.PathLike, model: str, version: int) -> tuple[str, str]:
    """Write ``estimator`` atomically; return (path relative to the artifacts folder, sha256)."""
    root = artifacts_dir(db_path)
    folder = root / model
    folder.mkdir(parents=True, exist_ok=True)
    rel = f"{model}/v{version}-{uuid.uuid4().hex[:8]}.joblib"
    tmp = root / f"{rel}.tmp"
    joblib.dump(estimator, tmp)
    os.replace(tmp, root / rel)
    return rel, sha256_file(root / rel)


def artifact_path(db_path: str | os.PathLike, rel: str) -> Path:
    return artifacts_dir(db_path) / rel


def load_artifact(db_path: str | os.PathLike, rel: str, expected_sha256: str, *, what: str = "artifact"):
    """Load an artifact after checking its sha256.

    Raises NotFoundError when the file is gone and IntegrityError when its hash differs
    from the registered one (the file is then not unpickled at all).
    """
    path = artifact_path(db_path, rel)
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


def remove_artifact(db_path: str | os.PathLike, rel: str) -> None:
    """Delete an artifact file if it exists (cleanup after a failed registration)."""
    try:
        artifact_path(db_path, rel).unlink()
    except FileNotFoundError:
        pass

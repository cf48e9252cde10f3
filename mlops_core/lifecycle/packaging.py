"""Getting a model out of the registry: a verified estimator with its schema, or an artifact with a model card.

``load`` resolves a reference (``credit_default``, ``credit_default@production``,
``credit_default@challenger``, ``credit_default@3``, or a name with ``version=3``), reads the version's
artifact, checks its sha256 and loads it under the skops allow-list (``registry.load_version``); it
returns the estimator with the model's feature schema, so a caller can build the frame it expects.

``export_version`` writes the artifact (the registered bytes, checked against the recorded sha256)
and a model card (JSON) beside it::

    <out>/<model>-v<N>.skops            the artifact (``.joblib`` for versions of earlier releases)
    <out>/<model>-v<N>.model-card.json  schema, metrics, lineage, artifact sha256, how to load it

A card's ``schema`` lists each feature's kind, training range or categories and null rate; ``metrics``
the training and holdout metrics (holdout: the rows of ``holdout_rows``); ``lineage`` the algorithm,
hyperparameters, training window and rows, data source, run, creator, status and gate verdict.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from mlops_core.data.schema import coerce_features
from mlops_core.entities import FeatureSpec, ModelInfo, VersionInfo, jsonable
from mlops_core.errors import IntegrityError, InvalidInputError, NotFoundError
from mlops_core.lifecycle import deployments, registry
from mlops_core.store import Store, utcnow
from mlops_core.store import models as mstore

ALIASES = ("production", "challenger")
CARD_FORMAT = "mlops-model-card/1"


@dataclass
class LoadedModel:
    """A version's verified estimator and what a caller needs to use it."""

    info: ModelInfo
    version: VersionInfo
    estimator: object
    artifact_path: Path

    @property
    def schema(self) -> list[FeatureSpec]:
        """The model's input features (names, kinds, training ranges and categories), in order."""
        return self.info.features

    @property
    def sha256(self) -> str:
        return self.version.artifact_sha256

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame``'s feature columns, in schema order and the dtypes the estimator was fitted on; raises
        InvalidInputError naming missing columns."""
        missing = [c for c in self.info.feature_names if c not in frame.columns]
        if missing:
            raise InvalidInputError(f"The frame lacks the feature column(s) {', '.join(missing)} of "
                                    f"{self.info.name!r}.", columns=missing)
        return coerce_features(frame[self.info.feature_names], self.info.features)

    def predict(self, frame: pd.DataFrame):
        """The estimator's predictions for ``frame`` (see ``features``)."""
        return self.estimator.predict(self.features(frame))

    def predict_proba(self, frame: pd.DataFrame):
        """The estimator's class probabilities for ``frame`` (classifiers; columns in ``estimator.classes_``)."""
        return self.estimator.predict_proba(self.features(frame))


_REF = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:@(?P<alias>[A-Za-z0-9_]+))?$")


def resolve(con, store: Store, ref: str, version: int | None = None) -> tuple[ModelInfo, VersionInfo]:
    """The model and version a reference names (see the module docstring). Raises InvalidInputError (a malformed
    reference, an alias and a version together, an unknown alias), NotFoundError (model, version, no holder)."""
    m = _REF.match(ref or "")
    if not m:
        raise InvalidInputError(f"{ref!r} is not a model reference; use NAME, NAME@production, NAME@challenger or "
                                "NAME@VERSION.", ref=ref)
    info = mstore.get_model(con, m.group("name"))
    alias = m.group("alias")
    if alias is not None and version is not None:
        raise InvalidInputError(f"Give either {ref!r} or version={version}, not both.")
    if alias is not None and alias.isdigit():
        version, alias = int(alias), None
    if alias is None or alias == "production":
        return info, registry.resolve_version(con, info.name, version)
    if alias == "challenger":
        config = deployments.current(con, info.name)
        if config.challenger is None:
            raise NotFoundError(f"Model {info.name!r} has no challenger deployed (mode {config.mode}).",
                                model=info.name)
        return info, mstore.get_version(con, info.name, config.challenger)
    raise InvalidInputError(f"Unknown alias {alias!r}; use one of: {', '.join(ALIASES)} or a version number.",
                            alias=alias)


def load(store: Store, ref: str, version: int | None = None) -> LoadedModel:
    """The verified estimator of the version ``ref`` names (sha256 checked, skops allow-list) with its schema.
    Raises NotFoundError, InvalidInputError, IntegrityError (artifact changed since registration)."""
    with store.connect() as con:
        info, v = resolve(con, store, ref, version)
    return LoadedModel(info, v, registry.load_version(store, v), (store.artifacts / v.artifact_path).resolve())


def model_card(info: ModelInfo, v: VersionInfo, artifact_file: str) -> dict:
    """The model card of a version (a JSON-ready dict; see the module docstring)."""
    return jsonable({
        "format": CARD_FORMAT,
        "model": info.name, "version": v.version, "task": info.task, "target": info.target,
        "positive_class": info.positive_class, "classes": info.classes, "description": info.description,
        "unit": info.unit,
        "schema": [asdict(f) for f in info.features],
        "metrics": {"holdout": v.holdout_metrics, "holdout_rows": v.holdout_rows, "training": v.training_metrics},
        "lineage": {"algorithm": v.algorithm, "hyperparameters": v.hyperparameters, "train_start": v.train_start,
                    "train_end": v.train_end, "train_rows": v.train_rows, "data_source": v.data_source,
                    "run_id": v.run_id, "created_by": v.created_by, "created_at": v.created_at, "status": v.status,
                    "gate": v.gate},
        "artifact": {"file": artifact_file, "format": "skops" if artifact_file.endswith(".skops") else "joblib",
                     "sha256": v.artifact_sha256,
                     "load": ("skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path)) after checking "
                              "the sha256; or mlops_core.load_model(...) from the registry")},
        "exported_at": utcnow(),
    })


@dataclass
class ExportResult:
    """The files ``export_version`` wrote."""

    model: str
    version: int
    artifact: str
    card: str
    sha256: str


def export_version(store: Store, info: ModelInfo, v: VersionInfo, out_dir: str | os.PathLike) -> ExportResult:
    """Write the version's artifact and model card into ``out_dir`` (created when missing); return the paths.
    Raises NotFoundError (artifact file gone), IntegrityError (its bytes do not hash to the recorded sha256),
    InvalidInputError (``out_dir`` is a file)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} is a file; give a folder to export into.", path=str(out))
    src = store.artifacts / v.artifact_path
    try:
        data = src.read_bytes()
    except FileNotFoundError as exc:
        raise NotFoundError(f"The artifact of {info.name} v{v.version} ({src}) is missing.", path=str(src)) from exc
    if hashlib.sha256(data).hexdigest() != v.artifact_sha256:
        raise IntegrityError(f"The artifact of {info.name} v{v.version} ({src}) does not hash to the sha256 recorded "
                             "at registration; it was changed and is not exported.", path=str(src))
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{info.name}-v{v.version}"
    artifact = out / f"{stem}{Path(v.artifact_path).suffix}"
    card = out / f"{stem}.model-card.json"
    for path, content in ((artifact, data),
                          (card, (json.dumps(model_card(info, v, artifact.name), indent=2) + "\n").encode())):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    return ExportResult(info.name, v.version, str(artifact.resolve()), str(card.resolve()), v.artifact_sha256)

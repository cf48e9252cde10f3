"""Model artifacts on disk: saved with skops, addressed by sha256, verified before every load.

Format. New artifacts are skops files (``<model>/v<N>-<id>.skops``): a zip of JSON and
numpy arrays that ``skops.io`` rebuilds without unpickling, so loading one runs no code
from the file. Artifacts written by earlier versions are joblib (pickle) files
(``*.joblib``); they still load, but only after their bytes hash to the sha256 the
registry recorded when this software wrote them (see docs/security.md).

Allow-list. skops trusts scikit-learn's public estimators, numpy/scipy ufuncs and a few
containers by default and reports every other type it meets
(``skops.io.get_untrusted_types``). Of those, a load accepts exactly the names that

- start with one of ``ALLOWED_MODULE_PREFIXES`` (``sklearn.``, ``numpy.``, ``scipy.``),
- have no module component in ``EXCLUDED_MODULE_PARTS`` (test, build and entry-point
  modules such as ``numpy.f2py`` or ``__main__``), and
- name a class (functions beyond skops' defaults are refused: a function stored in an
  estimator is called when it predicts, and numpy alone has functions that write files),

plus the few exact names of ``ALLOWED_NAMES`` that scikit-learn stores itself.

An artifact holding anything else is refused: ``InvalidInputError`` (exit 2) for a file a
user hands over (``load_estimator_file``), ``IntegrityError`` (exit 5) for a stored one.

Trees. skops leaves ``sklearn.tree._tree.Tree`` and the ``TreePredictor`` of
HistGradientBoosting untrusted because scikit-learn follows their node indices without
bounds checks: a crafted file could crash the process when it predicts. Both are on the
allow-list (every tree model needs one), so every skops load checks their structure first
(``check_tree_structures``): each split's children come after it and inside the node
array, each feature index is inside the estimator's inputs, each categorical split has its
bitset.

Pickle. A pickle runs any code it holds while it loads. ``load_estimator_file`` refuses
one unless the caller passes ``trust_pickle=True`` (``register --trust-pickle``, admin
only), meant for files the caller built.

Every load reads the file once, checks the sha256 of those bytes, and builds the object
from the same bytes (no window for the file to change between check and load).
"""
from __future__ import annotations

import hashlib
import importlib
import io
import os
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlops_core.errors import IntegrityError, InvalidInputError, MlopsError, NotFoundError, storage_error

#: Suffix of the artifacts this version writes.
ARTIFACT_SUFFIX = ".skops"
#: Suffix of the pickle artifacts of earlier versions (loaded after their hash check only).
LEGACY_SUFFIX = ".joblib"
#: Suffixes of the artifact files a registration may leave behind (orphan cleanup deletes these).
ARTIFACT_SUFFIXES = (ARTIFACT_SUFFIX, LEGACY_SUFFIX, ".tmp")

#: Modules whose classes a skops artifact may hold beyond skops' own defaults.
ALLOWED_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.")
#: Module components never accepted under those prefixes: tests, build tools and entry points, which no fitted
#: estimator holds and some of which act when imported.
EXCLUDED_MODULE_PARTS = frozenset({"__main__", "conftest", "tests", "testing", "_testing", "f2py", "distutils",
                                   "ctypeslib"})
#: Exact names accepted whatever they are: what scikit-learn itself stores inside a fitted estimator
#: (HistGradientBoosting with categorical features keeps ``partial(check_array, ...)``). A partial's function
#: and arguments are checked like everything else.
ALLOWED_NAMES = frozenset({"functools.partial", "sklearn.utils.validation.check_array"})


@dataclass(frozen=True)
class ArtifactBytes:
    """An estimator serialised to skops bytes that passed the allow-list, and their sha256."""

    data: bytes
    sha256: str


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- the allow-list -------------------------------------------------------------------------------


def _resolve(name: str):
    """The object a fully qualified name points to (importing its module), or None."""
    module_name, _, attr = name.rpartition(".")
    while module_name:
        try:
            obj = importlib.import_module(module_name)
        except Exception:  # noqa: BLE001 - not a module (the name goes on with a class inside it), or it fails to import
            module_name, _, outer = module_name.rpartition(".")
            attr = f"{outer}.{attr}"
            continue
        for part in attr.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj
    return None


def refused_types(type_names) -> list[str]:
    """The names among ``type_names`` (as ``skops.io.get_untrusted_types`` reports them) that the allow-list refuses.

    Accepted: classes under ``ALLOWED_MODULE_PREFIXES`` outside ``EXCLUDED_MODULE_PARTS``
    (see the module docstring). A name is checked by its text before its module is imported.
    """
    refused = []
    for name in type_names:
        if name in ALLOWED_NAMES:
            continue
        parts = name.split(".")
        if not name.startswith(ALLOWED_MODULE_PREFIXES) or EXCLUDED_MODULE_PARTS.intersection(parts):
            refused.append(name)
            continue
        if not isinstance(_resolve(name), type):
            refused.append(name)
    return refused


def _untrusted_types(data: bytes) -> list[str]:
    import skops.io as sio

    return sio.get_untrusted_types(data=data)


def _refusal(refused: list[str], source: str) -> str:
    return (f"{source} holds {', '.join(sorted(refused))}, which a model artifact may not hold: artifacts load only "
            f"scikit-learn, numpy and scipy classes (modules {', '.join(p + '*' for p in ALLOWED_MODULE_PREFIXES)}) and "
            "the functions skops trusts (numpy/scipy ufuncs). Replace custom code in the estimator with scikit-learn "
            "steps (e.g. FunctionTransformer(func=numpy.log1p)).")


# --- tree structures --------------------------------------------------------------------------------


def _walk(obj, owner, seen: set[int]):
    """(object, nearest enclosing object with ``n_features_in_``) for every object reachable from ``obj``."""
    if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool, type)):
        return
    seen.add(id(obj))
    if hasattr(obj, "n_features_in_") and not isinstance(obj, np.ndarray):
        owner = obj
    yield obj, owner
    if isinstance(obj, dict):
        children = obj.values()
    elif isinstance(obj, (list, tuple, set)):
        children = obj
    elif isinstance(obj, np.ndarray):
        children = obj.ravel() if obj.dtype == object else ()
    else:
        children = getattr(obj, "__dict__", {}).values()
    for child in children:
        yield from _walk(child, owner, seen)


def _check_links(where: str, n: int, index: np.ndarray, left: np.ndarray, right: np.ndarray, feature: np.ndarray,
                 n_features: int) -> str | None:
    """Why the split nodes ``index`` of a tree of ``n`` nodes are unsafe to follow, or None.

    scikit-learn stores a tree parent first, so both children of node i lie in (i, n): every walk
    from the root ends at a leaf inside the array. Features must lie in [0, n_features).
    """
    bad = (left <= index) | (left >= n) | (right <= index) | (right >= n)
    if bad.any():
        return f"{where}: node {int(index[bad][0])} links to a child outside the tree"
    bad = (feature < 0) | (feature >= n_features)
    if bad.any():
        return f"{where}: node {int(index[bad][0])} splits on feature {int(feature[bad][0])} of {n_features}"
    return None


def _tree_problem(tree, owner) -> str | None:
    """Why an ``sklearn.tree._tree.Tree`` is unsafe for its estimator ``owner``, or None."""
    n_features = int(getattr(owner, "n_features_in_", -1))
    if int(tree.n_features) != n_features:
        return f"a decision tree reads {int(tree.n_features)} features but its estimator takes {n_features}"
    n = int(tree.node_count)
    left = np.asarray(tree.children_left, dtype=np.int64)
    right = np.asarray(tree.children_right, dtype=np.int64)
    feature = np.asarray(tree.feature, dtype=np.int64)
    if n < 1 or not len(left) == len(right) == len(feature) == n:
        return "a decision tree has malformed node arrays"
    split = np.flatnonzero(left != -1)  # -1: sklearn's TREE_LEAF
    return _check_links("a decision tree", n, split, left[split], right[split], feature[split], n_features)


def _predictor_problem(predictor, owner) -> str | None:
    """Why a HistGradientBoosting ``TreePredictor`` is unsafe for its estimator ``owner``, or None."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = predictor.nodes
    if not isinstance(nodes, np.ndarray) or nodes.dtype != PREDICTOR_RECORD_DTYPE or nodes.ndim != 1 or not len(nodes):
        return "a gradient-boosting tree has a malformed node array"
    n_features = int(getattr(owner, "n_features_in_", -1))
    split = np.flatnonzero(nodes["is_leaf"] == 0)
    at = nodes[split]
    feature = at["feature_idx"].astype(np.int64)
    problem = _check_links("a gradient-boosting tree", len(nodes), split, at["left"].astype(np.int64),
                           at["right"].astype(np.int64), feature, n_features)
    if problem:
        return problem
    categorical = at["is_categorical"].astype(bool)
    if categorical.any():
        bitsets = predictor.raw_left_cat_bitsets
        if not isinstance(bitsets, np.ndarray) or bitsets.ndim != 2 or bitsets.shape[1] != 8 \
                or bitsets.dtype != np.uint32:
            return "a gradient-boosting tree has malformed category bitsets"
        if (at["bitset_idx"][categorical].astype(np.int64) >= len(bitsets)).any():
            return "a gradient-boosting tree has a categorical split without its bitset"
        is_categorical = getattr(getattr(owner, "_bin_mapper", None), "is_categorical_", None)
        if is_categorical is None or len(is_categorical) != n_features or \
                not np.asarray(is_categorical, dtype=bool)[feature[categorical]].all():
            return "a gradient-boosting tree splits by category on a feature that is not categorical"
    return None


def check_tree_structures(estimator) -> str | None:
    """Why the trees inside ``estimator`` are unsafe to predict with (see the module docstring), or None."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    for obj, owner in _walk(estimator, None, set()):
        if isinstance(obj, Tree):
            problem = _tree_problem(obj, owner)
        elif isinstance(obj, TreePredictor):
            problem = _predictor_problem(obj, owner)
        else:
            continue
        if problem:
            return problem
    return None


# --- reading and writing ------------------------------------------------------------------------------


def _load_skops(data: bytes, source: str, refuse: type[MlopsError]):
    """Build the object in skops ``data`` under the allow-list; raise ``refuse`` naming ``source`` otherwise."""
    import skops.io as sio

    try:
        untrusted = _untrusted_types(data)
    except Exception as exc:  # not a readable skops file
        raise refuse(f"{source} is not a readable skops file: {exc}", path=source) from exc
    refused = refused_types(untrusted)
    if refused:
        raise refuse(_refusal(refused, source), path=source, types=refused)
    try:
        obj = sio.loads(data, trusted=untrusted)
    except Exception as exc:
        raise refuse(f"{source} could not be loaded with skops: {type(exc).__name__}: {exc}", path=source) from exc
    try:
        problem = check_tree_structures(obj)
    except RecursionError:
        problem = "its objects are nested too deeply to check"
    if problem:
        raise refuse(f"{source} is refused: {problem}. The file was not written by scikit-learn as it is.",
                     path=source)
    return obj


def _require_predict(obj, source: str, refuse: type[MlopsError]):
    if not hasattr(obj, "predict"):
        raise refuse(f"{source} holds a {type(obj).__name__}, not a fitted scikit-learn estimator (no predict()).",
                     path=source)
    return obj


def serialize(estimator) -> ArtifactBytes:
    """The skops bytes of ``estimator`` and their sha256; raise InvalidInputError when it holds types the allow-list
    refuses (an artifact that could not be loaded again is never written)."""
    import skops.io as sio

    try:
        data = sio.dumps(estimator)
    except Exception as exc:
        raise InvalidInputError(f"The estimator cannot be saved as a skops artifact: {type(exc).__name__}: {exc}") \
            from exc
    refused = refused_types(_untrusted_types(data))
    if refused:
        raise InvalidInputError(_refusal(refused, f"The estimator ({type(estimator).__name__})"), types=refused)
    return ArtifactBytes(data, hashlib.sha256(data).hexdigest())


def check_serialized(artifact: ArtifactBytes, *, what: str = "artifact"):
    """Load ``artifact`` back as a load from disk would; return the estimator. Raise IntegrityError when it does not
    load under the allow-list or cannot predict."""
    if hashlib.sha256(artifact.data).hexdigest() != artifact.sha256:
        raise IntegrityError(f"The {what} changed in memory after it was serialised; nothing was written.")
    return _require_predict(_load_skops(artifact.data, f"The {what}", IntegrityError), f"The {what}", IntegrityError)


def save_artifact(estimator, root: Path, model: str, version: int) -> tuple[str, str]:
    """Write ``estimator`` (or its ``ArtifactBytes`` from ``serialize``) atomically under ``root`` as a skops file.

    Returns (path relative to ``root``, sha256 of the file). Raises InvalidInputError (see ``serialize``) and
    IntegrityError when the file on disk does not hash to the bytes written.
    """
    artifact = estimator if isinstance(estimator, ArtifactBytes) else serialize(estimator)
    folder = root / model
    folder.mkdir(parents=True, exist_ok=True)
    rel = f"{model}/v{version}-{uuid.uuid4().hex[:8]}{ARTIFACT_SUFFIX}"
    tmp = root / f"{rel}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(artifact.data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, root / rel)
    except OSError as exc:  # e.g. a full disk: leave no partial file behind
        tmp.unlink(missing_ok=True)
        raise storage_error(exc, f"writing the artifact {root / rel}") from exc
    written = sha256_file(root / rel)
    if written != artifact.sha256:
        remove_artifact(root, rel)
        raise IntegrityError(f"The artifact written to {root / rel} does not hash to the bytes that were saved.",
                             path=str(root / rel))
    return rel, written


def load_artifact(root: Path, rel: str, expected_sha256: str, *, what: str = "artifact"):
    """Load an artifact after checking its sha256; return the object it holds.

    ``.skops`` files load under the allow-list; ``.joblib`` files (written by earlier versions) are
    unpickled only when their hash matches. Raises NotFoundError when the file is gone and
    IntegrityError when its hash differs from the registered one (then nothing is loaded), when it
    holds types outside the allow-list, or when its format is unknown.
    """
    path = root / rel
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFoundError(f"The {what} file {path} is missing.", path=str(path)) from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise IntegrityError(
            f"Refusing to load the {what} {path}: its sha256 is {actual[:12]}..., but the registry recorded "
            f"{expected_sha256[:12]}.... The file was changed after it was registered; restore it or retrain.",
            path=str(path), expected=expected_sha256, actual=actual,
        )
    if path.suffix == ARTIFACT_SUFFIX:
        return _load_skops(data, f"The {what} {path}", IntegrityError)
    if path.suffix == LEGACY_SUFFIX:
        import joblib

        # A pickle, but one this software wrote: its sha256 was recorded then and matches now.
        try:
            return joblib.load(io.BytesIO(data))
        except Exception as exc:
            raise IntegrityError(f"The {what} {path} could not be loaded: {type(exc).__name__}: {exc}",
                                 path=str(path)) from exc
    raise IntegrityError(f"The {what} {path} has an unknown format ({path.suffix or 'no suffix'}); artifacts are "
                         f"{ARTIFACT_SUFFIX} files (or {LEGACY_SUFFIX} from earlier versions).", path=str(path))


def verify_artifact(root: Path, rel: str, expected_sha256: str, *, what: str = "artifact"):
    """Check an artifact before it goes into production: it exists, hashes to ``expected_sha256`` and loads as an
    estimator with ``predict``. Returns the estimator; raises IntegrityError naming the file for any failure."""
    path = root / rel
    try:
        estimator = load_artifact(root, rel, expected_sha256, what=what)
    except NotFoundError as exc:
        raise IntegrityError(f"Refusing to deploy the {what}: its file {path} is missing. Restore it or retrain.",
                             path=str(path)) from exc
    return _require_predict(estimator, f"The {what} {path}", IntegrityError)


def remove_artifact(root: Path, rel: str) -> None:
    """Delete an artifact file if it exists (cleanup after a failed registration)."""
    try:
        (root / rel).unlink()
    except FileNotFoundError:
        pass


def load_estimator_file(path: str | os.PathLike, *, trust_pickle: bool = False):
    """Load a fitted scikit-learn estimator a user hands over; return it.

    A skops file (``skops.io.dump``) loads under the allow-list. A pickle or joblib file is refused unless
    ``trust_pickle`` (loading it runs any code it holds; only for files the caller built). The format is told
    by the file's content, not its name. Raises NotFoundError (no file), InvalidInputError (a pickle without
    ``trust_pickle``, types outside the allow-list, not an estimator, unreadable).
    """
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            data = f.read()
    except FileNotFoundError as exc:
        raise NotFoundError(f"The artifact file {p} does not exist.", path=p) from exc
    except OSError as exc:
        raise InvalidInputError(f"Cannot read the artifact file {p}: {exc}.", path=p) from exc
    if zipfile.is_zipfile(io.BytesIO(data)):
        return _require_predict(_load_skops(data, f"The artifact file {p}", InvalidInputError), p, InvalidInputError)
    if not trust_pickle:
        raise InvalidInputError(
            f"Refusing to load {p}: it is not a skops file (it looks like a pickle or joblib file), and loading a "
            "pickle runs any code inside it. Save the fitted estimator with skops.io.dump(estimator, 'model.skops') "
            "and pass that file, or, only for a file you built yourself, add --trust-pickle (admin only; "
            "API: trust_pickle=True).", path=p)
    import joblib

    try:
        est = joblib.load(io.BytesIO(data))
    except Exception as exc:
        raise InvalidInputError(f"Cannot load {p} with joblib: {type(exc).__name__}: {exc}. Save the fitted "
                                "estimator with skops.io.dump().", path=p) from exc
    return _require_predict(est, p, InvalidInputError)

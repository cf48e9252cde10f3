"""Training and evaluating scikit-learn models.

The default pipeline (used by ``register`` without ``--artifact``, and by retrains of a
model whose champion used it): numeric columns are imputed with their median;
categorical columns are imputed with the constant ``"__missing__"`` and one-hot
encoded (unseen categories at prediction time encode as all zeros); then a
``HistGradientBoostingClassifier`` / ``HistGradientBoostingRegressor`` with
scikit-learn's defaults and a fixed ``random_state``. Gradient-boosted trees are the
usual strong baseline on tabular data and need no scaling.

Holdout: 20% of the rows, stratified by class for classification, drawn with the seed.

Metrics (the definitions of ``sklearn.metrics``): classification: accuracy, precision,
recall, F1 (binary: of the positive class; multiclass: macro average), ROC AUC (binary:
the positive-class probability; multiclass: one-vs-rest macro), log loss, positive rate.
Regression: MAE, RMSE, R², MAPE (only over rows whose true value is not 0). Binary
metrics are computed here from one confusion count and the rank-sum identity (equal to
``sklearn.metrics`` to 1e-12, tested in ``tests/test_training_metrics.py``); multiclass
and regression metrics call ``sklearn.metrics``.
For a binary model the positive class is the larger of the two labels in sort order
(``1`` of ``0/1``, ``yes`` of ``no/yes``), as in scikit-learn.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlops_core.data.schema import FeatureSpec, coerce_features
from mlops_core.errors import InvalidInputError

HOLDOUT_FRACTION = 0.2
MIN_TRAINING_ROWS = 20
#: The longest data window, schedule or cool-down (in days) a policy or retrain accepts: a century already reaches
#: before the earliest accepted timestamp, and far longer spans overflow the date arithmetic that uses them.
MAX_SPAN_DAYS = 36_500


def default_pipeline(task: str, features: list[FeatureSpec], seed: int = 0, **hyperparameters):
    """Return an unfitted default Pipeline for ``task`` over ``features``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric = [f.name for f in features if f.kind == "numeric"]
    categorical = [f.name for f in features if f.kind == "categorical"]
    transformers = []
    if numeric:
        transformers.append(("numeric", SimpleImputer(strategy="median"), numeric))
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            )
        )
    pre = ColumnTransformer(transformers, remainder="drop")
    params = {"random_state": seed, **hyperparameters}
    est = HistGradientBoostingClassifier(**params) if task == "classification" else HistGradientBoostingRegressor(**params)
    return Pipeline([("preprocess", pre), ("model", est)])


def estimator_of(pipeline):
    """Return the final estimator of a Pipeline (or the object itself)."""
    steps = getattr(pipeline, "steps", None)
    return steps[-1][1] if steps else pipeline


def describe(pipeline) -> tuple[str, dict]:
    """Return (algorithm name, JSON-safe hyperparameters of the final estimator)."""
    est = estimator_of(pipeline)
    params = {}
    for k, v in est.get_params(deep=False).items():
        if v is None or isinstance(v, (bool, int, float, str)):
            params[k] = v
        else:
            params[k] = repr(v)
    return type(est).__name__, params


def positive_class_of(classes: list[str]) -> str | None:
    """The positive class of a binary problem (larger label in sort order); None for multiclass."""
    return sorted(classes)[-1] if len(classes) == 2 else None


def prepare_target(y: pd.Series, task: str, target: str) -> pd.Series:
    """Return the target as strings (classification) or floats (regression); raise for unusable targets."""
    if y.isna().all():
        raise InvalidInputError(f"The target column {target!r} has no values (all empty).", column=target)
    if task == "classification":
        y = y.dropna()
        if pd.api.types.is_float_dtype(y) and (y == y.round()).all():
            y = y.astype("int64")
        y = y.astype(str)
        classes = sorted(y.unique())
        if len(classes) < 2:
            raise InvalidInputError(
                f"The target column {target!r} has one class only ({classes[0]!r}); a classifier needs at least two.",
                column=target, classes=classes,
            )
        return y
    vals = pd.to_numeric(y, errors="coerce")
    bad = vals.isna() & y.notna()
    if bad.any():
        first = y[bad].head(3).tolist()
        raise InvalidInputError(
            f"The target column {target!r} of a regression model must be numeric; found {first!r}.", column=target
        )
    vals = vals.dropna().astype(float)
    if vals.nunique() < 2:
        raise InvalidInputError(f"The target column {target!r} is constant; there is nothing to learn.", column=target)
    return vals


def split_holdout(X: pd.DataFrame, y: pd.Series, task: str, seed: int = 0, fraction: float = HOLDOUT_FRACTION):
    """Split into train and holdout (stratified for classification when every class has 2+ rows)."""
    from sklearn.model_selection import train_test_split

    stratify = None
    if task == "classification" and y.value_counts().min() >= 2:
        stratify = y
    return train_test_split(X, y, test_size=fraction, random_state=seed, stratify=stratify)


def scores_for(pipeline, X: pd.DataFrame, positive_class: str | None) -> np.ndarray | None:
    """Probability of the positive class for each row (binary classifiers with predict_proba), else None."""
    if positive_class is None or not hasattr(pipeline, "predict_proba"):
        return None
    classes = [str(c) for c in getattr(pipeline, "classes_", [])]
    if positive_class not in classes:
        return None
    return pipeline.predict_proba(X)[:, classes.index(positive_class)]


def predict(pipeline, X: pd.DataFrame, task: str, positive_class: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (predictions, positive-class scores or None); classification labels come back as strings."""
    pred = pipeline.predict(X)
    if task == "classification":
        pred = as_labels(pred).astype(object, copy=False)
    else:
        pred = np.asarray(pred, dtype=float)
    return pred, scores_for(pipeline, X, positive_class)


def as_labels(values) -> np.ndarray:
    """Class labels as strings: an object array of Python strings is returned as it is, anything else converted."""
    a = np.asarray(values)
    if a.dtype == object and pd.api.types.infer_dtype(a, skipna=False) == "string":
        return a
    return a.astype(str)


def _clean(d: dict) -> dict:
    return {k: (float(v) if v is not None and math.isfinite(float(v)) else None) for k, v in d.items()}


def classification_metrics(y_true, y_pred, scores=None, positive_class: str | None = None, proba=None, classes=None) -> dict:
    """Classification metrics, equal to sklearn.metrics' (see the module docstring for the definitions).

    Binary models (a positive class, at most two labels): the counting metrics come from
    one confusion count, ROC AUC from the rank-sum (Mann-Whitney) identity with average
    ranks for ties, log loss from its formula; each equals the sklearn.metrics function
    named in the code (tested to 1e-12) without its per-call input checks, which cost more
    than the arithmetic on a holdout. Multiclass models call sklearn.metrics directly.
    """
    from sklearn import metrics as skm

    y_true = as_labels(y_true)
    y_pred = as_labels(y_pred)
    binary = positive_class is not None and len(set(pd.unique(y_true)) | set(pd.unique(y_pred))) <= 2
    if binary:
        return _clean(binary_metrics(y_true == positive_class, y_pred == positive_class, scores))
    out = {"accuracy": skm.accuracy_score(y_true, y_pred)}
    kw = dict(average="macro", zero_division=0)
    out["precision"] = skm.precision_score(y_true, y_pred, **kw)
    out["recall"] = skm.recall_score(y_true, y_pred, **kw)
    out["f1"] = skm.f1_score(y_true, y_pred, **kw)
    if positive_class is not None:  # a binary model facing a third label: its positive class against the rest
        out["positive_rate"] = float(np.mean(y_pred == positive_class))
        if scores is not None:
            ranked = binary_metrics(y_true == positive_class, y_pred == positive_class, scores)
            out["roc_auc"], out["log_loss"] = ranked["roc_auc"], ranked["log_loss"]
    if proba is not None and classes is not None and len(np.unique(y_true)) > 1:
        try:
            out["roc_auc"] = skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
            out["log_loss"] = skm.log_loss(y_true, proba, labels=classes)
        except ValueError:
            pass
    return _clean(out)


def binary_metrics(is_pos_true, is_pos_pred, scores=None) -> dict:
    """Binary metrics of the positive class from boolean truth and prediction arrays (and positive-class scores).

    accuracy = ``accuracy_score``; precision, recall, f1 = ``precision_score``/``recall_score``/
    ``f1_score`` with ``zero_division=0``; positive_rate = share predicted positive;
    roc_auc = ``roc_auc_score`` (None with one class only); log_loss = ``log_loss`` of the
    scores clipped to [1e-15, 1 - 1e-15].
    """
    from scipy.stats import rankdata

    t = np.asarray(is_pos_true, dtype=bool)
    p = np.asarray(is_pos_pred, dtype=bool)
    n = len(t)
    tn, fp, fn, tp = (int(c) for c in np.bincount(2 * t + p, minlength=4))  # code = 2 * truth + prediction

    def ratio(a, b):
        return a / b if b else 0.0

    out = {"accuracy": ratio(tp + tn, n) if n else float("nan"), "precision": ratio(tp, tp + fp),
           "recall": ratio(tp, tp + fn), "f1": ratio(2 * tp, 2 * tp + fp + fn), "positive_rate": ratio(tp + fp, n)}
    if scores is not None:
        s = np.asarray(scores, dtype=float)
        n_pos = tp + fn
        n_neg = n - n_pos
        if n_pos and n_neg:
            rank_sum = rankdata(s)[t].sum()
            out["roc_auc"] = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        else:
            out["roc_auc"] = None
        c = np.clip(s, 1e-15, 1 - 1e-15)
        out["log_loss"] = float(-np.mean(np.where(t, np.log(c), np.log1p(-c)))) if n else None
    return out


def regression_metrics(y_true, y_pred) -> dict:
    """Regression metrics from sklearn.metrics; MAPE over rows with a non-zero true value."""
    from sklearn import metrics as skm

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    out = {
        "mae": skm.mean_absolute_error(y_true, y_pred),
        "rmse": math.sqrt(skm.mean_squared_error(y_true, y_pred)),
        "r2": skm.r2_score(y_true, y_pred) if len(y_true) > 1 else None,
    }
    nz = y_true != 0
    out["mape"] = skm.mean_absolute_percentage_error(y_true[nz], y_pred[nz]) if nz.any() else None
    return _clean(out)


def evaluate(pipeline, X: pd.DataFrame, y: pd.Series, task: str, positive_class: str | None) -> dict:
    """Return the metrics of ``pipeline`` on (X, y) for its task."""
    pred, scores = predict(pipeline, X, task, positive_class)
    if task == "regression":
        return regression_metrics(y, pred)
    proba = classes = None
    if positive_class is None and hasattr(pipeline, "predict_proba"):
        proba = pipeline.predict_proba(X)
        classes = [str(c) for c in pipeline.classes_]
    return classification_metrics(y, pred, scores, positive_class, proba=proba, classes=classes)


@dataclass
class TrainingResult:
    """A fitted pipeline with the data facts and metrics the registry records."""

    pipeline: object
    algorithm: str
    hyperparameters: dict
    train_rows: int
    holdout_rows: int
    training_metrics: dict
    holdout_metrics: dict
    X_holdout: pd.DataFrame = field(repr=False)
    y_holdout: pd.Series = field(repr=False)
    #: (predictions, positive scores) on ``X_holdout`` when already computed, so the registry need not predict again.
    holdout_outputs: tuple | None = field(default=None, repr=False)
    #: The score calibration fitted on the holdout (for performance estimation), once computed; False: none applies.
    holdout_calibration: object = field(default=None, repr=False)


def fit_and_evaluate(
    X: pd.DataFrame, y: pd.Series, task: str, features: list[FeatureSpec], positive_class: str | None,
    *, seed: int = 0, pipeline=None, hyperparameters: dict | None = None, fitted: bool = False,
) -> TrainingResult:
    """Split off a holdout, fit ``pipeline`` (default pipeline when None) unless ``fitted``, and evaluate both parts.

    ``hyperparameters`` set parameters of the default pipeline's final estimator (ignored when
    ``pipeline`` is given). Raises InvalidInputError when there are too few rows, a hyperparameter
    is unknown or has a value the estimator refuses, or a given fitted model cannot predict on
    these features.
    """
    if len(X) < MIN_TRAINING_ROWS:
        raise InvalidInputError(
            f"Only {len(X)} labelled rows; at least {MIN_TRAINING_ROWS} are needed to train and hold out a test set."
        )
    X = coerce_features(X, features)
    X_tr, X_ho, y_tr, y_ho = split_holdout(X, y, task, seed)
    if pipeline is None:
        pipeline = set_estimator_params(default_pipeline(task, features, seed), hyperparameters or {})
    if not fitted:
        try:
            pipeline.fit(X_tr, y_tr)
        except (ValueError, TypeError) as exc:
            if not hyperparameters:
                raise
            # scikit-learn checks parameter values only when fitting (InvalidParameterError is a ValueError)
            raise InvalidInputError(f"The hyperparameters {hyperparameters} cannot be used: {exc}") from exc
    try:
        train_m = evaluate(pipeline, X_tr, y_tr, task, positive_class)
        hold_m = evaluate(pipeline, X_ho, y_ho, task, positive_class)
    except Exception as exc:
        if fitted:
            raise InvalidInputError(
                f"The given model cannot predict on the training data's features ({', '.join(X.columns)}): {exc}"
            ) from exc
        raise
    algorithm, hp = describe(pipeline)
    return TrainingResult(
        pipeline=pipeline, algorithm=algorithm, hyperparameters=hp, train_rows=len(X_tr), holdout_rows=len(X_ho),
        training_metrics=train_m, holdout_metrics=hold_m, X_holdout=X_ho, y_holdout=y_ho,
    )


def time_split(frame: pd.DataFrame, fraction: float = HOLDOUT_FRACTION) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows already ordered by time into (older part, most recent ``fraction``) — a time-based holdout.

    At least one row lands on each side when there are two or more rows.
    """
    n = len(frame)
    n_hold = round(n * fraction)
    if n >= 2:
        n_hold = min(max(n_hold, 1), n - 1)
    cut = n - n_hold
    return frame.iloc[:cut], frame.iloc[cut:]


def set_estimator_params(pipeline, params: dict):
    """Set hyperparameters of the final estimator of ``pipeline`` (a Pipeline or a bare estimator); return it.

    Raises InvalidInputError naming the valid parameters when one is unknown.
    """
    if not params:
        return pipeline
    est = estimator_of(pipeline)
    valid = est.get_params(deep=False)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise InvalidInputError(
            f"Unknown hyperparameter(s) {', '.join(unknown)} for {type(est).__name__}; valid: {', '.join(sorted(valid))}.",
            unknown=unknown,
        )
    est.set_params(**params)
    return pipeline


def evaluate_with_outputs(pipeline, X: pd.DataFrame, y: pd.Series, task: str, positive_class: str | None) -> tuple[dict, tuple]:
    """Like ``evaluate``, but also return the (predictions, positive scores) it computed, for reuse."""
    pred, scores = predict(pipeline, X, task, positive_class)
    if task == "regression":
        return regression_metrics(y, pred), (pred, scores)
    if positive_class is None:  # multiclass metrics need every class's probability
        return evaluate(pipeline, X, y, task, positive_class), (pred, scores)
    return classification_metrics(y, pred, scores, positive_class), (pred, scores)

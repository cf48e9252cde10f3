"""training.classification_metrics and schema.coerce_features against their references (sklearn, the plain conversion)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mlops_core.data.schema import FeatureSpec, coerce_features
from mlops_core.lifecycle import training


def _sklearn_binary(y_true, y_pred, scores, pos):
    yb = (np.asarray(y_true) == pos).astype(int)
    kw = dict(pos_label=pos, average="binary", zero_division=0)
    out = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, labels=sorted({*y_true, *y_pred, pos}), **kw),
        "recall": skm.recall_score(y_true, y_pred, labels=sorted({*y_true, *y_pred, pos}), **kw),
        "f1": skm.f1_score(y_true, y_pred, labels=sorted({*y_true, *y_pred, pos}), **kw),
        "positive_rate": float(np.mean(np.asarray(y_pred) == pos)),
        "log_loss": skm.log_loss(yb, np.clip(scores, 1e-15, 1 - 1e-15), labels=[0, 1]),
        "roc_auc": skm.roc_auc_score(yb, scores) if 0 < yb.sum() < len(yb) else None,
    }
    return out


CASES = {
    "random": lambda rng, n: (rng.random(n) < 0.3, rng.random(n)),
    "ties": lambda rng, n: (rng.random(n) < 0.5, np.round(rng.random(n), 1)),  # many tied scores
    "separable": lambda rng, n: (np.arange(n) % 2 == 0, (np.arange(n) % 2 == 0) * 0.9 + 0.05),
    "one_class": lambda rng, n: (np.ones(n, dtype=bool), rng.random(n)),
    "extreme": lambda rng, n: (rng.random(n) < 0.5, rng.choice([0.0, 1.0, 1e-300, 0.5], n)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("labels", [("0", "1"), ("no", "yes")])
def test_binary_metrics_equal_sklearn(case, labels):
    rng = np.random.default_rng(len(case))
    neg, pos = labels
    truth, scores = CASES[case](rng, 5000)
    y_true = np.where(truth, pos, neg)
    y_pred = np.where(scores >= 0.5, pos, neg)
    ours = training.classification_metrics(pd.Series(y_true), y_pred, scores, pos)
    ref = _sklearn_binary(y_true, y_pred, scores, pos)
    assert set(ours) == set(ref)
    for k, v in ref.items():
        if v is None:
            assert ours[k] is None, k
        else:
            assert ours[k] == pytest.approx(v, abs=1e-12), k


def test_binary_metrics_when_nothing_is_predicted_positive():
    y_true = np.array(["0", "1", "1", "0"])
    y_pred = np.array(["0", "0", "0", "0"])
    ours = training.classification_metrics(y_true, y_pred, None, "1")
    assert ours["precision"] == 0.0 == skm.precision_score(y_true, y_pred, pos_label="1", zero_division=0)
    assert ours["f1"] == 0.0 and ours["recall"] == 0.0 and ours["accuracy"] == 0.5
    assert "roc_auc" not in ours and ours["positive_rate"] == 0.0


def test_multiclass_metrics_equal_sklearn():
    rng = np.random.default_rng(3)
    classes = ["a", "b", "c"]
    proba = rng.dirichlet([1, 1, 1], 3000)
    y_true = rng.choice(classes, 3000)
    y_pred = np.array(classes)[proba.argmax(1)]
    ours = training.classification_metrics(y_true, y_pred, None, None, proba=proba, classes=classes)
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    assert ours["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"), abs=1e-12)
    assert ours["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes),
                                            abs=1e-12)
    assert ours["log_loss"] == pytest.approx(skm.log_loss(y_true, proba, labels=classes), abs=1e-12)


def test_binary_model_facing_a_third_label_scores_its_positive_class_against_the_rest():
    y_true = np.array(["0", "1", "2", "1", "0", "2"])
    y_pred = np.array(["0", "1", "1", "1", "0", "0"])
    scores = np.array([0.1, 0.8, 0.6, 0.9, 0.2, 0.4])
    ours = training.classification_metrics(y_true, y_pred, scores, "1")
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert ours["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert ours["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true == "1", scores))


def _plain_coerce(df, specs):
    """The straightforward conversion coerce_features must agree with: numbers as float64; categories as
    Python strings with every missing value as NaN."""
    out = df.copy()
    for s in specs:
        if s.kind == "numeric":
            out[s.name] = pd.to_numeric(out[s.name], errors="coerce").astype("float64")
        else:
            col = out[s.name]
            out[s.name] = pd.Series([np.nan if pd.isna(v) else str(v) for v in col], index=col.index, dtype=object)
    return out


def test_coerce_features_equals_the_plain_conversion_and_leaves_its_input_alone():
    df = pd.DataFrame({
        "f": [1.0, np.nan, 3.0], "i": [1, 2, 3], "s": ["1", "x", None],
        "o": pd.Series(["a", None, "b"], dtype=object), "st": pd.Series(["a", None, "b"], dtype="str"),
        "ci": [1, 2, 3], "mix": pd.Series(["a", 1, None], dtype=object), "cat": pd.Categorical(["a", "b", None]),
        "none": pd.Series([None, None, None], dtype=object),
    })
    kinds = {"f": "numeric", "i": "numeric", "s": "numeric"}
    specs = [FeatureSpec(c, kinds.get(c, "categorical"), "x") for c in df.columns]
    before = df.copy()
    ours, plain = coerce_features(df, specs), _plain_coerce(df, specs)
    pd.testing.assert_frame_equal(df, before)
    for c in df.columns:
        assert ours[c].dtype == plain[c].dtype, c
        assert [type(v) for v in ours[c]] == [type(v) for v in plain[c]], c
        assert ours[c].astype(str).tolist() == plain[c].astype(str).tolist(), c
    ours.loc[0, "o"] = "changed"
    assert df.loc[0, "o"] == "a"


def test_coerced_missing_categories_are_imputed_by_the_default_pipeline():
    """None in a user's DataFrame must reach the imputer as NaN, or it would become a category of its own."""
    from sklearn.impute import SimpleImputer

    df = pd.DataFrame({"c": pd.Series(["a", None, "b", np.nan], dtype=object)})
    X = coerce_features(df, [FeatureSpec("c", "categorical", "x")])
    filled = SimpleImputer(strategy="constant", fill_value="__missing__").fit_transform(X).ravel().tolist()
    assert filled == ["a", "__missing__", "b", "__missing__"]

"""A/B test of champion vs challenger: statistics match scipy, decisions follow the documented rules."""
from __future__ import annotations

import numpy as np
import pytest
from _ops_support import MODEL, append_log, build, labelled_frame, retrain_now
from scipy.stats import chi2_contingency, ttest_ind

from mlops_core import ControlRoom, Identity
from mlops_core.errors import InvalidInputError
from mlops_core.lifecycle import abtest


def correct_predictions(labels, accuracy, seed):
    rng = np.random.default_rng(seed)
    flip = rng.random(len(labels)) > accuracy
    return np.where(flip, 1 - labels, labels)


@pytest.fixture
def ab_db(db):
    build(db, n=600)
    assert retrain_now(db).status == "succeeded"  # v2 exists
    a, b = labelled_frame(1000, 11), labelled_frame(1000, 12)
    append_log(db, a, prefix="a", version=1, predictions=correct_predictions(a["default"].to_numpy(), 0.70, 1))
    append_log(db, b, prefix="b", version=2, predictions=correct_predictions(b["default"].to_numpy(), 0.78, 2))
    return db


def test_two_proportion_test_matches_scipy_and_challenger_wins(ab_db):
    r = ControlRoom(ab_db).model(MODEL).ab_test(2)
    assert r.champion == 1 and r.metric == "accuracy"
    # the 600 rows logged by build() for v1 carry prediction "0"; they belong to v1's arm too
    from conftest import log_view

    from mlops_core.store import Store
    from mlops_core.store import training_data as tdstore

    with Store(ab_db).engine() as con:
        counts = tdstore.arm_outcomes(con, log_view(ab_db, MODEL), [1, 2], None, None).set_index("arm")
    n1, c1, n2, c2 = counts.loc[1, "n"], counts.loc[1, "correct"], counts.loc[2, "n"], counts.loc[2, "correct"]
    assert (r.n_champion, r.n_challenger) == (n1, n2) == (1600, 1000)
    chi2, p, _, _ = chi2_contingency([[c1, n1 - c1], [c2, n2 - c2]], correction=False)
    assert r.p_value == pytest.approx(p, rel=1e-9) and r.statistic ** 2 == pytest.approx(chi2, rel=1e-9)
    assert r.challenger_value == pytest.approx(c2 / n2) and r.ci_low < r.difference < r.ci_high
    assert r.significant and r.challenger_wins and "may take over" in r.message

    _result, promo = ControlRoom(ab_db, identity=Identity("ab", 'admin')).model(MODEL).promote_if_better(2)
    assert promo.to_version == 2 and ControlRoom(ab_db).model(MODEL).production_version() == 2
    assert ControlRoom(ab_db).audit(MODEL).iloc[0].reason.startswith("A/B test: accuracy")


def test_not_enough_samples_or_not_significant_keeps_the_champion(ab_db):
    r = ControlRoom(ab_db).model(MODEL).ab_test(2, min_samples=5000)
    assert not r.challenger_wins and "Not enough labelled traffic" in r.message
    r = ControlRoom(ab_db).model(MODEL).ab_test(2, alpha=1e-300)
    assert not r.challenger_wins and "not significant" in r.message
    _res, promo = ControlRoom(ab_db, identity=Identity("ab", 'admin')).model(MODEL).promote_if_better(2, min_samples=5000)
    assert promo is None and ControlRoom(ab_db).model(MODEL).production_version() == 1
    with pytest.raises(InvalidInputError, match="is the champion"):
        ControlRoom(ab_db).model(MODEL).ab_test(1)


def test_welch_from_sums_matches_scipy_and_degenerate_input():
    rng = np.random.default_rng(0)
    a, b = np.abs(rng.normal(10, 3, 400)), np.abs(rng.normal(9.5, 4, 300))
    t, p, ma, mb = abtest.welch_from_sums(len(a), a.sum(), (a * a).sum(), len(b), b.sum(), (b * b).sum())
    ref = ttest_ind(b, a, equal_var=False)
    assert t == pytest.approx(ref.statistic, rel=1e-9) and p == pytest.approx(ref.pvalue, rel=1e-9)
    assert ma == pytest.approx(a.mean()) and mb == pytest.approx(b.mean())
    assert abtest.welch_from_sums(1, 1.0, 1.0, 5, 5.0, 5.0)[:2] == (None, None)
    assert abtest.welch_from_sums(3, 3.0, 3.0, 3, 6.0, 12.0)[:2] == (None, None)  # no variance in either arm
    assert abtest.two_proportion_ztest(0, 0, 5, 10) == (None, None)
    assert abtest.two_proportion_ztest(10, 10, 10, 10) == (None, None)


def test_a_challenger_whose_artifact_fails_its_check_is_not_promoted(ab_db):
    from mlops_core.config import artifacts_dir
    from mlops_core.errors import IntegrityError

    room = ControlRoom(ab_db, identity=Identity("ab", 'admin'))
    v2 = room.model(MODEL).versions()[1]
    path = artifacts_dir(ab_db) / v2.artifact_path
    path.write_bytes(path.read_bytes()[:-10])  # cut short after registration
    audit, history = len(room.audit(MODEL)), len(room.model(MODEL).deployment_history())
    with pytest.raises(IntegrityError, match=str(path).replace("\\", "\\\\")):
        room.model(MODEL).promote_if_better(2)
    assert room.model(MODEL).production_version() == 1 and room.model(MODEL).version(2).status == "candidate"
    assert len(room.audit(MODEL)) == audit and len(room.model(MODEL).deployment_history()) == history

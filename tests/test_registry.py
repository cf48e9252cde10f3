"""Registry operations: promote, rollback through the deployment history, compare, history frames."""
from __future__ import annotations

import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from _ops_support import MODEL, build, retrain_now
from mlops_core.lifecycle import registry, training
from mlops_core.lifecycle.artifacts import artifact_path
from mlops_core.errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError
from mlops_core.store import connect
from mlops_core.store import models as mstore
from mlops_core.store import training_data as tdstore


@pytest.fixture
def three_versions(db):
    """credit with v1 (production), v2 and v3 (candidates, v3 with other hyperparameters)."""
    build(db, concept="shifted", n=1200)
    for params in ({}, {"hyperparameters": {"max_iter": 20, "learning_rate": 0.3}}):
        run = retrain_now(db, **params)
        assert run.status == "succeeded", run.error
    return db


def statuses(db):
    return {v.version: v.status for v in registry.list_versions(MODEL, db=db)}


def test_promote_moves_alias_archives_previous_and_audits_in_one_step(three_versions):
    db = three_versions
    r = registry.promote(MODEL, 2, actor="alice", reason="better AUC", db=db)
    assert r["from_version"] == 1 and r["to_version"] == 2 and not r["forced"]
    assert statuses(db) == {1: "archived", 2: "production", 3: "candidate"}
    hist = registry.deployment_history(MODEL, db=db)
    assert list(hist["version"]) == [1, 2] and hist["ended_at"].isna().tolist() == [False, True]
    ev = registry.audit_log(MODEL, db=db).iloc[0]
    assert (ev.actor, ev.action, ev.from_version, ev.to_version, ev.reason) == ("alice", "promote", 1, 2, "better AUC")


def test_promote_refusals_leave_everything_as_it_was(three_versions):
    db = three_versions
    n_audit = len(registry.audit_log(MODEL, db=db))
    with pytest.raises(NotFoundError, match="no version 9. Versions: 1, 2, 3"):
        registry.promote(MODEL, 9, actor="a", db=db)
    with pytest.raises(ConflictError, match="already in production"):
        registry.promote(MODEL, 1, actor="a", db=db)
    with pytest.raises(NotFoundError, match="Unknown model"):
        registry.promote("nope", 1, actor="a", db=db)
    with connect(db) as con:
        mstore.set_version_status(con, MODEL, 3, "rejected")
    with pytest.raises(ConflictError, match="Pass force=True"):
        registry.promote(MODEL, 3, actor="a", db=db)
    assert len(registry.audit_log(MODEL, db=db)) == n_audit
    assert statuses(db)[1] == "production"
    r = registry.promote(MODEL, 3, actor="a", force=True, db=db)
    ev = registry.audit_log(MODEL, db=db).iloc[0]
    assert r["forced"] and '"forced": true' in ev.details and "forced" in ev.reason


def test_rollback_twice_walks_back_and_never_bounces(three_versions):
    db = three_versions
    registry.promote(MODEL, 2, actor="a", db=db)
    registry.promote(MODEL, 3, actor="a", db=db)
    assert registry.rollback_target(MODEL, db=db) == 2

    r = registry.rollback(MODEL, actor="bob", reason="v3 misbehaves", db=db)
    assert (r["from_version"], r["to_version"]) == (3, 2)
    assert statuses(db) == {1: "archived", 2: "production", 3: "archived"}
    r = registry.rollback(MODEL, actor="bob", db=db)  # the second rollback goes further back, not to v3
    assert (r["from_version"], r["to_version"]) == (2, 1)
    assert registry.production_version(MODEL, db=db) == 1
    with pytest.raises(ConflictError, match="no earlier production version"):
        registry.rollback(MODEL, actor="bob", db=db)

    hist = registry.deployment_history(MODEL, db=db)
    assert list(hist["action"]) == ["register", "promote", "promote", "rollback", "rollback"]
    audit = registry.audit_log(MODEL, db=db)
    rb = audit[audit["action"] == "rollback"]
    assert list(rb["to_version"]) == [1, 2] and set(rb["actor"]) == {"bob"}

    # a promotion after rollbacks starts new history: rolling back from it returns to v1
    registry.promote(MODEL, 3, actor="a", db=db)
    assert registry.rollback(MODEL, actor="a", db=db)["to_version"] == 1


def test_rollback_to_a_named_earlier_version_and_refusals(three_versions):
    db = three_versions
    with pytest.raises(ConflictError, match="no earlier production version"):
        registry.rollback(MODEL, actor="a", db=db)
    registry.promote(MODEL, 2, actor="a", db=db)
    registry.promote(MODEL, 3, actor="a", db=db)
    r = registry.rollback(MODEL, to=1, actor="a", db=db)
    assert (r["from_version"], r["to_version"]) == (3, 1)
    with pytest.raises(ConflictError, match="no earlier production version"):
        registry.rollback(MODEL, actor="a", db=db)  # v2 was skipped over by the named rollback
    with pytest.raises(ConflictError, match="already in production"):
        registry.rollback(MODEL, to=1, actor="a", db=db)
    registry.promote(MODEL, 2, actor="a", db=db)
    with pytest.raises(ConflictError, match="not an earlier production version"):
        registry.rollback(MODEL, to=3, actor="a", db=db)


def test_rollback_to_version_that_never_served_is_refused(db):
    build(db, n=800)
    for _ in range(2):
        run = retrain_now(db)
        assert run.status == "succeeded", run.error
    registry.promote(MODEL, 3, actor="a", db=db)
    with pytest.raises(ConflictError, match="not an earlier production version.*Use promote"):
        registry.rollback(MODEL, to=2, actor="a", db=db)
    with pytest.raises(NotFoundError):
        registry.rollback(MODEL, to=7, actor="a", db=db)


def test_production_stack_from_history():
    import pandas as pd

    h = pd.DataFrame({"alias": ["production"] * 6, "version": [1, 2, 3, 2, 4, 2],
                      "action": ["register", "promote", "promote", "rollback", "promote", "rollback"]})
    assert registry.production_stack(h) == [1, 2]


def test_tampered_artifact_is_refused(three_versions):
    db = three_versions
    v2 = registry.list_versions(MODEL, db=db)[1]
    path = artifact_path(db, v2.artifact_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="Refusing to load"):
        registry.load_model(MODEL, 2, db=db)
    c = registry.compare(MODEL, [1, 2], db=db)  # compare shows the others and says why v2 is missing
    assert "v2" in c.errors and "sha256" in c.errors["v2"] and c.holdout["v1"].notna().all()


def test_compare_scores_versions_on_the_same_recent_rows(three_versions):
    db = three_versions
    c = registry.compare(MODEL, [3, 1], db=db)
    assert c.versions == [1, 3] and list(c.holdout.columns) == ["v1", "v3"]
    assert "240 most recent labelled predictions" in c.holdout_source  # 20% of 1,200
    info = registry.get_model(MODEL, db=db)
    with connect(db) as con:
        rows = tdstore.labelled_rows(con, info, None, None).iloc[-240:]
    X = training.coerce_features(rows[info.feature_names], info.features)
    for v in (1, 3):
        model = registry.load_model(MODEL, v, db=db)
        assert c.holdout.loc["roc_auc", f"v{v}"] == pytest.approx(
            roc_auc_score(rows["label"] == "1", model.predict_proba(X)[:, 1]), abs=1e-12)
        assert c.holdout.loc["accuracy", f"v{v}"] == pytest.approx(
            accuracy_score(rows["label"], model.predict(X).astype(str)), abs=1e-12)
    diff = c.hyperparameter_differences()
    assert set(diff.index) == {"learning_rate", "max_iter"}
    assert diff.loc["max_iter", "v3"] == 20 and diff.loc["max_iter", "v1"] == 40
    assert len(c.hyperparameters) > len(diff)
    lin = c.lineage.set_index("version")
    assert lin.loc[3, "train_rows"] == 960 and lin.loc[1, "train_rows"] == 480
    assert lin.loc[3, "run_id"] and len(lin.loc[3, "artifact_sha256"]) == 64 and lin.loc[3, "created_by"] == "tester"
    assert c.recorded.loc["roc_auc", "v3"] == registry.list_versions(MODEL, db=db)[2].holdout_metrics["roc_auc"]


def test_compare_needs_two_versions(three_versions):
    with pytest.raises(InvalidInputError, match="at least two"):
        registry.compare(MODEL, [2, 2], db=three_versions)
    with pytest.raises(NotFoundError):
        registry.compare(MODEL, [1, 8], db=three_versions)


def test_runs_audit_and_versions_frames(three_versions):
    db = three_versions
    runs = registry.runs(MODEL, db=db)
    assert list(runs["kind"]).count("retrain") == 2 and set(runs["status"]) == {"succeeded"}
    vf = registry.versions_frame(MODEL, db=db)
    assert list(vf["version"]) == [1, 2, 3] and vf["gate_passed"].iloc[0] is None
    assert vf["gate_passed"].iloc[1:].isin([True, False]).all()
    assert "holdout_roc_auc" in vf.columns
    assert len(registry.audit_log(db=db)) >= len(registry.audit_log(MODEL, db=db))

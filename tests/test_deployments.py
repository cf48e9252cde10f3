"""Deployment configs (audited, one transaction each), sticky assignment, canary ramp and guard, the fixed-horizon
sample size against scipy, and acting on a decided A/B test."""
from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from _serving_support import ADMIN, MODEL, two_versions
from scipy.stats import norm

from mlops_core import ControlRoom, Identity
from mlops_core.entities import CanaryStep
from mlops_core.errors import ConflictError, InvalidInputError, PermissionDeniedError
from mlops_core.lifecycle import abtest, deployments
from mlops_core.store import Store, utcnow
from mlops_core.store import models as mstore
from mlops_core.store import predictions as pstore


@pytest.fixture
def db(tmp_path):
    return two_versions(tmp_path / "d")


def model(db, who: Identity = ADMIN):
    return ControlRoom(db, identity=who).model(MODEL)


def test_a_model_never_configured_serves_champion_only(db):
    s = model(db).serving()
    assert (s.production, s.config.mode, s.config.challenger) == (1, "champion", None)
    assert s.description == "v1 answers every request (champion only)" and s.since is not None


def test_setting_a_split_is_one_audited_transaction_with_a_challenger_alias(db):
    c = model(db).set_deployment("split", challenger=2, weight=0.3, sticky_key="customer", reason="try v2")
    assert (c.mode, c.challenger, c.weight, c.sticky_key, c.actor) == ("split", 2, 0.3, "customer", "tester")
    event = ControlRoom(db).audit(MODEL).iloc[0]
    assert (event["action"], event["to_version"], event["reason"]) == ("deploy", 2, "try v2")
    alias = model(db).deployment_history()
    open_challenger = alias[(alias["alias"] == "challenger") & alias["ended_at"].isna()]
    assert list(open_challenger["version"]) == [2]
    model(db).set_deployment("champion", reason="done")
    hist = model(db).deployment_configs()
    assert list(hist["mode"]) == ["split", "champion"] and hist["ended_at"].notna().tolist() == [True, False]
    assert hist["end_reason"].iloc[0] == "replaced"
    alias = model(db).deployment_history()
    assert alias[(alias["alias"] == "challenger")]["ended_at"].notna().all()
    assert model(db).serving().config.mode == "champion"


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(mode="blue"), InvalidInputError, "Unknown deployment mode 'blue'"),
    (dict(mode="split"), InvalidInputError, "needs a challenger"),
    (dict(mode="split", challenger=2, weight=1.0), InvalidInputError, "strictly between 0 and 1"),
    (dict(mode="canary", challenger=2, steps="50%:1h,25%"), InvalidInputError, "must grow strictly"),
    (dict(mode="canary", challenger=2, steps="5%,25%"), InvalidInputError, "positive hold time"),
    (dict(mode="split", challenger=1), ConflictError, "is the production version"),
    (dict(mode="split", challenger=7), Exception, "no version 7"),
    (dict(mode="split", challenger=2, sticky_key="bad key"), InvalidInputError, "not a valid name"),
])
def test_refused_configs_change_nothing(db, kwargs, error, match):
    before = len(ControlRoom(db).audit(MODEL))
    mode = kwargs.pop("mode")
    with pytest.raises(error, match=match):
        model(db).set_deployment(mode, **kwargs)
    assert len(ControlRoom(db).audit(MODEL)) == before and len(model(db).deployment_configs()) == 0


def test_a_rejected_version_answers_requests_only_when_forced_and_a_viewer_may_not_deploy(db):
    with Store(db).transaction() as con:
        mstore.set_version_status(con, MODEL, 2, "rejected")
    with pytest.raises(ConflictError, match="rejected by its gate"):
        model(db).set_deployment("split", challenger=2)
    assert model(db).set_deployment("shadow", challenger=2).mode == "shadow"  # a shadow answers no one
    assert model(db).set_deployment("split", challenger=2, force=True).mode == "split"
    with pytest.raises(PermissionDeniedError):
        model(db, Identity("v", "viewer")).set_deployment("champion")


def test_sticky_assignment_is_uniform_and_a_growing_ramp_only_moves_keys_to_the_challenger():
    keys = [f"customer-{i}" for i in range(20_000)]
    points = np.array([deployments.assignment_point("credit", k) for k in keys])
    assert points.min() >= 0 and points.max() < 1
    # uniform on [0, 1): Kolmogorov-Smirnov against the uniform distribution
    from scipy.stats import kstest

    assert kstest(points, "uniform").pvalue > 0.001
    assert deployments.assignment_point("credit", "customer-1") == points[1]  # the same key, the same point
    at_5, at_25 = points < 0.05, points < 0.25
    assert not (at_5 & ~at_25).any()  # nobody leaves the challenger as the share grows


def test_canary_share_follows_its_steps_in_time():
    start = utcnow()
    steps = deployments.parse_steps("5%:1h,25%:30m,50%")
    assert steps == (CanaryStep(0.05, 3600), CanaryStep(0.25, 1800), CanaryStep(0.5, 0))
    from mlops_core.entities import DeploymentConfig

    c = DeploymentConfig(model="m", mode="canary", challenger=2, weight=0.5, steps=steps, started_at=start)
    share = [deployments.challenger_share(c, start + timedelta(minutes=m)) for m in (0, 59, 61, 89, 91, 10_000)]
    assert share == [0.05, 0.05, 0.25, 0.25, 0.5, 0.5]


def _log_arms(db, correct_champion: float, correct_challenger: float, n: int, *, start=None):
    """Log ``n`` labelled predictions per arm with the given accuracies (labels '1' throughout)."""
    store = Store(db)
    with store.connect() as con:
        info = mstore.get_model(con, MODEL)
    now = start or utcnow()
    rows = []
    rng = np.random.default_rng(0)
    for arm, version, acc in (("champion", 1, correct_champion), ("challenger", 2, correct_challenger)):
        right = rng.permutation(np.arange(n) < round(acc * n))
        for i in range(n):
            rows.append({"request_id": f"{arm}-{i}-{now.timestamp()}", "version": version, "variant": arm,
                         "ts": now + timedelta(seconds=i), "age": 40.0, "income": 50.0, "region": "north",
                         "prediction": "1" if right[i] else "0", "score": 0.6})
    log = pd.DataFrame(rows)
    pstore.append(store, info, "predictions", log)
    pstore.append(store, info, "labels", pd.DataFrame({"request_id": log["request_id"], "label": "1",
                                                       "label_ts": log["ts"]}))


def test_the_canary_guard_stops_a_significantly_worse_challenger_and_audits_it(db):
    m = model(db)
    m.set_deployment("canary", challenger=2, steps="5%:1h,50%", guard_min_samples=100)
    assert m.check_canary().stopped is False  # no labelled traffic yet
    _log_arms(db, 0.90, 0.75, 300, start=utcnow() + timedelta(seconds=1))
    outcome = m.check_canary()
    assert outcome.stopped and "canary stopped by its guard" in outcome.message.lower()
    assert m.serving().config.mode == "champion"
    hist = m.deployment_configs()
    assert hist["end_reason"].iloc[0].startswith("canary stopped by its guard")
    assert ControlRoom(db).audit(MODEL).iloc[0]["action"] == "canary_stop"


def test_the_guard_lets_an_equal_challenger_run(db):
    m = model(db)
    m.set_deployment("canary", challenger=2, guard_min_samples=100)
    _log_arms(db, 0.85, 0.85, 300, start=utcnow() + timedelta(seconds=1))
    assert m.check_canary().stopped is False and m.serving().config.mode == "canary"


def _power(n: int, p_a: float, p_b: float, alpha: float) -> float:
    """Power of the two-sided pooled two-proportion z-test with n per arm (normal approximation, scipy)."""
    pooled = (p_a + p_b) / 2
    se0 = math.sqrt(2 * pooled * (1 - pooled) / n)
    se1 = math.sqrt((p_a * (1 - p_a) + p_b * (1 - p_b)) / n)
    z = norm.ppf(1 - alpha / 2)
    d = abs(p_a - p_b)
    return float(norm.cdf((d - z * se0) / se1) + norm.cdf((-d - z * se0) / se1))


@pytest.mark.parametrize("p_a,p_b", [(0.85, 0.87), (0.5, 0.55), (0.9, 0.8)])
def test_sample_size_is_the_smallest_n_with_the_planned_power(p_a, p_b):
    n = abtest.sample_size_proportions(p_a, p_b, alpha=0.05, power=0.8)
    assert _power(n, p_a, p_b, 0.05) >= 0.8 > _power(n - 1, p_a, p_b, 0.05)


def test_sample_size_of_means_matches_the_normal_power_formula():
    n = abtest.sample_size_means(2.0, 0.5, alpha=0.05, power=0.9)
    se = lambda k: 2.0 * math.sqrt(2 / k)  # noqa: E731
    power = lambda k: norm.cdf(0.5 / se(k) - norm.ppf(0.975))  # noqa: E731
    assert power(n) >= 0.9 > power(n - 1)
    assert abtest.sample_size_means(0, 1) is None and abtest.sample_size_proportions(0.5, 0.5) is None


def test_per_arm_intervals_are_wilson_for_accuracy():
    counts = pd.DataFrame({"window_start": [pd.Timestamp("2026-01-01")] * 2, "arm": ["champion", "challenger"],
                           "n": [120, 80], "n_labelled": [100, 50], "versions": [1, 1], "correct": [90, 30]})
    arms = abtest.arms_over_time(counts, "classification").set_index("arm")
    from scipy.stats import binomtest

    for arm, k, n in (("champion", 90, 100), ("challenger", 30, 50)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert arms.loc[arm, "value"] == pytest.approx(k / n)
        assert (arms.loc[arm, "ci_low"], arms.loc[arm, "ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_per_arm_intervals_of_mae_are_the_normal_interval_of_the_absolute_errors():
    errors = np.abs(np.random.default_rng(1).normal(0, 3, 200))
    counts = pd.DataFrame({"window_start": [pd.Timestamp("2026-01-01")], "arm": ["challenger"], "n": [200],
                           "n_labelled": [200], "versions": [1], "sum_abs": [errors.sum()],
                           "sum_abs2": [(errors ** 2).sum()]})
    row = abtest.arms_over_time(counts, "regression").iloc[0]
    lo, hi = norm.interval(0.95, loc=errors.mean(), scale=errors.std(ddof=1) / math.sqrt(200))
    assert (row["value"], row["ci_low"], row["ci_high"]) == pytest.approx((errors.mean(), lo, hi), rel=1e-9)


def test_ab_status_waits_for_the_horizon_then_promote_winner_promotes_and_ends_the_test(db):
    m = model(db)
    with pytest.raises(ConflictError, match="No A/B test runs"):
        m.promote_winner()
    m.set_deployment("split", challenger=2, weight=0.5)
    status = m.ab_status()
    assert status.horizon.needed > 0 and status.remaining == status.horizon.needed and not status.decided
    assert "Keep collecting" in status.recommendation
    with pytest.raises(ConflictError, match="Keep collecting"):
        m.promote_winner()
    needed = status.horizon.needed
    _log_arms(db, 0.80, 0.92, needed + 10, start=utcnow() + timedelta(seconds=1))
    status = m.ab_status()
    assert status.decided and status.winner == "challenger" and status.remaining == 0
    assert set(status.arms["arm"]) == {"champion", "challenger"}
    outcome = m.promote_winner(reason="v2 won the A/B test")
    assert outcome.promotion.to_version == 2 and outcome.config.mode == "champion"
    assert m.production_version() == 2
    audit = ControlRoom(db).audit(MODEL)
    assert {"ab_promote", "deploy"} <= set(audit["action"].head(2))
    assert m.deployment_configs()["end_reason"].iloc[-2] == "winner promoted: v2"

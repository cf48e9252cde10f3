"""Deployments: how a model's requests are served, and the A/B test that decides between its two arms.

A model's **deployment config** (one open row of ``deployment_configs``; champion only until set) says
who answers a request:

==========  ========================================================================================
mode        who answers, and what the log's ``variant`` column (the arm) says
==========  ========================================================================================
champion    the production version answers everything (arm ``champion``)
split       the challenger answers ``weight`` of the requests (arm ``challenger``), the production
            version the rest (arm ``champion``)
shadow      the production version answers everything (arm ``champion``); the challenger scores every
            request too and its answer is logged as a ``shadow`` row (arm ``shadow``, same request id),
            never returned. Shadow rows are kept apart from the served log (``store.logs``)
canary      a split whose challenger share follows ``steps`` (e.g. 5% for an hour, 25% for an hour,
            then 50%) from the moment it was set, stopped automatically (back to champion only) when
            the challenger's guard metric is significantly worse (``check_canary``)
==========  ========================================================================================

**Sticky assignment**: a request goes to the challenger when ``assignment_point(model, key) < share``,
a point in [0, 1) from a hash of the model name and the request's key (the record's ``sticky_key``
field, else its request id), so the same key always lands in the same arm, and a canary ramp only
ever moves keys from the champion to the challenger as its share grows.

The champion is always the production version: ``promote`` and ``rollback`` change it for every mode.
A config whose challenger became production (promoted by hand) serves champion only. Every change is
one transaction: the config row closed and the new one opened, the ``challenger`` alias row of
``deployments`` moved or ended, and an audit row (actions ``deploy``, ``canary_stop``, ``ab_promote``,
``ab_end``). Putting a challenger in front of users checks its artifact first (``registry.verify_version``)
and refuses a version the gate rejected unless ``force`` (a shadow serves no one and needs neither).
"""
from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd

from mlops_core.data.schema import check_identifier
from mlops_core.entities import CanaryStep, DeploymentConfig, ModelInfo, Promotion
from mlops_core.errors import ConflictError, InvalidInputError
from mlops_core.lifecycle import abtest, registry
from mlops_core.store import Store, logs, utcnow
from mlops_core.store import deployments as dstore
from mlops_core.store import models as mstore
from mlops_core.store import runs as runstore
from mlops_core.store.conditions import check_window

MODES = ("champion", "split", "shadow", "canary")
#: Arms as the log's ``variant`` column names them.
CHAMPION, CHALLENGER, SHADOW = "champion", "challenger", "shadow"
#: The canary ramp when none is given: 5% for an hour, 25% for an hour, then 50%.
DEFAULT_CANARY_STEPS = (CanaryStep(0.05, 3600.0), CanaryStep(0.25, 3600.0), CanaryStep(0.5, 0.0))
#: The canary guard: a one-sided stop at this significance level once each arm has this many labelled predictions.
DEFAULT_GUARD_ALPHA = 0.01
DEFAULT_GUARD_MIN_SAMPLES = 100


def champion_only(model: str) -> DeploymentConfig:
    """The config of a model never configured: the production version answers everything."""
    return DeploymentConfig(model=model, mode="champion")


def current(con, model: str) -> DeploymentConfig:
    """The config serving ``model`` now (champion only when it was never set). ``con``: a metadata visit."""
    return dstore.open_config(con, model) or champion_only(model)


def effective(config: DeploymentConfig, production: int | None) -> DeploymentConfig:
    """``config`` as it serves when production is ``production``: champion only once its challenger is production
    (promoted by hand) or when there is no production version."""
    if config.mode != "champion" and (config.challenger is None or config.challenger == production
                                      or production is None):
        return replace(config, mode="champion", challenger=None, weight=0.0, steps=())
    return config


def canary_step(config: DeploymentConfig, at: datetime) -> int:
    """Index of the canary step in force at ``at`` (the last step once every hold has passed)."""
    elapsed = max(0.0, (at - (config.started_at or at)).total_seconds())
    for i, step in enumerate(config.steps[:-1]):
        if elapsed < step.hold_s:
            return i
        elapsed -= step.hold_s
    return len(config.steps) - 1


def challenger_share(config: DeploymentConfig, at: datetime) -> float:
    """Share of the requests the challenger answers at ``at`` (0 for champion only and shadow)."""
    if config.mode == "split":
        return config.weight
    if config.mode == "canary" and config.steps:
        return config.steps[canary_step(config, at)].share
    return 0.0


def assignment_point(model: str, key: str) -> float:
    """The request's sticky point in [0, 1): the first 8 bytes of blake2b(model, key) over 2^64."""
    digest = hashlib.blake2b(f"{model}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


def parse_steps(text: str) -> tuple[CanaryStep, ...]:
    """Canary steps from text such as ``5%:1h,25%:1h,50%`` (share, then how long it holds; the last holds for
    good). Shares as percentages or fractions; durations in s, m, h or d. Raises InvalidInputError."""
    steps = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        share_text, _, hold_text = part.partition(":")
        try:
            share = float(share_text.rstrip("%")) / (100 if share_text.strip().endswith("%") else 1)
            hold = _seconds(hold_text) if hold_text else 0.0
        except ValueError as exc:
            raise InvalidInputError(f"Canary step {part!r} is not SHARE[:HOLD], e.g. 5%:1h or 0.25:30m.") from exc
        steps.append(CanaryStep(share, hold))
    return tuple(steps)


def _seconds(text: str) -> float:
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def _check(config: DeploymentConfig) -> None:
    """Raise InvalidInputError naming what is wrong with ``config``'s fields."""
    if config.mode not in MODES:
        raise InvalidInputError(f"Unknown deployment mode {config.mode!r}; choose one of: {', '.join(MODES)}.",
                                mode=config.mode)
    if config.mode == "champion":
        return
    if config.challenger is None:
        raise InvalidInputError(f"Mode {config.mode!r} needs a challenger version (--challenger V).")
    if config.mode == "split" and not 0 < config.weight < 1:
        raise InvalidInputError(f"A split's challenger weight must lie strictly between 0 and 1 (e.g. 0.5); got "
                                f"{config.weight!r}.", weight=config.weight)
    if config.mode == "canary":
        if not config.steps:
            raise InvalidInputError("A canary needs at least one step, e.g. 5%:1h,25%:1h,50%.")
        shares = [s.share for s in config.steps]
        if any(not 0 < s < 1 for s in shares) or any(b <= a for a, b in itertools.pairwise(shares)):
            raise InvalidInputError(f"Canary shares must grow strictly and lie between 0 and 1 (exclusive); got "
                                    f"{', '.join(f'{s:g}' for s in shares)}.")
        if any(not (s.hold_s > 0 and math.isfinite(s.hold_s)) for s in config.steps[:-1]):
            raise InvalidInputError("Every canary step but the last needs a positive hold time, e.g. 5%:1h.")
        if not 0 < (config.guard_alpha or 0) < 0.5:
            raise InvalidInputError(f"The canary guard's alpha must lie in (0, 0.5); got {config.guard_alpha!r}.")
        if (config.guard_min_samples or 0) < 1:
            raise InvalidInputError("The canary guard needs at least 1 labelled prediction per arm.")
    if config.sticky_key is not None:
        check_identifier(config.sticky_key, "Sticky key")


def set_deployment(store: Store, info: ModelInfo, mode: str, *, actor: str, challenger: int | None = None,
                   weight: float | None = None, steps: tuple[CanaryStep, ...] | None = None,
                   sticky_key: str | None = None, guard_alpha: float = DEFAULT_GUARD_ALPHA,
                   guard_min_samples: int = DEFAULT_GUARD_MIN_SAMPLES, reason: str | None = None,
                   force: bool = False, at: datetime | None = None) -> DeploymentConfig:
    """Serve ``info``'s requests in ``mode`` from now on (one transaction, audited); return the new config.

    Raises InvalidInputError (mode, weight, steps, key), NotFoundError (version), ConflictError (the
    challenger is the production version, or was rejected by its gate and ``force`` is not set),
    IntegrityError (the challenger's artifact failed its check; nothing changed).
    """
    weight = 0.0 if mode in ("champion", "shadow") else (
        float(weight) if weight is not None else 0.5 if mode == "split" else 0.0)
    steps = tuple(steps or DEFAULT_CANARY_STEPS) if mode == "canary" else ()
    if mode == "canary":
        weight = steps[-1].share
    config = DeploymentConfig(
        model=info.name, mode=mode, challenger=None if mode == "champion" else challenger, weight=weight, steps=steps,
        sticky_key=sticky_key or None, guard_alpha=guard_alpha if mode == "canary" else None,
        guard_min_samples=guard_min_samples if mode == "canary" else None, actor=actor, reason=reason)
    _check(config)
    if config.challenger is not None:
        with store.connect() as con:
            version = mstore.get_version(con, info.name, int(config.challenger))
            _check_challenger(con, info.name, version.version, version.status, mode=mode, force=force)
        registry.verify_version(store, version)
    with store.transaction() as con:
        if config.challenger is not None:  # production may have moved during the check
            status = mstore.get_version(con, info.name, config.challenger).status
            _check_challenger(con, info.name, config.challenger, status, mode=mode, force=force)
        return _replace_config(con, config, actor=actor, action="deploy", end_reason="replaced", at=at or utcnow())


def _check_challenger(con, model: str, version: int, status: str, *, mode: str, force: bool) -> None:
    if mstore.current_alias(con, model) == version:
        raise ConflictError(f"Version {version} of {model!r} is the production version, so it is already the "
                            "champion; pick another challenger.", model=model, version=version)
    if status == "rejected" and mode in ("split", "canary") and not force:
        raise ConflictError(f"Version {version} of {model!r} was rejected by its gate; it may answer requests only "
                            "with --force (a shadow needs none, as it answers no one).", model=model, version=version)


def _replace_config(con, config: DeploymentConfig, *, actor: str, action: str, end_reason: str,
                    at: datetime) -> DeploymentConfig:
    """Inside a transaction: close the open config, open ``config``, move or end the challenger alias, audit."""
    before = current(con, config.model)
    dstore.end_config(con, config.model, reason=end_reason, at=at)
    new = dstore.insert_config(con, replace(config, started_at=at, actor=actor))
    if new.challenger is not None:
        if mstore.current_alias(con, config.model, "challenger") != new.challenger:
            mstore.move_alias(con, config.model, new.challenger, alias="challenger", actor=actor, action=action,
                              reason=config.reason, at=at)
    else:
        mstore.end_alias(con, config.model, "challenger", at=at)
    runstore.insert_audit(con, actor=actor, action=action, model=config.model,
                          from_version=before.challenger, to_version=new.challenger,
                          reason=config.reason or describe(new),
                          details={"mode": new.mode, "challenger": new.challenger, "weight": new.weight,
                                   "steps": [[s.share, s.hold_s] for s in new.steps], "sticky_key": new.sticky_key,
                                   "previous_mode": before.mode, "config_id": new.id}, at=at)
    return new


def describe(config: DeploymentConfig, production: int | None = None, at: datetime | None = None) -> str:
    """One sentence saying who answers the requests under ``config``."""
    champ = f"v{production}" if production is not None else "the production version"
    if config.mode == "champion":
        return f"{champ} answers every request (champion only)"
    ch = f"v{config.challenger}"
    if config.mode == "split":
        return f"split: {ch} answers {config.weight:.0%} of the requests, {champ} the rest"
    if config.mode == "shadow":
        return f"shadow: {champ} answers every request; {ch} scores each one too (logged, not returned)"
    ramp = " -> ".join(f"{s.share:.0%}" for s in config.steps)
    now = f", now {challenger_share(config, at):.0%}" if at is not None else ""
    return f"canary: {ch} ramps {ramp} of the requests{now}; {champ} the rest"


def history(con, model: str) -> pd.DataFrame:
    """Every config of the model, oldest first."""
    return dstore.configs_frame(con, model)


# --- the A/B test of a deployment ---------------------------------------------------------------------


@dataclass
class ABStatus:
    """Where the A/B test of the current deployment stands (see ``ab_status``).

    ``winner``: ``challenger``, ``champion`` or None (undecided); ``decided``: the fixed horizon is reached
    (or the test is significant under the stricter early-stop rule), so ``recommendation`` may be acted on.
    """

    config: DeploymentConfig
    production: int | None
    test: abtest.ABTestResult | None
    horizon: abtest.Horizon | None
    remaining: int | None
    decided: bool
    winner: str | None
    recommendation: str
    arms: pd.DataFrame
    share_now: float


def challenger_arm(config: DeploymentConfig) -> str:
    """The arm the challenger's rows carry in the log under ``config``."""
    return SHADOW if config.mode == "shadow" else CHALLENGER


def ab_status(store: Store, info: ModelInfo, *, window: str = "day", now: datetime | None = None,
              alpha: float = abtest.DEFAULT_ALPHA, power: float = abtest.DEFAULT_POWER,
              mde: float | None = None) -> ABStatus:
    """The A/B test of the current deployment since it started: per-arm metrics over time with intervals,
    the significance test of ``abtest.evaluate`` (arms by ``variant``), the fixed-horizon sample size
    (``abtest.horizon`` from the champion's holdout metrics, set before the test), how many labelled
    predictions are still needed, and the recommendation.

    Guard against peeking: a winner is only named once both arms reached the horizon; before that the
    p-value is shown but the recommendation is to keep collecting.
    """
    check_window(window)
    now = now or utcnow()
    with store.connect() as con:
        state = dstore.serving_state(con, info.name)
        config = state.config or champion_only(info.name)
        champion_metrics = (mstore.get_version(con, info.name, state.production).holdout_metrics
                            if state.production is not None else {})
        start = config.started_at
        log = logs.view(con, store.logs, info, start, None, kinds=("predictions", "shadow"))
    with store.engine() as con:
        counts = dstore.arm_counts(con, log, window, start, None)
    arms = abtest.arms_over_time(counts, info.task)
    live = effective(config, state.production)
    if live.mode == "champion":
        why = ("no challenger is deployed" if config.mode == "champion" else
               f"its challenger v{config.challenger} is the production version now")
        return ABStatus(config, state.production, None, None, None, False, None,
                        f"No A/B test runs: {why}. Set a split, shadow or canary deployment to start one.", arms, 0.0)
    test = abtest.evaluate(store, info, challenger_arm(config), champion=CHAMPION, by="variant", start=start,
                           alpha=alpha, min_samples=1, shadow=config.mode == "shadow")
    plan = abtest.horizon(info, champion_metrics, alpha=alpha, power=power, mde=mde)
    have = min(test.n_champion, test.n_challenger)
    remaining = None if plan.needed is None else max(plan.needed - have, 0)
    decided = remaining == 0
    winner = None
    better = test.difference is not None and ((test.difference > 0) if info.task == "classification"
                                              else (test.difference < 0))
    if decided:
        winner = CHALLENGER if test.significant and better else CHAMPION
    ch = f"v{config.challenger}"
    if plan.needed is None:
        text = (f"The sample size cannot be planned ({plan.basis}); the test needs {abtest.DEFAULT_MIN_SAMPLES} "
                "labelled predictions per arm at least before it is read.")
        if have >= abtest.DEFAULT_MIN_SAMPLES:
            decided = True
            winner = CHALLENGER if test.significant and better else CHAMPION
    elif not decided:
        text = (f"Keep collecting: {remaining:,} more labelled predictions per arm are needed to reach the planned "
                f"{plan.needed:,} (now {test.n_champion:,} champion, {test.n_challenger:,} challenger). The p-value "
                "before then is not a decision: reading it repeatedly would inflate false wins.")
    else:
        text = ""
    if decided:
        text = (f"The challenger {ch} is significantly better ({test.message}) Promote it." if winner == CHALLENGER
                else f"Keep the champion: {test.message} End the test to stop sending traffic to {ch}.")
    return ABStatus(config, state.production, test, plan, remaining, decided, winner, text, arms,
                    challenger_share(config, now))


def arm_performance(store: Store, info: ModelInfo, *, window: str = "day", start: datetime | None = None,
                    end: datetime | None = None, shadow: bool = True) -> pd.DataFrame:
    """The A/B metric per window and arm of the log in [start, end) with 95% intervals (``abtest.arms_over_time``);
    ``shadow``: include the shadow rows (arm ``shadow``)."""
    check_window(window)
    with store.connect() as con:
        log = logs.view(con, store.logs, info, start, end, kinds=("predictions", "shadow") if shadow else
                        ("predictions",))
    with store.engine() as con:
        counts = dstore.arm_counts(con, log, window, start, end)
    return abtest.arms_over_time(counts, info.task)


@dataclass
class GuardCheck:
    """What a canary guard check found: ``stopped`` when it ended the canary."""

    model: str
    checked: bool
    stopped: bool
    message: str
    test: abtest.ABTestResult | None = None


def check_canary(store: Store, info: ModelInfo, *, actor: str = "automation", now: datetime | None = None) -> GuardCheck:
    """Stop the model's canary (back to champion only, audited as ``canary_stop``) when the challenger's guard metric
    (accuracy, or MAE for regression) is significantly worse than the champion's: each arm has ``guard_min_samples``
    labelled predictions since the canary started and the one-sided p-value is below ``guard_alpha`` (half the
    two-sided p of ``abtest.evaluate`` when the challenger is the worse arm).

    Checked repeatedly, the guard stops a harmless canary more often than ``guard_alpha`` says; that error only
    costs a restart, while a real regression stops early. Returns GuardCheck.
    """
    with store.connect() as con:
        state = dstore.serving_state(con, info.name)
    config = state.config
    if config is None or effective(config, state.production).mode != "canary":
        return GuardCheck(info.name, False, False, f"{info.name!r} runs no canary.")
    test = abtest.evaluate(store, info, CHALLENGER, champion=CHAMPION, by="variant", start=config.started_at,
                           alpha=1.0, min_samples=1)
    need = int(config.guard_min_samples or DEFAULT_GUARD_MIN_SAMPLES)
    if min(test.n_champion, test.n_challenger) < need:
        return GuardCheck(info.name, True, False, f"Canary guard: {test.n_champion} champion and {test.n_challenger} "
                                                  f"challenger labelled predictions; {need} per arm needed.", test)
    worse = test.difference is not None and ((test.difference < 0) if info.task == "classification"
                                             else (test.difference > 0))
    one_sided = test.p_value / 2 if test.p_value is not None else None
    alpha = float(config.guard_alpha or DEFAULT_GUARD_ALPHA)
    if not (worse and one_sided is not None and one_sided < alpha):
        p_text = "undefined" if one_sided is None else f"{one_sided:.3g}"
        return GuardCheck(info.name, True, False, f"Canary guard passed: {test.metric} champion {test.champion_value} "
                                                  f"vs challenger {test.challenger_value}, one-sided p = {p_text}.",
                          test)
    reason = (f"canary stopped by its guard: {test.metric} of v{config.challenger} {test.challenger_value:.4f} vs "
              f"{test.champion_value:.4f} for the champion (n={test.n_challenger}/{test.n_champion}), one-sided "
              f"p = {one_sided:.3g} < {alpha:g}")
    with store.transaction() as con:
        if dstore.open_config(con, info.name) != config:
            raise ConflictError(f"The deployment of {info.name!r} changed during the guard check; check again.")
        _replace_config(con, replace(champion_only(info.name), reason=reason), actor=actor, action="canary_stop",
                        end_reason=reason, at=now or utcnow())
    return GuardCheck(info.name, True, True, reason[0].upper() + reason[1:] + ".", test)


@dataclass
class ABOutcome:
    """What ``promote_winner`` did: the promotion (None when the champion won) and the config now serving."""

    status: ABStatus
    promotion: Promotion | None
    config: DeploymentConfig


def promote_winner(store: Store, info: ModelInfo, *, actor: str, reason: str | None = None,
                   now: datetime | None = None) -> ABOutcome:
    """Act on a decided A/B test: promote the winning challenger (``ab_promote``; artifact checked and gated like
    any promote) or keep the champion (``ab_end``), and go back to champion only, in one transaction.

    Raises ConflictError when no test runs or it is not decided yet (the message says how many labelled
    predictions are missing), or when the deployment changed meanwhile; IntegrityError (artifact).
    """
    status = ab_status(store, info, now=now)
    if status.test is None or not status.decided:
        raise ConflictError(f"No winner to act on for {info.name!r} yet: {status.recommendation}", model=info.name)
    config = status.config
    at = now or utcnow()
    if status.winner == CHALLENGER:
        with store.connect() as con:
            version = mstore.get_version(con, info.name, int(config.challenger))
        registry.verify_version(store, version)
    text = reason or f"A/B test: {status.test.message}"
    with store.transaction() as con:
        if dstore.open_config(con, info.name) != config:
            raise ConflictError(f"The deployment of {info.name!r} changed while the A/B test was read; try again.",
                                model=info.name)
        promotion = None
        if status.winner == CHALLENGER:
            promotion = registry.promote_in(con, info.name, int(config.challenger), actor=actor, reason=text,
                                            action="ab_promote", at=at)
            end = f"winner promoted: v{config.challenger}"
        else:
            end = "test ended: the champion stays"
        new = _replace_config(con, replace(champion_only(info.name), reason=text), actor=actor,
                              action="ab_end" if promotion is None else "deploy", end_reason=end, at=at)
    return ABOutcome(status, promotion, new)

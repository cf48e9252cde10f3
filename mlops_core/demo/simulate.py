"""Data-generating processes of the demo: credit applications and food deliveries.

Pure, vectorised functions of a ``numpy.random.Generator`` (no global random state):
the same generator state gives the same rows. The demo (``mlops_core.demo``) draws
one generator per model and day, so a day's traffic does not depend on how the days
are grouped into chunks.

**credit_default** (binary, target ``default`` 0/1). An applicant's age drives
employment type, months employed, income and home ownership; income and age drive
the credit score; the credit score drives card utilization; utilization drives the
debt-to-income ratio; income and purpose drive the loan amount, which drives the term.
The default probability is a logistic function of these (lower credit score, higher
debt-to-income and utilization, unemployment, medical or consolidation loans raise it).
The shipped training file comes from last year's process (``legacy=True``), in which
education loans, long terms and the south region were less risky: version 1 is a little
stale from the first day, and a retrain on fresh traffic (version 2) really helps.

- *Covariate drift* (``drift`` in [0, 1], per row): income falls by up to 18%,
  utilization rises by up to 0.15, and the purpose mix moves towards debt
  consolidation and medical loans. The label process is unchanged by it.
- *Concept shift* (``shift`` True per row): the label process itself changes; defaults
  rise sharply for debt-to-income above 0.35 and for the self-employed, so a model
  trained before the shift under-predicts them and its accuracy drops.

**delivery_time** (regression, target ``delivery_minutes``): zone drives distance,
distance drives the courier type; minutes = preparation + travel at the courier's
speed (slower in the centre, in rain and snow) + a rush-hour wait + noise. Drift: more
rain and snow (winter). Shift: a road closure adds minutes to suburb and outskirts trips.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

CREDIT_NUMERIC = ("age", "income", "loan_amount", "loan_term_months", "credit_score", "debt_to_income",
                  "num_open_accounts", "months_employed", "utilization")
HOME_OWNERSHIP = ("rent", "own", "mortgage")
PURPOSE = ("debt_consolidation", "car", "home_improvement", "education", "medical", "other")
REGION = ("north", "south", "east", "west")
EMPLOYMENT = ("salaried", "self_employed", "unemployed", "retired")
CREDIT_FEATURES = (*CREDIT_NUMERIC, "home_ownership", "purpose", "region", "employment_type")
CREDIT_TARGET = "default"

COURIER = ("bike", "scooter", "car")
WEATHER = ("clear", "rain", "snow")
ZONE = ("center", "suburb", "outskirts")
DELIVERY_FEATURES = ("distance_km", "items", "hour_of_day", "prep_minutes", "courier_type", "weather", "zone")
DELIVERY_TARGET = "delivery_minutes"

#: Relative traffic per hour of day (UTC) and per weekday (Mon..Sun) of each model.
CREDIT_HOURLY = np.array([0.2, 0.15, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7, 1.0, 1.3, 1.5, 1.5,
                          1.4, 1.5, 1.5, 1.4, 1.3, 1.2, 1.2, 1.3, 1.3, 1.0, 0.7, 0.4])
CREDIT_WEEKDAY = np.array([1.1, 1.1, 1.1, 1.1, 1.05, 0.8, 0.75])
DELIVERY_HOURLY = np.array([0.1, 0.05, 0.02, 0.02, 0.02, 0.05, 0.2, 0.4, 0.5, 0.5, 0.7, 1.4,
                            2.0, 1.6, 0.8, 0.6, 0.8, 1.4, 2.2, 2.4, 1.8, 1.0, 0.5, 0.2])
DELIVERY_WEEKDAY = np.array([0.85, 0.85, 0.9, 0.95, 1.15, 1.2, 1.1])


def _choice_codes(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category code per row from row-wise probabilities ``probs`` (n x k), vectorised."""
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    u = rng.random(len(probs))[:, None]
    return np.minimum((u > cum).sum(axis=1), probs.shape[1] - 1)


def _categorical(codes: np.ndarray, categories) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype(np.int8), categories=list(categories))


def credit_features(rng: np.random.Generator, n: int, drift: np.ndarray | float = 0.0) -> pd.DataFrame:
    """Return ``n`` credit applications (the 13 features; categoricals as pandas Categorical).

    ``drift`` (scalar or one value per row, 0..1) moves income, utilization and purpose.
    """
    drift = np.broadcast_to(np.asarray(drift, dtype=float), (n,))
    age = np.clip(np.round(19 + rng.gamma(3.2, 6.5, n)), 18, 80)
    p_emp = np.column_stack([
        np.full(n, 0.70),
        np.full(n, 0.17),
        np.where(age < 25, 0.12, 0.06),
        np.where(age >= 66, 3.0, np.where(age >= 60, 0.35, 0.0)),
    ])
    emp = _choice_codes(rng, p_emp)
    working_years = np.maximum(age - 18, 0)
    months_employed = np.round(rng.beta(2.0, 2.5, n) * working_years * 12 * 0.6)
    months_employed = np.where(emp == 2, 0, months_employed)
    months_employed = np.where(emp == 3, np.round(months_employed * 0.2), months_employed)

    log_income = (np.log(48) + 0.018 * (age - 40) - 0.0009 * (age - 40) ** 2
                  + np.select([emp == 1, emp == 2, emp == 3], [0.1, -0.9, -0.35], 0.0)
                  + 0.002 * np.minimum(months_employed, 240) / 12 + rng.normal(0, 0.42, n))
    income = np.round(np.exp(log_income) * (1.0 - 0.18 * drift), 2)
    income = np.clip(income, 5.0, 600.0)

    z_income = (np.log(income) - np.log(45)) / 0.5
    p_home = np.column_stack([
        np.exp(0.6 - 0.05 * (age - 35) - 0.4 * z_income),
        np.exp(-1.6 + 0.04 * (age - 35)),
        np.exp(0.1 + 0.5 * z_income),
    ])
    home = _choice_codes(rng, p_home)

    credit_score = np.clip(np.round(rng.normal(680 + 22 * z_income + 1.2 * (age - 40) - np.where(emp == 2, 40, 0), 55)),
                           300, 850)
    z_score = (credit_score - 680) / 60
    util_base = rng.beta(2.0, 3.2, n)
    utilization = np.clip(util_base - 0.08 * z_score + 0.15 * drift, 0.0, 1.0)
    utilization = np.round(utilization, 4)
    debt_to_income = np.clip(0.08 + 0.35 * utilization + rng.gamma(2.2, 0.055, n) - 0.02 * z_income, 0.0, 1.5)
    debt_to_income = np.round(debt_to_income, 4)
    num_open_accounts = np.minimum(rng.poisson(1.5 + 0.06 * np.minimum(age - 18, 40) + 1.5 * utilization), 30)

    purpose_weights = np.array([0.30, 0.20, 0.15, 0.10, 0.08, 0.17])
    purpose_drifted = np.array([0.42, 0.12, 0.08, 0.08, 0.17, 0.13])
    p_purpose = (1 - drift)[:, None] * purpose_weights + drift[:, None] * purpose_drifted
    p_purpose = p_purpose * np.where(age[:, None] < 28, [1, 1, 0.4, 3.0, 1, 1], 1.0)
    purpose = _choice_codes(rng, p_purpose)

    size = np.array([0.35, 0.45, 0.6, 0.4, 0.15, 0.2])[purpose]
    loan_amount = np.round(np.clip(income * size * rng.lognormal(0, 0.45, n), 0.5, 250.0), 2)
    term_choices = np.array([12, 24, 36, 48, 60, 72])
    p_term = np.exp(-((np.arange(6)[None, :] - (0.5 + 4.0 * np.minimum(loan_amount / 40, 1))[:, None]) ** 2) / 2.0)
    loan_term_months = term_choices[_choice_codes(rng, p_term)]
    region = rng.choice(4, n, p=[0.28, 0.26, 0.26, 0.20])

    return pd.DataFrame({
        "age": age.astype(np.int64),
        "income": income,
        "loan_amount": loan_amount,
        "loan_term_months": loan_term_months.astype(np.int64),
        "credit_score": credit_score.astype(np.int64),
        "debt_to_income": debt_to_income,
        "num_open_accounts": num_open_accounts.astype(np.int64),
        "months_employed": months_employed.astype(np.int64),
        "utilization": utilization,
        "home_ownership": _categorical(home, HOME_OWNERSHIP),
        "purpose": _categorical(purpose, PURPOSE),
        "region": _categorical(region, REGION),
        "employment_type": _categorical(emp, EMPLOYMENT),
    })


def credit_default_probability(X: pd.DataFrame, shift: np.ndarray | bool = False, legacy: bool = False) -> np.ndarray:
    """Return the true probability of default of each application (after the concept shift where ``shift``).

    ``legacy``: last year's process, from which the shipped training file was drawn
    (education loans, long terms and the south region were less risky then).
    """
    n = len(X)
    shift = np.broadcast_to(np.asarray(shift, dtype=bool), (n,))
    purpose = X["purpose"].cat.codes.to_numpy()
    emp = X["employment_type"].cat.codes.to_numpy()
    home = X["home_ownership"].cat.codes.to_numpy()
    dti = X["debt_to_income"].to_numpy()
    logit = (
        -2.3
        - 0.9 * (X["credit_score"].to_numpy() - 680) / 60
        + 3.0 * (dti - 0.3)
        + 1.8 * (X["utilization"].to_numpy() - 0.35)
        - 0.35 * np.log(X["income"].to_numpy() / 45)
        + 0.35 * np.log(X["loan_amount"].to_numpy() / (0.35 * X["income"].to_numpy()))
        + (np.array([0.25, -0.25, -0.15, -0.45, 0.45, 0.0]) if legacy
           else np.array([0.25, -0.25, -0.15, 0.6, 0.45, 0.0]))[purpose]
        + (0.0 if legacy else np.array([-0.1, 0.9, -0.2, 0.0])[X["region"].cat.codes.to_numpy()])
        + np.array([0.0, 0.25, 0.9, 0.1])[emp]
        + np.array([0.2, -0.25, 0.0])[home]
        - 0.25 * np.minimum(X["months_employed"].to_numpy(), 120) / 120
        + (0.0 if legacy else 0.25) * (X["loan_term_months"].to_numpy() - 36) / 12
        - 0.012 * (X["age"].to_numpy() - 40)
    )
    shifted = logit + 7.0 * np.maximum(dti - 0.35, 0) + 1.6 * (dti > 0.35) + np.where(emp == 1, 1.2, 0.0)
    logit = np.where(shift, shifted, logit)
    return 1.0 / (1.0 + np.exp(-logit))


def credit_labels(rng: np.random.Generator, X: pd.DataFrame, shift: np.ndarray | bool = False,
                  legacy: bool = False) -> np.ndarray:
    """Draw the default outcome (0/1 int) of each application."""
    return (rng.random(len(X)) < credit_default_probability(X, shift, legacy)).astype(np.int64)


def delivery_features(rng: np.random.Generator, n: int, hour_of_day: np.ndarray | None = None,
                      drift: np.ndarray | float = 0.0) -> pd.DataFrame:
    """Return ``n`` delivery orders (7 features). ``hour_of_day`` defaults to the daily rhythm."""
    drift = np.broadcast_to(np.asarray(drift, dtype=float), (n,))
    if hour_of_day is None:
        hour_of_day = rng.choice(24, n, p=DELIVERY_HOURLY / DELIVERY_HOURLY.sum())
    zone = rng.choice(3, n, p=[0.45, 0.40, 0.15])
    distance = np.round(np.clip(rng.lognormal(np.log(np.array([1.8, 4.0, 8.5])[zone]), 0.45), 0.2, 30.0), 2)
    p_courier = np.column_stack([np.exp(-0.5 * distance), np.full(n, 0.5), np.exp(0.25 * (distance - 6))])
    courier = _choice_codes(rng, p_courier)
    p_weather = np.column_stack([0.72 - 0.22 * drift, 0.22 + 0.10 * drift, 0.06 + 0.12 * drift])
    weather = _choice_codes(rng, p_weather)
    items = 1 + np.minimum(rng.poisson(1.4, n), 12)
    prep = np.round(4 + rng.gamma(2.0, 3.5, n) + 1.2 * items, 1)
    return pd.DataFrame({
        "distance_km": distance,
        "items": items.astype(np.int64),
        "hour_of_day": np.asarray(hour_of_day).astype(np.int64),
        "prep_minutes": prep,
        "courier_type": _categorical(courier, COURIER),
        "weather": _categorical(weather, WEATHER),
        "zone": _categorical(zone, ZONE),
    })


def delivery_minutes(rng: np.random.Generator, X: pd.DataFrame, shift: np.ndarray | bool = False) -> np.ndarray:
    """Draw the delivery time in minutes of each order (after the road closure where ``shift``)."""
    n = len(X)
    shift = np.broadcast_to(np.asarray(shift, dtype=bool), (n,))
    courier = X["courier_type"].cat.codes.to_numpy()
    weather = X["weather"].cat.codes.to_numpy()
    zone = X["zone"].cat.codes.to_numpy()
    hour = X["hour_of_day"].to_numpy()
    speed = np.array([14.0, 24.0, 30.0])[courier] * np.where((zone == 0) & (courier == 2), 0.6, 1.0)
    speed = speed * np.array([1.0, 0.85, 0.6])[weather]
    rush = ((hour >= 11) & (hour <= 13)) | ((hour >= 18) & (hour <= 20))
    minutes = (X["prep_minutes"].to_numpy() + 60 * X["distance_km"].to_numpy() / speed + 3
               + np.where(rush, 6.0, 0.0) + rng.normal(0, 3.5, n))
    minutes = minutes + np.where(shift & (zone > 0), 9.0 + 1.5 * X["distance_km"].to_numpy(), 0.0)
    return np.round(np.maximum(minutes, 5.0), 1)


def daily_counts(rng: np.random.Generator, weekdays: np.ndarray, daily: int, weekday_weights: np.ndarray) -> np.ndarray:
    """Number of requests on each day: ``daily`` scaled by the weekday rhythm, +-5% noise (mean ``daily``)."""
    w = weekday_weights / weekday_weights.mean()
    return np.maximum(np.round(daily * w[weekdays] * rng.normal(1.0, 0.05, len(weekdays))), 0).astype(np.int64)


def times_of_day(rng: np.random.Generator, n: int, hourly_weights: np.ndarray) -> np.ndarray:
    """Offsets within a day in microseconds (sorted), following the hourly rhythm."""
    hours = rng.choice(24, n, p=hourly_weights / hourly_weights.sum())
    micros = hours * 3_600_000_000 + rng.integers(0, 3_600_000_000, n)
    micros.sort()
    return micros


def label_delays(rng: np.random.Generator, n: int, missing_rate: float = 0.10) -> np.ndarray:
    """Label delay of each request in microseconds: 1 to 14 days (most within the first week); -1 = never arrives."""
    days = 1.0 + 13.0 * rng.beta(1.3, 3.0, n)
    micros = np.round(days * 86_400_000_000).astype(np.int64)
    return np.where(rng.random(n) < missing_rate, -1, micros)


def credit_training_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """A training set for credit_default from last year's label process (features + ``default``)."""
    X = credit_features(rng, n)
    X[CREDIT_TARGET] = credit_labels(rng, X, legacy=True)
    return X


def delivery_training_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """A training set for delivery_time before any drift or shift (features + ``delivery_minutes``)."""
    X = delivery_features(rng, n)
    X[DELIVERY_TARGET] = delivery_minutes(rng, X)
    return X

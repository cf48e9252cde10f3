"""Incidents: what an alert rule, an unusual run or a policy raised, with its life cycle (see ``alerts``).

One incident per model and key (a rule and its subject, a run series and statistic, the policy):
``raise_incident`` records each occurrence (a window, a run, an evaluation), opening, updating or
reopening the incident; ``acknowledge``, ``resolve`` and ``snooze`` are what a person does with it,
each audited. New and reopened incidents are queued for the webhooks (``webhooks.enqueue``) in the
same transaction.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pandas as pd

from mlops_core.clock import utcnow
from mlops_core.errors import InvalidInputError
from mlops_core.monitoring import webhooks
from mlops_core.store import alerts as astore
from mlops_core.store import runs as runstore
from mlops_core.store import transaction

#: Longest snooze accepted.
MAX_SNOOZE = timedelta(days=30)
#: Statuses of an incident a person sees (``merged``: alerts folded into an incident by migration 055).
STATUSES = ("open", "acknowledged", "resolved")


def list_incidents(con: duckdb.DuckDBPyConnection, model: str | None = None, *, open_only: bool = False,
                statuses: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Incidents, the most recently seen first (of one model, or all). ``open_only``: those that need someone
    (status open, not snoozed); ``statuses``: only these of open, acknowledged, resolved.

    Columns: id, model, kind, severity, title, subject, message (of the latest occurrence), status,
    first_seen, last_seen, windows, current_value, current_text, snoozed_until, acknowledged, acknowledged_by,
    acknowledged_at, resolved_by, resolved_at, reopened, raised_at, rule_id, window_start, details, ...
    """
    return astore.list_alerts(con, model, open_only, now=utcnow(), statuses=statuses)


def _audited(con, change, action: str, alert_id: int, *, actor: str, reason: str, details: dict | None = None) -> bool:
    now = utcnow()
    with transaction(con):
        model = change(now)
        if model is not None:
            runstore.insert_audit(con, actor=actor, action=action, model=model, reason=reason,
                                  details={"alert_id": int(alert_id), **(details or {})}, at=now)
    return model is not None


def acknowledge(con: duckdb.DuckDBPyConnection, alert_id: int, *, actor: str) -> bool:
    """Acknowledge an open incident (someone is on it; it keeps counting windows) and audit it; False when it was
    not open. Raises NotFoundError."""
    return _audited(con, lambda now: astore.acknowledge(con, int(alert_id), actor, now), "acknowledge_alert",
                    alert_id, actor=actor, reason=f"alert {alert_id} acknowledged")


def resolve(con: duckdb.DuckDBPyConnection, alert_id: int, *, actor: str) -> bool:
    """Resolve an incident (a later window in which it fires reopens it) and audit it; False when it already was.
    Raises NotFoundError."""
    return _audited(con, lambda now: astore.resolve(con, int(alert_id), actor, now), "resolve_alert",
                    alert_id, actor=actor, reason=f"alert {alert_id} resolved")


def snooze(con: duckdb.DuckDBPyConnection, alert_id: int, hours: float, *, actor: str) -> datetime:
    """Hide an incident from the open list and from notifications for ``hours`` (audited); return until when.
    Raises InvalidInputError (hours not in (0, 720]), NotFoundError."""
    try:
        span = timedelta(hours=float(hours))
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInputError(f"Snooze for a number of hours, not {hours!r}.") from exc
    if not timedelta(0) < span <= MAX_SNOOZE:
        raise InvalidInputError(f"Snooze for more than 0 and at most {MAX_SNOOZE.days * 24} hours, not {hours!r}.",
                                hours=hours)
    until = utcnow() + span
    _audited(con, lambda now: astore.snooze(con, int(alert_id), until, actor, now), "snooze_alert", alert_id, actor=actor,
             reason=f"alert {alert_id} snoozed until {until:%Y-%m-%d %H:%M} UTC", details={"until": until})
    return until


def raise_incident(con: duckdb.DuckDBPyConnection, *, model: str, kind: str, severity: str, key: str, subject: str,
                   title: str, message: str, occurred: datetime, at: datetime, value: float | None = None,
                   value_text: str | None = None, details: dict | None = None,
                   rule_id: int | None = None) -> tuple[int, str | None]:
    """Record one occurrence of the incident ``key`` (see the module docstring) and queue a new or reopened one
    for the webhooks, on the write visit ``con`` (inside its transaction). Returns (incident id, event: new,
    reopened, updated, or None when nothing new was seen)."""
    alert_id, event = astore.upsert_incident(
        con, model=model, kind=kind, severity=severity, key=key, subject=subject, title=title, message=message,
        occurred=occurred, value=value, value_text=value_text, details=details, at=at, rule_id=rule_id)
    if event in ("new", "reopened"):
        webhooks.enqueue(con, alert_id=alert_id, model=model, severity=severity, event=event, at=at)
    return alert_id, event



__all__ = ["MAX_SNOOZE", "STATUSES", "acknowledge", "list_incidents", "raise_incident", "resolve", "snooze"]

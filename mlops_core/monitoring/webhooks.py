"""Incidents posted to webhooks: Slack-compatible JSON, an outbox, retries with backoff, outcomes kept.

A webhook (``add``: admin only, an http(s) address) receives the new and reopened incidents of
one model, or of every model, from a minimum severity up. The transaction that opens or reopens
an incident also queues one delivery per matching webhook (``enqueue``: an outbox row), so a
delivery is never lost when the process stops before sending it; ``deliver_pending`` then sends
the queue *after* that transaction (the database is never held while a receiver answers): each
delivery is tried ``ATTEMPTS`` times, waiting ``BACKOFF_S`` seconds, then twice that, between
tries; a receiver that answers 2xx has it, 429 and 5xx answers and network errors are retried,
other answers fail at once. The outcome (delivered or failed, attempts, HTTP status, error) is
stored and shown on the Automation page; failed deliveries are sent again on request
(``retry_failed``). The monitor (``alerts.run_monitoring``) sends after every run.

The body is what a Slack incoming webhook takes (``{"text": ..., "blocks": [...]}``, text with
``&``, ``<`` and ``>`` escaped as Slack requires), so a Slack channel, Mattermost or any
receiver that reads JSON can take it.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import duckdb

from mlops_core.clock import utcnow
from mlops_core.entities import Webhook, WebhookDelivery
from mlops_core.errors import InvalidInputError
from mlops_core.store import Store
from mlops_core.store import webhooks as wstore

ATTEMPTS = 3
BACKOFF_S = 1.0
TIMEOUT_S = 5.0
#: Longest a call of ``deliver_pending`` keeps sending; the rest stays queued for the next call.
BUDGET_S = 30.0
SEVERITIES = wstore.SEVERITY_ORDER


@dataclass
class DeliveryOutcome:
    """What ``deliver_pending`` did with one delivery."""

    delivery_id: int
    alert_id: int
    url: str
    delivered: bool
    attempts: int
    http_status: int | None
    error: str | None


def check_url(url: str) -> str:
    """``url`` when it is an http or https address with a host; InvalidInputError otherwise."""
    parts = urlsplit(str(url).strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(f"A webhook address must be an http:// or https:// URL with a host, not {url!r}.",
                                url=url)
    return str(url).strip()


def shown_url(url: str) -> str:
    """The address without its path and query (a Slack webhook's path is its secret): ``https://hooks.slack.com/…``."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…" if parts.path not in ("", "/") or parts.query else \
        f"{parts.scheme}://{parts.hostname}{port}"


def add(con: duckdb.DuckDBPyConnection, *, model: str | None, url: str, min_severity: str, actor: str) -> Webhook:
    """Store a webhook (of ``model``, or of every model when None). Raises InvalidInputError (url, severity)."""
    if min_severity not in SEVERITIES:
        raise InvalidInputError(f"Unknown severity {min_severity!r}. Choose one of: {', '.join(SEVERITIES)}.",
                                severity=min_severity)
    return wstore.add(con, model=model, url=check_url(url), min_severity=min_severity, actor=actor, at=utcnow())


def enqueue(con: duckdb.DuckDBPyConnection, *, alert_id: int, model: str, severity: str, event: str, at) -> int:
    """Queue an incident for its model's webhooks inside the caller's transaction; return how many."""
    return wstore.enqueue(con, alert_id=alert_id, model=model, severity=severity, event=event, at=at)


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(d: WebhookDelivery) -> dict:
    """The Slack-compatible JSON body of a delivery."""
    what = {"new": "New incident", "reopened": "Reopened incident", "test": "Test message"}.get(d.event, "Incident")
    seen = ""
    if d.first_seen is not None and d.last_seen is not None:
        seen = (f" Seen in {d.windows or 1} window(s), {d.first_seen:%Y-%m-%d %H:%M} to "
                f"{d.last_seen:%Y-%m-%d %H:%M} UTC.")
    now = f" Now: {d.current_text}." if d.current_text else ""
    text = _escape(f"[{d.severity}] {d.model}: {d.title}. {d.message}{now}{seen}")
    head = _escape(f"{what} · {d.model} · {d.severity}")
    return {"text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{head}*\n{text}"}},
    ]}


def post(url: str, body: dict, *, timeout: float = TIMEOUT_S) -> tuple[bool, int | None, str | None, bool]:
    """POST ``body`` as JSON once: (delivered, HTTP status, error, worth retrying)."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST",  # noqa: S310 (check_url: http(s) only)
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "mlops-control-room"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (check_url: http(s) only)
            return True, int(response.status), None, False
    except urllib.error.HTTPError as exc:
        retry = exc.code == 429 or exc.code >= 500
        return False, int(exc.code), f"HTTP {exc.code} {exc.reason}", retry
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, None, f"{type(exc).__name__}: {reason}", True


def send(delivery: WebhookDelivery, *, attempts: int | None = None, backoff: float | None = None,
         timeout: float | None = None) -> DeliveryOutcome:
    """Post one delivery, retrying with doubling waits (defaults: ``ATTEMPTS``, ``BACKOFF_S``, ``TIMEOUT_S``);
    never raises."""
    attempts = ATTEMPTS if attempts is None else attempts
    backoff = BACKOFF_S if backoff is None else backoff
    timeout = TIMEOUT_S if timeout is None else timeout
    body = payload(delivery)
    status, error, tried = None, None, 0
    for i in range(max(1, attempts)):
        if i:
            time.sleep(backoff * 2 ** (i - 1))
        tried += 1
        ok, status, error, again = post(delivery.url, body, timeout=timeout)
        if ok:
            return DeliveryOutcome(delivery.id, delivery.alert_id, delivery.url, True, delivery.attempts + tried,
                                   status, None)
        if not again:
            break
    return DeliveryOutcome(delivery.id, delivery.alert_id, delivery.url, False, delivery.attempts + tried, status,
                           error)


def deliver_pending(store: Store, *, retry_failed: bool = False, attempts: int | None = None,
                    backoff: float | None = None, timeout: float | None = None,
                    budget: float | None = None) -> list[DeliveryOutcome]:
    """Send the queued deliveries (and the failed ones with ``retry_failed``) and store their outcomes; return
    them. A webhook that failed one delivery gets no more in this call (they stay queued). Never raises for a
    receiver's failure; a database without webhooks costs one short read."""
    with store.connect() as con:
        if not retry_failed and not wstore.has_pending(con):
            return []
        todo = wstore.pending(con, retry_failed=retry_failed)
    out: list[DeliveryOutcome] = []
    broken: set[int] = set()
    budget = BUDGET_S if budget is None else budget
    t0 = time.monotonic()
    for d in todo:
        if d.webhook_id in broken or time.monotonic() - t0 > budget:
            continue
        outcome = send(d, attempts=attempts, backoff=backoff, timeout=timeout)
        if not outcome.delivered:
            broken.add(d.webhook_id)
        out.append(outcome)
    if out:
        now = utcnow()
        with store.transaction() as con:
            for o in out:
                wstore.record(con, o.delivery_id, status="delivered" if o.delivered else "failed",
                              attempts=o.attempts, http_status=o.http_status, error=o.error, at=now)
    return out


__all__ = [
    "ATTEMPTS",
    "BACKOFF_S",
    "SEVERITIES",
    "DeliveryOutcome",
    "add",
    "check_url",
    "deliver_pending",
    "enqueue",
    "payload",
    "post",
    "send",
    "shown_url",
]

"""SQL of incident notifications: webhooks (``alert_webhooks``) and their deliveries (``alert_deliveries``)."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from mlops_core.entities import Webhook, WebhookDelivery
from mlops_core.errors import NotFoundError

if TYPE_CHECKING:  # pandas loads with the first frame, not with every command (see tests/test_startup.py)
    import pandas as pd

#: Severities from least to most urgent (a webhook takes its minimum and everything above).
SEVERITY_ORDER = ("info", "warning", "critical")

_WEBHOOK_COLUMNS = "id, model, url, min_severity, enabled, created_at, created_by"


def add(con: duckdb.DuckDBPyConnection, *, model: str | None, url: str, min_severity: str, actor: str,
        at: datetime) -> Webhook:
    row = con.execute(f"INSERT INTO alert_webhooks (model, url, min_severity, enabled, created_at, created_by) "
                      f"VALUES (?, ?, ?, TRUE, ?, ?) RETURNING {_WEBHOOK_COLUMNS}",
                      [model, url, min_severity, at, actor]).fetchone()
    return Webhook(*row)


def find(con: duckdb.DuckDBPyConnection, model: str | None = None) -> list[Webhook]:
    """Every webhook (``model`` given: those of that model and those of every model), oldest first."""
    sql, params = f"SELECT {_WEBHOOK_COLUMNS} FROM alert_webhooks", []
    if model is not None:
        sql += " WHERE model IS NULL OR model = ?"
        params.append(model)
    return [Webhook(*r) for r in con.execute(sql + " ORDER BY id", params).fetchall()]


def get(con: duckdb.DuckDBPyConnection, webhook_id: int) -> Webhook:
    row = con.execute(f"SELECT {_WEBHOOK_COLUMNS} FROM alert_webhooks WHERE id = ?", [webhook_id]).fetchone()
    if row is None:
        raise NotFoundError(f"No webhook with id {webhook_id}. List them with `mlops webhook list`.",
                            webhook_id=webhook_id)
    return Webhook(*row)


def remove(con: duckdb.DuckDBPyConnection, webhook_id: int) -> Webhook:
    hook = get(con, webhook_id)
    con.execute("DELETE FROM alert_deliveries WHERE webhook_id = ? AND status = 'pending'", [webhook_id])
    con.execute("DELETE FROM alert_webhooks WHERE id = ?", [webhook_id])
    return hook


def enqueue(con: duckdb.DuckDBPyConnection, *, alert_id: int, model: str, severity: str, event: str,
            at: datetime, webhook_id: int | None = None) -> int:
    """Queue the incident for every enabled webhook of its model whose minimum severity it reaches (or for
    ``webhook_id`` only); return how many deliveries were queued."""
    rank = SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else 0
    allowed = list(SEVERITY_ORDER[:rank + 1])
    sql = (f"INSERT INTO alert_deliveries (alert_id, webhook_id, event, status, attempts, created_at) "
           f"SELECT ?, id, ?, 'pending', 0, ? FROM alert_webhooks WHERE enabled AND (model IS NULL OR model = ?) "
           f"AND min_severity IN ({', '.join('?' for _ in allowed)})")
    params: list = [alert_id, event, at, model, *allowed]
    if webhook_id is not None:
        sql += " AND id = ?"
        params.append(webhook_id)
    return int(con.execute(sql + " RETURNING id", params).df().shape[0])


def has_pending(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT count(*) FROM alert_deliveries WHERE status = 'pending'").fetchone()[0])


def pending(con: duckdb.DuckDBPyConnection, *, retry_failed: bool = False, limit: int = 100) -> list[WebhookDelivery]:
    """Deliveries to send (oldest first), with their webhook's address and the incident as it is now."""
    statuses = "('pending', 'failed')" if retry_failed else "('pending')"
    rows = con.execute(
        "SELECT d.id, d.webhook_id, w.url, d.event, d.attempts, a.id, a.model, a.severity, "
        "coalesce(a.title, a.kind), a.message, a.current_text, a.status, a.first_seen, a.last_seen, a.windows "
        "FROM alert_deliveries d JOIN alert_webhooks w ON w.id = d.webhook_id JOIN alerts a ON a.id = d.alert_id "
        f"WHERE d.status IN {statuses} ORDER BY d.id LIMIT ?", [limit]).fetchall()
    return [WebhookDelivery(*r) for r in rows]


def record(con: duckdb.DuckDBPyConnection, delivery_id: int, *, status: str, attempts: int, http_status: int | None,
           error: str | None, at: datetime) -> None:
    con.execute("UPDATE alert_deliveries SET status = ?, attempts = ?, http_status = ?, last_error = ?, "
                "finished_at = ? WHERE id = ?", [status, attempts, http_status, error, at, delivery_id])


def deliveries_frame(con: duckdb.DuckDBPyConnection, model: str | None = None, limit: int = 200) -> pd.DataFrame:
    """Recent deliveries, newest first: id, alert_id, model, title, webhook_id, url, event, status, attempts,
    http_status, last_error, created_at, finished_at."""
    sql, params = ("SELECT d.id, d.alert_id, a.model, coalesce(a.title, a.kind) AS title, d.webhook_id, w.url, "
                   "d.event, d.status, d.attempts, d.http_status, d.last_error, d.created_at, d.finished_at "
                   "FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id "
                   "LEFT JOIN alert_webhooks w ON w.id = d.webhook_id"), []
    if model is not None:
        sql += " WHERE a.model = ?"
        params.append(model)
    return con.execute(sql + " ORDER BY d.id DESC LIMIT ?", [*params, limit]).df()

"""State-changing actions from the dashboard: call the public API as the acting identity, then clear every
cached read.

Each action is one call into ``mlops_core`` (which checks the identity's role and writes its
run and audit rows in one transaction); errors propagate as ``MlopsError`` for the caller to show.
"""
from __future__ import annotations

from mlops_core import ControlRoom
from mlops_core.access import Identity
from mlops_core.entities import Promotion
from mlops_core.errors import MlopsError, PermissionDeniedError

from . import auth, data


def identity() -> Identity:
    """Who acts from this dashboard session: the signed-in identity (``ui.auth``); the core checks its role."""
    ident = auth.current()
    if ident is None:
        raise PermissionDeniedError("Log in first: nobody is signed in to this session.")
    return ident


def _room(db: str) -> ControlRoom:
    return ControlRoom(db, identity=identity())


def promote(db: str, model: str, version: int, reason: str | None, force: bool = False) -> Promotion:
    try:
        return _room(db).model(model).promote(int(version), reason=reason or None, force=force)
    finally:
        data.clear()


def rollback(db: str, model: str, to: int | None, reason: str | None) -> Promotion:
    try:
        return _room(db).model(model).rollback(to=to, reason=reason or None)
    finally:
        data.clear()


def start_retrain(db: str, model: str, params: dict) -> str:
    """Start a background retrain and return its run id; AlreadyRunningError when one runs."""
    try:
        return _room(db).model(model).retrain(params)
    finally:
        data.clear()


def warm_up_jobs(db: str) -> None:
    """Start the database's job worker when none runs, once per session, so that a retrain started from this page
    runs at once in a process that has its imports loaded; a failure here is silent (the Retrain button starts
    a worker itself and says what went wrong)."""
    import streamlit as st

    key = f"_job_worker_started:{db}"
    if st.session_state.get(key):
        return
    st.session_state[key] = True
    try:
        _room(db).start_worker()
    except (MlopsError, OSError):
        pass


def acknowledge(db: str, alert_id: int) -> bool:
    """Acknowledge an open incident (audited); False when it was not open."""
    try:
        return _room(db).acknowledge(int(alert_id))
    finally:
        data.clear()


def resolve(db: str, alert_id: int) -> bool:
    """Resolve an incident (audited); False when it already was."""
    try:
        return _room(db).resolve(int(alert_id))
    finally:
        data.clear()


def snooze(db: str, alert_id: int, hours: float):
    """Snooze an incident for ``hours`` (audited); return until when."""
    try:
        return _room(db).snooze(int(alert_id), hours)
    finally:
        data.clear()


def webhooks(db: str, model: str):
    """The webhooks that receive the model's incidents (operators and admins only: the addresses are secrets)."""
    return _room(db).webhooks(model)


def add_webhook(db: str, model: str | None, url: str, min_severity: str):
    try:
        return _room(db).add_webhook(url, model=model, min_severity=min_severity)
    finally:
        data.clear()


def remove_webhook(db: str, webhook_id: int):
    try:
        return _room(db).remove_webhook(webhook_id)
    finally:
        data.clear()


def retry_deliveries(db: str):
    """Send the queued and the failed deliveries of incidents again; return the outcomes."""
    try:
        return _room(db).deliver_webhooks(retry_failed=True)
    finally:
        data.clear()


def set_policy(db: str, model: str, **settings):
    try:
        return _room(db).model(model).set_policy(**settings)
    finally:
        data.clear()


def set_deployment(db: str, model: str, mode: str, **settings):
    """Serve ``model`` in ``mode`` (champion, split, shadow, canary); audited. Returns the new config."""
    try:
        return _room(db).model(model).set_deployment(mode, **settings)
    finally:
        data.clear()


def promote_winner(db: str, model: str, reason: str | None):
    """Act on the decided A/B test (promote the winning challenger or keep the champion); audited."""
    try:
        return _room(db).model(model).promote_winner(reason=reason or None)
    finally:
        data.clear()

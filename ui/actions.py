"""State-changing actions from the dashboard: call the core, then clear every cached read.

Each action is one call into ``mlops_core`` (which writes its run and audit rows in one
transaction); errors propagate as ``MlopsError`` for the caller to show.
"""
from __future__ import annotations

import os

from ui import data

#: Who the audit log names for actions taken in the dashboard (``MLOPS_ACTOR`` overrides).
ACTOR = os.environ.get("MLOPS_ACTOR") or "dashboard"


def promote(db: str, model: str, version: int, reason: str | None, force: bool = False) -> dict:
    try:
        return data.fn("registry", "promote")(model, int(version), actor=ACTOR, reason=reason or None, force=force,
                                              db=db)
    finally:
        data.clear()


def rollback(db: str, model: str, to: int | None, reason: str | None) -> dict:
    try:
        return data.fn("registry", "rollback")(model, to=to, actor=ACTOR, reason=reason or None, db=db)
    finally:
        data.clear()


def start_retrain(db: str, model: str, params: dict) -> str:
    """Start a background retrain and return its run id; AlreadyRunningError when one runs."""
    try:
        return data.fn("jobs", "start_retrain")(model, actor=ACTOR, trigger="manual", params=params, db=db)
    finally:
        data.clear()


def acknowledge(db: str, alert_id: int) -> None:
    try:
        data.fn("alerts", "acknowledge")(int(alert_id), actor=ACTOR, db=db)
    finally:
        data.clear()


def set_policy(db: str, model: str, **settings):
    try:
        return data.fn("automation", "set_policy")(model, actor=ACTOR, db=db, **settings)
    finally:
        data.clear()

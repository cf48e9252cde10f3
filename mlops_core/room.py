"""The public API: one ``ControlRoom`` built from a location, and a ``Model`` handle per registered model.

Every client calls this: the CLI (``mlops``), the dashboard, background jobs, the demo
builder, benchmarks and tests::

    room = ControlRoom("mlops.duckdb", identity=Identity("maria", "operator"))
    credit = room.model("credit_default")          # resolved once: its schema, task, target
    credit.performance(window="day", start="2026-11-01")
    credit.promote(3, reason="better ROC AUC on the same holdout")

The room owns the store (today a DuckDB file and its artifacts folder) and the acting
identity; every state-changing method checks the identity's role first (``access``)
and records its name in the run and audit rows. Reads need no role. Times may be given
as datetimes, dates or ISO strings (naive = UTC); a bare date as an end means the end of
that day. Methods raise the errors of ``mlops_core.errors`` only.
"""
from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from mlops_core import accounts
from mlops_core.access import Identity
from mlops_core.data import ingest as ingestmod
from mlops_core.entities import (CalibrationRecord, ModelInfo, Promotion, RunAnomaly, RunInfo, UserInfo, VersionInfo,
                                 Webhook, WebhookDelivery, dumps)
from mlops_core.errors import AuthenticationError, InvalidInputError
from mlops_core.lifecycle import abtest, automation, jobs, policies, registry, retrain
from mlops_core.lifecycle.artifacts import load_estimator_file
from mlops_core.monitoring import (alerts, drift, estimated_performance, estimation, incidents, performance,
                                   run_checks, validation, windows)
from mlops_core.monitoring import webhooks as hooks
from mlops_core.monitoring import verdict as verdictmod
from mlops_core.monitoring.performance import Summary
from mlops_core.store import Store, logs, utcnow
from mlops_core.store import backup as backupmod
from mlops_core.store import models as mstore
from mlops_core.store import predictions as pstore
from mlops_core.store import run_anomalies as anomstore
from mlops_core.store import runs as runstore
from mlops_core.store import webhooks as wstore
from mlops_core.store.logs import LogView
from mlops_core.times import parse_time

Time = datetime | date | str | None
#: A batch or training set: a CSV/Parquet path, a DataFrame or an Arrow table.
Source = Any
#: Versions to restrict a query to.
Versions = Sequence[int] | None


def local_identity_at(location: str | os.PathLike | None, actor: str | None = None) -> Identity:
    """The identity of a local process (the CLI) at a location: the OS user, with the role of the account of
    the same name when there is one (viewer when that account is disabled), else admin (see
    ``local_identity``). ``actor`` acts under another name (the audit shows it), which only an admin may do:
    automation and scripts that act for someone."""
    me = local_identity()
    store = Store(location)
    if accounts.has_account(store, me.name):
        me = Identity(me.name, accounts.role_of(store, me.name) or "viewer")
    if actor and actor != me.name:
        me.require("admin", f"act as {actor!r} (--actor)")
        me = Identity(accounts.check_actor(actor), me.role)
    return me


def local_identity() -> Identity:
    """The identity of a local process that holds the database file itself: the OS user, as admin.

    Whoever can write the database file can change anything in it, so a local client (the CLI,
    a script) acts with the admin role under its OS user name; the dashboard and the service
    build their identity from a login instead.
    """
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = f"uid-{os.getuid()}"
    return Identity(name, "admin")


def _bounds(start: Time, end: Time) -> tuple[datetime, datetime]:
    """[start, end) from what a caller gave; both are required."""
    first, last = parse_time(start), parse_time(end, end=True)
    if first is None or last is None:
        raise InvalidInputError("Give both the start and the end of the window.")
    return first, last


def _estimator(artifact: Any, identity: Identity, trust_pickle: bool) -> Any:
    """An estimator given as an object, or as the path of a skops file holding one (a pickle/joblib file only with
    ``trust_pickle``, which needs the admin role: loading a pickle runs any code inside it)."""
    if trust_pickle:
        identity.require("admin", "load a pickle file (trust_pickle, --trust-pickle)")
    if artifact is None or hasattr(artifact, "predict"):
        return artifact
    return load_estimator_file(artifact, trust_pickle=trust_pickle)


@dataclass
class ModelStatus:
    """A model at a glance: versions, production version, log sizes, newest prediction."""

    model: str
    task: str
    target: str
    production_version: int | None
    versions: list[VersionInfo]
    predictions: int
    labels: int
    last_prediction_at: datetime | None
    features: list[str]


class ControlRoom:
    """The control room at one location (a DuckDB path; ``None``: ``$MLOPS_DB``, else ``./mlops.duckdb``)."""

    def __init__(self, location: str | os.PathLike | None = None, *, identity: Identity | None = None):
        self.store = Store(location)
        self.identity = identity or local_identity()

    def __repr__(self) -> str:
        return f"ControlRoom({str(self.store.path)!r}, identity={self.identity.name!r})"

    def acting_as(self, identity: Identity) -> "ControlRoom":
        """The same location with another acting identity."""
        return ControlRoom(self.store.path, identity=identity)

    # --- models ---------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the database exists yet."""
        return self.store.exists()

    def models(self) -> list[ModelInfo]:
        """Every registered model (empty when the database does not exist yet)."""
        if not self.store.exists():
            return []
        with self.store.connect() as con:
            return mstore.list_models(con)

    def model(self, name: str) -> "Model":
        """The handle of the model ``name``; raises NotFoundError listing the known models."""
        with self.store.connect() as con:
            return Model(self, mstore.get_model(con, name))

    def register(self, name: str, task: str, target: str, training_data: Source, *, artifact: Any = None, seed: int = 0,
                 description: str | None = None, unit: str | None = None, at: datetime | None = None,
                 train_start: datetime | None = None, train_end: datetime | None = None,
                 trust_pickle: bool = False) -> registry.Registration:
        """Register a new model from its training data (a file path or DataFrame); version 1 goes to production.

        ``artifact``: an already fitted scikit-learn estimator or Pipeline, or the path of a skops file
        of one (``skops.io.dump``), to register as version 1 (default: train the default pipeline).
        A pickle/joblib file is refused unless ``trust_pickle=True``: loading it runs any code inside
        it, so only pass it for a file you built yourself. Needs the admin role.
        Raises InvalidInputError (also for a pickle without ``trust_pickle``), NotFoundError,
        AlreadyExistsError, PermissionDeniedError.
        """
        self.identity.require("admin", "register models")
        estimator = _estimator(artifact, self.identity, trust_pickle)
        return registry.register_model(self.store, name, task, target, training_data, actor=self.identity.name,
                                       artifact=estimator, seed=seed, description=description, unit=unit, at=at,
                                       train_start=train_start, train_end=train_end)

    # --- accounts ---------------------------------------------------------------------------

    @classmethod
    def login(cls, location: str | os.PathLike | None, name: str, password: str) -> "ControlRoom":
        """The room acting as account ``name`` after checking its password (argon2id hash in the database).

        Raises AuthenticationError (exit code 6) with one message for an unknown name, a wrong password
        and a disabled account. Works on a read-only database.
        """
        store = Store(location)
        return cls(store.path, identity=accounts.authenticate(store, name, password))

    @classmethod
    def for_account(cls, location: str | os.PathLike | None, name: str, *,
                    default_role: str | None = None) -> "ControlRoom":
        """The room acting as ``name`` whom someone else authenticated (an OpenID Connect provider): the role
        of their enabled account, else ``default_role``; AuthenticationError when neither applies."""
        store = Store(location)
        role = accounts.role_of(store, name)
        if role is None and (default_role is None or accounts.has_account(store, name)):
            raise AuthenticationError(f"{name} has no enabled account here; ask an admin to add one "
                                      f"(`mlops users add {name} --role viewer --no-password`).", user=name)
        return cls(store.path, identity=Identity(name, role or default_role or "viewer"))

    def users(self) -> list[UserInfo]:
        """Every account (never a password hash). Needs the admin role."""
        self.identity.require("admin", "list users")
        return accounts.list_users(self.store)

    def add_user(self, name: str, role: str = "viewer", password: str | None = None) -> UserInfo:
        """Create an account (audited); ``password`` None: no password login (OpenID Connect only). Needs admin."""
        self.identity.require("admin", "add users")
        return accounts.add_user(self.store, name, role, password, actor=self.identity.name)

    def set_role(self, name: str, role: str) -> UserInfo:
        """Change an account's role (audited); the last enabled admin keeps theirs. Needs admin."""
        self.identity.require("admin", "change roles")
        return accounts.set_role(self.store, name, role, actor=self.identity.name)

    def reset_password(self, name: str, password: str | None = None) -> str:
        """Set an account's password (a random one when None) and return it. Needs admin."""
        self.identity.require("admin", "reset passwords")
        password = password or accounts.new_password()
        accounts.set_password(self.store, name, password, actor=self.identity.name)
        return password

    def disable_user(self, name: str, disabled: bool = True) -> UserInfo:
        """Disable (or, with ``disabled=False``, enable) an account; the last enabled admin stays. Needs admin."""
        self.identity.require("admin", "disable users")
        return accounts.set_disabled(self.store, name, disabled, actor=self.identity.name)

    def change_password(self, current: str, new: str) -> None:
        """Replace the acting account's own password after checking the current one (any role)."""
        accounts.change_own_password(self.store, self.identity, current, new)

    def bootstrap_admin(self) -> str | None:
        """Create the first admin account ``admin`` with a random password when there is no account yet and
        return that password (to show once); None when accounts exist. Needs admin (the local identity)."""
        self.identity.require("admin", "create the first admin")
        return accounts.bootstrap(self.store, actor=self.identity.name)

    # --- backup -----------------------------------------------------------------------------

    def backup(self, out: str | os.PathLike) -> backupmod.BackupInfo:
        """Write a consistent, hash-verified backup (metadata, artifacts, logs) into the new folder ``out``.
        Needs the admin role (a backup holds the accounts' password hashes). See ``store/backup.py``."""
        self.identity.require("admin", "back up the database")
        return backupmod.backup(self.store, out)

    def restore(self, folder: str | os.PathLike, *, force: bool = False) -> tuple[backupmod.BackupInfo, Path | None]:
        """Replace this location's database by the backup in ``folder`` after verifying every file's sha256;
        the replaced data is moved aside, never deleted (returned path). ``force`` is needed when a database
        exists. Needs the admin role."""
        self.identity.require("admin", "restore a backup")
        return backupmod.restore(self.store, folder, force=force)

    @staticmethod
    def verify_backup(folder: str | os.PathLike) -> backupmod.BackupInfo:
        """Check a backup against its manifest (sizes and sha256) without restoring it; IntegrityError if not."""
        return backupmod.verify(folder)

    # --- records of every model -------------------------------------------------------------

    def runs(self, model: str | None = None) -> pd.DataFrame:
        """Pipeline runs, newest first (of one model, or all); params/metrics/statistics are JSON text, and so is
        ``anomalies``: the list of what was unusual about each run (``RunAnomaly`` records, ``[]`` for none)."""
        with self.store.connect() as con:
            if model is not None:
                mstore.get_model(con, model)
            frame = runstore.runs_frame(con, model)
            found = anomstore.find(con, model)
        by_run: dict[str, list[RunAnomaly]] = {}
        for finding in found:
            by_run.setdefault(finding.run_id, []).append(finding)
        frame["anomalies"] = [dumps(by_run.get(run_id, [])) for run_id in frame["id"]]
        return frame

    def run_anomalies(self, model: str | None = None) -> list[RunAnomaly]:
        """What was unusual about finished runs (of one model, or all), newest first; see
        ``monitoring.run_anomalies``. Raises NotFoundError (model)."""
        with self.store.connect() as con:
            if model is not None:
                mstore.get_model(con, model)
            return anomstore.find(con, model)

    def audit(self, model: str | None = None) -> pd.DataFrame:
        """Audit events, newest first (of one model, or all)."""
        with self.store.connect() as con:
            if model is not None:
                mstore.get_model(con, model)
            return runstore.audit_frame(con, model)

    def alerts(self, *, open_only: bool = False, statuses: Sequence[str] | None = None) -> pd.DataFrame:
        """Incidents of every model, the most recently seen first (see ``monitoring.incidents``): ``open_only`` those
        that need someone (open, not snoozed), ``statuses`` only these (open, acknowledged, resolved)."""
        with self.store.connect() as con:
            return incidents.list_incidents(con, None, open_only=open_only,
                                            statuses=tuple(statuses) if statuses else None)

    def acknowledge(self, alert_id: int) -> bool:
        """Acknowledge an open incident (audited); False when it was not open. Needs the operator role."""
        self.identity.require("operator", "acknowledge alerts")
        with self.store.connect(write=True) as con:
            return incidents.acknowledge(con, int(alert_id), actor=self.identity.name)

    def resolve(self, alert_id: int) -> bool:
        """Resolve an incident (audited; a later window in which it fires reopens it); False when it already was.
        Needs the operator role."""
        self.identity.require("operator", "resolve alerts")
        with self.store.connect(write=True) as con:
            return incidents.resolve(con, int(alert_id), actor=self.identity.name)

    def snooze(self, alert_id: int, hours: float) -> datetime:
        """Hide an incident from the open list and notifications for ``hours`` (audited); return until when.
        Needs the operator role."""
        self.identity.require("operator", "snooze alerts")
        with self.store.connect(write=True) as con:
            return incidents.snooze(con, int(alert_id), hours, actor=self.identity.name)

    # --- webhooks ---------------------------------------------------------------------------

    def webhooks(self, model: str | None = None) -> list[Webhook]:
        """The webhooks (of one model: its own and those of every model). Needs the operator role (addresses of
        chat webhooks are secrets)."""
        self.identity.require("operator", "list webhooks")
        with self.store.connect() as con:
            return wstore.find(con, model)

    def add_webhook(self, url: str, *, model: str | None = None, min_severity: str = "warning") -> Webhook:
        """Post new and reopened incidents (of ``model``, or of every model) from ``min_severity`` up to ``url``
        as Slack-compatible JSON (see ``monitoring.webhooks``). Needs the admin role."""
        self.identity.require("admin", "add webhooks")
        with self.store.transaction() as con:
            if model is not None:
                mstore.get_model(con, model)
            return hooks.add(con, model=model, url=url, min_severity=min_severity, actor=self.identity.name)

    def remove_webhook(self, webhook_id: int) -> Webhook:
        """Delete a webhook (its queued deliveries with it). Needs the admin role."""
        self.identity.require("admin", "remove webhooks")
        with self.store.transaction() as con:
            return wstore.remove(con, int(webhook_id))

    def deliver_webhooks(self, *, retry_failed: bool = False) -> list[hooks.DeliveryOutcome]:
        """Send the queued incident deliveries now (and, with ``retry_failed``, the failed ones again); return the
        outcomes. Needs the operator role."""
        self.identity.require("operator", "deliver webhooks")
        return hooks.deliver_pending(self.store, retry_failed=retry_failed)

    def test_webhook(self, webhook_id: int) -> hooks.DeliveryOutcome:
        """Post a test message to a webhook (nothing stored); return the outcome. Needs the admin role."""
        self.identity.require("admin", "test webhooks")
        with self.store.connect() as con:
            hook = wstore.get(con, int(webhook_id))
        now = utcnow()
        return hooks.send(WebhookDelivery(
            id=0, webhook_id=hook.id, url=hook.url, event="test", attempts=0, alert_id=0, model=hook.model or "*",
            severity="info", title="Test message from the MLOps control room",
            message="Incidents will arrive here like this one.", current_text=None, status="open", first_seen=now,
            last_seen=now, windows=1))

    def webhook_deliveries(self, model: str | None = None) -> pd.DataFrame:
        """Recent deliveries of incidents to webhooks, newest first (status delivered, failed or pending, attempts,
        HTTP status, error); addresses shortened to their host."""
        with self.store.connect() as con:
            df = wstore.deliveries_frame(con, model)
        if len(df):
            df["url"] = df["url"].map(lambda u: hooks.shown_url(u) if isinstance(u, str) else None)
        return df

    def delete_alert_rule(self, rule_id: int) -> None:
        """Delete an alert rule. Needs the operator role."""
        self.identity.require("operator", "delete alert rules")
        with self.store.connect(write=True) as con:
            alerts.delete_rule(con, rule_id)

    # --- runs and jobs ------------------------------------------------------------------------

    def run(self, run_id: str) -> RunInfo:
        """One run (a dead job is marked failed first); raises NotFoundError."""
        return jobs.get_run(self.store, run_id)

    def wait(self, run_id: str, timeout: float | None = None, *, poll: float = 0.5,
             on_progress: Callable[[RunInfo], None] | None = None) -> RunInfo:
        """Block until the run has succeeded or failed; raises MlopsError after ``timeout`` seconds."""
        return jobs.wait(self.store, run_id, timeout, poll=poll, on_progress=on_progress)

    def execute_retrain(self, run_id: str) -> retrain.RetrainOutcome:
        """Run a queued retrain to its end in this process (what a background job does)."""
        return retrain.execute(self.store, run_id)


class Model:
    """One registered model at a location: every read and action about it."""

    def __init__(self, room: ControlRoom, info: ModelInfo):
        self.room = room
        self.info = info

    def __repr__(self) -> str:
        return f"Model({self.info.name!r} at {str(self.room.store.path)!r})"

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def _store(self) -> Store:
        return self.room.store

    @property
    def _actor(self) -> str:
        return self.room.identity.name

    def _require(self, role: str, action: str) -> None:
        self.room.identity.require(role, f"{action} ({self.info.name})")

    @contextmanager
    def _log(self, start: datetime | None = None, end: datetime | None = None) -> Iterator[tuple[Any, LogView]]:
        """The log engine and the files of the model's log that [start, end) needs (listed on a short read visit)."""
        with self._store.connect() as con:
            view = logs.view(con, self._store.logs, self.info, start, end)
        with self._store.engine() as con:
            yield con, view

    # --- registry ---------------------------------------------------------------------------

    def status(self) -> ModelStatus:
        with self._store.connect() as con:
            return ModelStatus(self.name, self.info.task, self.info.target, mstore.current_alias(con, self.name),
                               mstore.list_versions(con, self.name), pstore.count_predictions(con, self.info),
                               pstore.count_labels(con, self.info), pstore.last_prediction_at(con, self.info),
                               self.info.feature_names)

    def versions(self) -> list[VersionInfo]:
        """Every version, oldest first."""
        with self._store.connect() as con:
            return mstore.list_versions(con, self.name)

    def version(self, version: int | None = None) -> VersionInfo:
        """One version (the production version when None); raises NotFoundError."""
        with self._store.connect() as con:
            return registry.resolve_version(con, self.name, version)

    def production_version(self) -> int | None:
        with self._store.connect() as con:
            return mstore.current_alias(con, self.name)

    def versions_frame(self) -> pd.DataFrame:
        """One row per version: status, algorithm, training window, holdout metrics, gate verdict."""
        with self._store.connect() as con:
            return registry.versions_frame(con, self.name)

    def deployment_history(self) -> pd.DataFrame:
        """The alias history (oldest first): alias, version, started_at, ended_at, actor, action, reason, run_id."""
        with self._store.connect() as con:
            return mstore.deployment_history(con, self.name)

    def rollback_target(self) -> int | None:
        """The version a plain rollback would put back now (None when there is none)."""
        with self._store.connect() as con:
            return registry.rollback_target(con, self.name)

    def load(self, version: int | None = None) -> Any:
        """The fitted estimator of a version (production when None), after checking its artifact's sha256."""
        return registry.load_version(self._store, self.version(version))

    def add_version(self, estimator: Any, training_data: Source, *, seed: int = 0,
                    trust_pickle: bool = False) -> registry.Registration:
        """Register an estimator fitted elsewhere (or the path of a skops file of one) as the next version, a
        candidate scored on the holdout of ``training_data``. A pickle/joblib file needs ``trust_pickle=True``
        (see ``ControlRoom.register``). Needs the admin role."""
        self._require("admin", "register versions")
        return registry.register_version(self._store, self.info, training_data,
                                         _estimator(estimator, self.room.identity, trust_pickle),
                                         actor=self._actor, seed=seed)

    def promote(self, version: int, *, reason: str | None = None, force: bool = False) -> Promotion:
        """Make ``version`` production (one transaction, audited) after checking its artifact (IntegrityError when it
        fails; nothing changes then). Needs the operator role."""
        self._require("operator", "promote versions")
        return registry.promote(self._store, self.name, int(version), actor=self._actor, reason=reason or None,
                                force=force)

    def rollback(self, *, to: int | None = None, reason: str | None = None) -> Promotion:
        """Put back the previous production version (or ``to``) after checking its artifact (IntegrityError when it
        fails; nothing changes then). Needs the operator role."""
        self._require("operator", "roll back")
        return registry.rollback(self._store, self.name, to=to, actor=self._actor, reason=reason or None)

    def compare(self, versions: Sequence[int], *, end: Time = None) -> registry.Comparison:
        """Versions side by side on the same recent labelled rows, windows, hyperparameters and lineage."""
        return registry.compare(self._store, self.info, versions, end=parse_time(end, end=True))

    # --- data -----------------------------------------------------------------------------

    def ingest(self, source: Source, kind: str = "predictions", *, source_name: str | None = None) -> ingestmod.IngestResult:
        """Validate and append a batch of predictions or labels (a file path, DataFrame or Arrow table).
        Needs the operator role."""
        self._require("operator", "ingest batches")
        return ingestmod.ingest(self._store, self.info, source, kind, actor=self._actor, source_name=source_name,
                                on_recorded=run_checks.check_finished_run)

    def validate(self, source: Source, *, kind: str = "predictions", store: bool = True) -> validation.ValidationReport:
        """Validate a batch against the schema without ingesting it (the report is stored unless ``store=False``)."""
        return validation.validate_batch(self._store, self.info, source, kind=kind, store_report=store)

    def validate_window(self, start: Time, end: Time, *, store: bool = True,
                        skew: bool = True) -> validation.ValidationReport:
        """Validate the logged predictions in [start, end)."""
        first, last = _bounds(start, end)
        return validation.validate_window(self._store, self.info, first, last, store_report=store, skew=skew)

    def validate_windows(self, start: Time, end: Time, *, window: str = "day") -> list[validation.ValidationReport]:
        """One stored validation report per window from start to end (a backfill's data-quality history)."""
        first, last = _bounds(start, end)
        return validation.validate_windows(self._store, self.info, first, last, window=window)

    def validation_reports(self, start: Time = None, end: Time = None) -> pd.DataFrame:
        with self._store.connect() as con:
            return validation.reports(con, self.info, start=parse_time(start), end=parse_time(end, end=True))

    def anomalies(self, start: Time = None, end: Time = None) -> pd.DataFrame:
        with self._store.connect() as con:
            return validation.anomalies(con, self.info, start=parse_time(start), end=parse_time(end, end=True))

    def null_rates(self, window: str = "day", start: Time = None, end: Time = None) -> pd.DataFrame:
        first, last = parse_time(start), parse_time(end, end=True)
        with self._log(first, last) as (con, log):
            return validation.null_rates(con, log, window=window, start=first, end=last)

    def skew(self, start: Time = None, end: Time = None) -> pd.DataFrame:
        return validation.skew(self._store, self.info, start=parse_time(start), end=parse_time(end, end=True))

    # --- monitoring ----------------------------------------------------------------------------

    def performance(self, *, window: str = "day", start: Time = None, end: Time = None, versions: Versions = None,
                    auc: bool = True) -> pd.DataFrame:
        """Metrics per window and version with their intervals (see ``monitoring.performance.over_time``), and
        ``partial``: whether the log has not reached the window's end yet (``monitoring.windows``)."""
        first, last = parse_time(start), parse_time(end, end=True)
        with self._store.connect() as con:
            view = logs.view(con, self._store.logs, self.info, first, last)
            as_of = logs.facts(con, self.name).last_ts
        with self._store.engine() as con:
            out = performance.over_time(con, view, window=window, start=first, end=last, versions=versions, auc=auc)
        return windows.mark_partial(out, window, as_of)

    def estimate_performance(self, *, window: str = "day", start: Time = None, end: Time = None,
                             version: int | Sequence[int] | None = None,
                             reference_start: Time = None, reference_end: Time = None,
                             level: float = estimation.BAND_LEVEL, realized: bool = True,
                             store: bool = True) -> pd.DataFrame:
        """Estimated accuracy, precision, recall, F1 and ROC AUC per window and version while labels are missing
        (confidence-based estimation; binary classifiers), with a band at ``level`` and the realized value where
        labels exist (see ``monitoring.estimated_performance.over_time``).

        ``version``: one version or several (default: every version logged in the range), each estimated with
        its stored calibration, or with one fitted on the labelled log in [reference_start, reference_end).
        The estimates (and such a calibration) are stored unless ``store=False`` (then it needs no role;
        storing needs the operator role). Raises InvalidInputError for a regression or multiclass model (no
        estimate is available), NotFoundError for a version without calibration.
        """
        if store:
            self._require("operator", "store performance estimates")
        versions = None if version is None else [version] if isinstance(version, int) else list(version)
        return estimated_performance.over_time(
            self._store, self.info, window=window, start=parse_time(start), end=parse_time(end, end=True),
            versions=versions, reference_start=parse_time(reference_start),
            reference_end=parse_time(reference_end, end=True), level=level, realized=realized, store_estimates=store)

    def estimates_stored(self, *, window: str = "day", start: Time = None, end: Time = None,
                         version: int | Sequence[int] | None = None) -> pd.DataFrame:
        """Stored estimates against the labels that arrived since: error and whether the realized value lies in
        the band (see ``monitoring.estimated_performance.stored``)."""
        versions = None if version is None else [version] if isinstance(version, int) else list(version)
        return estimated_performance.stored(self._store, self.info, window=window, start=parse_time(start),
                                            end=parse_time(end, end=True), versions=versions)

    def estimation_calibration(self, version: int | None = None) -> CalibrationRecord:
        """The calibration performance estimation uses for a version (production when None); raises NotFoundError."""
        with self._store.connect() as con:
            v = registry.resolve_version(con, self.name, version).version
            return estimated_performance.calibration_of(con, self.info, v)

    def calibrate_estimation(self, start: Time, end: Time, *, version: int | None = None) -> CalibrationRecord:
        """Fit the calibration of a version (production when None) on its labelled log in [start, end) and store
        it; later estimates use it. Needs the operator role."""
        self._require("operator", "calibrate performance estimation")
        v = self.version(version).version
        first, last = _bounds(start, end)
        return estimated_performance.calibrate_window(self._store, self.info, v, first, last)

    def confusion(self, *, start: Time = None, end: Time = None, version: int | None = None) -> pd.DataFrame:
        first, last = parse_time(start), parse_time(end, end=True)
        with self._log(first, last) as (con, log):
            return performance.confusion(con, log, start=first, end=last, version=version)

    def residuals(self, *, start: Time = None, end: Time = None, version: int | None = None,
                  limit: int = 5000) -> pd.DataFrame:
        first, last = parse_time(start), parse_time(end, end=True)
        with self._log(first, last) as (con, log):
            return performance.residuals(con, log, start=first, end=last, version=version, limit=limit)

    def summary(self, *, days: int = 7, now: Time = None) -> Summary:
        """The headline metric over the last ``days`` up to ``now`` against the ``days`` before."""
        at = parse_time(now) or utcnow()
        with self._log(*performance.summary_window(days, at)) as (con, log):
            return performance.summary(con, log, days=days, now=at)

    def verdict(self, *, as_of: Time = None) -> verdictmod.Verdict:
        """Healthy, watch or act, the reasons that decide it and the next step (see ``monitoring.verdict``), now
        (the newest logged prediction) or as the log was at ``as_of``."""
        at = parse_time(as_of)
        with self._store.connect() as con:
            history = mstore.deployment_history(con, self.name, "production")
            versions = mstore.list_versions(con, self.name)
        when = at or utcnow()
        held = history[(history["started_at"] <= when) & (history["ended_at"].isna() | (history["ended_at"] > when))] \
            if len(history) else history
        prod = int(held["version"].iloc[-1]) if len(held) else None
        since = held["started_at"].iloc[-1].to_pydatetime() if len(held) else None
        before = registry.production_stack(history[history["started_at"] <= when]) if len(history) else []
        by_number = {v.version: v for v in versions}
        passing = [v.version for v in versions
                   if prod is not None and v.version > prod and v.status == "candidate"
                   and (v.gate or {}).get("passed") and (v.created_at is None or v.created_at <= when)]
        situation = verdictmod.Situation(
            production_version=prod, holdout=dict(by_number[prod].holdout_metrics or {}) if prod in by_number else {},
            production_since=since, passing_candidate=max(passing) if passing else None,
            rollback_target=before[-2] if len(before) >= 2 else None,
            retrain_running=at is None and jobs.active_run(self._store, self.name) is not None)
        return verdictmod.evaluate(self._store, self.info, situation, as_of=at)

    def last_prediction(self) -> datetime | None:
        """The newest prediction time inside the accepted time range (what default date ranges end at)."""
        with self._store.connect() as con:
            return pstore.last_prediction_at(con, self.info)

    def times_outside_range(self) -> tuple[int, datetime | None, datetime | None]:
        """(rows, earliest, latest) of logged predictions stamped outside the accepted time range
        (``MLOPS_MIN_TIMESTAMP`` .. now + ``MLOPS_MAX_FUTURE_HOURS``): stored, shown when a range asks for
        them, never the anchor of a default range. (0, None, None) when there are none."""
        with self._store.connect() as con:
            f = logs.facts(con, self.info.name)
        return f.outside_rows, f.outside_first, f.outside_last

    def drift(self, *, window: str = "day", start: Time = None, end: Time = None, reference_id: int | None = None,
              store: bool = True, methods: Any = None, thresholds: dict | None = None) -> pd.DataFrame:
        """Drift per window and feature against a stored reference; stored unless ``store=False`` (then it needs no
        role; storing needs the operator role)."""
        if store:
            self._require("operator", "store drift results")
        return drift.over_time(self._store, self.info, window=window, start=parse_time(start),
                               end=parse_time(end, end=True), reference_id=reference_id, store_results=store,
                               methods=methods, thresholds=thresholds)

    def drift_stored(self, *, window: str = "day", start: Time = None, end: Time = None,
                     compute_missing: bool = True) -> pd.DataFrame:
        """The stored drift series (see ``monitoring.drift.stored``) with ``partial`` (``monitoring.windows``)."""
        df = drift.stored(self._store, self.info, window=window, start=parse_time(start),
                          end=parse_time(end, end=True), compute_missing=compute_missing)
        return windows.mark_partial(df, window, self.last_prediction()) if len(df) else df.assign(partial=False)

    def drift_share(self, *, window: str = "day", start: Time = None, end: Time = None) -> pd.DataFrame:
        """Share of drifted features per window (``monitoring.drift.share``) with ``partial``."""
        df = drift.share_over_time(self._store, self.info, window=window, start=parse_time(start),
                                   end=parse_time(end, end=True))
        return windows.mark_partial(df, window, self.last_prediction()) if len(df) else df.assign(partial=False)

    def drift_distribution(self, feature: str, *, start: Time = None, end: Time = None) -> pd.DataFrame:
        return drift.distribution(self._store, self.info, feature, start=parse_time(start),
                                  end=parse_time(end, end=True))

    def drift_latest(self, *, window: str = "day") -> pd.DataFrame:
        return drift.latest(self._store, self.info, window=window)

    def drift_settings(self) -> pd.DataFrame:
        with self._store.connect() as con:
            return drift.settings(con, self.info)

    def configure_drift(self, feature: str = "*", methods: str | Sequence[str] | None = None, *, threshold: float | None = None,
                        thresholds: dict | None = None) -> pd.DataFrame:
        """Store the drift method(s)/threshold(s) of a feature (``*``: every feature). Needs the operator role."""
        self._require("operator", "change drift settings")
        with self._store.connect(write=True) as con:
            return drift.configure(con, self.info, feature, methods, threshold=threshold, thresholds=thresholds,
                                   actor=self._actor)

    def reference_from_window(self, start: Time, end: Time) -> int:
        """Store the log in [start, end) as a reference; return its id. Needs the operator role."""
        self._require("operator", "store references")
        return drift.reference_from_window(self._store, self.info, parse_time(start), parse_time(end, end=True))

    def reference_from_file(self, path: str | os.PathLike, *, version: int | None = None) -> int:
        """Store a training file's summary as a reference; return its id. Needs the operator role."""
        self._require("operator", "store references")
        with self._store.connect(write=True) as con:
            return drift.reference_from_file(con, self.info, path, version=version)

    def monitor(self, *, now: Time = None, window: str = "day", lookback: int | None = None,
                trigger: str = "schedule") -> alerts.MonitoringResult:
        """Compute drift for the recent windows, evaluate the alert rules, store new alerts (safe from cron)."""
        self._require("operator", "run the monitor")
        return alerts.run_monitoring(self._store, self.info, now=parse_time(now), window=window, lookback=lookback,
                                     trigger=trigger, actor=self._actor)

    def alerts(self, *, open_only: bool = False, statuses: Sequence[str] | None = None) -> pd.DataFrame:
        """The model's incidents, the most recently seen first (see ``ControlRoom.alerts``)."""
        with self._store.connect() as con:
            return incidents.list_incidents(con, self.name, open_only=open_only,
                                            statuses=tuple(statuses) if statuses else None)

    def alert_rules(self) -> pd.DataFrame:
        with self._store.connect() as con:
            return alerts.list_rules(con, self.info)

    def set_alert_rule(self, kind: str, *, target: str | None = None, threshold: float | None = None,
                       severity: str = "warning", params: dict | None = None, enabled: bool = True) -> int:
        """Create or update an alert rule; return its id. Needs the operator role."""
        self._require("operator", "change alert rules")
        with self._store.connect(write=True) as con:
            return alerts.set_rule(con, self.info, kind, target=target, threshold=threshold, severity=severity,
                                   params=params, enabled=enabled)

    # --- lifecycle -----------------------------------------------------------------------------

    def policy(self) -> policies.Policy:
        with self._store.connect() as con:
            return policies.policy_of(con, self.name)

    def set_policy(self, **changes: Any) -> policies.Policy:
        """Change fields of the automation policy (audited). Needs the operator role."""
        self._require("operator", "change the automation policy")
        with self._store.connect(write=True) as con:
            return policies.set_policy(con, self.info, actor=self._actor, **changes)

    def evaluate_policy(self, *, now: Time = None, drift_share: float | None = None,
                        metrics: dict | None = None) -> automation.PolicyDecision:
        """Evaluate the policy once and act on it (alert, or retrain in automated mode). Needs the operator role."""
        self._require("operator", "evaluate the automation policy")
        return automation.evaluate(self._store, self.info, now=parse_time(now), drift_share=drift_share,
                                   metrics_now=metrics)

    def evaluations(self, limit: int = 100) -> pd.DataFrame:
        with self._store.connect() as con:
            return automation.recent_evaluations(con, self.info, limit)

    def retrain(self, params: dict | None = None, *, trigger: str = "manual", spawn: bool = True) -> str:
        """Queue a retrain (and start its background process unless ``spawn=False``); return the run id.
        Needs the operator role."""
        self._require("operator", "retrain")
        return jobs.start_retrain(self._store, self.info, actor=self._actor, trigger=trigger, params=params,
                                  spawn=spawn)

    def active_retrain(self) -> RunInfo | None:
        return jobs.active_run(self._store, self.name)

    def latest_run(self, kind: str = "retrain") -> RunInfo | None:
        with self._store.connect() as con:
            found = runstore.find_runs(con, self.name, kind=kind, limit=1)
        return found[0] if found else None

    def ab_test(self, challenger: int | str, *, champion: int | str | None = None, by: str = "version", start: Time = None, end: Time = None,
               alpha: float = abtest.DEFAULT_ALPHA, min_samples: int = abtest.DEFAULT_MIN_SAMPLES) -> abtest.ABTestResult:
        return abtest.evaluate(self._store, self.info, challenger, champion=champion, by=by, start=parse_time(start),
                               end=parse_time(end, end=True), alpha=alpha, min_samples=min_samples)

    def promote_if_better(self, challenger: int, *, alpha: float = abtest.DEFAULT_ALPHA,
                          min_samples: int = abtest.DEFAULT_MIN_SAMPLES) -> tuple[abtest.ABTestResult, Promotion | None]:
        """A/B test the challenger and promote it when it wins. Needs the operator role."""
        self._require("operator", "promote versions")
        return abtest.promote_if_better(self._store, self.info, challenger, actor=self._actor, alpha=alpha,
                                        min_samples=min_samples)

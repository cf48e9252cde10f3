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

import builtins
import getpass
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_core import accounts
from mlops_core.access import Identity
from mlops_core.entities import (
    CalibrationRecord,
    Challenger,
    DefinitionChange,
    DeploymentConfig,
    EntityDef,
    FeatureBinding,
    FeatureIngestResult,
    FeatureViewDef,
    MaterializeResult,
    ModelInfo,
    OnlineFeatures,
    Promotion,
    RunAnomaly,
    RunInfo,
    UserInfo,
    VersionInfo,
    ViewFreshness,
    Webhook,
    WebhookDelivery,
    dumps,
)
from mlops_core.errors import AuthenticationError, InvalidInputError
from mlops_core.lifecycle import jobs
from mlops_core.store import Store, logs, utcnow
from mlops_core.store import backup as backupmod
from mlops_core.store import deployments as dstore
from mlops_core.store import models as mstore
from mlops_core.store import predictions as pstore
from mlops_core.store import run_anomalies as anomstore
from mlops_core.store import runs as runstore
from mlops_core.store import webhooks as wstore
from mlops_core.store.logs import LogView
from mlops_core.times import parse_time

# The domain modules (and pandas, scikit-learn, scipy behind them) are imported by the methods that use them, so
# that a command such as `mlops status` or `mlops --help` starts without loading them.
if TYPE_CHECKING:
    import pandas as pd

    from mlops_core.data import ingest as ingestmod
    from mlops_core.lifecycle import abtest, automation, deployments, packaging, policies, registry, retrain
    from mlops_core.monitoring import alerts, validation
    from mlops_core.monitoring import verdict as verdictmod
    from mlops_core.monitoring import webhooks as hooks
    from mlops_core.monitoring.performance import Summary

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
    from mlops_core.lifecycle.artifacts import load_estimator_file

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
    """The control room at one location (a DuckDB path or a ``postgresql://`` URL; ``None``:
    ``$MLOPS_METADATA_URL``, ``$MLOPS_DB``, else ``./mlops.duckdb``)."""

    def __init__(self, location: str | os.PathLike | None = None, *, identity: Identity | None = None):
        self.store = Store(location)
        self.identity = identity or local_identity()

    def __repr__(self) -> str:
        return f"ControlRoom({self.store.display!r}, identity={self.identity.name!r})"

    def acting_as(self, identity: Identity) -> ControlRoom:
        """The same location with another acting identity."""
        return ControlRoom(self.store.location, identity=identity)

    @property
    def path(self) -> Path | None:
        """The database file of this location (None when the metadata is in PostgreSQL)."""
        return self.store.path

    @property
    def location(self) -> str:
        """Where the metadata lives, as ``--db`` takes it: the DuckDB file path or the PostgreSQL URL."""
        return self.store.location

    @property
    def display(self) -> str:
        """The location for messages and pages (a URL without its password)."""
        return self.store.display

    @property
    def artifacts_path(self) -> Path:
        """The folder of this location's model artifacts and job logs (beside the database file)."""
        return self.store.artifacts

    @contextmanager
    def kept_open(self) -> Iterator[ControlRoom]:
        """Hold the database file open in this process for the block (creating it when missing); yield the room.

        Many short operations in a row (a backfill, a demo build, a test) then skip opening and
        checkpointing the file each time (the demo's ingests take about 40 ms less each). Other
        processes (the dashboard, a cron ingest, a background retrain) wait for the file
        meanwhile, so keep the block to one batch of work.
        """
        with self.store.kept_open():
            yield self

    def destroy(self) -> None:
        """Delete everything at this location: the database file, its write-ahead log and the artifacts folder.

        For throwaway databases (a demo being rebuilt, a test); there is no undo. Needs the admin
        role. Raises ConflictError while this process still holds the file open (``kept_open``).
        """
        self.identity.require("admin", "delete the database")
        self.store.destroy()

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

    def model(self, name: str) -> Model:
        """The handle of the model ``name``; raises NotFoundError listing the known models."""
        with self.store.connect() as con:
            return Model(self, mstore.get_model(con, name))

    def register(self, name: str, task: str, target: str, training_data: Source, *, artifact: Any = None,
                 hyperparameters: dict[str, Any] | None = None, seed: int = 0, description: str | None = None,
                 unit: str | None = None, at: datetime | None = None, train_start: datetime | None = None,
                 train_end: datetime | None = None, trust_pickle: bool = False, features: Any = None,
                 timestamp_column: str | None = None) -> registry.Registration:
        """Register a new model from its training data (a file path or DataFrame); version 1 goes to production.

        ``artifact``: an already fitted scikit-learn estimator or Pipeline, or the path of a skops file
        of one (``skops.io.dump``), to register as version 1. A pickle/joblib file is refused unless
        ``trust_pickle=True``: loading it runs any code inside it, so only pass it for a file you built
        yourself. Without an artifact the default pipeline is trained, its final estimator set up with
        ``hyperparameters`` over scikit-learn's defaults (e.g. ``{"max_iter": 60, "learning_rate": 0.15}``;
        retrains of the model keep them). Needs the admin role.

        ``features``: a feature list (``"view:feature,..."`` or a list) to register the model with features
        from the feature store. ``training_data`` then holds entity rows: the entity's key columns, a time
        column (``timestamp_column``, default event_timestamp, timestamp or ts), the target and any
        request-time features; the store's values at each row's time are joined in (``features.binding``),
        and the model records the binding (its log then records the entity key of every prediction).
        Raises InvalidInputError (also for a pickle without ``trust_pickle``, an unknown or refused
        hyperparameter, or hyperparameters together with an artifact), NotFoundError,
        AlreadyExistsError, PermissionDeniedError.
        """
        from mlops_core.features import binding as fbinding
        from mlops_core.lifecycle import registry

        self.identity.require("admin", "register models")
        estimator = _estimator(artifact, self.identity, trust_pickle)
        binding, source = None, None
        if features is not None:
            built = fbinding.training_data(self.store, training_data, features, target,
                                           timestamp_column=timestamp_column)
            training_data, binding, source = built.frame, built.binding, built.description
            train_start, train_end = train_start or built.start, train_end or built.end
        return registry.register_model(self.store, name, task, target, training_data, actor=self.identity.name,
                                       artifact=estimator, hyperparameters=hyperparameters, seed=seed,
                                       description=description, unit=unit, at=at, train_start=train_start,
                                       train_end=train_end, feature_binding=binding, data_source=source)

    @property
    def features(self) -> FeatureStore:
        """The feature store at this location: definitions, offline and online stores, freshness."""
        return FeatureStore(self)

    # --- accounts ---------------------------------------------------------------------------

    @classmethod
    def login(cls, location: str | os.PathLike | None, name: str, password: str) -> ControlRoom:
        """The room acting as account ``name`` after checking its password (argon2id hash in the database).

        Raises AuthenticationError (exit code 6) with one message for an unknown name, a wrong password
        and a disabled account. Works on a read-only database.
        """
        store = Store(location)
        return cls(store.location, identity=accounts.authenticate(store, name, password))

    @classmethod
    def for_account(cls, location: str | os.PathLike | None, name: str, *,
                    default_role: str | None = None) -> ControlRoom:
        """The room acting as ``name`` whom someone else authenticated (an OpenID Connect provider): the role
        of their enabled account, else ``default_role``; AuthenticationError when neither applies."""
        store = Store(location)
        role = accounts.role_of(store, name)
        if role is None and (default_role is None or accounts.has_account(store, name)):
            raise AuthenticationError(f"{name} has no enabled account here; ask an admin to add one "
                                      f"(`mlops users add {name} --role viewer --no-password`).", user=name)
        return cls(store.location, identity=Identity(name, role or default_role or "viewer"))

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
        from mlops_core.monitoring import incidents

        with self.store.connect() as con:
            return incidents.list_incidents(con, None, open_only=open_only,
                                            statuses=tuple(statuses) if statuses else None)

    def acknowledge(self, alert_id: int) -> bool:
        """Acknowledge an open incident (audited); False when it was not open. Needs the operator role."""
        from mlops_core.monitoring import incidents

        self.identity.require("operator", "acknowledge alerts")
        with self.store.connect(write=True) as con:
            return incidents.acknowledge(con, int(alert_id), actor=self.identity.name)

    def resolve(self, alert_id: int) -> bool:
        """Resolve an incident (audited; a later window in which it fires reopens it); False when it already was.
        Needs the operator role."""
        from mlops_core.monitoring import incidents

        self.identity.require("operator", "resolve alerts")
        with self.store.connect(write=True) as con:
            return incidents.resolve(con, int(alert_id), actor=self.identity.name)

    def snooze(self, alert_id: int, hours: float) -> datetime:
        """Hide an incident from the open list and notifications for ``hours`` (audited); return until when.
        Needs the operator role."""
        from mlops_core.monitoring import incidents

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
        from mlops_core.monitoring import webhooks as hooks

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
        from mlops_core.monitoring import webhooks as hooks

        self.identity.require("operator", "deliver webhooks")
        return hooks.deliver_pending(self.store, retry_failed=retry_failed)

    def test_webhook(self, webhook_id: int) -> hooks.DeliveryOutcome:
        """Post a test message to a webhook (nothing stored); return the outcome. Needs the admin role."""
        from mlops_core.monitoring import webhooks as hooks

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
        from mlops_core.monitoring import webhooks as hooks

        with self.store.connect() as con:
            df = wstore.deliveries_frame(con, model)
        if len(df):
            df["url"] = df["url"].map(lambda u: hooks.shown_url(u) if isinstance(u, str) else None)
        return df

    def delete_alert_rule(self, rule_id: int) -> None:
        """Delete an alert rule. Needs the operator role."""
        from mlops_core.monitoring import alerts

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

    def start_worker(self) -> int | None:
        """Start the database's job worker when none runs, so that the next retrain starts at once instead of after
        an interpreter start and imports (``lifecycle.worker``); return the pid of a worker started now, None when
        one was running. Needs the operator role."""
        from mlops_core.lifecycle import worker

        self.identity.require("operator", "start the job worker")
        return worker.ensure(self.store)

    def execute_retrain(self, run_id: str) -> retrain.RetrainOutcome:
        """Run a queued retrain to its end in this process (what a background job does)."""
        from mlops_core.lifecycle import retrain

        return retrain.execute(self.store, run_id)

    # --- getting models out -------------------------------------------------------------------

    def load_model(self, ref: str, version: int | None = None) -> packaging.LoadedModel:
        """The verified estimator (sha256 checked) and schema of ``ref``: ``NAME`` or ``NAME@production`` (the
        production version), ``NAME@challenger``, ``NAME@3``, or ``NAME`` with ``version``. Raises NotFoundError,
        InvalidInputError, IntegrityError."""
        from mlops_core.lifecycle import packaging

        return packaging.load(self.store, ref, version)


def load_model(ref: str, version: int | None = None, *, db: str | os.PathLike | None = None) -> packaging.LoadedModel:
    """``ControlRoom(db).load_model(ref, version)``: the verified estimator of a registered version and its schema::

        credit = load_model("credit_default@production")
        credit.predict_proba(frame)          # frame: the model's features (credit.schema)
    """
    return ControlRoom(db).load_model(ref, version)


@dataclass
class Serving:
    """What serves a model now: the production version, the deployment config in force and since when."""

    model: str
    production: int | None
    config: DeploymentConfig
    configured: DeploymentConfig
    challenger_share: float
    description: str
    since: datetime | None


class Model:
    """One registered model at a location: every read and action about it."""

    def __init__(self, room: ControlRoom, info: ModelInfo):
        self.room = room
        self.info = info

    def __repr__(self) -> str:
        return f"Model({self.info.name!r} at {self.room.store.display!r})"

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
    def _log(self, start: datetime | None = None, end: datetime | None = None,
             engine: str | None = None) -> Iterator[tuple[Any, LogView]]:
        """The log engine (``duckdb`` by default, or ``spark``) and the files of the model's log that [start, end)
        needs (listed on a short read visit)."""
        from mlops_core.store import engines

        name = engines.check_engine(engine)
        with self._store.connect() as con:
            view = logs.view(con, self._store.logs, self.info, start, end)
        with engines.open_engine(name, self._store) as con:
            yield con, view

    # --- registry ---------------------------------------------------------------------------

    def status(self) -> ModelStatus:
        with self._store.connect() as con:
            size = logs.facts(con, self.name)  # one read of the listing for counts and the newest prediction
            return ModelStatus(self.name, self.info.task, self.info.target, mstore.current_alias(con, self.name),
                               mstore.list_versions(con, self.name), size.predictions, size.labels, size.last_ts,
                               self.info.feature_names)

    def versions(self) -> list[VersionInfo]:
        """Every version, oldest first."""
        with self._store.connect() as con:
            return mstore.list_versions(con, self.name)

    def version(self, version: int | None = None) -> VersionInfo:
        """One version (the production version when None); raises NotFoundError."""
        from mlops_core.lifecycle import registry

        with self._store.connect() as con:
            return registry.resolve_version(con, self.name, version)

    def production_version(self) -> int | None:
        with self._store.connect() as con:
            return mstore.current_alias(con, self.name)

    def versions_frame(self) -> pd.DataFrame:
        """One row per version: status, algorithm, training window, holdout metrics, gate verdict."""
        from mlops_core.lifecycle import registry

        with self._store.connect() as con:
            return registry.versions_frame(con, self.name)

    def deployment_history(self) -> pd.DataFrame:
        """The alias history (oldest first): alias, version, started_at, ended_at, actor, action, reason, run_id."""
        with self._store.connect() as con:
            return mstore.deployment_history(con, self.name)

    def challenger_version(self) -> int | None:
        """The version serving a share of the traffic as the challenger of an A/B test now, or None."""
        from mlops_core.lifecycle import registry

        with self._store.connect() as con:
            return mstore.current_alias(con, self.name, registry.CHALLENGER)

    def start_challenger(self, version: int, share: float, reason: str | None = None) -> Challenger:
        """Let ``version`` serve ``share`` (between 0 and 1) of the traffic beside production as the challenger of an
        A/B test (one transaction: the ``challenger`` alias row and an audit row). The serving system routes by it,
        ``ab_test`` compares the arms, and promoting the challenger ends its window. Needs the operator role.
        Raises InvalidInputError (share), NotFoundError (version), ConflictError (production, already the
        challenger, or rejected), IntegrityError (its artifact failed the check made before it serves)."""
        from mlops_core.lifecycle import registry

        self._require("operator", "start an A/B test")
        return registry.start_challenger(self._store, self.name, version, share=share, actor=self._actor,
                                         reason=reason or None)

    def end_challenger(self, reason: str | None = None) -> int:
        """End the A/B window without promoting the challenger (one transaction, audited); return the version that
        stops serving. Needs the operator role. Raises ConflictError when there is no challenger."""
        from mlops_core.lifecycle import registry

        self._require("operator", "end an A/B test")
        return registry.end_challenger(self._store, self.name, actor=self._actor, reason=reason or None)

    def rollback_target(self) -> int | None:
        """The version a plain rollback would put back now (None when there is none)."""
        from mlops_core.lifecycle import registry

        with self._store.connect() as con:
            return registry.rollback_target(con, self.name)

    def load(self, version: int | None = None) -> Any:
        """The fitted estimator of a version (production when None), after checking its artifact's sha256."""
        from mlops_core.lifecycle import registry

        return registry.load_version(self._store, self.version(version))

    @property
    def feature_binding(self) -> FeatureBinding | None:
        """The features the model takes from the feature store, and its entity key (None: none)."""
        return self.info.feature_binding

    def bind_features(self, features: Any) -> FeatureBinding:
        """Take the model's features ``features`` (``view:feature``; each must be a feature of the model) from the
        feature store from now on: its predictions then record the entity key, serving may fetch these values by
        key, and a retrain rebuilds them from the store (audited). Needs the admin role. Raises NotFoundError,
        InvalidInputError."""
        from mlops_core.features import binding as fbinding
        from mlops_core.store import features as fstore

        self._require("admin", "bind models to the feature store")
        with self._store.connect() as con:
            binding = fbinding.binding_for(con, features)
        fbinding.check_bindable(self.info, binding)
        with self._store.transaction() as con:
            fstore.set_binding(con, self.name, binding)
            runstore.insert_audit(con, actor=self._actor, action="bind_features", model=self.name,
                                  reason=f"features from the store: {fbinding.refs_text(binding.features)}",
                                  details={"entity": binding.entity, "keys": binding.key_names,
                                           "features": [str(r) for r in binding.features]})
        with self._store.connect() as con:
            self.info = mstore.get_model(con, self.name)
        return binding

    def artifact_file(self, version: int | None = None) -> str:
        """The absolute path of a version's artifact (production when None)."""
        return str((self._store.artifacts / self.version(version).artifact_path).resolve())

    def export(self, out_dir: str | os.PathLike, *, version: int | None = None, alias: str | None = None
               ) -> packaging.ExportResult:
        """Write a version's artifact (sha256 checked) and its model card into ``out_dir``: ``version``, or the
        holder of ``alias`` (production, challenger; default production). Raises NotFoundError, IntegrityError,
        InvalidInputError."""
        from mlops_core.lifecycle import packaging

        if version is not None and alias is not None:
            raise InvalidInputError("Give --version or --alias, not both.")
        ref = self.name if alias is None else f"{self.name}@{alias}"
        with self._store.connect() as con:
            info, v = packaging.resolve(con, self._store, ref, version)
        return packaging.export_version(self._store, info, v, out_dir)

    def add_version(self, estimator: Any, training_data: Source, *, seed: int = 0,
                    trust_pickle: bool = False) -> registry.Registration:
        """Register an estimator fitted elsewhere (or the path of a skops file of one) as the next version, a
        candidate scored on the holdout of ``training_data``. A pickle/joblib file needs ``trust_pickle=True``
        (see ``ControlRoom.register``). Needs the admin role."""
        from mlops_core.lifecycle import registry

        self._require("admin", "register versions")
        return registry.register_version(self._store, self.info, training_data,
                                         _estimator(estimator, self.room.identity, trust_pickle),
                                         actor=self._actor, seed=seed)

    def promote(self, version: int, *, reason: str | None = None, force: bool = False) -> Promotion:
        """Make ``version`` production (one transaction, audited) after checking its artifact (IntegrityError when it
        fails; nothing changes then). Needs the operator role."""
        from mlops_core.lifecycle import registry

        self._require("operator", "promote versions")
        return registry.promote(self._store, self.name, int(version), actor=self._actor, reason=reason or None,
                                force=force)

    def rollback(self, *, to: int | None = None, reason: str | None = None) -> Promotion:
        """Put back the previous production version (or ``to``) after checking its artifact (IntegrityError when it
        fails; nothing changes then). Needs the operator role."""
        from mlops_core.lifecycle import registry

        self._require("operator", "roll back")
        return registry.rollback(self._store, self.name, to=to, actor=self._actor, reason=reason or None)

    # --- serving -------------------------------------------------------------------------------

    def deployment(self) -> DeploymentConfig:
        """The deployment config as set (champion only when never set)."""
        from mlops_core.lifecycle import deployments

        with self._store.connect() as con:
            return deployments.current(con, self.name)

    def serving(self, *, now: Time = None) -> Serving:
        """What serves the model now: production version, the config in force (champion only once its challenger
        became production), the challenger's share now, one sentence, and since when."""
        from mlops_core.lifecycle import deployments

        at = parse_time(now) or utcnow()
        with self._store.connect() as con:
            state = dstore.serving_state(con, self.name)
            history = mstore.deployment_history(con, self.name, "production")
        configured = state.config or deployments.champion_only(self.name)
        live = deployments.effective(configured, state.production)
        since = configured.started_at if live.mode != "champion" else None
        if since is None and len(history):
            since = history["started_at"].iloc[-1].to_pydatetime()
        return Serving(self.name, state.production, live, configured, deployments.challenger_share(live, at),
                       deployments.describe(live, state.production, at), since)

    def deployment_configs(self) -> pd.DataFrame:
        """Every deployment config of the model, oldest first (mode, challenger, weight, steps, who, when, why)."""
        from mlops_core.lifecycle import deployments

        with self._store.connect() as con:
            return deployments.history(con, self.name)

    def set_deployment(self, mode: str, *, challenger: int | None = None, weight: float | None = None,
                       steps: Any = None, sticky_key: str | None = None,
                       guard_alpha: float | None = None, guard_min_samples: int | None = None,
                       reason: str | None = None,
                       force: bool = False) -> DeploymentConfig:
        """Serve the model in ``mode`` (champion, split, shadow, canary) from now on; one transaction, audited.
        ``steps``: canary steps as text (``5%:1h,25%:1h,50%``) or CanaryStep records. Needs the operator role.
        ``guard_alpha`` and ``guard_min_samples`` default to ``deployments.DEFAULT_GUARD_ALPHA`` and
        ``DEFAULT_GUARD_MIN_SAMPLES``. See ``lifecycle.deployments.set_deployment`` for the errors."""
        from mlops_core.lifecycle import deployments

        if guard_alpha is None:
            guard_alpha = deployments.DEFAULT_GUARD_ALPHA
        if guard_min_samples is None:
            guard_min_samples = deployments.DEFAULT_GUARD_MIN_SAMPLES

        self._require("operator", "change the deployment")
        parsed = deployments.parse_steps(steps) if isinstance(steps, str) else steps
        return deployments.set_deployment(self._store, self.info, mode, actor=self._actor, challenger=challenger,
                                          weight=weight, steps=parsed, sticky_key=sticky_key,
                                          guard_alpha=guard_alpha, guard_min_samples=guard_min_samples,
                                          reason=reason or None, force=force)

    def ab_status(self, *, window: str = "day", alpha: float | None = None, power: float | None = None,
                  mde: float | None = None) -> deployments.ABStatus:
        """The A/B test of the current deployment: per-arm metrics over time, test, fixed horizon, recommendation
        (``alpha`` and ``power`` default to ``abtest.DEFAULT_ALPHA`` and ``DEFAULT_POWER``)."""
        from mlops_core.lifecycle import abtest, deployments

        alpha = abtest.DEFAULT_ALPHA if alpha is None else alpha
        power = abtest.DEFAULT_POWER if power is None else power

        return deployments.ab_status(self._store, self.info, window=window, alpha=alpha, power=power, mde=mde)

    def arm_performance(self, *, window: str = "day", start: Time = None, end: Time = None) -> pd.DataFrame:
        """The A/B metric (accuracy or MAE) per window and arm of the log, with 95% intervals."""
        from mlops_core.lifecycle import deployments

        return deployments.arm_performance(self._store, self.info, window=window, start=parse_time(start),
                                           end=parse_time(end, end=True))

    def check_canary(self) -> deployments.GuardCheck:
        """Run the canary's guard once (stops a significantly worse canary). Needs the operator role."""
        from mlops_core.lifecycle import deployments

        self._require("operator", "check the canary")
        return deployments.check_canary(self._store, self.info, actor=self._actor)

    def promote_winner(self, *, reason: str | None = None) -> deployments.ABOutcome:
        """Act on a decided A/B test: promote the winning challenger (gated like any promote) or keep the champion,
        and serve champion only. Needs the operator role."""
        from mlops_core.lifecycle import deployments

        self._require("operator", "promote versions")
        return deployments.promote_winner(self._store, self.info, actor=self._actor, reason=reason or None)

    def score(self, source: str | os.PathLike, *, out: str | os.PathLike | None = None) -> Any:
        """Score a CSV/Parquet file with what serves the model now, log the rows, write the scored file
        (``serving.batch.score_file``); return its ScoreResult. Needs the operator role (it writes the log)."""
        from mlops_core.serving import batch

        self._require("operator", "score files into the log")
        return batch.score_file(self._store, self.info, source, actor=self._actor, out=out)

    def scoring_service(self, settings: Any = None) -> Any:
        """The HTTP scoring service of this model (``serving.app.ScoringService``; start it with
        ``serving.app.serve``). Needs the operator role: it writes the prediction log."""
        from mlops_core.serving.app import ScoringService

        self._require("operator", "serve predictions into the log")
        return ScoringService(self._store, self.info, actor=self._actor, settings=settings)

    def load_spool(self, folder: str | os.PathLike | None = None) -> Any:
        """Load every segment a stopped or killed scoring service left in its spool (default folder: beside the
        database) into the log; return what was loaded (``serving.loader.Pass``). Needs the operator role."""
        from pathlib import Path

        from mlops_core.serving import loader, spool

        self._require("operator", "load the spool into the log")
        path = Path(folder) if folder else spool.spool_dir(self._store.path, self.name, artifacts=self._store.artifacts)
        return loader.Loader(self._store, self.info, path, actor=self._actor).drain()

    def compare(self, versions: Sequence[int], *, end: Time = None) -> registry.Comparison:
        """Versions side by side on the same recent labelled rows, windows, hyperparameters and lineage."""
        from mlops_core.lifecycle import registry

        return registry.compare(self._store, self.info, versions, end=parse_time(end, end=True))

    # --- data -----------------------------------------------------------------------------

    def ingest(self, source: Source, kind: str = "predictions", *, source_name: str | None = None) -> ingestmod.IngestResult:
        """Validate and append a batch of predictions or labels (a file path, DataFrame or Arrow table).
        Needs the operator role."""
        from mlops_core.data import ingest as ingestmod
        from mlops_core.monitoring import run_checks

        self._require("operator", "ingest batches")
        return ingestmod.ingest(self._store, self.info, source, kind, actor=self._actor, source_name=source_name,
                                on_recorded=run_checks.check_finished_run)

    def validate(self, source: Source, *, kind: str = "predictions", store: bool = True) -> validation.ValidationReport:
        """Validate a batch against the schema without ingesting it (the report is stored unless ``store=False``)."""
        from mlops_core.monitoring import validation

        return validation.validate_batch(self._store, self.info, source, kind=kind, store_report=store)

    def validate_window(self, start: Time, end: Time, *, store: bool = True,
                        skew: bool = True) -> validation.ValidationReport:
        """Validate the logged predictions in [start, end)."""
        from mlops_core.monitoring import validation

        first, last = _bounds(start, end)
        return validation.validate_window(self._store, self.info, first, last, store_report=store, skew=skew)

    def validate_windows(self, start: Time, end: Time, *, window: str = "day") -> list[validation.ValidationReport]:
        """One stored validation report per window from start to end (a backfill's data-quality history)."""
        from mlops_core.monitoring import validation

        first, last = _bounds(start, end)
        return validation.validate_windows(self._store, self.info, first, last, window=window)

    def validation_reports(self, start: Time = None, end: Time = None) -> pd.DataFrame:
        from mlops_core.monitoring import validation

        with self._store.connect() as con:
            return validation.reports(con, self.info, start=parse_time(start), end=parse_time(end, end=True))

    def anomalies(self, start: Time = None, end: Time = None) -> pd.DataFrame:
        from mlops_core.monitoring import validation

        with self._store.connect() as con:
            return validation.anomalies(con, self.info, start=parse_time(start), end=parse_time(end, end=True))

    def null_rates(self, window: str = "day", start: Time = None, end: Time = None) -> pd.DataFrame:
        from mlops_core.monitoring import validation

        first, last = parse_time(start), parse_time(end, end=True)
        with self._log(first, last) as (con, log):
            return validation.null_rates(con, log, window=window, start=first, end=last)

    def skew(self, start: Time = None, end: Time = None) -> pd.DataFrame:
        from mlops_core.monitoring import validation

        return validation.skew(self._store, self.info, start=parse_time(start), end=parse_time(end, end=True))

    # --- monitoring ----------------------------------------------------------------------------

    def performance(self, *, window: str = "day", start: Time = None, end: Time = None, versions: Versions = None,
                    auc: bool = True, engine: str | None = None) -> pd.DataFrame:
        """Metrics per window and version with their intervals (see ``monitoring.performance.over_time``), computed on
        the log engine ``engine`` (``duckdb``, the default, or ``spark``: see ``store.engines``), and ``partial``:
        whether the log has not reached the window's end yet (``monitoring.windows``). Raises InvalidInputError
        (window, engine), SparkUnavailableError."""
        from mlops_core.monitoring import performance, windows

        first, last = parse_time(start), parse_time(end, end=True)
        with self._store.connect() as con:
            as_of = logs.facts(con, self.name).last_ts
        with self._log(first, last, engine) as (con, log):
            out = performance.over_time(con, log, window=window, start=first, end=last, versions=versions, auc=auc)
        return windows.mark_partial(out, window, as_of)

    def estimate_performance(self, *, window: str = "day", start: Time = None, end: Time = None,
                             version: int | Sequence[int] | None = None,
                             reference_start: Time = None, reference_end: Time = None,
                             level: float | None = None, realized: bool = True,
                             store: bool = True, engine: str | None = None) -> pd.DataFrame:
        """Estimated accuracy, precision, recall, F1 and ROC AUC per window and version while labels are missing
        (confidence-based estimation; binary classifiers), with a band at ``level`` (default
        ``estimation.BAND_LEVEL``, 0.95) and the realized value where labels exist (see
        ``monitoring.estimated_performance.over_time``).

        ``version``: one version or several (default: every version logged in the range), each estimated with
        its stored calibration, or with one fitted on the labelled log in [reference_start, reference_end).
        The estimates (and such a calibration) are stored unless ``store=False`` (then it needs no role;
        storing needs the operator role). ``engine``: the log engine that scans the log (``duckdb``, the default, or
        ``spark``). Raises InvalidInputError for a regression or multiclass model (no estimate is available) or an
        unknown engine, NotFoundError for a version without calibration, SparkUnavailableError.
        """
        from mlops_core.monitoring import estimated_performance, estimation

        level = estimation.BAND_LEVEL if level is None else level
        if store:
            self._require("operator", "store performance estimates")
        versions = None if version is None else [version] if isinstance(version, int) else list(version)
        return estimated_performance.over_time(
            self._store, self.info, window=window, start=parse_time(start), end=parse_time(end, end=True),
            versions=versions, reference_start=parse_time(reference_start),
            reference_end=parse_time(reference_end, end=True), level=level, realized=realized, store_estimates=store,
            engine=engine)

    def estimates_stored(self, *, window: str = "day", start: Time = None, end: Time = None,
                         version: int | Sequence[int] | None = None) -> pd.DataFrame:
        """Stored estimates against the labels that arrived since: error and whether the realized value lies in
        the band (see ``monitoring.estimated_performance.stored``)."""
        from mlops_core.monitoring import estimated_performance

        versions = None if version is None else [version] if isinstance(version, int) else list(version)
        return estimated_performance.stored(self._store, self.info, window=window, start=parse_time(start),
                                            end=parse_time(end, end=True), versions=versions)

    def estimation_calibration(self, version: int | None = None) -> CalibrationRecord:
        """The calibration performance estimation uses for a version (production when None); raises NotFoundError."""
        from mlops_core.lifecycle import registry
        from mlops_core.monitoring import estimated_performance

        with self._store.connect() as con:
            v = registry.resolve_version(con, self.name, version).version
            return estimated_performance.calibration_of(con, self.info, v)

    def calibrate_estimation(self, start: Time, end: Time, *, version: int | None = None) -> CalibrationRecord:
        """Fit the calibration of a version (production when None) on its labelled log in [start, end) and store
        it; later estimates use it. Needs the operator role."""
        from mlops_core.monitoring import estimated_performance

        self._require("operator", "calibrate performance estimation")
        v = self.version(version).version
        first, last = _bounds(start, end)
        return estimated_performance.calibrate_window(self._store, self.info, v, first, last)

    def confusion(self, *, start: Time = None, end: Time = None, version: int | None = None) -> pd.DataFrame:
        from mlops_core.monitoring import performance

        first, last = parse_time(start), parse_time(end, end=True)
        with self._log(first, last) as (con, log):
            return performance.confusion(con, log, start=first, end=last, version=version)

    def residuals(self, *, start: Time = None, end: Time = None, version: int | None = None,
                  limit: int = 5000) -> pd.DataFrame:
        from mlops_core.monitoring import performance

        first, last = parse_time(start), parse_time(end, end=True)
        with self._log(first, last) as (con, log):
            return performance.residuals(con, log, start=first, end=last, version=version, limit=limit)

    def summary(self, *, days: int = 7, now: Time = None) -> Summary:
        """The headline metric over the last ``days`` up to ``now`` against the ``days`` before."""
        from mlops_core.monitoring import performance

        at = parse_time(now) or utcnow()
        with self._log(*performance.summary_window(days, at)) as (con, log):
            return performance.summary(con, log, days=days, now=at)

    def verdict(self, *, as_of: Time = None) -> verdictmod.Verdict:
        """Healthy, watch or act, the reasons that decide it and the next step (see ``monitoring.verdict``), now
        (the newest logged prediction) or as the log was at ``as_of``."""
        from mlops_core.lifecycle import registry
        from mlops_core.monitoring import verdict as verdictmod

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
              store: bool = True, methods: Any = None, thresholds: dict | None = None,
              engine: str | None = None) -> pd.DataFrame:
        """Drift per window and feature against a stored reference; stored unless ``store=False`` (then it needs no
        role; storing needs the operator role). The bins are counted on the log engine ``engine`` (``duckdb``, the
        default, or ``spark``)."""
        from mlops_core.monitoring import drift

        if store:
            self._require("operator", "store drift results")
        return drift.over_time(self._store, self.info, window=window, start=parse_time(start),
                               end=parse_time(end, end=True), reference_id=reference_id, store_results=store,
                               methods=methods, thresholds=thresholds, engine=engine)

    def drift_stored(self, *, window: str = "day", start: Time = None, end: Time = None,
                     compute_missing: bool = True) -> pd.DataFrame:
        """The stored drift series (see ``monitoring.drift.stored``) with ``partial`` (``monitoring.windows``)."""
        from mlops_core.monitoring import drift, windows

        df = drift.stored(self._store, self.info, window=window, start=parse_time(start),
                          end=parse_time(end, end=True), compute_missing=compute_missing)
        return windows.mark_partial(df, window, self.last_prediction()) if len(df) else df.assign(partial=False)

    def drift_share(self, *, window: str = "day", start: Time = None, end: Time = None) -> pd.DataFrame:
        """Share of drifted features per window (``monitoring.drift.share``) with ``partial``."""
        from mlops_core.monitoring import drift, windows

        df = drift.share_over_time(self._store, self.info, window=window, start=parse_time(start),
                                   end=parse_time(end, end=True))
        return windows.mark_partial(df, window, self.last_prediction()) if len(df) else df.assign(partial=False)

    def drift_distribution(self, feature: str, *, start: Time = None, end: Time = None) -> pd.DataFrame:
        from mlops_core.monitoring import drift

        return drift.distribution(self._store, self.info, feature, start=parse_time(start),
                                  end=parse_time(end, end=True))

    def drift_latest(self, *, window: str = "day") -> pd.DataFrame:
        from mlops_core.monitoring import drift

        return drift.latest(self._store, self.info, window=window)

    def drift_settings(self) -> pd.DataFrame:
        from mlops_core.monitoring import drift

        with self._store.connect() as con:
            return drift.settings(con, self.info)

    def configure_drift(self, feature: str = "*", methods: str | Sequence[str] | None = None, *, threshold: float | None = None,
                        thresholds: dict | None = None) -> pd.DataFrame:
        """Store the drift method(s)/threshold(s) of a feature (``*``: every feature). Needs the operator role."""
        from mlops_core.monitoring import drift

        self._require("operator", "change drift settings")
        with self._store.connect(write=True) as con:
            return drift.configure(con, self.info, feature, methods, threshold=threshold, thresholds=thresholds,
                                   actor=self._actor)

    def reference_from_window(self, start: Time, end: Time) -> int:
        """Store the log in [start, end) as a reference; return its id. Needs the operator role."""
        from mlops_core.monitoring import drift

        self._require("operator", "store references")
        return drift.reference_from_window(self._store, self.info, parse_time(start), parse_time(end, end=True))

    def reference_from_file(self, path: str | os.PathLike, *, version: int | None = None) -> int:
        """Store a training file's summary as a reference; return its id. Needs the operator role."""
        from mlops_core.monitoring import drift

        self._require("operator", "store references")
        with self._store.connect(write=True) as con:
            return drift.reference_from_file(con, self.info, path, version=version)

    def monitor(self, *, now: Time = None, window: str = "day", lookback: int | None = None,
                trigger: str = "schedule") -> alerts.MonitoringResult:
        """Compute drift for the recent windows, evaluate the alert rules, store new alerts (safe from cron)."""
        from mlops_core.monitoring import alerts

        self._require("operator", "run the monitor")
        return alerts.run_monitoring(self._store, self.info, now=parse_time(now), window=window, lookback=lookback,
                                     trigger=trigger, actor=self._actor)

    def alerts(self, *, open_only: bool = False, statuses: Sequence[str] | None = None) -> pd.DataFrame:
        """The model's incidents, the most recently seen first (see ``ControlRoom.alerts``)."""
        from mlops_core.monitoring import incidents

        with self._store.connect() as con:
            return incidents.list_incidents(con, self.name, open_only=open_only,
                                            statuses=tuple(statuses) if statuses else None)

    def alert_rules(self) -> pd.DataFrame:
        from mlops_core.monitoring import alerts

        with self._store.connect() as con:
            return alerts.list_rules(con, self.info)

    def set_alert_rule(self, kind: str, *, target: str | None = None, threshold: float | None = None,
                       severity: str = "warning", params: dict | None = None, enabled: bool = True) -> int:
        """Create or update an alert rule; return its id. Needs the operator role."""
        from mlops_core.monitoring import alerts

        self._require("operator", "change alert rules")
        with self._store.connect(write=True) as con:
            return alerts.set_rule(con, self.info, kind, target=target, threshold=threshold, severity=severity,
                                   params=params, enabled=enabled)

    # --- lifecycle -----------------------------------------------------------------------------

    def policy(self) -> policies.Policy:
        from mlops_core.lifecycle import policies

        with self._store.connect() as con:
            return policies.policy_of(con, self.name)

    def set_policy(self, **changes: Any) -> policies.Policy:
        """Change fields of the automation policy (audited). Needs the operator role."""
        from mlops_core.lifecycle import policies

        self._require("operator", "change the automation policy")
        with self._store.connect(write=True) as con:
            return policies.set_policy(con, self.info, actor=self._actor, **changes)

    def evaluate_policy(self, *, now: Time = None, drift_share: float | None = None,
                        metrics: dict | None = None, spawn: bool = True) -> automation.PolicyDecision:
        """Evaluate the policy once and act on it (alert, or retrain in automated mode). A retrain it starts runs in
        a background process, or with ``spawn=False`` is only queued: run it with ``ControlRoom.execute_retrain``
        (its id is ``decision.retrain_run_id``). Needs the operator role."""
        from mlops_core.lifecycle import automation

        self._require("operator", "evaluate the automation policy")
        return automation.evaluate(self._store, self.info, now=parse_time(now), drift_share=drift_share,
                                   metrics_now=metrics, spawn=spawn)

    def evaluations(self, limit: int = 100) -> pd.DataFrame:
        from mlops_core.lifecycle import automation

        with self._store.connect() as con:
            return automation.recent_evaluations(con, self.info, limit)

    def retrain(self, params: dict | None = None, *, trigger: str = "manual", spawn: bool = True) -> str:
        """Queue a retrain for the database's job worker (started when none runs; ``spawn=False``: only queued, for
        a caller that runs it itself); return the run id. Needs the operator role."""
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
               alpha: float | None = None, min_samples: int | None = None) -> abtest.ABTestResult:
        """The A/B test of a challenger against the champion (``alpha`` and ``min_samples`` default to
        ``abtest.DEFAULT_ALPHA`` and ``DEFAULT_MIN_SAMPLES``)."""
        from mlops_core.lifecycle import abtest

        return abtest.evaluate(self._store, self.info, challenger, champion=champion, by=by, start=parse_time(start),
                               end=parse_time(end, end=True), alpha=abtest.DEFAULT_ALPHA if alpha is None else alpha,
                               min_samples=abtest.DEFAULT_MIN_SAMPLES if min_samples is None else min_samples)

    def promote_if_better(self, challenger: int, *, alpha: float | None = None,
                          min_samples: int | None = None) -> tuple[abtest.ABTestResult, Promotion | None]:
        """A/B test the challenger and promote it when it wins. Needs the operator role."""
        from mlops_core.lifecycle import abtest

        self._require("operator", "promote versions")
        return abtest.promote_if_better(self._store, self.info, challenger, actor=self._actor,
                                        alpha=abtest.DEFAULT_ALPHA if alpha is None else alpha,
                                        min_samples=abtest.DEFAULT_MIN_SAMPLES if min_samples is None else min_samples)


class FeatureStore:
    """The feature store at a location (``room.features``): entities and feature views, the offline store and its
    point-in-time joins, the online store, freshness. See docs/features.md.

    Reads need no role; defining, ingesting and materializing need the operator role.
    """

    def __init__(self, room: ControlRoom):
        self.room = room

    def __repr__(self) -> str:
        return f"FeatureStore({self.room.store.display!r})"

    @property
    def _store(self) -> Store:
        return self.room.store

    @property
    def _actor(self) -> str:
        return self.room.identity.name

    # --- definitions ----------------------------------------------------------------------------

    def define(self, path: str | os.PathLike | None = None, *, entities: Sequence[EntityDef] = (),
               views: Sequence[FeatureViewDef] = ()) -> list[DefinitionChange]:
        """Register the entities and views of a TOML definition file (and/or given ones), each as a new version
        where it changed; return what happened to each. Needs the operator role. Raises InvalidInputError (every
        validation of ``features.definitions``; nothing is stored then), NotFoundError."""
        from mlops_core.features import definitions as fdefs

        self.room.identity.require("operator", "define feature views")
        ents, vws = (fdefs.read_file(path) if path is not None else ([], []))
        return fdefs.define(self._store, [*ents, *entities], [*vws, *views], actor=self._actor)

    def define_entity(self, name: str, keys: dict[str, str] | Sequence[str], *,
                      description: str | None = None) -> DefinitionChange:
        """Define an entity: ``keys`` as {column: type} or ["column:type", ...]. Needs the operator role."""
        from mlops_core.features import definitions as fdefs

        entity = fdefs.entity_from({"name": name, "keys": keys, "description": description})
        return self.define(entities=[entity])[0]

    def define_view(self, name: str, entity: str, timestamp: str, features: dict[str, Any] | Sequence[str], *,
                    ttl: Any = None, freshness: Any = None, source: Any = None, owner: str | None = None,
                    description: str | None = None) -> DefinitionChange:
        """Define a feature view (``features`` as {name: type} or ["name:type", ...]; ``ttl``/``freshness`` as
        durations such as "30d"; ``source`` a file, folder, or {"path": db, "table": name}). Needs the operator
        role."""
        from mlops_core.features import definitions as fdefs

        doc = {"name": name, "entity": entity, "timestamp": timestamp, "features": features, "ttl": ttl,
               "freshness": freshness, "source": os.fspath(source) if isinstance(source, os.PathLike) else source,
               "owner": owner, "description": description}
        view = fdefs.view_from({k: v for k, v in doc.items() if v is not None}, Path.cwd())
        return self.define(views=[view])[0]

    def entities(self) -> list[EntityDef]:
        """The newest version of every entity (empty when the database does not exist yet)."""
        from mlops_core.store import features as fstore

        if not self._store.exists():
            return []
        with self._store.connect() as con:
            return fstore.list_entities(con)

    def views(self) -> list[FeatureViewDef]:
        """The newest version of every feature view (empty when the database does not exist yet)."""
        from mlops_core.store import features as fstore

        if not self._store.exists():
            return []
        with self._store.connect() as con:
            return fstore.list_views(con)

    def view(self, name: str, version: int | None = None) -> FeatureViewDef:
        """A view (its newest version when None); raises NotFoundError."""
        from mlops_core.store import features as fstore

        with self._store.connect() as con:
            return fstore.get_view(con, name, version)

    def view_versions(self, name: str) -> list[FeatureViewDef]:
        from mlops_core.store import features as fstore

        with self._store.connect() as con:
            fstore.get_view(con, name)
            return fstore.view_versions(con, name)

    def list(self, *, now: Time = None) -> pd.DataFrame:
        """One row per view: version, entity, keys, features, ttl, freshness limit, rows, newest event time, age,
        stale, owner and the models that use it."""
        import pandas as pd

        from mlops_core.features import definitions as fdefs

        at = parse_time(now) or utcnow()
        defs = {v.name: v for v in self.views()}
        rows = []
        for f in self.freshness(now=at) if defs else []:
            v = defs[f.view]
            rows.append({"view": v.name, "version": v.version, "entity": v.entity, "keys": ", ".join(v.key_names),
                         "features": ", ".join(f"{c.name}:{c.dtype}" for c in v.features),
                         "ttl": fdefs.describe_duration(v.ttl_s), "stale_after": fdefs.describe_duration(f.stale_after_s),
                         "rows": f.rows, "newest_event_ts": f.newest_event_ts,
                         "age_h": None if f.age_s is None else f.age_s / 3600, "stale": f.stale,
                         "materialized_at": f.materialized_at, "owner": v.owner, "used_by": ", ".join(f.used_by)})
        return pd.DataFrame(rows, columns=["view", "version", "entity", "keys", "features", "ttl", "stale_after",
                                           "rows", "newest_event_ts", "age_h", "stale", "materialized_at", "owner",
                                           "used_by"])

    # --- offline store ----------------------------------------------------------------------------

    def ingest(self, view: str, source: Source = None, *, source_name: str | None = None) -> FeatureIngestResult:
        """Check and append rows of ``view`` (a file, folder, DataFrame or Arrow table; None: the view's source), all
        or nothing and idempotent (see ``features.offline``). Needs the operator role. Raises NotFoundError,
        BatchRejectedError."""
        from mlops_core.features import offline as foffline

        self.room.identity.require("operator", "ingest feature rows")
        return foffline.ingest(self._store, view, source, actor=self._actor, source_name=source_name)

    def training_set(self, entities: Source, features: Any, *, timestamp_column: str | None = None,
                     full_names: bool = False, event_times: bool = False, arrow: bool = False) -> Any:
        """The entity rows with the point-in-time values of ``features`` (``view:feature``) at each row's time, in
        the rows' order (a DataFrame, or an Arrow table with ``arrow=True``); see ``features.join``."""
        from mlops_core.features import join as fjoin

        table = fjoin.training_set(self._store, entities, features, timestamp_column=timestamp_column,
                                   full_names=full_names, event_times=event_times)
        return table if arrow else table.to_pandas()

    # --- online store -----------------------------------------------------------------------------

    def materialize(self, views: Sequence[str] | None = None, *, as_of: Time = None) -> builtins.list[MaterializeResult]:
        """Write the online snapshot of each view (every view when None) with rows up to ``as_of`` (default: now).
        Needs the operator role."""
        from mlops_core.features import online as fonline

        self.room.identity.require("operator", "materialize feature views")
        return fonline.materialize(self._store, list(views) if views else None, as_of=parse_time(as_of),
                                   actor=self._actor)

    def get_online_features(self, features: Any, entity_keys: Any, *, now: Time = None) -> builtins.list[OnlineFeatures]:
        """The newest values of ``features`` for each entity key, from the online store (see
        ``features.online.get_online_features``); one OnlineFeatures per entity, in order."""
        from mlops_core.features import online as fonline

        return fonline.get_online_features(self._store, features, entity_keys, now=parse_time(now))

    # --- health -------------------------------------------------------------------------------------

    def freshness(self, views: Sequence[str] | None = None, *, now: Time = None) -> builtins.list[ViewFreshness]:
        """Each view's newest event time against its staleness limit at ``now`` (default: the clock)."""
        from mlops_core.features import freshness as ffresh

        return ffresh.freshness(self._store, list(views) if views else None, now=parse_time(now))

    def stats(self, view: str, *, window: str = "day", start: Time = None, end: Time = None) -> pd.DataFrame:
        """Rows and null rate per feature and window of event time (window_start, rows, feature, null_rate, mean)."""
        from mlops_core.features import freshness as ffresh

        return ffresh.stats(self._store, view, window=window, start=parse_time(start), end=parse_time(end, end=True))

    def rows_per_day(self, view: str) -> pd.DataFrame:
        from mlops_core.features import freshness as ffresh

        return ffresh.rows_per_day(self._store, view)

    def batches(self, view: str) -> pd.DataFrame:
        from mlops_core.features import freshness as ffresh

        return ffresh.batches(self._store, view)

    def drift(self, view: str, *, days: float = 7, now: Time = None) -> pd.DataFrame:
        """Distribution drift per feature: the values of the last ``days`` before the view's newest event time (or
        ``now``) against those before, with the default method of each kind (see ``monitoring.drift.compare``)."""
        import pandas as pd

        from mlops_core.features import freshness as ffresh
        from mlops_core.monitoring import drift

        at = parse_time(now)
        if at is None:
            fresh = self.freshness([view])[0]
            at = fresh.newest_event_ts
        if at is None:
            return drift.compare(pd.DataFrame(), pd.DataFrame())
        split = at - timedelta(days=days)
        reference, current = ffresh.samples(self._store, view, split, end=at + timedelta(microseconds=1))
        return drift.compare(reference, current)

    def check_freshness(self, *, now: Time = None) -> builtins.list[alerts.RaisedAlert]:
        """Raise the alerts of stale views for every model that uses one (``stale_feature_view`` rules; a model
        bound to the store without such a rule gets the default one). Needs the operator role."""
        from mlops_core.monitoring import alerts

        self.room.identity.require("operator", "run the freshness check")
        raised = []
        for info in self.room.models():
            if info.feature_binding is not None:
                raised += alerts.check_feature_freshness(self._store, info, now=parse_time(now))
        return raised

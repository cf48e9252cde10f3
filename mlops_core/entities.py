"""The records that cross layers: what the store returns and the domain and clients read.

Plain dataclasses with no behaviour beyond small derived properties, so every layer
(store, domain packages, the public API, the CLI and the dashboard) can import them.
Rows become one of these before they leave the store; nothing above it passes
dicts with string keys between modules. ``jsonable`` is the one conversion of records
(and the values inside them) into JSON documents.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

#: Pseudo-features summarised into every training reference, for prediction, score and target drift.
PREDICTION, SCORE, TARGET = "__prediction__", "__score__", "__target__"
PSEUDO_FEATURES = (PREDICTION, SCORE, TARGET)
#: How the pseudo-features read on a page or in a message.
PSEUDO_FEATURE_LABELS = {PREDICTION: "prediction", SCORE: "score", TARGET: "target (labels)"}


def feature_label(name: str) -> str:
    """A feature's name as people read it: the pseudo-features in words, every other name as it is."""
    return PSEUDO_FEATURE_LABELS.get(name, name)


# --- models and versions ----------------------------------------------------------------------


@dataclass
class FeatureSpec:
    """One input column of a model, as seen in its training data."""

    name: str
    kind: str  # numeric | categorical
    dtype: str  # float | int | bool | string
    min: float | None = None
    max: float | None = None
    categories: list[str] = field(default_factory=list)
    null_rate: float = 0.0

    @property
    def sql_type(self) -> str:
        return "DOUBLE" if self.kind == "numeric" else "VARCHAR"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def schema_to_json(specs: list[FeatureSpec]) -> str:
    return json.dumps([s.to_dict() for s in specs])


def schema_from_json(text: str) -> list[FeatureSpec]:
    return [FeatureSpec(**d) for d in json.loads(text)]


@dataclass
class ModelInfo:
    """A registered model: its task, target, feature schema and where its log lives."""

    name: str
    task: str  # classification | regression
    target: str
    features: list[FeatureSpec]
    log_table: str
    label_table: str
    positive_class: str | None = None
    classes: list[str] = field(default_factory=list)
    description: str | None = None
    created_at: datetime | None = None
    unit: str | None = None  # unit of the target (regression), e.g. "minutes"
    feature_binding: FeatureBinding | None = None  # features taken from the feature store, and the entity key

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def entity_keys(self) -> list[FeatureColumn]:
        """The entity key columns its prediction log holds besides the features (empty without a feature binding)."""
        return list(self.feature_binding.keys) if self.feature_binding is not None else []

    @property
    def prediction_sql_type(self) -> str:
        return "VARCHAR" if self.task == "classification" else "DOUBLE"

    @property
    def binary(self) -> bool:
        """A binary classifier (it logs the positive class's probability as its score)."""
        return self.task == "classification" and self.positive_class is not None

    def feature(self, name: str) -> FeatureSpec | None:
        return next((f for f in self.features if f.name == name), None)


@dataclass
class GateCheck:
    """The outcome of one gate rule."""

    rule: str
    outcome: str  # passed | failed | skipped
    candidate: float | None
    champion: float | None
    reason: str


@dataclass
class GateDecision:
    """The promotion gate's verdict: ``passed`` and one human sentence per rule in ``reasons``."""

    passed: bool
    reasons: list[str]
    checks: list[GateCheck] = field(default_factory=list)
    champion_version: int | None = None
    champion_metrics: dict | None = None
    holdout: dict | None = None  # rows, start, end of the shared holdout

    @classmethod
    def from_dict(cls, d: dict | None) -> GateDecision | None:
        if not d:
            return None
        checks = [GateCheck(**c) for c in d.get("checks") or [] if isinstance(c, dict) and "rule" in c]
        return cls(bool(d.get("passed")), list(d.get("reasons") or []), checks, d.get("champion_version"),
                   d.get("champion_metrics"), d.get("holdout"))


@dataclass
class VersionInfo:
    """One version of a model: how it was trained, what it scored, where its artifact is, its status."""

    model: str
    version: int
    algorithm: str
    hyperparameters: dict
    status: str  # candidate | production | archived | rejected
    artifact_path: str
    artifact_sha256: str
    train_start: datetime | None = None
    train_end: datetime | None = None
    train_rows: int | None = None
    data_source: str | None = None
    training_metrics: dict = field(default_factory=dict)
    holdout_metrics: dict = field(default_factory=dict)
    holdout_rows: int | None = None
    gate: dict | None = None
    run_id: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None

    @property
    def gate_decision(self) -> GateDecision | None:
        return GateDecision.from_dict(self.gate)


@dataclass
class Promotion:
    """What a promote or rollback did."""

    model: str
    from_version: int | None
    to_version: int
    forced: bool
    action: str  # promote | rollback | automation | ab_promote
    actor: str
    reason: str | None
    at: datetime


@dataclass
class Challenger:
    """A version serving a share of the traffic beside production (the ``challenger`` alias of an A/B test)."""

    model: str
    version: int
    share: float  # of the traffic, 0..1
    champion_version: int | None  # production when the window started
    actor: str
    reason: str | None
    started_at: datetime


# --- accounts ---------------------------------------------------------------------------------


@dataclass
class UserInfo:
    """An account of the dashboard or the service (never its password hash)."""

    name: str
    role: str
    has_password: bool
    disabled: bool
    created_at: datetime
    created_by: str
    password_changed_at: datetime | None = None
# --- deployments (how traffic is served) ------------------------------------------------------


@dataclass(frozen=True)
class CanaryStep:
    """One step of a canary ramp: the challenger answers ``share`` of the requests for ``hold_s`` seconds."""

    share: float
    hold_s: float


@dataclass(frozen=True)
class DeploymentConfig:
    """How a model's requests are served (see ``mlops_core.lifecycle.deployments``).

    ``mode``: ``champion`` (the production version answers everything), ``split`` (the challenger
    answers ``weight`` of the requests), ``shadow`` (the challenger also scores every request; its
    answer is logged, not returned) or ``canary`` (a split whose share follows ``steps`` from
    ``started_at``). ``id`` is None for the implicit champion-only config of a model never configured.
    """

    model: str
    mode: str
    challenger: int | None = None
    weight: float = 0.0
    steps: tuple[CanaryStep, ...] = ()
    sticky_key: str | None = None
    guard_alpha: float | None = None
    guard_min_samples: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    actor: str | None = None
    reason: str | None = None
    end_reason: str | None = None
    id: int | None = None


# --- runs -------------------------------------------------------------------------------------


@dataclass
class RunInfo:
    """One pipeline run (train, retrain, ingest, monitor, ...): who, when, how long, what it found."""

    id: str
    model: str | None
    kind: str
    trigger: str
    actor: str
    status: str
    progress: float = 0.0
    message: str | None = None
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    statistics: dict = field(default_factory=dict)
    error: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    pid: int | None = None
    host: str | None = None
    heartbeat_at: datetime | None = None


@dataclass
class RunAnomaly:
    """A statistic of a finished run far from the recent runs of its series (``monitoring.run_anomalies``).

    ``series``: the runs compared (the run kind, with an ingest's batch kind: ``ingest:labels``);
    ``statistic``: e.g. ``duration_s``, ``rows``, ``positive_rate``, ``null_rate:<feature>``,
    ``holdout:<metric>``; ``median`` of the ``history`` earlier runs, in the statistic's unit;
    ``robust_z``: the modified z-score, flagged beyond ``threshold``; ``alert_id``: the open
    ``run_anomaly`` alert that reports it.
    """

    run_id: str
    model: str
    run_kind: str
    series: str
    statistic: str
    value: float
    median: float
    robust_z: float
    threshold: float
    history: int
    message: str
    alert_id: int | None = None
    detected_at: datetime | None = None


# --- incident notifications -----------------------------------------------------------------


@dataclass
class Webhook:
    """Where incidents are posted (Slack-compatible JSON): of one model (``model``) or of all (None)."""

    id: int
    model: str | None
    url: str
    min_severity: str
    enabled: bool
    created_at: datetime
    created_by: str


@dataclass
class WebhookDelivery:
    """One incident to post to one webhook, and the incident as it is now."""

    id: int
    webhook_id: int
    url: str
    event: str  # new | reopened | test
    attempts: int
    alert_id: int
    model: str
    severity: str
    title: str
    message: str
    current_text: str | None
    status: str  # the incident's status
    first_seen: datetime | None
    last_seen: datetime | None
    windows: int | None


# --- reference distributions ------------------------------------------------------------------


@dataclass
class Bin:
    bin: int
    count: int
    lower: float | None = None  # None = -inf
    upper: float | None = None  # None = +inf
    category: str | None = None


@dataclass
class FeatureReference:
    """A summarised reference distribution of one feature (see ``mlops_core.data.reference``)."""

    feature: str
    kind: str  # numeric | categorical
    n: int
    null_count: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: list[float] = field(default_factory=list)
    bins: list[Bin] = field(default_factory=list)
    mad: float | None = None  # mean |x - median| of the finite values (numeric); None when not stored

    @property
    def edges(self) -> list[float]:
        """Inner bin edges of a numeric reference (k edges make k+1 bins)."""
        return [b.lower for b in self.bins if b.lower is not None]


# --- drift counts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftSpec:
    """What to count for one feature in each window: bins against a reference's edges or categories.

    Numeric: ``edges`` (inner bin edges; the count of values ``>= e`` per edge gives the bins) and
    ``centre`` (the reference median, for the mean absolute deviation about it). Categorical:
    ``categories`` (the count of each; the rest are unseen).
    """

    feature: str
    kind: str  # numeric | categorical
    edges: tuple[float, ...] = ()
    centre: float | None = None
    categories: tuple[str, ...] = ()


@dataclass
class FeatureCounts:
    """One feature's counts in one window (from one SQL scan), as ``DriftSpec`` asked for them."""

    n: int  # non-null values
    total: float | None = None  # numeric: sum of the values
    deviation: float | None = None  # numeric: sum of |value - centre|
    at_least: list[int] = field(default_factory=list)  # numeric: values >= each edge
    per_category: list[int] = field(default_factory=list)  # categorical: values equal to each category


@dataclass
class WindowCounts:
    """Every spec's counts in one window of the log."""

    window_start: datetime
    rows: int
    features: dict[str, FeatureCounts]


# --- performance estimation ---------------------------------------------------------------------


@dataclass
class ReferencePerformance:
    """Realized metrics of a binary classifier on the labelled rows a calibration was fitted on (None: undefined)."""

    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    roc_auc: float | None = None


@dataclass
class ScoreCalibration:
    """A monotone map from a binary classifier's positive-class score to a calibrated probability.

    The map is piecewise linear between breakpoints at the scores ``cells / grid`` (integers,
    strictly increasing, the first 0 and the last ``grid``) where it takes ``values``; it is
    constant below score 0 and from score 1 on. Each value comes from the reference rows through
    ``value = (1 - weight) * block_means[block_low] + weight * block_means[block_high]``, the blocks
    being the isotonic fit's pools of reference rows (``block_rows`` of them each); with no blocks
    (``applied`` False) the map is the identity and the scores are taken as calibrated already.
    See ``mlops_core.monitoring.estimation``. Arrays are numpy arrays.
    """

    grid: int
    cells: Any
    values: Any
    block_low: Any
    block_high: Any
    weights: Any
    block_means: Any
    block_rows: Any
    applied: bool
    ece_before: float | None
    ece_after: float | None
    rows: int
    positives: int
    reference: ReferencePerformance = field(default_factory=ReferencePerformance)


@dataclass
class CalibrationRecord:
    """A stored calibration of one model version, and the labelled rows it was fitted on."""

    id: int | None
    model: str
    version: int
    source: str  # holdout | window
    calibration: ScoreCalibration
    window_start: datetime | None = None
    window_end: datetime | None = None
    created_at: datetime | None = None


# --- validation findings ----------------------------------------------------------------------


@dataclass
class Anomaly:
    """A finding of data validation, stored verbatim in a validation report.

    ``kind``: missing_column, new_column, wrong_type, out_of_range, unseen_category,
    null_rate_jump, too_few_rows, skew, and the structural kinds of a refused batch.
    ``severity``: info, warning or critical (critical stops a batch or a retrain).
    """

    kind: str
    severity: str
    detail: str
    feature: str | None = None
    count: int | None = None
    share: float | None = None

    @property
    def blocking(self) -> bool:
        return self.severity == "critical"

    def describe(self) -> str:
        return f"{self.kind} in {self.feature!r}: {self.detail}" if self.feature else f"{self.kind}: {self.detail}"


# --- feature store ------------------------------------------------------------------------------

#: Types a feature or entity key column may have, and their SQL (and Parquet) types.
FEATURE_TYPES = {"float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN", "string": "VARCHAR"}


@dataclass(frozen=True)
class FeatureColumn:
    """A typed column of the feature store: an entity key or a feature of a view (``dtype`` in FEATURE_TYPES)."""

    name: str
    dtype: str
    description: str | None = None

    @property
    def sql_type(self) -> str:
        return FEATURE_TYPES[self.dtype]


@dataclass(frozen=True)
class FeatureSource:
    """Where a view's rows come from when ``features ingest VIEW`` is given no file.

    ``kind``: ``file`` (one CSV or Parquet file), ``folder`` (every .parquet and .csv file in it, by name),
    or ``table`` (``table`` of the DuckDB file ``path``, read-only).
    """

    kind: str
    path: str
    table: str | None = None

    def describe(self) -> str:
        return f"table {self.table} of {self.path}" if self.kind == "table" else f"{self.kind} {self.path}"


@dataclass
class EntityDef:
    """An entity of the feature store: a name and the key columns that identify one of them."""

    name: str
    keys: list[FeatureColumn]
    description: str | None = None
    version: int = 1
    created_at: datetime | None = None
    created_by: str | None = None

    @property
    def key_names(self) -> list[str]:
        return [k.name for k in self.keys]


@dataclass
class FeatureViewDef:
    """A feature view: typed features of one entity, stamped with the time each value became true.

    ``ttl_s``: a value is used for an event at most this long after its event time (None: forever).
    ``freshness_s``: the view is stale when its newest event time is older than this (None: ``ttl_s``).
    ``keys`` are the entity's key columns at the time the view was defined.
    """

    name: str
    entity: str
    keys: list[FeatureColumn]
    timestamp: str
    features: list[FeatureColumn]
    ttl_s: float | None = None
    freshness_s: float | None = None
    source: FeatureSource | None = None
    owner: str | None = None
    description: str | None = None
    version: int = 1
    created_at: datetime | None = None
    created_by: str | None = None

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def key_names(self) -> list[str]:
        return [k.name for k in self.keys]

    @property
    def stale_after_s(self) -> float | None:
        """Age of the newest event time past which the view is stale (``freshness_s``, else ``ttl_s``)."""
        return self.freshness_s if self.freshness_s is not None else self.ttl_s

    def feature(self, name: str) -> FeatureColumn | None:
        return next((f for f in self.features if f.name == name), None)


@dataclass(frozen=True)
class FeatureRef:
    """One feature of one view, written ``view:feature``."""

    view: str
    feature: str

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}"


@dataclass
class FeatureBinding:
    """A model's features that come from the feature store: the entity, its key columns (which the model's
    prediction log records with every prediction) and the features, by view."""

    entity: str
    keys: list[FeatureColumn]
    features: list[FeatureRef]

    @property
    def key_names(self) -> list[str]:
        return [k.name for k in self.keys]

    @property
    def views(self) -> list[str]:
        return list(dict.fromkeys(r.view for r in self.features))

    @property
    def feature_names(self) -> list[str]:
        return [r.feature for r in self.features]


@dataclass(frozen=True)
class FeatureValue:
    """One feature of one entity from the online store.

    ``status``: ``present`` (a value within the view's TTL), ``expired`` (the newest value is older than the
    TTL: ``value`` is None, ``event_ts`` says how old it is) or ``missing`` (the entity has no row in the view).
    """

    view: str
    feature: str
    value: Any
    event_ts: datetime | None
    status: str


@dataclass
class OnlineFeatures:
    """The online features of one entity: its key (in key-column order) and one FeatureValue per feature asked."""

    key: tuple
    values: list[FeatureValue]

    def row(self) -> dict[str, Any]:
        """Feature name -> value (None when expired or missing): the columns a model's input row needs."""
        return {v.feature: v.value for v in self.values}

    def value(self, feature: str) -> Any:
        """The value of ``feature`` (None when expired or missing); raises KeyError for a feature not asked for."""
        for v in self.values:
            if v.feature == feature:
                return v.value
        raise KeyError(feature)


@dataclass
class ViewFreshness:
    """How current a feature view is at ``now``: its newest event time against its staleness limit."""

    view: str
    entity: str
    version: int
    owner: str | None
    rows: int
    files: int
    oldest_event_ts: datetime | None
    newest_event_ts: datetime | None
    last_ingested_at: datetime | None
    materialized_at: datetime | None
    online_rows: int
    ttl_s: float | None
    stale_after_s: float | None
    now: datetime
    used_by: list[str] = field(default_factory=list)

    @property
    def age_s(self) -> float | None:
        """Seconds from the newest event time to ``now`` (None without rows)."""
        return None if self.newest_event_ts is None else (self.now - self.newest_event_ts).total_seconds()

    @property
    def stale(self) -> bool:
        """No row at all, or the newest event time older than the staleness limit."""
        age = self.age_s
        if age is None:
            return True
        return self.stale_after_s is not None and age > self.stale_after_s


@dataclass
class FeatureIngestResult:
    """What one ``features ingest`` did."""

    view: str
    batch_id: str | None
    rows: int
    rows_written: int
    superseded: int  # stored rows of the same entity and event time that this batch replaced
    already_ingested: bool
    min_event_ts: datetime | None = None
    max_event_ts: datetime | None = None
    notes: list[str] = field(default_factory=list)
    source: str | None = None
    run_id: str | None = None
    ingested_at: datetime | None = None
    duration_s: float | None = None


@dataclass
class DefinitionChange:
    """What ``features define`` did to one entity or view: ``action`` is ``created``, ``updated`` (a new version)
    or ``unchanged`` (the same definition was stored already)."""

    kind: str  # entity | view
    name: str
    version: int
    action: str
    notes: list[str] = field(default_factory=list)


@dataclass
class MaterializeResult:
    """What ``features materialize`` wrote to the online store for one view."""

    view: str
    rows: int
    newest_event_ts: datetime | None
    as_of: datetime
    path: str | None
    duration_s: float


# --- JSON ---------------------------------------------------------------------------------------


def jsonable(o: Any) -> Any:
    """``o`` as plain JSON values: records and dicts recursively, times as ISO 8601, numpy scalars as numbers,
    NaN and infinities as None (JSON has no NaN)."""
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return {f.name: jsonable(getattr(o, f.name)) for f in dataclasses.fields(o)}
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in o]
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    if hasattr(o, "isoformat") and callable(o.isoformat):  # pandas Timestamp
        try:
            return None if o != o else o.isoformat()  # noqa: PLR0124 - NaT is the value unequal to itself
        except (TypeError, ValueError):
            return None
    if hasattr(o, "item") and callable(o.item):  # numpy scalar
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if o is None or isinstance(o, (bool, int, float, str)):
        return o
    return str(o)


def dumps(o: Any) -> str:
    """``o`` as a JSON document (see ``jsonable``)."""
    return json.dumps(jsonable(o))

-- 001: every concept of the design, as portable SQL (VARCHAR holds JSON documents,
-- TIMESTAMP is microsecond UTC without zone). Per-model prediction and label tables
-- (typed feature columns) are created by store.models.create_model, not here.

CREATE TABLE models (
    name            VARCHAR PRIMARY KEY,
    task            VARCHAR NOT NULL,          -- classification | regression
    target          VARCHAR NOT NULL,
    positive_class  VARCHAR,                   -- classification: the class whose probability is logged as score
    classes         VARCHAR,                   -- JSON list of class labels (as strings)
    feature_schema  VARCHAR NOT NULL,          -- JSON list of FeatureSpec (see mlops_core/schema.py)
    log_table       VARCHAR NOT NULL,          -- typed prediction log of this model
    label_table     VARCHAR NOT NULL,          -- ground truth of this model
    description     VARCHAR,
    created_at      TIMESTAMP NOT NULL
);

CREATE TABLE model_versions (
    model             VARCHAR NOT NULL,
    version           INTEGER NOT NULL,
    algorithm         VARCHAR NOT NULL,
    hyperparameters   VARCHAR,                 -- JSON
    train_start       TIMESTAMP,               -- training data window (NULL when unknown)
    train_end         TIMESTAMP,
    train_rows        BIGINT,
    data_source       VARCHAR,                 -- file or log window the data came from
    training_metrics  VARCHAR,                 -- JSON {metric: value}
    holdout_metrics   VARCHAR,                 -- JSON {metric: value}
    holdout_rows      BIGINT,
    artifact_path     VARCHAR NOT NULL,        -- relative to the artifacts folder
    artifact_sha256   VARCHAR NOT NULL,
    status            VARCHAR NOT NULL,        -- candidate | production | archived | rejected
    gate              VARCHAR,                 -- JSON {passed, reasons, ...} of the promotion gate
    run_id            VARCHAR,                 -- run that created the version
    created_by        VARCHAR,
    created_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (model, version)
);

CREATE SEQUENCE deployments_seq;
CREATE TABLE deployments (                     -- append-only alias history; ended_at closes a row
    id          BIGINT PRIMARY KEY DEFAULT nextval('deployments_seq'),
    model       VARCHAR NOT NULL,
    alias       VARCHAR NOT NULL,              -- production | challenger
    version     INTEGER NOT NULL,
    started_at  TIMESTAMP NOT NULL,
    ended_at    TIMESTAMP,
    actor       VARCHAR,
    action      VARCHAR,                       -- register | promote | rollback | automation
    reason      VARCHAR,
    run_id      VARCHAR
);

CREATE TABLE runs (
    id           VARCHAR PRIMARY KEY,
    model        VARCHAR,
    kind         VARCHAR NOT NULL,             -- train | evaluate | validate | promote | rollback | ingest | monitor | retrain
    trigger      VARCHAR NOT NULL,             -- manual | automated | schedule | api
    actor        VARCHAR NOT NULL,
    status       VARCHAR NOT NULL,             -- queued | running | succeeded | failed
    progress     DOUBLE NOT NULL DEFAULT 0,
    message      VARCHAR,
    params       VARCHAR,                      -- JSON
    metrics      VARCHAR,                      -- JSON
    statistics   VARCHAR,                      -- JSON
    error        VARCHAR,
    created_at   TIMESTAMP NOT NULL,
    started_at   TIMESTAMP,
    finished_at  TIMESTAMP,
    duration_s   DOUBLE,
    pid          INTEGER,                      -- process running it (to detect dead jobs)
    host         VARCHAR,
    heartbeat_at TIMESTAMP
);

CREATE SEQUENCE audit_seq;
CREATE TABLE audit_events (                    -- append-only
    id            BIGINT PRIMARY KEY DEFAULT nextval('audit_seq'),
    occurred_at   TIMESTAMP NOT NULL,
    actor         VARCHAR NOT NULL,
    action        VARCHAR NOT NULL,
    model         VARCHAR,
    from_version  INTEGER,
    to_version    INTEGER,
    reason        VARCHAR,
    run_id        VARCHAR,
    details       VARCHAR                      -- JSON
);

CREATE TABLE ingest_batches (
    batch_id     VARCHAR PRIMARY KEY,
    model        VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,             -- predictions | labels
    source       VARCHAR,
    fingerprint  VARCHAR NOT NULL,             -- sha256 of the batch content
    rows         BIGINT NOT NULL,
    rows_written BIGINT NOT NULL,
    actor        VARCHAR,
    ingested_at  TIMESTAMP NOT NULL
);

CREATE SEQUENCE validation_seq;
CREATE TABLE validation_reports (
    id           BIGINT PRIMARY KEY DEFAULT nextval('validation_seq'),
    model        VARCHAR NOT NULL,
    batch_id     VARCHAR,                      -- NULL for a report on a file or window not ingested
    source       VARCHAR,
    checked_at   TIMESTAMP NOT NULL,
    window_start TIMESTAMP,
    window_end   TIMESTAMP,
    rows         BIGINT,
    status       VARCHAR NOT NULL,             -- clean | anomalies | rejected
    summary      VARCHAR,
    skew         VARCHAR                       -- JSON: training-serving skew per feature
);

CREATE TABLE validation_anomalies (
    report_id  BIGINT NOT NULL,
    feature    VARCHAR,
    kind       VARCHAR NOT NULL,               -- missing_column | new_column | wrong_type | out_of_range | unseen_category | null_rate_jump | too_few_rows
    severity   VARCHAR NOT NULL,               -- info | warning | critical
    count      BIGINT,
    share      DOUBLE,
    detail     VARCHAR
);

CREATE SEQUENCE reference_seq;
CREATE TABLE drift_references (                -- a summarised reference distribution
    id            BIGINT PRIMARY KEY DEFAULT nextval('reference_seq'),
    model         VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,            -- training | window
    version       INTEGER,                     -- training: the version whose training data it summarises
    window_start  TIMESTAMP,                   -- window: the log window summarised
    window_end    TIMESTAMP,
    rows          BIGINT NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE reference_stats (                 -- one row per feature (and __prediction__, __score__, __target__)
    reference_id  BIGINT NOT NULL,
    feature       VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,            -- numeric | categorical
    n             BIGINT NOT NULL,
    null_count    BIGINT NOT NULL,
    mean          DOUBLE,
    std           DOUBLE,
    min           DOUBLE,
    max           DOUBLE,
    quantiles     VARCHAR,                     -- JSON list of 101 quantiles (0%..100%) for numeric
    PRIMARY KEY (reference_id, feature)
);

CREATE TABLE reference_bins (                  -- bin edges and counts as data, so any SQL engine can bin against them
    reference_id  BIGINT NOT NULL,
    feature       VARCHAR NOT NULL,
    bin           INTEGER NOT NULL,
    lower         DOUBLE,                      -- numeric: [lower, upper); NULL lower = -inf, NULL upper = +inf
    upper         DOUBLE,
    category      VARCHAR,                     -- categorical: the category (NULL bin counts nulls)
    count         BIGINT NOT NULL
);

CREATE TABLE drift_results (                   -- a time series: stored for every window, drifted or not
    model         VARCHAR NOT NULL,
    reference_id  BIGINT NOT NULL,
    window_size   VARCHAR NOT NULL,            -- hour | day | week
    window_start  TIMESTAMP NOT NULL,
    feature       VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,
    statistic     DOUBLE,
    p_value       DOUBLE,
    threshold     DOUBLE,
    drifted       BOOLEAN,
    n_reference   BIGINT,
    n_current     BIGINT,
    computed_at   TIMESTAMP NOT NULL
);

CREATE SEQUENCE alert_rules_seq;
CREATE TABLE alert_rules (
    id         BIGINT PRIMARY KEY DEFAULT nextval('alert_rules_seq'),
    model      VARCHAR NOT NULL,
    kind       VARCHAR NOT NULL,               -- metric_below | drift_share_above | feature_drift | validation_anomalies | no_traffic
    target     VARCHAR,                        -- metric or feature name
    threshold  DOUBLE,
    severity   VARCHAR NOT NULL,               -- info | warning | critical
    params     VARCHAR,                        -- JSON
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL
);

CREATE SEQUENCE alerts_seq;
CREATE TABLE alerts (
    id               BIGINT PRIMARY KEY DEFAULT nextval('alerts_seq'),
    model            VARCHAR NOT NULL,
    raised_at        TIMESTAMP NOT NULL,
    kind             VARCHAR NOT NULL,
    severity         VARCHAR NOT NULL,
    message          VARCHAR NOT NULL,
    rule_id          BIGINT,
    window_start     TIMESTAMP,
    dedup_key        VARCHAR,                  -- one open alert per rule and window
    details          VARCHAR,                  -- JSON
    acknowledged     BOOLEAN NOT NULL DEFAULT FALSE,
    acknowledged_at  TIMESTAMP,
    acknowledged_by  VARCHAR
);

CREATE TABLE policies (
    model            VARCHAR PRIMARY KEY,
    mode             VARCHAR NOT NULL,         -- manual | automated
    config           VARCHAR NOT NULL,         -- JSON: triggers, thresholds, gate, schedule, cool-down
    updated_at       TIMESTAMP NOT NULL,
    updated_by       VARCHAR
);

CREATE TABLE feature_values (                  -- feature store: point-in-time lookups by entity and event time
    feature_set   VARCHAR NOT NULL,
    entity_key    VARCHAR NOT NULL,
    event_ts      TIMESTAMP NOT NULL,
    feature       VARCHAR NOT NULL,
    value_double  DOUBLE,
    value_text    VARCHAR
);

-- 045: the feature store. Definitions are versioned rows; feature rows are Parquet files under
-- <logs>/features/view=<name>/ listed in feature_files (as log_files lists the prediction logs);
-- the online store is one Parquet snapshot per view listed in online_snapshots. A model whose
-- features come from the store records its binding (entity, key columns, features) on its row.
-- The unused placeholder feature_values of 001 goes.

DROP TABLE feature_values;

CREATE TABLE feature_entities (
    name         VARCHAR NOT NULL,
    version      INTEGER NOT NULL,
    keys         VARCHAR NOT NULL,             -- JSON list of {name, dtype, description}
    description  VARCHAR,
    created_at   TIMESTAMP NOT NULL,
    created_by   VARCHAR,
    PRIMARY KEY (name, version)
);

CREATE TABLE feature_views (
    name         VARCHAR NOT NULL,
    version      INTEGER NOT NULL,
    entity       VARCHAR NOT NULL,
    keys         VARCHAR NOT NULL,             -- JSON: the entity's key columns when the view was defined
    ts_column    VARCHAR NOT NULL,             -- event-timestamp column of the source rows
    features     VARCHAR NOT NULL,             -- JSON list of {name, dtype, description}
    ttl_s        DOUBLE,                       -- NULL: values never expire
    freshness_s  DOUBLE,                       -- NULL: stale after ttl_s
    source       VARCHAR,                      -- JSON {kind, path, table} or NULL
    owner        VARCHAR,
    description  VARCHAR,
    created_at   TIMESTAMP NOT NULL,
    created_by   VARCHAR,
    PRIMARY KEY (name, version)
);

CREATE TABLE feature_files (
    path        VARCHAR PRIMARY KEY,           -- relative to the log folder
    view        VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,              -- rows | superseded (orders of stored rows a later row replaced)
    batch_id    VARCHAR NOT NULL,
    day         DATE,                          -- rows: event day of the file's rows
    rows        BIGINT NOT NULL,
    min_ts      TIMESTAMP,
    max_ts      TIMESTAMP,
    bytes       BIGINT,
    created_at  TIMESTAMP NOT NULL,
    retired_at  TIMESTAMP
);

CREATE TABLE feature_batches (
    batch_id     VARCHAR PRIMARY KEY,
    view         VARCHAR NOT NULL,
    seq          BIGINT NOT NULL,              -- ingest order of the view's batches (ties in event time: later wins)
    source       VARCHAR,
    fingerprint  VARCHAR NOT NULL,
    rows         BIGINT NOT NULL,
    rows_written BIGINT NOT NULL,
    superseded   BIGINT NOT NULL,
    min_ts       TIMESTAMP,
    max_ts       TIMESTAMP,
    actor        VARCHAR,
    ingested_at  TIMESTAMP NOT NULL
);

CREATE TABLE online_snapshots (
    path             VARCHAR PRIMARY KEY,      -- relative to the log folder
    view             VARCHAR NOT NULL,
    view_version     INTEGER NOT NULL,
    rows             BIGINT NOT NULL,
    newest_ts        TIMESTAMP,
    as_of            TIMESTAMP NOT NULL,       -- rows with event time up to this moment
    materialized_at  TIMESTAMP NOT NULL,
    retired_at       TIMESTAMP
);

ALTER TABLE models ADD COLUMN feature_binding VARCHAR;  -- JSON {entity, keys, features} or NULL

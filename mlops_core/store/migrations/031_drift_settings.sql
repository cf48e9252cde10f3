-- 031: per-model drift configuration: the method and threshold of a feature (or of every
-- feature when feature = '*'), used by drift over time and the monitor unless a call overrides them.
CREATE TABLE drift_settings (
    model       VARCHAR NOT NULL,
    feature     VARCHAR NOT NULL,             -- a feature, a pseudo-feature, or '*' for all
    method      VARCHAR NOT NULL,
    threshold   DOUBLE,                       -- NULL: the method's default
    updated_at  TIMESTAMP NOT NULL,
    updated_by  VARCHAR
);

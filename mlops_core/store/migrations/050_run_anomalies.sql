-- 050: anomalies of pipeline runs. A finished run's statistic that lies far from the same statistic
-- of the recent runs of its series (see mlops_core/monitoring/run_anomalies.py), one row per
-- (run, statistic), written in the transaction that marks the run succeeded.
CREATE TABLE run_anomalies (
    run_id       VARCHAR NOT NULL,
    model        VARCHAR NOT NULL,
    run_kind     VARCHAR NOT NULL,         -- ingest | retrain | monitor | ...
    series       VARCHAR NOT NULL,         -- the runs compared: the kind, ingest:predictions, ingest:labels, ...
    statistic    VARCHAR NOT NULL,         -- duration_s | rows | positive_rate | null_rate:<feature> | holdout:<metric> | ...
    value        DOUBLE NOT NULL,
    median       DOUBLE NOT NULL,          -- of the earlier runs, in the statistic's unit
    robust_z     DOUBLE NOT NULL,          -- modified z-score (median and MAD)
    threshold    DOUBLE NOT NULL,
    history      INTEGER NOT NULL,         -- earlier runs compared with
    message      VARCHAR NOT NULL,
    alert_id     BIGINT,                   -- the run_anomaly alert that reports it
    detected_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, statistic)
);

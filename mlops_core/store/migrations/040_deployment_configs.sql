-- 040: how each model's traffic is served (champion only, a weighted split, a shadow, a canary ramp).
-- Append-only like ``deployments``: a change closes the open row (ended_at, end_reason) and opens a new
-- one in the same transaction as its audit row; the open row (ended_at IS NULL) is what serves now.
-- The champion is always the holder of the production alias; ``challenger`` names the other arm.
CREATE SEQUENCE deployment_configs_seq;
CREATE TABLE deployment_configs (
    id           BIGINT PRIMARY KEY DEFAULT nextval('deployment_configs_seq'),
    model        VARCHAR NOT NULL,
    mode         VARCHAR NOT NULL,             -- champion | split | shadow | canary
    challenger   INTEGER,                      -- the challenger version (NULL: champion only)
    weight       DOUBLE NOT NULL,              -- split: share of requests the challenger answers; canary: the last step
    steps        VARCHAR,                      -- canary: JSON list of {"share": s, "hold_s": seconds}
    sticky_key   VARCHAR,                      -- record field whose hash assigns the arm (NULL: the request id)
    guard_alpha  DOUBLE,                       -- canary: significance level of the guard test
    guard_min_samples BIGINT,                  -- canary: labelled predictions per arm before the guard may stop it
    started_at   TIMESTAMP NOT NULL,
    ended_at     TIMESTAMP,
    actor        VARCHAR NOT NULL,
    reason       VARCHAR,
    end_reason   VARCHAR                       -- replaced | winner promoted | stopped by the canary guard | ...
);

-- 033: confidence-based performance estimation (CBPE) of binary classifiers.
-- A calibration of a version's positive-class score, fitted on labelled reference rows (its
-- holdout at registration, or a labelled window of the log): its map as breakpoints on a score
-- grid (data the per-window SQL joins to) and the isotonic pools the breakpoint values come from.
-- The estimates per window are kept, so that labels arriving later show how good each one was.
CREATE SEQUENCE estimation_calibration_seq;
CREATE TABLE estimation_calibrations (
    id                BIGINT PRIMARY KEY DEFAULT nextval('estimation_calibration_seq'),
    model             VARCHAR NOT NULL,
    version           INTEGER NOT NULL,
    source            VARCHAR NOT NULL,        -- holdout | window
    window_start      TIMESTAMP,               -- window: the labelled log rows it was fitted on
    window_end        TIMESTAMP,
    rows              BIGINT NOT NULL,
    positives         BIGINT NOT NULL,
    applied           BOOLEAN NOT NULL,        -- false: the scores were calibrated already (identity map)
    ece_before        DOUBLE,                  -- expected calibration error of held-out reference rows
    ece_after         DOUBLE,
    grid              INTEGER NOT NULL,        -- breakpoints are multiples of 1/grid in [0, 1]
    reference_metrics VARCHAR,                 -- JSON: realized metrics on the reference rows
    created_at        TIMESTAMP NOT NULL
);

CREATE TABLE estimation_breakpoints (
    calibration_id  BIGINT NOT NULL,
    knot            INTEGER NOT NULL,          -- 0, 1, ... in score order
    cell            INTEGER NOT NULL,          -- the breakpoint's score is cell / grid
    value           DOUBLE NOT NULL,           -- calibrated probability there (linear in between)
    block_low       INTEGER,                   -- value = (1 - weight) * mean(block_low) + weight * mean(block_high)
    block_high      INTEGER,                   -- (NULL: identity map)
    weight          DOUBLE,
    PRIMARY KEY (calibration_id, knot)
);

CREATE TABLE estimation_blocks (               -- the isotonic pools of reference rows
    calibration_id  BIGINT NOT NULL,
    block           INTEGER NOT NULL,
    mean            DOUBLE NOT NULL,           -- share of positives among its rows
    rows            BIGINT NOT NULL,
    PRIMARY KEY (calibration_id, block)
);

CREATE TABLE performance_estimates (
    model              VARCHAR NOT NULL,
    version            INTEGER NOT NULL,
    window_size        VARCHAR NOT NULL,       -- hour | day | week
    window_start       TIMESTAMP NOT NULL,
    metric             VARCHAR NOT NULL,       -- accuracy | precision | recall | f1 | roc_auc
    calibration_id     BIGINT NOT NULL,
    estimate           DOUBLE,
    band_low           DOUBLE,
    band_high          DOUBLE,
    band_level         DOUBLE NOT NULL,
    std_error          DOUBLE,
    n                  BIGINT NOT NULL,        -- scored predictions the estimate is made from
    n_labelled         BIGINT NOT NULL,        -- labelled predictions when it was made
    realized           DOUBLE,                 -- realized value when it was made (NULL without labels)
    estimated_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (model, version, window_size, window_start, metric)
);

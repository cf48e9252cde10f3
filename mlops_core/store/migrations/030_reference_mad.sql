-- 030: the mean absolute deviation about the median of each numeric reference feature.
-- With the mean it bounds the Wasserstein distance from below for scale changes
-- (see docs/monitoring.md); NULL for references stored before this migration.
ALTER TABLE reference_stats ADD COLUMN mad DOUBLE;

-- 058: a label file lists the time span of the predictions it labels (pred_min_ts, pred_max_ts), so that a
-- query of a time window reads only the label files that can join to it, and a cached window result
-- (store.window_cache) stays valid until a file that can change it arrives. NULL: not known (files listed
-- before this migration, and prediction files); such a label file counts as touching every window.
ALTER TABLE log_files ADD COLUMN pred_min_ts TIMESTAMP;
ALTER TABLE log_files ADD COLUMN pred_max_ts TIMESTAMP;

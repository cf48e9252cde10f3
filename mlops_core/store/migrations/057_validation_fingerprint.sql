-- 057: a validation report of a file keeps the file's fingerprint (as ingest computes it), so validating the
-- same file again replaces its report instead of adding its anomalies a second time, and validating a file
-- that was ingested already refers to the ingest's report.
ALTER TABLE validation_reports ADD COLUMN fingerprint VARCHAR;

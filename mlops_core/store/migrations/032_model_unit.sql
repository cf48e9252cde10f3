-- 032: the unit of a model's target (e.g. minutes), shown with the error metrics of a regression model.
ALTER TABLE models ADD COLUMN unit VARCHAR;

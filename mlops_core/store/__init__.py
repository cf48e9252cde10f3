"""The only place that speaks SQL.

``Store`` is a location's database and artifacts folder; ``connect()`` opens the database
file (migrating it to the latest schema) for the length of one operation; ``transaction()``
groups writes that belong together. One module per group of tables, named after them:
``models`` (models, versions, deployments), ``runs`` (runs, audit), ``jobs`` (liveness of
background runs), ``policies``, ``alerts`` (rules and alerts), ``predictions`` (the logs and
labels), ``performance`` and ``drift`` (aggregations of the log), ``references``,
``validation`` (staged batches and reports), ``training_data``. They return DataFrames or
records of ``mlops_core.entities``, never cursors. ``engines``: where the monitoring queries over
the Parquet log run (DuckDB in process by default, Spark on ``$MLOPS_SPARK_MASTER``), from one
definition of each query.
"""
from mlops_core.clock import utcnow
from mlops_core.store.connection import Store, connect, cursor, forget_database, transaction, turn_wait_seconds

__all__ = ["Store", "connect", "cursor", "forget_database", "transaction", "turn_wait_seconds", "utcnow"]

"""The only place that speaks SQL to DuckDB.

``connect()`` opens the database file (migrating it to the latest schema) for the
length of one operation; ``transaction()`` groups writes that belong together. The
modules ``models``, ``runs``, ``predictions``, ``references`` hold the queries of
each concept and return DataFrames or dataclasses, never cursors.
"""
from mlops_core.store.clock import set_clock, utcnow
from mlops_core.store.connection import connect, cursor, forget_database, on_first_open, transaction
from mlops_core.store import jobs as _jobs  # noqa: E402,F401  registers the reaper of dead background jobs (runs on first open)

__all__ = ["connect", "cursor", "transaction", "on_first_open", "forget_database", "utcnow", "set_clock"]

"""The MLOps control room's core library.

The public surface is ``ControlRoom`` (built once from a location) and the ``Model``
handle it returns; records come from ``mlops_core.entities``, errors from
``mlops_core.errors``, the metric catalogue from ``mlops_core.metrics``; ``simulated_time``
(``mlops_core.clock``) runs a backfill, a demo or a test in simulated time::

    from mlops_core import ControlRoom

    room = ControlRoom("mlops.duckdb")
    print(room.model("credit_default").performance(window="week"))

    credit = load_model("credit_default@production", db="mlops.duckdb")  # verified estimator + schema
"""
from mlops_core.access import Identity
from mlops_core.clock import SimulatedClock, set_clock, simulated_time, utcnow
from mlops_core.room import ControlRoom, Model, ModelStatus, load_model, local_identity

__all__ = ["ControlRoom", "Model", "ModelStatus", "Identity", "load_model", "local_identity", "set_clock", "utcnow",
           "SimulatedClock", "simulated_time"]

"""The MLOps control room's core library.

The public surface is ``ControlRoom`` (built once from a location) and the ``Model``
handle it returns; records come from ``mlops_core.entities``, errors from
``mlops_core.errors``, the metric catalogue from ``mlops_core.metrics``; ``simulated_time``
(``mlops_core.clock``) runs a backfill, a demo or a test in simulated time::

    from mlops_core import ControlRoom

    room = ControlRoom("mlops.duckdb")
    print(room.model("credit_default").performance(window="week"))

    credit = load_model("credit_default@production", db="mlops.duckdb")  # verified estimator + schema

The names below are loaded on first use (PEP 562), so that ``import mlops_core.cli`` (the
``mlops`` command) does not pay for the public API before a command needs it.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_core.access import Identity
    from mlops_core.clock import SimulatedClock, set_clock, simulated_time, utcnow
    from mlops_core.room import ControlRoom, Model, ModelStatus, load_model, local_identity

#: Public name -> the module that defines it.
_HOMES = {"ControlRoom": "mlops_core.room", "Model": "mlops_core.room", "ModelStatus": "mlops_core.room",
          "load_model": "mlops_core.room", "local_identity": "mlops_core.room", "Identity": "mlops_core.access",
          "set_clock": "mlops_core.clock", "utcnow": "mlops_core.clock", "SimulatedClock": "mlops_core.clock",
          "simulated_time": "mlops_core.clock"}

__all__ = [
    "ControlRoom",
    "Identity",
    "Model",
    "ModelStatus",
    "SimulatedClock",
    "load_model",
    "local_identity",
    "set_clock",
    "simulated_time",
    "utcnow",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mlops_core' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

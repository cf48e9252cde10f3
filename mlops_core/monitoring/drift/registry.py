"""The drift methods, by name: one file per method, one line here to register it.

=================  ==========================================  ======================  ==========
method             statistic                                   applies to              threshold
=================  ==========================================  ======================  ==========
wasserstein        W1(reference, current) / std(reference)     numeric (default)       0.1
jensen_shannon     JS distance, log base 2, in [0, 1]          both (categorical dflt) 0.1
psi                sum (q - p) ln(q / p), shares floored 1e-4  both                    0.2
linf               max |q - p| over categories                 categorical             0.1
ks                 Kolmogorov-Smirnov D (p-value decides)      numeric                 p < 0.05
chi2               chi-square of the 2 x k contingency table   both (bins for numeric) p < 0.05
=================  ==========================================  ======================  ==========

To add a method: write ``<name>.py`` beside this file with its pure function(s) and a
``METHOD = DriftMethod(...)``, and add it to ``METHODS`` below.
"""
from __future__ import annotations

from mlops_core.errors import InvalidInputError
from mlops_core.monitoring.drift import chi2, jensen_shannon, ks, linf, psi, wasserstein
from mlops_core.monitoring.drift.method import DriftMethod

METHODS: dict[str, DriftMethod] = {m.name: m for m in (
    wasserstein.METHOD, jensen_shannon.METHOD, psi.METHOD, linf.METHOD, ks.METHOD, chi2.METHOD,
)}
#: The method a feature of each kind gets when nothing else is configured.
DEFAULT = {"numeric": "wasserstein", "categorical": "jensen_shannon"}
#: The significance test that must agree before a distance counts as drift ("the guard"), per feature kind.
GUARD = {"numeric": "ks", "categorical": "chi2"}
_ALIASES = {alias: m.name for m in METHODS.values() for alias in m.aliases}


def get(name: str) -> DriftMethod:
    """The method called ``name`` (or one of its aliases, e.g. ``js``); raise InvalidInputError listing them."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in METHODS:
        raise InvalidInputError(f"Unknown drift method {name!r}. Choose from: {', '.join(METHODS)} (or js).",
                                method=name, valid=list(METHODS))
    return METHODS[key]


def for_kind(kind: str) -> list[str]:
    """Names of the methods that apply to features of ``kind`` (numeric or categorical)."""
    return [m.name for m in METHODS.values() if kind in m.kinds]

"""Who acts, and what their role lets them do.

Three roles, each including the ones before it:

- ``viewer``: reads everything (pages, reports, the audit log);
- ``operator``: also changes production and its inputs: retrain, promote, roll back,
  ingest, acknowledge alerts, edit policies, alert rules and drift settings;
- ``admin``: also registers models and manages users.

Every state-changing method of the public API (``mlops_core.room``) checks the role of the
``Identity`` it was built with before it touches anything, whatever client calls it, and
records ``Identity.name`` in the run and audit rows.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlops_core.errors import InvalidInputError, PermissionDeniedError

ROLES = ("viewer", "operator", "admin")
#: The identity automation acts as (policy-triggered retrains and promotions).
AUTOMATION = "automation"


@dataclass(frozen=True)
class Identity:
    """An acting person or process: a name for the audit log and a role."""

    name: str
    role: str = "viewer"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidInputError(f"Unknown role {self.role!r}; choose one of: {', '.join(ROLES)}.", role=self.role)
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInputError("An identity needs a non-empty name.")

    def can(self, role: str) -> bool:
        """Whether this identity's role includes ``role``."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def require(self, role: str, action: str) -> None:
        """Raise PermissionDeniedError unless this identity's role includes ``role``."""
        if not self.can(role):
            raise PermissionDeniedError(
                f"{self.name} ({self.role}) may not {action}: that needs the {role} role. Ask an admin to grant it "
                "(`mlops users set-role`).", identity=self.name, role=self.role, needed=role)

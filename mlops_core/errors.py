"""The one exception tree of mlops_core.

    MlopsError                      base: anything the core refuses or cannot do
    ├── NotFoundError               a model, version, run, file... does not exist
    ├── AlreadyExistsError          creating something whose key is taken
    ├── InvalidInputError           input of the wrong shape, type or value
    │   └── BatchRejectedError      an ingest batch refused whole (nothing written)
    ├── ConflictError               the request clashes with current state
    │   └── AlreadyRunningError     a job of that kind is already running for the model
    ├── DatabaseBusyError           another process held the database file too long
    ├── IntegrityError              a stored artifact or row failed its integrity check
    ├── PermissionDeniedError       the identity's role does not allow the action
    ├── DiskFullError               the disk is full (nothing was written)
    └── ReadOnlyError               the database or its folder may not be written here

Every exception carries its context as keyword attributes (``details``) and a message
that names the object, the bad value and, where there are any, the valid choices.
Foreign errors (duckdb, pandas, joblib) are translated at the boundary with
``raise ... from exc``. The CLI maps them to exit codes (see ``EXIT_CODES``).
"""
from __future__ import annotations


class MlopsError(Exception):
    """Base class: an operation of mlops_core was refused or could not complete."""

    exit_code = 1

    def __init__(self, message: str, **details: object):
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:  # keep the plain message; details are for programs
        return self.message


class NotFoundError(MlopsError):
    """Raised when a named model, version, run, alert or file does not exist."""

    exit_code = 2


class AlreadyExistsError(MlopsError):
    """Raised when creating an object whose name or key is already taken."""

    exit_code = 2


class InvalidInputError(MlopsError):
    """Raised when an argument or input file has the wrong shape, type or value."""

    exit_code = 2


class BatchRejectedError(InvalidInputError):
    """Raised when an ingest batch is refused whole; nothing of it was written."""


class ConflictError(MlopsError):
    """Raised when a request clashes with the current state (e.g. promoting a rejected version)."""

    exit_code = 3


class AlreadyRunningError(ConflictError):
    """Raised when a job of the same kind is already queued or running for the model."""


class DatabaseBusyError(MlopsError):
    """Raised when the database file stayed locked by another process past the timeout."""

    exit_code = 4


class IntegrityError(MlopsError):
    """Raised when a stored artifact or record fails its integrity check (e.g. sha256 mismatch)."""

    exit_code = 5


class PermissionDeniedError(MlopsError):
    """Raised when an action needs a role (operator, admin) the acting identity does not have."""

    exit_code = 6


class AuthenticationError(PermissionDeniedError):
    """Raised when a login fails: unknown name, wrong password or a disabled account (one message for all,
    so that a caller cannot learn which names exist)."""


class DiskFullError(MlopsError):
    """Raised when a write found the disk full; what was half-written is removed and nothing changed."""

    exit_code = 7


class ReadOnlyError(MlopsError):
    """Raised when a command that writes meets a database (or folder) that this process may only read."""

    exit_code = 8


def storage_error(exc: BaseException, doing: str) -> MlopsError:
    """The domain error for a foreign storage failure ``exc`` met while ``doing`` something: DiskFullError,
    ReadOnlyError, else a plain MlopsError naming what failed."""
    import errno

    text = str(exc).lower()
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "no space left on device" in text or "disk full" in text:
        return DiskFullError(f"The disk is full ({doing}); nothing was changed. Free some space and run it again.",
                             doing=doing)
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or "read-only" in text or "permission denied" in text:
        return ReadOnlyError(f"Cannot write ({doing}): the file or its folder is read-only for this user. Read "
                             "commands and the dashboard still work; run writes as a user who may write it.",
                             doing=doing)
    return MlopsError(f"Failed while {doing}: {exc}", doing=doing)


def is_storage_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a full disk or a read-only file (see ``storage_error``)."""
    return isinstance(storage_error(exc, ""), (DiskFullError, ReadOnlyError))


EXIT_CODES = {
    "ok": 0,
    "error": 1,
    "invalid input / not found": 2,
    "conflict": 3,
    "database busy": 4,
    "integrity": 5,
    "permission denied": 6,
    "disk full": 7,
    "read-only": 8,
}



def exit_code_of(kind: str | None) -> int:
    """The exit code of the error class named ``kind`` (e.g. ``"IntegrityError"`` -> 5), 1 when unknown.

    A background job records the class name of the error that failed it (the run's
    ``statistics["error_kind"]``); a client waiting for the job exits with this code.
    """
    cls = globals().get(kind or "")
    return cls.exit_code if isinstance(cls, type) and issubclass(cls, MlopsError) else 1


__all__ = [
    "EXIT_CODES",
    "AlreadyExistsError",
    "AlreadyRunningError",
    "AuthenticationError",
    "BatchRejectedError",
    "ConflictError",
    "DatabaseBusyError",
    "DiskFullError",
    "IntegrityError",
    "InvalidInputError",
    "MlopsError",
    "NotFoundError",
    "PermissionDeniedError",
    "ReadOnlyError",
    "exit_code_of",
    "is_storage_failure",
    "storage_error",
]

"""The errors the service raises on purpose; views map them to 400/404/409/422/503."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ServiceError(Exception):
    """Base class for the errors the service raises on purpose."""


class ValidationError(ServiceError):
    """Input failed validation; carries one message per offending field."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


class NotFound(ServiceError):
    """The row does not exist (or no longer does)."""


class Conflict(ServiceError):
    """The row changed since the client read it; nothing was written."""

    def __init__(self, current: Any, message: str = "") -> None:
        super().__init__(message or "This row was changed by someone else.")
        self.current = current


class StaleWrite(Conflict):
    """The UPDATE matched no row at the version read: someone wrote in between."""


class WriteBusy(ServiceError):
    """An import is writing the table: nothing was written, try again shortly (503).

    Raised at once while an import holds the database (app/write_gate.py), or when
    a write waited for a lock longer than it may (SQLite's busy_timeout, the
    PostgreSQL lock_timeout of ordinary writes) instead of a 500 (issue 11).
    """

    message = "An import is being written; try again in a few seconds."
    retry_after = 5  # seconds, for the Retry-After header

    def __init__(self) -> None:
        super().__init__(self.message)


class QueryError(ServiceError):
    """A list query parameter is not acceptable (unknown sort key, bad number...)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message

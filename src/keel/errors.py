"""Keel's exceptions: one tree, a stable ``code`` on each class, one table to HTTP.

::

    KeelError                      code              HTTP
    ├── InvalidArgument            INVALID_ARGUMENT  400
    │   ├── FilterSyntaxError      INVALID_FILTER    400
    │   ├── MalformedRequest       MALFORMED_REQUEST 400
    │   ├── InvalidInput           INVALID_INPUT     422
    │   └── PayloadTooLarge        TOO_LARGE         413
    ├── NotFound                   NOT_FOUND         404
    ├── AlreadyExists              ALREADY_EXISTS    409
    ├── Conflict                   CONFLICT          409
    ├── PermissionDenied           PERMISSION_DENIED 403
    ├── Unauthenticated            UNAUTHENTICATED   401
    ├── IntegrityError             INTEGRITY_ERROR   500
    ├── Unavailable                UNAVAILABLE       503
    └── ConfigurationError         CONFIGURATION     500

Every message says what was wrong and what to do about it, in one or two sentences:
"no run 'abc'; list runs with `keel runs list`". Interfaces (CLI, server) render
``code`` and ``message``; they never parse the message.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "HTTP_STATUS",
    "AlreadyExists",
    "ConfigurationError",
    "Conflict",
    "FilterSyntaxError",
    "IntegrityError",
    "InvalidArgument",
    "InvalidInput",
    "KeelError",
    "MalformedRequest",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "Unauthenticated",
    "Unavailable",
    "http_status",
]


class KeelError(Exception):
    """Root of every error Keel raises on purpose."""

    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The wire form used by ``--json`` output and the HTTP API."""
        return {"code": self.code, "message": self.message, **self.details}


class InvalidArgument(KeelError):
    """The caller passed a value Keel cannot accept; the message names it and the fix."""

    code = "INVALID_ARGUMENT"


class FilterSyntaxError(InvalidArgument):
    """A search filter did not parse; ``position`` is the 0-based offset of the fault."""

    code = "INVALID_FILTER"

    def __init__(self, message: str, *, text: str, position: int) -> None:
        pointer = f"\n  {text}\n  {' ' * position}^"
        super().__init__(f"{message} at position {position}{pointer}", position=position)
        self.position = position
        self.text = text


class MalformedRequest(InvalidArgument):
    """A request body that is not what the endpoint reads: not JSON, wrong shape, empty."""

    code = "MALFORMED_REQUEST"


class InvalidInput(InvalidArgument):
    """Well-formed prediction input that breaks the model's signature (row, column, why)."""

    code = "INVALID_INPUT"


class PayloadTooLarge(InvalidArgument):
    """A request over a size or row cap; the message names the cap and how to split."""

    code = "TOO_LARGE"


class NotFound(KeelError):
    """The named thing does not exist."""

    code = "NOT_FOUND"


class AlreadyExists(KeelError):
    """Creating something whose name is taken."""

    code = "ALREADY_EXISTS"


class Conflict(KeelError):
    """The request clashes with the current state (a finished run, a concurrent change)."""

    code = "CONFLICT"


class PermissionDenied(KeelError):
    """The caller is known but may not do this."""

    code = "PERMISSION_DENIED"


class Unauthenticated(KeelError):
    """No valid credentials were presented."""

    code = "UNAUTHENTICATED"


class IntegrityError(KeelError):
    """Stored data failed a check (a digest mismatch): it was not used."""

    code = "INTEGRITY_ERROR"


class Unavailable(KeelError):
    """A back-end (database, artifact store, server) could not be reached."""

    code = "UNAVAILABLE"


class ConfigurationError(KeelError):
    """A setting is missing or malformed."""

    code = "CONFIGURATION"


HTTP_STATUS: dict[str, int] = {
    KeelError.code: 500,
    InvalidArgument.code: 400,
    FilterSyntaxError.code: 400,
    MalformedRequest.code: 400,
    InvalidInput.code: 422,
    PayloadTooLarge.code: 413,
    NotFound.code: 404,
    AlreadyExists.code: 409,
    Conflict.code: 409,
    PermissionDenied.code: 403,
    Unauthenticated.code: 401,
    IntegrityError.code: 500,
    Unavailable.code: 503,
    ConfigurationError.code: 500,
}


def http_status(error: KeelError) -> int:
    """The HTTP status that stands for ``error`` on the wire."""
    return HTTP_STATUS.get(error.code, 500)

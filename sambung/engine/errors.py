"""Domain error hierarchy.

Every error the engine can surface carries a stable ``error_id`` (never reworded once shipped:
dashboards, alert rules and API clients match on it) and the HTTP status it maps to when it
reaches the API. Adapters translate their own failures into these at the boundary.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SambungError(Exception):
    """Base of every domain error."""

    error_id: ClassVar[str] = "sambung.error"
    http_status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context


class ConfigError(SambungError):
    """A settings or flow file is unreadable or invalid."""

    error_id = "config.invalid"
    http_status = 500
    title = "Invalid configuration"

    def __init__(self, file: str, key: str, expected: str) -> None:
        super().__init__(f"{file}: {key}: {expected}", file=file, key=key, expected=expected)
        self.file = file
        self.key = key
        self.expected = expected


class BadRequest(SambungError):
    error_id = "api.bad_request"
    http_status = 400
    title = "Bad request"


class NotFound(SambungError):
    error_id = "api.not_found"
    http_status = 404
    title = "Not found"


class Unauthorized(SambungError):
    error_id = "api.unauthorized"
    http_status = 401
    title = "Unauthorized"


class Forbidden(SambungError):
    """Who is asking is known, and their role (or ownership) does not allow this."""

    error_id = "api.forbidden"
    http_status = 403
    title = "Forbidden"


class TelephonyError(SambungError):
    """Base of errors raised by the Asterisk adapters."""

    error_id = "telephony.error"
    http_status = 502
    title = "Telephony error"


class TelephonyUnavailable(TelephonyError):
    """Asterisk cannot be reached at the moment (connection refused, reset, timed out)."""

    error_id = "telephony.unavailable"
    http_status = 503
    title = "Telephony unavailable"


class CallGone(TelephonyError):
    """The channel no longer exists: the caller hung up first. A normal race, not a fault."""

    error_id = "telephony.call_gone"
    http_status = 404
    title = "Call gone"


class OriginateUncertain(TelephonyError):
    """An originate got no reply (it timed out, or the connection dropped after the request
    left): Asterisk may have created the channel and be ringing it. Its preassigned id stays
    tracked, so that the call is adopted if its events come, or hung up by that id if not."""

    error_id = "telephony.originate_uncertain"
    http_status = 504
    title = "Originate without a reply"


class EndpointUnavailable(TelephonyError):
    """A phone cannot be dialled now (not registered, unknown endpoint)."""

    error_id = "telephony.endpoint_unavailable"
    http_status = 409
    title = "Endpoint unavailable"


class DatabaseUnavailable(SambungError):
    error_id = "db.unavailable"
    http_status = 503
    title = "Database unavailable"

"""ARI failures, translated into the engine's telephony errors at the client boundary.

Each class keeps what is needed to debug a failed REST call (HTTP status, method, path and
Asterisk's own ``message``) and has a stable ``error_id``. The status meanings are Asterisk's
(ari-notes 1.0): 404 the object does not exist, 409 it exists but is not in our Stasis app (or
the id is taken), 412 the channel is not answered yet, 422 a bridge operation on a channel that
is not in Stasis, 500 "Allocation failed" (also an originate to an unregistered PJSIP endpoint).
"""

from __future__ import annotations

import re
from typing import Any

from sambung.engine.errors import CallGone, TelephonyError, TelephonyUnavailable


class AriHttpError(TelephonyError):
    """Asterisk answered a REST call with an error status."""

    error_id = "ari.http_error"
    title = "ARI request failed"

    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(
            f"{method} {path} -> {status}: {message}",
            status=status,
            method=method,
            path=path,
            message=message,
        )
        self.status = status
        self.method = method
        self.path = path
        self.message = message


class AriBadRequest(AriHttpError):
    """400: a missing or invalid parameter; also add/removeChannel of a channel that is gone."""

    error_id = "ari.bad_request"
    title = "ARI rejected the request"


class AriAuthFailed(AriHttpError):
    """401: the ARI user name or password is wrong."""

    error_id = "ari.auth_failed"
    title = "ARI authentication failed"


class AriNotFound(AriHttpError):
    """404 on anything but a channel: bridge, playback, application, endpoint..."""

    error_id = "ari.not_found"
    title = "ARI object not found"


class ChannelGone(AriNotFound, CallGone):
    """404 on ``/channels/{id}...``: the channel no longer exists (usually a hang-up race).

    Also an ``engine.errors.CallGone``, so domain code handles it without knowing ARI.
    """

    error_id = "ari.channel_gone"
    http_status = 404
    title = "Call gone"

    @property
    def channel_id(self) -> str:
        match = _CHANNEL_PATH.match(self.path)
        return match.group(1) if match else ""


class AriConflict(AriHttpError):
    """409: the channel is not in our Stasis app, the id already exists, or a bad state."""

    error_id = "ari.conflict"
    title = "ARI conflict"


class ChannelNotAnswered(AriHttpError):
    """412: the channel is in Stasis but not Up (an unanswered outbound leg)."""

    error_id = "ari.channel_not_answered"
    title = "Channel not answered"


class AriUnprocessable(AriHttpError):
    """422: e.g. addChannel of a channel that exists but is not in Stasis."""

    error_id = "ari.unprocessable"
    title = "ARI could not process the request"


class AriServerError(AriHttpError):
    """500: "Allocation failed"; originate to an unregistered PJSIP endpoint gives this too."""

    error_id = "ari.server_error"
    title = "Asterisk internal error"


class AriUnavailable(TelephonyUnavailable):
    """Asterisk could not be reached: connection refused or reset, or the call timed out."""

    error_id = "ari.unavailable"

    def __init__(self, method: str, path: str, reason: str) -> None:
        super().__init__(f"{method} {path}: {reason}", method=method, path=path, reason=reason)
        self.method = method
        self.path = path
        self.reason = reason


class AriNoReply(AriUnavailable):
    """The request may have reached Asterisk, but no reply came (the timeout, or the connection
    dropped after it was sent): Asterisk may have acted on it."""

    error_id = "ari.no_reply"


class AriFenced(AriUnavailable):
    """This engine no longer holds the lease that lets it drive Asterisk (engine/lease.py):
    every request that would change a call is refused before it leaves the process, so two
    engines never drive one call. Reads still pass."""

    error_id = "ari.fenced"

    def __init__(self, method: str, path: str) -> None:
        super().__init__(method, path, "this engine is fenced: it does not hold the lease")


# Channel paths are /channels/{id} and /channels/{id}/<verb>...; /channels (list, originate)
# and /channels/create, /channels/externalMedia are not about an existing channel.
_CHANNEL_PATH = re.compile(r"^/channels/([^/?]+)(?:/|$)")
_NOT_A_CHANNEL_ID = frozenset({"create", "externalMedia"})

_BY_STATUS: dict[int, type[AriHttpError]] = {
    400: AriBadRequest,
    401: AriAuthFailed,
    404: AriNotFound,
    409: AriConflict,
    412: ChannelNotAnswered,
    422: AriUnprocessable,
    500: AriServerError,
}


def is_channel_path(path: str) -> bool:
    match = _CHANNEL_PATH.match(path)
    return match is not None and match.group(1) not in _NOT_A_CHANNEL_ID


def error_for(status: int, method: str, path: str, message: str) -> AriHttpError:
    """The exception for an ARI error response; ``path`` is relative to the ARI root."""
    if status == 404 and is_channel_path(path):
        return ChannelGone(status, method, path, message)
    return _BY_STATUS.get(status, AriHttpError)(status, method, path, message)


def message_of(body: Any) -> str:
    """Asterisk's error text: ``{"message": ...}`` mostly, ``{"error": ...}`` for the 500s
    ("Allocation failed", seen on originate); anything else is kept as text."""
    if isinstance(body, dict):
        for key in ("message", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])
    if body is None:
        return ""
    return str(body)[:500]

"""The recordings feature's errors, each with a stable ``error_id``."""

from __future__ import annotations

from sambung.engine.errors import (
    Forbidden as Forbidden,  # one 403 for the whole API; named here too
)
from sambung.engine.errors import SambungError


class RecordingError(SambungError):
    error_id = "recordings.error"
    http_status = 500
    title = "Recording error"


class RecordingNotFound(RecordingError):
    error_id = "recordings.not_found"
    http_status = 404
    title = "Recording not found"


class NoLiveCall(RecordingError):
    """No agent is talking on this call (or the agent is on no call)."""

    error_id = "recordings.no_live_call"
    http_status = 404
    title = "No live call"


class NotRecording(RecordingError):
    """Pause, resume or stop asked of a call that is not being recorded."""

    error_id = "recordings.not_recording"
    http_status = 409
    title = "Not recording"


class PolicyForbids(RecordingError):
    """The call's queue or campaign records nothing (policy ``none``)."""

    error_id = "recordings.policy_none"
    http_status = 409
    title = "Recording not allowed"


class RangeNotSatisfiable(RecordingError):
    error_id = "recordings.range_not_satisfiable"
    http_status = 416
    title = "Range not satisfiable"

    def __init__(self, detail: str, size: int) -> None:
        super().__init__(detail, size=size)
        self.size = size


class StoreUnavailable(RecordingError):
    """The recordings store (or the database that indexes it) cannot be read now."""

    error_id = "recordings.store_unavailable"
    http_status = 503
    title = "Recordings store unavailable"


class MonitorUnavailable(RecordingError):
    """A supervisor's phone cannot be used: none configured, not registered, or busy."""

    error_id = "recordings.monitor_unavailable"
    http_status = 409
    title = "Monitoring unavailable"


class SessionNotFound(RecordingError):
    error_id = "recordings.session_not_found"
    http_status = 404
    title = "Monitoring session not found"

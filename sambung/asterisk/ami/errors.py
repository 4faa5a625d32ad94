"""AMI failures, as engine telephony errors with stable ids.

The split that matters to callers is between "nothing happened" (``AmiUnavailable``: safe to
try again later) and "something may have happened" (``AmiActionOutcomeUnknown``: a call-changing
action was written to Asterisk but the connection died before its reply, so the caller must find
out what happened, e.g. through ARI ``GET /channels``, before doing it again).
"""

from __future__ import annotations

from sambung.engine.errors import TelephonyError, TelephonyUnavailable


class AmiUnavailable(TelephonyUnavailable):
    """AMI is not connected and logged in, or a read action got no reply in time.

    Nothing was changed in Asterisk by the action that raised this.
    """

    error_id = "ami.unavailable"
    title = "AMI unavailable"

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(f"AMI {action}: {reason}", action=action, reason=reason)
        self.action = action
        self.reason = reason


class AmiActionOutcomeUnknown(TelephonyError):
    """A non-idempotent action (Originate, Hangup, Redirect...) was sent, but the connection was
    lost (or the reply timed out) before Asterisk answered. It may or may not have taken effect;
    the adapter never sends it again on its own.
    """

    error_id = "ami.action_outcome_unknown"
    http_status = 504
    title = "AMI action outcome unknown"

    def __init__(self, action: str, action_id: str, reason: str) -> None:
        super().__init__(
            f"AMI {action} ({action_id}): {reason}; it may or may not have taken effect",
            action=action,
            action_id=action_id,
            reason=reason,
        )
        self.action = action
        self.action_id = action_id
        self.reason = reason


class AmiActionFailed(TelephonyError):
    """Asterisk answered the action with ``Response: Error`` (or Fail/Failure)."""

    error_id = "ami.action_failed"
    title = "AMI action failed"

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"AMI {action} failed: {message}", action=action, message=message)
        self.action = action
        self.message = message


class AmiLoginRejected(AmiUnavailable):
    """Asterisk refused our user name or secret. Raised inside the supervisor, which logs it
    once and keeps retrying with backoff (the operator may fix manager.conf and reload)."""

    error_id = "ami.login_rejected"
    title = "AMI login rejected"

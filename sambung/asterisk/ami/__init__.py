"""AMI adapter (panoramisk) for what ARI lacks: boot/shutdown signals, contacts, MixMonitor."""

from sambung.asterisk.ami.actions import IDEMPOTENT_ACTIONS, NON_IDEMPOTENT_ACTIONS, is_idempotent
from sambung.asterisk.ami.adapter import AmiAdapter, EventHandler
from sambung.asterisk.ami.errors import (
    AmiActionFailed,
    AmiActionOutcomeUnknown,
    AmiLoginRejected,
    AmiUnavailable,
)
from sambung.asterisk.ami.model import AmiMessage, CoreChannel, FullyBooted, PjsipContact

__all__ = [
    "IDEMPOTENT_ACTIONS",
    "NON_IDEMPOTENT_ACTIONS",
    "AmiActionFailed",
    "AmiActionOutcomeUnknown",
    "AmiAdapter",
    "AmiLoginRejected",
    "AmiMessage",
    "AmiUnavailable",
    "CoreChannel",
    "EventHandler",
    "FullyBooted",
    "PjsipContact",
    "is_idempotent",
]

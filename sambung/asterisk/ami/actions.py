"""Which AMI actions may be sent twice.

After a connection is lost with an action unanswered, the adapter must decide whether sending
it again is harmless. Read-only actions are: asking twice gives the same kind of answer.
Anything that changes a call or Asterisk's state is not: a second Originate rings a debtor
twice, a second Redirect moves whoever is on that channel *now*. panoramisk 1.4 re-sends
unanswered actions on the next ``FullyBooted`` unless they are "forgetable" (ari-notes 3.2);
the adapter turns that off (see ``_panoramisk.py``) and applies this policy itself.

The policy is an allow-list: an action not named in ``IDEMPOTENT_ACTIONS`` is treated as
non-idempotent. ``NON_IDEMPOTENT_ACTIONS`` names the ones we know change state, so the list
given to panoramisk as ``forgetable_actions`` is explicit, and reviews can see the reasoning.
Names are compared case-insensitively, as Asterisk does.
"""

from __future__ import annotations

from typing import Final

#: Read-only actions: retried once on a fresh connection if the first one died unanswered.
IDEMPOTENT_ACTIONS: Final[frozenset[str]] = frozenset(
    {
        "Ping",
        "CoreStatus",
        "CoreSettings",
        "CoreShowChannels",
        "CoreShowChannelMap",
        "Status",
        "Getvar",
        "ListCommands",
        "BridgeList",
        "BridgeInfo",
        "BridgeTechnologyList",
        "DeviceStateList",
        "ExtensionState",
        "ExtensionStateList",
        "PresenceState",
        "PresenceStateList",
        "MailboxCount",
        "MailboxStatus",
        "DBGet",
        "DBGetTree",
        "GetConfig",
        "GetConfigJSON",
        "ListCategories",
        "ShowDialPlan",
        "ModuleCheck",
        "PJSIPShowContacts",
        "PJSIPShowEndpoints",
        "PJSIPShowEndpoint",
        "PJSIPShowAors",
        "PJSIPShowAuths",
        "PJSIPShowRegistrationsInbound",
        "PJSIPShowRegistrationsOutbound",
        "PJSIPShowRegistrationInboundContactStatuses",
        "PJSIPShowSubscriptionsInbound",
        "PJSIPShowSubscriptionsOutbound",
        "PJSIPShowResourceLists",
    }
)

#: Actions that change a call, a channel or Asterisk: never sent twice by the adapter or by
#: panoramisk. Unlisted actions get the same treatment; this list is for panoramisk's
#: ``forgetable_actions`` and for readers.
NON_IDEMPOTENT_ACTIONS: Final[frozenset[str]] = frozenset(
    {
        # call control
        "Originate",
        "Hangup",
        "Redirect",
        "BlindTransfer",
        "Atxfer",
        "CancelAtxfer",
        "Bridge",
        "BridgeKick",
        "BridgeDestroy",
        "Park",
        "PlayDTMF",
        "SendText",
        "MuteAudio",
        "AGI",
        "PJSIPHangup",
        # recording
        "MixMonitor",
        "StopMixMonitor",
        "MixMonitorMute",
        # state and signalling
        "Setvar",
        "UserEvent",
        "DBPut",
        "DBDel",
        "DBDelTree",
        "PJSIPNotify",
        "PJSIPQualify",
        "PJSIPRegister",
        "PJSIPUnregister",
        "DeviceStateChange",
        "PresenceStateChange",
        "QueueAdd",
        "QueueRemove",
        "QueuePause",
        "DialplanExtensionAdd",
        "DialplanExtensionRemove",
        "UpdateConfig",
        "Filter",
        # system
        "Command",
        "Reload",
        "ModuleLoad",
        "LoggerRotate",
    }
)

#: Session actions the adapter itself sends; callers may not (a second Login on a logged-in
#: session is a no-op for Asterisk, a Logoff would end the session under everyone's feet).
SESSION_ACTIONS: Final[frozenset[str]] = frozenset({"Login", "Logoff", "Challenge"})

_IDEMPOTENT_LOWER: Final = frozenset(a.lower() for a in IDEMPOTENT_ACTIONS)


def is_idempotent(action: str) -> bool:
    """True when sending ``action`` twice is harmless (a read); unknown actions are not."""
    return action.lower() in _IDEMPOTENT_LOWER


def forgetable_actions() -> frozenset[str]:
    """panoramisk's ``forgetable_actions`` (it lower-cases names before looking them up).

    Every action we know, reads included: the adapter alone decides what is retried, so
    panoramisk should park nothing for re-sending.
    """
    names = IDEMPOTENT_ACTIONS | NON_IDEMPOTENT_ACTIONS | SESSION_ACTIONS
    return frozenset(a.lower() for a in names)

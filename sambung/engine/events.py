"""Domain events: what the telephony adapter tells the engine, in the engine's own words.

ARI names (StasisStart, ChannelDtmfReceived...) stay inside ``asterisk/``; these are what call
tasks consume. Every event that concerns a call carries ``call_id`` (the Asterisk channel id of
the call's main leg) and the time Asterisk stamped on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CallOffered:
    """A caller has reached the engine from a trunk and waits to be answered."""

    call_id: str
    channel_name: str
    did: str
    caller_number: str
    caller_name: str
    at: datetime
    protocol_id: str = ""
    # "inbound" for a trunk call to a DID; "feature" for a desk phone dialling a feature code
    # (``did`` is then the code and ``endpoint`` the phone's PJSIP endpoint).
    kind: str = "inbound"
    endpoint: str = ""


@dataclass(frozen=True, slots=True)
class CallAnswered:
    call_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PromptStarted:
    call_id: str
    prompt_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PromptFinished:
    call_id: str
    prompt_id: str
    at: datetime
    failed: bool = False


@dataclass(frozen=True, slots=True)
class DigitPressed:
    call_id: str
    digit: str
    duration_ms: int
    at: datetime


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    """The far end asked to hang up (BYE). The channel may still exist for a moment."""

    call_id: str
    cause: int
    at: datetime


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The channel is destroyed: the authoritative end of a call leg."""

    call_id: str
    cause: int
    cause_text: str
    at: datetime
    sip_code: int | None = None
    # Set only when the engine itself concludes the call is gone without Asterisk saying so
    # (Asterisk restarted, or the channel vanished while the event stream was down).
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CallResynced:
    """The event stream came back and this call's channel is still alive.

    Events may have been missed while the stream was down, so the call task re-checks what it
    is waiting for (is its prompt still playing?) instead of waiting for an event that was lost.
    """

    call_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class HeldCall:
    """An answered caller that no task of this engine owns: in a holding or talk bridge with
    the place in the queues an earlier engine wrote on its channel (``place``, as written), or
    in no bridge at all (``bridge_id`` and ``place`` empty), where a caller in an IVR flow is."""

    call_id: str
    channel_name: str
    did: str
    caller_number: str
    caller_name: str
    at: datetime  # when the channel was made
    bridge_id: str
    place: str
    # A caller talking to an agent (in the call's own mixing bridge): the other channel there.
    leg_id: str | None = None
    # A callback's talk: ``call_id`` is the callback attempt (no channel of its own), the
    # customer's leg is this channel and ``leg_id`` the agent's, named ``leg_name``.
    customer_leg: str | None = None
    leg_name: str = ""
    # The customer answered but the earlier engine died before putting it in the bridge.
    customer_bridged: bool = True

    @property
    def in_bridge(self) -> bool:
        """False for a caller in no bridge at all (perhaps in an IVR flow: its session says)."""
        return bool(self.bridge_id)


@dataclass(frozen=True, slots=True)
class HeldMonitor:
    """A supervisor's monitoring session an earlier engine left: its bridge
    (``monitor_bridge``) with the supervisor's phone and the snoop on the agent's leg (None
    when the snoop is gone: the session is over)."""

    session_id: str
    supervisor: str
    snoop: str | None


# A monitoring session's names in Asterisk: made by the recordings feature, read back at
# connect by the ARI adapter, so one engine finds what another made.
MONITOR_BRIDGE_PREFIX = "sambung-monitor-"


def monitor_bridge(session_id: str) -> str:
    return f"{MONITOR_BRIDGE_PREFIX}{session_id}"


def monitor_supervisor(session_id: str) -> str:
    """The supervisor's phone's channel."""
    return f"sambung-sup-{session_id}"


def monitor_snoop(session_id: str, n: int) -> str:
    """The session's ``n``-th snoop on the agent's leg (a mode change makes a new one)."""
    return f"sambung-snoop-{session_id}-{n}"


def snoop_number(session_id: str, channel_id: str) -> int | None:
    """``n`` if the channel is the session's ``n``-th snoop, else None."""
    prefix = monitor_snoop(session_id, 0)[:-1]
    n = channel_id.removeprefix(prefix)
    return int(n) if n != channel_id and n.isdigit() else None


@dataclass(frozen=True, slots=True)
class TelephonyConnected:
    """The event stream is (re)connected and reconciled.

    ``restarted`` is true when Asterisk's start-up time changed since the last connect: every
    call the engine knew is then gone. ``live_call_ids`` are the channels in our Stasis app
    right now, so the engine can close the calls that vanished while it was disconnected, and
    ``held`` the waiting callers among them it may take over.
    """

    asterisk_id: str
    startup_time: datetime
    restarted: bool
    first_connect: bool
    live_call_ids: frozenset[str] = field(default_factory=frozenset)
    # Of those, the callers an earlier engine left waiting with their place (the engine may
    # take them over; one it does not is an orphan like the rest).
    held: tuple[HeldCall, ...] = ()
    # Channels an engine made that are not in our app and that no task of this one tracks:
    # an agent's phone still ringing or a dialer line still ringing (or in AMD) that a dead
    # engine left. Nobody would ever act on their answer: they are hung up.
    strays: frozenset[str] = field(default_factory=frozenset)
    # Supervisors' monitoring sessions an earlier engine left (their channels are among
    # ``live_call_ids``: orphans unless the engine takes the sessions over).
    monitors: tuple[HeldMonitor, ...] = ()


@dataclass(frozen=True, slots=True)
class TelephonyLost:
    """The event stream dropped; events may be missed until TelephonyConnected."""

    reason: str


@dataclass(frozen=True, slots=True)
class LegRinging:
    """An outbound leg the call owns (an agent's phone, a callback) is alerting."""

    call_id: str
    leg_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LegAnswered:
    """The leg answered and entered our application."""

    call_id: str
    leg_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LegEnded:
    """The leg is gone: before answer (busy, no answer, unreachable) or after (hung up)."""

    call_id: str
    leg_id: str
    cause: int
    cause_text: str
    at: datetime
    sip_code: int | None = None
    answered: bool = False


@dataclass(frozen=True, slots=True)
class LegHeld:
    """The leg's phone put the call on hold (``held``) or took it off hold."""

    call_id: str
    leg_id: str
    held: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class BridgeJoined:
    """A channel of the call (its own or a leg's) entered a bridge."""

    call_id: str
    channel_id: str
    bridge_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DeviceChanged:
    """A watched phone's device state changed (registration and use); not about one call."""

    device: str  # "PJSIP/agent1001"
    state: str  # Asterisk's aggregate: NOT_INUSE, INUSE, UNAVAILABLE, RINGING...
    at: datetime


@dataclass(frozen=True, slots=True)
class OutboundAnswered:
    """A call the engine originated (a dialer attempt) was answered and is in our hands."""

    call_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AmdDecided:
    """Answering-machine detection finished on an outbound call, and it is back with us.

    ``status`` is HUMAN, MACHINE, NOTSURE or HANGUP; ``cause`` says why (TOOLONG,
    INITIALSILENCE, HUMAN, LONGGREETING, MAXWORDLENGTH, MAXWORDS).
    """

    call_id: str
    status: str
    cause: str
    at: datetime


CallEvent = (
    CallOffered
    | CallAnswered
    | PromptStarted
    | PromptFinished
    | DigitPressed
    | CallerHungUp
    | CallEnded
    | CallResynced
    | LegRinging
    | LegAnswered
    | LegEnded
    | LegHeld
    | BridgeJoined
    | OutboundAnswered
    | AmdDecided
)
EngineEvent = CallEvent | TelephonyConnected | TelephonyLost | DeviceChanged

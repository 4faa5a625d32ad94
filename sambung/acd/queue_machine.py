"""Pure state machine of a call in the queues: waiting, ringing agents, talking, until its end.

``start(...)`` enters the first queue; ``step(state, event)`` decides what an event means. Both
return ``(state, commands)``: no I/O, no clock reads (every event carries ``at``, the loop clock
for durations and the wall clock for facts), no async. The call task (``acd/call.py``) feeds
Asterisk's, the ACD's and its timers' events and carries out the commands; every decision is
here, so executing a command is one call to the telephony port, the ACD service, a timer, a
metric, the agent hub or the fact writer. ``state.last_transition`` says in words what the last
step did, for the transition log line. The state holds plain data only (no live objects), so
it can be written down and taken up again by another engine.

Rules worth knowing
-------------------
Replies
    Some commands need an answer before the machine can go on: making an entry (the ACD names
    it), joining the holding bridge, enqueueing (the position), screening the caller id for a
    callback (PostgreSQL), the callback's first allowed moment, the caller's position for an
    announcement, dialling an agent, bridging caller and agent, starting a message recording.
    Such a command is always the last of its batch and sets ``state.pending``; the call task
    answers it at once, before it reads the next event, so the machine never sees anything else
    meanwhile (anything else is refused, and changes nothing). A prompt that could not be
    played comes back as ``PlayFailed`` after its batch; it counts as finished.
Entries
    Each queue the call joins is an entry the ACD names (``NewEntry`` -> ``EntryMade``). An
    entry counts from its ``QueueEnteredFact`` and leaves exactly once: ``LeaveQueue`` with its
    outcome (answered, abandoned, transferred, overflowed, hung_up, lost) or ``ToCallback``
    (the ACD keeps it, with the caller's place, as a callback). A transfer or an overflow to
    another queue makes a new entry; the caller's first enqueue time is kept across them.
Agents
    An agent the ACD reserved for the call (``Offered``) is released exactly once:
    ``ReleaseOffer`` (the phone did not take the call, or the offer came too late) or
    ``ReleaseAgent`` (the offer was withdrawn, or the talk ended: the agent goes to wrap-up).
Timers
    Named (``announce``, ``max_wait``, ``ring``, ``whisper``, ``connect_failed``,
    ``hold_reminder``, ``callback_offer``, ``message_done``, ``say``), at most one per name;
    a timer that fires after it was cancelled or restarted is stale and changes nothing.
Goodbyes
    A goodbye (``BYE``) and the message prompt (``MESSAGE_PROMPT``) wait for their prompt to
    finish (or fail, or ``SAY_WAIT_SECONDS`` to pass); meanwhile only the caller's hang-up
    counts: digits, transfers and timers are dropped.
The caller's place on its channel
    While the call's entry waits in a queue (listed with the ACD: waiting, ringing an agent,
    whispering), ``MarkPlace`` writes that place on the caller's channel (``acd/place.py``);
    when the entry leaves, the place is cleared. ``MarkPlace`` also says whether Asterisk's
    safeguard runs (the call is released politely unless an engine keeps refreshing it): on
    from the first wait to the end, off while the caller talks to an agent. Both are written
    only when they change, checked at the end of every step, so the channel always tells the
    truth about the call, and a batch's awaited command stays last.
Handing over
    ``HandOverAsked`` (the engine is stopping and leaves waiting callers to the next one): as
    soon as the call waits (at once, or when a ringing agent's offer fails), ``HandOver``
    takes the entry off this engine's books without an outcome, every timer is cancelled and
    the machine ends (``handed_over``) without hanging up: the caller keeps waiting in the
    holding bridge with its music, and its entry and its call stay open for the next engine.
    A call talking, in a goodbye or a message is not handed over; it ends as before.
Resuming
    ``resume(...)`` is where a call taken over from another engine begins: waiting at its
    original place (the same entry, first enqueue time, priority, relaxation step), its
    announcements and maximum wait counted from the times written on its channel. Its entry
    was entered in its earlier life: no second ``QueueEnteredFact``; it leaves once, here.
The end
    ``ENDED`` is entered once, with what the call task's ``finally`` owes: the entry still
    waiting leaves (``abandoned``, or ``lost`` when the caller was not seen to go), a
    connected agent is released, the caller is hung up unless gone or already being hung up,
    the call's bridge is destroyed, timers are cancelled. After ``ENDED`` nothing happens.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sambung.acd.events import (
    AgentConnected,
    AgentEvent,
    AgentOffered,
    CallEnded,
    CallHeld,
    CallUnheld,
    HoldReminder,
    OfferEnded,
)
from sambung.acd.facts import LegAnsweredFact, LegEndedFact, LegStartedFact, QueueEnteredFact
from sambung.acd.model import QueueConfig
from sambung.acd.place import ADOPTABLE_KINDS, PlaceTag
from sambung.acd.service import CallbackScreen
from sambung.dialer.phones import WIB, WIT, WITA
from sambung.engine.facts import Fact
from sambung.ivr.speech import say_media

RING_BACKSTOP_SECONDS = 3.0  # past Asterisk's own dial timeout, in case its event is lost
CALLBACK_OFFER_SECONDS = 8.0
WHISPER_BACKSTOP_SECONDS = 15.0
CONNECT_RETRY_SECONDS = 3.0  # a failed bridge: the hang-up that explains it should come by then
MESSAGE_MAX_SECONDS = 120
SAY_WAIT_SECONDS = 60.0  # a goodbye whose end never reaches us does not hold the line longer
# Q.850 causes of a leg that never answered -> why the offer failed.
_BUSY = {17, 21}  # user busy; call rejected (the agent pressed decline)
_NO_ANSWER = {18, 19}
_UNAVAILABLE = {0, 1, 3, 20, 27, 38}


def offer_outcome(cause: int, timed_out: bool) -> str:
    """Why an agent's phone did not take a call: rona, busy or unavailable."""
    if timed_out or cause in _NO_ANSWER:
        return "rona"
    if cause in _BUSY:
        return "busy"
    if cause in _UNAVAILABLE:
        return "unavailable"
    return "busy"  # anything else (congestion...): try the next agent at once


def bridge_for_call(call_id: str) -> str:
    return f"sambung-call-{call_id}"


# Written out (not built from the weekday's name) so that every prompt a call may play can be
# found by its name in the code.
_WEEKDAYS: Final = (
    "sound:sambung/day-monday",
    "sound:sambung/day-tuesday",
    "sound:sambung/day-wednesday",
    "sound:sambung/day-thursday",
    "sound:sambung/day-friday",
    "sound:sambung/day-saturday",
    "sound:sambung/day-sunday",
)
_ZONE_NAMES: Final = {
    WIB: "sound:sambung/zone-wib",
    WITA: "sound:sambung/zone-wita",
    WIT: "sound:sambung/zone-wit",
}


def callback_when(
    when: datetime, now: datetime, zone: str | None, language: str
) -> tuple[str, ...]:
    """The media that say: we will call you back tomorrow at 8 a.m. Western Indonesia Time.

    The time is said in the number's zone, or in WIB when the number says nothing about where
    its owner is (a mobile), naming the zone either way; a foreign number's time is said in
    its own zone as "your local time". Rounded up to the minute: never earlier than the call.
    Indonesian says the time on a 24-hour clock ("pukul empat belas lewat tiga puluh menit"),
    as announcements in Indonesia do; English on a 12-hour one ("at two thirty p.m.").
    """
    tz = ZoneInfo(zone or WIB)
    local = when.astimezone(tz)
    if local.second or local.microsecond:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    days = (local.date() - now.astimezone(tz).date()).days
    media: list[str] = ["sound:sambung/callback-later"]
    if days <= 0:
        media.append("sound:sambung/callback-today")
    elif days == 1:
        media.append("sound:sambung/callback-tomorrow")
    elif days < 7:
        media += ["sound:sambung/callback-on", _WEEKDAYS[local.weekday()]]
    else:
        media += [
            "sound:sambung/callback-in",
            *say_media("number", str(days), language),
            "sound:sambung/callback-days",
        ]
    media.append("sound:sambung/callback-at")
    hour, minute = local.hour, local.minute
    if language == "id":
        media += say_media("number", str(hour), language)
        if minute:
            media += [
                "sound:sambung/time-past",
                *say_media("number", str(minute), language),
                "sound:sambung/queue-minutes",
            ]
    else:
        media += say_media("number", str(hour % 12 or 12), language)
        if minute:
            if minute < 10:
                media.append("digits:0")  # 8:05 is "eight zero five"
            media += say_media("number", str(minute), language)
        media.append("sound:sambung/time-am" if hour < 12 else "sound:sambung/time-pm")
    media.append(_ZONE_NAMES.get(zone or WIB, "sound:sambung/zone-local"))
    media.append("sound:sambung/callback-bye")
    return tuple(media)


class Phase(enum.Enum):
    JOINING = "joining"  # entering a queue: the entry, the holding bridge, the enqueue
    WAITING = "waiting"  # in the holding bridge, with music and announcements
    OFFERING = "offering"  # an agent's phone rings; the caller keeps waiting
    WHISPER = "whisper"  # the agent answered and hears the whisper
    CONNECTED = "connected"  # caller and agent talk in the call's bridge
    MESSAGE_PROMPT = "message_prompt"  # the prompt before a message plays
    RECORDING = "recording"  # the caller's message is recorded
    BYE = "bye"  # a goodbye plays; the hang-up follows
    ENDING = "ending"  # the hang-up was sent; its confirmation is awaited
    ENDED = "ended"  # nothing more happens


class Pending(enum.Enum):
    """The reply the machine waits for (see "Replies")."""

    ENTRY_TO_JOIN = "entry_to_join"  # EntryMade, then into the holding bridge
    ENTRY_TO_OFFER = "entry_to_offer"  # EntryMade for the overflow's callback offer
    HOLDING = "holding"  # HoldingJoined / HoldingFailed
    ENQUEUE = "enqueue"  # Enqueued
    SCREEN_AFTER_GREETING = "screen_after_greeting"  # CallbackScreened, to offer a callback
    SCREEN_FOR_DIGIT = "screen_for_digit"  # CallbackScreened, the caller pressed the key
    SCREEN_FOR_OVERFLOW = "screen_for_overflow"  # CallbackScreened, the overflow offers one
    WINDOW = "window"  # CallbackPlanned
    POSITION = "position"  # PositionKnown
    DIAL = "dial"  # Dialled
    BRIDGE = "bridge"  # Bridged
    RECORD = "record"  # RecordingStarted


# ---- what the machine knows of the world: plain frozen data -----------------------------------


@dataclass(frozen=True, slots=True)
class Instant:
    """When an event is handled: the loop clock (for durations) and the wall clock (facts)."""

    clock: float
    wall: datetime


@dataclass(frozen=True, slots=True)
class QueueRules:
    """What a call needs of its queue's settings."""

    name: str
    language: str
    greeting: tuple[str, ...]
    moh_class: str
    announce_every_seconds: float
    announce_position: bool
    announce_wait: bool
    max_wait_seconds: float
    ring_timeout_seconds: int
    wrap_up_seconds: float
    callback_key: str
    whisper: tuple[str, ...]
    auto_answer: bool
    overflow_action: str  # queue | relax | message | callback | hangup
    overflow_target: str | None
    overflow_prompts: tuple[str, ...]


def rules_of(q: QueueConfig) -> QueueRules:
    return QueueRules(
        name=q.name,
        language=q.language,
        greeting=tuple(q.greeting),
        moh_class=q.moh_class,
        announce_every_seconds=q.announce_every_seconds,
        announce_position=q.announce_position,
        announce_wait=q.announce_wait,
        max_wait_seconds=q.max_wait_seconds,
        ring_timeout_seconds=q.ring_timeout_seconds,
        wrap_up_seconds=q.wrap_up_seconds,
        callback_key=q.callback_key,
        whisper=tuple(q.whisper),
        auto_answer=q.auto_answer,
        overflow_action=q.overflow.action,
        overflow_target=q.overflow.target,
        overflow_prompts=tuple(q.overflow.prompts),
    )


@dataclass(frozen=True, slots=True)
class Place:
    """An entry of the call in a queue, as the ACD made it."""

    entry_id: str
    queue: QueueRules
    kind: str
    priority: int
    language: str
    enqueued_at: float  # loop clock; kept through transfers and overflows (the caller's place)
    enqueued_wall: datetime
    joined_wall: datetime | None = None  # when this entry entered its queue (once entered)
    pinned_agent: str | None = None  # a transfer to one agent


@dataclass(frozen=True, slots=True)
class AgentLeg:
    """The agent's phone being rung, whispered to or talking."""

    leg_id: str
    agent_id: str
    answered_at: float | None = None
    timed_out: bool = False  # our ring backstop hung it up


@dataclass(frozen=True, slots=True)
class Joining:
    """A queue being entered: what for, and the entry once the ACD has made it."""

    queue: str
    kind: str
    pinned_agent: str | None
    greet: bool
    first: bool  # the call's first queue: failing to join ends the call at once
    place: Place | None = None


# ---- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallerGone:
    """The caller's channel hung up (or is known to be gone)."""

    at: Instant
    # Set when the engine concluded the call is gone without the caller being seen to hang up
    # (Asterisk restarted, the channel vanished while the event stream was down): the caller
    # was lost, not abandoned, and service level and abandon rate must not count it.
    lost: str | None = None


@dataclass(frozen=True, slots=True)
class Digit:
    digit: str
    at: Instant


@dataclass(frozen=True, slots=True)
class Offered:
    """The ACD reserved an agent for an entry of this call: ring them."""

    entry_id: str
    agent_id: str
    endpoint: str
    leg_id: str
    at: Instant


@dataclass(frozen=True, slots=True)
class AgentRinging:
    leg_id: str
    at: Instant


@dataclass(frozen=True, slots=True)
class AgentAnswered:
    leg_id: str
    at: Instant


@dataclass(frozen=True, slots=True)
class AgentLegEnded:
    leg_id: str
    cause: int
    sip_code: int | None
    answered: bool
    at: Instant


@dataclass(frozen=True, slots=True)
class AgentHold:
    """The agent's phone put the call on hold (or took it off)."""

    leg_id: str
    held: bool
    at: Instant


@dataclass(frozen=True, slots=True)
class PromptDone:
    """A prompt on the caller's channel (or the whisper on the agent's) finished or failed."""

    prompt_id: str
    at: Instant


@dataclass(frozen=True, slots=True)
class TransferAsked:
    """Blind transfer; ``target`` is the configured queue it goes to, None when there is none."""

    target: str | None
    agent_id: str | None
    at: Instant


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer_id: str
    at: Instant


@dataclass(frozen=True, slots=True)
class Silence:
    """Nothing happened for a while (the call task's read timed out)."""

    at: Instant


@dataclass(frozen=True, slots=True)
class Abort:
    """The call task is ending before the machine did (shutdown, a failure)."""

    at: Instant


@dataclass(frozen=True, slots=True)
class HandOverAsked:
    """The engine is stopping and leaves waiting callers to the next engine (see "Handing
    over")."""

    at: Instant


# Replies (see "Replies"):


@dataclass(frozen=True, slots=True)
class EntryMade:
    place: Place
    at: Instant


@dataclass(frozen=True, slots=True)
class HoldingJoined:
    """The caller is in the queue's holding bridge; ``full``: the queue has no room."""

    full: bool
    at: Instant


@dataclass(frozen=True, slots=True)
class HoldingFailed:
    """``gone``: the caller hung up meanwhile; else Asterisk failed."""

    gone: bool
    at: Instant


@dataclass(frozen=True, slots=True)
class Enqueued:
    """The entry waits at ``position``; None: the queue was full after all."""

    position: int | None
    at: Instant


@dataclass(frozen=True, slots=True)
class CallbackScreened:
    screen: CallbackScreen
    at: Instant


@dataclass(frozen=True, slots=True)
class CallbackPlanned:
    """The first moment the callback may be dialled from ``at.wall`` on; None: none ahead."""

    when: datetime | None
    at: Instant


@dataclass(frozen=True, slots=True)
class PositionKnown:
    position: int  # 0: no longer waiting
    expected_wait: float | None  # None: nobody staffed
    at: Instant


@dataclass(frozen=True, slots=True)
class Dialled:
    """The agent's phone is ringing, or (``failure``: unavailable, busy) cannot be rung."""

    leg_id: str
    failure: str | None
    at: Instant


@dataclass(frozen=True, slots=True)
class PlayFailed:
    prompt_id: str
    at: Instant


@dataclass(frozen=True, slots=True)
class Bridged:
    """``ok``: caller and agent are in the call's bridge. Either way, whether the bridge was
    made and the caller's prompts stopped on the way."""

    ok: bool
    bridge_made: bool
    prompts_stopped: bool
    at: Instant


@dataclass(frozen=True, slots=True)
class RecordingStarted:
    ok: bool
    at: Instant


Event = (
    CallerGone
    | Digit
    | Offered
    | AgentRinging
    | AgentAnswered
    | AgentLegEnded
    | AgentHold
    | PromptDone
    | TransferAsked
    | TimerFired
    | Silence
    | Abort
    | HandOverAsked
    | EntryMade
    | HoldingJoined
    | HoldingFailed
    | Enqueued
    | CallbackScreened
    | CallbackPlanned
    | PositionKnown
    | Dialled
    | PlayFailed
    | Bridged
    | RecordingStarted
)

# Which replies each pending state takes.
_REPLIES: Final[dict[Pending, tuple[type, ...]]] = {
    Pending.ENTRY_TO_JOIN: (EntryMade,),
    Pending.ENTRY_TO_OFFER: (EntryMade,),
    Pending.HOLDING: (HoldingJoined, HoldingFailed),
    Pending.ENQUEUE: (Enqueued,),
    Pending.SCREEN_AFTER_GREETING: (CallbackScreened,),
    Pending.SCREEN_FOR_DIGIT: (CallbackScreened,),
    Pending.SCREEN_FOR_OVERFLOW: (CallbackScreened,),
    Pending.WINDOW: (CallbackPlanned,),
    Pending.POSITION: (PositionKnown,),
    Pending.DIAL: (Dialled,),
    Pending.BRIDGE: (Bridged,),
    Pending.RECORD: (RecordingStarted,),
}
_REPLY_TYPES: Final = frozenset(t for ts in _REPLIES.values() for t in ts)


# ---- commands -------------------------------------------------------------------------------
# Those marked "reply" are answered with the event named.


@dataclass(frozen=True, slots=True)
class NewEntry:
    """Reply EntryMade: the ACD's new entry for the call (not yet waiting anywhere)."""

    queue: str
    kind: str
    pinned_agent: str | None
    enqueued_at: float | None  # the caller's first place, when it has one
    enqueued_wall: datetime | None


@dataclass(frozen=True, slots=True)
class EnterHolding:
    """Reply HoldingJoined/HoldingFailed: answer the call if asked, move it into the queue's
    holding bridge (making the bridge if Asterisk lost it), and say whether the queue is full."""

    queue: str
    moh_class: str
    answer: bool


@dataclass(frozen=True, slots=True)
class Enqueue:
    """Reply Enqueued: the entry waits in its queue (routing may offer it from now on)."""

    entry_id: str


@dataclass(frozen=True, slots=True)
class Requeue:
    """The entry waits in its queue again, whether the queue is full or not (the overflow's
    callback offer keeps the caller's place)."""

    entry_id: str


@dataclass(frozen=True, slots=True)
class RelaxEntry:
    """The entry may go to any agent of its queue: its skill needs are dropped."""

    entry_id: str


@dataclass(frozen=True, slots=True)
class LeaveQueue:
    """The entry leaves for good with ``outcome``. ``counted``: it was waiting (its wait goes
    into the queue's figures); else it never waited (the queue was full on arrival)."""

    entry_id: str
    outcome: str
    detail: str | None
    counted: bool = True


@dataclass(frozen=True, slots=True)
class ToCallback:
    """The ACD keeps the entry as a callback with the caller's place (from ``not_before``)."""

    entry_id: str
    callback_id: str
    screen: CallbackScreen
    not_before: datetime | None


@dataclass(frozen=True, slots=True)
class BackToQueue:
    """An offer failed: the entry waits again (an agent who was busy is tried last)."""

    entry_id: str
    agent_id: str
    outcome: str


@dataclass(frozen=True, slots=True)
class ScreenCallback:
    """Reply CallbackScreened: may the caller id be called back (asks PostgreSQL)?"""


@dataclass(frozen=True, slots=True)
class RefuseCallback:
    """The caller may not be called back: counted by reason."""

    reason: str


@dataclass(frozen=True, slots=True)
class PlanCallback:
    """Reply CallbackPlanned: the first moment the callback rules allow the dial."""

    screen: CallbackScreen


@dataclass(frozen=True, slots=True)
class AskPosition:
    """Reply PositionKnown: the entry's place in its queue and the wait expected there."""

    entry_id: str
    queue: str


@dataclass(frozen=True, slots=True)
class Play:
    """Queue ``media`` on the caller's channel; ends with PromptDone, or PlayFailed."""

    prompt_id: str
    media: tuple[str, ...]
    language: str
    label: str


@dataclass(frozen=True, slots=True)
class PlayToAgent:
    """Play ``media`` to the agent's leg only; ends with PromptDone, or PlayFailed."""

    leg_id: str
    prompt_id: str
    media: tuple[str, ...]
    language: str


@dataclass(frozen=True, slots=True)
class StopPrompts:
    prompt_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dial:
    """Reply Dialled: ring the agent's phone as a leg of the call."""

    agent_id: str
    leg_id: str
    endpoint: str
    caller_id: str | None
    timeout: int
    variables: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class HangupAgent:
    leg_id: str
    reason: str = "normal"


@dataclass(frozen=True, slots=True)
class Hangup:
    """Hang up the caller."""


@dataclass(frozen=True, slots=True)
class Connect:
    """Reply Bridged: make the call's bridge (if ``create``), stop the caller's prompts, and
    move caller and agent into it."""

    bridge_id: str
    create: bool
    prompt_ids: tuple[str, ...]
    leg_id: str


@dataclass(frozen=True, slots=True)
class IsolateCaller:
    """Move the caller out of the holding bridge into a bridge of its own, then drop that
    bridge: a channel in a bridge cannot be recorded (ari-notes pitfall 10)."""

    bridge_id: str


@dataclass(frozen=True, slots=True)
class RecordMessage:
    """Reply RecordingStarted: record the caller (after a beep, until '#' or the maximum)."""

    name: str
    max_seconds: int


@dataclass(frozen=True, slots=True)
class DestroyBridge:
    bridge_id: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Send TimerFired(timer_id) after ``seconds``."""

    timer_id: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer_id: str


@dataclass(frozen=True, slots=True)
class MarkRinging:
    agent_id: str


@dataclass(frozen=True, slots=True)
class MarkOnCall:
    agent_id: str


@dataclass(frozen=True, slots=True)
class MarkHeld:
    agent_id: str
    held: bool


@dataclass(frozen=True, slots=True)
class ReleaseOffer:
    """The agent's phone did not take the call (``outcome``: rona, busy, unavailable).
    ``late``: the offer came when the call could no longer take it."""

    agent_id: str
    outcome: str
    late: bool = False


@dataclass(frozen=True, slots=True)
class ReleaseAgent:
    """The agent is done with the call: to wrap-up for ``wrap_up_seconds`` (0: at once)."""

    agent_id: str
    wrap_up_seconds: float


@dataclass(frozen=True, slots=True)
class TalkDone:
    """A talk from ``queue`` ended: its talk time, and the handle time it adds (with wrap-up)."""

    queue: str
    talk_seconds: float
    wrap_up_seconds: float


@dataclass(frozen=True, slots=True)
class CountOffer:
    result: str


@dataclass(frozen=True, slots=True)
class ObserveHold:
    queue: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CountHoldReminder:
    pass


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell the agent's screen (and the engine's subscribers to agents' events)."""

    event: AgentEvent


@dataclass(frozen=True, slots=True)
class NotifyCall:
    """Show the agent the call: ``event`` made with the entry as the ACD describes it to
    agents (the caller's IVR inputs and lookups are the ACD's, not the machine's)."""

    agent_id: str
    entry_id: str
    event: type[AgentOffered] | type[AgentConnected]


@dataclass(frozen=True, slots=True)
class TalkStarted:
    agent_id: str
    leg_id: str
    bridge_id: str
    queue: str
    resumed: bool = False  # a talk an earlier engine left, carried on here
    # A resumed talk: when it began (the agent's answer, wall clock), which is when the earlier
    # engine's first recording segment began too.
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class TalkEnded:
    pass


@dataclass(frozen=True, slots=True)
class NotifyConnected:
    """Whoever brought the call (the dialer) learns which agent took it."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class MarkPlace:
    """Write the caller's place on its channel (None: it has none now) and start, keep or
    stop Asterisk's safeguard (see "The caller's place on its channel")."""

    place: PlaceTag | None
    safeguard: bool


@dataclass(frozen=True, slots=True)
class HandOver:
    """The entry leaves this engine's books with no outcome: the next engine carries it on
    (the safeguard is refreshed one last time, then no more)."""

    entry_id: str


@dataclass(frozen=True, slots=True)
class Record:
    fact: Fact


@dataclass(frozen=True, slots=True)
class Log:
    event: str
    fields: tuple[tuple[str, object], ...] = ()
    level: str = "info"


Command = (
    NewEntry
    | EnterHolding
    | Enqueue
    | Requeue
    | RelaxEntry
    | LeaveQueue
    | ToCallback
    | BackToQueue
    | ScreenCallback
    | RefuseCallback
    | PlanCallback
    | AskPosition
    | Play
    | PlayToAgent
    | StopPrompts
    | Dial
    | HangupAgent
    | Hangup
    | Connect
    | IsolateCaller
    | RecordMessage
    | DestroyBridge
    | StartTimer
    | CancelTimer
    | MarkRinging
    | MarkOnCall
    | MarkHeld
    | ReleaseOffer
    | ReleaseAgent
    | TalkDone
    | CountOffer
    | ObserveHold
    | CountHoldReminder
    | Notify
    | NotifyCall
    | TalkStarted
    | TalkEnded
    | NotifyConnected
    | MarkPlace
    | HandOver
    | Record
    | Log
)
# The commands answered by a reply (always the last of their batch).
REPLIED: Final = (
    NewEntry,
    EnterHolding,
    Enqueue,
    ScreenCallback,
    PlanCallback,
    AskPosition,
    Dial,
    Connect,
    RecordMessage,
)


# ---- state ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueCallState:
    call_id: str
    caller_number: str
    caller_name: str
    caller_language: str | None  # what the call brought (None: the queue's)
    hold_reminder_seconds: float
    phase: Phase = Phase.JOINING
    pending: Pending | None = None
    answered: bool = True
    joining: Joining | None = None
    entry: Place | None = None  # the entry waiting (or being connected) for the call
    first_enqueued: tuple[float, datetime] | None = None  # the caller's place, kept
    leg: AgentLeg | None = None
    bridge: str | None = None  # the call's mixing bridge, once made
    hold_started: float | None = None
    hold_total: float = 0.0
    overflowed: bool = False
    connected_queue: QueueRules | None = None  # the queue of the last talk
    overflow_why: str = ""  # while screening for an overflow: why it overflows
    overflow_counted: bool = True
    message: str | None = None  # the recording's name, once a message is to be taken
    callback: CallbackScreen | None = None  # decided once, the first time it could be offered
    playing: tuple[str, ...] = ()  # prompts playing or queued on the caller's channel
    prompt_seq: int = 0
    awaited_prompt: str | None = None  # the goodbye or message prompt waited for
    timers: tuple[str, ...] = ()  # running timers' ids, "<name>:<n>"
    timer_seq: int = 0
    caller_gone: bool = False
    end_reason: str = ""
    last_transition: str = ""
    listed: bool = False  # the entry is on the ACD's books (waiting, or being offered)
    marked: PlaceTag | None = None  # the place last written on the channel
    guarded: bool = False  # Asterisk's safeguard runs (see MarkPlace)
    generation: int = 0  # engines that took the call over before this one
    handing_over: bool = False  # HandOverAsked: hand over as soon as the call waits
    handed_over: bool = False  # ended by handing over: nothing of the call was closed
    talking: Place | None = None  # the entry the talk came from, while it lasts
    talk_wall: datetime | None = None  # when the talk began (the agent answered)

    @property
    def language(self) -> str:
        if self.entry is not None:
            return self.entry.language
        return self.caller_language or "en"

    def timer(self, name: str) -> str | None:
        return next((t for t in self.timers if t.partition(":")[0] == name), None)


def start(
    *,
    call_id: str,
    queue: str,
    caller_number: str,
    caller_name: str,
    language: str | None,
    kind: str,
    pinned_agent: str | None,
    answered: bool,
    hold_reminder_seconds: float,
    at: Instant,
) -> tuple[QueueCallState, list[Command]]:
    """The call arrives for ``queue``: make its entry."""
    state = QueueCallState(
        call_id=call_id,
        caller_number=caller_number,
        caller_name=caller_name,
        caller_language=language,
        hold_reminder_seconds=hold_reminder_seconds,
        answered=answered,
    )
    tx = _Step(state, at)
    tx.join(queue, kind, pinned_agent, greet=True, first=True)
    return tx.finish()


def resume(
    *,
    call_id: str,
    place: Place,
    relax_step: int,
    generation: int,
    caller_number: str,
    caller_name: str,
    language: str | None,
    hold_reminder_seconds: float,
    at: Instant,
) -> tuple[QueueCallState, list[Command]]:
    """A call another engine left waiting in ``place.queue`` goes on waiting at its place.

    ``place`` is the entry as the ACD took it back (its id, queue, kind, priority, language,
    first enqueue time on this loop's clock and on the wall clock, and ``joined_wall``, when
    the entry joined its queue); ``relax_step`` and ``generation`` are from the channel (see
    ``acd/place.py``). Announcements keep their rhythm and the maximum wait its deadline,
    both counted from ``joined_wall``; the greeting is not said again.
    """
    q = place.queue
    joined = place.joined_wall or place.enqueued_wall
    state = QueueCallState(
        call_id=call_id,
        caller_number=caller_number,
        caller_name=caller_name,
        caller_language=language,
        hold_reminder_seconds=hold_reminder_seconds,
        phase=Phase.WAITING,
        answered=True,
        entry=replace(place, joined_wall=joined),
        first_enqueued=(place.enqueued_at, place.enqueued_wall),
        overflowed=relax_step > 0,
        listed=True,
        generation=generation + 1,
    )
    tx = _Step(state, at)
    waited = max(0.0, (at.wall - joined).total_seconds())
    tx.note(f"taken over, waiting in {q.name} as {place.entry_id} for {waited:.0f} s")
    tx.log(
        "acd.resumed",
        queue=q.name,
        entry=place.entry_id,
        waited=round(waited, 1),
        generation=state.generation,
    )
    if q.announce_every_seconds > 0:
        every = q.announce_every_seconds
        tx.start_timer("announce", every - waited % every)
    if state.overflowed and q.overflow_action == "callback":
        # Taken over during the overflow's callback offer: the caller may still take it.
        tx.start_timer("callback_offer", CALLBACK_OFFER_SECONDS)
    else:
        if state.overflowed and q.overflow_action == "relax":
            tx.emit(RelaxEntry(place.entry_id))
        # The relaxed wait started when the first one ran out: a second maximum wait.
        rounds = 2 if state.overflowed else 1
        tx.start_timer("max_wait", max(0.0, rounds * q.max_wait_seconds - waited))
    return tx.finish()


def resume_talk(
    *,
    call_id: str,
    place: Place,
    agent_id: str,
    leg_id: str,
    talk_wall: datetime,
    generation: int,
    caller_number: str,
    caller_name: str,
    language: str | None,
    hold_reminder_seconds: float,
    at: Instant,
) -> tuple[QueueCallState, list[Command]]:
    """A call another engine left talking to an agent goes on talking.

    ``place`` is the entry the talk came from (as ``resume`` takes it), ``leg_id`` the agent's
    channel in the call's mixing bridge and ``talk_wall`` when the agent answered: the talk
    time counts from then, and hold, transfer, the end of the talk, wrap-up and disposition go
    on as if no engine had changed. The queue's recording policy starts a new segment of the
    call's recording (``TalkStarted`` with ``resumed``: no announcement again).
    """
    talked = max(0.0, (at.wall - talk_wall).total_seconds())
    bridge = bridge_for_call(call_id)
    state = QueueCallState(
        call_id=call_id,
        caller_number=caller_number,
        caller_name=caller_name,
        caller_language=language,
        hold_reminder_seconds=hold_reminder_seconds,
        phase=Phase.CONNECTED,
        answered=True,
        first_enqueued=(place.enqueued_at, place.enqueued_wall),
        leg=AgentLeg(leg_id, agent_id, answered_at=at.clock - talked),
        bridge=bridge,
        connected_queue=place.queue,
        talking=place,
        talk_wall=talk_wall,
        generation=generation + 1,
    )
    tx = _Step(state, at)
    tx.note(f"taken over, talking to {agent_id} for {talked:.0f} s")
    tx.log(
        "acd.talk_resumed",
        queue=place.queue.name,
        agent=agent_id,
        talked=round(talked, 1),
        generation=state.generation,
    )
    tx.emit(TalkStarted(agent_id, leg_id, bridge, place.queue.name, resumed=True, since=talk_wall))
    tx.emit(NotifyCall(agent_id, place.entry_id, AgentConnected))
    return tx.finish()


def step(state: QueueCallState, event: Event) -> tuple[QueueCallState, list[Command]]:
    if state.phase is Phase.ENDED:
        return state, []  # late events (an offer, a leg's end after the hang-up) change nothing
    tx = _Step(state, event.at, answering=state.pending)
    if isinstance(event, Abort):
        tx.note("the call task ends")
        tx.close()
        return tx.finish()
    if isinstance(event, HandOverAsked):
        if not state.handing_over:
            tx.set(handing_over=True)
            tx.note("to be handed over once waiting")
        return tx.finish()
    if isinstance(event, PlayFailed):
        tx.prompt_done(event.prompt_id, "could not play")
        return tx.finish()
    if state.pending is not None:
        if not isinstance(event, _REPLIES[state.pending]):
            tx.note(f"{type(event).__name__} refused: {state.pending.value} awaited")
            return tx.finish()
        tx.set(pending=None)
    elif type(event) in _REPLY_TYPES:
        tx.note(f"unexpected {type(event).__name__} ignored")
        return tx.finish()
    tx.handle(event)
    return tx.finish()


_QUEUED = (Phase.WAITING, Phase.OFFERING, Phase.WHISPER)  # an entry the caller is in
_RINGING = (Phase.OFFERING, Phase.WHISPER)  # an agent's leg not yet talking
_SAYING = (Phase.BYE, Phase.MESSAGE_PROMPT)  # a prompt is waited for; the rest is dropped


class _Step:
    """The work of one step: the state as it changes and the commands so far.

    Mutable, but only inside one call of ``start``/``step``; what leaves is frozen.
    """

    def __init__(
        self, state: QueueCallState, at: Instant, answering: Pending | None = None
    ) -> None:
        self.s = state
        self.at = at
        self.answering = answering  # the reply this step takes, if it takes one
        self.out: list[Command] = []
        self.notes: list[str] = []

    # -- plumbing --------------------------------------------------------------------------

    def finish(self) -> tuple[QueueCallState, list[Command]]:
        if self.s.phase is not Phase.ENDED:
            self.mark()  # first: a call handed over leaves its place written
            self.hand_over_if_waiting()
        return replace(self.s, last_transition="; ".join(self.notes)), self.out

    def emit(self, cmd: Command) -> None:
        self.out.append(cmd)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def log(self, event: str, level: str = "info", **fields: object) -> None:
        self.emit(Log(event, tuple(fields.items()), level))

    def set(self, **changes: object) -> None:
        self.s = replace(self.s, **changes)  # type: ignore[arg-type]

    def wait_for(self, pending: Pending, cmd: Command) -> None:
        self.emit(cmd)
        self.set(pending=pending)

    def start_timer(self, name: str, seconds: float) -> None:
        self.cancel_timer(name)
        n = self.s.timer_seq + 1
        tid = f"{name}:{n}"
        self.set(timers=(*self.s.timers, tid), timer_seq=n)
        self.emit(StartTimer(tid, seconds))

    def cancel_timer(self, name: str) -> None:
        tid = self.s.timer(name)
        if tid is not None:
            self.set(timers=tuple(t for t in self.s.timers if t != tid))
            self.emit(CancelTimer(tid))

    def play(self, media: tuple[str, ...], label: str) -> str | None:
        if not media:
            return None
        n = self.s.prompt_seq + 1
        # Playback ids must not meet a playback an earlier engine left running on the channel.
        gen = f"g{self.s.generation}" if self.s.generation else ""
        pid = f"{self.s.call_id}-{gen}q{n}-{label}"
        self.set(prompt_seq=n, playing=(*self.s.playing, pid))
        self.emit(Play(pid, media, self.s.language, label))
        return pid

    def stop_prompts(self) -> None:
        if self.s.playing:
            self.emit(StopPrompts(self.s.playing))
            self.set(playing=())

    def say_key(self, key: str) -> tuple[str, ...]:
        if key.isdigit():
            return say_media("digits", key, self.s.language)
        return ()

    def whisper_id(self) -> str:
        leg = self.s.leg
        return f"{self.s.call_id}-whisper-{leg.leg_id if leg else None}"

    def notify(self, event: AgentEvent) -> None:
        self.emit(Notify(event))

    # -- the caller's place on its channel, handing over -----------------------------------

    def place_tag(self) -> PlaceTag | None:
        """The place to write on the channel now: the entry while the ACD lists it, or the
        talk and the entry it came from while the caller talks to an agent."""
        s = self.s
        talk, leg = s.talking, s.leg
        if s.phase is Phase.CONNECTED and talk is not None and leg is not None and s.talk_wall:
            return PlaceTag(
                entry_id=talk.entry_id,
                queue=talk.queue.name,
                kind=talk.kind,
                priority=talk.priority,
                first_wall=talk.enqueued_wall,
                entry_wall=talk.joined_wall or talk.enqueued_wall,
                language=talk.language,
                generation=s.generation,
                talk_agent=leg.agent_id,
                talk_leg=leg.leg_id,
                talk_wall=s.talk_wall,
            )
        entry = s.entry
        if entry is None or not s.listed or s.phase not in _QUEUED:
            return None
        return PlaceTag(
            entry_id=entry.entry_id,
            queue=entry.queue.name,
            kind=entry.kind,
            priority=entry.priority,
            first_wall=entry.enqueued_wall,
            entry_wall=entry.joined_wall or entry.enqueued_wall,
            language=entry.language,
            relax_step=1 if s.overflowed else 0,
            pinned_agent=entry.pinned_agent,
            generation=s.generation,
        )

    def mark(self) -> None:
        """Write the place and the safeguard where they changed (before an awaited command,
        which must stay last)."""
        s = self.s
        if s.phase in (Phase.ENDING, Phase.ENDED):
            return  # the hang-up is on its way: nothing to keep for anyone
        if self.out and isinstance(self.out[-1], Dial | Connect):
            # Ringing the agent, or bridging the talk, is what the caller is waiting for: not
            # delayed by a variable write. The step that takes its reply, a moment later,
            # brings the place up to date.
            return
        place = self.place_tag()
        if s.phase is Phase.CONNECTED:
            guard = False  # a talk is never cut by the safeguard
        elif s.phase is Phase.JOINING:
            guard = s.guarded  # as it was: not started before the first wait
        else:
            guard = True
        if place == s.marked and guard == s.guarded:
            return
        self.set(marked=place, guarded=guard)
        cmd = MarkPlace(place, guard)
        if self.out and isinstance(self.out[-1], REPLIED):
            self.out.insert(len(self.out) - 1, cmd)
        else:
            self.out.append(cmd)

    def hand_over_if_waiting(self) -> None:
        s = self.s
        entry = s.entry
        if self.hand_over_talk():
            return
        if (
            not s.handing_over
            or s.phase is not Phase.WAITING
            or s.pending is not None
            or entry is None
            or not s.listed
            or s.leg is not None
            or entry.kind not in ADOPTABLE_KINDS
            or (s.overflowed and entry.queue.overflow_action == "callback")
        ):
            return
        for tid in s.timers:
            self.emit(CancelTimer(tid))
        self.emit(HandOver(entry.entry_id))
        self.log("acd.handed_over", queue=entry.queue.name, entry=entry.entry_id)
        self.note(f"entry {entry.entry_id} handed over")
        self.set(
            phase=Phase.ENDED,
            timers=(),
            entry=None,
            listed=False,
            handed_over=True,
            end_reason="handed_over",
        )

    def hand_over_talk(self) -> bool:
        """A graceful stop leaves a talk to the next engine too: the caller and the agent go
        on talking in Asterisk, the talk written on the caller's channel (``mark`` wrote it
        first), and nothing of the call is closed here. True when handed over."""
        s = self.s
        talk, leg = s.talking, s.leg
        if (
            not s.handing_over
            or s.phase is not Phase.CONNECTED
            or s.pending is not None
            or talk is None
            or leg is None
            or talk.kind not in ADOPTABLE_KINDS
            or s.marked is None
            or s.marked != self.place_tag()
        ):
            return False
        for tid in s.timers:
            self.emit(CancelTimer(tid))
        self.log("acd.talk_handed_over", queue=talk.queue.name, agent=leg.agent_id)
        self.note(f"talk with {leg.agent_id} handed over")
        self.set(phase=Phase.ENDED, timers=(), handed_over=True, end_reason="handed_over")
        return True

    def entered(self, place: Place) -> None:
        first = self.s.first_enqueued
        if self.s.entry is place:
            self.set(entry=replace(place, joined_wall=self.at.wall))
        self.emit(
            Record(
                QueueEnteredFact(
                    place.entry_id,
                    self.s.call_id,
                    place.queue.name,
                    place.kind,
                    place.priority,
                    first[1] if first else place.enqueued_wall,
                    self.at.wall,
                )
            )
        )

    def leave(self, outcome: str, detail: str | None = None, counted: bool = True) -> None:
        """The entry leaves for good (and the machine forgets it)."""
        entry = self.s.entry
        if entry is None:
            return
        self.emit(LeaveQueue(entry.entry_id, outcome, detail, counted))
        self.set(entry=None, listed=False)
        self.note(f"entry {entry.entry_id} left: {outcome}")

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, ev: Event) -> None:
        s = self.s
        match ev:
            case CallerGone(lost=lost):
                self.caller_gone(lost)
            case Silence():
                self.silence()
            case PromptDone(prompt_id=pid):
                self.prompt_done(pid, "finished")
            case _ if s.phase in _SAYING and not isinstance(ev, Offered):
                # Digits, transfers, timers (but the goodbye's own) and the agent's leg are
                # dropped while a goodbye or the message prompt plays.
                if isinstance(ev, TimerFired) and ev.timer_id in s.timers:
                    self.set(timers=tuple(t for t in s.timers if t != ev.timer_id))
                    if ev.timer_id.partition(":")[0] == "say":
                        self.said("its end never came")
                        return
                self.note(f"{type(ev).__name__} dropped while saying")
            case Digit(digit=d):
                self.digit(d)
            case Offered():
                self.offered(ev)
            case AgentRinging(leg_id=lid):
                if s.leg is not None and s.leg.leg_id == lid:
                    self.emit(MarkRinging(s.leg.agent_id))
            case AgentAnswered(leg_id=lid):
                if s.leg is not None and s.leg.leg_id == lid:
                    self.leg_answered()
            case AgentLegEnded(leg_id=lid):
                if s.leg is not None and s.leg.leg_id == lid:
                    self.leg_ended(ev)
                else:
                    self.note("a leg given up on ended")  # hung up after a timeout
            case AgentHold(leg_id=lid, held=held):
                if s.leg is not None and s.leg.leg_id == lid:
                    self.held(held)
            case TransferAsked():
                self.transfer(ev)
            case TimerFired(timer_id=tid):
                if tid not in s.timers:
                    self.note(f"stale timer {tid}")
                    return
                self.set(timers=tuple(t for t in s.timers if t != tid))
                self.timer_fired(tid.partition(":")[0])
            case EntryMade(place=place):
                self.entry_made(place)
            case HoldingJoined(full=full):
                self.holding_joined(full)
            case HoldingFailed(gone=gone):
                self.holding_failed(gone)
            case Enqueued(position=position):
                self.enqueued(position)
            case CallbackScreened(screen=screen):
                self.screened(screen)
            case CallbackPlanned(when=when):
                self.to_callback(when)
            case PositionKnown():
                self.announce(ev.position, ev.expected_wait)
            case Dialled():
                self.dialled(ev)
            case Bridged():
                self.bridged(ev)
            case RecordingStarted(ok=ok):
                self.recording_started(ok)

    # -- joining a queue -------------------------------------------------------------------

    def join(self, queue: str, kind: str, pinned: str | None, *, greet: bool, first: bool) -> None:
        kept = self.s.first_enqueued
        self.set(phase=Phase.JOINING, joining=Joining(queue, kind, pinned, greet, first))
        self.note(f"joining {queue} ({kind})")
        self.wait_for(
            Pending.ENTRY_TO_JOIN,
            NewEntry(queue, kind, pinned, kept[0] if kept else None, kept[1] if kept else None),
        )

    def entry_made(self, place: Place) -> None:
        j = self.s.joining
        if self.answering is Pending.ENTRY_TO_JOIN and j is not None:
            self.set(joining=replace(j, place=place))
            self.wait_for(
                Pending.HOLDING,
                EnterHolding(j.queue, place.queue.moh_class, answer=not self.s.answered),
            )
            return
        # The overflow's callback offer: the caller keeps waiting here, with its place.
        self.set(entry=place, listed=True)
        self.entered(place)
        self.emit(Requeue(place.entry_id))
        self.note(f"waits again as {place.entry_id}, offered a callback")
        self.play(
            place.queue.overflow_prompts
            or ("sound:sambung/queue-callback-offer", *self.say_key("1")),
            "callback-offer",
        )
        self.start_timer("callback_offer", CALLBACK_OFFER_SECONDS)

    def holding_joined(self, full: bool) -> None:
        j = self.s.joining
        assert j is not None
        assert j.place is not None
        place = j.place
        self.set(answered=True, entry=place)
        if full:
            self.log("acd.queue_full", queue=place.queue.name)
            self.set(joining=None, phase=Phase.WAITING)
            self.entered(place)
            self.overflow("full", counted=False)
            return
        if self.s.first_enqueued is None:
            self.set(first_enqueued=(place.enqueued_at, place.enqueued_wall))
        self.entered(place)
        self.wait_for(Pending.ENQUEUE, Enqueue(place.entry_id))

    def holding_failed(self, gone: bool) -> None:
        j = self.s.joining
        assert j is not None
        self.set(joining=None, end_reason="caller_abandoned_queue" if gone else "engine_error")
        self.note("the caller left while joining" if gone else "could not join the queue")
        if j.first:
            self.close()  # nothing was entered yet: make sure the call is down, and stop
            return
        if not gone:
            self.emit(Hangup())
        self.set(phase=Phase.ENDING)

    def enqueued(self, position: int | None) -> None:
        j = self.s.joining
        entry = self.s.entry
        assert j is not None
        assert entry is not None
        self.set(joining=None, phase=Phase.WAITING)
        if position is None:
            self.overflow("full", counted=False)
            return
        self.set(listed=True)
        q = entry.queue
        self.note(f"waiting in {q.name} at {position}")
        self.log("acd.waiting", queue=q.name, position=position)
        if j.greet and q.greeting:
            self.play(q.greeting, "greeting")
        self.schedule_announce()
        self.start_timer("max_wait", q.max_wait_seconds)
        if q.callback_key and j.greet:
            self.may_call_back(Pending.SCREEN_AFTER_GREETING)

    # -- callbacks -------------------------------------------------------------------------

    def may_call_back(self, then: Pending) -> None:
        """Whether the caller may be called back is asked once per call (PostgreSQL is)."""
        screen = self.s.callback
        if screen is None:
            self.wait_for(then, ScreenCallback())
        else:
            self.resume(then, screen.ok)

    def screened(self, screen: CallbackScreen) -> None:
        then = self.answering
        assert then is not None
        self.set(callback=screen)
        if not screen.ok:
            assert screen.reason is not None
            self.emit(RefuseCallback(screen.reason))
            # The reason only: the caller's number is personal data.
            self.log("acd.callback_not_offered", reason=screen.reason)
        self.resume(then, screen.ok)

    def resume(self, then: Pending, ok: bool) -> None:
        entry = self.s.entry
        if then is Pending.SCREEN_AFTER_GREETING:
            if ok and entry is not None:
                key = entry.queue.callback_key
                self.play(
                    ("sound:sambung/queue-callback-offer", *self.say_key(key)), "callback-offer"
                )
        elif then is Pending.SCREEN_FOR_DIGIT:
            if ok and self.s.callback is not None:
                self.wait_for(Pending.WINDOW, PlanCallback(self.s.callback))
        elif then is Pending.SCREEN_FOR_OVERFLOW and entry is not None:
            prompts = entry.queue.overflow_prompts
            # A caller who may not be called back hears that the agents are busy and to call
            # again, and is let go. Not a voice message instead: a message asks to be called
            # back, which is what this number may not be (spoofed, premium, do-not-call...).
            # The queue's own prompts offer the callback, so the default prompt is said.
            action = "callback" if ok else "hangup"
            self.overflow_go(
                self.s.overflow_why, self.s.overflow_counted, action, prompts if ok else ()
            )

    def to_callback(self, when: datetime | None) -> None:
        entry, screen = self.s.entry, self.s.callback
        if entry is None or screen is None:
            return
        now = self.at.wall
        if when is None:
            self.log("acd.callback_not_offered", reason="no_window")
            return  # nothing to promise: the caller waits on as before
        self.withdraw("caller_left")
        later = when > now
        self.emit(
            ToCallback(entry.entry_id, f"cb-{entry.entry_id}", screen, when if later else None)
        )
        self.set(entry=None, listed=False)  # the ACD owns it now; it keeps the caller's place
        self.note(f"entry {entry.entry_id} left: callback")
        self.log(
            "acd.callback_requested",
            entry=entry.entry_id,
            queue=entry.queue.name,
            not_before=when.isoformat() if later else None,
        )
        self.cancel_timer("announce")
        self.cancel_timer("max_wait")
        self.stop_prompts()
        if later:
            bye = callback_when(when, now, screen.verdict.zone, self.s.language)
        else:
            bye = ("sound:sambung/queue-callback-ok",)
        self.polite_hangup("callback_requested", bye)

    # -- waiting: announcements, digits, timers ---------------------------------------------

    def schedule_announce(self) -> None:
        entry = self.s.entry
        if entry is not None and entry.queue.announce_every_seconds > 0:
            self.start_timer("announce", entry.queue.announce_every_seconds)

    def announce(self, position: int, expected_wait: float | None) -> None:
        entry = self.s.entry
        if entry is not None and position > 0:
            q = entry.queue
            media: list[str] = []
            if q.announce_position:
                if position == 1:
                    media.append("sound:sambung/queue-next")
                else:
                    media += [
                        "sound:sambung/queue-position",
                        *say_media("number", str(position), self.s.language),
                    ]
            if q.announce_wait and expected_wait is not None and expected_wait > 0:
                minutes = max(1, math.ceil(expected_wait / 60))
                media += [
                    "sound:sambung/queue-wait",
                    *say_media("number", str(minutes), self.s.language),
                    "sound:sambung/queue-minutes",
                ]
            if media:
                self.log("acd.announce", position=position)
                self.play(tuple(media), "announce")
        self.schedule_announce()

    def digit(self, digit: str) -> None:
        s = self.s
        if s.phase is Phase.RECORDING and digit == "#":
            self.cancel_timer("message_done")
            self.message_done()
            return
        if s.entry is None or s.phase not in (Phase.WAITING, Phase.OFFERING):
            return
        q = s.entry.queue
        keys = {q.callback_key} - {""}
        if s.overflowed and q.overflow_action == "callback":
            keys.add("1")  # the overflow's default offer says "press 1"
        if digit in keys:
            self.note(f"callback key {digit}")
            self.may_call_back(Pending.SCREEN_FOR_DIGIT)

    def timer_fired(self, name: str) -> None:
        s = self.s
        self.note(f"timer {name}")
        match name:
            case "announce" if s.phase in (Phase.WAITING, Phase.OFFERING):
                if s.entry is not None and not s.playing:
                    self.wait_for(
                        Pending.POSITION, AskPosition(s.entry.entry_id, s.entry.queue.name)
                    )
                else:
                    self.schedule_announce()  # never talk over the greeting or the last one
            case "max_wait" if s.phase in (Phase.WAITING, Phase.OFFERING) and s.entry:
                self.overflow("max_wait")
            case "ring" if s.phase is Phase.OFFERING and s.leg is not None:
                # Asterisk's dial timeout should have ended the leg already; make sure.
                self.set(leg=replace(s.leg, timed_out=True))
                self.emit(HangupAgent(s.leg.leg_id, "no_answer"))
            case "hold_reminder" if s.hold_started is not None and s.leg is not None:
                held = self.at.clock - s.hold_started
                self.emit(CountHoldReminder())
                self.log("acd.hold_reminder", agent=s.leg.agent_id, held=round(held, 1))
                self.notify(HoldReminder(s.leg.agent_id, s.call_id, held))
                self.start_timer("hold_reminder", s.hold_reminder_seconds)
            case "callback_offer" if s.phase is Phase.WAITING and s.overflowed:
                self.polite_hangup("overflow_hangup")
            case "whisper" if s.phase is Phase.WHISPER and s.entry is not None:
                self.connect()
            case "connect_failed" if s.phase in _RINGING:
                self.finish_call("engine_error")
            case "message_done" if s.phase is Phase.RECORDING:
                self.message_done()
            case _:
                pass

    def silence(self) -> None:
        s = self.s
        if s.phase is Phase.ENDING:
            self.note("the hang-up was not confirmed")
            self.close()
        elif s.phase is Phase.WAITING and s.entry is not None and not s.timers:
            # A conversation, a ringing agent, a message, a timer still to come: not stuck.
            self.log("acd.silent_call", "warning")
            self.finish_call("timeout")

    # -- overflow and messages -------------------------------------------------------------

    def overflow(self, why: str, counted: bool = True) -> None:
        entry = self.s.entry
        assert entry is not None
        q = entry.queue
        action = q.overflow_action
        if (self.s.overflowed and action in ("relax", "callback")) or (
            why == "full" and action == "relax"
        ):
            action = "hangup"  # the second expiry (the relaxed wait is over too), or no room
        if action == "callback":
            self.set(overflow_why=why, overflow_counted=counted)
            self.may_call_back(Pending.SCREEN_FOR_OVERFLOW)
            return
        self.overflow_go(why, counted, action, q.overflow_prompts)

    def overflow_go(self, why: str, counted: bool, action: str, prompts: tuple[str, ...]) -> None:
        entry = self.s.entry
        assert entry is not None
        q = entry.queue
        self.log("acd.overflow", queue=q.name, why=why, action=action)
        if action == "relax":
            self.set(overflowed=True)
            self.emit(RelaxEntry(entry.entry_id))
            self.start_timer("max_wait", q.max_wait_seconds)
            return
        self.withdraw("caller_left")
        detail = f"{why}:{action}"
        if action == "message":
            name = f"sambung-message-{self.s.call_id}"
            self.set(message=name)
            detail += f":{name}"
        self.leave("overflowed", detail, counted)
        self.cancel_timer("announce")
        self.cancel_timer("max_wait")
        self.stop_prompts()
        if action == "queue":
            assert q.overflow_target is not None
            self.set(overflowed=False)
            self.play(prompts, "overflow")
            self.join(q.overflow_target, "overflow", None, greet=False, first=False)
        elif action == "callback":
            # Keep the place: a new entry waits on as this one did; the caller may take the offer.
            self.set(overflowed=True)
            self.wait_for(
                Pending.ENTRY_TO_OFFER,
                NewEntry(q.name, "caller", None, entry.enqueued_at, entry.enqueued_wall),
            )
        elif action == "message":
            self.take_message(prompts)
        else:
            self.polite_hangup("overflow_hangup", prompts or ("sound:sambung/queue-full",))

    def take_message(self, prompts: tuple[str, ...]) -> None:
        self.set(phase=Phase.MESSAGE_PROMPT)
        self.emit(IsolateCaller(bridge_for_call(self.s.call_id)))
        pid = self.play(prompts or ("sound:sambung/queue-message",), "message")
        self.set(awaited_prompt=pid)
        self.start_timer("say", SAY_WAIT_SECONDS)

    def recording_started(self, ok: bool) -> None:
        if not ok:
            self.polite_hangup("overflow_hangup", ("sound:sambung/queue-full",))
            return
        self.log("acd.message_recording", recording=self.s.message)
        self.start_timer("message_done", MESSAGE_MAX_SECONDS + 2)

    def message_done(self) -> None:
        self.polite_hangup("message_left", ("sound:sambung/queue-message-thanks",))

    # -- prompts ---------------------------------------------------------------------------

    def prompt_done(self, pid: str, how: str) -> None:
        s = self.s
        if pid in s.playing:
            self.set(playing=tuple(p for p in s.playing if p != pid))
        if s.phase in _SAYING and pid == s.awaited_prompt:
            self.said(how)
        elif s.phase is Phase.WHISPER and pid == self.whisper_id():
            self.note(f"whisper {how}")
            self.cancel_timer("whisper")
            self.connect()

    def said(self, how: str) -> None:
        """The goodbye or the message prompt is over (``how``)."""
        self.note(f"prompt {how}")
        self.cancel_timer("say")
        self.set(awaited_prompt=None)
        if self.s.phase is Phase.BYE:
            self.hang_up()
            return
        name = self.s.message or f"sambung-message-{self.s.call_id}"
        self.set(phase=Phase.RECORDING)
        self.wait_for(Pending.RECORD, RecordMessage(name, MESSAGE_MAX_SECONDS))

    # -- offering to an agent --------------------------------------------------------------

    def offered(self, offer: Offered) -> None:
        s = self.s
        entry = s.entry
        if entry is None or entry.entry_id != offer.entry_id or s.phase is not Phase.WAITING:
            # The call moved on meanwhile (callback, transfer, gone): give the agent back.
            self.emit(ReleaseOffer(offer.agent_id, "busy", late=True))
            self.note(f"late offer of {offer.agent_id} refused")
            return
        q = entry.queue
        self.set(phase=Phase.OFFERING, leg=AgentLeg(offer.leg_id, offer.agent_id))
        self.emit(
            Record(
                LegStartedFact(
                    offer.leg_id,
                    s.call_id,
                    entry.entry_id,
                    "agent",
                    offer.agent_id,
                    offer.endpoint,
                    self.at.wall,
                )
            )
        )
        self.emit(NotifyCall(offer.agent_id, entry.entry_id, AgentOffered))
        caller = s.caller_number
        caller_id = f'"{s.caller_name or caller}" <{caller}>' if caller else None
        variables = [("SAMBUNG_CALL_ID", s.call_id), ("SAMBUNG_QUEUE", q.name)]
        if q.auto_answer:
            # Desk phones answer by themselves on either header (Polycom/Yealink read
            # Alert-Info, others Call-Info answer-after); the agent hears the call at once.
            variables += [
                ("PJSIP_HEADER(add,Call-Info)", "<sip:sambung>;answer-after=0"),
                ("PJSIP_HEADER(add,Alert-Info)", "<http://sambung>;info=alert-autoanswer"),
            ]
        self.note(f"ringing {offer.agent_id}")
        self.wait_for(
            Pending.DIAL,
            Dial(
                offer.agent_id,
                offer.leg_id,
                f"PJSIP/{offer.endpoint}",
                caller_id,
                q.ring_timeout_seconds,
                tuple(variables),
            ),
        )

    def dialled(self, ev: Dialled) -> None:
        s = self.s
        if s.leg is None or s.leg.leg_id != ev.leg_id or s.phase is not Phase.OFFERING:
            return
        if ev.failure is not None:
            self.offer_failed(ev.failure, None, None)
            return
        assert s.entry is not None
        self.start_timer("ring", s.entry.queue.ring_timeout_seconds + RING_BACKSTOP_SECONDS)

    def offer_failed(self, outcome: str, cause: int | None, sip: int | None) -> None:
        s = self.s
        leg = s.leg
        assert leg is not None
        self.cancel_timer("ring")
        self.emit(Record(LegEndedFact(leg.leg_id, self.at.wall, outcome, cause, sip, None, None)))
        self.emit(CountOffer(outcome))
        self.emit(ReleaseOffer(leg.agent_id, outcome))
        self.notify(OfferEnded(leg.agent_id, s.call_id, outcome))
        self.set(leg=None)
        self.log("acd.offer_failed", agent=leg.agent_id, outcome=outcome, cause=cause)
        if s.entry is not None and s.phase in _RINGING:
            self.set(phase=Phase.WAITING)
            self.emit(BackToQueue(s.entry.entry_id, leg.agent_id, outcome))

    def withdraw(self, outcome: str) -> None:
        """Stop ringing (or whispering to) the agent: the caller left or moved on."""
        s = self.s
        leg = s.leg
        if leg is None or s.phase not in _RINGING:
            return
        self.emit(HangupAgent(leg.leg_id, "normal"))
        self.cancel_timer("ring")
        self.cancel_timer("whisper")
        self.cancel_timer("connect_failed")
        self.set(phase=Phase.WAITING, leg=None)
        self.emit(Record(LegEndedFact(leg.leg_id, self.at.wall, outcome, None, None, None, None)))
        self.emit(CountOffer(outcome))
        self.emit(ReleaseAgent(leg.agent_id, 0.0))
        self.notify(OfferEnded(leg.agent_id, s.call_id, outcome))
        self.note(f"offer to {leg.agent_id} withdrawn")

    def leg_answered(self) -> None:
        s = self.s
        leg = s.leg
        if s.phase is not Phase.OFFERING or s.entry is None or leg is None:
            return
        self.cancel_timer("ring")
        self.set(leg=replace(leg, answered_at=self.at.clock))
        self.emit(Record(LegAnsweredFact(leg.leg_id, self.at.wall)))
        q = s.entry.queue
        if q.whisper:
            self.set(phase=Phase.WHISPER)
            # If the whisper's end never reaches us, the caller must not wait on it.
            self.start_timer("whisper", WHISPER_BACKSTOP_SECONDS)
            self.emit(PlayToAgent(leg.leg_id, self.whisper_id(), q.whisper, q.language))
            return
        self.connect()

    def connect(self) -> None:
        s = self.s
        assert s.leg is not None
        self.cancel_timer("whisper")
        self.wait_for(
            Pending.BRIDGE,
            Connect(bridge_for_call(s.call_id), s.bridge is None, s.playing, s.leg.leg_id),
        )

    def bridged(self, ev: Bridged) -> None:
        s = self.s
        if ev.bridge_made:
            self.set(bridge=bridge_for_call(s.call_id))
        if ev.prompts_stopped:
            self.set(playing=())
        if not ev.ok:
            # Usually one side has just hung up (addChannel answers 400/422, not 404, for a
            # channel that is gone): its end event is on its way and decides what follows.
            # If none comes, it was a real failure.
            self.start_timer("connect_failed", CONNECT_RETRY_SECONDS)
            return
        entry, leg = s.entry, s.leg
        assert entry is not None
        assert leg is not None
        bridge = bridge_for_call(s.call_id)
        answered = leg.answered_at if leg.answered_at is not None else self.at.clock
        since = self.at.wall - timedelta(seconds=max(0.0, self.at.clock - answered))
        self.set(phase=Phase.CONNECTED, connected_queue=entry.queue, talking=entry, talk_wall=since)
        self.cancel_timer("announce")
        self.cancel_timer("max_wait")
        self.emit(MarkOnCall(leg.agent_id))
        self.emit(TalkStarted(leg.agent_id, leg.leg_id, bridge, entry.queue.name))
        self.leave("answered")
        self.emit(CountOffer("answered"))
        self.emit(NotifyCall(leg.agent_id, entry.entry_id, AgentConnected))
        self.emit(NotifyConnected(leg.agent_id))
        self.log("acd.connected", agent=leg.agent_id, queue=entry.queue.name)

    # -- talking ---------------------------------------------------------------------------

    def leg_ended(self, ev: AgentLegEnded) -> None:
        s = self.s
        leg = s.leg
        assert leg is not None
        if s.phase is Phase.OFFERING or (s.phase is Phase.WHISPER and not ev.answered):
            self.offer_failed(offer_outcome(ev.cause, leg.timed_out), ev.cause, ev.sip_code)
        elif s.phase is Phase.WHISPER:
            # The agent answered and hung up during the whisper: the caller waits on.
            self.cancel_timer("whisper")
            self.talk_over(ev.cause, ev.sip_code, "agent_left_early")
            if s.entry is not None:
                self.set(phase=Phase.WAITING)
                self.emit(BackToQueue(s.entry.entry_id, leg.agent_id, "busy"))
        elif s.phase is Phase.CONNECTED:
            self.talk_over(ev.cause, ev.sip_code, "answered")
            self.set(end_reason="agent_hung_up", phase=Phase.ENDING)
            self.emit(Hangup())

    def held(self, held: bool) -> None:
        s = self.s
        leg = s.leg
        if leg is None or s.phase is not Phase.CONNECTED:
            return
        now = self.at.clock
        self.emit(MarkHeld(leg.agent_id, held))
        if held and s.hold_started is None:
            self.set(hold_started=now)
            self.start_timer("hold_reminder", s.hold_reminder_seconds)
        elif not held and s.hold_started is not None:
            span = now - s.hold_started
            self.set(hold_total=s.hold_total + span, hold_started=None)
            self.cancel_timer("hold_reminder")
            self.emit(ObserveHold(self.connected_name(), span))
        self.notify(
            CallHeld(leg.agent_id, s.call_id) if held else CallUnheld(leg.agent_id, s.call_id)
        )

    def connected_name(self) -> str:
        q = self.s.connected_queue
        return q.name if q is not None else ""

    def end_talk(self) -> None:
        """The caller (or the engine) ends a connected call: release the agent's leg."""
        if self.s.leg is not None:
            self.emit(HangupAgent(self.s.leg.leg_id, "normal"))
        self.talk_over(None, None, "answered")

    def talk_over(self, cause: int | None, sip: int | None, outcome: str) -> None:
        s = self.s
        leg = s.leg
        if leg is None:
            return
        self.emit(TalkEnded())
        now = self.at.clock
        hold_total = s.hold_total
        if s.hold_started is not None:
            span = now - s.hold_started
            hold_total += span
            self.emit(ObserveHold(self.connected_name(), span))
            self.set(hold_started=None)
        self.cancel_timer("hold_reminder")
        talk = now - leg.answered_at if leg.answered_at is not None else 0.0
        self.emit(
            Record(
                LegEndedFact(
                    leg.leg_id,
                    self.at.wall,
                    outcome,
                    cause,
                    sip,
                    round(talk, 3),
                    round(hold_total, 3),
                )
            )
        )
        # The queue the talk came from decides the wrap-up (never unknown here: a leg talks
        # only after a connect, or whispers with the entry still waiting).
        rules = s.connected_queue or (s.entry.queue if s.entry else None)
        wrap = rules.wrap_up_seconds if rules is not None else 0.0
        if outcome == "answered" and rules is not None:
            self.emit(TalkDone(rules.name, talk, wrap))
        self.emit(ReleaseAgent(leg.agent_id, wrap))
        self.notify(CallEnded(leg.agent_id, s.call_id, round(talk, 1), wrap))
        self.set(leg=None, hold_total=0.0, talking=None, talk_wall=None)
        self.note(f"talk with {leg.agent_id} over ({outcome})")

    # -- transfers -------------------------------------------------------------------------

    def transfer(self, ev: TransferAsked) -> None:
        s = self.s
        target = ev.target
        if target is None:
            self.log("acd.transfer_no_queue", "warning", agent=ev.agent_id)
            return
        self.log("acd.transfer", to_queue=target, to_agent=ev.agent_id, phase=s.phase.value)
        if s.phase is Phase.CONNECTED:
            self.end_talk()
        elif s.phase in _QUEUED:
            self.withdraw("caller_left")
            self.leave("transferred", f"to {target}")
        else:
            return
        self.cancel_timer("announce")
        self.cancel_timer("max_wait")
        self.join(target, "transfer", ev.agent_id, greet=False, first=False)

    # -- the end ---------------------------------------------------------------------------

    def caller_gone(self, lost: str | None = None) -> None:
        self.set(caller_gone=True)
        self.note("the caller hung up" if lost is None else f"the call was lost: {lost}")
        if lost is not None:
            # Whatever the phase: the call ended for a reason on our side, not the caller's.
            self.set(end_reason=lost)
        s = self.s
        if s.phase in _QUEUED:
            self.withdraw("caller_left")
            if lost is not None:
                self.leave("lost", lost)
            else:
                self.leave("abandoned")
            self.set(end_reason=s.end_reason or "caller_abandoned_queue")
        elif s.phase is Phase.CONNECTED:
            self.end_talk()
            self.set(end_reason=s.end_reason or "caller_hung_up")
        elif s.phase is Phase.RECORDING:
            self.set(end_reason=s.end_reason or "message_left")
        elif s.phase is Phase.MESSAGE_PROMPT:
            self.set(end_reason=s.end_reason if lost is not None else "message_abandoned")
        self.close()

    def finish_call(self, reason: str) -> None:
        """The engine ends the call (nothing happened for too long, a bridge failed)."""
        s = self.s
        if s.phase in _QUEUED:
            self.withdraw("caller_left")
            self.leave("hung_up", reason)
        elif s.phase is Phase.CONNECTED:
            self.end_talk()
        self.set(end_reason=s.end_reason or reason)
        self.hang_up()

    def polite_hangup(self, reason: str, media: tuple[str, ...] = ()) -> None:
        """Say ``media`` then hang up: the hang-up waits for the prompt to finish."""
        self.set(end_reason=reason)
        pid = self.play(media, "bye")
        if pid is None:
            self.hang_up()
            return
        self.set(phase=Phase.BYE, awaited_prompt=pid)
        self.start_timer("say", SAY_WAIT_SECONDS)

    def hang_up(self) -> None:
        if not self.s.caller_gone:
            self.emit(Hangup())
        self.set(phase=Phase.ENDING)

    def close(self) -> None:
        """What the call task owes at its end; then nothing more happens."""
        s = self.s
        if s.entry is not None:
            self.withdraw("caller_left")
            self.leave("abandoned" if self.s.caller_gone else "lost")
        if self.s.leg is not None:
            # The engine is stopping (or the task failed) with an agent on the line: release
            # the agent's phone too, or its channel would outlive the call as an orphan.
            if self.s.phase in _RINGING:
                self.withdraw("caller_left")
            else:
                self.end_talk()
        if not self.s.caller_gone and self.s.phase is not Phase.ENDING:
            self.emit(Hangup())
        if self.s.bridge is not None:
            self.emit(DestroyBridge(self.s.bridge))
        for tid in self.s.timers:
            self.emit(CancelTimer(tid))
        self.set(
            phase=Phase.ENDED,
            timers=(),
            pending=None,
            joining=None,
            bridge=None,
            awaited_prompt=None,
        )

"""Pure state machine of one dialer line: an outbound attempt from its originate to its result.

``start(spec)`` and ``step(state, event)`` return ``(state, commands)``: no I/O, no clock reads
(every event carries the time the call task saw it), no async. The call task
(``dialer/call.py``) feeds Asterisk's events, the replies to its own commands and its timer to
the machine, and carries out the commands; every decision is here. The state holds plain
values only, so a line in flight can be written down and taken up again.

    ORIGINATING -> RINGING -> (no answer: busy, no_answer, rejected, congestion,
                               invalid_number, failed, cancelled)
                -> answered -> AMD_STARTING -> AMD -> MACHINE: MACHINE_MESSAGE (optional), end
                                                   -> HUMAN / NOTSURE / no verdict: live
    live -> predictive/progressive/preview: QUEUED in the campaign's queue, whose wait is the
            connect limit: an agent within it (connected), else the queue's safe-harbour
            message and a hang-up (abandoned)
         -> reminder (agentless): REMINDER (the amount due, "press 1 for an agent"),
            REMINDER_WAIT (a few seconds more for the key) -> the key: QUEUED
    every path -> ENDED, with exactly one ``Finished``

Rules worth knowing
-------------------
Live
    NOTSURE and a missing verdict count as a person: calling a person a machine and hanging up
    on them would be an abandoned call that no figure shows. AMD that cannot be started (an
    error other than the call being gone) leaves a live answer as far as we can tell. Going
    live records the AMD fact with the live time and tells the service (``NotifyLive``).
The abandon accounting
    A live answer sent to an agent ends ``connected`` or ``abandoned`` (with the safe-harbour
    note when the queue said its overflow message). A person who hangs up while AMD listens is
    ``abandoned`` too ("hello?... click"), and so is an answer gone before AMD could start. A
    reminder that was heard is ``reminder``, also when the key found no agent free.
Oddities kept on purpose
    A verdict that comes after the callee hung up (``CalleeLeft``, or AMD's own ``HANGUP``)
    ends the line with the outcome still ``failed`` and no live time: the person never counted
    as live. A hang-up while AMD listens sets the live time but never tells the service
    (``NotifyLive``). A live answer whose task stops (``Stopped``) in the queue keeps the
    outcome it had, ``failed`` (``reminder`` for a reminder): neither connected nor abandoned.
    A duplicate end of the reminder's prompt restarts the wait for the key.
Timers
    The machine starts no timers: ``state.deadline`` (loop clock) is when it wants
    ``TimedOut`` if nothing else came; ``None`` while a command's reply is awaited (the call
    task feeds replies at once) or in QUEUED (the queue owns the call) and ENDED.
Commands with a reply
    ``Originate``, ``StartAmd``, ``Play`` and ``HandToQueue`` are answered with events
    (``Originated``/``OriginateFailed``, ``AmdStarted``/``AmdGone``/``AmdUnavailable``,
    ``PlayStarted``/``PlayFailed``, ``QueueDone``); each is the last command of its step.
    While the queue runs, ``AgentConnected`` comes in the middle of ``HandToQueue`` and only
    yields commands that need no await (facts, metrics, logs, ``NotifyConnected``).
The end
    One step ends the line: a hang-up if the call is answered, still up and not the queue's,
    the attempt's end fact, the calls row's end (unless the queue closed it), the attempt
    counter, a log line and ``Finished`` with the result. ``Stopped`` (the call task is ending
    on an error or a cancellation) ends it with what is known: an attempt never answered is
    ``cancelled`` when the service hung it up itself, and otherwise ``lost`` and hung up by
    its id (it may still ring, and a cancelled record may be dialled again at once). A
    reminder whose words cannot be said (``say_media`` refuses the amount, or the key: the
    settings allow an empty one) ends like ``Stopped`` and then ``Fault``: the call task
    raises, as with any bug.
    After ENDED nothing changes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

from sambung.dialer import outcomes
from sambung.dialer.facts import (
    AttemptAmdFact,
    AttemptAnsweredFact,
    AttemptConnectedFact,
    AttemptEndedFact,
)
from sambung.engine.facts import CallAnsweredFact, CallEndedFact, Fact
from sambung.ivr.speech import say_media

# Past the originate's own ring timeout, in case Asterisk's end event is lost.
RING_BACKSTOP_SECONDS: Final = 5.0
# AMD's total_analysis_time is 5 s (asterisk/conf/amd.conf); a verdict later than this means
# the event was lost.
AMD_BACKSTOP_SECONDS: Final = 10.0
PROMPT_BACKSTOP_SECONDS: Final = 60.0

ABANDONED: Final = "abandoned"
CANCELLED: Final = "cancelled"
# Not an outcome: a graceful stop left the live answer, waiting or talking, to the next engine,
# which ends the attempt. Nothing of it is written here.
HANDED_OVER: Final = "handed_over"
# The ACD's end reasons for a call the engine concluded was gone (engine/calls.py).
LOST_REASONS: Final = frozenset({"asterisk_restart", "lost_while_disconnected"})
CONNECTED: Final = "connected"
MACHINE: Final = "machine"
REMINDER: Final = "reminder"


class Phase(enum.Enum):
    ORIGINATING = "originating"  # Originate sent; its reply is awaited
    RINGING = "ringing"  # the far end rings: its answer or its end, until the backstop
    AMD_STARTING = "amd_starting"  # StartAmd sent; its reply is awaited
    AMD = "amd"  # AMD listens in the dialplan: its verdict, until the backstop
    MACHINE_MESSAGE = "machine_message"  # the message for an answering machine plays
    REMINDER = "reminder"  # the reminder plays; the key stops it and asks for an agent
    REMINDER_WAIT = "reminder_wait"  # the reminder is over; the key is awaited a while
    QUEUED = "queued"  # the campaign's queue has the call until its end
    ENDED = "ended"  # nothing more happens


# ---- what the machine is given ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineSpec:
    """What the service decided for the attempt, as far as the line needs it."""

    attempt_id: str
    campaign: str
    queue: str
    mode: str  # predictive, progressive, preview or reminder
    phone: str
    debtor_name: str
    language: str
    amount_due: Decimal
    context: tuple[tuple[str, str], ...]  # the debtor's attributes, for the agent's screen
    endpoint: str
    caller_id: str
    ring_seconds: int
    amd: bool
    machine_message: tuple[str, ...] = ()
    reminder_key: str = "1"
    reminder_wait: float = 6.0
    pinned_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Now:
    """When the call task saw an event: the loop clock for delays and deadlines (wall-clock
    steps do not bend them) and the wall clock for facts."""

    loop: float
    wall: datetime


# ---- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Originated:
    now: Now


@dataclass(frozen=True, slots=True)
class OriginateFailed:
    detail: str
    now: Now


@dataclass(frozen=True, slots=True)
class OriginateUncertain:
    """The originate got no reply: the channel may exist (see engine.errors)."""

    detail: str
    now: Now


@dataclass(frozen=True, slots=True)
class Answered:
    at: datetime  # when Asterisk says the far end answered
    now: Now


@dataclass(frozen=True, slots=True)
class LineEnded:
    """Asterisk says the call is over (or the engine concluded it is gone: ``reason``)."""

    cause: int
    cause_text: str
    sip_code: int | None
    reason: str | None
    cancelled: bool  # the service hung the line up itself (campaign stop, paid, shutdown)
    now: Now


@dataclass(frozen=True, slots=True)
class CalleeLeft:
    """The far end asked to hang up; the call's end follows."""

    now: Now


@dataclass(frozen=True, slots=True)
class AmdStarted:
    now: Now


@dataclass(frozen=True, slots=True)
class AmdGone:
    """The call was gone before it could be sent to AMD."""

    now: Now


@dataclass(frozen=True, slots=True)
class AmdUnavailable:
    detail: str
    now: Now


@dataclass(frozen=True, slots=True)
class AmdVerdict:
    status: str  # HUMAN, MACHINE, NOTSURE, HANGUP
    cause: str
    now: Now


@dataclass(frozen=True, slots=True)
class PlayStarted:
    prompt_id: str
    now: Now


@dataclass(frozen=True, slots=True)
class PlayFailed:
    prompt_id: str
    now: Now


@dataclass(frozen=True, slots=True)
class PromptDone:
    prompt_id: str
    now: Now


@dataclass(frozen=True, slots=True)
class KeyPressed:
    digit: str
    now: Now


@dataclass(frozen=True, slots=True)
class AgentConnected:
    agent_id: str
    now: Now


@dataclass(frozen=True, slots=True)
class QueueDone:
    end_reason: str  # the queue's reason for the call's end
    now: Now


@dataclass(frozen=True, slots=True)
class TimedOut:
    """``state.deadline`` passed with nothing else."""

    now: Now


@dataclass(frozen=True, slots=True)
class Stopped:
    """The call task is ending on an error or a cancellation. ``cancelled``: the service had
    already hung the line up itself (stop, paid, shutdown)."""

    now: Now
    cancelled: bool = False


LineEvent = (
    Originated
    | OriginateFailed
    | OriginateUncertain
    | Answered
    | LineEnded
    | CalleeLeft
    | AmdStarted
    | AmdGone
    | AmdUnavailable
    | AmdVerdict
    | PlayStarted
    | PlayFailed
    | PromptDone
    | KeyPressed
    | AgentConnected
    | QueueDone
    | TimedOut
    | Stopped
)


# ---- commands --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Originate:
    """Place the call; reply Originated, OriginateFailed or OriginateUncertain."""

    endpoint: str
    caller_id: str
    timeout: int
    app_args: tuple[str, ...]
    variables: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class StartAmd:
    """Send the answered call to AMD in the dialplan; reply AmdStarted, AmdGone (the call was
    gone) or AmdUnavailable (any other error). The verdict comes back as AmdVerdict."""


@dataclass(frozen=True, slots=True)
class Play:
    """Queue ``media`` as one prompt; reply PlayStarted or PlayFailed. Ends with PromptDone."""

    prompt_id: str
    media: tuple[str, ...]
    language: str


@dataclass(frozen=True, slots=True)
class StopPrompt:
    """Stop the prompt; an error is of no consequence."""

    prompt_id: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """Hang the call up; an error is of no consequence (it is most likely gone already)."""

    reason: str = "normal"


@dataclass(frozen=True, slots=True)
class HandToQueue:
    """Run the call in the campaign's queue to its end; AgentConnected on each agent
    connected meanwhile, then QueueDone. The queue closes the calls row itself."""

    queue: str
    caller_number: str
    caller_name: str
    language: str
    attributes: tuple[tuple[str, str], ...]
    pinned_agent: str | None
    # The line was taken over from an earlier engine: the queue carries the call on at the
    # place written on its channel, waiting or talking, instead of queueing it afresh.
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class Record:
    fact: Fact


@dataclass(frozen=True, slots=True)
class ObserveConnectDelay:
    """Seconds from live to an agent (``connected``) or to the safe harbour."""

    result: Literal["connected", "safe_harbour"]
    seconds: float


@dataclass(frozen=True, slots=True)
class CountAttempt:
    outcome: str


@dataclass(frozen=True, slots=True)
class NotifyLive:
    """Tell the service a person answered (pacing counts the line as live)."""


@dataclass(frozen=True, slots=True)
class NotifyConnected:
    """Tell the service an agent took the call."""


LogValue = str | int | float | None


@dataclass(frozen=True, slots=True)
class Log:
    event: str
    fields: tuple[tuple[str, LogValue], ...] = ()
    level: Literal["info", "warning"] = "info"


@dataclass(frozen=True, slots=True)
class LineResult:
    """The attempt's result; times are on the loop clock."""

    outcome: str
    cause: int | None
    sip_code: int | None
    answered_at: float | None
    live_at: float | None  # known to be a person
    connected_at: float | None
    agent_id: str | None
    amd_status: str | None
    amd_cause: str | None
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Finished:
    """The line is over; nothing follows but, on a fault, ``Fault``."""

    result: LineResult


@dataclass(frozen=True, slots=True)
class Fault:
    """The settings asked for what cannot be done: the call task raises ``ValueError``."""

    detail: str


Command = (
    Originate
    | StartAmd
    | Play
    | StopPrompt
    | Hangup
    | HandToQueue
    | Record
    | ObserveConnectDelay
    | CountAttempt
    | NotifyLive
    | NotifyConnected
    | Log
    | Finished
    | Fault
)
# Commands answered by an event the call task feeds back at once.
REPLIED: Final = (Originate, StartAmd, Play, HandToQueue)


# ---- state -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ending:
    """How the call ended, as Asterisk (or the engine, with ``reason``) said."""

    cause: int
    cause_text: str
    sip_code: int | None
    reason: str | None  # the engine's reason: a synthetic end, its cause is not Asterisk's


@dataclass(frozen=True, slots=True)
class LineState:
    spec: LineSpec
    phase: Phase = Phase.ORIGINATING
    deadline: float | None = None  # loop clock: TimedOut is wanted then
    outcome: str = outcomes.FAILED  # what the attempt counts as if it ended now
    cause: int | None = None  # of an unanswered call
    sip_code: int | None = None
    answered_at: float | None = None  # loop clock
    live_at: float | None = None  # loop clock: known to be a person
    live_wall: datetime | None = None
    connected_at: float | None = None  # loop clock
    agent_id: str | None = None
    amd_status: str | None = None
    amd_cause: str | None = None
    callee_left: bool = False  # the far end hung up while AMD listened
    notes: tuple[str, ...] = ()
    ended: Ending | None = None  # the call is over (Asterisk said so)
    handed_over: bool = False  # the queue ran the call to its end and closed its calls row
    end_reason: str = ""  # the calls row's end reason, when it is not the outcome
    prompt: str | None = None  # the machine message's or the reminder's prompt id
    uncertain: bool = False  # the originate got no reply: the channel may or may not exist


def result_of(state: LineState) -> LineResult:
    """The result as it stands (``Finished`` carries it at the end)."""
    return LineResult(
        state.outcome,
        state.cause,
        state.sip_code,
        state.answered_at,
        state.live_at,
        state.connected_at,
        state.agent_id,
        state.amd_status,
        state.amd_cause,
        state.notes,
    )


# ---- the machine -----------------------------------------------------------------------------


def start(spec: LineSpec) -> tuple[LineState, list[Command]]:
    """A new line: place the call."""
    variables = (("SAMBUNG_CAMPAIGN", spec.campaign), ("SAMBUNG_ATTEMPT", spec.attempt_id))
    originate = Originate(
        spec.endpoint, spec.caller_id, spec.ring_seconds, (spec.campaign,), variables
    )
    return LineState(spec), [originate]


def step(state: LineState, event: LineEvent) -> tuple[LineState, list[Command]]:
    if state.phase is Phase.ENDED:
        return state, []  # late events (a prompt's end after the hang-up...) change nothing
    if isinstance(event, Stopped):
        return _stopped(state, event.now, cancelled=event.cancelled)
    match state.phase:
        case Phase.ORIGINATING:
            return _originating(state, event)
        case Phase.RINGING:
            return _ringing(state, event)
        case Phase.AMD_STARTING:
            return _amd_starting(state, event)
        case Phase.AMD:
            return _amd(state, event)
        case Phase.MACHINE_MESSAGE:
            return _machine_message(state, event)
        case Phase.REMINDER | Phase.REMINDER_WAIT:
            return _reminder(state, event)
        case Phase.QUEUED:
            return _queued(state, event)
    return state, []


def _originating(s: LineState, ev: LineEvent) -> tuple[LineState, list[Command]]:
    match ev:
        case Originated(now=now):
            deadline = now.loop + s.spec.ring_seconds + RING_BACKSTOP_SECONDS
            return replace(s, phase=Phase.RINGING, deadline=deadline), []
        case OriginateUncertain(detail=detail, now=now):
            # No reply to the originate: the channel may ring all the same. Wait for it as for
            # a line that rang; its events (an answer, an end) carry on as usual, and if none
            # comes the ring backstop hangs its id up and the attempt ends failed.
            deadline = now.loop + s.spec.ring_seconds + RING_BACKSTOP_SECONDS
            log = Log(
                "dialer.originate_uncertain",
                (("error", detail), ("campaign", s.spec.campaign)),
                "warning",
            )
            s = replace(
                s,
                phase=Phase.RINGING,
                deadline=deadline,
                notes=(*s.notes, f"originate unanswered: {detail}"),
                uncertain=True,
            )
            return s, [log]
        case OriginateFailed(detail=detail, now=now):
            log = Log(
                "dialer.originate_failed",
                (("error", detail), ("campaign", s.spec.campaign)),
                "warning",
            )
            s = replace(
                s,
                outcome=outcomes.FAILED,
                notes=(*s.notes, f"originate: {detail}"),
                end_reason="originate_failed",
            )
            return _end(s, now, [log])
    return s, []


def _ringing(s: LineState, ev: LineEvent) -> tuple[LineState, list[Command]]:
    match ev:
        case TimedOut(now=now):
            # The originate's own ring timeout should have ended the call; its end was lost.
            # Hang up in case it is somehow still there.
            log = Log("dialer.no_end_event", (("attempt", s.spec.attempt_id),), "warning")
            if s.uncertain:
                # Nothing was ever heard of the channel after an originate with no reply: most
                # likely Asterisk never made it. Hung up by its id all the same.
                s = replace(s, outcome=outcomes.FAILED, end_reason="originate_uncertain")
                return _end(s, now, [Hangup("no_answer")])
            s = replace(s, outcome=outcomes.NO_ANSWER, end_reason="ring_timeout")
            return _end(s, now, [log, Hangup("no_answer")])
        case Answered(at=at, now=now):
            aid = s.spec.attempt_id
            s = replace(s, answered_at=now.loop)
            done: list[Command] = [
                Record(AttemptAnsweredFact(aid, at)),
                Record(CallAnsweredFact(aid, at)),
            ]
            if s.spec.amd:
                return replace(s, phase=Phase.AMD_STARTING, deadline=None), [*done, StartAmd()]
            return _go_live(s, now, done)
        case LineEnded(now=now) as e:
            synthetic = e.reason is not None
            if e.cancelled:
                outcome = CANCELLED
            elif synthetic:
                # The engine concluded the line is gone (Asterisk restarted): nothing is
                # known of the debtor's side.
                outcome = outcomes.LOST
            else:
                outcome = outcomes.classify(e.cause, e.sip_code)
            s = replace(
                s,
                ended=_ending(e),
                cause=None if synthetic else e.cause,
                sip_code=e.sip_code,
                outcome=outcome,
                end_reason=f"not_answered:{outcome}",
            )
            return _end(s, now, [])
    return s, []


def _amd_starting(s: LineState, ev: LineEvent) -> tuple[LineState, list[Command]]:
    match ev:
        case AmdStarted(now=now):
            return replace(s, phase=Phase.AMD, deadline=now.loop + AMD_BACKSTOP_SECONDS), []
        case AmdGone(now=now):
            # Answered and gone before AMD could listen.
            return _end(replace(s, outcome=ABANDONED, end_reason="hung_up_at_answer"), now, [])
        case AmdUnavailable(detail=detail, now=now):
            # Without AMD the call is still a live answer as far as we can tell.
            log = Log("dialer.amd_failed", (("error", detail),), "warning")
            return _go_live(s, now, [log])
    return s, []


def _amd(s: LineState, ev: LineEvent) -> tuple[LineState, list[Command]]:
    match ev:
        case TimedOut(now=now):
            log = Log("dialer.amd_no_verdict", (("attempt", s.spec.attempt_id),), "warning")
            s = replace(s, amd_status="NOTSURE", amd_cause="NO_VERDICT")
            return _go_live(s, now, [log])
        case AmdVerdict(status=status, cause=cause, now=now):
            s = replace(s, amd_status=status, amd_cause=cause)
            done: list[Command] = [Log("dialer.amd", (("status", status), ("cause", cause)))]
            if status == "MACHINE":
                done.append(Record(AttemptAmdFact(s.spec.attempt_id, status, cause, None)))
                return _machine(s, now, done)
            if status == "HANGUP" or s.callee_left:
                return _end(replace(s, callee_left=True), now, done)
            return _go_live(s, now, done)
        case CalleeLeft():
            return replace(s, callee_left=True), []
        case LineEnded(now=now) as e:
            # Hung up while AMD listened: "hello?... click". A person, not connected. Unless
            # the engine concluded the line is gone (Asterisk restarted): lost, and still a
            # live answer nobody took.
            s = replace(
                s,
                ended=_ending(e),
                outcome=ABANDONED if e.reason is None else outcomes.LOST,
                live_at=now.loop,
                end_reason="hung_up_during_amd" if e.reason is None else e.reason,
            )
            return _end(s, now, [])
    return s, []


def _machine(s: LineState, now: Now, done: list[Command]) -> tuple[LineState, list[Command]]:
    s = replace(s, outcome=MACHINE, end_reason="machine")
    if not s.spec.machine_message:
        return _end(s, now, done)
    pid = f"{s.spec.attempt_id}-d-machine"
    s = replace(s, phase=Phase.MACHINE_MESSAGE, deadline=None, prompt=pid)
    return s, [*done, Play(pid, s.spec.machine_message, s.spec.language)]


def _machine_message(s: LineState, ev: LineEvent) -> tuple[LineState, list[Command]]:
    match ev:
        case PlayStarted(prompt_id=pid, now=now) if pid == s.prompt:
            return replace(s, deadline=now.loop + PROMPT_BACKSTOP_SECONDS), []
        case PlayFailed(prompt_id=pid, now=now) if pid == s.prompt:
            return _end(s, now, [])
        case PromptDone(prompt_id=pid, now=now) if pid == s.prompt:
            return _end(s, now, [])
        case TimedOut(now=now):
            return _end(s, now, [])
        case LineEnded(now=now) as e:
            return _end(replace(s, ended=_ending(e)), now, [])
    return s, []


def _go_live(s: LineState, now: Now, done: list[Command]) -> tuple[LineState, list[Command]]:
    spec = s.spec
    s = replace(s, live_at=now.loop, live_wall=now.wall)
    done = [
        *done,
        Record(AttemptAmdFact(spec.attempt_id, s.amd_status or "OFF", s.amd_cause or "", now.wall)),
        NotifyLive(),
    ]
    if spec.mode != REMINDER:
        return _to_agent(s, done)
    try:
        media = (
            "sound:sambung/dialer-reminder-amount",
            *say_media("money", str(int(spec.amount_due)), spec.language),
            "sound:sambung/dialer-reminder-press",
            *say_media("digits", spec.reminder_key, spec.language),
        )
    except (ValueError, OverflowError) as err:
        s, end = _stopped(s, now)
        return s, [*done, *end, Fault(str(err))]
    pid = f"{spec.attempt_id}-d-reminder"
    s = replace(s, phase=Phase.REMINDER, deadline=None, outcome=REMINDER, prompt=pid)
    return s, [*done, Play(pid, media, spec.language)]


def _reminder(s: LineState, ev: LineEvent) -> tuple[LineState, list[Command]]:
    # The key is one digit here: an empty one cannot be said, and _go_live faulted on it.
    playing = s.phase is Phase.REMINDER
    match ev:
        case PlayStarted(prompt_id=pid, now=now) if playing and pid == s.prompt:
            return replace(s, deadline=now.loop + PROMPT_BACKSTOP_SECONDS), []
        case PlayFailed(prompt_id=pid, now=now) if playing and pid == s.prompt:
            return _reminder_heard(s, now)
        case PromptDone(prompt_id=pid, now=now) if pid == s.prompt:
            deadline = now.loop + s.spec.reminder_wait
            return replace(s, phase=Phase.REMINDER_WAIT, deadline=deadline), []
        case KeyPressed(digit=digit) if digit == s.spec.reminder_key:
            done: list[Command] = []
            if playing and s.prompt is not None:
                done.append(StopPrompt(s.prompt))
            done.append(Log("dialer.reminder_agent_asked"))
            return _to_agent(s, done)
        case TimedOut(now=now):
            return _reminder_heard(s, now)
        case LineEnded(now=now) as e:
            return _reminder_heard(replace(s, ended=_ending(e)), now)
    return s, []


def _reminder_heard(s: LineState, now: Now) -> tuple[LineState, list[Command]]:
    return _end(replace(s, end_reason="reminder_played"), now, [])


def resume(
    spec: LineSpec,
    *,
    now: Now,
    live_wall: datetime,
    agent_id: str | None,
    connected_wall: datetime | None,
) -> tuple[LineState, list[Command]]:
    """A live answer an earlier engine left in the campaign's queue, waiting for an agent or
    (``agent_id``) talking to one: the queue carries it on, and the attempt ends here as if it
    had never changed engines. Its answer, live and connect facts were written by the engine
    that had it; its times are set back from the wall clock so that the connect delay and the
    abandon count are the attempt's own."""
    back = now.wall - live_wall
    live_at = now.loop - back.total_seconds()
    connected_at = None
    if agent_id is not None:
        since = now.wall - (connected_wall or now.wall)
        connected_at = now.loop - since.total_seconds()
    s = LineState(
        spec,
        phase=Phase.QUEUED,
        answered_at=live_at,
        live_at=live_at,
        live_wall=live_wall,
        connected_at=connected_at,
        agent_id=agent_id,
        notes=("resumed",),
    )
    log = Log("dialer.line_resumed", (("talking", agent_id is not None),))
    return _to_agent(s, [log], resumed=True)


def _to_agent(
    s: LineState, done: list[Command], *, resumed: bool = False
) -> tuple[LineState, list[Command]]:
    spec = s.spec
    hand = HandToQueue(
        spec.queue,
        spec.phone,
        spec.debtor_name,
        spec.language,
        spec.context,
        spec.pinned_agent,
        resumed,
    )
    return replace(s, phase=Phase.QUEUED, deadline=None), [*done, hand]


def _queued(s: LineState, ev: LineEvent) -> tuple[LineState, list[Command]]:
    match ev:
        case AgentConnected(agent_id=agent, now=now):
            delay = now.loop - (s.live_at if s.live_at is not None else now.loop)
            s = replace(s, connected_at=now.loop, agent_id=agent)
            return s, [
                ObserveConnectDelay(CONNECTED, delay),
                Record(AttemptConnectedFact(s.spec.attempt_id, agent, now.wall, round(delay, 3))),
                Log("dialer.connected", (("agent", agent), ("delay", round(delay, 3)))),
                NotifyConnected(),
            ]
        case QueueDone(end_reason="handed_over"):
            # A graceful stop: the next engine carries the call on and ends the attempt.
            s = replace(s, phase=Phase.ENDED, deadline=None, handed_over=True, outcome=HANDED_OVER)
            return s, [Log("dialer.line_handed_over"), Finished(result_of(s))]
        case QueueDone(end_reason=reason, now=now):
            # The queue's run closed the calls row; the attempt's outcome is ours to say.
            s = replace(s, end_reason=reason, handed_over=True)
            done: list[Command] = []
            if s.connected_at is not None:
                s = replace(s, outcome=CONNECTED)
            elif reason in LOST_REASONS:
                # Waiting for an agent when Asterisk restarted: lost, not abandoned by the
                # debtor (still an abandon under the cap: see outcomes.abandoned_in_window).
                s = replace(s, outcome=outcomes.LOST)
            else:
                s = replace(s, outcome=ABANDONED)
                if reason == "overflow_hangup":
                    # The safe-harbour message was said (the queue's overflow prompt).
                    delay = now.loop - (s.live_at if s.live_at is not None else now.loop)
                    done.append(ObserveConnectDelay("safe_harbour", delay))
                    s = replace(s, notes=(*s.notes, "safe_harbour"))
                if s.spec.mode == REMINDER:
                    s = replace(s, outcome=REMINDER)  # the reminder was heard; no agent was free
            return _end(s, now, done)
    return s, []


def _stopped(s: LineState, now: Now, *, cancelled: bool = False) -> tuple[LineState, list[Command]]:
    done: list[Command] = []
    if s.outcome == outcomes.FAILED and s.answered_at is None:
        if cancelled:
            s = replace(s, outcome=CANCELLED)
        else:
            # The task failed while the line may still ring: nobody else owns it, so it is
            # hung up by its id, and the attempt is lost (its retry rule holds the record
            # back) rather than cancelled, whose rule may redial at once while the old line
            # is still ringing: one debtor would have two of our lines.
            s = replace(s, outcome=outcomes.LOST, end_reason="task_stopped")
            if s.ended is None and s.phase in (Phase.ORIGINATING, Phase.RINGING):
                done.append(Hangup("no_answer"))
    return _end(s, now, done)


def _ending(e: LineEnded) -> Ending:
    return Ending(e.cause, e.cause_text, e.sip_code, e.reason)


def _end(s: LineState, now: Now, done: list[Command]) -> tuple[LineState, list[Command]]:
    spec = s.spec
    aid = spec.attempt_id
    s = replace(s, phase=Phase.ENDED, deadline=None)
    out = list(done)
    if s.answered_at is not None and s.ended is None and not s.handed_over:
        out.append(Hangup())
    connect = None
    if s.live_at is not None and s.outcome in (CONNECTED, ABANDONED, outcomes.LOST):
        end = s.connected_at if s.connected_at is not None else now.loop
        connect = round(end - s.live_at, 3)
    out.append(
        Record(
            AttemptEndedFact(aid, now.wall, s.outcome, s.cause, s.sip_code, connect, s.live_wall)
        )
    )
    if not s.handed_over:
        ended = s.ended
        real = ended is not None and ended.reason is None
        out.append(
            Record(
                CallEndedFact(
                    aid,
                    now.wall,
                    s.end_reason or s.outcome,
                    ended.cause if real and ended is not None else None,
                    ended.cause_text if real and ended is not None else None,
                    None if ended is None else ended.sip_code,
                )
            )
        )
    out += [
        CountAttempt(s.outcome),
        Log(
            "dialer.attempt_ended",
            (
                ("campaign", spec.campaign),
                ("outcome", s.outcome),
                ("cause", s.cause),
                ("sip_code", s.sip_code),
            ),
        ),
        Finished(result_of(s)),
    ]
    return s, out

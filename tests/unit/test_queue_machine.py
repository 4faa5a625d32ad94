"""sambung/acd/queue_machine.py, one transition per row: the call in a phase, an event, the phase it
goes to and what it does (log lines left out; a few rows below look at them)."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

import pytest

from sambung.acd.events import CallEnded
from sambung.acd.facts import LegEndedFact, QueueEnteredFact
from sambung.acd.queue_machine import (
    Abort,
    AgentHold,
    AgentLegEnded,
    AgentRinging,
    AskPosition,
    CallbackPlanned,
    CallerGone,
    Connect,
    Dial,
    Digit,
    Enqueued,
    EnterHolding,
    Event,
    HoldingFailed,
    HoldingJoined,
    Log,
    NewEntry,
    Notify,
    Offered,
    Phase,
    Play,
    PlayFailed,
    PositionKnown,
    PromptDone,
    QueueRules,
    Record,
    RecordingStarted,
    Silence,
    StartTimer,
    TimerFired,
    TransferAsked,
    callback_when,
    offer_outcome,
)
from tests.unit.queue_script import (
    CID,
    OK_SCREEN,
    REFUSED,
    Script,
    connected,
    offering,
    rules,
    shorts,
    waiting,
)

SUPPORT = rules()
SALES = rules("sales")
WHISPER = rules(whisper=["sound:sambung/whisper-support"])
CALLBACKS = rules(callback_key="1", greeting=["sound:sambung/welcome"])


def overflowing(action: str, **more: object) -> Script:
    """Waiting in a queue whose maximum wait has just passed."""
    overflow: dict[str, object] = {"action": action, **more}
    s = waiting(rules(overflow=overflow), SALES)
    s.wait(900)
    return s


def whispering() -> Script:
    s = offering(WHISPER).wait(2)
    s.answer()
    return s


def recording() -> Script:
    s = overflowing("message")
    s.fire("max_wait")
    s.send(PromptDone(s.state.awaited_prompt or "", s.at()))
    s.send(RecordingStarted(True, s.at()))
    return s


def bye() -> Script:
    s = overflowing("hangup")
    s.fire("max_wait")
    return s


def held() -> Script:
    s = connected()
    s.send(AgentHold(s.leg(), True, s.wait(5).at()))
    return s


@dataclass(frozen=True)
class Row:
    id: str
    given: Callable[[], Script]
    when: Callable[[Script], list[object]]
    phase: Phase
    does: list[str]


def ev(make: Callable[[Script], Event]) -> Callable[[Script], list[object]]:
    def send(s: Script) -> list[object]:
        return list(s.send(make(s)))

    return send


def timer(name: str) -> Callable[[Script], list[object]]:
    def fire(s: Script) -> list[object]:
        return list(s.fire(name))

    return fire


ROWS = [
    # -- joining ---------------------------------------------------------------------------
    Row(
        "the entry made: into the holding bridge, answering an unanswered call",
        lambda: Script.start(answered=False),
        lambda s: list(s.send(s.entry_made())),
        Phase.JOINING,
        ["EnterHolding"],
    ),
    Row(
        "in the holding bridge: entered, then enqueued",
        lambda: Script.start(),
        lambda s: [*s.send(s.entry_made()), *s.send(_joined(s, full=False))],
        Phase.JOINING,
        ["EnterHolding", "fact QueueEnteredFact", "Enqueue"],
    ),
    Row(
        "enqueued: greeting, announcements, max wait, and the callback screen",
        lambda: _in_holding(CALLBACKS),
        ev(lambda s: _enqueued(s, 2)),
        Phase.WAITING,
        ["play greeting", "start announce", "start max_wait", "ScreenCallback"],
    ),
    Row(
        "screened ok after the greeting: the callback is offered",
        lambda: Script.start(CALLBACKS).join(),
        lambda s: list(s.screened(OK_SCREEN)),
        Phase.WAITING,
        ["play callback-offer"],
    ),
    Row(
        "screened refused after the greeting: counted, not offered",
        lambda: Script.start(CALLBACKS).join(),
        lambda s: list(s.screened(REFUSED)),
        Phase.WAITING,
        ["RefuseCallback"],
    ),
    Row(
        "the queue is full on arrival: overflowed uncounted, the goodbye plays",
        lambda: _in_holding(SUPPORT, go=False),
        lambda s: list(s.send(_joined(s, full=True))),
        Phase.BYE,
        ["fact QueueEnteredFact", "leave overflowed (uncounted)", "play bye", "start say"],
    ),
    Row(
        "the caller left before the first join: the call is down, nothing entered",
        lambda: _in_holding(SUPPORT, go=False),
        ev(lambda s: HoldingFailed(True, s.at())),
        Phase.ENDED,
        ["Hangup"],
    ),
    # -- waiting ---------------------------------------------------------------------------
    Row(
        "the announcement timer: the position is asked",
        lambda: waiting(),
        timer("announce"),
        Phase.WAITING,
        ["AskPosition"],
    ),
    Row(
        "the position known: position and wait said, the next announcement set",
        lambda: _asked_position(),
        ev(lambda s: PositionKnown(3, 150.0, s.at())),
        Phase.WAITING,
        ["play announce", "start announce"],
    ),
    Row(
        "no announcement over a prompt still playing",
        lambda: _with_greeting_playing(),
        timer("announce"),
        Phase.WAITING,
        ["start announce"],
    ),
    Row(
        "the callback key, not yet screened: PostgreSQL is asked",
        lambda: _waiting_unscreened(),
        ev(lambda s: Digit("1", s.at())),
        Phase.WAITING,
        ["ScreenCallback"],
    ),
    Row(
        "the callback key, screened ok: the window is asked",
        lambda: waiting(CALLBACKS),
        ev(lambda s: Digit("1", s.at())),
        Phase.WAITING,
        ["PlanCallback"],
    ),
    Row(
        "another digit does nothing",
        lambda: waiting(CALLBACKS),
        ev(lambda s: Digit("5", s.at())),
        Phase.WAITING,
        [],
    ),
    Row(
        "a callback at once: handed to the ACD, thanked, hung up after",
        lambda: _pressed_callback(),
        ev(lambda s: CallbackPlanned(s.at().wall, s.at())),
        Phase.BYE,
        [
            "to callback",
            "cancel announce",
            "cancel max_wait",
            "StopPrompts",
            "play bye",
            "start say",
        ],
    ),
    Row(
        "no window ahead: nothing promised, the caller waits on",
        lambda: _pressed_callback(),
        ev(lambda s: CallbackPlanned(None, s.at())),
        Phase.WAITING,
        [],
    ),
    Row(
        "nothing for too long and no timer to come: hung up as timeout",
        lambda: _waiting_no_timers(),
        ev(lambda s: Silence(s.at())),
        Phase.ENDING,
        ["leave hung_up", "Hangup"],
    ),
    Row(
        "nothing for a while, the max wait still to come: nothing",
        lambda: waiting(),
        ev(lambda s: Silence(s.at())),
        Phase.WAITING,
        [],
    ),
    Row(
        "the caller hangs up waiting: abandoned",
        lambda: waiting(),
        ev(lambda s: CallerGone(s.at())),
        Phase.ENDED,
        ["leave abandoned", "cancel announce", "cancel max_wait"],
    ),
    Row(
        "Asterisk restarted while the caller waited: lost, not abandoned",
        lambda: waiting(),
        ev(lambda s: CallerGone(s.at(), lost="asterisk_restart")),
        Phase.ENDED,
        ["leave lost", "cancel announce", "cancel max_wait"],
    ),
    Row(
        "the engine stops while the caller waits: lost, and the caller hung up",
        lambda: waiting(),
        ev(lambda s: Abort(s.at())),
        Phase.ENDED,
        ["leave lost", "Hangup", "cancel announce", "cancel max_wait"],
    ),
    # -- overflow --------------------------------------------------------------------------
    Row(
        "max wait, overflow hangup: overflowed, told the queue is full",
        lambda: overflowing("hangup"),
        timer("max_wait"),
        Phase.BYE,
        ["leave overflowed", "cancel announce", "play bye", "start say"],
    ),
    Row(
        "max wait, overflow to another queue: a new entry there",
        lambda: overflowing("queue", target="sales", prompts=["sound:sambung/transfer"]),
        timer("max_wait"),
        Phase.JOINING,
        ["leave overflowed", "cancel announce", "play overflow", "NewEntry"],
    ),
    Row(
        "max wait, overflow relax: any agent may take it, the wait starts again",
        lambda: overflowing("relax"),
        timer("max_wait"),
        Phase.WAITING,
        ["RelaxEntry", "start max_wait"],
    ),
    Row(
        "max wait, overflow callback: screened first",
        lambda: overflowing("callback"),
        timer("max_wait"),
        Phase.WAITING,
        ["ScreenCallback"],
    ),
    Row(
        "overflow callback, may be called back: a new entry keeps the place",
        lambda: _overflow_screening(),
        lambda s: list(s.screened(OK_SCREEN)),
        Phase.WAITING,
        ["leave overflowed", "cancel announce", "NewEntry"],
    ),
    Row(
        "overflow callback, may not be called back: told the queue is full",
        lambda: _overflow_screening(),
        lambda s: list(s.screened(REFUSED)),
        Phase.BYE,
        ["RefuseCallback", "leave overflowed", "cancel announce", "play bye", "start say"],
    ),
    Row(
        "overflow callback's entry made: waits again and hears the offer",
        lambda: _overflow_new_entry(),
        lambda s: list(s.send(s.entry_made())),
        Phase.WAITING,
        ["fact QueueEnteredFact", "Requeue", "play callback-offer", "start callback_offer"],
    ),
    Row(
        "overflow callback not taken in time: hung up",
        lambda: _overflow_offered(),
        timer("callback_offer"),
        Phase.ENDING,
        ["Hangup"],
    ),
    Row(
        "max wait, overflow message: the caller alone, the message prompt",
        lambda: overflowing("message"),
        timer("max_wait"),
        Phase.MESSAGE_PROMPT,
        ["leave overflowed", "cancel announce", "IsolateCaller", "play message", "start say"],
    ),
    Row(
        "the message prompt over: recording",
        lambda: _message_prompt(),
        ev(lambda s: PromptDone(s.state.awaited_prompt or "", s.at())),
        Phase.RECORDING,
        ["cancel say", "RecordMessage"],
    ),
    Row(
        "recording: the caller may end it with #",
        lambda: _message_prompt(),
        lambda s: [
            *s.send(PromptDone(s.state.awaited_prompt or "", s.at())),
            *s.send(RecordingStarted(True, s.at())),
        ],
        Phase.RECORDING,
        ["cancel say", "RecordMessage", "start message_done"],
    ),
    Row(
        "# while recording: thanked, then hung up",
        lambda: recording(),
        ev(lambda s: Digit("#", s.at())),
        Phase.BYE,
        ["cancel message_done", "play bye", "start say"],
    ),
    Row(
        "the recording could not start: told the queue is full",
        lambda: _message_prompt_done(),
        ev(lambda s: RecordingStarted(False, s.at())),
        Phase.BYE,
        ["play bye", "start say"],
    ),
    Row(
        "the caller hangs up while recording: message left",
        lambda: recording(),
        ev(lambda s: CallerGone(s.at())),
        Phase.ENDED,
        ["cancel message_done"],
    ),
    Row(
        "the goodbye finished: hung up",
        lambda: bye(),
        ev(lambda s: PromptDone(s.state.awaited_prompt or "", s.at())),
        Phase.ENDING,
        ["cancel say", "Hangup"],
    ),
    Row(
        "the goodbye could not play: hung up at once",
        lambda: bye(),
        ev(lambda s: PlayFailed(s.state.awaited_prompt or "", s.at())),
        Phase.ENDING,
        ["cancel say", "Hangup"],
    ),
    Row(
        "the goodbye's end never came: hung up",
        lambda: bye(),
        timer("say"),
        Phase.ENDING,
        ["Hangup"],
    ),
    Row(
        "a digit during the goodbye is dropped",
        lambda: bye(),
        ev(lambda s: Digit("1", s.at())),
        Phase.BYE,
        [],
    ),
    Row(
        "an offer during the goodbye: the agent is given back",
        lambda: bye(),
        ev(lambda s: Offered("c1-q1", "siti", "ep-siti", "leg-9", s.at())),
        Phase.BYE,
        ["release offer siti busy late"],
    ),
    Row(
        "the hang-up confirmed: the end",
        lambda: _ending(),
        ev(lambda s: CallerGone(s.at())),
        Phase.ENDED,
        [],
    ),
    Row(
        "the hang-up never confirmed: the end anyway, no second hang-up",
        lambda: _ending(),
        ev(lambda s: Silence(s.at())),
        Phase.ENDED,
        [],
    ),
    # -- offering --------------------------------------------------------------------------
    Row(
        "an offer while waiting: the leg recorded, the agent told, the phone dialled",
        lambda: waiting(),
        lambda s: list(s.offer()),
        Phase.OFFERING,
        ["fact LegStartedFact", "publish offered", "Dial"],
    ),
    Row(
        "an offer for an entry the call no longer has: the agent is given back",
        lambda: waiting(),
        ev(lambda s: Offered("c1-q7", "budi", "ep-budi", "leg-7", s.at())),
        Phase.WAITING,
        ["release offer budi busy late"],
    ),
    Row(
        "an offer while another agent rings: given back",
        lambda: offering(),
        ev(lambda s: Offered(s.entry_id(), "budi", "ep-budi", "leg-7", s.at())),
        Phase.OFFERING,
        ["release offer budi busy late"],
    ),
    Row(
        "dialled: the ring backstop runs",
        lambda: _dialling(),
        lambda s: list(s.dialled()),
        Phase.OFFERING,
        ["start ring"],
    ),
    Row(
        "the phone cannot be rung: unavailable, back to the queue",
        lambda: _dialling(),
        lambda s: list(s.dialled("unavailable")),
        Phase.WAITING,
        [
            "fact leg ended unavailable",
            "CountOffer",
            "release offer siti unavailable",
            "publish offer_ended",
            "BackToQueue",
        ],
    ),
    Row(
        "the phone rings",
        lambda: offering(),
        ev(lambda s: AgentRinging(s.leg(), s.at())),
        Phase.OFFERING,
        ["MarkRinging"],
    ),
    Row(
        "no answer (RONA): back to the queue, the agent paused by the ACD",
        lambda: offering(),
        ev(lambda s: AgentLegEnded(s.leg(), 19, 480, False, s.at())),
        Phase.WAITING,
        [
            "cancel ring",
            "fact leg ended rona",
            "CountOffer",
            "release offer siti rona",
            "publish offer_ended",
            "BackToQueue",
        ],
    ),
    Row(
        "busy (declined): back to the queue",
        lambda: offering(),
        ev(lambda s: AgentLegEnded(s.leg(), 21, 603, False, s.at())),
        Phase.WAITING,
        [
            "cancel ring",
            "fact leg ended busy",
            "CountOffer",
            "release offer siti busy",
            "publish offer_ended",
            "BackToQueue",
        ],
    ),
    Row(
        "the ring backstop: the leg is hung up as no answer",
        lambda: offering(),
        timer("ring"),
        Phase.OFFERING,
        ["HangupAgent"],
    ),
    Row(
        "the leg hung up by the backstop ends: RONA whatever the cause",
        lambda: _ring_timed_out(),
        ev(lambda s: AgentLegEnded(s.leg(), 16, None, False, s.at())),
        Phase.WAITING,
        [
            "fact leg ended rona",
            "CountOffer",
            "release offer siti rona",
            "publish offer_ended",
            "BackToQueue",
        ],
    ),
    Row(
        "the caller hangs up while the agent rings: the offer withdrawn, abandoned",
        lambda: offering(),
        ev(lambda s: CallerGone(s.at())),
        Phase.ENDED,
        [
            "HangupAgent",
            "cancel ring",
            "fact leg ended caller_left",
            "CountOffer",
            "release siti wrap 0",
            "publish offer_ended",
            "leave abandoned",
            "cancel announce",
            "cancel max_wait",
        ],
    ),
    Row(
        "the max wait passes while the agent rings: the offer withdrawn, overflowed",
        lambda: _offering_at_max_wait(),
        timer("max_wait"),
        Phase.BYE,
        [
            "HangupAgent",
            "cancel ring",
            "fact leg ended caller_left",
            "CountOffer",
            "release siti wrap 0",
            "publish offer_ended",
            "leave overflowed",
            "cancel announce",
            "play bye",
            "start say",
        ],
    ),
    # -- answer, whisper, connect ----------------------------------------------------------
    Row(
        "answered, no whisper: caller and agent are bridged",
        lambda: offering(),
        lambda s: list(s.answer()),
        Phase.OFFERING,
        ["cancel ring", "fact LegAnsweredFact", "Connect"],
    ),
    Row(
        "answered with a whisper: the agent hears it first",
        lambda: offering(WHISPER),
        lambda s: list(s.answer()),
        Phase.WHISPER,
        ["cancel ring", "fact LegAnsweredFact", "start whisper", "PlayToAgent"],
    ),
    Row(
        "the whisper finished: bridged",
        lambda: whispering(),
        ev(lambda s: PromptDone(f"{CID}-whisper-{s.leg()}", s.at())),
        Phase.WHISPER,
        ["cancel whisper", "Connect"],
    ),
    Row(
        "the whisper could not play: bridged at once",
        lambda: whispering(),
        ev(lambda s: PlayFailed(f"{CID}-whisper-{s.leg()}", s.at())),
        Phase.WHISPER,
        ["cancel whisper", "Connect"],
    ),
    Row(
        "the whisper's end never came: bridged",
        lambda: whispering(),
        timer("whisper"),
        Phase.WHISPER,
        ["Connect"],
    ),
    Row(
        "bridged: connected, the entry answered, the agent on the call",
        lambda: _bridging(),
        lambda s: list(s.bridged()),
        Phase.CONNECTED,
        [
            "cancel announce",
            "cancel max_wait",
            "MarkOnCall",
            "TalkStarted",
            "leave answered",
            "CountOffer",
            "publish connected",
            "NotifyConnected",
        ],
    ),
    Row(
        "the bridge failed: a hang-up should explain it soon",
        lambda: _bridging(),
        lambda s: list(s.bridged(ok=False)),
        Phase.OFFERING,
        ["start connect_failed"],
    ),
    Row(
        "no hang-up explained the failed bridge: the call ends as engine_error",
        lambda: _bridge_failed(),
        timer("connect_failed"),
        Phase.ENDING,
        [
            "HangupAgent",
            "fact leg ended caller_left",
            "CountOffer",
            "release siti wrap 0",
            "publish offer_ended",
            "leave hung_up",
            "Hangup",
        ],
    ),
    Row(
        "the agent hangs up during the whisper: the caller waits on",
        lambda: whispering(),
        ev(lambda s: AgentLegEnded(s.leg(), 16, None, True, s.wait(1).at())),
        Phase.WAITING,
        [
            "cancel whisper",
            "TalkEnded",
            "fact leg ended agent_left_early",
            "release siti wrap 10",
            "publish call_ended",
            "BackToQueue",
        ],
    ),
    # -- talking ---------------------------------------------------------------------------
    Row(
        "the agent holds the call: reminded later",
        lambda: connected(),
        ev(lambda s: AgentHold(s.leg(), True, s.at())),
        Phase.CONNECTED,
        ["MarkHeld", "start hold_reminder", "publish hold"],
    ),
    Row(
        "the hold reminder: the agent told, reminded again",
        lambda: held(),
        timer("hold_reminder"),
        Phase.CONNECTED,
        ["CountHoldReminder", "publish hold_reminder", "start hold_reminder"],
    ),
    Row(
        "the agent takes the call back: the hold measured",
        lambda: held(),
        ev(lambda s: AgentHold(s.leg(), False, s.wait(30).at())),
        Phase.CONNECTED,
        ["MarkHeld", "cancel hold_reminder", "ObserveHold", "publish unhold"],
    ),
    Row(
        "the agent hangs up: talk over, the caller hung up",
        lambda: connected(),
        ev(lambda s: AgentLegEnded(s.leg(), 16, None, True, s.wait(60).at())),
        Phase.ENDING,
        [
            "TalkEnded",
            "fact leg ended answered",
            "TalkDone",
            "release siti wrap 10",
            "publish call_ended",
            "Hangup",
        ],
    ),
    Row(
        "the caller hangs up: the agent's leg hung up, talk over, the bridge destroyed",
        lambda: connected(),
        ev(lambda s: CallerGone(s.wait(60).at())),
        Phase.ENDED,
        [
            "HangupAgent",
            "TalkEnded",
            "fact leg ended answered",
            "TalkDone",
            "release siti wrap 10",
            "publish call_ended",
            "DestroyBridge",
        ],
    ),
    Row(
        "the caller hangs up on hold: the hold counted too",
        lambda: held(),
        ev(lambda s: CallerGone(s.wait(10).at())),
        Phase.ENDED,
        [
            "HangupAgent",
            "TalkEnded",
            "ObserveHold",
            "cancel hold_reminder",
            "fact leg ended answered",
            "TalkDone",
            "release siti wrap 10",
            "publish call_ended",
            "DestroyBridge",
        ],
    ),
    Row(
        "the engine stops during a talk: the agent released, the caller hung up",
        lambda: connected(),
        ev(lambda s: Abort(s.at())),
        Phase.ENDED,
        [
            "HangupAgent",
            "TalkEnded",
            "fact leg ended answered",
            "TalkDone",
            "release siti wrap 10",
            "publish call_ended",
            "Hangup",
            "DestroyBridge",
        ],
    ),
    # -- transfers -------------------------------------------------------------------------
    Row(
        "a transfer during a talk: talk over, into the queue asked for",
        lambda: connected(SUPPORT, SALES),
        ev(lambda s: TransferAsked("sales", None, s.at())),
        Phase.JOINING,
        [
            "HangupAgent",
            "TalkEnded",
            "fact leg ended answered",
            "TalkDone",
            "release siti wrap 10",
            "publish call_ended",
            "NewEntry",
        ],
    ),
    Row(
        "a transfer while waiting: transferred, into the other queue",
        lambda: waiting(SUPPORT, SALES),
        ev(lambda s: TransferAsked("sales", "budi", s.at())),
        Phase.JOINING,
        ["leave transferred", "cancel announce", "cancel max_wait", "NewEntry"],
    ),
    Row(
        "a transfer to no queue: refused",
        lambda: connected(),
        ev(lambda s: TransferAsked(None, "budi", s.at())),
        Phase.CONNECTED,
        [],
    ),
    Row(
        "a transfer while recording a message: nothing",
        lambda: recording(),
        ev(lambda s: TransferAsked("sales", None, s.at())),
        Phase.RECORDING,
        [],
    ),
    Row(
        "the transfer's queue could not be joined: hung up",
        lambda: _transfer_joining(),
        ev(lambda s: HoldingFailed(False, s.at())),
        Phase.ENDING,
        ["Hangup"],
    ),
    # -- the end ---------------------------------------------------------------------------
    Row(
        "after the end, nothing",
        lambda: _ended(),
        ev(lambda s: Offered("c1-q1", "siti", "ep-siti", "leg-9", s.at())),
        Phase.ENDED,
        [],
    ),
    Row(
        "a stale timer changes nothing",
        lambda: waiting(),
        ev(lambda s: TimerFired("max_wait:99", s.at())),
        Phase.WAITING,
        [],
    ),
    Row(
        "while a reply is awaited, anything else is refused",
        lambda: _dialling(),
        ev(lambda s: CallerGone(s.at())),
        Phase.OFFERING,
        [],
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_transition(row: Row) -> None:
    s = row.given()
    did = row.when(s)
    assert s.state.phase is row.phase, s.state.last_transition
    assert shorts(did) == row.does  # type: ignore[arg-type]


# ---- helpers for the rows (the call part-way through a transition) ------------------------


def _joined(s: Script, *, full: bool) -> Event:
    return HoldingJoined(full, s.at())


def _enqueued(s: Script, position: int) -> Event:
    return Enqueued(position, s.at())


def _in_holding(q: QueueRules = SUPPORT, go: bool = True) -> Script:
    s = Script.start(q)
    s.send(s.entry_made())
    if go:
        s.send(_joined(s, full=False))
    return s


def _asked_position() -> Script:
    s = waiting()
    s.fire("announce")
    return s


def _with_greeting_playing() -> Script:
    return waiting(rules(greeting=["sound:sambung/welcome"]))


def _waiting_unscreened() -> Script:
    s = waiting(rules(callback_key="1"))
    s.state = replace(s.state, callback=None)
    return s


def _pressed_callback() -> Script:
    s = waiting(CALLBACKS)
    s.send(Digit("1", s.at()))
    return s


def _waiting_no_timers() -> Script:
    s = waiting(rules(announce_every_seconds=0))
    s.state = replace(s.state, timers=())
    return s


def _overflow_screening() -> Script:
    s = overflowing("callback")
    s.fire("max_wait")
    return s


def _overflow_new_entry() -> Script:
    s = _overflow_screening()
    s.screened(OK_SCREEN)
    return s


def _overflow_offered() -> Script:
    s = _overflow_new_entry()
    s.send(s.entry_made())
    return s


def _message_prompt() -> Script:
    s = overflowing("message")
    s.fire("max_wait")
    return s


def _message_prompt_done() -> Script:
    s = _message_prompt()
    s.send(PromptDone(s.state.awaited_prompt or "", s.at()))
    return s


def _ending() -> Script:
    s = bye()
    s.send(PromptDone(s.state.awaited_prompt or "", s.at()))
    return s


def _dialling() -> Script:
    s = waiting()
    s.offer()
    return s


def _ring_timed_out() -> Script:
    s = offering()
    s.fire("ring")
    return s


def _offering_at_max_wait() -> Script:
    s = waiting()
    s.wait(890)
    s.offer()
    s.dialled()
    return s


def _bridging() -> Script:
    s = offering()
    s.answer()
    return s


def _bridge_failed() -> Script:
    s = _bridging()
    s.bridged(ok=False)
    return s


def _transfer_joining() -> Script:
    s = connected(SUPPORT, SALES)
    s.send(TransferAsked("sales", None, s.at()))
    s.send(s.entry_made())
    return s


def _ended() -> Script:
    s = waiting()
    s.send(CallerGone(s.at()))
    return s


# ---- details the rows do not show ---------------------------------------------------------


def test_the_dial_says_who_calls_and_asks_desk_phones_to_answer_when_the_queue_wants() -> None:
    s = waiting(rules(auto_answer=True, ring_timeout_seconds=12))
    s.offer()
    dial = s.asked(Dial)
    assert dial.endpoint == "PJSIP/ep-siti"
    assert dial.caller_id == '"Ani" <0812345678>'
    assert dial.timeout == 12
    assert dict(dial.variables) == {
        "SAMBUNG_CALL_ID": CID,
        "SAMBUNG_QUEUE": "support",
        "PJSIP_HEADER(add,Call-Info)": "<sip:sambung>;answer-after=0",
        "PJSIP_HEADER(add,Alert-Info)": "<http://sambung>;info=alert-autoanswer",
    }
    s.dialled()
    assert s.asked(StartTimer).seconds == 12 + 3.0  # the ring backstop


def test_a_caller_without_caller_id_is_dialled_without_one() -> None:
    s = Script.start(caller="").join()
    s.offer()
    assert s.asked(Dial).caller_id is None


def test_the_announcement_says_the_position_and_the_wait_in_whole_minutes() -> None:
    s = _asked_position()
    s.send(PositionKnown(3, 130.0, s.at()))
    assert s.asked(Play).media == (
        "sound:sambung/queue-position",
        "number:3",
        "sound:sambung/queue-wait",
        "number:3",
        "sound:sambung/queue-minutes",
    )
    s.send(PromptDone(s.asked(Play).prompt_id, s.at()))
    s.fire("announce")
    s.send(PositionKnown(1, None, s.at()))  # next, nobody staffed: the wait is not said
    assert s.asked(Play).media == ("sound:sambung/queue-next",)


def test_a_transfer_keeps_the_first_enqueue_time_and_pins_the_agent() -> None:
    s = connected(SUPPORT, SALES)
    first = s.state.first_enqueued
    s.wait(100).send(TransferAsked("sales", "budi", s.at()))
    new = s.asked(NewEntry)
    assert (new.queue, new.kind, new.pinned_agent) == ("sales", "transfer", "budi")
    assert first is not None
    assert (new.enqueued_at, new.enqueued_wall) == first
    s.send(s.entry_made())
    s.send(_joined(s, full=False))
    (fact,) = [c.fact for c in s.last if isinstance(c, Record)]
    assert isinstance(fact, QueueEnteredFact)
    assert fact.first_enqueued_at == first[1]
    assert fact.enqueued_at == s.at().wall
    s.send(_enqueued(s, 1))
    assert not [c for c in s.last if isinstance(c, Play)]  # no greeting after a transfer


def test_talk_and_hold_seconds_come_from_the_events_times() -> None:
    s = connected()  # answered at t=2
    s.wait(10).send(AgentHold(s.leg(), True, s.at()))
    s.wait(5).send(AgentHold(s.leg(), False, s.at()))
    s.wait(5).send(AgentLegEnded(s.leg(), 16, None, True, s.at()))
    (fact,) = [c.fact for c in s.last if isinstance(c, Record)]
    assert isinstance(fact, LegEndedFact)
    assert (fact.talk_seconds, fact.hold_seconds) == (20.0, 5.0)
    (ended,) = [c.event for c in s.last if isinstance(c, Notify)]
    assert ended == CallEnded("siti", CID, talk_seconds=20.0, wrap_up_seconds=10.0)
    assert s.state.end_reason == "agent_hung_up"


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (lambda: waiting(), "caller_abandoned_queue"),
        (lambda: connected(), "caller_hung_up"),
        (lambda: _message_prompt(), "message_abandoned"),
        (lambda: recording(), "message_left"),
        (lambda: bye(), "overflow_hangup"),
    ],
)
def test_the_end_reason_when_the_caller_hangs_up(given: Callable[[], Script], reason: str) -> None:
    s = given()
    s.send(CallerGone(s.at()))
    assert s.state.phase is Phase.ENDED
    assert s.state.end_reason == reason


def test_a_callback_for_later_says_when_in_the_callers_language() -> None:
    s = Script.start(CALLBACKS, language="id").join()
    s.screened()
    s.send(Digit("1", s.at()))
    later = s.at().wall + timedelta(hours=22)
    s.send(CallbackPlanned(later, s.at()))
    bye_play = s.asked(Play)
    assert bye_play.media == callback_when(later, s.at().wall, None, "id")
    assert bye_play.language == "id"
    assert "to callback later" in shorts(s.last)
    assert s.state.end_reason == "callback_requested"


def test_the_overflows_callback_offer_takes_the_key_it_says() -> None:
    s = _overflow_offered()
    assert s.asked(Play).media == ("sound:sambung/queue-callback-offer", "digits:1")
    s.send(Digit("1", s.at()))
    assert shorts(s.last) == ["PlanCallback"]  # screened once, for the overflow


def test_the_log_says_why_a_callback_is_not_offered_without_the_number() -> None:
    s = Script.start(CALLBACKS).join()
    s.screened(REFUSED)
    logs = [c for c in s.last if isinstance(c, Log)]
    assert [(c.event, dict(c.fields)) for c in logs] == [
        ("acd.callback_not_offered", {"reason": "withheld"})
    ]


def test_a_ring_timeout_pauses_rather_than_passes_on() -> None:
    assert offer_outcome(16, timed_out=True) == "rona"


def test_the_state_is_plain_data_that_survives_a_round_trip() -> None:
    s = held()
    assert pickle.loads(pickle.dumps(s.state)) == s.state
    assert copy.deepcopy(s.state) == s.state


def test_commands_that_await_a_reply_end_their_batch() -> None:
    s = _bridging()
    assert isinstance(s.last[-1], Connect)
    assert s.state.pending is not None
    s2 = waiting()
    s2.fire("announce")
    assert isinstance(s2.last[-1], AskPosition)
    s3 = Script.start(answered=False)
    assert isinstance(s3.last[-1], NewEntry)
    s3.send(s3.entry_made())
    assert s3.asked(EnterHolding).answer is True

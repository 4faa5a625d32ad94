"""Hypothesis: random event sequences through ``sambung/acd/queue_machine.py``, over random queues.

The call task's contract is kept (a reply the machine awaits comes next, now and then after
junk the machine must refuse); everything else arrives in any order, with ids that may be
stale. Whatever happens:

- every agent reserved for the call is released exactly once (offer failed, offer withdrawn,
  or the talk over and the agent handed to wrap-up), by the end at the latest;
- nothing comes after the end: once ``ENDED``, any event gives no command and no change;
- every entry entered leaves exactly once, with one outcome (``LeaveQueue``, or ``ToCallback``
  for a callback), however many entries transfers and overflows make;
- every agent's leg rung is hung up or seen to end; every timer started is cancelled or
  fired by the end; a command awaiting a reply is the last of its batch;
- the state is plain data (frozen dataclasses, enums, strings, numbers, times, tuples);
- the caller's channel always tells the truth: the place written on it names the entry the
  ACD lists for the call, or none; the safeguard is off exactly while the caller talks; a
  call handed over leaves its place on the channel for the next engine.

Runs start anywhere, also from a call resumed after another engine left it waiting (its entry
entered in that earlier life), and a stopping engine may ask for the hand-over at any time.
"""

from __future__ import annotations

import dataclasses
import enum
import pickle
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sambung.acd.facts import QueueEnteredFact
from sambung.acd.queue_machine import (
    REPLIED,
    Abort,
    AgentAnswered,
    AgentHold,
    AgentLegEnded,
    AgentRinging,
    Bridged,
    CallbackPlanned,
    CallbackScreened,
    CallerGone,
    CancelTimer,
    Command,
    Dial,
    Dialled,
    Digit,
    Enqueued,
    EntryMade,
    Event,
    HandOver,
    HandOverAsked,
    HangupAgent,
    HoldingFailed,
    HoldingJoined,
    LeaveQueue,
    MarkPlace,
    Offered,
    Pending,
    Phase,
    PlayFailed,
    PositionKnown,
    PromptDone,
    QueueRules,
    Record,
    RecordingStarted,
    ReleaseAgent,
    ReleaseOffer,
    Silence,
    StartTimer,
    TimerFired,
    ToCallback,
    TransferAsked,
)
from tests.unit.queue_script import (
    CID,
    OK_SCREEN,
    REFUSED,
    Script,
    connected,
    offering,
    resumed,
    resumed_offering,
    rules,
    waiting,
)

AGENTS = ("siti", "budi")
_REPLIES = (
    EntryMade,
    HoldingJoined,
    HoldingFailed,
    Enqueued,
    CallbackScreened,
    CallbackPlanned,
    PositionKnown,
    Dialled,
    Bridged,
    RecordingStarted,
)


@st.composite
def queue_rules(draw: st.DrawFn, name: str) -> QueueRules:
    action = draw(st.sampled_from(["hangup", "queue", "relax", "message", "callback"]))
    overflow: dict[str, Any] = {"action": action}
    if action == "queue":
        overflow["target"] = "sales" if name == "support" else "support"
    if draw(st.booleans()):
        overflow["prompts"] = ["sound:sambung/sorry"]
    return rules(
        name,
        greeting=draw(st.sampled_from([[], ["sound:sambung/welcome"]])),
        announce_every_seconds=draw(st.sampled_from([0, 30])),
        callback_key=draw(st.sampled_from(["", "1"])),
        whisper=draw(st.sampled_from([[], ["sound:sambung/whisper"]])),
        auto_answer=draw(st.booleans()),
        overflow=overflow,
    )


def reply(draw: st.DrawFn, s: Script, pending: Pending) -> Event:
    at = s.at()
    match pending:
        case Pending.ENTRY_TO_JOIN | Pending.ENTRY_TO_OFFER:
            return s.entry_made()
        case Pending.HOLDING:
            if draw(st.integers(0, 9)) == 0:
                return HoldingFailed(draw(st.booleans()), at)
            return HoldingJoined(draw(st.integers(0, 7)) == 0, at)
        case Pending.ENQUEUE:
            return Enqueued(draw(st.sampled_from([1, 2, 1, 2, 1, 2, None])), at)
        case Pending.SCREEN_AFTER_GREETING | Pending.SCREEN_FOR_DIGIT | Pending.SCREEN_FOR_OVERFLOW:
            return CallbackScreened(draw(st.sampled_from([OK_SCREEN, REFUSED])), at)
        case Pending.WINDOW:
            later = draw(st.sampled_from([None, 0, 3600 * 20]))
            return CallbackPlanned(
                None if later is None else at.wall + timedelta(seconds=later), at
            )
        case Pending.POSITION:
            return PositionKnown(
                draw(st.integers(0, 3)), draw(st.sampled_from([None, 0.0, 90.0])), at
            )
        case Pending.DIAL:
            dial: Dial = s.asked(Dial)
            return Dialled(
                dial.leg_id,
                draw(st.sampled_from([None, None, None, None, "busy", "unavailable"])),
                at,
            )
        case Pending.BRIDGE:
            return Bridged(
                draw(st.integers(0, 4)) > 0, draw(st.booleans()), draw(st.booleans()), at
            )
        case Pending.RECORD:
            return RecordingStarted(draw(st.integers(0, 3)) > 0, at)
    raise AssertionError(pending)


def a_leg(draw: st.DrawFn, s: Script) -> str:
    current = [s.state.leg.leg_id] if s.state.leg else []
    return draw(st.sampled_from([*current, *current, "leg-old"]))


def a_prompt(draw: st.DrawFn, s: Script) -> str:
    st_ = s.state
    known = [*st_.playing, *([st_.awaited_prompt] if st_.awaited_prompt else [])]
    if st_.leg is not None:
        known.append(f"{CID}-whisper-{st_.leg.leg_id}")
    return draw(st.sampled_from([*known, *known, "c1-q99-old"]))


# What may happen next, weighted towards moving the call on from where it is (an offer while
# waiting, an answer while ringing...) so that long runs reach every phase.
_ALWAYS = ["gone", "digit", "offer", "leg_ended", "prompt", "play_failed", "transfer", "timer"]
_LIKELY = {
    Phase.WAITING: ["offer", "offer", "offer", "timer", "digit", "digit"],
    Phase.OFFERING: ["answered", "answered", "answered", "ringing", "leg_ended", "timer"],
    Phase.WHISPER: ["prompt", "prompt", "timer", "leg_ended"],
    Phase.CONNECTED: ["hold", "hold", "hold", "transfer", "timer", "leg_ended"],
    Phase.MESSAGE_PROMPT: ["prompt", "prompt"],
    Phase.RECORDING: ["digit", "timer"],
    Phase.BYE: ["prompt", "timer", "offer"],
    Phase.ENDING: ["gone", "silence"],
}


def external(draw: st.DrawFn, s: Script) -> Event:
    at = s.at()
    rare = ["silence", "abort", "ringing", "answered", "hold", "hand_over"]
    kinds = [*_ALWAYS, *_LIKELY.get(s.state.phase, []) * 3, *rare]
    kind = draw(st.sampled_from(kinds))
    match kind:
        case "gone":
            return CallerGone(at)
        case "digit":
            return Digit(draw(st.sampled_from(["1", "#", "5"])), at)
        case "offer":
            entry = [s.state.entry.entry_id] if s.state.entry else []
            s.legs += 1
            return Offered(
                draw(st.sampled_from([*entry, *entry, "c1-q0"])),
                draw(st.sampled_from(AGENTS)),
                "ep",
                f"leg-{s.legs}",
                at,
            )
        case "ringing":
            return AgentRinging(a_leg(draw, s), at)
        case "answered":
            return AgentAnswered(a_leg(draw, s), at)
        case "leg_ended":
            cause = draw(st.sampled_from([16, 17, 19, 20, 34]))
            return AgentLegEnded(a_leg(draw, s), cause, None, draw(st.booleans()), at)
        case "hold":
            return AgentHold(a_leg(draw, s), draw(st.booleans()), at)
        case "prompt":
            return PromptDone(a_prompt(draw, s), at)
        case "play_failed":
            return PlayFailed(a_prompt(draw, s), at)
        case "transfer":
            target = draw(st.sampled_from(["support", "sales", None]))
            return TransferAsked(target, draw(st.sampled_from([None, "budi"])), at)
        case "timer":
            timers = list(s.state.timers)
            return TimerFired(draw(st.sampled_from([*timers, *timers, "max_wait:0"])), at)
        case "silence":
            return Silence(at)
        case "hand_over":
            return HandOverAsked(at)
        case _:
            return Abort(at)


@st.composite
def runs(draw: st.DrawFn) -> Script:
    support = draw(queue_rules("support"))
    sales = draw(queue_rules("sales"))
    given = draw(
        st.sampled_from([Script.start, waiting, offering, connected, resumed, resumed_offering])
    )
    more: dict[str, Any] = {}
    if given in (resumed, resumed_offering):
        # Taken over after any wait, relaxed or not, from any earlier engine.
        more = {
            "waited": draw(st.sampled_from([0.0, 45.0, 2000.0])),
            "relax_step": draw(st.sampled_from([0, 1])),
            "generation": draw(st.sampled_from([0, 3])),
            "kind": draw(st.sampled_from(["caller", "transfer", "overflow"])),
        }
    s = given(
        support,
        sales,
        answered=draw(st.booleans()),
        language=draw(st.sampled_from([None, "id"])),
        caller=draw(st.sampled_from(["0812345678", ""])),
        **more,
    )
    for _ in range(draw(st.integers(0, 60))):
        if s.state.phase is Phase.ENDED:
            break
        s.wait(draw(st.sampled_from([0.0, 1.0, 30.0])))
        pending = s.state.pending
        if pending is not None and draw(st.integers(0, 5)) > 0:
            event = reply(draw, s, pending)
        else:
            event = external(draw, s)
        s.send(event)
    if s.state.phase is not Phase.ENDED:
        s.send(Abort(s.at()))  # the call task's finally
    return s


RUNS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def commands(s: Script) -> list[Command]:
    return [c for h in s.history for c in h.commands]


@RUNS
@given(runs())
def test_every_agent_reserved_is_released_exactly_once(s: Script) -> None:
    held: Counter[str] = Counter()
    for h in s.history:
        before = h.before
        if (
            isinstance(h.event, Offered)
            and before is not None
            and before.phase is not Phase.ENDED
            and before.pending is None
        ):
            held[h.event.agent_id] += 1
        for c in h.commands:
            if isinstance(c, ReleaseOffer | ReleaseAgent):
                assert held[c.agent_id] > 0, f"{c} releases an agent not held"
                held[c.agent_id] -= 1
    assert s.state.phase is Phase.ENDED
    if s.state.handed_over and s.state.leg is not None:
        # A talk handed over at a graceful stop: the next engine releases its agent.
        held[s.state.leg.agent_id] -= 1
    assert +held == Counter(), f"still held at the end: {held}"


@RUNS
@given(runs(), st.lists(st.sampled_from(["gone", "offer", "timer", "digit", "abort"]), max_size=5))
def test_nothing_comes_after_the_end(s: Script, more: list[str]) -> None:
    assert s.state.phase is Phase.ENDED
    ended = s.state
    for kind in more:
        at = s.wait(1).at()
        late: dict[str, Event] = {
            "gone": CallerGone(at),
            "offer": Offered("c1-q1", "siti", "ep", "leg-x", at),
            "timer": TimerFired("announce:1", at),
            "digit": Digit("1", at),
            "abort": Abort(at),
        }
        assert s.send(late[kind]) == []
        assert s.state == ended


@RUNS
@given(runs())
def test_every_entry_entered_leaves_exactly_once(s: Script) -> None:
    # A resumed call's entry was entered by the engine before; handed over, an entry leaves
    # this engine without an outcome (the next one closes it).
    entered: list[str] = [s.adopted] if s.adopted else []
    left: Counter[str] = Counter()
    for c in commands(s):
        if isinstance(c, Record) and isinstance(c.fact, QueueEnteredFact):
            assert c.fact.entry_id not in entered, "entered twice"
            entered.append(c.fact.entry_id)
        elif isinstance(c, LeaveQueue | ToCallback | HandOver):
            assert c.entry_id in entered, f"{c} for an entry never entered"
            left[c.entry_id] += 1
    assert left == Counter(entered), (entered, left)


_LISTED_PHASES = (Phase.WAITING, Phase.OFFERING, Phase.WHISPER)


@RUNS
@given(runs())
def test_the_channel_always_tells_the_callers_place(s: Script) -> None:
    written = None  # what the channel says: the place, and whether the safeguard runs
    guarded = False
    for h in s.history:
        for c in h.commands:
            if isinstance(c, MarkPlace):
                written, guarded = c.place, c.safeguard
        after = h.after
        if after.handed_over and after.leg is not None:
            # A talk handed over: the channel says the talk, with no safeguard.
            assert written is not None, "a talk handed over without its place"
            assert written.talking
            assert (written.talk_leg, guarded) == (after.leg.leg_id, False)
            continue
        if after.handed_over:
            (handed,) = [c.entry_id for c in h.commands if isinstance(c, HandOver)]
            assert written is not None, "handed over without a place for the next engine"
            assert (written.entry_id, guarded) == (handed, True)
            continue
        if after.phase in (Phase.ENDING, Phase.ENDED):
            continue  # being hung up: nothing more is written
        entry = after.entry
        if entry is not None and after.listed and after.phase in _LISTED_PHASES:
            assert written is not None, f"{after.phase}: no place written"
            assert (written.entry_id, written.queue, written.kind) == (
                entry.entry_id,
                entry.queue.name,
                entry.kind,
            )
            assert written.relax_step == (1 if after.overflowed else 0)
            assert written.first_wall == entry.enqueued_wall
            assert not written.talking
        elif after.phase is Phase.CONNECTED and after.leg is not None:
            # A talk: the entry it came from, the agent's leg and when the agent answered,
            # for the next engine to carry the talk on.
            talk = after.talking
            assert talk is not None
            assert written is not None, "a talk without its place"
            assert (written.entry_id, written.queue) == (talk.entry_id, talk.queue.name)
            assert (written.talk_agent, written.talk_leg) == (after.leg.agent_id, after.leg.leg_id)
            assert written.talk_wall == after.talk_wall
            assert written.first_wall == talk.enqueued_wall
        else:
            assert written is None, f"{after.phase}: {written} written, no entry listed"
        if after.phase is Phase.CONNECTED:
            assert not guarded, "a talk could be cut by the safeguard"
        elif after.phase is not Phase.JOINING:
            assert guarded, f"{after.phase}: nobody would release the caller"


@RUNS
@given(runs())
def test_no_orphans_and_replies_end_their_batch(s: Script) -> None:
    dialled: set[str] = set()
    finished: set[str] = set()
    started: set[str] = set()
    done: set[str] = set()
    for h in s.history:
        event, cmds, before, after = h.event, h.commands, h.before, h.after
        if isinstance(event, Dialled) and event.failure is not None:
            finished.add(event.leg_id)  # never rang
        if isinstance(event, AgentLegEnded):
            finished.add(event.leg_id)
        if isinstance(event, TimerFired) and event.timer_id not in after.timers:
            done.add(event.timer_id)  # taken (not refused while a reply was awaited)
        awaited = [c for c in cmds if isinstance(c, REPLIED)]
        assert len(awaited) <= 1
        if awaited:
            assert cmds[-1] is awaited[0]
            assert after.pending is not None
        elif after.phase is not Phase.ENDED and before is not None:
            # No reply asked: the awaited one is still awaited (the event was refused, or a
            # prompt failed meanwhile), or none is.
            refused = before.pending is not None and not isinstance(event, _REPLIES)
            assert after.pending is (before.pending if refused else None)
        for c in cmds:
            if isinstance(c, Dial):
                dialled.add(c.leg_id)
            elif isinstance(c, HangupAgent):
                finished.add(c.leg_id)
            elif isinstance(c, StartTimer):
                assert c.timer_id not in started, "a timer id used twice"
                started.add(c.timer_id)
            elif isinstance(c, CancelTimer):
                assert c.timer_id in started
                assert c.timer_id not in done, "cancelled twice, or after it fired"
                done.add(c.timer_id)
    if s.state.handed_over and s.state.leg is not None:
        # A talk handed over at a graceful stop: its leg talks on, for the next engine.
        finished.add(s.state.leg.leg_id)
    assert dialled <= finished, f"legs left ringing or talking: {dialled - finished}"
    assert s.state.timers == ()
    assert started <= done, f"timers left running: {started - done}"


@RUNS
@given(runs())
def test_the_state_is_plain_data_all_along(s: Script) -> None:
    for h in s.history:
        _plain(h.after)
    for phase in sorted({h.after.phase.value for h in s.history}):
        event(f"reached {phase}")
    assert pickle.loads(pickle.dumps(s.state)) == s.state


def _plain(value: object) -> None:
    if value is None or isinstance(value, str | int | float | bool | datetime | enum.Enum):
        return
    if isinstance(value, tuple):
        for v in value:
            _plain(v)
        return
    assert dataclasses.is_dataclass(value), value
    assert not isinstance(value, type), value
    params = type(value).__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen, f"{type(value).__name__} is not frozen"
    for f in dataclasses.fields(value):
        _plain(getattr(value, f.name))

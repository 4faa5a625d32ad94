from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.events import (
    CallAnswered,
    CallEnded,
    CallerHungUp,
    CallResynced,
    DigitPressed,
    PromptFinished,
    PromptStarted,
)
from ivr.greeting import (
    Answer,
    CheckPrompt,
    CommandFailed,
    GreetingEvent,
    GreetingState,
    Hangup,
    Phase,
    Play,
    Silence,
    Start,
    step,
)
from ivr.model import GreetingFlow

T = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
FLOW = GreetingFlow("Collections", ("sound:hello-world",), "en", "completed")
CID = "1700000000.1"
PID = f"{CID}-greeting"


def at(phase: Phase, **kw: object) -> GreetingState:
    return replace(GreetingState(CID, FLOW), phase=phase, **kw)  # type: ignore[arg-type]


ENDED = CallEnded(CID, 16, "Normal Clearing", T)

TABLE: list[tuple[str, GreetingState, GreetingEvent, Phase, list[object], str | None]] = [
    ("start answers", at(Phase.OFFERED), Start(T), Phase.ANSWERING, [Answer()], None),
    (
        "answered plays the greeting",
        at(Phase.ANSWERING),
        CallAnswered(CID, T),
        Phase.PLAYING,
        [Play(PID, ("sound:hello-world",), "en")],
        None,
    ),
    (
        "greeting done hangs up",
        at(Phase.PLAYING),
        PromptFinished(CID, PID, T),
        Phase.HANGING_UP,
        [Hangup("normal")],
        "completed",
    ),
    (
        "another prompt's end is ignored",
        at(Phase.PLAYING),
        PromptFinished(CID, "other", T),
        Phase.PLAYING,
        [],
        None,
    ),
    (
        "prompt start changes nothing",
        at(Phase.PLAYING),
        PromptStarted(CID, PID, T),
        Phase.PLAYING,
        [],
        None,
    ),
    (
        "a digit changes nothing",
        at(Phase.PLAYING),
        DigitPressed(CID, "1", 100, T),
        Phase.PLAYING,
        [],
        None,
    ),
    (
        "caller hangs up mid-greeting",
        at(Phase.PLAYING),
        CallerHungUp(CID, 16, T),
        Phase.CALLER_GONE,
        [],
        "caller_hangup",
    ),
    (
        "caller gone then channel destroyed",
        at(Phase.CALLER_GONE, end_reason="caller_hangup"),
        ENDED,
        Phase.ENDED,
        [],
        "caller_hangup",
    ),
    (
        "our hang-up confirmed keeps our reason",
        at(Phase.HANGING_UP, end_reason="completed"),
        ENDED,
        Phase.ENDED,
        [],
        "completed",
    ),
    (
        "a caller's BYE that cut the prompt short wins over 'completed'",
        at(Phase.HANGING_UP, end_reason="completed"),
        CallerHungUp(CID, 16, T),
        Phase.HANGING_UP,
        [],
        "caller_hangup",
    ),
    ("destroyed while answering", at(Phase.ANSWERING), ENDED, Phase.ENDED, [], "caller_hangup"),
    (
        "asterisk restart names itself",
        at(Phase.PLAYING),
        CallEnded(CID, 0, "asterisk restart", T, reason="asterisk_restart"),
        Phase.ENDED,
        [],
        "asterisk_restart",
    ),
    (
        "a failed command hangs up",
        at(Phase.ANSWERING),
        CommandFailed("Answer", T),
        Phase.HANGING_UP,
        [Hangup("normal")],
        "engine_error",
    ),
    (
        "silence hangs up",
        at(Phase.PLAYING),
        Silence(T),
        Phase.HANGING_UP,
        [Hangup("normal")],
        "timeout",
    ),
    (
        "after a reconnect the machine asks whether its prompt still plays",
        at(Phase.PLAYING),
        CallResynced(CID, T),
        Phase.PLAYING,
        [CheckPrompt(PID)],
        None,
    ),
    (
        "a resync while hanging up changes nothing",
        at(Phase.HANGING_UP, end_reason="completed"),
        CallResynced(CID, T),
        Phase.HANGING_UP,
        [],
        "completed",
    ),
    (
        "events after the end change nothing",
        at(Phase.ENDED, end_reason="completed"),
        CallAnswered(CID, T),
        Phase.ENDED,
        [],
        "completed",
    ),
]


@pytest.mark.parametrize(
    ("name", "state", "event", "phase", "commands", "reason"), TABLE, ids=[row[0] for row in TABLE]
)
def test_greeting_step_table(
    name: str,
    state: GreetingState,
    event: GreetingEvent,
    phase: Phase,
    commands: list[object],
    reason: str | None,
) -> None:
    new, cmds = step(state, event)
    assert new.phase is phase
    assert cmds == commands
    assert new.end_reason == reason


def test_unknown_number_flow_records_its_own_reason() -> None:
    flow = GreetingFlow("unknown-number", ("sound:sambung/unknown-number",), "en", "unknown_number")
    state = replace(GreetingState(CID, flow), phase=Phase.PLAYING)
    new, cmds = step(state, PromptFinished(CID, PID, T))
    assert new.end_reason == "unknown_number"
    assert cmds == [Hangup("normal")]


events = st.sampled_from(
    [
        Start(T),
        CallAnswered(CID, T),
        PromptStarted(CID, PID, T),
        PromptFinished(CID, PID, T),
        DigitPressed(CID, "5", 80, T),
        CallerHungUp(CID, 16, T),
        ENDED,
        Silence(T),
        CommandFailed("Play", T),
    ]
)


@given(st.lists(events, max_size=30))
def test_any_event_sequence_keeps_the_machine_sane(seq: list[GreetingEvent]) -> None:
    state = GreetingState(CID, FLOW)
    answers = plays = 0
    for ev in seq:
        before = state
        state, cmds = step(state, ev)
        answers += sum(isinstance(c, Answer) for c in cmds)
        plays += sum(isinstance(c, Play) for c in cmds)
        if before.phase is Phase.ENDED:
            assert state == before
            assert cmds == []
        if state.phase is Phase.ENDED:
            assert state.end_reason is not None
        if before.phase in (Phase.CALLER_GONE, Phase.HANGING_UP):
            # Once the call is going, nothing new is started on it.
            assert not any(isinstance(c, Answer | Play) for c in cmds)
    assert answers <= 1
    assert plays <= 1

"""A hotline's greeting is an IVR flow (``sambung/ivr/greeting.py``) run by the IVR's own machine.

The table drives ``ivr/menu.py`` with the greeting flow as the call task does, and checks what
the caller hears and the end reason each path leaves, with the call outcome that reason counts
as in the metrics.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sambung.engine.calls import call_outcome
from sambung.engine.events import CallEnded, CallerHungUp, DigitPressed, PromptFinished
from sambung.ivr.greeting import UNKNOWN_NUMBER_FLOW, greeting_flow
from sambung.ivr.menu import (
    Command,
    Hangup,
    IvrEvent,
    IvrState,
    Phase,
    Play,
    StopPrompts,
    start,
    step,
)
from sambung.ivr.runner import outcome_of

CID = "1700000000.1"
T = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
HOTLINE = greeting_flow("collections", ("1500",), ("sound:hello-world",), "en", "completed")
UNKNOWN = greeting_flow(UNKNOWN_NUMBER_FLOW, (), ("sound:sambung/unknown",), "en", "unknown_number")


class Call:
    def __init__(self, flow_name: str = "hotline") -> None:
        flow = HOTLINE if flow_name == "hotline" else UNKNOWN
        self.state, self.log = start(CID, flow, T, {"caller_number": "0811", "did": "1500"})
        self.log = list(self.log)

    def send(self, event: IvrEvent) -> list[Command]:
        self.state, cmds = step(self.state, event)
        self.log.extend(cmds)
        return cmds

    def finish_prompts(self) -> None:
        while self.state.playing:
            self.send(PromptFinished(CID, self.state.playing[0], T))


def ended(state: IvrState) -> tuple[Phase, str | None]:
    return state.phase, state.end_reason


def test_the_greeting_plays_its_prompts_in_the_hotlines_language() -> None:
    call = Call()
    plays = [c for c in call.log if isinstance(c, Play)]
    assert [(p.media, p.language) for p in plays] == [(("sound:hello-world",), "en")]
    assert call.state.language == "en"


@pytest.mark.parametrize(
    ("flow", "script", "reason", "outcome"),
    [
        ("hotline", "heard", "completed", "completed"),
        ("hotline", "hung_up_mid_greeting", "caller_abandoned_ivr", "abandoned"),
        ("hotline", "destroyed_mid_greeting", "caller_abandoned_ivr", "abandoned"),
        ("hotline", "key_then_heard", "completed", "completed"),
        ("unknown", "heard", "unknown_number", "refused"),
        ("unknown", "hung_up_mid_greeting", "caller_abandoned_ivr", "abandoned"),
        ("hotline", "asterisk_restart", "asterisk_restart", "lost"),
    ],
)
def test_greeting_paths(flow: str, script: str, reason: str, outcome: str) -> None:
    call = Call(flow)
    match script:
        case "heard":
            call.finish_prompts()
            assert call.log[-1] == Hangup(reason)  # the flow hangs up once the message ends
            call.send(CallEnded(CID, 16, "Normal Clearing", T))
        case "key_then_heard":
            # A key press does not cut the greeting short: it is no menu.
            cmds = call.send(DigitPressed(CID, "1", 100, T))
            assert not any(isinstance(c, StopPrompts) for c in cmds)
            assert call.state.playing
            call.finish_prompts()
            call.send(CallEnded(CID, 16, "Normal Clearing", T))
        case "hung_up_mid_greeting":
            call.send(CallerHungUp(CID, 16, T))
        case "destroyed_mid_greeting":
            call.send(CallEnded(CID, 16, "Normal Clearing", T))
        case "asterisk_restart":
            call.send(CallEnded(CID, 0, "asterisk restart", T, reason="asterisk_restart"))
    assert ended(call.state) == (Phase.ENDED, reason)
    assert call_outcome(reason, (reason, outcome_of(reason))) == outcome


def test_the_greeting_flow_has_a_stable_version_that_follows_its_content() -> None:
    again = greeting_flow("collections", ("1500",), ("sound:hello-world",), "en", "completed")
    other = greeting_flow("collections", ("1500",), ("sound:goodbye",), "en", "completed")
    assert HOTLINE.version == again.version != other.version


EVENTS = st.sampled_from(["prompt", "digit", "hangup", "destroyed"])


@given(st.lists(EVENTS, max_size=12))
def test_any_event_order_ends_once_and_says_nothing_after_the_end(script: list[str]) -> None:
    call = Call()
    ended_at: int | None = None
    for kind in script:
        match kind:
            case "prompt":
                if call.state.playing:
                    call.send(PromptFinished(CID, call.state.playing[0], T))
            case "digit":
                call.send(DigitPressed(CID, "5", 100, T))
            case "hangup":
                call.send(CallerHungUp(CID, 16, T))
            case "destroyed":
                call.send(CallEnded(CID, 16, "Normal Clearing", T))
        if call.state.phase is Phase.ENDED and ended_at is None:
            ended_at = len(call.log)
    if ended_at is not None:
        assert call.log[ended_at:] == []  # nothing is commanded after the end
        assert call.state.end_reason in {"completed", "caller_abandoned_ivr"}
    hangups = [c for c in call.log if isinstance(c, Hangup)]
    assert len(hangups) <= 1

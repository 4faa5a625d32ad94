"""Pure state machine of a greeting call: answer, play, hang up.

``step(state, event) -> (state, commands)`` with no I/O and no clock reads; the call task runs
the commands. It is the smallest flow the engine has and the shape every later flow (menus,
queues) takes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from engine.events import (
    CallAnswered,
    CallEnded,
    CallerHungUp,
    CallEvent,
    CallResynced,
    PromptFinished,
)
from ivr.model import GreetingFlow


class Phase(enum.Enum):
    OFFERED = "offered"
    ANSWERING = "answering"
    PLAYING = "playing"
    HANGING_UP = "hanging_up"
    CALLER_GONE = "caller_gone"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Start:
    """The call task took the call and is ready to act."""

    at: datetime


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """A command the call task ran failed for a reason other than the call being gone."""

    command: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Silence:
    """No event came for too long: the call is presumed stuck."""

    at: datetime


# Every call event is accepted; the ones a greeting does not care about (digits) change nothing.
GreetingEvent = CallEvent | Start | CommandFailed | Silence


@dataclass(frozen=True, slots=True)
class Answer:
    pass


@dataclass(frozen=True, slots=True)
class Play:
    prompt_id: str
    media: tuple[str, ...]
    language: str


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: str = "normal"


@dataclass(frozen=True, slots=True)
class CheckPrompt:
    """Ask whether the prompt still plays; the answer comes back as PromptFinished if not."""

    prompt_id: str


Command = Answer | Play | Hangup | CheckPrompt


@dataclass(frozen=True, slots=True)
class GreetingState:
    call_id: str
    flow: GreetingFlow
    phase: Phase = Phase.OFFERED
    answered_at: datetime | None = None
    end_reason: str | None = None

    @property
    def prompt_id(self) -> str:
        # Deterministic, so a reconnecting engine could look the playback up by id.
        return f"{self.call_id}-greeting"


def step(state: GreetingState, event: GreetingEvent) -> tuple[GreetingState, list[Command]]:
    if state.phase is Phase.ENDED:
        return state, []  # events after the end (late playback events) change nothing
    match event:
        case CallEnded(reason=reason):
            why = reason or state.end_reason or "caller_hangup"
            return replace(state, phase=Phase.ENDED, end_reason=why), []
        case CallerHungUp():
            # The adapter reports only the far end's hang-ups, never the echo of our own. One
            # seen while we are hanging up means the caller left first: Asterisk reports a
            # prompt cut short by a BYE as finished ("done") just before the hang-up request,
            # so the prompt's end alone cannot tell a completed greeting from an abandoned one.
            if state.phase is Phase.HANGING_UP:
                return replace(state, end_reason="caller_hangup"), []
            return replace(state, phase=Phase.CALLER_GONE, end_reason="caller_hangup"), []
        case _ if state.phase is Phase.CALLER_GONE or state.phase is Phase.HANGING_UP:
            return state, []
        case Start() if state.phase is Phase.OFFERED:
            return replace(state, phase=Phase.ANSWERING), [Answer()]
        case CallAnswered(at=at) if state.phase is Phase.ANSWERING:
            play = Play(state.prompt_id, state.flow.prompts, state.flow.language)
            return replace(state, phase=Phase.PLAYING, answered_at=at), [play]
        case PromptFinished(prompt_id=pid) if (
            state.phase is Phase.PLAYING and pid == state.prompt_id
        ):
            done = replace(state, phase=Phase.HANGING_UP, end_reason=state.flow.completed_reason)
            return done, [Hangup("normal")]
        case CallResynced() if state.phase is Phase.PLAYING:
            return state, [CheckPrompt(state.prompt_id)]
        case CommandFailed():
            return replace(state, phase=Phase.HANGING_UP, end_reason="engine_error"), [
                Hangup("normal")
            ]
        case Silence():
            return replace(state, phase=Phase.HANGING_UP, end_reason="timeout"), [Hangup("normal")]
        case _:
            return state, []

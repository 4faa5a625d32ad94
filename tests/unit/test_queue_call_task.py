"""acd/call.py, the call task around the queue machine, without Asterisk: a caller queues, an
agent answers, and whoever ends it (the caller, the agent, the engine) the agent is released
and every fact is written, with the agent's screen told as before."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from acd.facts import (
    LegAnsweredFact,
    LegEndedFact,
    LegStartedFact,
    QueueEnteredFact,
    QueueLeftFact,
)
from engine.calls import CallInbox
from engine.events import CallEnded, LegEnded, LegHeld
from engine.facts import CallEndedFact
from tests.unit.test_acd_callbacks import (
    GOOD,
    TUESDAY_10,
    FakeTel,
    Rig,
    caller,
    hang_up,
    rig,
    settle,
    start,
)


@dataclass
class LegTel(FakeTel):
    """Records the agents' legs hung up; the first hang-up may hang until cancelled."""

    legs_hung_up: list[str] = field(default_factory=list)
    stall_first_leg_hangup: bool = False

    async def hangup_leg(self, leg_id: str, reason: str = "normal") -> None:
        if self.stall_first_leg_hangup:
            self.stall_first_leg_hangup = False
            await asyncio.Event().wait()
        self.legs_hung_up.append(leg_id)


def answering(**queue: Any) -> tuple[Rig, LegTel, list[dict[str, Any]]]:
    r = rig(TUESDAY_10, **queue)
    tel = LegTel(legs={"PJSIP/agent1001": "answer"})
    r.tel = tel
    r.runner.tel = tel
    r.callbacks.tel = tel
    heard: list[dict[str, Any]] = []
    r.runner.hub.taps.append(heard.append)
    r.acd.agents.login("siti", "api")
    return r, tel, heard


def state_of(r: Rig, agent: str = "siti") -> str:
    return r.acd.agents.get(agent).state.value


async def connected_call(**queue: Any) -> tuple[Rig, LegTel, list[dict[str, Any]], Any, CallInbox]:
    r, tel, heard = answering(**queue)
    task, inbox = await start(r, caller("c1", GOOD))
    await settle()
    assert state_of(r) == "on_call"
    return r, tel, heard, task, inbox


async def test_given_a_ready_agent_then_connected_and_after_the_caller_hangs_up_wrap_up() -> None:
    r, tel, heard, task, inbox = await connected_call()
    assert [m["type"] for m in heard] == ["offered", "connected"]
    (entry_id,) = {m["call"]["entry_id"] for m in heard}
    assert heard[1]["call"]["call_id"] == "c1"
    assert heard[1]["call"]["queue"] == "support"
    assert await hang_up(task, inbox, "c1") == "caller_hung_up"
    assert heard[-1]["type"] == "call_ended"
    assert heard[-1]["wrap_up_seconds"] == 10.0
    assert state_of(r) == "wrap_up"
    (leg,) = tel.legs_hung_up
    kinds = [type(f).__name__ for f in r.facts]
    assert kinds == [
        "QueueEnteredFact",
        "LegStartedFact",
        "LegAnsweredFact",
        "QueueLeftFact",
        "LegEndedFact",
        "CallEndedFact",
    ]
    left = next(f for f in r.facts if isinstance(f, QueueLeftFact))
    assert (left.entry_id, left.outcome, left.agent_id) == (entry_id, "answered", "siti")
    ended = next(f for f in r.facts if isinstance(f, LegEndedFact))
    assert (ended.leg_id, ended.outcome) == (leg, "answered")
    assert r.acd.entries == {}


async def test_given_a_talk_when_the_agent_hangs_up_then_the_caller_is_hung_up() -> None:
    r, tel, heard, task, inbox = await connected_call()
    leg = next(f for f in r.facts if isinstance(f, LegStartedFact)).leg_id
    inbox.put(LegHeld("c1", leg, True, datetime.now(UTC)))
    inbox.put(LegHeld("c1", leg, False, datetime.now(UTC)))
    inbox.put(LegEnded("c1", leg, 16, "Normal Clearing", datetime.now(UTC), answered=True))
    assert await asyncio.wait_for(task, 5) == "agent_hung_up"
    assert tel.hung_up == ["c1"]
    assert [m["type"] for m in heard][2:] == ["hold", "unhold", "call_ended"]
    assert state_of(r) == "wrap_up"
    end = r.facts[-1]
    assert isinstance(end, CallEndedFact)
    assert end.end_reason == "agent_hung_up"


async def test_given_a_talk_when_the_engine_stops_then_the_agent_and_both_lines_are_released() -> (
    None
):
    r, tel, heard, task, _ = await connected_call()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(tel.legs_hung_up) == 1
    assert tel.hung_up == ["c1"]
    assert heard[-1]["type"] == "call_ended"
    assert state_of(r) == "wrap_up"


async def test_given_the_engine_stops_during_the_legs_hang_up_then_what_was_owed_is_done() -> None:
    r, tel, heard, task, inbox = await connected_call()
    tel.stall_first_leg_hangup = True
    inbox.put(LegEnded("c9", "nobody", 16, "", datetime.now(UTC)))  # not ours: ignored
    inbox.put(CallEnded("c1", 16, "Normal Clearing", datetime.now(UTC)))
    await settle()
    assert not task.done()  # the leg's hang-up hangs
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # What the caller's hang-up owed was carried out even so: the leg, the agent, the facts.
    assert len(tel.legs_hung_up) == 1
    assert state_of(r) == "wrap_up"
    assert heard[-1]["type"] == "call_ended"
    assert [type(f).__name__ for f in r.facts][-1] == "LegEndedFact"


async def test_given_the_engine_stops_while_waiting_then_the_entry_is_lost_not_abandoned() -> None:
    r = rig(TUESDAY_10)
    task, _ = await start(r, caller("c1", GOOD))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    left = [f for f in r.facts if isinstance(f, QueueLeftFact)]
    assert [f.outcome for f in left] == ["lost"]
    assert r.acd.entries == {}
    assert r.tel.hung_up == ["c1"]


async def test_given_a_whisper_then_the_agent_hears_it_before_the_caller_is_bridged() -> None:
    r, tel, _, task, inbox = await connected_call(whisper=["sound:sambung/whisper"])
    assert ("sound:sambung/whisper",) in [media for _, media in tel.played]
    assert any(isinstance(f, LegAnsweredFact) for f in r.facts)
    entered = [f for f in r.facts if isinstance(f, QueueEnteredFact)]
    assert len(entered) == 1
    await hang_up(task, inbox, "c1")

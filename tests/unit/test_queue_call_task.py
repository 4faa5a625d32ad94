"""acd/call.py, the call task around the queue machine, without Asterisk: a caller queues, an
agent answers, and whoever ends it (the caller, the agent, the engine) the agent is released
and every fact is written, with the agent's screen told as before."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from sambung.acd import events
from sambung.acd.events import AgentConnected, AgentEvent, AgentOffered, CallHeld, CallUnheld
from sambung.acd.facts import (
    LegAnsweredFact,
    LegEndedFact,
    LegStartedFact,
    QueueEnteredFact,
    QueueLeftFact,
)
from sambung.asterisk import talk_guard
from sambung.engine.calls import CallInbox
from sambung.engine.events import CallEnded, LegEnded, LegHeld
from sambung.engine.facts import CallEndedFact
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


def answering(**queue: Any) -> tuple[Rig, LegTel, list[AgentEvent]]:
    r = rig(TUESDAY_10, **queue)
    tel = LegTel(legs={"PJSIP/agent1001": "answer"})
    r.tel = tel
    r.runner.tel = tel
    r.runner.safeguard.tel = tel
    r.callbacks.tel = tel
    heard: list[AgentEvent] = []
    r.runner.hub.subscribe(AgentEvent, heard.append)
    r.acd.agents.login("siti", "api")
    return r, tel, heard


def state_of(r: Rig, agent: str = "siti") -> str:
    return r.acd.agents.get(agent).state.value


async def connected_call(**queue: Any) -> tuple[Rig, LegTel, list[AgentEvent], Any, CallInbox]:
    r, tel, heard = answering(**queue)
    task, inbox = await start(r, caller("c1", GOOD))
    await settle()
    assert state_of(r) == "on_call"
    return r, tel, heard, task, inbox


async def test_given_a_ready_agent_then_connected_and_after_the_caller_hangs_up_wrap_up() -> None:
    r, tel, heard, task, inbox = await connected_call()
    offered, connected = heard
    assert isinstance(offered, AgentOffered)
    assert isinstance(connected, AgentConnected)
    (entry_id,) = {offered.call.entry_id, connected.call.entry_id}
    assert (connected.call.call_id, connected.call.queue) == ("c1", "support")
    assert await hang_up(task, inbox, "c1") == "caller_hung_up"
    told = heard[-1]
    assert isinstance(told, events.CallEnded)
    assert (told.call_id, told.wrap_up_seconds) == ("c1", 10.0)
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


async def test_given_a_talk_then_each_side_names_the_other_for_asterisks_talk_guard() -> None:
    # Should one side hang up while no engine runs, Asterisk ends the other
    # (asterisk/talk_guard.py): the leg names its caller from the dial, the caller its leg
    # once put through.
    r, tel, _, task, inbox = await connected_call()
    leg = next(f for f in r.facts if isinstance(f, LegStartedFact)).leg_id
    assert tel.variables[leg][talk_guard.TALK_OF] == "c1"
    assert tel.variables[leg]["CHANNEL(hangup_handler_push)"] == talk_guard.handler("c1")
    assert tel.guarded == [("c1", leg)]
    await hang_up(task, inbox, "c1")


async def test_given_a_talk_when_the_agent_hangs_up_then_the_caller_is_hung_up() -> None:
    r, tel, heard, task, inbox = await connected_call()
    leg = next(f for f in r.facts if isinstance(f, LegStartedFact)).leg_id
    inbox.put(LegHeld("c1", leg, True, datetime.now(UTC)))
    inbox.put(LegHeld("c1", leg, False, datetime.now(UTC)))
    inbox.put(LegEnded("c1", leg, 16, "Normal Clearing", datetime.now(UTC), answered=True))
    assert await asyncio.wait_for(task, 5) == "agent_hung_up"
    assert tel.hung_up == ["c1"]
    assert [type(m) for m in heard][2:] == [CallHeld, CallUnheld, events.CallEnded]
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
    assert isinstance(heard[-1], events.CallEnded)
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
    assert isinstance(heard[-1], events.CallEnded)
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


# ---- across engines: the place on the channel, handing over, taking over ------------------


async def test_given_a_waiting_caller_then_its_place_and_safeguard_are_on_its_channel() -> None:
    r = rig(TUESDAY_10)
    task, inbox = await start(r, caller("c1", GOOD))
    (entry,) = r.acd.entries.values()
    ((cid, written),) = r.tel.places
    assert cid == "c1"
    assert written.startswith(f"1;e={entry.entry_id};q=support;k=caller;")
    assert GOOD not in written
    assert r.tel.safeguards == [("c1", 120.0)]
    assert await hang_up(task, inbox, "c1") == "caller_abandoned_queue"


async def test_given_a_talk_then_its_safeguard_is_off_before_it_can_be_cut() -> None:
    _, tel, _, task, inbox = await connected_call()
    assert tel.safeguards == [("c1", 120.0), ("c1", 0)]
    # The place now says the talk (agent and leg), for a next engine to carry it on.
    call_id, place = tel.places[-1]
    assert call_id == "c1"
    assert ";ta=siti;tl=leg-" in place
    await hang_up(task, inbox, "c1")


async def test_given_a_stop_that_hands_over_then_the_waiting_caller_is_left_as_it_was() -> None:
    r = rig(TUESDAY_10)
    task, inbox = await start(r, caller("c1", GOOD))
    (entry,) = r.acd.entries.values()
    r.runner.hand_over([inbox])
    assert await asyncio.wait_for(task, 5) == "handed_over"
    assert inbox.handed_over
    # Nobody hung up, nothing closed: no leave, no end of call; the ACD let the entry go.
    assert r.tel.hung_up == []
    assert [type(f).__name__ for f in r.facts] == ["QueueEnteredFact"]
    assert r.acd.entries == {}
    # The place stays written, and the safeguard got the whole bound once more.
    assert r.tel.places[-1][1].startswith(f"1;e={entry.entry_id};")
    assert r.tel.safeguards == [("c1", 120.0), ("c1", 120.0)]
    assert r.runner.safeguard.guarded == 0


async def test_given_a_call_resumed_from_its_place_then_served_and_left_once() -> None:
    from sambung.acd.place import PlaceTag

    r, tel, heard = answering()
    r.acd.agents.pause("siti", "break", "api")
    now = r.wall()
    tag = PlaceTag("c7-q4", "support", "caller", 0, now, now, "en", generation=1)
    entry = r.acd.adopted_entry("c7", tag, caller_number=GOOD, did="1600")
    inbox = CallInbox("c7", r.metrics)
    tel.inboxes["c7"] = inbox
    entry.inbox = inbox
    r.acd.readmit(entry)
    info = caller("c7", GOOD)
    task = asyncio.create_task(r.runner.resume(info, entry, tag, inbox))
    await settle()
    assert tel.places[-1][1].startswith("1;e=c7-q4;q=support;k=caller;")
    assert ";g=2" in tel.places[-1][1]
    r.acd.agents.act("siti", "ready", "", "api")
    await settle()
    assert state_of(r) == "on_call"
    offered = next(m for m in heard if isinstance(m, AgentOffered))
    assert (offered.call.entry_id, offered.call.caller_number) == ("c7-q4", GOOD)
    assert await hang_up(task, inbox, "c7") == "caller_hung_up"
    kinds = [type(f).__name__ for f in r.facts]
    assert "QueueEnteredFact" not in kinds  # entered by the engine before
    (left,) = [f for f in r.facts if isinstance(f, QueueLeftFact)]
    assert (left.entry_id, left.outcome, left.agent_id) == ("c7-q4", "answered", "siti")
    # A later entry of this call gets an id its earlier life cannot have used.
    assert r.acd.new_entry("c7", "support", inbox=None).entry_id == "c7-q5"

"""sambung/acd/queue_machine.py across engines: the caller's place written on its channel, a call
handed over by a stopping engine, and a call resumed by the next one at its original place."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from sambung.acd.facts import LegEndedFact, QueueEnteredFact
from sambung.acd.place import PlaceTag
from sambung.acd.queue_machine import (
    AgentHold,
    AgentLegEnded,
    CallerGone,
    Command,
    HandOver,
    HandOverAsked,
    Hangup,
    HangupAgent,
    LeaveQueue,
    MarkPlace,
    NotifyCall,
    Phase,
    Play,
    PositionKnown,
    Record,
    RelaxEntry,
    ReleaseAgent,
    StartTimer,
    TalkStarted,
    TransferAsked,
)
from tests.unit.queue_script import (
    BASE,
    CID,
    Script,
    connected,
    offering,
    rules,
    shorts,
    waiting,
)

SUPPORT = rules(announce_every_seconds=30, max_wait_seconds=600)
SALES = rules("sales")


def marks(cmds: list[Command]) -> list[MarkPlace]:
    return [c for c in cmds if isinstance(c, MarkPlace)]


def timers(cmds: list[Command]) -> dict[str, float]:
    return {c.timer_id.partition(":")[0]: c.seconds for c in cmds if isinstance(c, StartTimer)}


def left(s: Script) -> list[tuple[str, str]]:
    return [
        (c.entry_id, c.outcome) for h in s.history for c in h.commands if isinstance(c, LeaveQueue)
    ]


def entered(s: Script) -> list[str]:
    return [
        c.fact.entry_id
        for h in s.history
        for c in h.commands
        if isinstance(c, Record) and isinstance(c.fact, QueueEnteredFact)
    ]


# ---- the place on the channel -------------------------------------------------------------


def test_the_place_is_written_when_the_entry_waits_and_says_no_more_than_its_place() -> None:
    s = Script.start(SUPPORT, caller="0812999888")
    s.wait(3).join()
    (mark,) = marks(s.history[-1].commands)
    assert mark.safeguard is True
    tag = mark.place
    assert tag is not None
    assert (tag.entry_id, tag.queue, tag.kind) == (f"{CID}-q1", "support", "caller")
    assert tag.priority == 0
    assert tag.first_wall == tag.entry_wall == BASE + timedelta(seconds=3)
    assert (tag.language, tag.relax_step, tag.generation, tag.pinned_agent) == ("en", 0, 0, None)
    assert "0812999888" not in repr(tag)
    assert "Ani" not in repr(tag)
    # Before the wait nothing was written: the call had no place yet.
    assert all(not marks(h.commands) for h in s.history[:-1])


def test_the_safeguard_is_off_while_talking_and_the_place_says_the_talk() -> None:
    s = connected(SUPPORT)
    connect = next(h for h in s.history if h.after.phase is Phase.CONNECTED)
    (mark,) = marks(connect.commands)
    assert mark.safeguard is False  # a talk is never cut by the safeguard
    tag = mark.place
    assert tag is not None
    assert tag.talking
    leg = connect.after.leg
    assert leg is not None
    assert (tag.entry_id, tag.talk_agent, tag.talk_leg) == (f"{CID}-q1", leg.agent_id, leg.leg_id)
    # When the agent answered, on the wall clock.
    assert leg.answered_at is not None
    assert tag.talk_wall == BASE + timedelta(seconds=leg.answered_at)  # the script: wall = BASE + t
    # The place goes first where the entry left: the mark comes after LeaveQueue answered.
    kinds = [type(c) for c in connect.commands]
    assert kinds.index(LeaveQueue) < kinds.index(MarkPlace)


def test_a_transfer_from_a_talk_writes_the_new_place_and_guards_again() -> None:
    s = connected(SUPPORT, SALES)
    s.send(TransferAsked("sales", None, s.wait(10).at()))
    s.join()
    tag = s.state.marked
    assert tag is not None
    assert (tag.entry_id, tag.queue, tag.kind) == (f"{CID}-q2", "sales", "transfer")
    assert tag.first_wall == BASE  # the caller's first place is kept
    assert tag.entry_wall > tag.first_wall
    assert s.state.guarded


def test_an_overflow_that_relaxes_writes_the_relaxation_step() -> None:
    q = rules(overflow={"action": "relax"}, max_wait_seconds=60)
    s = waiting(q)
    cmds = s.wait(60).fire("max_wait")
    (mark,) = marks(cmds)
    assert mark.place is not None
    assert mark.place.relax_step == 1


def test_the_mark_comes_before_a_command_that_awaits_its_reply() -> None:
    s = Script.start(rules(callback_key="1", greeting=["sound:sambung/welcome"]))
    s.join()
    cmds = s.history[-1].commands
    assert type(cmds[-1]).__name__ == "ScreenCallback"
    assert any(isinstance(c, MarkPlace) for c in cmds[:-1])


def test_a_full_queue_on_arrival_writes_no_place() -> None:
    s = Script.start(rules(overflow={"action": "hangup"})).join(full=True)
    assert s.state.phase is Phase.BYE
    assert s.state.marked is None
    assert s.state.guarded  # the goodbye too ends even if the engine dies meanwhile


# ---- resuming -----------------------------------------------------------------------------


def test_a_resumed_call_waits_at_its_place_with_its_times_counted_from_the_channel() -> None:
    s = Script.resumed(SUPPORT, waited=95.0, generation=2)
    cmds = s.history[0].commands
    assert s.state.phase is Phase.WAITING
    assert s.state.entry is not None
    assert s.state.entry.entry_id == f"{CID}-q7"
    assert s.state.first_enqueued == (-95.0, BASE - timedelta(seconds=95))
    assert timers(cmds) == {"announce": pytest.approx(25.0), "max_wait": pytest.approx(505.0)}
    (mark,) = marks(cmds)
    assert mark.safeguard is True
    assert mark.place is not None
    assert mark.place.generation == 3
    assert mark.place.first_wall == BASE - timedelta(seconds=95)
    # Its entry was entered in its earlier life: no second entry fact, no greeting again.
    assert entered(s) == []
    assert not [c for c in cmds if isinstance(c, Play)]


def test_the_maximum_wait_counts_from_the_entrys_join_not_from_the_takeover() -> None:
    s = Script.resumed(SUPPORT, waited=900.0, joined_ago=590.0)
    assert timers(s.history[0].commands)["max_wait"] == pytest.approx(10.0)
    late = Script.resumed(rules(max_wait_seconds=60, overflow={"action": "hangup"}), waited=75)
    assert timers(late.history[0].commands)["max_wait"] == 0.0
    late.fire("max_wait")
    assert late.state.phase is Phase.BYE
    assert left(late) == [(f"{CID}-q7", "overflowed")]


def test_a_relaxed_call_is_resumed_relaxed_with_its_second_wait() -> None:
    q = rules(overflow={"action": "relax"}, max_wait_seconds=60)
    s = Script.resumed(q, waited=80.0, relax_step=1)
    cmds = s.history[0].commands
    assert RelaxEntry(f"{CID}-q7") in cmds
    assert timers(cmds)["max_wait"] == pytest.approx(40.0)
    assert s.state.overflowed
    s.fire("max_wait")  # the relaxed wait is over too: goodbye
    assert s.state.phase is Phase.BYE


def test_after_a_takeover_waiting_then_offered_then_talking_and_the_entry_leaves_once() -> None:
    s = Script.resumed(SUPPORT, waited=40.0)
    s.offer()
    s.dialled()
    assert s.state.leg is not None  # ringing the agent
    s.wait(3).answer()
    s.bridged()
    talking = s.state
    assert talking.phase is Phase.CONNECTED
    assert left(s) == [(f"{CID}-q7", "answered")]
    # The channel says the talk now, one generation on: a third engine could carry it on.
    assert talking.marked is not None
    assert talking.marked.talking
    assert talking.marked.generation == 1
    s.send(CallerGone(s.wait(30).at()))
    assert s.state.phase is Phase.ENDED
    assert left(s) == [(f"{CID}-q7", "answered")]
    assert not s.state.guarded


def test_a_resumed_caller_who_hangs_up_abandons_the_adopted_entry_once() -> None:
    s = Script.resumed(SUPPORT)
    s.send(CallerGone(s.wait(5).at()))
    assert left(s) == [(f"{CID}-q7", "abandoned")]
    assert s.state.end_reason == "caller_abandoned_queue"


def test_a_transfer_after_a_takeover_makes_an_entry_the_call_never_had() -> None:
    s = Script.resumed(SUPPORT, SALES)
    s.send(TransferAsked("sales", None, s.wait(5).at()))
    s.join()
    assert left(s) == [(f"{CID}-q7", "transferred")]
    assert entered(s) == [f"{CID}-q8"]


def test_prompts_after_a_takeover_never_reuse_an_earlier_engines_playback_ids() -> None:
    s = Script.resumed(SUPPORT, waited=29.0, generation=0)
    cmds = s.wait(1).fire("announce")
    assert shorts(cmds) == ["AskPosition"]
    (play,) = [c for c in s.send(PositionKnown(2, 60.0, s.at())) if isinstance(c, Play)]
    assert play.prompt_id == f"{CID}-g1q1-announce"
    fresh = waiting(SUPPORT)
    fresh.wait(30).fire("announce")
    (first,) = [c for c in fresh.send(PositionKnown(2, 60.0, fresh.at())) if isinstance(c, Play)]
    assert first.prompt_id == f"{CID}-q1-announce"


def test_a_pinned_transfer_keeps_its_agent_across_the_takeover() -> None:
    s = Script.resumed(SUPPORT, kind="transfer", pinned="budi")
    assert s.state.marked is not None
    assert s.state.marked.pinned_agent == "budi"


# ---- handing over -------------------------------------------------------------------------


def test_a_waiting_call_is_handed_over_without_closing_anything() -> None:
    s = waiting(SUPPORT)
    tag = s.state.marked
    cmds = s.send(HandOverAsked(s.wait(10).at()))
    assert s.state.phase is Phase.ENDED
    assert s.state.handed_over
    assert s.state.end_reason == "handed_over"
    assert shorts(cmds) == ["cancel announce", "cancel max_wait", "HandOver"]
    assert HandOver(f"{CID}-q1") in cmds
    # Nothing left the queue, nobody was hung up, and the channel keeps its place.
    assert left(s) == []
    assert not any(isinstance(c, Hangup) for h in s.history for c in h.commands)
    assert s.state.marked == tag
    assert s.state.timers == ()


def test_a_ringing_offer_goes_on_and_the_call_is_handed_over_once_it_waits_again() -> None:
    s = offering(SUPPORT)
    assert s.send(HandOverAsked(s.at())) == []
    assert s.state.phase is Phase.OFFERING
    cmds = s.send(AgentLegEnded(s.leg(), 19, 480, False, s.wait(15).at()))
    assert "release offer siti rona" in shorts(cmds)
    assert shorts(cmds)[-1] == "HandOver"
    assert s.state.handed_over


def test_a_talk_is_handed_over_and_nothing_of_it_closed() -> None:
    s = connected(SUPPORT)
    cmds = s.send(HandOverAsked(s.wait(20).at()))
    assert s.state.phase is Phase.ENDED
    assert s.state.handed_over
    # Nobody hung up, the agent not released, no fact: the next engine carries the talk on.
    assert not [c for c in cmds if isinstance(c, Hangup | HangupAgent | ReleaseAgent | Record)]
    assert s.state.marked is not None
    assert s.state.marked.talking
    assert left(s) == [(f"{CID}-q1", "answered")]


def test_a_talk_whose_place_is_not_written_yet_is_handed_over_once_it_is() -> None:
    s = connected(SUPPORT)
    talking = s.state
    # As if the write had not been asked yet: the hand-over waits for the step that writes it.
    s.state = replace(talking, marked=None, handing_over=True)
    s.send(AgentHold("leg-1", True, s.wait(1).at()))
    assert s.state.handed_over
    marks_written = [c for c in s.history[-1].commands if isinstance(c, MarkPlace)]
    assert marks_written
    assert marks_written[0].place is not None
    assert marks_written[0].place.talking


def test_a_callback_is_not_handed_over() -> None:
    # Nobody is on the line: the callback is the ACD's own to make (pending_callbacks).
    s = waiting(SUPPORT, kind="callback")
    s.send(HandOverAsked(s.at()))
    assert s.state.phase is Phase.WAITING
    assert not s.state.handed_over


def test_a_dialers_live_answer_is_handed_over_like_a_caller() -> None:
    # The debtor waits in the campaign's queue; the next engine's dialer carries the line on.
    s = waiting(SUPPORT, kind="dialer")
    s.send(HandOverAsked(s.at()))
    assert s.state.handed_over
    assert isinstance(s.state.marked, PlaceTag)
    assert s.state.marked.kind == "dialer"


def test_a_resumed_call_can_be_handed_over_again() -> None:
    s = Script.resumed(SUPPORT, generation=4)
    s.send(HandOverAsked(s.wait(2).at()))
    assert s.state.handed_over
    assert isinstance(s.state.marked, PlaceTag)
    assert s.state.marked.generation == 5


# ---- a talk carried on ----------------------------------------------------------------------


def test_a_talk_taken_over_goes_on_with_its_agent_and_its_talk_time_from_the_start() -> None:
    s = Script.resumed_talk(SUPPORT, talked=45.0, agent="siti", leg="leg-old")
    first = s.history[0].commands
    assert s.state.phase is Phase.CONNECTED
    # A new segment of the recording, no announcement again; the agent's screen is told.
    # The talk's start goes along, for the earlier recording segment's start.
    began = BASE - timedelta(seconds=45)
    assert TalkStarted("siti", "leg-old", f"sambung-call-{CID}", "support", True, began) in first
    assert any(isinstance(c, NotifyCall) and c.agent_id == "siti" for c in first)
    # The place says the talk again, one generation on; no safeguard.
    (mark,) = marks(first)
    assert mark.safeguard is False
    assert mark.place is not None
    assert (mark.place.talk_leg, mark.place.generation) == ("leg-old", 1)
    # Nothing entered or left again: the entry was answered by the engine before.
    assert entered(s) == []
    assert left(s) == []
    # The agent hangs up 15 s later: the talk lasted 60 s, the agent wraps up, the caller is
    # hung up, as after any talk.
    s.send(AgentLegEnded("leg-old", 16, None, True, s.wait(15).at()))
    cmds = s.history[-1].commands
    (ended,) = [c.fact for c in cmds if isinstance(c, Record) and isinstance(c.fact, LegEndedFact)]
    assert ended.talk_seconds == pytest.approx(60.0)
    assert any(isinstance(c, ReleaseAgent) and c.agent_id == "siti" for c in cmds)
    assert any(isinstance(c, Hangup) for c in cmds)
    assert s.state.end_reason == "agent_hung_up"


def test_a_talk_taken_over_can_be_transferred_and_keeps_the_callers_first_place() -> None:
    s = Script.resumed_talk(SUPPORT, SALES, talked=20.0, waited=30.0)
    s.send(TransferAsked("sales", None, s.wait(5).at()))
    s.join()
    tag = s.state.marked
    assert tag is not None
    assert not tag.talking
    assert tag.queue == "sales"
    # The caller's first place (50 s before the takeover) is kept through the transfer.
    assert tag.first_wall == BASE - timedelta(seconds=50)
    assert s.state.guarded

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sambung.engine.calls import CallDispatcher, CallInbox, StartRecorder
from sambung.engine.events import (
    CallEnded,
    CallEvent,
    CallOffered,
    DigitPressed,
    TelephonyConnected,
    TelephonyLost,
)
from sambung.engine.facts import CallStartedFact, Fact
from sambung.engine.metrics import build_metrics

T = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def offer(cid: str) -> CallOffered:
    return CallOffered(cid, f"PJSIP/trunk-{cid}", "1500", "0811", "Budi", T)


async def test_given_a_slow_call_when_events_arrive_then_other_calls_are_not_held_up() -> None:
    seen: dict[str, list[CallEvent]] = {"a": [], "b": []}
    release = asyncio.Event()

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        if o.call_id == "a":
            await release.wait()  # a call stuck on something slow
        while (ev := await inbox.next(timeout=1)) is not None:
            seen[o.call_id].append(ev)
            if isinstance(ev, CallEnded):
                return

    async def refuse(o: CallOffered) -> None:
        raise AssertionError("not refusing")

    d = CallDispatcher(handler, refuse, build_metrics())
    d.dispatch(offer("a"))
    d.dispatch(offer("b"))
    # dispatch is synchronous: it returns without running any handler code.
    d.dispatch(DigitPressed("a", "1", 80, T))
    d.dispatch(DigitPressed("b", "2", 80, T))
    d.dispatch(CallEnded("b", 16, "Normal Clearing", T))
    assert await d.tasks.wait_empty(0.5) is False  # a is still stuck
    assert [type(e).__name__ for e in seen["b"]] == ["DigitPressed", "CallEnded"]
    assert seen["a"] == []
    d.dispatch(CallEnded("a", 16, "Normal Clearing", T))
    release.set()
    assert await d.drain(1)
    assert [e.digit for e in seen["a"] if isinstance(e, DigitPressed)] == ["1"]
    assert d.active_calls == {}


async def test_given_draining_when_a_call_arrives_then_it_is_refused() -> None:
    refused: list[str] = []

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        raise AssertionError("should not be handled")

    async def refuse(o: CallOffered) -> None:
        refused.append(o.call_id)

    d = CallDispatcher(handler, refuse, build_metrics())
    assert await d.drain(0.1)
    d.dispatch(offer("x"))
    assert await d.tasks.wait_empty(1)
    assert refused == ["x"]


async def test_end_calls_synthesises_an_end_with_a_reason_and_late_events_are_dropped() -> None:
    ends: list[CallEnded] = []
    conn: list[object] = []

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        ev = await inbox.next(timeout=1)
        assert isinstance(ev, CallEnded)
        ends.append(ev)

    async def refuse(o: CallOffered) -> None:
        pass

    d = CallDispatcher(handler, refuse, build_metrics(), on_connection=conn.append)
    d.dispatch(offer("a"))
    d.dispatch(offer("b"))
    assert d.end_calls({"a"}, "lost_while_disconnected") == 1
    assert d.end_calls(None, "asterisk_restart") == 2
    assert await d.drain(1)
    assert sorted((e.call_id, e.reason) for e in ends) == [
        ("a", "lost_while_disconnected"),
        ("b", "asterisk_restart"),
    ]
    d.dispatch(DigitPressed("a", "1", 80, T))  # no owner any more: dropped quietly
    lost = TelephonyLost("closed")
    up = TelephonyConnected("eid", T, False, False)
    d.dispatch(lost)
    d.dispatch(up)
    assert conn == [lost, up]


async def test_a_crashing_call_task_is_logged_and_does_not_affect_others() -> None:
    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        if o.call_id == "bad":
            raise RuntimeError("boom")
        await inbox.next(timeout=0.2)

    async def refuse(o: CallOffered) -> None:
        pass

    d = CallDispatcher(handler, refuse, build_metrics())
    d.dispatch(offer("bad"))
    d.dispatch(offer("good"))
    assert await d.drain(1)
    assert d.tasks.failures == 1


async def test_every_offered_call_is_recorded_once_before_its_task_runs_refused_or_not() -> None:
    facts: list[Fact] = []
    seen_at_start: list[int] = []

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        seen_at_start.append(len(facts))  # the start is on record before the feature acts

    async def refuse(o: CallOffered) -> None:
        pass

    starts = StartRecorder(facts.append, "e1", lambda: "ast1", lambda o: f"hotline-{o.did}")
    d = CallDispatcher(handler, refuse, build_metrics(), starts=starts)
    d.dispatch(offer("a"))
    d.dispatch(CallOffered("f", "PJSIP/1001-1", "*21", "1001", "", T, kind="feature"))
    d.dispatch(offer("a"))  # a duplicate offer records nothing more
    assert await d.drain(1)
    d.dispatch(offer("late"))  # refused while draining: still a call on record
    assert await d.tasks.wait_empty(1)
    assert seen_at_start == [2, 2]
    assert facts == [
        CallStartedFact(
            "a", "inbound", "PJSIP/trunk-a", "1500", "0811", "Budi", "hotline-1500", "ast1", "e1", T
        ),
        CallStartedFact(
            "f", "agent_feature", "PJSIP/1001-1", "*21", "1001", "", "hotline-*21", "ast1", "e1", T
        ),
        CallStartedFact(
            "late",
            "inbound",
            "PJSIP/trunk-late",
            "1500",
            "0811",
            "Budi",
            "hotline-1500",
            "ast1",
            "e1",
            T,
        ),
    ]

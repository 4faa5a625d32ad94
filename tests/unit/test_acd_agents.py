"""The agent state machine: what each action does in each state, and what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sambung.acd.agents import (
    PHONE_OFFLINE,
    RONA,
    UNREACHABLE,
    AgentBook,
    AgentProfile,
    AgentState,
    AgentStateError,
    PhoneOffline,
    StateChange,
    UnknownAgent,
)

S = AgentState


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def book(online: bool = True) -> tuple[AgentBook, list[StateChange], Clock]:
    clock = Clock()
    b = AgentBook(
        [
            AgentProfile("siti", "Siti", "agent1001", (("collections", 4),), frozenset({"c"})),
            AgentProfile("budi", "Budi", "agent1002", (("collections", 2),), frozenset({"c"})),
        ],
        clock,
        lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
    )
    changes: list[StateChange] = []
    b.listeners.append(lambda _a, ch: changes.append(ch))
    for a in b.all():
        b.phone_state(a, online)
    return b, changes, clock


def to_state(b: AgentBook, state: AgentState) -> None:
    """Drive siti into ``state`` through the public actions."""
    if state is S.LOGGED_OUT:
        return
    b.login("siti", "api")
    if state is S.READY:
        return
    if state is S.PAUSED:
        b.pause("siti", "lunch", "api")
        return
    b.reserve("siti", "call-1")
    if state is S.RESERVED:
        return
    b.ringing("siti", "call-1")
    if state is S.RINGING:
        return
    b.answered("siti", "call-1")
    if state is S.ON_CALL:
        return
    if state is S.ON_HOLD:
        b.held("siti", "call-1", True)
        return
    assert state is S.WRAP_UP
    b.call_ended("siti", "call-1", 30.0)


@pytest.mark.parametrize("state", list(AgentState))
async def test_drive_to_each_state(state: AgentState) -> None:
    b, _, _ = book()
    to_state(b, state)
    assert b.get("siti").state is state


@pytest.mark.parametrize(
    ("start", "action", "expected"),
    [
        (S.LOGGED_OUT, "login", S.READY),
        (S.READY, "pause", S.PAUSED),
        (S.PAUSED, "ready", S.READY),
        (S.WRAP_UP, "ready", S.READY),
        (S.WRAP_UP, "pause", S.PAUSED),
        (S.READY, "logout", S.LOGGED_OUT),
        (S.PAUSED, "logout", S.LOGGED_OUT),
        # During a call, pause and log out wait for the call's end.
        (S.ON_CALL, "pause", S.ON_CALL),
        (S.RINGING, "logout", S.RINGING),
        (S.LOGGED_OUT, "logout", S.LOGGED_OUT),
    ],
)
async def test_agent_actions(start: AgentState, action: str, expected: AgentState) -> None:
    b, _, _ = book()
    to_state(b, start)
    match action:
        case "login":
            b.login("siti", "api")
        case "pause":
            b.pause("siti", "lunch", "api")
        case "ready":
            b.make_ready("siti", "api")
        case "logout":
            b.logout("siti", "api")
    assert b.get("siti").state is expected


@pytest.mark.parametrize(
    ("start", "action", "error"),
    [
        (S.READY, "login", AgentStateError),
        (S.LOGGED_OUT, "ready", AgentStateError),
        (S.LOGGED_OUT, "pause", AgentStateError),
        (S.PAUSED, "reserve", AgentStateError),
        (S.ON_CALL, "reserve", AgentStateError),
    ],
)
async def test_refused_actions_name_the_state(
    start: AgentState, action: str, error: type[Exception]
) -> None:
    b, changes, _ = book()
    to_state(b, start)
    before = len(changes)
    actions = {
        "login": lambda: b.login("siti", "api"),
        "ready": lambda: b.make_ready("siti", "api"),
        "pause": lambda: b.pause("siti", "x", "api"),
        "reserve": lambda: b.reserve("siti", "call-9"),
    }
    with pytest.raises(error) as info:
        actions[action]()
    assert "siti" in str(info.value)
    assert len(changes) == before  # nothing changed, nothing logged


async def test_pause_during_call_applies_after_wrap_up() -> None:
    b, changes, _ = book()
    to_state(b, S.ON_CALL)
    b.pause("siti", "lunch", "phone")
    b.call_ended("siti", "call-1", 0.0)
    agent = b.get("siti")
    assert (agent.state, agent.reason) == (S.PAUSED, "lunch")
    assert [c.state for c in changes][-2:] == [S.ON_CALL, S.PAUSED]


async def test_logout_during_call_applies_after_the_call() -> None:
    b, _, _ = book()
    to_state(b, S.RINGING)
    b.logout("siti", "api")
    b.answered("siti", "call-1")
    b.call_ended("siti", "call-1", 0.0)
    assert b.get("siti").state is S.LOGGED_OUT


async def test_rona_pauses_with_reason() -> None:
    b, _, _ = book()
    to_state(b, S.RINGING)
    b.offer_failed("siti", "call-1", "rona")
    agent = b.get("siti")
    assert (agent.state, agent.reason) == (S.PAUSED, RONA)


async def test_busy_returns_to_ready_and_unavailable_pauses_unreachable() -> None:
    b, _, _ = book()
    to_state(b, S.RESERVED)
    b.offer_failed("siti", "call-1", "busy")
    assert b.get("siti").state is S.READY
    b.reserve("siti", "call-2")
    b.offer_failed("siti", "call-2", "unavailable")
    agent = b.get("siti")
    # Registration is the device state's to say: the phone stays online in the books.
    assert (agent.state, agent.reason, agent.online) == (S.PAUSED, UNREACHABLE, True)


async def test_offline_phone_cannot_log_in_or_be_ready() -> None:
    b, _, _ = book(online=False)
    with pytest.raises(PhoneOffline):
        b.login("siti", "api")
    b.phone_state(b.get("siti"), True)
    b.login("siti", "api")
    b.phone_state(b.get("siti"), False)
    agent = b.get("siti")
    assert (agent.state, agent.reason) == (S.PAUSED, PHONE_OFFLINE)
    with pytest.raises(PhoneOffline):
        b.make_ready("siti", "api")
    b.phone_state(agent, True)  # back: paused only for the phone, so ready again
    assert agent.state is S.READY


async def test_phone_back_does_not_undo_a_chosen_pause() -> None:
    b, _, _ = book()
    to_state(b, S.PAUSED)
    agent = b.get("siti")
    b.phone_state(agent, False)
    b.phone_state(agent, True)
    assert (agent.state, agent.reason) == (S.PAUSED, "lunch")


async def test_hold_toggles_and_only_for_the_agents_call() -> None:
    b, _, _ = book()
    to_state(b, S.ON_CALL)
    b.held("siti", "other-call", True)
    assert b.get("siti").state is S.ON_CALL
    b.held("siti", "call-1", True)
    assert b.get("siti").state is S.ON_HOLD
    b.held("siti", "call-1", False)
    assert b.get("siti").state is S.ON_CALL


async def test_wrap_up_timer_returns_agent_to_ready() -> None:
    import asyncio

    b, _, _ = book()
    to_state(b, S.ON_CALL)
    b.call_ended("siti", "call-1", 0.05)
    assert b.get("siti").state is S.WRAP_UP
    await asyncio.sleep(0.1)
    assert b.get("siti").state is S.READY


async def test_every_change_is_numbered_and_stamped() -> None:
    b, changes, _ = book()
    to_state(b, S.ON_HOLD)
    assert [c.seq for c in changes] == list(range(1, len(changes) + 1))
    assert [c.state for c in changes] == [S.READY, S.RESERVED, S.RINGING, S.ON_CALL, S.ON_HOLD]
    assert changes[1].call_id == "call-1"
    assert changes[0].call_id is None
    assert all(c.at.tzinfo is not None for c in changes)


async def test_ready_for_routing_lists_only_ready_online_agents() -> None:
    b, _, clock = book()
    b.login("siti", "api")
    clock.t = 200.0
    b.login("budi", "api")
    ready = {a.agent_id: a.idle_since for a in b.ready_for_routing()}
    assert ready == {"siti": 100.0, "budi": 200.0}
    b.phone_state(b.get("budi"), False)
    assert [a.agent_id for a in b.ready_for_routing()] == ["siti"]


async def test_calls_today_counts_answered_calls() -> None:
    b, _, _ = book()
    to_state(b, S.ON_CALL)
    b.call_ended("siti", "call-1", 0.0)
    b.reserve("siti", "call-2")
    b.answered("siti", "call-2")
    assert b.get("siti").calls_today == 2


async def test_unknown_agent() -> None:
    b, _, _ = book()
    with pytest.raises(UnknownAgent):
        b.login("nobody", "api")


async def test_rona_keeps_a_log_out_asked_during_the_ring() -> None:
    b, _, _ = book()
    to_state(b, S.RINGING)
    b.logout("siti", "api")
    b.offer_failed("siti", "call-1", "rona")
    assert b.get("siti").state is S.LOGGED_OUT

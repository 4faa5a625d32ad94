"""The ACD's books: positions, expected wait, service level, abandons, matches posted to calls."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from sambung.acd.model import AcdConfig, AgentConfig, QueueConfig
from sambung.acd.service import AcdService, Offer, QueueFull
from sambung.engine.calls import CallInbox
from sambung.engine.metrics import build_metrics


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def settings(**queue: Any) -> AcdConfig:
    q = QueueConfig(**{"name": "collections", "default_handle_seconds": 120, **queue})
    return AcdConfig(
        short_abandon_seconds=5,
        queues=(q, QueueConfig("sales")),
        agents=(
            AgentConfig(
                id="siti",
                name="Siti",
                endpoint="agent1001",
                pin="1234",
                skills=(("collections", 4),),
                queues=("collections",),
            ),
            AgentConfig(
                id="budi",
                name="Budi",
                endpoint="agent1002",
                pin="1234",
                skills=(("collections", 1),),
                queues=("collections", "sales"),
            ),
        ),
    )


def service(**queue: Any) -> tuple[AcdService, Clock]:
    clock = Clock()
    acd = AcdService(settings(**queue), build_metrics(), clock, lambda: datetime.now(UTC))
    for a in acd.agents.all():
        acd.agents.phone_state(a, True)
    return acd, clock


def join(acd: AcdService, call_id: str, queue: str = "collections") -> tuple[str, CallInbox]:
    inbox = CallInbox(call_id, acd._m)
    entry = acd.new_entry(call_id, queue, inbox=inbox, caller_number="0811")
    acd.enqueue(entry)
    return entry.entry_id, inbox


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_positions_follow_arrival_and_leaving() -> None:
    acd, clock = service()
    ids = []
    for i in range(3):
        clock.t += 1
        ids.append(join(acd, f"c{i}")[0])
    assert [acd.position(e) for e in ids] == [1, 2, 3]
    acd.leave(acd.entries[ids[0]], "abandoned")
    assert [acd.position(e) for e in ids[1:]] == [1, 2]


async def test_expected_wait_is_unknown_with_nobody_staffed_and_rounds_up() -> None:
    acd, _ = service()
    assert acd.expected_wait("collections", 1) is None
    acd.agents.login("siti", "api")
    acd.agents.pause("siti", "lunch", "api")
    assert acd.expected_wait("collections", 1) is None  # paused agents do not count
    acd.agents.make_ready("siti", "api")
    acd.agents.login("budi", "api")
    assert acd.expected_wait("collections", 2) == 0.0  # two ready agents take two callers
    acd.agents.reserve("siti", "x")
    acd.agents.reserve("budi", "y")
    # Nobody free: position 3 waits for 3 of 2 agents' calls at the 120 s prior.
    assert acd.expected_wait("collections", 3) == math.ceil(3 * 120 / 2)


async def test_handle_time_blends_measured_calls_with_the_prior() -> None:
    acd, _ = service()
    assert acd.handle_time("collections") == 120
    for _ in range(3):
        acd.handle_done("collections", 300)
    assert acd.handle_time("collections") == pytest.approx((3 * 300 + 3 * 120) / 6)


async def test_service_level_counts_answered_within_threshold_and_skips_short_abandons() -> None:
    acd, clock = service(service_level_seconds=20)
    fast, _ = join(acd, "fast")
    slow, _ = join(acd, "slow")
    short, _ = join(acd, "short")
    clock.t += 3
    acd.leave(acd.entries[short], "abandoned")  # 3 s: short, not in the service level
    clock.t += 7
    acd.leave(acd.entries[fast], "answered")  # 10 s: within 20 s
    clock.t += 30
    acd.leave(acd.entries[slow], "answered")  # 40 s: late
    assert acd.service_level("collections") == 0.5
    assert acd.service_level("sales") == 1.0  # no calls: nothing missed


async def test_queue_full_refuses() -> None:
    acd, _ = service(max_length=1)
    join(acd, "a")
    with pytest.raises(QueueFull):
        join(acd, "b")


async def test_match_reserves_the_agent_and_posts_an_offer() -> None:
    acd, _ = service()
    acd.agents.login("siti", "api")
    entry_id, inbox = join(acd, "c1")
    await settle()
    offer = await inbox.next_any(1)
    assert isinstance(offer, Offer)
    assert (offer.entry_id, offer.agent_id, offer.endpoint) == (entry_id, "siti", "agent1001")
    assert acd.agents.get("siti").state.value == "reserved"
    assert acd.entries[entry_id].state == "offering"


async def test_failed_offer_keeps_the_place_and_excludes_a_busy_agent() -> None:
    acd, clock = service()
    first, inbox1 = join(acd, "c1")
    clock.t += 5
    join(acd, "c2")
    acd.agents.login("siti", "api")
    await settle()
    offer = await inbox1.next_any(1)
    assert isinstance(offer, Offer)
    acd.agents.offer_failed("siti", "c1", "busy")
    acd.back_to_queue(acd.entries[first], "siti", "busy")
    assert acd.position(first) == 1  # still ahead of c2
    assert "siti" in acd.entries[first].excluded


async def test_callback_keeps_its_place_and_is_started_without_an_inbox() -> None:
    started: list[tuple[str, str]] = []
    clock = Clock()
    acd = AcdService(
        settings(),
        build_metrics(),
        clock,
        start_callback=lambda e, o: started.append((e.entry_id, o.agent_id)),
    )
    for a in acd.agents.all():
        acd.agents.phone_state(a, True)
    first, _ = join(acd, "c1")
    clock.t += 5
    join(acd, "c2")
    acd.to_callback(acd.entries[first], "cb-1")
    assert acd.position(first) == 1
    acd.agents.login("siti", "api")
    await settle()
    assert started == [(first, "siti")]


async def test_view_lists_waiting_calls_with_positions() -> None:
    acd, clock = service()
    join(acd, "c1")
    clock.t += 12
    view = {q["queue"]: q for q in acd.view()}
    assert view["collections"]["waiting"] == 1
    assert view["collections"]["longest_wait_seconds"] == 12
    assert view["collections"]["calls"][0]["position"] == 1
    assert view["sales"]["waiting"] == 0


async def test_a_caller_leaving_with_an_unread_offer_gives_the_agent_back() -> None:
    acd, _ = service()
    acd.agents.login("siti", "api")
    entry_id, _inbox = join(acd, "c1")
    await settle()
    assert acd.agents.get("siti").state.value == "reserved"
    acd.leave(acd.entries[entry_id], "abandoned")  # the Offer was never read
    assert acd.agents.get("siti").state.value == "ready"


async def test_a_busy_agent_is_offered_the_call_again_after_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sambung.acd.service as service_module

    monkeypatch.setattr(service_module, "EXCLUDE_SECONDS", 0.05)
    acd, _ = service()
    acd.agents.login("siti", "api")
    entry_id, inbox = join(acd, "c1")
    await settle()
    assert isinstance(await inbox.next_any(1), Offer)
    acd.agents.offer_failed("siti", "c1", "busy")
    acd.back_to_queue(acd.entries[entry_id], "siti", "busy")
    await settle()
    assert await inbox.next_any(0.01) is None  # excluded for now
    again = await inbox.next_any(1)
    assert isinstance(again, Offer)
    assert again.agent_id == "siti"

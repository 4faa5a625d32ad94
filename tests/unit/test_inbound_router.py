"""``engine/inbound.py``: the route a new call takes, picked once when its start is recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from sambung.acd.call import QueueCallInfo
from sambung.acd.feature import Acd
from sambung.engine.calls import CallInbox
from sambung.engine.config import HotlineSettings
from sambung.engine.events import CallOffered
from sambung.engine.inbound import CallRouter
from sambung.ivr.feature import Ivr
from sambung.ivr.greeting import UNKNOWN_NUMBER_FLOW, greeting_flow
from sambung.ivr.model import Flow
from sambung.ivr.runner import Handoff

T = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
MENU = greeting_flow("menu-v1", ("1500",), ("sound:a",), "id", "completed")
MENU_V2 = greeting_flow("menu-v2", ("1500",), ("sound:b",), "id", "completed")
SALES = greeting_flow("sales", ("1700",), ("sound:hello",), "en", "completed")
UNKNOWN = greeting_flow(UNKNOWN_NUMBER_FLOW, (), ("sound:x",), "en", "unknown_number")
HOTLINES = {
    "1600": HotlineSettings(name="collections", did="1600", queue="collections"),
    "1700": HotlineSettings(name="sales", did="1700", greeting=["sound:hello"]),
}


@dataclass
class FakeIvr:
    flows: dict[str, Flow] = field(default_factory=lambda: {"1500": MENU})
    ran: list[tuple[str, str]] = field(default_factory=list)
    handoff: Handoff | None = None

    def flow_for(self, did: str) -> Flow | None:
        return self.flows.get(did)

    def greeting_for(self, did: str) -> Flow:
        return SALES if did == "1700" else UNKNOWN

    async def run_flow(self, offer: CallOffered, inbox: CallInbox, flow: Flow) -> Handoff | None:
        self.ran.append((offer.call_id, flow.name))
        return self.handoff

    async def refuse(self, offer: CallOffered) -> None:
        self.ran.append((offer.call_id, "refused"))


@dataclass
class FakeAcd:
    queued: list[QueueCallInfo] = field(default_factory=list)
    features: list[str] = field(default_factory=list)

    async def queue_call(self, info: QueueCallInfo, inbox: CallInbox) -> None:
        self.queued.append(info)

    async def feature_code(self, offer: CallOffered, inbox: CallInbox) -> None:
        self.features.append(offer.did)


def router(ivr: FakeIvr, acd: FakeAcd) -> CallRouter:
    return CallRouter(HOTLINES.get, cast("Ivr", ivr), cast("Acd", acd))


def offer(cid: str, did: str, kind: str = "inbound") -> CallOffered:
    return CallOffered(cid, f"PJSIP/trunk-{cid}", did, "0811", "Budi", T, kind=kind)


INBOX = cast("CallInbox", None)


async def test_the_route_named_at_the_offer_is_the_route_taken_even_across_a_reload() -> None:
    ivr, acd = FakeIvr(), FakeAcd()
    r = router(ivr, acd)
    assert r.hotline_of(offer("c1", "1500")) == "menu-v1"
    ivr.flows["1500"] = MENU_V2  # a reload lands before the call task runs
    await r.handle(offer("c1", "1500"), INBOX)
    await r.handle(offer("c2", "1500"), INBOX)  # a later call takes the new version
    assert ivr.ran == [("c1", "menu-v1"), ("c2", "menu-v2")]


async def test_each_kind_of_number_goes_where_it_should_and_is_named_for_the_calls_row() -> None:
    ivr, acd = FakeIvr(), FakeAcd()
    r = router(ivr, acd)
    cases = [
        (offer("q", "1600"), "collections"),
        (offer("g", "1700"), "sales"),
        (offer("u", "9999"), None),
        (offer("f", "*21", kind="feature"), None),
    ]
    for o, name in cases:
        assert r.hotline_of(o) == name
        await r.handle(o, INBOX)
    assert [(i.call_id, i.queue, i.answered) for i in acd.queued] == [("q", "collections", False)]
    assert ivr.ran == [("g", "sales"), ("u", UNKNOWN_NUMBER_FLOW)]
    assert acd.features == ["*21"]
    assert r._picked == {}  # nothing kept once each call took its route


async def test_a_flow_that_hands_off_puts_the_answered_caller_in_its_queue() -> None:
    ivr, acd = FakeIvr(handoff=Handoff("collections", {"account": "1234"}, "en")), FakeAcd()
    r = router(ivr, acd)
    await r.handle(offer("c", "1500"), INBOX)
    [info] = acd.queued
    assert (info.queue, info.language, info.answered) == ("collections", "en", True)
    assert info.attributes == {"account": "1234"}


async def test_a_refused_call_leaves_no_route_behind() -> None:
    ivr, acd = FakeIvr(), FakeAcd()
    r = router(ivr, acd)
    r.hotline_of(offer("c", "1500"))
    await r.refuse(offer("c", "1500"))
    assert ivr.ran == [("c", "refused")]
    assert r._picked == {}

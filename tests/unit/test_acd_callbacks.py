"""Callbacks through the queue runner and the callback runner, without Asterisk: who is offered
one, what a caller hears when the window is closed, and the check before every dial."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import structlog

from sambung.acd.call import QueueCallInfo, QueueRunner, callback_when
from sambung.acd.callback import CallbackRunner
from sambung.acd.hub import AgentHub
from sambung.acd.model import AcdConfig, AgentConfig, OverflowConfig, QueueConfig
from sambung.acd.service import (
    AcdService,
    CallbackHistory,
    CallbackLookupFailed,
    Entry,
    Offer,
)
from sambung.asterisk import talk_guard
from sambung.engine.calendars import build_calendar
from sambung.engine.calls import CallInbox
from sambung.engine.events import CallEnded, DigitPressed, LegAnswered, LegEnded, PromptFinished
from sambung.engine.facts import CallStartedFact, Fact
from sambung.engine.metrics import Metrics, build_metrics

WIB = ZoneInfo("Asia/Jakarta")
CALENDARS = {"id-national": build_calendar("id-national", today=date(2026, 12, 6))}
MONDAY_22 = datetime(2026, 12, 28, 22, 0, tzinfo=WIB)
TUESDAY_8 = datetime(2026, 12, 29, 8, 0, tzinfo=WIB)
TUESDAY_10 = datetime(2026, 12, 29, 10, 0, tzinfo=WIB)
GOOD = "0812345678"


class Wall:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeTel:
    """Every prompt finishes at once; legs do what ``legs`` says (answer, or end busy)."""

    inboxes: dict[str, CallInbox] = field(default_factory=dict)
    played: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    dialled: list[tuple[str, str]] = field(default_factory=list)  # (leg id, endpoint)
    hung_up: list[str] = field(default_factory=list)
    legs: dict[str, str] = field(default_factory=dict)  # endpoint prefix -> answer | busy
    owners: dict[str, str] = field(default_factory=dict)  # leg id -> the call that owns it
    places: list[tuple[str, str]] = field(default_factory=list)  # (call id, place written)
    safeguards: list[tuple[str, float]] = field(default_factory=list)  # (call id, seconds)
    variables: dict[str, dict[str, str]] = field(default_factory=dict)  # leg id -> at dial
    guarded: list[tuple[str, str]] = field(default_factory=list)  # (channel, its partner)
    engine_until: list[int] = field(default_factory=list)

    def _post(self, owner: str, event: Any) -> None:
        inbox = self.inboxes.get(owner)
        if inbox is not None:
            inbox.post_local(event)

    async def answer(self, call_id: str) -> None:
        pass

    async def play(
        self, call_id: str, prompt_id: str, media: Sequence[str], language: str | None = None
    ) -> None:
        self.played.append((call_id, tuple(media)))
        self._post(call_id, PromptFinished(call_id, prompt_id, datetime.now(UTC)))

    async def play_on(
        self, channel_id: str, prompt_id: str, media: Sequence[str], language: str | None = None
    ) -> None:
        self.played.append((channel_id, tuple(media)))
        owner = self.owners.get(channel_id, channel_id)
        self._post(owner, PromptFinished(owner, prompt_id, datetime.now(UTC)))

    async def stop_prompt(self, prompt_id: str) -> None:
        pass

    async def prompt_active(self, prompt_id: str) -> bool:
        return False

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        self.hung_up.append(call_id)
        self._post(call_id, CallEnded(call_id, 16, "Normal Clearing", datetime.now(UTC)))

    async def ensure_holding_bridge(self, bridge_id: str, moh_class: str) -> None:
        pass

    async def create_mixing_bridge(self, bridge_id: str) -> None:
        pass

    async def join_bridge(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        pass

    async def destroy_bridge(self, bridge_id: str) -> None:
        pass

    async def dial(
        self,
        owner: str,
        leg_id: str,
        endpoint: str,
        *,
        caller_id: str | None,
        timeout: int,
        originator: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> None:
        self.dialled.append((leg_id, endpoint))
        self.owners[leg_id] = owner
        self.variables[leg_id] = dict(variables or {})
        now = datetime.now(UTC)
        what = next((v for k, v in self.legs.items() if endpoint.startswith(k)), "busy")
        if what == "answer":
            self._post(owner, LegAnswered(owner, leg_id, now))
            if "@" in endpoint:  # the customer: talks, then hangs up
                self._post(owner, LegEnded(owner, leg_id, 16, "Normal", now, answered=True))
        else:
            self._post(owner, LegEnded(owner, leg_id, 17, "User busy", now))

    async def hangup_leg(self, leg_id: str, reason: str = "normal") -> None:
        pass

    async def device_state(self, device: str) -> str:
        return "NOT_INUSE"

    async def mark_place(self, call_id: str, place: str) -> None:
        self.places.append((call_id, place))

    async def set_safeguard(self, call_id: str, seconds: float) -> None:
        self.safeguards.append((call_id, seconds))

    async def guard_talk(self, channel_id: str, partner_id: str) -> None:
        self.guarded.append((channel_id, partner_id))

    async def set_engine_until(self, epoch: int) -> None:
        self.engine_until.append(epoch)

    async def record_message(self, call_id: str, name: str, max_seconds: int) -> None:
        pass


class Lookup:
    """PostgreSQL as the ACD asks it: do-not-call entries and earlier callbacks."""

    def __init__(self, dnc: frozenset[str] = frozenset(), fail: bool = False) -> None:
        self.dnc = dnc
        self.fail = fail
        self.asked: list[str] = []

    async def __call__(self, e164: str, raw: str, since: datetime) -> CallbackHistory:
        self.asked.append(e164)
        if self.fail:
            raise CallbackLookupFailed("the database did not answer")
        return CallbackHistory(self.dnc, ())


@dataclass
class Rig:
    acd: AcdService
    tel: FakeTel
    runner: QueueRunner
    callbacks: CallbackRunner
    wall: Wall
    metrics: Metrics
    lookup: Lookup
    facts: list[Fact]
    started: list[tuple[Entry, Offer]]


def rig(now: datetime, lookup: Lookup | None = None, **queue: Any) -> Rig:
    q = {"name": "support", "callback_key": "1", "announce_every_seconds": 0, **queue}
    siti = AgentConfig(
        id="siti", name="Siti", endpoint="agent1001", pin="1234", queues=("support",)
    )
    settings = AcdConfig(queues=(QueueConfig(**q),), agents=(siti,))
    metrics = build_metrics()
    wall = Wall(now)
    lookup = lookup or Lookup()
    started: list[tuple[Entry, Offer]] = []
    acd = AcdService(
        settings,
        metrics,
        wall=wall,
        start_callback=lambda e, o: started.append((e, o)),
        callback_lookup=lookup,
    )
    acd.reload_calendars(CALENDARS)
    for a in acd.agents.all():
        acd.agents.phone_state(a, True)
    tel = FakeTel()
    facts: list[Fact] = []
    hub = AgentHub()
    runner = QueueRunner(acd, tel, facts.append, metrics, hub, wall=wall)
    callbacks = CallbackRunner(
        acd, tel, facts.append, metrics, hub, "test", lambda: "ast", "customers", wall=wall
    )
    return Rig(acd, tel, runner, callbacks, wall, metrics, lookup, facts, started)


async def settle(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def caller(call_id: str, number: str, language: str = "en") -> QueueCallInfo:
    return QueueCallInfo(call_id, "support", number, "", "1600", language, {})


async def start(r: Rig, info: QueueCallInfo) -> tuple[asyncio.Task[str], CallInbox]:
    inbox = CallInbox(info.call_id, r.metrics)
    r.tel.inboxes[info.call_id] = inbox
    task = asyncio.create_task(r.runner.run(info, inbox))
    await settle()
    return task, inbox


def refused(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value("sambung_callbacks_refused_total", {"reason": reason})
    return value or 0.0


def media_of(tel: FakeTel, call_id: str) -> list[str]:
    return [m for cid, media in tel.played if cid == call_id for m in media]


async def hang_up(task: asyncio.Task[str], inbox: CallInbox, call_id: str) -> str:
    inbox.put(CallEnded(call_id, 16, "Normal Clearing", datetime.now(UTC)))
    return await asyncio.wait_for(task, 5)


# ---- offering ------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["anonymous", "", "asterisk", "12345"])
async def test_given_a_withheld_or_invalid_caller_then_no_offer_and_the_key_does_nothing(
    number: str,
) -> None:
    r = rig(TUESDAY_10)
    task, inbox = await start(r, caller("c1", number))
    assert "sound:sambung/queue-callback-offer" not in media_of(r.tel, "c1")
    inbox.put(DigitPressed("c1", "1", 100, datetime.now(UTC)))
    await settle()
    (entry,) = r.acd.entries.values()
    assert (entry.kind, entry.call_id) == ("caller", "c1")  # still waiting, as a caller
    assert not task.done()
    assert r.lookup.asked == []  # nothing to ask PostgreSQL about
    reason = "withheld" if number != "12345" else "invalid"
    assert refused(r.metrics, reason) == 1
    assert await hang_up(task, inbox, "c1") == "caller_abandoned_queue"


async def test_given_a_number_on_the_do_not_call_list_then_no_offer() -> None:
    r = rig(TUESDAY_10, Lookup(dnc=frozenset({"+62812345678"})))
    task, inbox = await start(r, caller("c1", GOOD))
    assert "sound:sambung/queue-callback-offer" not in media_of(r.tel, "c1")
    assert r.lookup.asked == ["+62812345678"]
    assert refused(r.metrics, "dnc") == 1
    await hang_up(task, inbox, "c1")


async def test_given_postgresql_down_then_no_offer_and_the_log_has_no_number() -> None:
    r = rig(TUESDAY_10, Lookup(fail=True))
    with structlog.testing.capture_logs() as logs:
        task, inbox = await start(r, caller("c1", GOOD))
        inbox.put(DigitPressed("c1", "1", 100, datetime.now(UTC)))
        await settle()
    assert "sound:sambung/queue-callback-offer" not in media_of(r.tel, "c1")
    assert next(iter(r.acd.entries.values())).kind == "caller"
    assert refused(r.metrics, "unchecked") == 1
    assert len(r.lookup.asked) == 1  # decided once
    unchecked = [e for e in logs if e["event"] == "acd.callback_unchecked"]
    assert unchecked
    assert unchecked[0]["log_level"] == "info"
    assert unchecked[0]["reason"] == "acd.callback_lookup_failed"
    assert not any("812345678" in str(e) for e in logs)
    await hang_up(task, inbox, "c1")


async def test_given_an_overflow_offering_callbacks_and_a_withheld_caller_then_a_polite_bye() -> (
    None
):
    r = rig(
        TUESDAY_10,
        callback_key="",
        max_wait_seconds=0.05,
        overflow=OverflowConfig("callback", prompts=("sound:sambung/queue-callback-offer",)),
    )
    task, _ = await start(r, caller("c1", "anonymous"))
    reason = await asyncio.wait_for(task, 5)
    assert reason == "overflow_hangup"
    played = media_of(r.tel, "c1")
    assert "sound:sambung/queue-full" in played
    assert "sound:sambung/queue-callback-offer" not in played
    assert r.acd.entries == {}


async def test_given_a_good_caller_inside_the_window_then_offered_and_called_back_at_once() -> None:
    r = rig(TUESDAY_10)
    task, inbox = await start(r, caller("c1", GOOD))
    assert "sound:sambung/queue-callback-offer" in media_of(r.tel, "c1")
    inbox.put(DigitPressed("c1", "1", 100, datetime.now(UTC)))
    assert await asyncio.wait_for(task, 5) == "callback_requested"
    assert media_of(r.tel, "c1")[-1] == "sound:sambung/queue-callback-ok"
    (entry,) = r.acd.entries.values()
    assert entry.kind == "callback"
    assert entry.callback_verdict is not None
    assert entry.callback_verdict.e164 == "+62812345678"


# ---- a callback accepted outside the window ---------------------------------------------------


async def test_given_a_good_caller_at_22_wib_then_told_tomorrow_at_8_and_not_routed_before() -> (
    None
):
    r = rig(MONDAY_22)
    task, inbox = await start(r, caller("c1", GOOD))
    # Offered: a callback is possible, tomorrow.
    assert "sound:sambung/queue-callback-offer" in media_of(r.tel, "c1")
    inbox.put(DigitPressed("c1", "1", 100, datetime.now(UTC)))
    assert await asyncio.wait_for(task, 5) == "callback_requested"
    assert r.tel.played[-1] == (
        "c1",
        (
            "sound:sambung/callback-later",
            "sound:sambung/callback-tomorrow",
            "sound:sambung/callback-at",
            "number:8",
            "sound:sambung/time-am",
            "sound:sambung/zone-wib",
            "sound:sambung/callback-bye",
        ),
    )
    # The entry waits out of the queue until 08:00 WIB: an agent who is ready gets nothing.
    assert r.acd.entries == {}
    (entry_id,) = r.acd._delayed
    r.acd.agents.login("siti", "api")
    await settle()
    assert r.started == []
    loop = asyncio.get_running_loop()
    due = r.acd._delayed[entry_id].when() - loop.time()
    assert due == pytest.approx((TUESDAY_8 - MONDAY_22).total_seconds(), abs=1)
    r.acd._delayed[entry_id].cancel()


async def test_the_callback_time_is_said_in_the_callers_language() -> None:
    r = rig(MONDAY_22)
    task, inbox = await start(r, caller("c1", GOOD, language="id"))
    inbox.put(DigitPressed("c1", "1", 100, datetime.now(UTC)))
    await asyncio.wait_for(task, 5)
    assert r.tel.played[-1][1] == (
        "sound:sambung/callback-later",
        "sound:sambung/callback-tomorrow",
        "sound:sambung/callback-at",
        "sound:sambung/num/delapan",
        "sound:sambung/zone-wib",
        "sound:sambung/callback-bye",
    )
    for h in r.acd._delayed.values():
        h.cancel()


WIT = ZoneInfo("Asia/Jayapura")


@pytest.mark.parametrize(
    ("when", "now", "zone", "language", "said"),
    [
        (
            datetime(2026, 12, 28, 14, 30, tzinfo=WIB),
            datetime(2026, 12, 28, 7, 0, tzinfo=WIB),
            None,
            "en",
            ("callback-today", "callback-at", "number:2", "number:30", "time-pm", "zone-wib"),
        ),
        (
            datetime(2026, 12, 28, 8, 5, tzinfo=WIB),
            datetime(2026, 12, 28, 7, 0, tzinfo=WIB),
            None,
            "en",
            ("callback-today", "callback-at", "number:8", "digits:0", "number:5", "time-am"),
        ),
        (
            datetime(2026, 12, 28, 14, 30, tzinfo=WIB),
            datetime(2026, 12, 28, 7, 0, tzinfo=WIB),
            None,
            "id",
            ("callback-today", "callback-at", "num/empat", "num/belas", "time-past", "num/tiga"),
        ),
        (
            datetime(2027, 1, 4, 8, 0, tzinfo=WIT),  # Monday, from Friday evening
            datetime(2027, 1, 1, 21, 0, tzinfo=WIT),
            "Asia/Jayapura",
            "en",
            ("callback-on", "day-monday", "callback-at", "number:8", "time-am", "zone-wit"),
        ),
        (
            datetime(2027, 1, 11, 8, 0, tzinfo=WIB),
            datetime(2027, 1, 1, 21, 0, tzinfo=WIB),
            None,
            "en",
            ("callback-in", "number:10", "callback-days", "callback-at", "number:8"),
        ),
        (
            datetime(2026, 12, 29, 8, 0, 0, 1, tzinfo=WIB),  # rounded up, never earlier
            datetime(2026, 12, 28, 22, 0, tzinfo=WIB),
            None,
            "en",
            ("callback-tomorrow", "callback-at", "number:8", "number:1", "time-am"),
        ),
        (
            datetime(2026, 12, 29, 8, 0, tzinfo=ZoneInfo("Asia/Singapore")),
            datetime(2026, 12, 28, 22, 0, tzinfo=ZoneInfo("Asia/Singapore")),
            "Asia/Singapore",
            "en",
            ("callback-tomorrow", "callback-at", "number:8", "time-am", "zone-local"),
        ),
    ],
)
def test_callback_when_says_the_day_and_time_in_the_numbers_zone(
    when: datetime, now: datetime, zone: str | None, language: str, said: tuple[str, ...]
) -> None:
    media = callback_when(when.astimezone(UTC), now.astimezone(UTC), zone, language)
    short = [m.removeprefix("sound:sambung/").removeprefix("sound:") for m in media]
    assert short[0] == "callback-later"
    assert short[-1] == "callback-bye"
    it = iter(short)
    assert all(part in it for part in said), short  # in this order


# ---- the check before every dial --------------------------------------------------------------


def callback_entry(r: Rig, number: str = GOOD) -> Entry:
    entry = r.acd.new_entry("c9", "support", inbox=None, caller_number=number)
    r.acd.entries[entry.entry_id] = entry
    r.acd.to_callback(entry, f"cb-{entry.entry_id}")
    return entry


async def routed(r: Rig) -> tuple[Entry, Offer, CallInbox]:
    r.acd.agents.login("siti", "api")
    await settle()
    ((entry, offer),) = r.started
    r.started.clear()
    inbox = CallInbox("attempt", r.metrics)
    r.tel.inboxes["attempt"] = inbox
    return entry, offer, inbox


async def test_given_the_window_closed_while_waiting_then_nobody_is_rung_and_it_waits() -> None:
    r = rig(MONDAY_22)
    entry = callback_entry(r)
    entry_, offer, inbox = await routed(r)
    await r.callbacks.run("attempt", entry_, offer, inbox)
    assert r.tel.dialled == []  # not even the agent
    assert not any(isinstance(f, CallStartedFact) for f in r.facts)
    assert r.acd.agents.get("siti").state.value == "ready"
    assert entry.entry_id not in r.acd.entries
    loop = asyncio.get_running_loop()
    due = r.acd._delayed[entry.entry_id].when() - loop.time()
    assert due == pytest.approx((TUESDAY_8 - MONDAY_22).total_seconds(), abs=1)
    r.acd._delayed[entry.entry_id].cancel()


async def test_given_the_number_went_on_the_do_not_call_list_then_the_callback_is_closed() -> None:
    r = rig(TUESDAY_10)
    callback_entry(r)
    r.lookup.dnc = frozenset({"+62812345678"})
    entry, offer, inbox = await routed(r)
    await r.callbacks.run("attempt", entry, offer, inbox)
    assert r.tel.dialled == []
    assert r.acd.entries == {}
    assert r.acd._delayed == {}
    assert refused(r.metrics, "dnc") == 1
    outcome = r.metrics.registry.get_sample_value(
        "sambung_queue_calls_total", {"queue": "support", "outcome": "callback_refused"}
    )
    assert outcome == 1
    assert r.acd.agents.get("siti").state.value == "ready"


async def test_given_the_rules_allow_then_the_agent_first_and_the_e164_number_dialled() -> None:
    r = rig(TUESDAY_10)
    r.tel.legs = {"PJSIP/agent1001": "answer", "PJSIP/62812345678@customers": "answer"}
    callback_entry(r, "0812-345-678")
    entry, offer, inbox = await routed(r)
    await asyncio.wait_for(r.callbacks.run("attempt", entry, offer, inbox), 5)
    assert [e for _, e in r.tel.dialled] == ["PJSIP/agent1001", "PJSIP/62812345678@customers"]
    # Each leg names the other for Asterisk's talk guard.
    (agent, _), (customer, _) = r.tel.dialled
    assert r.tel.variables[agent] == talk_guard.leg_variables(customer)
    assert r.tel.variables[customer] == talk_guard.leg_variables(agent)
    (started,) = [f for f in r.facts if isinstance(f, CallStartedFact)]
    assert started.caller_number == "+62812345678"
    assert started.direction == "callback"


async def test_given_a_failed_attempt_then_the_retry_lands_inside_the_window() -> None:
    late = datetime(2026, 12, 29, 17, 54, tzinfo=WIB)  # a mobile's last minute (19:54 WIT)
    r = rig(late)
    r.tel.legs = {"PJSIP/agent1001": "answer"}  # the customer is busy
    callback_entry(r)
    entry, offer, inbox = await routed(r)
    await asyncio.wait_for(r.callbacks.run("attempt", entry, offer, inbox), 20)
    assert entry.callback_attempts == 1
    loop = asyncio.get_running_loop()
    due = r.acd._delayed[entry.entry_id].when() - loop.time()
    wednesday_8 = datetime(2026, 12, 30, 8, 0, tzinfo=WIB)
    assert due == pytest.approx((wednesday_8 - late).total_seconds(), abs=1)
    assert entry.callback_history[-1] == late  # the attempt counts
    r.acd._delayed[entry.entry_id].cancel()


async def test_given_the_days_callbacks_used_up_then_the_retry_waits_for_the_next_day() -> None:
    r = rig(TUESDAY_10)
    entry = callback_entry(r)
    entry.callback_verdict = (await r.acd.screen_callback(GOOD, TUESDAY_10)).verdict
    entry.callback_history = (TUESDAY_8 + timedelta(hours=1), TUESDAY_8 + timedelta(hours=1.5))
    assert r.acd.retry_callback_later(entry)
    loop = asyncio.get_running_loop()
    due = r.acd._delayed[entry.entry_id].when() - loop.time()
    wednesday_8 = datetime(2026, 12, 30, 8, 0, tzinfo=WIB)
    assert due == pytest.approx((wednesday_8 - TUESDAY_10).total_seconds(), abs=1)
    r.acd._delayed[entry.entry_id].cancel()

"""Queues and agents on the real Asterisk: SIPp desk phones register as the agents, SIPp
callers ring the queue's DID, and the engine routes, rings, bridges and records it all.

Agents (from the example settings): siti on agent1001 (collections 4), budi on agent1002
(collections 2), made on agent1003 (collections 3). The test queue wants collections >= 3, so
budi is never offered a call: the skill filter is visible in every test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sambung.dialer.compliance import CallingWindow
from sambung.engine.calendars import no_days
from sambung.engine.events import EngineEvent, PromptStarted
from tests.integration.callers import Pause, Press, Step, write_scenario
from tests.integration.harness import (
    METRICS_TOKEN,
    TOKEN,
    RunningEngine,
    ari_get,
    running_engine,
    sipp,
)
from tests.integration.phones import AgentPhone

DID = "1600"
PHONES = {
    "siti": ("agent1001", "a1001", 5091),
    "budi": ("agent1002", "a1002", 5092),
    "made": ("agent1003", "a1003", 5093),
}


def acd_sections(**queue: Any) -> dict[str, Any]:
    q = {
        "name": "support",
        "greeting": [],
        "announce_every_seconds": 2,
        "ring_timeout_seconds": 4,
        "wrap_up_seconds": 1,
        "max_wait_seconds": 120,
        "needs": [{"skill": "collections", "min_level": 3}],
        "whisper": ["sound:beep"],
        **queue,
    }
    agents = [
        {
            "id": "siti",
            "name": "Siti",
            "endpoint": "agent1001",
            "pin": "1001",
            "skills": {"collections": 4},
            "queues": ["support"],
        },
        {
            "id": "budi",
            "name": "Budi",
            "endpoint": "agent1002",
            "pin": "1002",
            "skills": {"collections": 2},
            "queues": ["support"],
        },
        {
            "id": "made",
            "name": "Made",
            "endpoint": "agent1003",
            "pin": "1003",
            "skills": {"collections": 3},
            "queues": ["support"],
        },
    ]
    return {
        "acd": {
            "short_abandon_seconds": 3,
            "queues": [q],
            "agents": agents,
            "hold_reminder_seconds": 2,
        },
        "hotlines": [{"did": DID, "name": "Support", "queue": "support"}],
    }


class Api:
    def __init__(self, run: RunningEngine, http: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{run.engine.http_port}"
        self.http = http

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            return r.status, await r.json(content_type=None)

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = await self.call(method, path, body)
        assert status < 300, (method, path, status, data)
        return data

    async def events(self, agent_id: str) -> aiohttp.ClientWebSocketResponse:
        """The agent's event socket, opened with a fresh single-use ticket."""
        ticket = (await self.ok("POST", "/api/v1/auth/ws-ticket"))["ticket"]
        return await self.http.ws_connect(
            f"{self.base}/api/v1/agents/{agent_id}/events", params={"ticket": ticket}
        )


@contextlib.asynccontextmanager
async def engine_with_api(**queue: Any) -> AsyncIterator[tuple[RunningEngine, Api]]:
    async with running_engine(**acd_sections(**queue)) as run, aiohttp.ClientSession() as http:
        yield run, Api(run, http)


def tap(run: RunningEngine) -> list[EngineEvent]:
    """Every domain event the engine's adapter emits from now on (announcements, bridges)."""
    seen: list[EngineEvent] = []
    translator = run.engine.telephony.translator  # type: ignore[union-attr]
    sink = translator._sink

    def both(event: EngineEvent) -> None:
        seen.append(event)
        sink(event)

    translator._sink = both
    return seen


async def wait_for(pred: Any, timeout: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await pred()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def facts_written(run: RunningEngine) -> None:
    """Wait until the engine's fact writer has put everything in PostgreSQL."""
    facts = run.engine.facts
    assert facts is not None

    async def idle() -> bool:
        return facts.pending == 0

    await asyncio.sleep(0.3)  # the last call's tail (leg ended, agent state) reaches the writer
    await wait_for(idle, 10, "facts written")


async def staff(api: Api, phones: dict[str, tuple[AgentPhone, str]]) -> None:
    """Register each agent's phone, let it serve one call its way, and log the agents in, in
    this order and 0.2 s apart (the first has been idle longest)."""
    for phone, behaviour in phones.values():
        await phone.register()
        await phone.serve(behaviour, calls=1)
    await wait_for(lambda: _online(api, *phones), 10, "phones online")
    for agent in phones:
        await api.ok("POST", f"/api/v1/agents/{agent}/login")
        await asyncio.sleep(0.2)


async def agent_state(api: Api, agent_id: str) -> str:
    return str((await api.ok("GET", f"/api/v1/agents/{agent_id}"))["state"])


async def caller(
    tmp_path: Path,
    name: str,
    steps: list[Any],
    *,
    number: str = "sipp",
    hang_up: bool = True,
    timeout: float = 60,
) -> None:
    scenario = write_scenario(tmp_path, name, steps, hang_up=hang_up, caller=number)
    result = await sipp(scenario, DID, timeout=timeout)
    assert result.returncode == 0, result.output


async def states_of(run: RunningEngine, agent_id: str) -> list[tuple[str, str]]:
    rows = await run.pool.fetch(
        "SELECT state, reason FROM agent_states WHERE agent_id = $1 ORDER BY at, seq", agent_id
    )
    return [(r["state"], r["reason"]) for r in rows]


async def test_skill_routing_longest_idle_bridge_and_facts(tmp_path: Path) -> None:
    async with (
        engine_with_api() as (run, api),
        AgentPhone(*PHONES["siti"], workdir=tmp_path) as siti,
        AgentPhone(*PHONES["budi"], workdir=tmp_path) as budi,
        AgentPhone(*PHONES["made"], workdir=tmp_path) as made,
    ):
        for phone in (siti, budi, made):
            await phone.register()
            await phone.serve("answer", calls=2)
        await wait_for(lambda: _all_online(api), 10, "phones online")
        # budi has been idle longest but lacks the skill; made is next, then siti.
        for agent in ("budi", "made", "siti"):
            await api.ok("POST", f"/api/v1/agents/{agent}/login")
            await asyncio.sleep(0.2)
        ws = await api.events("made")
        snapshot = await ws.receive_json(timeout=5)
        assert snapshot["type"] == "snapshot"
        assert snapshot["agent"]["state"] == "ready"

        first = asyncio.create_task(caller(tmp_path, "c1", [Pause(5000)], number="0811110001"))
        invite = await made.wait_invite(10)
        assert invite.number == "0811110001"
        # While they talk: the call's bridge holds exactly the caller and made's leg.
        call_id = await wait_for(lambda: _call_of(api, "made", "on_call"), 10, "made on the call")
        bridge = ari_get(f"/bridges/sambung-call-{call_id}")
        members = set(bridge["channels"])
        assert call_id in members
        assert len(members) == 2
        await first

        kinds = []
        with contextlib.suppress(TimeoutError):
            while "call_ended" not in kinds:
                msg = await ws.receive_json(timeout=5)
                kinds.append(msg["type"])
                if msg["type"] == "offered":
                    assert msg["call"]["caller_number"] == "0811110001"
                    assert msg["call"]["queue"] == "support"
        await ws.close()
        assert {"offered", "connected", "call_ended"} <= set(kinds)

        # made is in wrap-up for a second; siti has now been idle longest.
        await caller(tmp_path, "c2", [Pause(2000)], number="0811110002")
        assert len(siti.invites) == 1
        assert len(made.invites) == 1
        assert budi.invites == []

        await facts_written(run)
        rows = await run.pool.fetch(
            "SELECT q.outcome, q.agent_id, q.wait_seconds, l.outcome AS leg, l.agent_id AS who"
            " FROM queue_entries q JOIN call_legs l USING (entry_id) ORDER BY q.enqueued_at"
        )
        assert [(r["outcome"], r["agent_id"], r["leg"], r["who"]) for r in rows] == [
            ("answered", "made", "answered", "made"),
            ("answered", "siti", "answered", "siti"),
        ]
        assert all(r["wait_seconds"] < 3 for r in rows)
        await wait_for(lambda: _is(api, "made", "ready"), 5, "made back to ready")
        states = [s for s, _ in await states_of(run, "made")]
        assert states == ["ready", "reserved", "ringing", "on_call", "wrap_up", "ready"]


async def test_ring_no_answer_pauses_the_agent_and_the_next_one_answers(tmp_path: Path) -> None:
    async with (
        engine_with_api() as (run, api),
        AgentPhone(*PHONES["siti"], workdir=tmp_path) as siti,
        AgentPhone(*PHONES["made"], workdir=tmp_path) as made,
    ):
        await staff(api, {"siti": (siti, "no_answer"), "made": (made, "answer")})
        await caller(tmp_path, "rona", [Pause(9000)], number="0811110003")
        assert len(siti.invites) == 1
        assert len(made.invites) == 1
        assert siti.invites[0].at < made.invites[0].at
        siti_view = await api.ok("GET", "/api/v1/agents/siti")
        assert (siti_view["state"], siti_view["reason"]) == ("paused", "rona")
        await facts_written(run)
        legs = await run.pool.fetch(
            "SELECT agent_id, outcome, hangup_cause FROM call_legs ORDER BY created_at"
        )
        assert [(r["agent_id"], r["outcome"]) for r in legs] == [
            ("siti", "rona"),
            ("made", "answered"),
        ]
        entry = await run.pool.fetchrow("SELECT * FROM queue_entries")
        assert entry is not None
        assert (entry["outcome"], entry["agent_id"]) == ("answered", "made")
        assert entry["wait_seconds"] >= 4  # it rang siti for the ring timeout first
        assert ("paused", "rona") in await states_of(run, "siti")


async def test_a_busy_phone_passes_the_call_to_the_next_agent_at_once(tmp_path: Path) -> None:
    async with (
        engine_with_api() as (run, api),
        AgentPhone(*PHONES["siti"], workdir=tmp_path) as siti,
        AgentPhone(*PHONES["made"], workdir=tmp_path) as made,
    ):
        await staff(api, {"siti": (siti, "busy"), "made": (made, "answer")})
        await caller(tmp_path, "busy", [Pause(3000)], number="0811110011")
        assert len(siti.invites) == 1
        assert len(made.invites) == 1
        assert made.invites[0].at - siti.invites[0].at < 1.0  # no ring timeout in between
        await facts_written(run)
        legs = await run.pool.fetch(
            "SELECT agent_id, outcome, hangup_cause FROM call_legs ORDER BY created_at"
        )
        assert [(r["agent_id"], r["outcome"], r["hangup_cause"]) for r in legs] == [
            ("siti", "busy", 17),
            ("made", "answered", None),
        ]
        # Busy is not absence: siti stays available for the next call.
        assert await agent_state(api, "siti") == "ready"


async def test_overflow_after_max_wait_takes_a_message(tmp_path: Path) -> None:
    overflow = {"action": "message"}
    async with engine_with_api(max_wait_seconds=2, overflow=overflow) as (run, _api):
        # The caller stays long enough for max_wait (2 s), the longest message prompt (9.8 s,
        # Indonesian), the tone and a few seconds of message, with room for a busy machine:
        # hanging up during the prompt would be a different outcome (message_abandoned).
        await caller(tmp_path, "msg", [Pause(24000)], number="0811110012")
        row = await run.wait_closed(did=DID)
        assert row["end_reason"] == "message_left"
        await facts_written(run)
        entry = await run.pool.fetchrow("SELECT * FROM queue_entries")
        assert entry is not None
        assert entry["outcome"] == "overflowed"
        name = f"sambung-message-{row['call_id']}"
        assert entry["detail"] == f"max_wait:message:{name}"
        # Asterisk's own view of its recordings store (its files are not the host's to read).
        stored = ari_get(f"/recordings/stored/{name}")
        assert (stored["name"], stored["format"]) == (name, "wav")


async def test_abandon_counted_with_wait_and_announcements_played(tmp_path: Path) -> None:
    async with engine_with_api() as (run, api):
        events = tap(run)
        await caller(tmp_path, "long", [Pause(7000)])
        await caller(tmp_path, "short", [Pause(1000)])
        await facts_written(run)
        rows = await run.pool.fetch(
            "SELECT outcome, wait_seconds, short_abandon FROM queue_entries ORDER BY enqueued_at"
        )
        assert [(r["outcome"], r["short_abandon"]) for r in rows] == [
            ("abandoned", False),
            ("abandoned", True),
        ]
        assert 6 <= rows[0]["wait_seconds"] <= 9
        announced = [
            e for e in events if isinstance(e, PromptStarted) and "-announce" in e.prompt_id
        ]
        # Every 2 s while waiting 7 s: at least twice, each after the one before ended.
        assert len(announced) >= 2
        calls = await run.pool.fetch("SELECT end_reason FROM calls ORDER BY started_at")
        assert [r["end_reason"] for r in calls] == ["caller_abandoned_queue"] * 2
        text = await _metrics(api)
        assert 'sambung_queue_calls_total{outcome="abandoned",queue="support"} 1.0' in text
        assert 'sambung_queue_calls_total{outcome="short_abandoned",queue="support"} 1.0' in text


async def test_callback_keeps_the_place_and_rings_the_agent_first(tmp_path: Path) -> None:
    async with (
        engine_with_api(callback_key="1") as (run, api),
        AgentPhone(*PHONES["siti"], workdir=tmp_path) as siti,
        AgentPhone("customers", "", 5080, workdir=tmp_path) as customer,
    ):
        # The callback rules as they are, but with a window that is always open: the test
        # must not depend on the hour or the day it runs (a valid mobile number is still
        # needed, and PostgreSQL is still asked about it).
        acd = run.engine.acd.service
        acd.callback_rules = replace(
            acd.callback_rules,
            window=CallingWindow(frozenset(range(7)), time(0), time.max, timedelta(0), no_days()),
        )
        await siti.register()
        await siti.serve("answer", calls=1)
        await customer.serve("answer", calls=1)
        # Nobody is logged in: the caller asks for a callback and the engine says goodbye.
        await caller(tmp_path, "cb", [Pause(1500), Press("1")], number="0812345678", hang_up=False)
        view = await api.ok("GET", "/api/v1/queues")
        waiting = view["queues"][0]["calls"]
        assert [(c["kind"], c["caller_number"]) for c in waiting] == [("callback", "0812345678")]
        await wait_for(lambda: _online(api, "siti"), 10, "siti online")
        await api.ok("POST", "/api/v1/agents/siti/login")
        cust = await customer.wait_invite(20)
        # Dialled as the rules checked it: E.164 digits, as the dialer's trunk calls take them.
        assert cust.user == "62812345678"
        assert len(siti.invites) == 1
        assert siti.invites[0].at < cust.at  # the agent first, then the customer
        entry = await wait_for(
            lambda: run.pool.fetchrow("SELECT * FROM queue_entries WHERE ended_at IS NOT NULL"),
            20,
            "the callback entry closed",
        )
        assert entry["outcome"] == "callback_connected"
        assert entry["agent_id"] == "siti"
        # The agent reserved for the callback is on the call, not left reserved.
        assert await _call_of(api, "siti", "on_call") is not None
        first = await run.pool.fetchrow("SELECT * FROM calls WHERE direction = 'inbound'")
        assert first is not None
        assert first["end_reason"] == "callback_requested"


async def test_blind_transfer_to_an_agent_keeps_the_first_enqueue_time(tmp_path: Path) -> None:
    async with (
        engine_with_api() as (run, api),
        AgentPhone(*PHONES["siti"], workdir=tmp_path) as siti,
        AgentPhone(*PHONES["made"], workdir=tmp_path) as made,
    ):
        await siti.register()
        await made.register()
        await siti.serve("answer", calls=1)
        await made.serve("answer", calls=1)
        await wait_for(lambda: _online(api, "siti", "made"), 10, "phones online")
        await api.ok("POST", "/api/v1/agents/siti/login")
        await api.ok("POST", "/api/v1/agents/made/login")
        await api.ok("POST", "/api/v1/agents/made/pause", {"reason": "meeting"})
        talk = asyncio.create_task(caller(tmp_path, "xfer", [Pause(12000)], number="0811110009"))
        call_id = await wait_for(lambda: _call_of(api, "siti", "on_call"), 10, "siti talking")
        await api.ok("POST", "/api/v1/agents/made/ready")
        await api.ok("POST", f"/api/v1/calls/{call_id}/transfer", {"agent_id": "made"})
        await wait_for(lambda: _call_of(api, "made", "on_call"), 15, "made talking")
        assert await agent_state(api, "siti") in ("wrap_up", "ready")
        await talk
        await facts_written(run)
        rows = await run.pool.fetch(
            "SELECT kind, outcome, agent_id, first_enqueued_at FROM queue_entries "
            "WHERE call_id = $1 ORDER BY enqueued_at",
            call_id,
        )
        assert [(r["kind"], r["outcome"], r["agent_id"]) for r in rows] == [
            ("caller", "answered", "siti"),
            ("transfer", "answered", "made"),
        ]
        assert rows[0]["first_enqueued_at"] == rows[1]["first_enqueued_at"]
        status, body = await api.call("POST", f"/api/v1/calls/{call_id}/transfer", {"queue": "x"})
        assert (status, body["error_id"]) == (404, "acd.unknown_queue")


async def test_hold_from_the_phone_is_tracked_with_a_reminder(tmp_path: Path) -> None:
    async with (
        engine_with_api() as (run, api),
        AgentPhone(*PHONES["siti"], workdir=tmp_path) as siti,
    ):
        await siti.register()
        await siti.serve("hold", calls=1, hold_ms=3500)
        await wait_for(lambda: _online(api, "siti"), 10, "siti online")
        await api.ok("POST", "/api/v1/agents/siti/login")
        ws = await api.events("siti")
        talk = asyncio.create_task(caller(tmp_path, "hold", [Pause(8000)], number="0811110010"))
        kinds: list[str] = []
        while "call_ended" not in kinds:
            msg = await ws.receive(timeout=15)
            assert msg.type == aiohttp.WSMsgType.TEXT, (msg, kinds)
            kinds.append(json.loads(msg.data)["type"])
        await ws.close()
        await talk
        # The phone held for 3.5 s; the reminder is due after 2 s on hold.
        assert [k for k in kinds if k in ("hold", "hold_reminder", "unhold")] == [
            "hold",
            "hold_reminder",
            "unhold",
        ]
        await facts_written(run)
        states = [s for s, _ in await states_of(run, "siti")]
        assert states[:6] == ["ready", "reserved", "ringing", "on_call", "on_hold", "on_call"]
        leg = await run.pool.fetchrow("SELECT hold_seconds, talk_seconds FROM call_legs")
        assert leg is not None
        assert 3.0 <= leg["hold_seconds"] <= 4.5
        assert leg["talk_seconds"] > leg["hold_seconds"]


async def test_an_unregistered_phone_cannot_be_ready(tmp_path: Path) -> None:
    async with (
        engine_with_api() as (_run, api),
        AgentPhone(*PHONES["made"], workdir=tmp_path) as made,
    ):
        await made.unregister()
        status, body = await api.call("POST", "/api/v1/agents/made/login")
        assert status == 409
        assert body["error_id"] == "acd.phone_offline"
        await made.register()
        await wait_for(lambda: _online(api, "made"), 10, "made online")
        await api.ok("POST", "/api/v1/agents/made/login")
        await made.unregister()
        await wait_for(lambda: _is(api, "made", "paused"), 10, "made paused offline")
        view = await api.ok("GET", "/api/v1/agents/made")
        assert view["reason"] == "phone_offline"


async def feature_code(tmp_path: Path, code: str, pin: str, agent: str = "agent1002") -> None:
    password = "a" + agent.removeprefix("agent")
    name = f"feature{code.strip('*')}-{pin}"
    steps: list[Step] = [Pause(800), Press(pin + "#")]
    scenario = write_scenario(tmp_path, name, steps, hang_up=False, caller=agent, phone=True)
    result = await sipp(
        scenario, code, timeout=30, local_port=5095, extra=["-au", agent, "-ap", password]
    )
    assert result.returncode == 0, result.output


async def test_desk_phone_feature_codes_need_the_pin(tmp_path: Path) -> None:
    async with (
        engine_with_api() as (run, api),
        AgentPhone(*PHONES["budi"], workdir=tmp_path) as budi,
    ):
        # A desk phone is registered; an unregistered one could not stay ready (tested below).
        await budi.register()
        await wait_for(lambda: _online(api, "budi"), 10, "budi online")
        await feature_code(tmp_path, "*51", "1002")
        assert await agent_state(api, "budi") == "ready"
        await feature_code(tmp_path, "*52", "9999")  # wrong PIN: nothing changes
        assert await agent_state(api, "budi") == "ready"
        await feature_code(tmp_path, "*52", "1002")
        view = await api.ok("GET", "/api/v1/agents/budi")
        assert (view["state"], view["reason"]) == ("paused", "break")
        await feature_code(tmp_path, "*59", "1002")
        assert await agent_state(api, "budi") == "logged_out"
        # The feature call's end reaches PostgreSQL after the agent's state changes (through
        # the spool, written ahead): wait for the writer before reading the rows.
        await facts_written(run)
        rows = await run.pool.fetch(
            "SELECT did, end_reason FROM calls WHERE direction = 'agent_feature' "
            "ORDER BY started_at"
        )
        assert [(r["did"], r["end_reason"]) for r in rows] == [
            ("*51", "feature_ok"),
            ("*52", "feature_wrong_pin"),
            ("*52", "feature_ok"),
            ("*59", "feature_ok"),
        ]
        sources = await run.pool.fetch(
            "SELECT state, source FROM agent_states WHERE agent_id = 'budi' ORDER BY seq"
        )
        assert [(r["state"], r["source"]) for r in sources] == [
            ("ready", "phone"),
            ("paused", "phone"),
            ("logged_out", "phone"),
        ]


# ---- helpers ---------------------------------------------------------------------------


async def _all_online(api: Api) -> bool:
    return await _online(api, "siti", "budi", "made")


async def _online(api: Api, *agents: str) -> bool:
    views = {a["agent_id"]: a for a in (await api.ok("GET", "/api/v1/agents"))["agents"]}
    return all(views[a]["phone_online"] for a in agents)


async def _is(api: Api, agent: str, state: str) -> bool:
    return await agent_state(api, agent) == state


async def _call_of(api: Api, agent: str, state: str) -> str | None:
    view = await api.ok("GET", f"/api/v1/agents/{agent}")
    return str(view["call_id"]) if view["state"] == state else None


async def _metrics(api: Api) -> str:
    async with api.http.get(
        api.base + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    ) as r:
        assert r.status == 200, r.status
        return await r.text()


pytestmark = pytest.mark.timeout(120)

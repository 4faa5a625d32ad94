"""The agent events WebSocket (``GET /api/v1/agents/{agent_id}/events``) through the engine's
HTTP app, against a real PostgreSQL database: single-use tickets, the Origin check, the socket
closed when its session ends, and no secret in the audit log."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sambung.acd.agents import AgentState
from sambung.acd.events import AgentStateChanged
from sambung.acd.hub import AgentHub
from sambung.auth.service import SessionPolicy
from sambung.engine.errors import NotFound
from sambung.engine.http import RoleToken
from tests.component.test_auth_http import AGENTS, IDLE, PASSWORD, FakeAcd, Stack, bearer, stack

TICKET = "/api/v1/auth/ws-ticket"
CHECK = 0.1  # seconds between the socket's session checks in these tests
AGENT_TOKEN = "siti-desk-integration-token"


@dataclass(frozen=True)
class FakeAgent:
    agent_id: str

    def view(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "state": "logged_out"}


class FakeBook:
    def get(self, agent_id: str) -> FakeAgent:
        if agent_id not in AGENTS:
            raise NotFound(f"no agent {agent_id!r}")
        return FakeAgent(agent_id)


@dataclass
class AcdState:
    agents: FakeBook = field(default_factory=FakeBook)


@dataclass
class AcdWithAgents(FakeAcd):
    """The fake ACD with an agent book, which the socket reads its snapshot from."""

    hub: Any = field(default_factory=AgentHub)
    acd: Any = field(default_factory=AcdState)


def events_stack(tmp_path: Path, **options: Any) -> Any:
    return stack(
        tmp_path,
        acd=AcdWithAgents(),
        session_check_seconds=CHECK,
        role_tokens=[RoleToken("siti", AGENT_TOKEN, "agent")],
        **options,
    )


async def ticket_for(s: Stack, headers: dict[str, str]) -> str:
    r = await s.client.post(TICKET, headers=headers)
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["expires_in"] == 30
    assert r.headers["Cache-Control"] == "no-store"
    return str(body["ticket"])


def refused_status(err: BaseException) -> int:
    assert isinstance(err, aiohttp.WSServerHandshakeError), err
    return err.status


async def connect_status(
    s: Stack, path: str, params: dict[str, str], headers: dict[str, str] | None = None
) -> int:
    try:
        ws = await s.client.ws_connect(path, params=params, headers=headers or {})
    except aiohttp.WSServerHandshakeError as err:
        return refused_status(err)
    await ws.close()
    return 101


async def test_a_ticket_opens_the_agents_socket_once(tmp_path: Path) -> None:
    async with events_stack(tmp_path) as s:
        token = await s.token("siti")
        ticket = await ticket_for(s, bearer(token))
        # Only the ticket's hash is kept.
        rows = [dict(r) for r in await s.pool.fetch("SELECT * FROM ws_tickets")]
        assert [bytes(r["ticket_hash"]) for r in rows] == [hashlib.sha256(ticket.encode()).digest()]
        assert ticket not in {str(v) for r in rows for v in r.values()}

        ws = await s.client.ws_connect("/api/v1/agents/siti/events", params={"ticket": ticket})
        first = json.loads((await ws.receive(timeout=5)).data)
        assert (first["seq"], first["type"], first["agent"]["agent_id"]) == (0, "snapshot", "siti")
        at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        s.acd.hub.publish(
            AgentStateChanged("siti", AgentState.READY, "", AgentState.LOGGED_OUT, at, None)
        )
        pushed = json.loads((await ws.receive(timeout=5)).data)
        assert pushed == {
            "seq": 1,
            "type": "state",
            "agent_id": "siti",
            "state": "ready",
            "reason": "",
            "previous": "logged_out",
            "at": "2026-03-02T09:00:00+00:00",
            "call_id": None,
        }
        await ws.close()

        # Used once: refused the second time.
        assert await connect_status(s, "/api/v1/agents/siti/events", {"ticket": ticket}) == 401
        # A configured token gets tickets too (integrations without a session).
        ticket = await ticket_for(s, bearer(AGENT_TOKEN))
        assert await connect_status(s, "/api/v1/agents/siti/events", {"ticket": ticket}) == 101


async def test_the_socket_takes_a_ticket_and_nothing_else(tmp_path: Path) -> None:
    async with events_stack(tmp_path) as s:
        token = await s.token("siti")
        path = "/api/v1/agents/siti/events"
        expired = await ticket_for(s, bearer(token))
        await s.pool.execute(
            "UPDATE ws_tickets SET expires_at = $1", datetime.now(UTC) - timedelta(seconds=1)
        )
        for params, headers in [
            ({}, {}),
            ({"ticket": expired}, {}),
            ({"ticket": "made-up"}, {}),
            ({"ticket": "x" * 300}, {}),
            # The token in the query is no longer accepted, nor a token in place of a ticket.
            ({"access_token": token}, {}),
            ({}, bearer(token)),
            ({"ticket": token}, {}),
        ]:
            assert await connect_status(s, path, params, headers) == 401, (params, headers)
        # Tickets are for people and integrations that may use the API, never anonymous.
        r = await s.client.post(TICKET)
        assert r.status == 401


async def test_a_browser_origin_must_match_the_host_or_an_allowed_origin(tmp_path: Path) -> None:
    async with events_stack(tmp_path, allowed_origins=["https://console.example.com"]) as s:
        token = await s.token("siti")
        path = "/api/v1/agents/siti/events"
        host = f"{s.client.host}:{s.client.port}"
        for origin in (
            "https://evil.example",
            f"http://{host}.evil.example",
            f"http://{s.client.host}:1",
            "null",
            "https://console.example.com.evil.example",
        ):
            ticket = await ticket_for(s, bearer(token))
            status = await connect_status(s, path, {"ticket": ticket}, {"Origin": origin})
            assert status == 403, origin
            # The refusal comes first: the ticket was not spent on it.
            assert await connect_status(s, path, {"ticket": ticket}) == 101, origin
        for origin in (f"http://{host}", f"HTTP://{host.upper()}", "https://console.example.com"):
            ticket = await ticket_for(s, bearer(token))
            status = await connect_status(s, path, {"ticket": ticket}, {"Origin": origin})
            assert status == 101, origin


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return ws.close_code, str(msg.extra or "")


@pytest.mark.parametrize("how", ["logout", "user_disabled", "password_changed", "expired", "idle"])
async def test_the_socket_is_closed_when_its_session_ends(tmp_path: Path, how: str) -> None:
    async with events_stack(tmp_path) as s:
        token = await s.token("siti")
        ayu = bearer(await s.token("ayu"))
        ticket = await ticket_for(s, bearer(token))
        ws = await s.client.ws_connect("/api/v1/agents/siti/events", params={"ticket": ticket})
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "snapshot"
        # Checked several times while the session lives: the socket stays open.
        await asyncio.sleep(CHECK * 5)
        assert not ws.closed
        th = hashlib.sha256(token.encode()).digest()
        past = datetime.now(UTC) - timedelta(seconds=1)
        if how == "logout":
            assert (await s.client.post("/api/v1/auth/logout", headers=bearer(token))).status == 204
        elif how == "user_disabled":
            r = await s.client.patch("/api/v1/users/siti", json={"disabled": True}, headers=ayu)
            assert r.status == 200
        elif how == "password_changed":
            body = {"password": "a-new-password-2"}
            r = await s.client.patch("/api/v1/users/siti", json=body, headers=ayu)
            assert r.status == 200
        elif how == "expired":
            await s.pool.execute(
                "UPDATE user_sessions SET expires_at = $2 WHERE token_hash = $1", th, past
            )
        else:
            await s.pool.execute(
                "UPDATE user_sessions SET last_seen_at = $2 WHERE token_hash = $1", th, past - IDLE
            )
        code, reason = await asyncio.wait_for(closed_with(ws), 5)
        assert (code, reason) == (4401, f"session ended: {how}")


async def test_a_short_session_closes_its_socket_when_it_expires(tmp_path: Path) -> None:
    short = SessionPolicy(lifetime=timedelta(seconds=2), idle=IDLE)
    async with events_stack(tmp_path, policy=short) as s:
        ticket = await ticket_for(s, bearer(await s.token("siti")))
        started = asyncio.get_running_loop().time()
        ws = await s.client.ws_connect("/api/v1/agents/siti/events", params={"ticket": ticket})
        code, reason = await asyncio.wait_for(closed_with(ws), 10)
        assert (code, reason) == (4401, "session ended: expired")
        assert 1.0 <= asyncio.get_running_loop().time() - started <= 5.0


async def test_a_refused_socket_leaves_no_token_or_ticket_in_the_audit_log(tmp_path: Path) -> None:
    async with events_stack(tmp_path) as s:
        token = await s.token("siti")
        ticket = await ticket_for(s, bearer(token))
        # siti's ticket on made's socket: refused (an agent has only their own), and audited.
        status = await connect_status(
            s, "/api/v1/agents/made/events", {"ticket": ticket, "access_token": token}
        )
        assert status == 403
        # Any refused request keeps its query out of the log.
        r = await s.client.get(
            "/api/v1/users", params={"access_token": token, "ticket": ticket}, headers=bearer(token)
        )
        assert r.status == 403
        rows = await s.audit()
        denied = [(a["action"], a["target"]) for a in rows if a["outcome"] == "denied"]
        assert denied == [
            ("GET /api/v1/agents/{agent_id}/events", "/api/v1/agents/made/events"),
            ("GET /api/v1/users", "/api/v1/users"),
        ]
        text = json.dumps(rows, default=str)
        assert token not in text
        assert ticket not in text
        assert PASSWORD not in text

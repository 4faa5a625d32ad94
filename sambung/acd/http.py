"""The ACD's routes: queues, agents and their actions, the agent's event stream, and what an
agent does to a call (transfer, disposition). Each route declares its roles here.

- ``GET /api/v1/queues`` [anyone; an agent sees only the waiting callers offered to them]
- ``GET /api/v1/agents`` [supervisor, admin]
- ``GET /api/v1/agents/{agent_id}``, ``POST /api/v1/agents/{agent_id}/{action}`` [agent (own),
  supervisor, admin]
- ``GET /api/v1/agents/{agent_id}/events``: a WebSocket, with a ticket [agent (own), ...]
- ``POST /api/v1/calls/{call_id}/transfer|disposition`` [agent (own call), supervisor, admin]
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from aiohttp import web

from sambung.acd.agents import AGENT_ACTIONS
from sambung.auth.http import IDENTITY, acting_agent
from sambung.auth.model import Forbidden, Role, Session
from sambung.auth.routes import ANY, STAFF, Routes
from sambung.engine.bodies import NUL, json_object, opt_str
from sambung.engine.errors import BadRequest, DatabaseUnavailable, NotFound

if TYPE_CHECKING:
    from sambung.acd.hub import AgentHub, Delivered
    from sambung.auth.service import AuthService

log = structlog.get_logger(__name__)

WS_HEARTBEAT_SECONDS = 20.0
# The close code of a socket whose session ended; 4401 mirrors HTTP 401 (log in again), as
# other WebSocket protocols use it. The reason says why: "session ended: logout".
WS_SESSION_ENDED = 4401


class AcdApi(Protocol):
    """What the ACD's routes ask of it (``acd.Acd`` is the real one)."""

    @property
    def hub(self) -> AgentHub: ...

    def queues_view(self) -> list[dict[str, Any]]: ...

    def agents_view(self) -> list[dict[str, object]]: ...

    def agent_view(self, agent_id: str) -> dict[str, object]:
        """The agent's state; UnknownAgent (404) for an agent that is not configured."""
        ...

    def agent_action(self, agent_id: str, action: str, reason: str = "") -> dict[str, object]: ...

    def transfer(self, call_id: str, queue: str | None, agent_id: str | None) -> None: ...

    async def disposition(
        self,
        call_id: str,
        agent_id: str,
        code: str,
        note: str,
        details: dict[str, Any] | None = None,
    ) -> None: ...

    async def handled_by(self, call_id: str, agent_id: str) -> bool: ...


def add_routes(
    app: web.Application,
    acd: AcdApi,
    auth: AuthService | None = None,
    session_check_seconds: float = 15.0,
) -> None:
    """``session_check_seconds``: how often an open WebSocket checks its session stands."""

    async def own_call(request: web.Request, agent_id: str) -> None:
        # An agent acts only on calls they handled; supervisors and admins on any.
        if request[IDENTITY].role is not Role.AGENT:
            return
        cid = request.match_info["call_id"]
        if NUL in cid:
            raise NotFound(f"no call with id {cid!r}")
        if not await acd.handled_by(cid, agent_id):
            raise Forbidden(f"call {cid!r} is not one of agent {agent_id!r}'s calls")

    async def queues(request: web.Request) -> web.Response:
        view = acd.queues_view()
        ident = request[IDENTITY]
        if ident.role is Role.AGENT:
            # A waiting caller's number, name, IVR inputs and CRM data (a debtor's account and
            # amount due) are for the agent the call is offered to, not the whole floor.
            for q in view:
                q["calls"] = [c for c in q.get("calls", ()) if c.get("agent_id") == ident.agent_id]
        return web.json_response({"queues": view})

    async def all_agents(_: web.Request) -> web.Response:
        return web.json_response({"agents": acd.agents_view()})

    async def agent(request: web.Request) -> web.Response:
        return web.json_response(acd.agent_view(request.match_info["agent_id"]))

    async def agent_action(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action not in AGENT_ACTIONS:
            raise NotFound(f"no agent action {action!r}; actions: {', '.join(AGENT_ACTIONS)}")
        body = await json_object(request)
        reason = opt_str(body, "reason", 40) or ""
        view = acd.agent_action(request.match_info["agent_id"], action, reason)
        return web.json_response(view)

    async def transfer(request: web.Request) -> web.Response:
        body = await json_object(request)
        queue = opt_str(body, "queue", 40)
        agent_id = opt_str(body, "agent_id", 40)
        ident = request[IDENTITY]
        if ident.role is Role.AGENT:
            assert ident.agent_id is not None
            await own_call(request, ident.agent_id)
        acd.transfer(request.match_info["call_id"], queue, agent_id)
        return web.json_response({"accepted": True}, status=202)

    async def disposition(request: web.Request) -> web.Response:
        body = await json_object(request)
        agent_id = acting_agent(request, opt_str(body, "agent_id", 40))
        code = opt_str(body, "code", 40)
        if code is None:
            raise BadRequest("'code' is required")
        await own_call(request, agent_id)
        note = body.get("note", "")
        if not isinstance(note, str) or len(note) > 2000 or NUL in note:
            raise BadRequest("'note' must be a string of at most 2000 characters, without NUL")
        if NUL in request.match_info["call_id"]:
            raise NotFound(f"no call with id {request.match_info['call_id']!r}")
        keys = ("amount", "date", "callback_at", "callback_agent")
        details: dict[str, Any] = {k: body[k] for k in keys if k in body}
        await acd.disposition(request.match_info["call_id"], agent_id, code, note, details)
        return web.json_response({"saved": True}, status=201)

    async def session_ended(session: Session | None) -> str | None:
        if session is None or auth is None:
            return None  # a configured token: it lasts as long as the settings name it
        try:
            return await auth.session_ended(session)
        except DatabaseUnavailable as err:
            # Unknown is not ended: the screen keeps working while PostgreSQL is away, as
            # calls do; the next check decides.
            log.warning("http.ws_session_unchecked", error=err.detail)
            return None

    async def agent_events(request: web.Request) -> web.StreamResponse:
        agent_id = request.match_info["agent_id"]
        session = request[IDENTITY].session
        acd.agent_view(agent_id)  # 404 before the upgrade
        # Subscribe first, then take the snapshot: a change in between is in both, never lost.
        q = acd.hub.open_stream(agent_id)
        view = acd.agent_view(agent_id)
        ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT_SECONDS)
        getter: asyncio.Future[Delivered] | None = None
        reader: asyncio.Future[Any] | None = None
        # The session is checked now and then, not only at the upgrade: a socket may stay open
        # for a whole shift, and a logout, an expiry or a disabled user must reach it.
        check: asyncio.Future[Any] | None = None
        ended: str | None = None
        try:
            await ws.prepare(request)
            await ws.send_str(json.dumps({"seq": 0, "type": "snapshot", "agent": view}))
            reader = asyncio.ensure_future(ws.receive())
            check = asyncio.ensure_future(asyncio.sleep(session_check_seconds))
            while not ws.closed:
                if getter is None:
                    getter = asyncio.ensure_future(q.get())
                await asyncio.wait({getter, reader, check}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    # Sent even when the reader finished too: a taken message is not dropped.
                    await ws.send_str(json.dumps(getter.result().to_wire(), default=str))
                    getter = None
                if reader.done():
                    msg = reader.result()
                    if msg.type in (web.WSMsgType.CLOSE, web.WSMsgType.CLOSED, web.WSMsgType.ERROR):
                        break
                    reader = asyncio.ensure_future(ws.receive())
                if check.done():
                    ended = await session_ended(session)
                    if ended is not None:
                        break
                    check = asyncio.ensure_future(asyncio.sleep(session_check_seconds))
        finally:
            for fut in (getter, reader, check):
                if fut is not None and not fut.done():
                    fut.cancel()
            acd.hub.close_stream(agent_id, q)
            if ended is None:
                await ws.close()
            else:
                log.info("http.ws_session_ended", agent_id=agent_id, reason=ended)
                await ws.close(
                    code=WS_SESSION_ENDED, message=f"session ended: {ended}"[:120].encode()
                )
        return ws

    routes = Routes(app)
    routes.get("/api/v1/queues", queues, roles=ANY)
    routes.get("/api/v1/agents", all_agents, roles=STAFF)
    routes.get("/api/v1/agents/{agent_id}", agent, roles=ANY, own_agent=True)
    routes.get(
        "/api/v1/agents/{agent_id}/events", agent_events, roles=ANY, own_agent=True, ticketed=True
    )
    routes.post("/api/v1/agents/{agent_id}/{action}", agent_action, roles=ANY, own_agent=True)
    # An agent's own call: the handlers check that the agent handled it.
    routes.post("/api/v1/calls/{call_id}/transfer", transfer, roles=ANY)
    routes.post("/api/v1/calls/{call_id}/disposition", disposition, roles=ANY)

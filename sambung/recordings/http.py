"""The recordings and monitoring routes, added to the engine's aiohttp app by ``add_routes``.

The engine's token middleware has put the caller's name and role on the request; every
handler turns them into a ``Principal`` and the services decide what that role may do.

Routes (roles in brackets; "own": an agent's own call, a supervisor's own session):

- ``GET /api/v1/recordings`` with ``call_id``, ``agent_id``, ``queue``, ``campaign``,
  ``since``, ``until``, ``limit`` [supervisor, admin]
- ``GET /api/v1/recordings/{id}`` [supervisor, admin]
- ``GET /api/v1/recordings/{id}/file``: Range; ``?listen=1`` plays in place [supervisor, admin]
- ``GET /api/v1/recordings/{id}/audit`` [admin]
- ``GET /api/v1/calls/{call_id}/recording`` [agent (own), supervisor, admin]
- ``POST /api/v1/calls/{call_id}/recording/start|stop|pause|resume`` [agent (own),
  supervisor, admin]
- ``GET /api/v1/monitor``, ``POST /api/v1/monitor`` [supervisor, admin]
- ``POST /api/v1/monitor/{session_id}/mode``, ``DELETE /api/v1/monitor/{session_id}``
  [supervisor (own), admin]
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from aiohttp import web

from sambung.auth.routes import ANY, Routes
from sambung.engine.bodies import json_object, when
from sambung.engine.errors import BadRequest
from sambung.engine.http import PRINCIPAL, ROLE, problem
from sambung.recordings.errors import Forbidden, RangeNotSatisfiable, RecordingNotFound
from sambung.recordings.model import MonitorMode, Principal, Role
from sambung.recordings.monitor import MonitorService
from sambung.recordings.policy import RECORDING_PREFIX
from sambung.recordings.service import RecordingService

CONTROL_ACTIONS = ("start", "stop", "pause", "resume")
_ID = re.compile(r"^[A-Za-z0-9._-]{1,160}$")


def _json_value(v: Any) -> Any:
    # Times as RFC 3339 (ISO 8601 with "T"), like the rest of the API; str() would put a
    # space there, which clients parsing date-time reject.
    return v.isoformat() if isinstance(v, datetime) else str(v)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_value)


def principal_of(request: web.Request) -> Principal:
    name, role = request.get(PRINCIPAL), request.get(ROLE)
    if not isinstance(name, str) or not isinstance(role, str):
        raise Forbidden("no principal on this request")
    try:
        return Principal(name, Role(role))
    except ValueError as err:
        raise Forbidden(f"unknown role {role!r}") from err


def public_id(name: str) -> str:
    """The API's id of a recording: its name without our folder (``<call id>[-n]``)."""
    return name.removeprefix(RECORDING_PREFIX + "/")


def _name_of(request: web.Request) -> str:
    rid = request.match_info["recording_id"]
    if not _ID.match(rid):
        raise RecordingNotFound(f"no recording {rid!r}")
    return f"{RECORDING_PREFIX}/{rid}"


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": public_id(str(row["name"])), **row}


def _mode(value: Any) -> MonitorMode:
    try:
        return MonitorMode(str(value))
    except ValueError as err:
        modes = ", ".join(m.value for m in MonitorMode)
        raise BadRequest(f"'mode' must be one of {modes}") from err


def add_routes(app: web.Application, recordings: RecordingService, monitor: MonitorService) -> None:
    async def list_recordings(request: web.Request) -> web.Response:
        q = request.query
        limit_raw = q.get("limit", "100")
        # ASCII digits only: str.isdigit() also accepts digits such as "²" that int() refuses.
        if not (limit_raw.isascii() and limit_raw.isdigit()) or not 1 <= int(limit_raw) <= 1000:
            raise BadRequest("'limit' is 1 to 1000")
        filters = {k: q[k] for k in ("call_id", "agent_id", "queue", "campaign") if k in q}
        if any("\x00" in v for v in filters.values()):
            # PostgreSQL text cannot hold NUL, so such a filter would fail rather than match.
            raise BadRequest("filters must not contain NUL")
        rows = await recordings.search(
            principal_of(request),
            **filters,
            since=when(q.get("since"), "since"),
            until=when(q.get("until"), "until"),
            limit=int(limit_raw),
        )
        return web.json_response({"recordings": [_view(r) for r in rows]}, dumps=_dumps)

    async def get_recording(request: web.Request) -> web.Response:
        row = await recordings.get(_name_of(request), principal_of(request))
        return web.json_response(_view(row), dumps=_dumps)

    async def recording_audit(request: web.Request) -> web.Response:
        rows = await recordings.audit_trail(principal_of(request), _name_of(request))
        return web.json_response({"audit": rows}, dumps=_dumps)

    async def recording_file(request: web.Request) -> web.StreamResponse:
        listen = request.query.get("listen", "") in ("1", "true", "yes")
        try:
            dl = await recordings.download(
                _name_of(request),
                principal_of(request),
                request.headers.get("Range"),
                listen=listen,
            )
        except RangeNotSatisfiable as err:
            refused = problem(416, err.title, err.error_id, err.detail)
            refused.headers["Content-Range"] = f"bytes */{err.size}"
            return refused
        resp = web.StreamResponse(status=206 if dl.range else 200)
        resp.content_type = dl.content_type
        resp.headers["Accept-Ranges"] = "bytes"
        resp.headers["Cache-Control"] = "no-store"
        kind = "inline" if listen else "attachment"
        resp.headers["Content-Disposition"] = f'{kind}; filename="{dl.filename}"'
        if dl.range is not None:
            resp.headers["Content-Range"] = f"bytes {dl.range.start}-{dl.range.end}/{dl.size}"
            resp.content_length = dl.range.length
        else:
            resp.content_length = dl.size
        await resp.prepare(request)
        async for block in dl.chunks:
            await resp.write(block)
        await resp.write_eof()
        return resp

    async def live_recording(request: web.Request) -> web.Response:
        view = recordings.view(request.match_info["call_id"], principal_of(request))
        return web.json_response(view)

    async def control(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        call_id = request.match_info["call_id"]
        who = principal_of(request)
        match action:
            case "start":
                view = await recordings.start(call_id, who)
            case "stop":
                view = await recordings.stop(call_id, who)
            case "pause" | "resume":
                view = await recordings.pause(call_id, who, action == "pause")
            case _:
                raise RecordingNotFound(
                    f"no recording action {action!r}; actions: {', '.join(CONTROL_ACTIONS)}"
                )
        return web.json_response(view)

    async def sessions(request: web.Request) -> web.Response:
        return web.json_response({"sessions": monitor.views(principal_of(request))})

    async def start_session(request: web.Request) -> web.Response:
        body = await json_object(request)
        call_id, agent_id = body.get("call_id"), body.get("agent_id")
        if (call_id is None) == (agent_id is None):
            raise BadRequest("give exactly one of 'call_id' or 'agent_id'")
        for v in (call_id, agent_id):
            if v is not None and (not isinstance(v, str) or not 0 < len(v) <= 160):
                raise BadRequest("'call_id' and 'agent_id' are strings")
        view = await monitor.start(
            principal_of(request), _mode(body.get("mode")), call_id, agent_id
        )
        return web.json_response(view, status=202)

    async def session_mode(request: web.Request) -> web.Response:
        body = await json_object(request)
        view = monitor.set_mode(
            principal_of(request), request.match_info["session_id"], _mode(body.get("mode"))
        )
        return web.json_response(view, status=202)

    async def stop_session(request: web.Request) -> web.Response:
        view = monitor.stop(principal_of(request), request.match_info["session_id"])
        return web.json_response(view, status=202)

    # The services decide per role and per call (an agent's own call, a supervisor's own
    # session), so every route is open to every person and closed to a scraper's token.
    routes = Routes(app)
    routes.get("/api/v1/recordings", list_recordings, roles=ANY)
    routes.get("/api/v1/recordings/{recording_id}", get_recording, roles=ANY)
    routes.get("/api/v1/recordings/{recording_id}/file", recording_file, roles=ANY)
    routes.get("/api/v1/recordings/{recording_id}/audit", recording_audit, roles=ANY)
    routes.get("/api/v1/calls/{call_id}/recording", live_recording, roles=ANY)
    routes.post("/api/v1/calls/{call_id}/recording/{action}", control, roles=ANY)
    routes.get("/api/v1/monitor", sessions, roles=ANY)
    routes.post("/api/v1/monitor", start_session, roles=ANY)
    routes.post("/api/v1/monitor/{session_id}/mode", session_mode, roles=ANY)
    routes.delete("/api/v1/monitor/{session_id}", stop_session, roles=ANY)

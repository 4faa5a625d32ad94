"""The engine's HTTP surface: health, readiness, metrics and the API.

``/health`` and ``/ready`` are open (load balancers and systemd probes carry no secrets);
everything else needs ``Authorization: Bearer <token>`` (or the console's cookie), except the
agent events WebSocket, which takes a single-use ticket (auth/http.py). Errors leave as RFC
9457 problem documents with a stable ``error_id`` so clients can branch on it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import asyncpg
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from auth.http import IDENTITY, StaticToken, acting_agent, auth_middleware
from auth.http import add_routes as add_auth_routes
from auth.model import Forbidden, Identity, RateLimited, Role, Session
from auth.service import AuthService
from engine import __version__
from engine.bodies import NUL, json_object, number_id
from engine.errors import BadRequest, DatabaseUnavailable, NotFound, SambungError, Unauthorized
from engine.openapi import document_json

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/health", "/ready", "/api/v1/openapi.json"})
PROBLEM = "application/problem+json"


def problem(status: int, title: str, error_id: str, detail: str, **extra: Any) -> web.Response:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "error_id": error_id,
        **extra,
    }
    resp = web.json_response(body, status=status, content_type=PROBLEM)
    return resp


# PostgreSQL is unreachable, refusing connections, or dropped the one in use.
DB_AWAY = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    ConnectionRefusedError,
)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SambungError as err:
        if err.http_status >= 500:
            log.error("http.error", path=request.path, error_id=err.error_id, detail=err.detail)
        resp = problem(err.http_status, err.title, err.error_id, err.detail)
        if isinstance(err, Unauthorized):
            resp.headers["WWW-Authenticate"] = 'Bearer realm="sambung"'
        if isinstance(err, RateLimited):
            resp.headers["Retry-After"] = str(int(err.retry_after))
        return resp
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        resp = problem(exc.status, exc.reason, f"http.{exc.status}", exc.text or exc.reason)
        if "Allow" in exc.headers:
            # A 405 must say which methods the resource has (RFC 9110, section 15.5.6).
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except DB_AWAY as err:
        # A handler reached PostgreSQL while it is away: say so rather than a bare 500 (calls
        # go on; what needs the database waits for it). Other database errors (a constraint,
        # a bad statement) are bugs and stay 500s below.
        log.warning("http.database_unavailable", path=request.path, error=str(err))
        return problem(
            503,
            DatabaseUnavailable.title,
            DatabaseUnavailable.error_id,
            f"the database is not reachable ({type(err).__name__}); try again shortly",
        )
    except Exception:
        log.exception("http.unhandled", path=request.path)
        return problem(500, "Internal error", "sambung.internal", "unexpected error; see logs")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)


# Who is asking, as the token middleware found them: the token's name and its role.
PRINCIPAL = web.RequestKey("principal", str)
ROLE = web.RequestKey("role", str)


@dataclass(frozen=True)
class RoleToken:
    """A named token with a role (agent, supervisor, admin, or metrics for a scraper)."""

    name: str
    token: str
    role: str


def _set_principal(request: web.Request, ident: Identity) -> None:
    # The recordings feature reads who is asking from these two keys.
    request[PRINCIPAL], request[ROLE] = ident.name, ident.role.value


class AcdApi(Protocol):
    """What the HTTP API asks of the ACD (the engine implements it)."""

    @property
    def hub(self) -> Any: ...

    @property
    def acd(self) -> Any: ...

    def agents_view(self) -> list[dict[str, object]]: ...

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


class DialerApi(Protocol):
    """What the HTTP API asks of the dialer (the engine implements it)."""

    def campaigns_view(self) -> list[dict[str, Any]]: ...

    async def campaign_detail(self, name: str) -> dict[str, Any]: ...

    async def campaign_action(self, name: str, action: str) -> dict[str, Any]: ...

    async def start_import(self, name: str, text: str, source: str) -> dict[str, Any]: ...

    async def import_status(self, import_id: int) -> dict[str, Any]: ...

    async def paid(
        self, account_id: str, amount: Decimal, paid_at: datetime, reference: str
    ) -> dict[str, Any]: ...

    async def add_dnc(
        self, phones: list[str], accounts: list[str], reason: str
    ) -> dict[str, Any]: ...

    async def preview_next(self, name: str, agent_id: str) -> dict[str, Any] | None: ...

    async def preview_dial(self, name: str, record_id: int, agent_id: str) -> dict[str, Any]: ...


AGENT_ACTIONS = ("login", "ready", "pause", "logout", "end-wrap-up")
CAMPAIGN_ACTIONS = ("start", "pause", "resume", "stop")
MAX_LIST_BYTES = 64 * 1024 * 1024
WS_HEARTBEAT_SECONDS = 20.0
# The close code of a socket whose session ended; 4401 mirrors HTTP 401 (log in again), as
# other WebSocket protocols use it. The reason says why: "session ended: logout".
WS_SESSION_ENDED = 4401


# PostgreSQL text cannot hold NUL: a value with one names nothing stored and cannot be saved.
def _opt_str(body: dict[str, Any], key: str, max_len: int = 200) -> str | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or not v or len(v) > max_len or NUL in v:
        raise BadRequest(
            f"{key!r} must be a non-empty string of at most {max_len} characters, without NUL"
        )
    return v


@dataclass(frozen=True)
class HttpDeps:
    tokens: Sequence[str]
    registry: CollectorRegistry
    readiness: Callable[[], dict[str, bool]]
    active_calls: Callable[[], list[dict[str, Any]]]
    call_record: Callable[[str], Awaitable[dict[str, Any] | None]]
    flows: Callable[[], list[dict[str, object]]] = lambda: []
    reload_flows: Callable[[], Awaitable[list[dict[str, object]]]] | None = None
    acd: AcdApi | None = None
    dialer: DialerApi | None = None
    role_tokens: Sequence[RoleToken] = ()
    # A feature's own routes (recordings and monitoring), added before the built-in ones.
    extra_routes: Callable[[web.Application], None] | None = None
    # Logins and sessions; without it only the configured tokens are accepted.
    auth: AuthService | None = None
    cookie_secure: bool = False
    # Whether this agent handled this call (offered, connected or dialled for them).
    call_handled_by: Callable[[str, str], Awaitable[bool]] | None = None
    # The supervisors' wallboard figures (queues, agents, campaigns).
    wallboard: Callable[[], Awaitable[dict[str, Any]]] | None = None
    # The web console and wallboard pages, added when the engine serves them.
    console_routes: Callable[[web.Application], None] | None = None
    # Pages at these origins (besides the engine's own) may open its WebSockets.
    allowed_origins: Sequence[str] = ()
    # How often an open WebSocket checks that its session still stands.
    session_check_seconds: float = 15.0


def build_app(deps: HttpDeps) -> web.Application:
    tokens = [StaticToken(f"api-token-{i + 1}", t, Role.ADMIN) for i, t in enumerate(deps.tokens)]
    tokens += [StaticToken(t.name, t.token, Role(t.role)) for t in deps.role_tokens]
    app = web.Application(
        middlewares=[
            problem_middleware,
            auth_middleware(tokens, deps.auth, _set_principal, deps.allowed_origins),
        ]
    )
    if deps.extra_routes is not None:
        deps.extra_routes(app)
    if deps.auth is not None:
        add_auth_routes(app, deps.auth, deps.cookie_secure)
    if deps.console_routes is not None:
        deps.console_routes(app)

    async def own_call(request: web.Request, agent_id: str) -> None:
        # An agent acts only on calls they handled; supervisors and admins on any.
        if request[IDENTITY].role is not Role.AGENT:
            return
        cid = request.match_info["call_id"]
        if NUL in cid:
            raise NotFound(f"no call with id {cid!r}")
        if deps.call_handled_by is None or not await deps.call_handled_by(cid, agent_id):
            raise Forbidden(f"call {cid!r} is not one of agent {agent_id!r}'s calls")

    description = document_json()  # read once, and a broken file stops the start-up here

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=description, content_type="application/json")

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": __version__})

    async def ready(_: web.Request) -> web.Response:
        checks = deps.readiness()
        ok = all(checks.values())
        return web.json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest(deps.registry))
        resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return resp

    async def calls(_: web.Request) -> web.Response:
        return web.json_response({"calls": deps.active_calls()})

    async def call(request: web.Request) -> web.Response:
        cid = request.match_info["call_id"]
        rec = None if NUL in cid else await deps.call_record(cid)
        if rec is None:
            raise NotFound(f"no call with id {cid!r}")
        return web.json_response(rec)

    async def wallboard(_: web.Request) -> web.Response:
        if deps.wallboard is None:
            raise NotFound("the wallboard is not available in this engine")
        return web.json_response(await deps.wallboard(), dumps=_dumps)

    async def version(_: web.Request) -> web.Response:
        return web.json_response({"version": __version__})

    async def flows(_: web.Request) -> web.Response:
        return web.json_response({"flows": deps.flows()})

    async def reload_flows(_: web.Request) -> web.Response:
        if deps.reload_flows is None:
            raise NotFound("flow reload is not available")
        return web.json_response({"flows": await deps.reload_flows()})

    def need_acd() -> AcdApi:
        if deps.acd is None:
            raise NotFound("the ACD is not running in this engine")
        return deps.acd

    async def queues(request: web.Request) -> web.Response:
        view = need_acd().acd.view()
        ident = request[IDENTITY]
        if ident.role is Role.AGENT:
            # A waiting caller's number, name, IVR inputs and CRM data (a debtor's account and
            # amount due) are for the agent the call is offered to, not the whole floor.
            for q in view:
                q["calls"] = [c for c in q.get("calls", ()) if c.get("agent_id") == ident.agent_id]
        return web.json_response({"queues": view})

    async def agents(_: web.Request) -> web.Response:
        return web.json_response({"agents": need_acd().agents_view()})

    async def agent(request: web.Request) -> web.Response:
        api = need_acd()
        return web.json_response(api.acd.agents.get(request.match_info["agent_id"]).view())

    async def agent_action(request: web.Request) -> web.Response:
        api = need_acd()
        action = request.match_info["action"]
        if action not in AGENT_ACTIONS:
            raise NotFound(f"no agent action {action!r}; actions: {', '.join(AGENT_ACTIONS)}")
        body = await json_object(request)
        reason = _opt_str(body, "reason", 40) or ""
        view = api.agent_action(request.match_info["agent_id"], action, reason)
        return web.json_response(view)

    async def transfer(request: web.Request) -> web.Response:
        body = await json_object(request)
        queue = _opt_str(body, "queue", 40)
        agent_id = _opt_str(body, "agent_id", 40)
        ident = request[IDENTITY]
        if ident.role is Role.AGENT:
            assert ident.agent_id is not None
            await own_call(request, ident.agent_id)
        need_acd().transfer(request.match_info["call_id"], queue, agent_id)
        return web.json_response({"accepted": True}, status=202)

    async def disposition(request: web.Request) -> web.Response:
        body = await json_object(request)
        agent_id = acting_agent(request, _opt_str(body, "agent_id", 40))
        code = _opt_str(body, "code", 40)
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
        await need_acd().disposition(request.match_info["call_id"], agent_id, code, note, details)
        return web.json_response({"saved": True}, status=201)

    async def session_ended(session: Session | None) -> str | None:
        if session is None or deps.auth is None:
            return None  # a configured token: it lasts as long as the settings name it
        try:
            return await deps.auth.session_ended(session)
        except DatabaseUnavailable as err:
            # Unknown is not ended: the screen keeps working while PostgreSQL is away, as
            # calls do; the next check decides.
            log.warning("http.ws_session_unchecked", error=err.detail)
            return None

    async def agent_events(request: web.Request) -> web.StreamResponse:
        api = need_acd()
        agent_id = request.match_info["agent_id"]
        session = request[IDENTITY].session
        api.acd.agents.get(agent_id)  # 404 before the upgrade
        # Subscribe first, then take the snapshot: a change in between is in both, never lost.
        q = api.hub.subscribe(agent_id)
        view = api.acd.agents.get(agent_id).view()
        ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT_SECONDS)
        getter: asyncio.Future[Any] | None = None
        reader: asyncio.Future[Any] | None = None
        # The session is checked now and then, not only at the upgrade: a socket may stay open
        # for a whole shift, and a logout, an expiry or a disabled user must reach it.
        check: asyncio.Future[Any] | None = None
        ended: str | None = None
        try:
            await ws.prepare(request)
            await ws.send_str(json.dumps({"seq": 0, "type": "snapshot", "agent": view}))
            reader = asyncio.ensure_future(ws.receive())
            check = asyncio.ensure_future(asyncio.sleep(deps.session_check_seconds))
            while not ws.closed:
                if getter is None:
                    getter = asyncio.ensure_future(q.get())
                await asyncio.wait({getter, reader, check}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    # Sent even when the reader finished too: a taken message is not dropped.
                    await ws.send_str(json.dumps(getter.result(), default=str))
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
                    check = asyncio.ensure_future(asyncio.sleep(deps.session_check_seconds))
        finally:
            for fut in (getter, reader, check):
                if fut is not None and not fut.done():
                    fut.cancel()
            api.hub.unsubscribe(agent_id, q)
            if ended is None:
                await ws.close()
            else:
                log.info("http.ws_session_ended", agent_id=agent_id, reason=ended)
                await ws.close(
                    code=WS_SESSION_ENDED, message=f"session ended: {ended}"[:120].encode()
                )
        return ws

    def need_dialer() -> DialerApi:
        if deps.dialer is None:
            raise NotFound("the dialer is not running in this engine")
        return deps.dialer

    async def campaigns(_: web.Request) -> web.Response:
        return web.json_response({"campaigns": need_dialer().campaigns_view()})

    async def campaign(request: web.Request) -> web.Response:
        detail = await need_dialer().campaign_detail(request.match_info["name"])
        return web.json_response(detail, dumps=_dumps)

    async def campaign_action(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action not in CAMPAIGN_ACTIONS:
            raise NotFound(f"no campaign action {action!r}; actions: {', '.join(CAMPAIGN_ACTIONS)}")
        view = await need_dialer().campaign_action(request.match_info["name"], action)
        return web.json_response(view, dumps=_dumps)

    async def campaign_import(request: web.Request) -> web.Response:
        api = need_dialer()
        if request.content_length is not None and request.content_length > MAX_LIST_BYTES:
            raise BadRequest(f"a list is at most {MAX_LIST_BYTES} bytes")
        # Read here rather than with request.read(), which refuses bodies over the app's
        # client_max_size (1 MiB): far less than a list may be.
        raw = bytearray()
        async for block in request.content.iter_chunked(1 << 16):
            raw += block
            if len(raw) > MAX_LIST_BYTES:
                raise BadRequest(f"a list is at most {MAX_LIST_BYTES} bytes")
        if not raw:
            raise BadRequest("send the list as the request body (text/csv, UTF-8, with a header)")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise BadRequest(f"the list is not UTF-8 text (byte {err.start})") from err
        if NUL in text:
            raise BadRequest("the list contains NUL characters: it is not a text CSV file")
        source = request.query.get("source", "api")[:200]
        if NUL in source:
            raise BadRequest("'source' (query) must not contain NUL")
        started = await api.start_import(request.match_info["name"], text, source)
        return web.json_response(started, status=202)

    async def import_status(request: web.Request) -> web.Response:
        raw = request.match_info["import_id"]
        import_id = number_id(raw)
        if import_id is None:
            raise NotFound(f"no import with id {raw!r}")
        return web.json_response(await need_dialer().import_status(import_id), dumps=_dumps)

    async def paid(request: web.Request) -> web.Response:
        body = await json_object(request)
        account = request.match_info["account_id"]
        if not account or len(account) > 64 or NUL in account:
            raise BadRequest("the account id is 1 to 64 characters, without NUL")
        try:
            amount = Decimal(str(body.get("amount")))
        except (InvalidOperation, ValueError) as err:
            raise BadRequest("'amount' (a positive number) is required") from err
        if not amount.is_finite() or amount <= 0 or amount > Decimal("1e15"):
            raise BadRequest("'amount' must be a positive number")
        # Stored in cents: an amount that rounds to nothing is no payment.
        amount = amount.quantize(Decimal("0.01"))
        if amount == 0:
            raise BadRequest("'amount' must be at least 0.01")
        paid_at_raw = body.get("paid_at")
        if paid_at_raw is None:
            paid_at = datetime.now(UTC)
        else:
            try:
                paid_at = datetime.fromisoformat(str(paid_at_raw))
            except ValueError as err:
                raise BadRequest("'paid_at' must be ISO 8601 with an offset") from err
            if paid_at.tzinfo is None:
                raise BadRequest("'paid_at' needs a UTC offset (e.g. +07:00)")
            try:
                paid_at = paid_at.astimezone(UTC)
            except OverflowError as err:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
                raise BadRequest("'paid_at' is out of range") from err
        reference = _opt_str(body, "reference", 100) or ""
        result = await need_dialer().paid(account, amount, paid_at, reference)
        return web.json_response(result, status=201)

    async def dnc(request: web.Request) -> web.Response:
        body = await json_object(request)
        phones_raw = body.get("phones", [])
        accounts = body.get("accounts", [])
        if not isinstance(phones_raw, list) or not isinstance(accounts, list):
            raise BadRequest("'phones' and 'accounts' are lists")
        if not phones_raw and not accounts:
            raise BadRequest("give 'phones' or 'accounts' to add")
        if not all(isinstance(p, str) and 0 < len(p) <= 40 and NUL not in p for p in phones_raw):
            raise BadRequest("each phone is a string of 1 to 40 characters, without NUL")
        phones = list(phones_raw)
        if not all(isinstance(a, str) and 0 < len(a) <= 64 and NUL not in a for a in accounts):
            raise BadRequest("each account id is a string of 1 to 64 characters, without NUL")
        reason = _opt_str(body, "reason", 200) or "api"
        return web.json_response(await need_dialer().add_dnc(phones, accounts, reason), status=201)

    async def preview(request: web.Request) -> web.Response:
        given = request.query.get("agent_id")
        if given is not None and not 0 < len(given) <= 40:
            raise BadRequest("'agent_id' (query) is 1 to 40 characters")
        agent_id = acting_agent(request, given)
        rec = await need_dialer().preview_next(request.match_info["name"], agent_id)
        if rec is None:
            return web.json_response({"record": None}, status=200)
        return web.json_response({"record": rec}, dumps=_dumps)

    async def preview_dial(request: web.Request) -> web.Response:
        body = await json_object(request)
        agent_id = acting_agent(request, _opt_str(body, "agent_id", 40))
        raw = request.match_info["record_id"]
        record_id = number_id(raw)
        if record_id is None:
            raise NotFound(f"no record {raw!r}")
        started = await need_dialer().preview_dial(request.match_info["name"], record_id, agent_id)
        return web.json_response(started, status=202)

    app.router.add_get("/api/v1/campaigns/{name}/preview", preview)
    app.router.add_post("/api/v1/campaigns/{name}/records/{record_id}/dial", preview_dial)
    app.router.add_get("/api/v1/campaigns", campaigns)
    app.router.add_get("/api/v1/campaigns/{name}", campaign)
    app.router.add_post("/api/v1/campaigns/{name}/imports", campaign_import)
    app.router.add_post("/api/v1/campaigns/{name}/{action}", campaign_action)
    app.router.add_get("/api/v1/imports/{import_id}", import_status)
    app.router.add_post("/api/v1/accounts/{account_id}/paid", paid)
    app.router.add_post("/api/v1/dnc", dnc)
    app.router.add_get("/api/v1/queues", queues)
    app.router.add_get("/api/v1/agents", agents)
    app.router.add_get("/api/v1/agents/{agent_id}", agent)
    app.router.add_get("/api/v1/agents/{agent_id}/events", agent_events)
    app.router.add_post("/api/v1/agents/{agent_id}/{action}", agent_action)
    app.router.add_post("/api/v1/calls/{call_id}/transfer", transfer)
    app.router.add_post("/api/v1/calls/{call_id}/disposition", disposition)
    app.router.add_get("/health", health)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/api/v1/flows", flows)
    app.router.add_post("/api/v1/flows/reload", reload_flows)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/version", version)
    app.router.add_get("/api/v1/wallboard", wallboard)
    app.router.add_get("/api/v1/calls", calls)
    app.router.add_get("/api/v1/calls/{call_id}", call)
    return app

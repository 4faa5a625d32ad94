"""Who may call what: authentication, the route policy, and the audit of privileged requests.

One middleware does it all, before any handler runs:

1. Open routes (probes, the API description, the login form and route, static assets) pass.
2. Anyone else proves who they are with ``Authorization: Bearer`` (a configured API token or a
   session token from ``POST /api/v1/auth/login``) or with the console's session cookie. A
   state-changing request carried by the cookie must also send the session's CSRF token in
   ``X-CSRF-Token``: a page on another site can make the browser send the cookie, not read the
   token. WebSockets (``TICKETED``) take only a single-use ticket from
   ``POST /api/v1/auth/ws-ticket`` in the query, and a browser's ``Origin`` must be this
   host's or an allowed one: browsers send cookies with a WebSocket from any site and let no
   page set headers on one, and a token in a URL is written to logs.
3. Each route declares its roles where it is added (auth/routes.py); the app's
   ``RoutePolicy`` collects them. A route that declares none is admin-only. Routes marked
   ``own_agent`` take an agent id in the path, which an agent must match with their own. The
   ``metrics`` role (a scraper's token) may read ``/metrics`` and nothing else.
4. Every request that changes something, and every refusal, goes to the audit log with who,
   what, the outcome, the status and the path (never the query string, which may hold a
   ticket).

Handlers that take an agent id in the body, or act on a call, ask ``acting_agent`` and the
engine's call-ownership check themselves.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from sambung.auth.model import USER_ROLES, Forbidden, Identity, InvalidUser, Role, UserNotFound
from sambung.auth.proxies import Network, client_address
from sambung.auth.routes import ADMINS, AGENT, ANY, ROUTE_POLICY, Routes
from sambung.auth.service import AuthService
from sambung.engine.bodies import json_object, text, when
from sambung.engine.errors import BadRequest, SambungError, Unauthorized

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
IDENTITY = web.RequestKey("identity", Identity)
COOKIE = "sambung_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class StaticToken:
    """A configured API token: its name and role (plain ``api_tokens`` are admins)."""

    name: str
    token: str
    role: Role


def route_key(request: web.Request) -> tuple[str, str]:
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else request.path
    return request.method, canonical


def acting_agent(request: web.Request, given: str | None) -> str:
    """The agent id a request acts for: an agent's own, whatever they sent; others must say."""
    ident = request[IDENTITY]
    if ident.role is AGENT:
        if given is not None and given != ident.agent_id:
            raise Forbidden(f"an agent acts only as themselves ({ident.agent_id!r})")
        assert ident.agent_id is not None
        return ident.agent_id
    if given is None:
        if ident.agent_id is not None:
            return ident.agent_id
        raise BadRequest("'agent_id' is required")
    return given


# The reverse proxies whose X-Forwarded-For is believed (``[http] trusted_proxies``); none
# by default, and then the header is ignored.
TRUSTED_PROXIES = web.AppKey("trusted_proxies", tuple[Network, ...])


def client_ip(request: web.Request) -> str:
    """The address the login limits and the audit use (auth/proxies.py says whom to believe)."""
    trusted = request.config_dict.get(TRUSTED_PROXIES, ())
    return client_address(request.remote, request.headers.getall("X-Forwarded-For", []), trusted)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _authority(scheme: str, netloc: str) -> str | None:
    """host[:port] as a browser would compare it (lower case, the scheme's port left out)."""
    try:
        parts = urlsplit(f"//{netloc}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"


def origin_allowed(origin: str | None, host: str | None, allowed: Iterable[str] = ()) -> bool:
    """Whether a WebSocket from a page at ``origin`` may be opened on ``host``.

    No Origin: not a browser (browsers always send one with a WebSocket), and such a client
    holds its ticket by itself. Otherwise the page must come from this host, as the browser
    reached it, or from one of ``allowed`` (a console served elsewhere, a proxy that changes
    the Host header)."""
    if origin is None:
        return True
    given = origin.strip().lower().rstrip("/")
    if given in {a.lower().rstrip("/") for a in allowed}:
        return True
    parts = urlsplit(given)
    if parts.scheme not in _DEFAULT_PORTS or host is None or parts.path or parts.query:
        return False
    page = _authority(parts.scheme, parts.netloc)
    return page is not None and page == _authority(parts.scheme, host.strip().lower())


def auth_middleware(
    tokens: Sequence[StaticToken],
    auth: AuthService | None,
    on_identity: Callable[[web.Request, Identity], None] | None = None,
    allowed_origins: Sequence[str] = (),
) -> Middleware:
    known = [(t.token.encode(), t) for t in tokens]

    def static(given: str) -> Identity | None:
        offered = given.encode()
        match: StaticToken | None = None
        # Constant time over every token, and never stop early: timing says nothing.
        for secret, t in known:
            if hmac.compare_digest(offered, secret) and match is None:
                match = t
        if match is None:
            return None
        agent = match.name if match.role is AGENT else None
        return Identity(match.name, match.role, agent)

    async def by_ticket(request: web.Request) -> Identity:
        if not origin_allowed(
            request.headers.get("Origin"), request.headers.get("Host"), allowed_origins
        ):
            # Checked before the ticket is looked at: a refused page spends no ticket.
            raise Forbidden("this page's Origin may not open the engine's WebSockets")
        ticket = request.query.get("ticket", "")
        ident = None
        if ticket and len(ticket) <= 200 and auth is not None:
            ident = await auth.redeem_ticket(ticket)
        if ident is None:
            raise Unauthorized(
                "a WebSocket needs a fresh ticket from POST /api/v1/auth/ws-ticket"
                " in its 'ticket' query parameter"
            )
        return ident

    async def identify(request: web.Request, key: tuple[str, str]) -> Identity:
        if key in request.app[ROUTE_POLICY].ticketed:
            return await by_ticket(request)
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        given = given.strip()
        if scheme.lower() == "bearer" and given:
            ident = static(given)
            if ident is None and auth is not None and len(given) <= 200:
                session = await auth.resolve(given)
                ident = None if session is None else auth.identity(session)
            if ident is None:
                raise Unauthorized("a valid bearer token is required")
            return ident
        cookie = request.cookies.get(COOKIE)
        if cookie and auth is not None and len(cookie) <= 200:
            session = await auth.resolve(cookie)
            if session is not None:
                if request.method not in SAFE_METHODS:
                    sent = request.headers.get(CSRF_HEADER, "")
                    if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
                        raise Forbidden(
                            f"a request made with the session cookie needs {CSRF_HEADER}"
                        )
                return auth.identity(session)
        raise Unauthorized("log in, or send a valid bearer token")

    def record(
        request: web.Request, ident: Identity | None, key: tuple[str, str], status: int
    ) -> None:
        if auth is None:
            return
        outcome = "ok" if status < 400 else "denied" if status in (401, 403) else "failed"
        actor = (
            ident.session.user.username
            if ident and ident.session
            else (ident.name if ident else "anonymous")
        )
        auth.audit(
            actor,
            ident.role.value if ident else "anonymous",
            f"{key[0]} {key[1]}",
            outcome,
            # The path only: a query string may carry a ticket or other secrets.
            target=request.path,
            status=status,
            ip=client_ip(request),
            # One key: a path parameter may be named like one of audit()'s own arguments.
            params=dict(request.match_info),
        )

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = route_key(request)
        policy = request.app[ROUTE_POLICY]
        if key in policy.open:
            return await handler(request)
        # Unknown paths also need a token first: an anonymous caller learns nothing about
        # which paths exist.
        unknown = request.match_info.http_exception is not None
        ident: Identity | None = None
        try:
            ident = await identify(request, key)
            request[IDENTITY] = ident
            if on_identity is not None:
                on_identity(request, ident)
            allowed = ANY if unknown else policy.allowed(key)
            if ident.role not in allowed:
                raise Forbidden(f"the {ident.role.value} role may not use {key[0]} {key[1]}")
            own = request.match_info.get("agent_id")
            if key in policy.own_agent and ident.role is AGENT and own != ident.agent_id:
                raise Forbidden(f"an agent acts only as themselves ({ident.agent_id!r})")
            resp = await handler(request)
        except SambungError as err:
            # Refusals are audited whatever the method; failed reads are not (probes, typos).
            if err.http_status == 403 or key[0] not in SAFE_METHODS:
                record(request, ident, key, err.http_status)
            raise
        except web.HTTPException as exc:
            if key[0] not in SAFE_METHODS:
                record(request, ident, key, exc.status)
            raise
        if key[0] not in SAFE_METHODS and key != ("POST", "/api/v1/auth/logout"):
            record(request, ident, key, resp.status)
        return resp

    return check


# ---- the auth routes ----------------------------------------------------------------------


def _str(body: dict[str, Any], key: str, lo: int, hi: int) -> str:
    v = body.get(key)
    if not isinstance(v, str) or not lo <= len(v) <= hi:
        raise BadRequest(f"{key!r} must be a string of {lo} to {hi} characters")
    return text(v, key)


def set_session_cookie(resp: web.StreamResponse, token: str, max_age: int, secure: bool) -> None:
    resp.set_cookie(
        COOKIE, token, max_age=max_age, httponly=True, samesite="Strict", secure=secure, path="/"
    )


USER_FIELDS = ("password", "role", "agent_id", "display_name", "language", "disabled")


def _user_changes(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - set(USER_FIELDS))
    if unknown:
        raise BadRequest(
            f"unknown field(s): {', '.join(unknown)}; fields: {', '.join(USER_FIELDS)}"
        )
    out: dict[str, Any] = {}
    if "password" in body:
        out["password"] = _str(body, "password", 8, 256)
    if "role" in body:
        if body["role"] not in tuple(r.value for r in USER_ROLES):
            raise BadRequest("'role' is agent, supervisor or admin")
        out["role"] = body["role"]
    if "agent_id" in body:
        v = body["agent_id"]
        if v is not None and (not isinstance(v, str) or not 1 <= len(v) <= 40):
            raise BadRequest("'agent_id' is null or a string of 1 to 40 characters")
        out["agent_id"] = v
    if "display_name" in body:
        out["display_name"] = _str(body, "display_name", 0, 100)
    if "language" in body:
        if body["language"] not in ("id", "en"):
            raise BadRequest("'language' is id or en")
        out["language"] = body["language"]
    if "disabled" in body:
        if not isinstance(body["disabled"], bool):
            raise BadRequest("'disabled' is true or false")
        out["disabled"] = body["disabled"]
    return out


def add_routes(app: web.Application, auth: AuthService, cookie_secure: bool = False) -> None:
    async def login(request: web.Request) -> web.Response:
        body = await json_object(request, required=True)
        username = _str(body, "username", 1, 64)
        password = _str(body, "password", 1, 256)
        token, session = await auth.login(
            username, password, client_ip(request), request.headers.get("User-Agent")
        )
        resp = web.json_response(
            {
                "token": token,
                "expires_at": session.expires_at.isoformat(),
                "csrf_token": session.csrf_token,
                "user": session.user.view(),
            }
        )
        set_session_cookie(resp, token, int(auth.policy.lifetime.total_seconds()), cookie_secure)
        return resp

    async def logout(request: web.Request) -> web.Response:
        ident = request[IDENTITY]
        if ident.session is None:
            raise BadRequest("API tokens have no session to end; remove them from the settings")
        await auth.logout(ident.session, client_ip(request))
        resp = web.Response(status=204)
        resp.del_cookie(COOKIE, path="/")
        return resp

    async def me(request: web.Request) -> web.Response:
        ident = request[IDENTITY]
        if ident.session is None:
            user = {
                "username": ident.name,
                "role": ident.role.value,
                "agent_id": ident.agent_id,
                "display_name": ident.name,
                "language": "id",
                "disabled": False,
                "created_at": None,
            }
            return web.json_response({"user": user, "expires_at": None, "token": "static"})
        s = ident.session
        return web.json_response(
            {"user": s.user.view(), "expires_at": s.expires_at.isoformat(), "token": "session"}
        )

    async def ws_ticket(request: web.Request) -> web.Response:
        ticket, expires_in = await auth.issue_ticket(request[IDENTITY])
        return web.json_response(
            {"ticket": ticket, "expires_in": expires_in}, headers={"Cache-Control": "no-store"}
        )

    async def users(_: web.Request) -> web.Response:
        return web.json_response({"users": [u.view() for u in await auth.users()]})

    async def create_user(request: web.Request) -> web.Response:
        body = await json_object(request, required=True)
        username = _str(body, "username", 1, 64)
        changes = _user_changes({k: v for k, v in body.items() if k != "username"})
        if "password" not in changes or "role" not in changes:
            raise BadRequest("'password' and 'role' are required")
        if changes.get("disabled"):
            raise BadRequest("a new user cannot start disabled")
        user = await auth.create_user(
            username,
            changes["password"],
            Role(changes["role"]),
            changes.get("agent_id"),
            changes.get("display_name", ""),
            changes.get("language", "id"),
        )
        return web.json_response(user.view(), status=201)

    async def update_user(request: web.Request) -> web.Response:
        changes = _user_changes(await json_object(request, required=True))
        name = text(request.match_info["username"], "username")
        user = await auth.update_user(name, changes)
        return web.json_response(user.view())

    async def delete_user(request: web.Request) -> web.Response:
        name = text(request.match_info["username"], "username")
        ident = request[IDENTITY]
        if ident.session is not None and ident.session.user.username == name:
            raise InvalidUser("an admin cannot disable their own login")
        await auth.disable_user(name)
        return web.Response(status=204)

    async def audit(request: web.Request) -> web.Response:
        q = request.query
        limit_raw = q.get("limit", "100")
        if not (limit_raw.isascii() and limit_raw.isdigit()) or not 1 <= int(limit_raw) <= 1000:
            raise BadRequest("'limit' is 1 to 1000")
        actor, action = q.get("actor"), q.get("action")
        entries = await auth.audit_entries(
            None if actor is None else text(actor, "actor"),
            None if action is None else text(action, "action"),
            when(q.get("since"), "since"),
            when(q.get("until"), "until"),
            int(limit_raw),
        )
        return web.json_response({"entries": entries})

    routes = Routes(app)
    routes.post("/api/v1/auth/login", login, open=True)
    routes.post("/api/v1/auth/logout", logout, roles=ANY)
    routes.get("/api/v1/auth/me", me, roles=ANY)
    routes.post("/api/v1/auth/ws-ticket", ws_ticket, roles=ANY)
    routes.get("/api/v1/users", users, roles=ADMINS)
    routes.post("/api/v1/users", create_user, roles=ADMINS)
    routes.patch("/api/v1/users/{username}", update_user, roles=ADMINS)
    routes.delete("/api/v1/users/{username}", delete_user, roles=ADMINS)
    routes.get("/api/v1/audit", audit, roles=ADMINS)


__all__ = ["IDENTITY", "UserNotFound", "acting_agent", "add_routes", "auth_middleware"]

"""The engine's HTTP app: the middlewares, and the shell's own routes (health, readiness,
metrics, version, the API description, live calls). Each feature adds its routes with its own
``http.py``; the app is built from them here.

``/health`` and ``/ready`` are open (load balancers and systemd probes carry no secrets);
everything else needs ``Authorization: Bearer <token>`` (or the console's cookie), except the
agent events WebSocket, which takes a single-use ticket (auth/http.py). Errors leave as RFC
9457 problem documents with a stable ``error_id`` so clients can branch on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from sambung import __version__
from sambung.auth.http import TRUSTED_PROXIES, StaticToken, auth_middleware
from sambung.auth.http import add_routes as add_auth_routes
from sambung.auth.model import Identity, RateLimited, Role
from sambung.auth.proxies import parse_networks
from sambung.auth.routes import ANY, METRICS, STAFF, Routes, policy_of
from sambung.auth.service import AuthService
from sambung.engine.bodies import NUL
from sambung.engine.errors import DatabaseUnavailable, NotFound, SambungError, Unauthorized
from sambung.engine.openapi import document_json

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


@dataclass(frozen=True)
class HttpDeps:
    tokens: Sequence[str]
    registry: CollectorRegistry
    readiness: Callable[[], dict[str, bool]]
    active_calls: Callable[[], list[dict[str, Any]]]
    call_record: Callable[[str], Awaitable[dict[str, Any] | None]]
    role_tokens: Sequence[RoleToken] = ()
    # Each feature's routes (each route declaring its roles), added in this order.
    features: Sequence[Callable[[web.Application], None]] = ()
    # Logins and sessions; without it only the configured tokens are accepted.
    auth: AuthService | None = None
    cookie_secure: bool = False
    # Pages at these origins (besides the engine's own) may open its WebSockets.
    allowed_origins: Sequence[str] = ()
    # Reverse proxies whose X-Forwarded-For is believed (IPs or CIDR blocks).
    trusted_proxies: Sequence[str] = ()
    # "active" or "standby" (a hot standby waiting for the lease), shown by /ready.
    role: Callable[[], str] | None = None


def build_app(deps: HttpDeps) -> web.Application:
    tokens = [StaticToken(f"api-token-{i + 1}", t, Role.ADMIN) for i, t in enumerate(deps.tokens)]
    tokens += [StaticToken(t.name, t.token, Role(t.role)) for t in deps.role_tokens]
    app = web.Application(
        middlewares=[
            problem_middleware,
            auth_middleware(tokens, deps.auth, _set_principal, deps.allowed_origins),
        ]
    )
    app[TRUSTED_PROXIES] = parse_networks(deps.trusted_proxies)
    policy_of(app)
    for add in deps.features:
        add(app)
    if deps.auth is not None:
        add_auth_routes(app, deps.auth, deps.cookie_secure)

    description = document_json()  # read once, and a broken file stops the start-up here

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=description, content_type="application/json")

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": __version__})

    async def ready(_: web.Request) -> web.Response:
        checks = deps.readiness()
        ok = all(checks.values())
        body: dict[str, Any] = {"ready": ok, "checks": checks}
        if deps.role is not None:
            # A standby is alive and warm but takes no traffic: 503, and says why.
            body["role"] = deps.role()
        return web.json_response(body, status=200 if ok else 503)

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

    async def version(_: web.Request) -> web.Response:
        return web.json_response({"version": __version__})

    routes = Routes(app)
    # Load balancers and systemd probes carry no secrets.
    routes.get("/health", health, open=True)
    routes.get("/ready", ready, open=True)
    routes.get("/api/v1/openapi.json", openapi, open=True)
    routes.get("/metrics", metrics, roles=STAFF | {METRICS})
    routes.get("/api/v1/version", version, roles=ANY)
    routes.get("/api/v1/calls", calls, roles=STAFF)
    routes.get("/api/v1/calls/{call_id}", call, roles=STAFF)
    return app

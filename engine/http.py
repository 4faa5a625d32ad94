"""The engine's HTTP surface: health, readiness, metrics and the API.

``/health`` and ``/ready`` are open (load balancers and systemd probes carry no secrets);
everything else needs ``Authorization: Bearer <token>``. Errors leave as RFC 9457 problem
documents with a stable ``error_id`` so clients can branch on it.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from engine import __version__
from engine.errors import NotFound, SambungError, Unauthorized

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/health", "/ready"})
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
        return resp
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem(exc.status, exc.reason, f"http.{exc.status}", exc.text or exc.reason)
    except Exception:
        log.exception("http.unhandled", path=request.path)
        return problem(500, "Internal error", "sambung.internal", "unexpected error; see logs")


def token_middleware(tokens: Sequence[str]) -> Middleware:
    encoded = [t.encode() for t in tokens]

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        # Compare against every token in constant time so timing says nothing about which
        # prefix matched.
        ok = (
            scheme.lower() == "bearer"
            and bool(given)
            and any(hmac.compare_digest(given.strip().encode(), t) for t in encoded)
        )
        if not ok:
            raise Unauthorized("a valid bearer token is required")
        return await handler(request)

    return check


@dataclass(frozen=True)
class HttpDeps:
    tokens: Sequence[str]
    registry: CollectorRegistry
    readiness: Callable[[], dict[str, bool]]
    active_calls: Callable[[], list[dict[str, Any]]]
    call_record: Callable[[str], Awaitable[dict[str, Any] | None]]
    flows: Callable[[], list[dict[str, object]]] = lambda: []
    reload_flows: Callable[[], Awaitable[list[dict[str, object]]]] | None = None


def build_app(deps: HttpDeps) -> web.Application:
    app = web.Application(middlewares=[problem_middleware, token_middleware(deps.tokens)])

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
        rec = await deps.call_record(cid)
        if rec is None:
            raise NotFound(f"no call with id {cid!r}")
        return web.json_response(rec)

    async def version(_: web.Request) -> web.Response:
        return web.json_response({"version": __version__})

    async def flows(_: web.Request) -> web.Response:
        return web.json_response({"flows": deps.flows()})

    async def reload_flows(_: web.Request) -> web.Response:
        if deps.reload_flows is None:
            raise NotFound("flow reload is not available")
        return web.json_response({"flows": await deps.reload_flows()})

    app.router.add_get("/health", health)
    app.router.add_get("/api/v1/flows", flows)
    app.router.add_post("/api/v1/flows/reload", reload_flows)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/version", version)
    app.router.add_get("/api/v1/calls", calls)
    app.router.add_get("/api/v1/calls/{call_id}", call)
    return app

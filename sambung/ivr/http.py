"""The IVR's routes: the flows in service, and reloading them (calendars first, then flows;
both or neither). Each route declares its roles here.

- ``GET /api/v1/flows`` [supervisor, admin]
- ``POST /api/v1/flows/reload`` [admin]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from sambung.auth.routes import ADMINS, STAFF, Routes


def add_routes(
    app: web.Application,
    view: Callable[[], list[dict[str, object]]],
    reload: Callable[[], Awaitable[list[dict[str, object]]]],
) -> None:
    async def flows(_: web.Request) -> web.Response:
        return web.json_response({"flows": view()})

    async def reload_flows(_: web.Request) -> web.Response:
        return web.json_response({"flows": await reload()})

    routes = Routes(app)
    routes.get("/api/v1/flows", flows, roles=STAFF)
    routes.post("/api/v1/flows/reload", reload_flows, roles=ADMINS)

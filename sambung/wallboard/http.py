"""The wallboard's route: ``GET /api/v1/wallboard`` [supervisor, admin]."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sambung.auth.routes import STAFF, Routes


def add_routes(app: web.Application, view: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    async def wallboard(_: web.Request) -> web.Response:
        return web.json_response(await view(), dumps=lambda o: json.dumps(o, default=str))

    Routes(app).get("/api/v1/wallboard", wallboard, roles=STAFF)

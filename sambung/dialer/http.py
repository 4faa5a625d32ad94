"""The dialer's routes: campaigns and their actions, list imports, payments, do-not-call, and
preview dialling. Each route declares its roles here.

- ``GET /api/v1/campaigns``, ``GET /api/v1/campaigns/{name}``, ``POST
  /api/v1/campaigns/{name}/{action}``, ``POST /api/v1/campaigns/{name}/imports``, ``GET
  /api/v1/imports/{import_id}``, ``POST /api/v1/dnc`` [supervisor, admin]
- ``POST /api/v1/accounts/{account_id}/paid`` [admin]
- ``GET /api/v1/campaigns/{name}/preview``, ``POST
  /api/v1/campaigns/{name}/records/{record_id}/dial`` [anyone: an agent acts as themselves]
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sambung.auth.http import acting_agent
from sambung.auth.routes import ADMINS, ANY, STAFF, Routes
from sambung.engine.bodies import NUL, json_object, number_id, opt_str
from sambung.engine.errors import BadRequest, NotFound

if TYPE_CHECKING:
    from sambung.dialer.feature import Dialer

CAMPAIGN_ACTIONS = ("start", "pause", "resume", "stop")
MAX_LIST_BYTES = 64 * 1024 * 1024


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)


def add_routes(app: web.Application, dialer: Dialer) -> None:
    service = dialer.service

    async def campaigns(_: web.Request) -> web.Response:
        return web.json_response({"campaigns": dialer.campaigns_view()})

    async def campaign(request: web.Request) -> web.Response:
        detail = await dialer.campaign_detail(request.match_info["name"])
        return web.json_response(detail, dumps=_dumps)

    async def campaign_action(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action not in CAMPAIGN_ACTIONS:
            raise NotFound(f"no campaign action {action!r}; actions: {', '.join(CAMPAIGN_ACTIONS)}")
        view = await service.set_state(request.match_info["name"], action)
        return web.json_response(view, dumps=_dumps)

    async def campaign_import(request: web.Request) -> web.Response:
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
        started = await dialer.start_import(request.match_info["name"], text, source)
        return web.json_response(started, status=202)

    async def import_status(request: web.Request) -> web.Response:
        raw = request.match_info["import_id"]
        import_id = number_id(raw)
        if import_id is None:
            raise NotFound(f"no import with id {raw!r}")
        return web.json_response(await dialer.import_status(import_id), dumps=_dumps)

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
        reference = opt_str(body, "reference", 100) or ""
        result = await service.paid(account, amount, paid_at, reference)
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
        reason = opt_str(body, "reason", 200) or "api"
        return web.json_response(await dialer.add_dnc(phones, accounts, reason), status=201)

    async def preview(request: web.Request) -> web.Response:
        given = request.query.get("agent_id")
        if given is not None and not 0 < len(given) <= 40:
            raise BadRequest("'agent_id' (query) is 1 to 40 characters")
        agent_id = acting_agent(request, given)
        rec = await service.preview_next(request.match_info["name"], agent_id)
        if rec is None:
            return web.json_response({"record": None}, status=200)
        return web.json_response({"record": rec}, dumps=_dumps)

    async def preview_dial(request: web.Request) -> web.Response:
        body = await json_object(request)
        agent_id = acting_agent(request, opt_str(body, "agent_id", 40))
        raw = request.match_info["record_id"]
        record_id = number_id(raw)
        if record_id is None:
            raise NotFound(f"no record {raw!r}")
        started = await service.preview_dial(request.match_info["name"], record_id, agent_id)
        return web.json_response(started, status=202)

    routes = Routes(app)
    # Preview dialling is an agent's own work: the handlers pin the agent id to the caller's.
    routes.get("/api/v1/campaigns/{name}/preview", preview, roles=ANY)
    routes.post("/api/v1/campaigns/{name}/records/{record_id}/dial", preview_dial, roles=ANY)
    routes.get("/api/v1/campaigns", campaigns, roles=STAFF)
    routes.get("/api/v1/campaigns/{name}", campaign, roles=STAFF)
    routes.post("/api/v1/campaigns/{name}/imports", campaign_import, roles=STAFF)
    routes.post("/api/v1/campaigns/{name}/{action}", campaign_action, roles=STAFF)
    routes.get("/api/v1/imports/{import_id}", import_status, roles=STAFF)
    routes.post("/api/v1/accounts/{account_id}/paid", paid, roles=ADMINS)
    routes.post("/api/v1/dnc", dnc, roles=STAFF)

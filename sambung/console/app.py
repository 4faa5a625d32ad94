"""The console's routes: login, the agent console, the wallboard, and their live streams.

Pages are rendered on the server (Jinja2) and kept live with server-sent events: the page
opens one stream and htmx swaps each named event's HTML into its place. Buttons and forms post
with htmx and get HTML back. Every route declares its roles where it is added; console
handlers act on the logged-in person's own agent id, never on one taken from the request.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import structlog
from aiohttp import web

from sambung.acd.agents import AGENT_ACTIONS
from sambung.acd.events import AgentEvent
from sambung.acd.hub import Delivered
from sambung.acd.model import DispositionConfig
from sambung.auth.http import COOKIE, IDENTITY, client_ip, set_session_cookie
from sambung.auth.model import BadCredentials, Identity, RateLimited, Role
from sambung.auth.routes import ANY, DESK, STAFF, Routes
from sambung.console.assets import STATIC_FILES, check_assets
from sambung.console.cards import Card, CardBook
from sambung.console.i18n import LANGUAGES, catalogue, pick_language
from sambung.console.model import ConsoleConfig
from sambung.dialer.http import CAMPAIGN_ACTIONS
from sambung.dialer.lists import parse_amount
from sambung.engine.bodies import number_id
from sambung.engine.db import DB_ERRORS
from sambung.engine.errors import BadRequest, Forbidden, SambungError
from sambung.recordings.model import MonitorMode, Principal

if TYPE_CHECKING:
    from sambung.console import ConsoleServices

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
LANG_COOKIE = "sambung_lang"
KEEPALIVE_SECONDS = 15.0
# A stream re-checks its session this often, so a logout elsewhere or an expiry shows.
RECHECK_SECONDS = 60.0
CHECKED_AT = web.RequestKey("console_session_checked_at", float)


def rupiah(value: Any) -> str:
    """Indonesian money: Rp 1.250.000 (cents only when there are some)."""
    try:
        # Rounded to the sen first: two decimals are shown, so a third must not be cut off.
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return str(value)  # infinities land here too
    if amount.is_nan():
        return str(value)
    # Split the magnitude, not the signed value: int(-0.5) is 0, which would drop the sign.
    whole, cents = divmod(abs(amount), 1)
    text = f"{int(whole):,}".replace(",", ".")
    if cents:
        text += "," + f"{cents:.2f}"[2:]
    return f"Rp {'-' if amount < 0 else ''}{text}"


def clock(seconds: Any) -> str:
    s = int(float(seconds or 0))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


def percent(value: Any) -> str:
    return f"{float(value or 0) * 100:.1f}%"


def sse(event: str, html: str) -> bytes:
    lines = html.strip().splitlines() or [""]
    return (f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n").encode()


class Console:
    def __init__(self, services: ConsoleServices, settings: ConsoleConfig) -> None:
        # Pages without their scripts render but do nothing: refuse to serve them at all.
        check_assets()
        self.s = services
        self.settings = settings
        self.cards = CardBook()
        self._promises: dict[str, tuple[tuple[str, str | None], list[dict[str, Any]]]] = {}
        services.hub.subscribe(AgentEvent, self.cards.hear)
        self.closing = asyncio.Event()
        self.share_boards = True  # False only in the benchmark's baseline
        self._boards: dict[str, tuple[float, str]] = {}
        self._board_locks: dict[str, asyncio.Lock] = {}
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(rupiah=rupiah, clock=clock, percent=percent)

    # ---- rendering ----------------------------------------------------------------------------

    def lang_of(self, request: web.Request) -> str:
        ident = request.get(IDENTITY)
        profile = ident.session.user.language if ident and ident.session else None
        return pick_language(
            request.cookies.get(LANG_COOKIE), profile, request.headers.get("Accept-Language")
        )

    def render(self, name: str, lang: str, **ctx: Any) -> str:
        cat = catalogue()

        def t(key: str, **values: Any) -> str:
            return cat.text(lang, key, **values)

        def label(prefix: str, code: str) -> str:
            key = f"{prefix}.{code}"
            return cat.text(lang, key) if cat.has(key) else code

        return self.env.get_template(name).render(t=t, label=label, lang=lang, **ctx)

    def page(self, request: web.Request, name: str, status: int = 200, **ctx: Any) -> web.Response:
        ident = request.get(IDENTITY)
        csrf = ident.session.csrf_token if ident and ident.session else ""
        html = self.render(name, self.lang_of(request), me=ident, csrf=csrf, **ctx)
        return web.Response(text=html, content_type="text/html", status=status)

    def fragment(self, request: web.Request, name: str, **ctx: Any) -> web.Response:
        html = self.render(name, self.lang_of(request), **ctx)
        return web.Response(text=html, content_type="text/html")

    # ---- what the agent console shows ---------------------------------------------------------

    def own_agent(self, request: web.Request) -> str:
        ident = request[IDENTITY]
        if ident.agent_id is None:
            raise Forbidden(
                f"{ident.name!r} is not tied to an ACD agent: use the wallboard, or ask an admin "
                "to set the login's agent_id (PATCH /api/v1/users/<name>)"
            )
        return ident.agent_id

    def schema_for(self, card: Card | None) -> list[DispositionConfig]:
        if card is None:
            return []
        campaign = card.attributes.get("campaign") if card.is_dialer else None
        if campaign and campaign in self.s.campaign_dispositions:
            return list(self.s.campaign_dispositions[campaign])
        return list(self.s.queue_dispositions.get(str(card.call.get("queue")), []))

    def preview_campaigns(self, agent_id: str) -> list[str]:
        """Running preview campaigns this agent works: the console offers their next record."""
        d = self.s.dialer.service
        return [
            name
            for name, run in d.campaigns.items()
            if run.settings.mode == "preview"
            and run.state == "running"
            and agent_id in d.agent_ids(name)
        ]

    async def promises_for(self, agent_id: str, card: Card | None) -> list[dict[str, Any]]:
        """The card's account's earlier promises, asked of PostgreSQL once per card (and again
        after a disposition), not at every push of the agent's stream."""
        if card is None or not card.account:
            return []
        key = (card.call_id, card.saved_code)
        hit = self._promises.get(agent_id)
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            promises = await self.s.dialer.previous_promises(card.account)
        except DB_ERRORS as err:
            # The card still shows the call; the promises list is left out, not the card.
            log.warning("console.promises_unavailable", agent=agent_id, error=str(err))
            return []
        self._promises[agent_id] = (key, promises)
        return promises

    async def agent_parts(
        self, agent_id: str, lang: str, error: str | None = None
    ) -> dict[str, str]:
        agent = self.s.agents.get(agent_id).view()
        since = datetime.fromisoformat(str(agent["since"]))
        agent["seconds_in_state"] = max(0.0, (datetime.now(UTC) - since).total_seconds())
        card = self.cards.get(agent_id)
        promises = await self.promises_for(agent_id, card)
        ctx = {
            "agent": agent,
            "card": card,
            "promises": promises,
            "schema": self.schema_for(card),
            "reasons": self.settings.pause_reasons,
            "now": datetime.now(UTC),
            "message": None,
            "error": None,
            "state_error": error,
            "form": {},
            "preview_campaigns": self.preview_campaigns(agent_id),
        }
        return {
            "state": self.render("_agent_state.html", lang, **ctx),
            "card": self.render("_card.html", lang, **ctx),
            "disposition": self.render("_disposition.html", lang, **ctx),
        }

    # ---- routes -------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.on_shutdown.append(self._on_shutdown)
        r = Routes(app)
        r.get("/", self.home, open=True)
        r.get("/console/login", self.login_page, open=True)
        r.post("/console/login", self.login, open=True)
        r.post("/console/logout", self.logout, roles=ANY)
        r.post("/console/language", self.language, roles=ANY)
        # The agent screen acts on the session's own agent id, never one from the request.
        r.get("/console/agent", self.agent_page, roles=DESK)
        r.get("/console/agent/stream", self.agent_stream, roles=DESK)
        r.post("/console/agent/state", self.agent_state, roles=DESK)
        r.post("/console/agent/disposition", self.disposition, roles=DESK)
        r.post("/console/agent/preview", self.preview, roles=DESK)
        r.post("/console/agent/preview/dial", self.preview_dial, roles=DESK)
        r.get("/console/wallboard", self.wallboard_page, roles=STAFF)
        r.get("/console/wallboard/stream", self.wallboard_stream, roles=STAFF)
        r.post("/console/wallboard/campaign", self.campaign_action, roles=STAFF)
        r.post("/console/wallboard/monitor", self.monitor, roles=STAFF)
        r.get("/static/{path}", self.static, open=True)

    async def _on_shutdown(self, _: web.Application) -> None:
        # Live streams would otherwise hold the HTTP server's shutdown until its timeout.
        self.closing.set()

    async def static(self, request: web.Request) -> web.StreamResponse:
        path = STATIC_FILES.get(request.match_info["path"])
        if path is None or not path.is_file():
            raise web.HTTPNotFound(text="no such file")
        resp = web.FileResponse(path)
        resp.headers["Cache-Control"] = "public, max-age=300"
        return resp

    async def home(self, request: web.Request) -> web.Response:
        raise web.HTTPSeeOther("/console/login")

    def home_of(self, ident: Identity) -> str:
        return "/console/agent" if ident.role is Role.AGENT else "/console/wallboard"

    async def login_page(self, request: web.Request) -> web.Response:
        return self.page(request, "login.html", error=None, username="")

    async def login(self, request: web.Request) -> web.Response:
        auth = self.s.auth
        assert auth is not None
        form = await request.post()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        lang = self.lang_of(request)
        cat = catalogue()
        if not username or not password or len(username) > 64 or len(password) > 256:
            return self.page(
                request,
                "login.html",
                400,
                error=cat.text(lang, "login.missing"),
                username=username[:64],
            )
        try:
            token, session = await auth.login(
                username, password, client_ip(request), request.headers.get("User-Agent")
            )
        except RateLimited as err:
            wait = max(1, int(err.retry_after))
            if err.why in ("busy", "in_flight"):
                msg = cat.text(lang, "login.busy", seconds=wait)
            else:
                msg = cat.text(lang, "login.rate_limited", seconds=wait)
            resp = self.page(request, "login.html", 429, error=msg, username=username)
            resp.headers["Retry-After"] = str(int(err.retry_after))
            return resp
        except BadCredentials:
            msg = cat.text(lang, "login.failed")
            return self.page(request, "login.html", 401, error=msg, username=username)
        except SambungError as err:
            msg = cat.text(lang, "login.unavailable", detail=err.detail)
            return self.page(request, "login.html", err.http_status, error=msg, username=username)
        resp = web.HTTPSeeOther(self.home_of(auth.identity(session)))
        set_session_cookie(
            resp,
            token,
            int(auth.policy.lifetime.total_seconds()),
            self.s.cookie_secure,
        )
        raise resp

    async def logout(self, request: web.Request) -> web.Response:
        ident = request[IDENTITY]
        auth = self.s.auth
        if ident.session is not None and auth is not None:
            await auth.logout(ident.session, client_ip(request))
        resp = web.Response(status=204)
        resp.del_cookie(COOKIE, path="/")
        resp.headers["HX-Redirect"] = "/console/login"
        return resp

    async def language(self, request: web.Request) -> web.Response:
        form = await request.post()
        lang = str(form.get("lang", ""))
        if lang not in LANGUAGES:
            raise web.HTTPBadRequest(text=f"language is one of {', '.join(LANGUAGES)}")
        resp = web.Response(status=204)
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Strict", path="/")
        resp.headers["HX-Refresh"] = "true"
        return resp

    # ---- the agent console --------------------------------------------------------------------

    async def agent_page(self, request: web.Request) -> web.Response:
        agent_id = self.own_agent(request)
        parts = await self.agent_parts(agent_id, self.lang_of(request))
        return self.page(request, "agent.html", parts=parts)

    async def agent_stream(self, request: web.Request) -> web.StreamResponse:
        agent_id = self.own_agent(request)
        lang = self.lang_of(request)
        q = self.s.hub.open_stream(agent_id)
        resp = await self._open_stream(request)
        streams = self.s.streams.labels(page="agent")
        streams.inc()
        last_form: tuple[str | None, str | None] | None = None
        try:
            while True:
                parts = await self.agent_parts(agent_id, lang)
                await resp.write(sse("state", parts["state"]))
                await resp.write(sse("card", parts["card"]))
                card = self.cards.get(agent_id)
                form_key = (card.call_id, card.saved_code) if card else (None, None)
                if form_key != last_form:
                    # Only when the call changes: a push must not wipe what is being typed.
                    await resp.write(sse("disposition", parts["disposition"]))
                    last_form = form_key
                if not await self._wait(q, resp, request):
                    break
        except ConnectionResetError:
            pass  # the screen went away
        finally:
            streams.dec()
            self.s.hub.close_stream(agent_id, q)
        return resp

    async def agent_state(self, request: web.Request) -> web.Response:
        agent_id = self.own_agent(request)
        form = await request.post()
        action = str(form.get("action", ""))
        reason = str(form.get("reason", "")) or self.settings.pause_reasons[0]
        if action not in AGENT_ACTIONS:
            raise web.HTTPBadRequest(text=f"unknown action {action!r}")
        if action == "pause" and reason not in self.settings.pause_reasons:
            raise web.HTTPBadRequest(text=f"unknown pause reason {reason!r}")
        error = None
        try:
            self.s.agent_action(agent_id, action, reason)
        except SambungError as err:
            error = err.detail  # shown in the state panel, which is re-rendered either way
        parts = await self.agent_parts(agent_id, self.lang_of(request), error=error)
        return web.Response(text=parts["state"], content_type="text/html")

    async def disposition(self, request: web.Request) -> web.Response:
        agent_id = self.own_agent(request)
        form = await request.post()
        call_id = str(form.get("call_id", ""))
        code = str(form.get("code", ""))
        note = str(form.get("note", ""))[:2000]
        card = self.cards.get(agent_id)
        lang = self.lang_of(request)
        cat = catalogue()
        error = None
        details: dict[str, Any] = {}
        if form.get("amount"):
            raw = str(form["amount"])
            try:
                # As agents type it: 1.250.000 or 1250000,50 or Rp 1.250.000.
                details["amount"] = str(parse_amount(raw))
            except (ValueError, ArithmeticError):
                details["amount"] = raw  # the engine's check names what is wrong
        if form.get("date"):
            details["date"] = str(form["date"])
        if form.get("callback_at"):
            details["callback_at"] = local_to_iso(str(form["callback_at"]), str(form.get("tz", "")))
        try:
            if not call_id or not code:
                raise BadRequest("call and outcome are required")
            if not await self.s.handled_by(call_id, agent_id):
                raise BadRequest(f"call {call_id} is not one of yours")
            await self.s.disposition(call_id, agent_id, code, note, details)
        except SambungError as err:
            error = cat.text(lang, "disp.error", detail=err.detail)
        if error is None:
            self.cards.saved(agent_id, call_id, code)
            card = self.cards.get(agent_id)
        return self.fragment(
            request,
            "_disposition.html",
            card=card,
            schema=self.schema_for(card),
            message=None if error else cat.text(lang, "disp.saved", code=code),
            error=error,
            form=dict(form),
        )

    async def preview(self, request: web.Request) -> web.Response:
        agent_id = self.own_agent(request)
        form = await request.post()
        name = str(form.get("campaign", ""))
        lang = self.lang_of(request)
        record, error = None, None
        try:
            if name not in self.preview_campaigns(agent_id):
                raise BadRequest(f"{name!r} is not a running preview campaign of yours")
            record = await self.s.dialer.service.preview_next(name, agent_id)
        except SambungError as err:
            error = catalogue().text(lang, "wall.failed", detail=err.detail)
        return self.fragment(
            request, "_preview.html", campaign=name, record=record, error=error, message=None
        )

    async def preview_dial(self, request: web.Request) -> web.Response:
        agent_id = self.own_agent(request)
        form = await request.post()
        name = str(form.get("campaign", ""))
        raw = str(form.get("record_id", ""))
        lang = self.lang_of(request)
        cat = catalogue()
        message, error = None, None
        try:
            record_id = number_id(raw)
            if record_id is None:
                raise BadRequest(f"no record {raw!r}")
            if name not in self.preview_campaigns(agent_id):
                raise BadRequest(f"{name!r} is not a running preview campaign of yours")
            await self.s.dialer.service.preview_dial(name, record_id, agent_id)
            message = cat.text(lang, "preview.dialling")
        except SambungError as err:
            error = cat.text(lang, "wall.failed", detail=err.detail)
        return self.fragment(
            request, "_preview.html", campaign=name, record=None, error=error, message=message
        )

    # ---- the wallboard ------------------------------------------------------------------------

    async def board(self, lang: str) -> str:
        """The wallboard's HTML. Every open wallboard shows the same figures, so one render per
        refresh period and language serves them all (bench/wallboard.py measures the gain)."""
        if not self.share_boards:
            return self.render("_board.html", lang, board=await self.s.wallboard())
        async with self._board_locks.setdefault(lang, asyncio.Lock()):
            now = asyncio.get_running_loop().time()
            hit = self._boards.get(lang)
            if hit is not None and now - hit[0] < self.settings.wallboard_refresh_seconds / 2:
                return hit[1]
            html = self.render("_board.html", lang, board=await self.s.wallboard())
            self._boards[lang] = (now, html)
            return html

    async def wallboard_page(self, request: web.Request) -> web.Response:
        board = await self.board(self.lang_of(request))
        return self.page(request, "wallboard.html", board_html=board)

    async def wallboard_stream(self, request: web.Request) -> web.StreamResponse:
        lang = self.lang_of(request)
        resp = await self._open_stream(request)
        streams = self.s.streams.labels(page="wallboard")
        streams.inc()
        try:
            await self._board_loop(resp, request, lang)
        except ConnectionResetError:
            pass  # the screen went away
        finally:
            streams.dec()
        return resp

    async def _board_loop(self, resp: web.StreamResponse, request: web.Request, lang: str) -> None:
        while True:
            await resp.write(sse("board", await self.board(lang)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), self.settings.wallboard_refresh_seconds)
            if self.closing.is_set():
                return
            if not await self._still_valid(request):
                await resp.write(sse("expired", self.render("_expired.html", lang)))
                return

    async def campaign_action(self, request: web.Request) -> web.Response:
        form = await request.post()
        name, action = str(form.get("name", "")), str(form.get("action", ""))
        lang = self.lang_of(request)
        cat = catalogue()
        if action not in CAMPAIGN_ACTIONS:
            raise web.HTTPBadRequest(text=f"unknown campaign action {action!r}")
        try:
            await self.s.dialer.service.set_state(name, action)
            msg = cat.text(lang, "wall.done", what=f"{name}: {action}")
            return self.fragment(request, "_toast.html", message=msg, error=None)
        except SambungError as err:
            msg = cat.text(lang, "wall.failed", detail=err.detail)
            return self.fragment(request, "_toast.html", message=None, error=msg)

    async def monitor(self, request: web.Request) -> web.Response:
        ident = request[IDENTITY]
        form = await request.post()
        lang = self.lang_of(request)
        cat = catalogue()
        monitor = self.s.monitor
        try:
            mode = MonitorMode(str(form.get("mode", "")))
        except ValueError:
            raise web.HTTPBadRequest(text="mode is listen, whisper or barge") from None
        agent_id = str(form.get("agent_id", "")) or None
        try:
            if monitor is None:
                raise BadRequest("monitoring is not available")
            view = await monitor.start(
                Principal(ident.name, Role(ident.role.value)), mode, None, agent_id
            )
            msg = cat.text(
                lang, "wall.done", what=f"{mode.value} {agent_id} ({view['session_id']})"
            )
            return self.fragment(request, "_toast.html", message=msg, error=None)
        except SambungError as err:
            msg = cat.text(lang, "wall.failed", detail=err.detail)
            return self.fragment(request, "_toast.html", message=None, error=msg)

    # ---- streams ------------------------------------------------------------------------------

    async def _open_stream(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # a proxy must pass events on at once
            }
        )
        await resp.prepare(request)
        return resp

    async def _still_valid(self, request: web.Request) -> bool:
        ident = request[IDENTITY]
        auth = self.s.auth
        token = request.cookies.get(COOKIE)
        if ident.session is None or auth is None or token is None:
            return True
        last = request.get(CHECKED_AT, 0.0)
        now = asyncio.get_running_loop().time()
        if now - last < RECHECK_SECONDS:
            return True
        request[CHECKED_AT] = now
        return await auth.resolve(token) is not None

    async def _wait(
        self,
        q: asyncio.Queue[Delivered],
        resp: web.StreamResponse,
        request: web.Request,
    ) -> bool:
        """Until the agent's next message (True), or the stream must end (False)."""
        lang = self.lang_of(request)
        while True:
            getter = asyncio.ensure_future(q.get())
            closing = asyncio.ensure_future(self.closing.wait())
            done, _ = await asyncio.wait(
                {getter, closing}, timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            for fut in (getter, closing):
                if not fut.done():
                    fut.cancel()
            if closing in done:
                return False
            if getter in done:
                while not q.empty():
                    q.get_nowait()  # one render covers every message queued meanwhile
                return True
            if not await self._still_valid(request):
                await resp.write(sse("expired", self.render("_expired.html", lang)))
                return False
            await resp.write(b": keep-alive\n\n")


def local_to_iso(value: str, tz: str) -> str:
    """A datetime-local field (no offset) with the browser's offset in minutes, as ISO 8601."""
    digits = tz.removeprefix("-")
    # ASCII only: str.isdigit also accepts characters such as superscripts that int() refuses.
    if not (digits.isascii() and digits.isdigit()):
        return value  # the engine's check then asks for an offset
    minutes = -int(tz)  # JavaScript's getTimezoneOffset is UTC minus local
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{value}{sign}{h:02d}:{m:02d}"

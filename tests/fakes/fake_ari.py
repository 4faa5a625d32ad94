"""A scripted fake of Asterisk's ARI (REST + events WebSocket) for component tests.

It answers like Asterisk 22 does (status codes, ``{"message": ...}`` error bodies, event order
as captured from the real Asterisk in tests/fixtures/ari/) and records every request, so tests
can assert on what the engine asked for. Only the REST calls our client uses are routed.

Typical use (the ``fake_ari`` fixture starts one on an ephemeral loopback port)::

    await fake_ari.connected.wait()
    call_id = await fake_ari.inbound_call(did="1500")
    ...
    await fake_ari.caller_hangup(call_id)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ari"
ARI_DATE = "%Y-%m-%dT%H:%M:%S.%f%z"
ENTITY_ID = "52:54:00:12:34:56"


def ari_time(when: datetime | None = None) -> str:
    """A timestamp as Asterisk writes it: milliseconds and a +hhmm offset."""
    when = when or datetime.now(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}" + "+0000"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # relative to /ari, e.g. "/channels/abc/answer"
    query: dict[str, str]
    body: Any


@dataclass
class Capture:
    """Events recorded from the real Asterisk (one JSON object a line, first line a comment)."""

    name: str
    comment: str
    events: list[dict[str, Any]]

    def channel_ids(self) -> list[str]:
        """Channel ids in order of first appearance."""
        seen: list[str] = []
        for ev in self.events:
            for key in ("channel", "peer", "caller", "replace_channel"):
                ch = ev.get(key)
                if isinstance(ch, dict) and ch.get("id") not in seen:
                    seen.append(ch["id"])
        return seen

    def rewritten(self, ids: Mapping[str, str]) -> list[dict[str, Any]]:
        """The events with every occurrence of the given ids replaced (ids, uris, names)."""
        return [_rewrite(copy.deepcopy(ev), ids) for ev in self.events]


def _rewrite(value: Any, ids: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _rewrite(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    if isinstance(value, str):
        for old, new in ids.items():
            if old in value:
                value = value.replace(old, new)
        return value
    return value


def load_capture(name: str) -> Capture:
    path = FIXTURES / (name if name.endswith(".jsonl") else f"{name}.jsonl")
    comment = ""
    events: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        if "_comment" in data:
            comment = str(data["_comment"])
        else:
            events.append(data)
    return Capture(name=path.stem, comment=comment, events=events)


def channel_json(
    channel_id: str,
    *,
    app: str = "sambung",
    did: str = "1500",
    state: str = "Ring",
    caller_number: str = "628111000111",
    caller_name: str = "Budi",
    name: str | None = None,
    app_args: str | None = None,
) -> dict[str, Any]:
    """A channel as Asterisk 22 shows it while the call sits in ``Stasis(app,inbound,did)``."""
    return {
        "id": channel_id,
        "name": name or f"PJSIP/trunk-{abs(hash(channel_id)) % 0xFFFFFFFF:08x}",
        "state": state,
        "protocol_id": f"{channel_id}@127.0.0.1",
        "caller": {"name": caller_name, "number": caller_number},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "from-trunk",
            "exten": did,
            "priority": 1,
            "app_name": "Stasis",
            "app_data": app_args if app_args is not None else f"{app},inbound,{did}",
        },
        "creationtime": ari_time(),
        "language": "en",
    }


class FakeAri:
    """See the module docstring. Start with ``await start()``, stop with ``await close()``."""

    def __init__(
        self,
        *,
        username: str = "sambung",
        password: str = "sambung-dev-secret",
        app: str = "sambung",
        playback_duration: float = 0.02,
    ) -> None:
        self.username = username
        self.password = password
        self.app_name = app
        # How long a fake playback "plays" between PlaybackStarted and PlaybackFinished.
        self.playback_duration = playback_duration
        self.reject_auth = False
        self.answer_pings = True
        self.entity_id = ENTITY_ID
        self.version = "22.10.1"
        self.startup_time = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        self.requests: list[RecordedRequest] = []
        self.channels: dict[str, dict[str, Any]] = {}
        self.bridges: dict[str, dict[str, Any]] = {}
        self.playbacks: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.variables: dict[tuple[str, str], str] = {}
        self.globals: dict[str, str] = {}  # dialplan globals
        self.missing_media: set[str] = {"sound:no-such-file"}
        # Media URIs that fail the originate with 500 (an unregistered PJSIP endpoint).
        self.unreachable_endpoints: set[str] = set()
        self.event_filter: dict[str, list[dict[str, str]]] = {"allowed": [], "disallowed": []}
        self.subscriptions: list[str] = []
        self.sent_events: list[dict[str, Any]] = []
        self.connections = 0  # WebSocket connections accepted so far
        self.connected = asyncio.Event()  # set while at least one socket is open
        self._accepted = asyncio.Condition()
        self._sockets: set[web.WebSocketResponse] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._channel_locks: dict[str, asyncio.Lock] = {}
        self._left_alive: set[str] = set()
        self._replays = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(middlewares=[self._auth_and_record])
        app.router.add_routes(self._routes())
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.host, self.port = self._runner.addresses[0][:2]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.drop_connections()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """Asterisk's HTTP root, as the engine's settings hold it."""
        return f"http://{self.host}:{self.port}"

    @property
    def ari_url(self) -> str:
        return f"{self.base_url}/ari"

    @property
    def ws_url_base(self) -> str:
        return f"ws://{self.host}:{self.port}/ari"

    # -- scripting -------------------------------------------------------------------------

    @property
    def application_registered(self) -> bool:
        return bool(self._sockets)

    async def send_event(self, event: Mapping[str, Any]) -> None:
        """Push one event to every connected socket, like Asterisk would.

        Fills in ``application``, ``asterisk_id`` and ``timestamp`` when missing, applies the
        app's event filter, and keeps the fake's channel state in step with the event.
        Events for an app with no socket are dropped, as Asterisk drops them.
        """
        data = dict(event)
        data.setdefault("application", self.app_name)
        data.setdefault("asterisk_id", self.entity_id)
        data.setdefault("timestamp", ari_time())
        self._track(data)
        if not self._allowed(data["type"]):
            return
        self.sent_events.append(data)
        text = json.dumps(data)
        for ws in list(self._sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(text)

    async def replay(
        self,
        events: Iterable[Mapping[str, Any]],
        *,
        restamp: bool = True,
        gap: float = 0.0,
    ) -> None:
        """Send recorded events in order; ``restamp`` sets their timestamps to now."""
        for ev in events:
            data = dict(ev)
            if restamp:
                data["timestamp"] = ari_time()
            data["application"] = self.app_name
            await self.send_event(data)
            if gap:
                await asyncio.sleep(gap)

    def load_capture(self, name: str) -> Capture:
        return load_capture(name)

    async def replay_capture(
        self, name: str, ids: Mapping[str, str] | None = None, *, gap: float = 0.0
    ) -> list[dict[str, Any]]:
        """Replay tests/fixtures/ari/<name>.jsonl, with channel ids renamed by ``ids``
        (default: each captured channel id gets a fresh ``<name>-<n>`` id, so one capture can
        be replayed many times in a test). Returns the events as sent."""
        capture = load_capture(name)
        if ids is None:
            self._replays += 1
            ids = {
                old: f"{capture.name}-{self._replays}-{i}"
                for i, old in enumerate(capture.channel_ids(), start=1)
            }
        events = capture.rewritten(ids)
        await self.replay(events, gap=gap)
        return events

    async def inbound_call(
        self,
        channel_id: str = "1700000000.1",
        *,
        did: str = "1500",
        caller_number: str = "628111000111",
        caller_name: str = "Budi",
    ) -> str:
        """A trunk call enters ``Stasis(app,inbound,did)``: StasisStart as Asterisk sends it."""
        ch = channel_json(
            channel_id,
            app=self.app_name,
            did=did,
            caller_number=caller_number,
            caller_name=caller_name,
        )
        await self.send_event({"type": "StasisStart", "args": ["inbound", did], "channel": ch})
        return channel_id

    async def caller_hangup(self, channel_id: str, cause: int | None = None) -> None:
        """The caller sends BYE, in the order Asterisk 22 produced (inbound_caller_bye capture).

        ChannelHangupRequest (no ``cause`` for a plain BYE), PlaybackFinished ``failed`` for a
        prompt that was playing (queued ones are flushed silently), StasisEnd; and no
        ChannelDestroyed unless the app subscribed to ``channel:<id>``.
        """
        ch = self.channels.get(channel_id)
        if ch is None:
            return
        await self._qos_varsets(ch)
        request: dict[str, Any] = {"type": "ChannelHangupRequest", "channel": dict(ch)}
        if cause is not None:
            request["cause"] = cause
        await self.send_event(request)
        await self._stop_channel_playbacks(channel_id, "failed")
        await self._end_channel(channel_id, destroyed_cause=0)

    async def press_digit(self, channel_id: str, digit: str, duration_ms: int = 120) -> None:
        ch = self.channels[channel_id]
        await self.send_event(
            {
                "type": "ChannelDtmfReceived",
                "digit": digit,
                "duration_ms": duration_ms,
                "channel": dict(ch),
            }
        )

    async def drop_connections(self) -> None:
        """Close every events socket abruptly (no close handshake), like a dead Asterisk."""
        for ws in list(self._sockets):
            transport = ws._req.transport if ws._req is not None else None
            if transport is not None:
                transport.abort()
            with contextlib.suppress(Exception):
                await ws.close()
        self._sockets.clear()
        self.connected.clear()

    def restart(self) -> None:
        """Asterisk restarted: new start-up time, every channel, bridge and playback gone."""
        self.startup_time = self.startup_time + timedelta(minutes=5)
        self.channels.clear()
        self.bridges.clear()
        self.playbacks.clear()
        self.event_filter = {"allowed": [], "disallowed": []}
        self.subscriptions.clear()

    async def wait_connections(self, n: int, timeout: float = 3.0) -> None:
        """Wait until ``n`` sockets have been accepted in total (1 = first connect)."""
        async with asyncio.timeout(timeout), self._accepted:
            await self._accepted.wait_for(lambda: self.connections >= n and bool(self._sockets))

    def requests_to(self, method: str, pattern: str) -> list[RecordedRequest]:
        rx = re.compile(pattern)
        return [r for r in self.requests if r.method == method and rx.fullmatch(r.path)]

    # -- internals: state --------------------------------------------------------------------

    def _allowed(self, event_type: str) -> bool:
        allowed = {f.get("type") for f in self.event_filter.get("allowed", [])}
        disallowed = {f.get("type") for f in self.event_filter.get("disallowed", [])}
        if event_type in disallowed:
            return False
        return not allowed or event_type in allowed

    def _track(self, data: dict[str, Any]) -> None:
        ch = data.get("channel")
        kind = data["type"]
        if not isinstance(ch, dict) or "id" not in ch:
            return
        if kind == "StasisStart":
            self.channels[ch["id"]] = dict(ch)
        elif kind == "ChannelDestroyed":
            self.channels.pop(ch["id"], None)
        elif kind == "StasisEnd" and ch["id"] not in self._left_alive:
            # The captured calls leave Stasis only to die; a channel:<id> subscriber still
            # sees it until ChannelDestroyed.
            if f"channel:{ch['id']}" not in self.subscriptions:
                self.channels.pop(ch["id"], None)
        elif ch["id"] in self.channels and kind in ("ChannelStateChange", "StasisEnd"):
            self.channels[ch["id"]] = dict(ch)

    def _in_stasis(self, ch: Mapping[str, Any]) -> bool:
        plan = ch.get("dialplan", {})
        return bool(
            plan.get("app_name") == "Stasis"
            and str(plan.get("app_data", "")).split(",")[0] == self.app_name
        )

    def _application(self) -> dict[str, Any]:
        return {
            "name": self.app_name,
            "channel_ids": [c for c, ch in self.channels.items() if self._in_stasis(ch)],
            "bridge_ids": list(self.bridges),
            "endpoint_ids": [],
            "device_names": [],
            "events_allowed": self.event_filter.get("allowed", []),
            "events_disallowed": self.event_filter.get("disallowed", []),
        }

    async def _end_channel(self, channel_id: str, destroyed_cause: int) -> None:
        """StasisEnd; then, only for a channel:<id> subscription, what Asterisk 22 sends after
        (inbound_*_subscribed captures): STASISSTATUS, a soft hang-up request, ChannelDestroyed.
        """
        ch = self.channels.get(channel_id)
        if ch is None:
            return
        await self.send_event({"type": "StasisEnd", "channel": dict(ch)})
        self._channel_locks.pop(channel_id, None)
        if f"channel:{channel_id}" not in self.subscriptions:
            return
        await self.send_event(
            {"type": "ChannelVarset", "variable": "STASISSTATUS", "value": "", "channel": ch}
        )
        await self.send_event(
            {"type": "ChannelHangupRequest", "cause": 16, "soft": True, "channel": dict(ch)}
        )
        await self.send_event(
            {
                "type": "ChannelDestroyed",
                "cause": destroyed_cause,
                "cause_txt": "Normal Clearing" if destroyed_cause == 16 else "Unknown",
                "channel": dict(ch),
            }
        )

    async def _qos_varsets(self, ch: Mapping[str, Any]) -> None:
        """RTP statistics Asterisk sets on an answered channel as it hangs up (filtered by us)."""
        if ch.get("state") != "Up":
            return
        for name in ("RTPAUDIOQOS", "RTPAUDIOQOSJITTER", "RTPAUDIOQOSLOSS", "RTPAUDIOQOSRTT"):
            await self.send_event(
                {"type": "ChannelVarset", "variable": name, "value": "", "channel": dict(ch)}
            )

    async def _stop_channel_playbacks(self, channel_id: str, end_state: str) -> None:
        for pb in list(self.playbacks.values()):
            if pb["target_uri"] == f"channel:{channel_id}":
                task = pb.pop("_task", None)
                pb["_end_state"] = end_state
                self.playbacks.pop(pb["id"], None)
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_playback(self, channel_id: str, playback: dict[str, Any]) -> None:
        """Queued per channel like Asterisk's command queue: one playback at a time."""
        lock = self._channel_locks.setdefault(channel_id, asyncio.Lock())
        try:
            async with lock:
                if channel_id not in self.channels:
                    return  # flushed silently, as Asterisk does on hang-up
                playback["state"] = "playing"
                await self.send_event({"type": "PlaybackStarted", "playback": _public(playback)})
                await asyncio.sleep(self.playback_duration)
                failed = playback["media_uri"] in self.missing_media
                playback["state"] = "failed" if failed else "done"
        except asyncio.CancelledError:
            # Stopped (DELETE /playbacks: state "done") or the channel hung up while playing
            # (state "failed", inbound_caller_bye_during_playback capture). A playback still
            # queued ends silently, as Asterisk flushes its command queue.
            if playback.get("state") == "playing":
                playback["state"] = playback.get("_end_state", "done")
                self.playbacks.pop(playback["id"], None)
                await self.send_event({"type": "PlaybackFinished", "playback": _public(playback)})
            raise
        self.playbacks.pop(playback["id"], None)
        await self.send_event({"type": "PlaybackFinished", "playback": _public(playback)})

    # -- HTTP ------------------------------------------------------------------------------

    @web.middleware
    async def _auth_and_record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path.removeprefix("/ari")
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        self.requests.append(RecordedRequest(request.method, path, dict(request.query), body))
        if not self._authorised(request):
            return web.json_response(
                {"message": "Authentication required"},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="Asterisk REST Interface"'},
            )
        result: web.StreamResponse = await handler(request)
        return result

    def _authorised(self, request: web.Request) -> bool:
        if self.reject_auth:
            return False
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
            return user == self.username and pw == self.password
        api_key = request.query.get("api_key", "")
        return api_key == f"{self.username}:{self.password}"

    def _routes(self) -> list[web.RouteDef]:
        r = web
        return [
            r.get("/ari/events", self._events),
            r.get("/ari/asterisk/info", self._info),
            r.get("/ari/asterisk/ping", self._ping),
            r.post("/ari/asterisk/variable", self._set_global),
            r.get("/ari/applications/{app}", self._get_app),
            r.put("/ari/applications/{app}/eventFilter", self._set_filter),
            r.post("/ari/applications/{app}/subscription", self._subscribe),
            r.get("/ari/channels", self._list_channels),
            r.post("/ari/channels/{id}", self._originate),
            r.get("/ari/channels/{id}", self._get_channel),
            r.delete("/ari/channels/{id}", self._hangup),
            r.post("/ari/channels/{id}/answer", self._answer),
            r.post("/ari/channels/{id}/ring", self._ring),
            r.post("/ari/channels/{id}/play", self._play),
            r.post("/ari/channels/{id}/play/{pb}", self._play),
            r.post("/ari/channels/{id}/continue", self._continue),
            r.get("/ari/channels/{id}/variable", self._get_var),
            r.post("/ari/channels/{id}/variable", self._set_var),
            r.delete("/ari/playbacks/{pb}", self._stop_playback),
            r.get("/ari/playbacks/{pb}", self._get_playback),
            r.get("/ari/bridges", self._list_bridges),
            r.post("/ari/bridges/{id}", self._create_bridge),
            r.get("/ari/bridges/{id}", self._get_bridge),
            r.delete("/ari/bridges/{id}", self._destroy_bridge),
            r.post("/ari/bridges/{id}/addChannel", self._add_channel),
            r.post("/ari/bridges/{id}/removeChannel", self._remove_channel),
            r.post("/ari/bridges/{id}/moh", self._bridge_moh),
            r.delete("/ari/bridges/{id}/moh", self._bridge_moh),
            r.get("/ari/endpoints", self._list_endpoints),
            r.get("/ari/endpoints/{tech}", self._list_endpoints),
            r.get("/ari/endpoints/{tech}/{res}", self._get_endpoint),
        ]

    async def _events(self, request: web.Request) -> web.StreamResponse:
        apps = request.query.get("app", "")
        if not apps:
            return _error(400, "HTTP request is missing param: [app]")
        # autoping off so answer_pings=False can play a host that no longer answers.
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        self._sockets.add(ws)
        self.connections += 1
        self.connected.set()
        async with self._accepted:
            self._accepted.notify_all()
        try:
            async for msg in ws:
                if msg.type is WSMsgType.PING:
                    if self.answer_pings:
                        await ws.pong(msg.data)
                elif msg.type is WSMsgType.CLOSE:
                    break
        finally:
            self._sockets.discard(ws)
            if not self._sockets:
                self.connected.clear()
        return ws

    async def _info(self, request: web.Request) -> web.StreamResponse:
        started = ari_time(self.startup_time)
        return web.json_response(
            {
                "status": {"startup_time": started, "last_reload_time": started},
                "system": {"version": self.version, "entity_id": self.entity_id},
            }
        )

    async def _ping(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"asterisk_id": self.entity_id, "ping": "pong", "timestamp": ari_time()}
        )

    def _app_or_404(self, request: web.Request) -> web.StreamResponse | None:
        if request.match_info["app"] != self.app_name or not self.application_registered:
            return _error(404, "Application not found")
        return None

    async def _get_app(self, request: web.Request) -> web.StreamResponse:
        return self._app_or_404(request) or web.json_response(self._application())

    async def _set_filter(self, request: web.Request) -> web.StreamResponse:
        if (missing := self._app_or_404(request)) is not None:
            return missing
        body = (await _json(request)) or {}
        if not isinstance(body, dict):
            return _error(400, "Invalid filter")
        if not body:
            self.event_filter = {"allowed": [], "disallowed": []}
        for key in ("allowed", "disallowed"):
            if key in body:
                self.event_filter[key] = list(body[key])
        return web.json_response(self._application())

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        if (missing := self._app_or_404(request)) is not None:
            return missing
        sources = request.query.get("eventSource", "")
        if not sources:
            return _error(400, "Missing parameter eventSource")
        for src in sources.split(","):
            if src not in self.subscriptions:
                self.subscriptions.append(src)
        return web.json_response(self._application())

    async def _list_channels(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(list(self.channels.values()))

    def _channel(self, request: web.Request) -> dict[str, Any] | None:
        return self.channels.get(request.match_info["id"])

    def _stasis_channel(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The channel, or Asterisk's answer when it is missing (404) or not ours (409)."""
        ch = self._channel(request)
        if ch is None:
            return _error(404, "Channel not found")
        if not self._in_stasis(ch):
            return _error(409, "Channel not in Stasis application")
        return ch

    async def _get_channel(self, request: web.Request) -> web.StreamResponse:
        ch = self._channel(request)
        return web.json_response(ch) if ch is not None else _error(404, "Channel not found")

    async def _originate(self, request: web.Request) -> web.StreamResponse:
        channel_id = request.match_info["id"]
        endpoint = request.query.get("endpoint", "")
        if not endpoint:
            return _error(400, "Endpoint must be specified")
        if channel_id in self.channels:
            return _error(409, "Channel with given unique ID already exists")
        if endpoint in self.unreachable_endpoints:
            # Asterisk 22 words this one differently from its other errors.
            return web.json_response({"error": "Allocation failed"}, status=500)
        ch = channel_json(channel_id, app=self.app_name, state="Down", name=f"{endpoint}-00000001")
        ch["dialplan"] = {
            "context": "default",
            "exten": "s",
            "priority": 1,
            "app_name": "AppDial2",
            "app_data": "(Outgoing Line)",
        }
        self.channels[channel_id] = ch
        return web.json_response(ch)

    async def _hangup(self, request: web.Request) -> web.StreamResponse:
        channel_id = request.match_info["id"]
        if channel_id not in self.channels:
            return _error(404, "Channel not found")
        self._spawn(self._app_hangup(channel_id))
        return web.Response(status=204)

    async def _app_hangup(self, channel_id: str) -> None:
        """Our DELETE, in the order Asterisk 22 produced (inbound_app_hangup capture): the
        hang-up request is soft with cause 32 whatever reason we gave, then StasisEnd.
        """
        ch = self.channels.get(channel_id)
        if ch is None:
            return
        await self._qos_varsets(ch)
        await self.send_event(
            {"type": "ChannelHangupRequest", "cause": 32, "soft": True, "channel": dict(ch)}
        )
        # Not captured with a prompt playing; assumed to end like the caller's BYE does.
        await self._stop_channel_playbacks(channel_id, "failed")
        await self._end_channel(channel_id, destroyed_cause=16)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        ch = self._stasis_channel(request)
        if isinstance(ch, web.Response):
            return ch
        if ch["state"] != "Up":
            ch["state"] = "Up"
            self._spawn(self.send_event({"type": "ChannelStateChange", "channel": dict(ch)}))
        return web.Response(status=204)

    async def _ring(self, request: web.Request) -> web.StreamResponse:
        ch = self._stasis_channel(request)
        return ch if isinstance(ch, web.Response) else web.Response(status=204)

    async def _play(self, request: web.Request) -> web.StreamResponse:
        ch = self._stasis_channel(request)
        if isinstance(ch, web.Response):
            return ch
        raw = await _json(request)
        body = raw if isinstance(raw, dict) else {}
        media = body.get("media", request.query.get("media"))
        if isinstance(media, str):
            media = media.split(",") if "media" in request.query else [media]
        if not media:
            return _error(400, "Missing parameter media")
        pb_id = request.match_info.get("pb") or request.query.get("playbackId") or "pb-auto"
        if pb_id in self.playbacks:
            return _error(409, "Playback with the same id already exists")
        playback = {
            "id": pb_id,
            "media_uri": media[-1],
            "target_uri": f"channel:{ch['id']}",
            "language": body.get("lang", request.query.get("lang", "en")),
            "state": "queued",
            "_media": list(media),
        }
        self.playbacks[pb_id] = playback
        lock_task = asyncio.get_running_loop().create_task(self._run_playback(ch["id"], playback))
        playback["_task"] = lock_task
        self._tasks.add(lock_task)
        lock_task.add_done_callback(self._tasks.discard)
        return web.json_response(_public(playback), status=201)

    async def _stop_playback(self, request: web.Request) -> web.StreamResponse:
        pb = self.playbacks.get(request.match_info["pb"])
        if pb is None:
            return _error(404, "Playback not found")
        task = pb.pop("_task", None)
        self.playbacks.pop(pb["id"], None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return web.Response(status=204)

    async def _get_playback(self, request: web.Request) -> web.StreamResponse:
        pb = self.playbacks.get(request.match_info["pb"])
        if pb is None:
            return _error(404, "Playback not found")
        return web.json_response(_public(pb))

    async def _continue(self, request: web.Request) -> web.StreamResponse:
        ch = self._stasis_channel(request)
        if isinstance(ch, web.Response):
            return ch
        # The channel lives on in the dialplan: it leaves our app but not Asterisk.
        self._left_alive.add(ch["id"])
        self._spawn(self.send_event({"type": "StasisEnd", "channel": dict(ch)}))
        ch["dialplan"] = {**ch["dialplan"], "app_name": "", "app_data": ""}
        return web.Response(status=204)

    async def _get_var(self, request: web.Request) -> web.StreamResponse:
        ch = self._channel(request)
        if ch is None:
            return _error(404, "Channel not found")
        name = request.query.get("variable", "")
        if not name:
            return _error(400, "Variable name is required")
        value = self.variables.get((ch["id"], name))
        if value is None:
            return _error(404, "Provided variable was not found")
        return web.json_response({"value": value})

    async def _set_global(self, request: web.Request) -> web.StreamResponse:
        name = request.query.get("variable", "")
        if not name:
            return _error(400, "Variable name is required")
        self.globals[name] = request.query.get("value", "")
        return web.Response(status=204)

    async def _set_var(self, request: web.Request) -> web.StreamResponse:
        ch = self._channel(request)
        if ch is None:
            return _error(404, "Channel not found")
        name = request.query.get("variable", "")
        if not name:
            return _error(400, "Variable name is required")
        self.variables[(ch["id"], name)] = request.query.get("value", "")
        return web.Response(status=204)

    async def _list_bridges(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(list(self.bridges.values()))

    async def _create_bridge(self, request: web.Request) -> web.StreamResponse:
        bridge_id = request.match_info["id"]
        if bridge_id in self.bridges:
            return _error(409, "Bridge with id already exists")
        bridge = {
            "id": bridge_id,
            "technology": "simple_bridge",
            "bridge_type": request.query.get("type", "mixing").split(",")[0],
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": request.query.get("name", ""),
            "channels": [],
            "creationtime": ari_time(),
            "video_mode": "talker",
        }
        self.bridges[bridge_id] = bridge
        return web.json_response(bridge)

    async def _get_bridge(self, request: web.Request) -> web.StreamResponse:
        bridge = self.bridges.get(request.match_info["id"])
        return web.json_response(bridge) if bridge else _error(404, "Bridge not found")

    async def _destroy_bridge(self, request: web.Request) -> web.StreamResponse:
        if self.bridges.pop(request.match_info["id"], None) is None:
            return _error(404, "Bridge not found")
        return web.Response(status=204)

    async def _add_channel(self, request: web.Request) -> web.StreamResponse:
        bridge = self.bridges.get(request.match_info["id"])
        if bridge is None:
            return _error(404, "Bridge not found")
        ids = [c for c in request.query.get("channel", "").split(",") if c]
        if not ids:
            return _error(400, "Missing parameter channel")
        for cid in ids:
            ch = self.channels.get(cid)
            if ch is None:
                return _error(400, "Channel not found")
            if not self._in_stasis(ch):
                return _error(422, "Channel not in Stasis application")
        for cid in ids:
            if cid not in bridge["channels"]:
                bridge["channels"].append(cid)
        return web.Response(status=204)

    async def _remove_channel(self, request: web.Request) -> web.StreamResponse:
        bridge = self.bridges.get(request.match_info["id"])
        if bridge is None:
            return _error(404, "Bridge not found")
        ids = [c for c in request.query.get("channel", "").split(",") if c]
        for cid in ids:
            if cid not in self.channels:
                return _error(400, "Channel not found")
            if cid not in bridge["channels"]:
                return _error(422, "Channel not in this bridge")
        bridge["channels"] = [c for c in bridge["channels"] if c not in ids]
        return web.Response(status=204)

    async def _bridge_moh(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["id"] not in self.bridges:
            return _error(404, "Bridge not found")
        return web.Response(status=204)

    async def _list_endpoints(self, request: web.Request) -> web.StreamResponse:
        tech = request.match_info.get("tech")
        rows = [e for e in self.endpoints.values() if tech is None or e["technology"] == tech]
        if tech is not None and not rows:
            return _error(404, "No Endpoints found - invalid tech")
        return web.json_response(rows)

    async def _get_endpoint(self, request: web.Request) -> web.StreamResponse:
        key = f"{request.match_info['tech']}/{request.match_info['res']}"
        ep = self.endpoints.get(key)
        return web.json_response(ep) if ep else _error(404, "Endpoint not found")

    def add_endpoint(self, tech: str, resource: str, state: str = "online") -> None:
        self.endpoints[f"{tech}/{resource}"] = {
            "technology": tech,
            "resource": resource,
            "state": state,
            "channel_ids": [],
        }


async def _json(request: web.Request) -> Any:
    """The JSON body, or None (aiohttp caches the body, so the middleware's read is reused)."""
    raw = await request.read()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _public(playback: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in playback.items() if not k.startswith("_")}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


@pytest.fixture
async def fake_ari() -> AsyncIterator[FakeAri]:
    """A FakeAri on an ephemeral loopback port, closed after the test."""
    fake = FakeAri()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


__all__ = [
    "ARI_DATE",
    "Capture",
    "FakeAri",
    "RecordedRequest",
    "ari_time",
    "channel_json",
    "fake_ari",
    "load_capture",
]

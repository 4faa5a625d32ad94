"""The ARI events WebSocket under a supervisor that keeps it connected and consistent.

Asterisk forgets a lot when our inbound events socket closes (ari-notes 1.8): the Stasis app is
deactivated (events for it are dropped, new calls fail ``Stasis()``), the app's event filter
may be destroyed with it, and nothing is replayed on reconnect. So every (re)connect runs the
same procedure and only then lets events through:

1. ``GET /asterisk/info``: the start-up time tells us whether Asterisk restarted meanwhile.
2. Open ``/ari/events?app=<app>&subscribeAll=false`` with a client-side heartbeat: Asterisk
   answers PINGs but never sends any on inbound sockets, so a dead host is only noticed by us.
3. ``GET /applications/{app}``: inbound sockets get no ApplicationRegistered; this confirms.
4. Re-apply the event filter and the subscriptions.
5. Reconcile: ``GET /channels`` and ``GET /bridges``, handed to ``on_connected``.

Events read from the socket meanwhile are buffered and delivered after ``on_connected`` has
returned, in order. The socket is read by its own task into a queue, never blocked by our
REST calls: Asterisk drops a socket whose writes block for ``websocket_write_timeout``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypeVar

import aiohttp
import structlog

from sambung.asterisk.ari.client import AriClient, AsteriskInfo
from sambung.asterisk.ari.errors import AriAuthFailed, AriHttpError, AriUnavailable
from sambung.asterisk.ari.events import (
    ApplicationReplaced,
    AriEvent,
    AriEventParseError,
    Bridge,
    Channel,
    parse_event,
)
from sambung.engine.metrics import Metrics

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEFAULT_DISALLOWED_EVENTS: Final = (
    "ChannelVarset",
    "ChannelDialplan",
    "ChannelCallerId",
    "ChannelConnectedLine",
)


@dataclass(frozen=True, slots=True)
class ConnectInfo:
    """What the stream knows right after a (re)connect or resync, before any event."""

    asterisk_id: str
    startup_time: datetime
    restarted: bool
    first_connect: bool
    channels: list[Channel]
    bridges: list[Bridge]
    version: str = ""
    # Every channel Asterisk has, in our app or not: legs still ringing are not in Stasis yet.
    all_channel_ids: frozenset[str] = frozenset()


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Capped exponential backoff with full jitter: uniform in [0, min(cap, initial * 2^n)].

    Full jitter spreads the reconnects of several engines after one Asterisk restart (AWS
    architecture blog "Exponential Backoff And Jitter"). ``attempt`` counts from 0.
    """
    ceiling = min(cap, initial * 2.0 ** min(max(attempt, 0), 60))
    return rng.uniform(0.0, ceiling)


def is_our_stasis_channel(channel: Channel, app: str) -> bool:
    """A channel sitting in ``Stasis(<app>,...)`` right now, as GET /channels shows it."""
    plan = channel.dialplan
    return plan.app_name == "Stasis" and (
        plan.app_data == app or plan.app_data.startswith(app + ",")
    )


class _Closed:
    """Queue marker: the socket is gone."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Resync:
    """Queue marker: request_resync() was called; re-run filter, subscriptions, reconcile."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


_Item = AriEvent | _Closed | _Resync


class _ConnectFailed(Exception):
    def __init__(self, reason: str, *, auth: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.auth = auth


class AriEventStream:
    """Supervises the events WebSocket; ``run()`` until cancelled (or the app is replaced)."""

    def __init__(
        self,
        client: AriClient,
        session: aiohttp.ClientSession,
        ws_url_base: str,
        app: str,
        on_event: Callable[[AriEvent], None],
        on_connected: Callable[[ConnectInfo], Awaitable[None]],
        on_disconnected: Callable[[str], None],
        metrics: Metrics | None,
        subscriptions: Sequence[str] = (),
        disallowed_events: Sequence[str] = DEFAULT_DISALLOWED_EVENTS,
        heartbeat: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        rng: random.Random | None = None,
        stable_after: float = 10.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self._client = client
        self._session = session
        self.events_url = ws_url_base.rstrip("/") + "/events"
        self.app = app
        self._on_event = on_event
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._metrics = metrics
        self.subscriptions = tuple(subscriptions)
        self.disallowed_events = tuple(disallowed_events)
        self.heartbeat = heartbeat
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._rng = rng if rng is not None else random.Random()
        # A connection that lived this long resets the backoff: the next drop is a new story.
        self.stable_after = stable_after
        # The WebSocket handshake would otherwise use the session's default (5 minutes).
        self.connect_timeout = connect_timeout
        self._resync = asyncio.Event()
        self._resync_reason = ""
        self._connected = False
        self._ever_connected = False
        self._startup_time: datetime | None = None
        self._auth_failing = False
        self._down_logged = False
        self._failure_logged = False
        self._replaced = False
        self._up_since = 0.0

    # -- public ----------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self._connected

    @property
    def replaced(self) -> bool:
        """True once another client took our app over (ApplicationReplaced); run() returned."""
        return self._replaced

    def request_resync(self, reason: str) -> None:
        """Ask the running stream to redo filter, subscriptions and reconciliation.

        Sync and cheap (e.g. from the AMI FullyBooted handler). When not connected it is a
        no-op: the next connect does all of that anyway.
        """
        self._resync_reason = reason
        self._resync.set()

    async def run(self) -> None:
        attempt = 0
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    reason = await self._connect_and_serve()
                except _ConnectFailed as failed:
                    reason = failed.reason
                    self._log_connect_failure(failed)
                if self._replaced:
                    self._mark_down(reason)
                    return
                if self._connected and loop.time() - self._up_since >= self.stable_after:
                    attempt = 0  # a connection that lived a while: this drop is a new outage
                self._mark_down(reason)
                delay = backoff_delay(attempt, self.backoff_initial, self.backoff_max, self._rng)
                attempt += 1
                log.debug("ari.reconnect_wait", delay=round(delay, 3), attempt=attempt)
                await asyncio.sleep(delay)
        finally:
            self._connected = False
            self._set_connected_metric(0)

    # -- one connection --------------------------------------------------------------------

    async def _connect_and_serve(self) -> str:
        """Connect, sync, deliver events until the socket closes; return why it closed."""
        info = await self._call(self._client.asterisk_info())
        self._resync.clear()
        try:
            async with asyncio.timeout(self.connect_timeout):
                ws = await self._session.ws_connect(
                    self.events_url,
                    params={"app": self.app, "subscribeAll": "false"},
                    headers=self._client.auth_headers,
                    heartbeat=self.heartbeat,
                    autoping=True,
                )
        except aiohttp.WSServerHandshakeError as err:
            if err.status == 401:
                raise _ConnectFailed("authentication failed (401)", auth=True) from err
            raise _ConnectFailed(f"websocket handshake failed: {err.status} {err.message}") from err
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise _ConnectFailed(f"websocket connect failed: {_describe(err)}") from err

        queue: asyncio.Queue[_Item] = asyncio.Queue()
        reader = asyncio.create_task(self._read(ws, queue), name="ari-events-reader")
        watcher = asyncio.create_task(self._watch_resync(queue), name="ari-resync-watcher")
        try:
            await self._sync(info, "connect")
            return await self._deliver(queue)
        finally:
            watcher.cancel()
            reader.cancel()
            await ws.close()
            # Both tasks end here (cancelled or done); their errors were logged inside.
            await asyncio.gather(reader, watcher, return_exceptions=True)

    async def _sync(self, info: AsteriskInfo, why: str) -> None:
        """Confirm the app, filter, subscribe, reconcile, then tell the engine."""
        await self._call(self._client.get_application())
        await self._call(self._client.set_event_filter(disallowed=self.disallowed_events))
        if self.subscriptions:
            await self._call(self._client.subscribe(self.subscriptions))
        channels = await self._call(self._client.list_channels())
        bridges = await self._call(self._client.list_bridges())

        first = not self._ever_connected
        restarted = self._startup_time is not None and self._startup_time != info.startup_time
        self._startup_time = info.startup_time
        connect = ConnectInfo(
            asterisk_id=info.entity_id,
            startup_time=info.startup_time,
            restarted=restarted,
            first_connect=first,
            channels=[c for c in channels if is_our_stasis_channel(c, self.app)],
            bridges=bridges,
            version=info.version,
            all_channel_ids=frozenset(c.id for c in channels),
        )
        if why == "connect":
            self._mark_up(connect)
        else:
            log.info("ari.resynced", reason=why, restarted=restarted, channels=len(channels))
        try:
            await self._on_connected(connect)
        except Exception:
            # An engine bug must not take call control down with it; it is loud in the log.
            log.exception("ari.on_connected_failed")

    async def _deliver(self, queue: asyncio.Queue[_Item]) -> str:
        while True:
            item = await queue.get()
            if isinstance(item, _Closed):
                return item.reason
            if isinstance(item, _Resync):
                info = await self._call(self._client.asterisk_info())
                await self._sync(info, item.reason)
                continue
            self._observe_lag(item)
            try:
                self._on_event(item)
            except Exception:
                log.exception("ari.on_event_failed", event_type=item.type)
            if isinstance(item, ApplicationReplaced):
                # Another client now serves our app; reconnecting would steal it back and the
                # two would fight forever (ari-notes 1.8 HA). Stop; an operator decides.
                self._replaced = True
                log.error("ari.application_replaced", app=self.app, url=self.events_url)
                return "application replaced by another connection"

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, queue: asyncio.Queue[_Item]) -> None:
        """Only reads and parses; never waits on anything else, so Asterisk never blocks.

        Always ends by queueing ``_Closed``, even on a bug here, so delivery never waits on a
        reader that is gone.
        """
        reason = "reader stopped"
        try:
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                event = self._parse(msg.data)
                if event is not None:
                    queue.put_nowait(event)
            exc = ws.exception()
            reason = f"closed (code {ws.close_code})"
            if exc is not None:
                reason = f"{reason}: {_describe(exc)}"
        except (aiohttp.ClientError, OSError) as err:
            reason = f"read failed: {_describe(err)}"
        except Exception as err:
            log.exception("ari.reader_failed")
            reason = f"reader failed: {_describe(err)}"
        finally:
            queue.put_nowait(_Closed(reason))

    def _parse(self, text: str) -> AriEvent | None:
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise AriEventParseError("not a JSON object")
            return parse_event(data)
        except (ValueError, AriEventParseError) as err:
            log.warning("ari.event_unparseable", error=str(err), data=text[:500])
            return None

    async def _watch_resync(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            await self._resync.wait()
            self._resync.clear()
            queue.put_nowait(_Resync(self._resync_reason or "resync requested"))

    async def _call(self, aw: Awaitable[T]) -> T:
        try:
            return await aw
        except AriAuthFailed as err:
            raise _ConnectFailed("authentication failed (401)", auth=True) from err
        except AriUnavailable as err:
            raise _ConnectFailed(err.detail) from err
        except AriHttpError as err:
            raise _ConnectFailed(err.detail) from err

    # -- state and logs --------------------------------------------------------------------

    def _mark_up(self, info: ConnectInfo) -> None:
        if self._ever_connected and self._metrics is not None:
            self._metrics.ari_reconnects.inc()
        self._ever_connected = True
        self._connected = True
        self._up_since = asyncio.get_running_loop().time()
        self._down_logged = False
        self._failure_logged = False
        self._auth_failing = False
        self._set_connected_metric(1)
        log.info(
            "ari.connected",
            url=self.events_url,
            app=self.app,
            asterisk_id=info.asterisk_id,
            restarted=info.restarted,
            first_connect=info.first_connect,
            channels=len(info.channels),
            bridges=len(info.bridges),
        )

    def _mark_down(self, reason: str) -> None:
        if not self._connected:
            return
        self._connected = False
        self._set_connected_metric(0)
        if not self._down_logged:
            self._down_logged = True
            log.warning("ari.disconnected", url=self.events_url, reason=reason)
        try:
            self._on_disconnected(reason)
        except Exception:
            log.exception("ari.on_disconnected_failed")

    def _log_connect_failure(self, failed: _ConnectFailed) -> None:
        if failed.auth:
            if not self._auth_failing:
                self._auth_failing = True
                log.error(
                    "ari.auth_failed",
                    user=self._client.username,
                    url=self._client.base_url,
                    hint="check the ARI user and password in ari.conf and the engine settings",
                )
            return
        if self._connected or self._failure_logged:
            log.debug("ari.connect_failed", reason=failed.reason)
            return
        # Once per outage (the first failure after start-up or after a connected spell): a
        # retry every few seconds must not flood the log while Asterisk is down.
        self._failure_logged = True
        if not self._ever_connected:
            log.warning("ari.connect_failed", url=self.events_url, reason=failed.reason)

    def _set_connected_metric(self, value: int) -> None:
        if self._metrics is not None:
            self._metrics.ari_connected.set(value)

    def _observe_lag(self, event: AriEvent) -> None:
        if self._metrics is None or event.timestamp is None:
            return
        lag = (datetime.now(UTC) - event.timestamp).total_seconds()
        self._metrics.ari_event_lag.observe(max(lag, 0.0))


def _describe(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


__all__ = [
    "DEFAULT_DISALLOWED_EVENTS",
    "AriEventStream",
    "ConnectInfo",
    "backoff_delay",
    "is_our_stasis_channel",
]

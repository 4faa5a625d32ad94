"""A thin, typed ARI REST client: one method per REST call the engine uses.

Every failure is translated here into ``asterisk.ari.errors`` (subclasses of the engine's
telephony errors), so nothing above this module sees aiohttp exceptions or status codes.
Ids in paths are always preassigned by the caller (ari-notes 1.8 step 6): the engine can then
register local state before Asterisk's events about the object can arrive.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import aiohttp
import structlog
from yarl import URL

from sambung.asterisk.ari.errors import AriFenced, AriNoReply, AriUnavailable, error_for, message_of
from sambung.asterisk.ari.events import (
    Application,
    AriEventParseError,
    Bridge,
    Channel,
    Endpoint,
    Playback,
    parse_date,
)
from sambung.engine.metrics import Metrics

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AsteriskInfo:
    """What the engine needs from ``GET /asterisk/info``: a changed start-up time = restart."""

    startup_time: datetime
    last_reload_time: datetime
    version: str
    entity_id: str


@dataclass(frozen=True, slots=True)
class AsteriskPing:
    asterisk_id: str
    timestamp: str


def _seg(value: str) -> str:
    """Quote one path segment: ids may hold '/' (channel names, recording names)."""
    return quote(value, safe="")


def _flag(value: bool) -> str:
    return "true" if value else "false"


class AriClient:
    """ARI REST calls over a shared aiohttp session (the caller owns and closes the session).

    ``base_url`` is Asterisk's HTTP server (``http://127.0.0.1:8088``, as the settings hold it)
    or the ARI root under it (``http://127.0.0.1:8088/ari``); ``self.base_url`` is always the
    ARI root. ``app`` is our Stasis application, used by originate and the application calls.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        username: str,
        password: str,
        app: str,
        metrics: Metrics | None = None,
        timeout: float = 5.0,
        acting: Callable[[], bool] | None = None,
    ) -> None:
        self._session = session
        # With a hot standby: True only while this engine holds the lease. Checked on every
        # request that changes something, at the moment it is sent, not when the lease keeper
        # next wakes up: a lease that lapsed a moment ago already refuses.
        self._acting = acting
        root = base_url.rstrip("/")
        self.base_url = root if root.endswith("/ari") else root + "/ari"
        self.username = username
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}"}
        self.app = app
        self._metrics = metrics
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        # The password stays out of reprs, and so out of tracebacks with locals and log lines.
        return (
            f"AriClient(base_url={self.base_url!r}, username={self.username!r}, app={self.app!r})"
        )

    @property
    def auth_headers(self) -> dict[str, str]:
        """Basic auth, for the event stream's WebSocket (never logged: it holds the password)."""
        return dict(self._headers)

    # -- transport -------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON body (None for 204).

        ``path`` is relative to the ARI root and already quoted. Raises an ``AriHttpError``
        subclass for error statuses and ``AriUnavailable`` when Asterisk cannot be reached or
        does not answer within the timeout.
        """
        status, decoded = await self._send(method, path, params, body)
        if status >= 300:
            self._raise_for(status, method, path, decoded)
        return decoded

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
    ) -> tuple[int, Any]:
        if method != "GET" and self._acting is not None and not self._acting():
            self._count_error("fenced")
            raise AriFenced(method, path)
        url = URL(self.base_url + path, encoded=True)
        if params:
            url = url.update_query(dict(params))
        try:
            async with self._session.request(
                method, url, headers=self._headers, json=body, timeout=self._timeout
            ) as resp:
                return resp.status, _decode(await resp.text())
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            self._count_error("unreachable")
            reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            if isinstance(err, aiohttp.ClientConnectorError):
                # Never connected: the request did not leave, Asterisk did nothing.
                raise AriUnavailable(method, path, reason) from err
            raise AriNoReply(method, path, reason) from err

    def _raise_for(self, status: int, method: str, path: str, decoded: Any) -> NoReturn:
        self._count_error(str(status))
        error = error_for(status, method, path, message_of(decoded))
        log.debug(
            "ari.request_failed", method=method, path=path, status=status, message=error.message
        )
        raise error

    async def _delete_idempotent(self, path: str, params: Mapping[str, str] | None = None) -> bool:
        """DELETE where 404 means "already done": True if deleted now, False if it was gone.

        The 404 is not counted as an ARI error: it is the normal hang-up race.
        """
        status, decoded = await self._send("DELETE", path, params, None)
        if status == 404:
            return False
        if status >= 300:
            self._raise_for(status, "DELETE", path, decoded)
        return True

    def _count_error(self, status: str) -> None:
        if self._metrics is not None:
            self._metrics.ari_http_errors.labels(status=status).inc()

    async def _get_obj(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        data = await self.request("GET", path, params=params)
        if not isinstance(data, dict):
            raise _bad_reply("GET", path, data)
        return data

    async def _get_list(self, path: str) -> list[dict[str, Any]]:
        data = await self.request("GET", path)
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise _bad_reply("GET", path, data)
        return data

    # -- asterisk --------------------------------------------------------------------------

    async def asterisk_info(self) -> AsteriskInfo:
        path = "/asterisk/info"
        data = await self._get_obj(path, {"only": "status,system"})
        try:
            return AsteriskInfo(
                startup_time=parse_date(data["status"]["startup_time"]),
                last_reload_time=parse_date(data["status"]["last_reload_time"]),
                version=str(data["system"]["version"]),
                entity_id=str(data["system"]["entity_id"]),
            )
        except (KeyError, TypeError, AriEventParseError) as err:
            raise _bad_reply("GET", path, data) from err

    async def ping(self) -> AsteriskPing:
        data = await self._get_obj("/asterisk/ping")
        return AsteriskPing(
            asterisk_id=str(data.get("asterisk_id", "")), timestamp=str(data.get("timestamp", ""))
        )

    # -- applications ----------------------------------------------------------------------

    async def get_application(self) -> Application:
        path = f"/applications/{_seg(self.app)}"
        return _parse(Application.from_json, "GET", path, await self._get_obj(path))

    async def set_event_filter(
        self, allowed: Sequence[str] = (), disallowed: Sequence[str] = ()
    ) -> Application:
        """Replace both lists (an empty ``allowed`` means every event; disallowed wins)."""
        path = f"/applications/{_seg(self.app)}/eventFilter"
        body = {
            "allowed": [{"type": t} for t in allowed],
            "disallowed": [{"type": t} for t in disallowed],
        }
        data = await self.request("PUT", path, body=body)
        return _parse(Application.from_json, "PUT", path, data)

    async def subscribe(self, event_sources: Sequence[str]) -> Application:
        """Subscribe to e.g. ``deviceState:PJSIP/agent1001`` or ``endpoint:PJSIP/agent1001``."""
        path = f"/applications/{_seg(self.app)}/subscription"
        data = await self.request("POST", path, params={"eventSource": ",".join(event_sources)})
        return _parse(Application.from_json, "POST", path, data)

    # -- channels --------------------------------------------------------------------------

    async def list_channels(self) -> list[Channel]:
        rows = await self._get_list("/channels")
        return [_parse(Channel.from_json, "GET", "/channels", r) for r in rows]

    async def get_channel(self, channel_id: str) -> Channel:
        path = f"/channels/{_seg(channel_id)}"
        return _parse(Channel.from_json, "GET", path, await self._get_obj(path))

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/answer")

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/ring")

    async def play(
        self,
        channel_id: str,
        playback_id: str,
        media: Sequence[str],
        lang: str | None = None,
    ) -> Playback:
        """Queue ``media`` on the channel as one playback with a preassigned id.

        The media list goes in the JSON body: a query ``media=a,b`` would split URIs that
        contain commas (raw tone strings), and a repeated query key keeps only the last value.
        """
        path = f"/channels/{_seg(channel_id)}/play/{_seg(playback_id)}"
        body: dict[str, Any] = {"media": list(media)}
        if lang is not None:
            body["lang"] = lang
        data = await self.request("POST", path, body=body)
        return _parse(Playback.from_json, "POST", path, data)

    async def get_playback(self, playback_id: str) -> Playback | None:
        """The playback, or ``None`` once it is over (Asterisk forgets finished playbacks)."""
        path = f"/playbacks/{_seg(playback_id)}"
        status, data = await self._send("GET", path, None, None)
        if status == 404:
            return None
        if status >= 300:
            self._raise_for(status, "GET", path, data)
        return _parse(Playback.from_json, "GET", path, data)

    async def stop_playback(self, playback_id: str) -> bool:
        """Stop a playback; ``False`` if it no longer exists (it finished or its channel left).

        Stopping also yields ``PlaybackFinished`` with state ``done``, like a normal end.
        """
        path = f"/playbacks/{_seg(playback_id)}"
        return await self._delete_idempotent(path)

    async def hangup(self, channel_id: str, reason: str = "normal") -> bool:
        """Hang up any channel (in Stasis or not); ``False`` if it was already gone.

        A 404 here is the normal race with the caller hanging up first, not an error.
        """
        path = f"/channels/{_seg(channel_id)}"
        return await self._delete_idempotent(path, {"reason": reason})

    async def originate(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app_args: Sequence[str] = (),
        variables: Mapping[str, str] | None = None,
        caller_id: str | None = None,
        ring_timeout: int = 30,
        other_channel_id: str | None = None,
        originator: str | None = None,
    ) -> Channel:
        """Dial ``endpoint`` (``PJSIP/agent1001``, ``Local/s@ctx/n``) into our Stasis app.

        The channel enters Stasis when answered; ``StasisStart`` may arrive before this returns.
        ``ring_timeout`` is in seconds. ``variables`` are set at creation, synchronously (unlike
        set_channel_var). An unregistered PJSIP endpoint gives ``AriServerError`` (500), not 404.
        """
        path = f"/channels/{_seg(channel_id)}"
        params = {"endpoint": endpoint, "app": self.app, "timeout": str(ring_timeout)}
        if app_args:
            params["appArgs"] = ",".join(app_args)
        if caller_id is not None:
            params["callerId"] = caller_id
        if other_channel_id is not None:
            params["otherChannelId"] = other_channel_id
        if originator is not None:
            params["originator"] = originator
        body = {"variables": dict(variables)} if variables else None
        data = await self.request("POST", path, params=params, body=body)
        return _parse(Channel.from_json, "POST", path, data)

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        params: dict[str, str] = {}
        if context is not None:
            params["context"] = context
        if extension is not None:
            params["extension"] = extension
        if priority is not None:
            params["priority"] = str(priority)
        if label is not None:
            params["label"] = label
        await self.request("POST", f"/channels/{_seg(channel_id)}/continue", params=params)

    async def get_channel_var(self, channel_id: str, variable: str) -> str:
        path = f"/channels/{_seg(channel_id)}/variable"
        data = await self._get_obj(path, {"variable": variable})
        return str(data.get("value", ""))

    async def set_channel_var(self, channel_id: str, variable: str, value: str) -> None:
        """Note: applied asynchronously for Stasis channels (ari-notes pitfall 14)."""
        path = f"/channels/{_seg(channel_id)}/variable"
        await self.request("POST", path, params={"variable": variable, "value": value})

    async def set_global_var(self, variable: str, value: str) -> None:
        """A dialplan global variable (``${GLOBAL(name)}``)."""
        await self.request(
            "POST", "/asterisk/variable", params={"variable": variable, "value": value}
        )

    # -- bridges ---------------------------------------------------------------------------

    async def list_bridges(self) -> list[Bridge]:
        rows = await self._get_list("/bridges")
        return [_parse(Bridge.from_json, "GET", "/bridges", r) for r in rows]

    async def get_bridge(self, bridge_id: str) -> Bridge:
        path = f"/bridges/{_seg(bridge_id)}"
        return _parse(Bridge.from_json, "GET", path, await self._get_obj(path))

    async def create_bridge(
        self, bridge_id: str, type: str = "mixing", name: str | None = None
    ) -> Bridge:
        """``type`` is a comma list: mixing, holding, dtmf_events, proxy_media, video_sfu..."""
        path = f"/bridges/{_seg(bridge_id)}"
        params = {"type": type}
        if name is not None:
            params["name"] = name
        data = await self.request("POST", path, params=params)
        return _parse(Bridge.from_json, "POST", path, data)

    async def add_channel(
        self,
        bridge_id: str,
        channel_ids: Sequence[str],
        role: str | None = None,
        absorb_dtmf: bool = False,
        mute: bool = False,
    ) -> None:
        """204 comes before the channel is in: wait for ``ChannelEnteredBridge``."""
        params = {"channel": ",".join(channel_ids)}
        if role is not None:
            params["role"] = role
        if absorb_dtmf:
            params["absorbDTMF"] = _flag(absorb_dtmf)
        if mute:
            params["mute"] = _flag(mute)
        await self.request("POST", f"/bridges/{_seg(bridge_id)}/addChannel", params=params)

    async def remove_channel(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        params = {"channel": ",".join(channel_ids)}
        await self.request("POST", f"/bridges/{_seg(bridge_id)}/removeChannel", params=params)

    async def destroy_bridge(self, bridge_id: str) -> bool:
        """Destroy a bridge; ``False`` if it did not exist (idempotent)."""
        return await self._delete_idempotent(f"/bridges/{_seg(bridge_id)}")

    async def start_bridge_moh(self, bridge_id: str, moh_class: str | None = None) -> None:
        params = {"mohClass": moh_class} if moh_class is not None else None
        await self.request("POST", f"/bridges/{_seg(bridge_id)}/moh", params=params)

    async def stop_bridge_moh(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{_seg(bridge_id)}/moh")

    # -- endpoints -------------------------------------------------------------------------

    async def list_endpoints(self, tech: str | None = None) -> list[Endpoint]:
        path = "/endpoints" if tech is None else f"/endpoints/{_seg(tech)}"
        rows = await self._get_list(path)
        return [_parse(Endpoint.from_json, "GET", path, r) for r in rows]

    async def get_device_state(self, device: str) -> str:
        """Aggregate state of any device (``PJSIP/agent1001``): NOT_INUSE, UNAVAILABLE..."""
        path = f"/deviceStates/{_seg(device)}"
        data = await self._get_obj(path)
        return str(data.get("state", "UNKNOWN"))

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        max_seconds: int = 60,
        max_silence_seconds: int = 0,
        beep: bool = True,
        terminate_on: str = "#",
        fmt: str = "wav",
    ) -> None:
        """Record the channel to ``name`` (stored recording); ends with RecordingFinished."""
        params = {
            "name": name,
            "format": fmt,
            "maxDurationSeconds": str(max_seconds),
            "maxSilenceSeconds": str(max_silence_seconds),
            "beep": _flag(beep),
            "terminateOn": terminate_on,
            "ifExists": "overwrite",
        }
        await self.request("POST", f"/channels/{_seg(channel_id)}/record", params=params)

    async def get_endpoint(self, tech: str, resource: str) -> Endpoint:
        path = f"/endpoints/{_seg(tech)}/{_seg(resource)}"
        return _parse(Endpoint.from_json, "GET", path, await self._get_obj(path))

    # -- recordings and snooping -------------------------------------------------------------

    async def record_bridge(
        self, bridge_id: str, name: str, *, fmt: str = "wav", if_exists: str = "fail"
    ) -> None:
        """Record everything mixed in the bridge as stored recording ``name`` (a Recorder
        channel joins the bridge). 409: the name is taken (``if_exists=fail``) or in use."""
        params = {
            "name": name,
            "format": fmt,
            "maxDurationSeconds": "0",
            "maxSilenceSeconds": "0",
            "ifExists": if_exists,
            "beep": "false",
            "terminateOn": "none",
        }
        await self.request("POST", f"/bridges/{_seg(bridge_id)}/record", params=params)

    async def live_recording_state(self, name: str) -> str | None:
        """queued, recording, paused, done, failed, canceled; ``None`` once it is stored (or
        never existed): Asterisk forgets a live recording the moment it ends."""
        path = f"/recordings/live/{_seg(name)}"
        status, data = await self._send("GET", path, None, None)
        if status == 404:
            return None
        if status >= 300:
            self._raise_for(status, "GET", path, data)
        return str(data.get("state", "")) if isinstance(data, dict) else ""

    async def stop_recording(self, name: str) -> bool:
        """Stop and keep a live recording; ``False`` if it was not live (already over)."""
        path = f"/recordings/live/{_seg(name)}/stop"
        status, data = await self._send("POST", path, None, None)
        if status == 404:
            return False
        if status >= 300:
            self._raise_for(status, "POST", path, data)
        return True

    async def pause_recording(self, name: str, paused: bool) -> None:
        """Pause (nothing written: the span is absent from the file) or resume."""
        path = f"/recordings/live/{_seg(name)}/pause"
        await self.request("POST" if paused else "DELETE", path)

    async def mute_recording(self, name: str, muted: bool) -> None:
        """Mute (silence written: the file keeps the call's timeline) or unmute."""
        path = f"/recordings/live/{_seg(name)}/mute"
        await self.request("POST" if muted else "DELETE", path)

    async def stored_recording_exists(self, name: str) -> bool:
        path = f"/recordings/stored/{_seg(name)}"
        status, data = await self._send("GET", path, None, None)
        if status == 404:
            return False
        if status >= 300:
            self._raise_for(status, "GET", path, data)
        return True

    async def stored_recording_file(self, name: str, timeout: float = 120.0) -> bytes | None:
        """The stored recording's bytes (``None`` if Asterisk has no such recording).

        The one binary body ARI sends, so it does not go through ``_send``'s text decoding;
        a long call's file can take longer than a REST call's usual timeout.
        """
        path = f"/recordings/stored/{_seg(name)}/file"
        url = URL(self.base_url + path, encoded=True)
        try:
            async with self._session.get(
                url, headers=self._headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                if resp.status == 404:
                    return None
                if resp.status >= 300:
                    self._raise_for(resp.status, "GET", path, _decode(await resp.text()))
                return await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            self._count_error("unreachable")
            reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            raise AriUnavailable("GET", path, reason) from err

    async def delete_stored_recording(self, name: str) -> bool:
        """Delete a stored recording; ``False`` if it was not there (idempotent)."""
        return await self._delete_idempotent(f"/recordings/stored/{_seg(name)}")

    async def snoop(
        self,
        channel_id: str,
        snoop_id: str,
        *,
        spy: str = "both",
        whisper: str = "none",
        app_args: Sequence[str] = (),
    ) -> Channel:
        """A Snoop channel on ``channel_id`` in our app: ``spy`` is what it hears, ``whisper``
        where its audio goes (``in``: from the channel, ``out``: to it; ari-notes 1.6)."""
        path = f"/channels/{_seg(channel_id)}/snoop/{_seg(snoop_id)}"
        params = {"spy": spy, "whisper": whisper, "app": self.app}
        if app_args:
            params["appArgs"] = ",".join(app_args)
        data = await self.request("POST", path, params=params)
        return _parse(Channel.from_json, "POST", path, data)


def _decode(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _bad_reply(method: str, path: str, data: Any) -> AriUnavailable:
    # A reply we cannot read means we are not talking to the Asterisk we expect; callers treat
    # it like an unreachable Asterisk rather than a programming error in the engine.
    return AriUnavailable(method, path, f"unexpected reply: {str(data)[:200]}")


def _parse(parser: Callable[[dict[str, Any]], T], method: str, path: str, data: Any) -> T:
    if not isinstance(data, dict):
        raise _bad_reply(method, path, data)
    try:
        return parser(data)
    except (KeyError, TypeError, ValueError) as err:
        raise _bad_reply(method, path, data) from err

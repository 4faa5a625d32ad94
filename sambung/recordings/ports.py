"""What the recordings feature needs from Asterisk. ``asterisk.ari.client.AriClient`` has
exactly these methods, so the composition root hands the client in as it is.

Errors are the engine's telephony errors: ``CallGone`` for a channel that no longer exists,
``TelephonyUnavailable`` when Asterisk cannot be reached, another ``TelephonyError`` otherwise.
Lookups of things that may be over already answer ``None``/``False`` instead of raising.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class ChannelView(Protocol):
    @property
    def state(self) -> str: ...


class RecordingAri(Protocol):
    async def record_bridge(
        self, bridge_id: str, name: str, *, fmt: str = "wav", if_exists: str = "fail"
    ) -> None: ...

    async def live_recording_state(self, name: str) -> str | None: ...

    async def stop_recording(self, name: str) -> bool: ...

    async def mute_recording(self, name: str, muted: bool) -> None: ...

    async def stored_recording_exists(self, name: str) -> bool: ...

    async def stored_recording_file(self, name: str, timeout: float = 120.0) -> bytes | None: ...

    async def delete_stored_recording(self, name: str) -> bool: ...

    async def play(
        self, channel_id: str, playback_id: str, media: Sequence[str], lang: str | None = None
    ) -> object: ...

    async def get_playback(self, playback_id: str) -> object | None: ...

    async def stop_playback(self, playback_id: str) -> bool: ...


class MonitorAri(Protocol):
    async def snoop(
        self,
        channel_id: str,
        snoop_id: str,
        *,
        spy: str = "both",
        whisper: str = "none",
        app_args: Sequence[str] = (),
    ) -> object: ...

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
    ) -> object: ...

    async def get_channel(self, channel_id: str) -> ChannelView: ...

    async def create_bridge(
        self, bridge_id: str, type: str = "mixing", name: str | None = None
    ) -> object: ...

    async def add_channel(
        self,
        bridge_id: str,
        channel_ids: Sequence[str],
        role: str | None = None,
        absorb_dtmf: bool = False,
        mute: bool = False,
    ) -> None: ...

    async def destroy_bridge(self, bridge_id: str) -> bool: ...

    async def hangup(self, channel_id: str, reason: str = "normal") -> bool: ...

    async def get_device_state(self, device: str) -> str: ...

"""An in-memory stand-in for the ARI calls the recordings feature makes (``recordings.ports``),
shared by the recordings' unit and component tests, with a check that it behaves as the real
Asterisk 22 did where the feature relies on it (a muted span is written as silence, a stopped
recording is stored at once, a live one is forgotten)."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from sambung.engine.errors import CallGone, TelephonyError, TelephonyUnavailable

RATE = 8000


def wav_bytes(samples: Sequence[int]) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(int(s).to_bytes(2, "little", signed=True) for s in samples))
    return buf.getvalue()


@dataclass
class _Rec:
    bridge: str
    started: float
    # (offset, muted) changes; audio is a constant 1000 when not muted, 0 when muted.
    changes: list[tuple[float, bool]] = field(default_factory=list)


@dataclass
class FakeChannel:
    state: str


class FakeRecordingAri:
    def __init__(self, *, clock: float | None = None) -> None:
        self.live: dict[str, _Rec] = {}
        self.stored: dict[str, bytes] = {}
        self.bridges: dict[str, list[str]] = {}
        self.channels: dict[str, FakeChannel] = {}
        self.playbacks: dict[str, int] = {}
        self.calls: list[tuple[str, ...]] = []
        self.down = False  # every call raises TelephonyUnavailable
        self.device_states: dict[str, str] = {}
        self.answer_after_polls: dict[str, int] = {}

    def _call(self, *what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise TelephonyUnavailable(f"{what[0]}: connection refused")

    # -- recordings --
    async def record_bridge(
        self, bridge_id: str, name: str, *, fmt: str = "wav", if_exists: str = "fail"
    ) -> None:
        self._call("record_bridge", bridge_id, name)
        if name in self.live or (name in self.stored and if_exists == "fail"):
            raise TelephonyError(f"409: recording {name} exists")
        self.live[name] = _Rec(bridge_id, time.monotonic())

    async def live_recording_state(self, name: str) -> str | None:
        self._call("live_recording_state", name)
        return "recording" if name in self.live else None

    async def stop_recording(self, name: str) -> bool:
        self._call("stop_recording", name)
        rec = self.live.pop(name, None)
        if rec is None:
            return False
        self.stored[name] = self._render(rec, time.monotonic() - rec.started)
        return True

    def _render(self, rec: _Rec, seconds: float) -> bytes:
        samples: list[int] = []
        n = int(seconds * RATE)
        for i in range(n):
            t = i / RATE
            muted = False
            for at, m in rec.changes:
                if at <= t:
                    muted = m
            samples.append(0 if muted else 1000)
        return wav_bytes(samples)

    async def mute_recording(self, name: str, muted: bool) -> None:
        self._call("mute_recording", name, str(muted))
        rec = self.live.get(name)
        if rec is None:
            raise TelephonyError("409: recording not in session")
        rec.changes.append((time.monotonic() - rec.started, muted))

    async def stored_recording_exists(self, name: str) -> bool:
        self._call("stored_recording_exists", name)
        return name in self.stored

    async def stored_recording_file(self, name: str, timeout: float = 120.0) -> bytes | None:
        self._call("stored_recording_file", name)
        return self.stored.get(name)

    async def delete_stored_recording(self, name: str) -> bool:
        self._call("delete_stored_recording", name)
        return self.stored.pop(name, None) is not None

    async def play(
        self, channel_id: str, playback_id: str, media: Sequence[str], lang: str | None = None
    ) -> object:
        self._call("play", channel_id, playback_id, *media)
        self.playbacks[playback_id] = 3  # gone after three looks
        return object()

    async def get_playback(self, playback_id: str) -> object | None:
        self._call("get_playback", playback_id)
        left = self.playbacks.get(playback_id, 0)
        if left <= 0:
            self.playbacks.pop(playback_id, None)
            return None
        self.playbacks[playback_id] = left - 1
        return object()

    async def stop_playback(self, playback_id: str) -> bool:
        self._call("stop_playback", playback_id)
        return self.playbacks.pop(playback_id, None) is not None

    # -- monitoring --
    async def snoop(
        self,
        channel_id: str,
        snoop_id: str,
        *,
        spy: str = "both",
        whisper: str = "none",
        app_args: Sequence[str] = (),
    ) -> object:
        self._call("snoop", channel_id, snoop_id, spy, whisper)
        if channel_id not in self.channels:
            raise CallGone(f"channel {channel_id} gone")
        self.channels[snoop_id] = FakeChannel("Up")
        return object()

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
    ) -> object:
        self._call("originate", endpoint, channel_id)
        self.channels[channel_id] = FakeChannel("Ringing")
        self.answer_after_polls.setdefault(channel_id, 2)
        return object()

    async def get_channel(self, channel_id: str) -> FakeChannel:
        self._call("get_channel", channel_id)
        ch = self.channels.get(channel_id)
        if ch is None:
            raise CallGone(f"channel {channel_id} gone")
        left = self.answer_after_polls.get(channel_id, 0)
        if ch.state == "Ringing":
            if left <= 0:
                ch.state = "Up"
            self.answer_after_polls[channel_id] = left - 1
        return ch

    async def create_bridge(
        self, bridge_id: str, type: str = "mixing", name: str | None = None
    ) -> object:
        self._call("create_bridge", bridge_id, type)
        self.bridges[bridge_id] = []
        return object()

    async def add_channel(
        self,
        bridge_id: str,
        channel_ids: Sequence[str],
        role: str | None = None,
        absorb_dtmf: bool = False,
        mute: bool = False,
    ) -> None:
        self._call("add_channel", bridge_id, *channel_ids)
        self.bridges[bridge_id].extend(channel_ids)

    async def destroy_bridge(self, bridge_id: str) -> bool:
        self._call("destroy_bridge", bridge_id)
        return self.bridges.pop(bridge_id, None) is not None

    async def hangup(self, channel_id: str, reason: str = "normal") -> bool:
        self._call("hangup", channel_id)
        return self.channels.pop(channel_id, None) is not None

    async def get_device_state(self, device: str) -> str:
        self._call("get_device_state", device)
        return self.device_states.get(device, "NOT_INUSE")


async def test_the_fake_mutes_with_silence_and_stores_at_stop() -> None:
    ari = FakeRecordingAri()
    await ari.record_bridge("b", "sambung/x")
    assert await ari.live_recording_state("sambung/x") == "recording"
    rec = ari.live["sambung/x"]
    rec.started -= 1.0
    rec.changes = [(0.25, True), (0.5, False)]
    assert await ari.stop_recording("sambung/x")
    assert await ari.live_recording_state("sambung/x") is None
    data = await ari.stored_recording_file("sambung/x")
    assert data is not None
    with wave.open(io.BytesIO(data)) as w:
        frames = w.readframes(w.getnframes())
    values = [
        int.from_bytes(frames[i : i + 2], "little", signed=True) for i in range(0, len(frames), 2)
    ]
    assert (values[1000], values[3000], values[5000]) == (1000, 0, 1000)
    with pytest.raises(TelephonyError):
        await ari.mute_recording("sambung/x", True)

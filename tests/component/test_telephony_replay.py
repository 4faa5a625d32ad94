"""Event sequences recorded from the real Asterisk, replayed by the fake into AriTelephony."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import aiohttp
import pytest

from sambung.asterisk.ari.client import AriClient
from sambung.asterisk.telephony import AriTelephony
from sambung.engine.events import (
    CallAnswered,
    CallEnded,
    CallerHungUp,
    CallOffered,
    DigitPressed,
    EngineEvent,
    PromptFinished,
    PromptStarted,
    TelephonyConnected,
)
from sambung.engine.metrics import build_metrics
from tests.fakes.fake_ari import FakeAri

pytestmark = pytest.mark.timeout(10)


class Sink(list[EngineEvent]):
    def __call__(self, event: EngineEvent) -> None:
        self.append(event)

    async def wait_for(self, kind: type[EngineEvent], count: int = 1) -> None:
        async with asyncio.timeout(3):
            while sum(isinstance(e, kind) for e in self) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.005)


@pytest.fixture
async def tel(fake_ari: FakeAri) -> AsyncIterator[tuple[AriTelephony, Sink]]:
    async with aiohttp.ClientSession() as session:
        sink = Sink()
        client = AriClient(session, fake_ari.base_url, "sambung", fake_ari.password, "sambung")
        tel = AriTelephony(
            client, session, sink, build_metrics(), backoff_initial=0.01, rng=random.Random(1)
        )
        task = asyncio.get_running_loop().create_task(tel.run())
        await sink.wait_for(TelephonyConnected)
        try:
            yield tel, sink
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


@pytest.mark.parametrize(
    ("capture", "expected"),
    [
        (
            "inbound_caller_bye",
            [CallOffered, CallAnswered, PromptStarted, PromptFinished, CallerHungUp, CallEnded],
        ),
        (
            "inbound_dtmf",
            [
                CallOffered,
                CallAnswered,
                PromptStarted,
                PromptFinished,
                DigitPressed,
                CallerHungUp,
                CallEnded,
            ],
        ),
        (
            "inbound_caller_bye_during_playback",
            [CallOffered, CallAnswered, PromptStarted, CallerHungUp, PromptFinished, CallEnded],
        ),
        (
            "inbound_playback_failed",
            [CallOffered, CallAnswered, PromptStarted, PromptFinished, CallEnded],
        ),
        (
            "inbound_app_hangup",
            [CallOffered, CallAnswered, PromptStarted, PromptFinished, CallEnded],
        ),
        (
            "inbound_app_hangup_subscribed",
            [CallOffered, CallAnswered, PromptStarted, PromptFinished, CallEnded],
        ),
    ],
)
async def test_given_a_captured_call_when_replayed_then_the_engine_sees_one_whole_call(
    capture: str,
    expected: list[type[EngineEvent]],
    fake_ari: FakeAri,
    tel: tuple[AriTelephony, Sink],
) -> None:
    telephony, sink = tel
    recorded = fake_ari.load_capture(capture)
    [old_id] = recorded.channel_ids()
    events = recorded.rewritten({old_id: "replayed-1"})
    await fake_ari.replay(events)
    await sink.wait_for(CallEnded)
    await asyncio.sleep(0.05)
    calls = [e for e in sink if not isinstance(e, TelephonyConnected)]
    assert [type(e) for e in calls] == expected
    assert {getattr(e, "call_id", None) for e in calls} == {"replayed-1"}
    # The filter the stream set kept the noise out: ChannelVarset never reached the socket.
    assert not any(e["type"] == "ChannelVarset" for e in fake_ari.sent_events)
    assert telephony.live_calls == frozenset()
    assert fake_ari.channels == {}


async def test_given_two_replayed_calls_interleaved_then_each_is_its_own_call(
    fake_ari: FakeAri, tel: tuple[AriTelephony, Sink]
) -> None:
    _, sink = tel
    capture = fake_ari.load_capture("inbound_dtmf")
    [old_id] = capture.channel_ids()
    a = capture.rewritten({old_id: "call-a"})
    b = capture.rewritten({old_id: "call-b"})
    interleaved = [e for pair in zip(a, b, strict=True) for e in pair]
    await fake_ari.replay(interleaved)
    await sink.wait_for(CallEnded, count=2)
    for cid in ("call-a", "call-b"):
        kinds = [type(e) for e in sink if getattr(e, "call_id", None) == cid]
        assert kinds.count(CallEnded) == 1
        assert kinds.count(DigitPressed) == 1


async def test_given_a_replayed_call_in_progress_when_connection_drops_then_it_is_live_at_reconnect(
    fake_ari: FakeAri, tel: tuple[AriTelephony, Sink]
) -> None:
    _, sink = tel
    capture = fake_ari.load_capture("inbound_caller_bye")
    [old_id] = capture.channel_ids()
    events = capture.rewritten({old_id: "live-1"})
    answered = next(i for i, e in enumerate(events) if e["type"] == "ChannelStateChange") + 1
    await fake_ari.replay(events[:answered])
    await sink.wait_for(CallAnswered)
    await fake_ari.drop_connections()
    await sink.wait_for(TelephonyConnected, count=2)
    again = [e for e in sink if isinstance(e, TelephonyConnected)][-1]
    assert again.live_call_ids == frozenset({"live-1"})
    await fake_ari.replay(events[answered:])
    await sink.wait_for(CallEnded)


async def test_given_replay_capture_twice_then_each_replay_is_a_fresh_call(
    fake_ari: FakeAri, tel: tuple[AriTelephony, Sink]
) -> None:
    _, sink = tel
    first = await fake_ari.replay_capture("inbound_caller_bye")
    second = await fake_ari.replay_capture("inbound_caller_bye")
    await sink.wait_for(CallEnded, count=2)
    offered = [e.call_id for e in sink if isinstance(e, CallOffered)]
    assert offered == [first[0]["channel"]["id"], second[0]["channel"]["id"]]
    assert offered[0] != offered[1]

"""AriTelephony end to end against the fake ARI server: calls in the engine's own words."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest

from sambung.asterisk.ari.client import AriClient
from sambung.asterisk.telephony import AriTelephony
from sambung.engine.errors import CallGone
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
    TelephonyLost,
)
from sambung.engine.metrics import build_metrics
from sambung.engine.ports import Telephony
from tests.fakes.fake_ari import FakeAri, channel_json

pytestmark = pytest.mark.timeout(10)


class Sink:
    """The engine's side: a sync callable, as the dispatcher is."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []

    def __call__(self, event: EngineEvent) -> None:
        self.events.append(event)

    async def wait_for(
        self, pred: Callable[[EngineEvent], bool], count: int = 1, timeout: float = 3.0
    ) -> list[EngineEvent]:
        async with asyncio.timeout(timeout):
            while True:
                found = [e for e in self.events if pred(e)]
                if len(found) >= count:
                    return found
                await asyncio.sleep(0.005)

    def of(self, kind: type[EngineEvent]) -> list[EngineEvent]:
        return [e for e in self.events if isinstance(e, kind)]


@dataclass
class Running:
    tel: AriTelephony
    sink: Sink
    fake: FakeAri
    task: asyncio.Task[None]


@pytest.fixture
async def running(fake_ari: FakeAri) -> AsyncIterator[Running]:
    async with aiohttp.ClientSession() as session:
        sink = Sink()
        client = AriClient(
            session, fake_ari.base_url, fake_ari.username, fake_ari.password, fake_ari.app_name
        )
        tel = AriTelephony(
            client,
            session,
            sink,
            build_metrics(),
            backoff_initial=0.01,
            backoff_max=0.05,
            rng=random.Random(3),
            destroyed_grace=0.2,
        )
        task = asyncio.get_running_loop().create_task(tel.run())
        await sink.wait_for(lambda e: isinstance(e, TelephonyConnected))
        try:
            yield Running(tel, sink, fake_ari, task)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def _conforms(tel: AriTelephony) -> Telephony:
    return tel  # mypy --strict checks here that AriTelephony implements engine.ports.Telephony


def test_given_ari_telephony_then_it_implements_the_engine_port() -> None:
    assert _conforms.__annotations__["return"] in ("Telephony", Telephony)


async def test_given_inbound_call_when_engine_answers_plays_and_hangs_up_then_domain_events_flow(
    running: Running,
) -> None:
    tel, sink, fake = running.tel, running.sink, running.fake
    await fake.inbound_call("c1", did="1500")
    [offer] = await sink.wait_for(lambda e: isinstance(e, CallOffered))
    assert isinstance(offer, CallOffered)
    assert offer.did == "1500"

    await tel.answer("c1")
    await sink.wait_for(lambda e: isinstance(e, CallAnswered))
    await tel.play("c1", "c1-greeting-1", ["sound:hello-world"], language="en")
    await sink.wait_for(lambda e: isinstance(e, PromptFinished))
    await tel.hangup("c1")
    await tel.hangup("c1")  # idempotent
    [ended] = await sink.wait_for(lambda e: isinstance(e, CallEnded))
    assert isinstance(ended, CallEnded)
    assert ended.cause == 16

    kinds = [type(e).__name__ for e in sink.events]
    assert kinds == [
        "TelephonyConnected",
        "CallOffered",
        "CallAnswered",
        "PromptStarted",
        "PromptFinished",
        "CallEnded",
    ]
    play = fake.requests_to("POST", "/channels/c1/play/c1-greeting-1")[0]
    assert play.body == {"media": ["sound:hello-world"], "lang": "en"}
    await asyncio.sleep(0.3)  # past the StasisEnd grace: still exactly one CallEnded
    assert len(sink.of(CallEnded)) == 1


async def test_given_caller_presses_digit_and_hangs_up_then_digit_hung_up_and_ended(
    running: Running,
) -> None:
    sink, fake = running.sink, running.fake
    await fake.inbound_call("c2")
    await sink.wait_for(lambda e: isinstance(e, CallOffered))
    await running.tel.answer("c2")
    await fake.press_digit("c2", "7")
    await fake.caller_hangup("c2")
    [ended] = await sink.wait_for(lambda e: isinstance(e, CallEnded))
    digit = sink.of(DigitPressed)[0]
    assert isinstance(digit, DigitPressed)
    assert digit.digit == "7"
    assert len(sink.of(CallerHungUp)) == 1
    assert isinstance(ended, CallEnded)
    assert (ended.cause, ended.sip_code) == (16, None)


async def test_given_missing_sound_when_played_then_prompt_finished_failed(
    running: Running,
) -> None:
    sink, fake = running.sink, running.fake
    await fake.inbound_call("c3")
    await sink.wait_for(lambda e: isinstance(e, CallOffered))
    await running.tel.answer("c3")
    await running.tel.play("c3", "c3-p1", ["sound:no-such-file"])
    [finished] = await sink.wait_for(lambda e: isinstance(e, PromptFinished))
    assert isinstance(finished, PromptFinished)
    assert finished.failed is True


async def test_given_prompt_playing_when_stopped_then_not_active_and_finished(
    running: Running,
) -> None:
    sink, fake = running.sink, running.fake
    fake.playback_duration = 5.0
    await fake.inbound_call("c4")
    await sink.wait_for(lambda e: isinstance(e, CallOffered))
    await running.tel.play("c4", "c4-p1", ["sound:queue-youarenext"])
    await sink.wait_for(lambda e: isinstance(e, PromptStarted))
    assert await running.tel.prompt_active("c4-p1") is True
    await running.tel.stop_prompt("c4-p1")
    await running.tel.stop_prompt("c4-p1")  # already stopped: fine
    await sink.wait_for(lambda e: isinstance(e, PromptFinished))
    assert await running.tel.prompt_active("c4-p1") is False


async def test_given_call_gone_when_engine_answers_then_call_gone(running: Running) -> None:
    with pytest.raises(CallGone):
        await running.tel.answer("never-existed")
    with pytest.raises(CallGone):
        await running.tel.play("never-existed", "p", ["sound:hello-world"])


async def test_given_orphan_channel_when_hung_up_then_true_then_false(running: Running) -> None:
    running.fake.channels["orphan"] = channel_json("orphan", state="Up")
    assert await running.tel.hangup_orphan("orphan") is True
    await asyncio.sleep(0.05)
    assert await running.tel.hangup_orphan("orphan") is False


async def test_given_connection_drops_then_lost_then_connected_with_live_calls(
    running: Running,
) -> None:
    sink, fake, tel = running.sink, running.fake, running.tel
    await fake.inbound_call("c5")
    await sink.wait_for(lambda e: isinstance(e, CallOffered))
    await tel.answer("c5")
    await sink.wait_for(lambda e: isinstance(e, CallAnswered))
    assert tel.is_connected
    await fake.drop_connections()
    await sink.wait_for(lambda e: isinstance(e, TelephonyLost))
    [_, again] = await sink.wait_for(lambda e: isinstance(e, TelephonyConnected), count=2)
    assert isinstance(again, TelephonyConnected)
    assert again.live_call_ids == frozenset({"c5"})
    assert again.first_connect is False
    assert tel.is_connected


async def test_given_resync_request_then_engine_gets_connected_again(running: Running) -> None:
    running.tel.request_resync("ami_fully_booted")
    await running.sink.wait_for(lambda e: isinstance(e, TelephonyConnected), count=2)
    assert running.fake.connections == 1

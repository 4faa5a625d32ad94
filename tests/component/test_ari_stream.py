"""The ARI event stream supervisor against the fake ARI server."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from sambung.asterisk.ari.client import AriClient
from sambung.asterisk.ari.events import AriEvent, StasisStart, UnknownEvent
from sambung.asterisk.ari.stream import AriEventStream, ConnectInfo
from sambung.engine.metrics import Metrics, build_metrics
from tests.fakes.fake_ari import FakeAri, channel_json

pytestmark = pytest.mark.timeout(10)


@dataclass
class Recorder:
    """Records everything the stream hands the engine, in one ordered log."""

    log: list[Any] = field(default_factory=list)
    connects: list[ConnectInfo] = field(default_factory=list)
    events: list[AriEvent] = field(default_factory=list)
    disconnects: list[str] = field(default_factory=list)
    connected: asyncio.Condition = field(default_factory=asyncio.Condition)
    on_connected_delay: float = 0.0

    def on_event(self, event: AriEvent) -> None:
        self.events.append(event)
        self.log.append(event)

    async def on_connected(self, info: ConnectInfo) -> None:
        if self.on_connected_delay:
            await asyncio.sleep(self.on_connected_delay)
        self.connects.append(info)
        self.log.append(info)
        async with self.connected:
            self.connected.notify_all()

    def on_disconnected(self, reason: str) -> None:
        self.disconnects.append(reason)
        self.log.append(("lost", reason))

    async def wait_connects(self, n: int, timeout: float = 3.0) -> ConnectInfo:
        async with asyncio.timeout(timeout), self.connected:
            await self.connected.wait_for(lambda: len(self.connects) >= n)
        return self.connects[n - 1]

    async def wait_events(self, n: int, timeout: float = 3.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.events) < n:  # noqa: ASYNC110 - polling a plain list in a test
                await asyncio.sleep(0.005)


@dataclass
class Harness:
    fake: FakeAri
    rec: Recorder
    stream: AriEventStream
    client: AriClient
    metrics: Metrics
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.stream.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await self.task


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make_stream(
    fake: FakeAri,
    session: aiohttp.ClientSession,
    *,
    password: str | None = None,
    subscriptions: tuple[str, ...] = (),
    heartbeat: float = 5.0,
) -> Harness:
    metrics = build_metrics()
    client = AriClient(
        session,
        fake.base_url,
        fake.username,
        password if password is not None else fake.password,
        fake.app_name,
        metrics=metrics,
        timeout=2.0,
    )
    rec = Recorder()
    stream = AriEventStream(
        client,
        session,
        fake.ws_url_base,
        fake.app_name,
        on_event=rec.on_event,
        on_connected=rec.on_connected,
        on_disconnected=rec.on_disconnected,
        metrics=metrics,
        subscriptions=subscriptions,
        heartbeat=heartbeat,
        backoff_initial=0.01,
        backoff_max=0.05,
        rng=random.Random(7),
    )
    return Harness(fake, rec, stream, client, metrics)


@pytest.fixture
async def harness(fake_ari: FakeAri, session: aiohttp.ClientSession) -> AsyncIterator[Harness]:
    h = make_stream(fake_ari, session, subscriptions=("deviceState:PJSIP/agent1001",))
    h.start()
    yield h
    await h.stop()


def gauge(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    return 0.0 if value is None else value


async def test_given_asterisk_up_when_stream_connects_then_it_registers_filters_subscribes_and_reconciles_in_order(  # noqa: E501
    harness: Harness, fake_ari: FakeAri
) -> None:
    fake_ari.channels["c-ours"] = channel_json("c-ours")
    fake_ari.channels["c-other"] = channel_json("c-other", app_args="otherapp,inbound,1")

    info = await harness.rec.wait_connects(1)

    calls = [(r.method, r.path) for r in fake_ari.requests]
    assert calls == [
        ("GET", "/asterisk/info"),
        ("GET", "/events"),
        ("GET", "/applications/sambung"),
        ("PUT", "/applications/sambung/eventFilter"),
        ("POST", "/applications/sambung/subscription"),
        ("GET", "/channels"),
        ("GET", "/bridges"),
    ]
    ws = fake_ari.requests[1]
    assert ws.query["app"] == "sambung"
    assert ws.query["subscribeAll"] == "false"
    assert fake_ari.event_filter["disallowed"] == [
        {"type": "ChannelVarset"},
        {"type": "ChannelDialplan"},
        {"type": "ChannelCallerId"},
        {"type": "ChannelConnectedLine"},
    ]
    assert fake_ari.subscriptions == ["deviceState:PJSIP/agent1001"]
    assert info.first_connect is True
    assert info.restarted is False
    assert info.asterisk_id == fake_ari.entity_id
    assert info.startup_time == fake_ari.startup_time
    assert [c.id for c in info.channels] == ["c-ours"]
    assert harness.stream.is_connected
    assert gauge(harness.metrics, "sambung_ari_connected") == 1
    assert gauge(harness.metrics, "sambung_ari_reconnects_total") == 0


async def test_given_events_arrive_during_reconciliation_when_connected_then_they_are_delivered_after_on_connected_in_order(  # noqa: E501
    fake_ari: FakeAri, session: aiohttp.ClientSession
) -> None:
    h = make_stream(fake_ari, session)
    h.rec.on_connected_delay = 0.2  # the engine takes a while to rebuild its state
    h.start()
    try:
        await fake_ari.wait_connections(1)
        await fake_ari.inbound_call("c1")
        await fake_ari.press_digit("c1", "5")
        await fake_ari.send_event({"type": "SomethingNew", "x": 1})
        await h.rec.wait_events(3)
        assert isinstance(h.rec.log[0], ConnectInfo)
        kinds = [type(e).__name__ for e in h.rec.log[1:]]
        assert kinds == ["StasisStart", "ChannelDtmfReceived", "UnknownEvent"]
        unknown = h.rec.events[2]
        assert isinstance(unknown, UnknownEvent)
        assert unknown.raw["x"] == 1
    finally:
        await h.stop()


async def test_given_connected_when_server_drops_socket_then_stream_reconnects_reapplies_filter_and_reconciles(  # noqa: E501
    harness: Harness, fake_ari: FakeAri
) -> None:
    await harness.rec.wait_connects(1)
    fake_ari.event_filter = {"allowed": [], "disallowed": []}  # the app object was destroyed
    fake_ari.subscriptions.clear()
    fake_ari.channels["c-live"] = channel_json("c-live", state="Up")

    with capture_logs() as logs:
        await fake_ari.drop_connections()
        second = await harness.rec.wait_connects(2)

    assert harness.rec.disconnects
    assert len(harness.rec.disconnects) == 1
    assert second.first_connect is False
    assert second.restarted is False
    assert [c.id for c in second.channels] == ["c-live"]
    assert fake_ari.event_filter["disallowed"] != []
    assert fake_ari.subscriptions == ["deviceState:PJSIP/agent1001"]
    assert len(fake_ari.requests_to("GET", "/channels")) == 2
    assert len(fake_ari.requests_to("GET", "/bridges")) == 2
    names = [entry["event"] for entry in logs]
    assert names.count("ari.disconnected") == 1
    assert names.count("ari.connected") == 1
    connected = next(e for e in logs if e["event"] == "ari.connected")
    assert connected["restarted"] is False
    assert gauge(harness.metrics, "sambung_ari_reconnects_total") == 1
    assert gauge(harness.metrics, "sambung_ari_connected") == 1


async def test_given_asterisk_restarted_while_disconnected_when_stream_reconnects_then_restarted_is_true(  # noqa: E501
    harness: Harness, fake_ari: FakeAri
) -> None:
    first = await harness.rec.wait_connects(1)
    await fake_ari.drop_connections()
    fake_ari.restart()
    second = await harness.rec.wait_connects(2)
    assert second.restarted is True
    assert second.startup_time > first.startup_time


async def test_given_asterisk_down_for_several_attempts_when_it_comes_back_then_disconnected_is_logged_once(  # noqa: E501
    fake_ari: FakeAri, session: aiohttp.ClientSession
) -> None:
    h = make_stream(fake_ari, session)
    h.start()
    try:
        await h.rec.wait_connects(1)
        with capture_logs() as logs:
            # Asterisk unreachable: point the client's REST calls at a closed port.
            good = h.client.base_url
            h.client.base_url = "http://127.0.0.1:9/ari"
            await fake_ari.drop_connections()
            await asyncio.sleep(0.3)  # several failed attempts at 10-50 ms backoff
            h.client.base_url = good
            await h.rec.wait_connects(2)
        names = [e["event"] for e in logs]
        assert len(h.rec.disconnects) == 1
        unreachable = h.metrics.registry.get_sample_value(
            "sambung_ari_http_errors_total", {"status": "unreachable"}
        )
        assert unreachable is not None
        assert unreachable >= 3
        assert names.count("ari.disconnected") == 1
        assert names.count("ari.connected") == 1
        assert "ari.auth_failed" not in names
    finally:
        await h.stop()


async def test_given_wrong_password_when_stream_runs_then_one_auth_error_is_logged_until_it_succeeds(  # noqa: E501
    fake_ari: FakeAri, session: aiohttp.ClientSession
) -> None:
    fake_ari.reject_auth = True
    h = make_stream(fake_ari, session)
    with capture_logs() as logs:
        h.start()
        try:
            async with asyncio.timeout(3):
                while len(fake_ari.requests) < 5:  # noqa: ASYNC110 - several failed attempts
                    await asyncio.sleep(0.01)
            fake_ari.reject_auth = False
            await h.rec.wait_connects(1)
        finally:
            await h.stop()
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["ari.auth_failed"]
    assert errors[0]["user"] == "sambung"
    assert errors[0]["url"] == fake_ari.ari_url
    assert all(fake_ari.password not in repr(e) for e in logs)
    assert [e["event"] for e in logs if e["event"].startswith("ari.connected")] == ["ari.connected"]
    failures = h.metrics.registry.get_sample_value(
        "sambung_ari_http_errors_total", {"status": "401"}
    )
    assert failures is not None
    assert failures >= 2


async def test_given_resync_requested_when_connected_then_filter_subscriptions_and_reconciliation_are_redone(  # noqa: E501
    harness: Harness, fake_ari: FakeAri
) -> None:
    await harness.rec.wait_connects(1)
    await fake_ari.inbound_call("c1")
    await harness.rec.wait_events(1)
    harness.stream.request_resync("ami_fully_booted")
    again = await harness.rec.wait_connects(2)
    await fake_ari.press_digit("c1", "1")
    await harness.rec.wait_events(2)
    assert again.first_connect is False
    assert [c.id for c in again.channels] == ["c1"]
    assert fake_ari.connections == 1  # the socket stayed up
    assert len(fake_ari.requests_to("PUT", "/applications/sambung/eventFilter")) == 2
    assert len(fake_ari.requests_to("POST", "/applications/sambung/subscription")) == 2
    assert isinstance(harness.rec.log[1], StasisStart)
    assert isinstance(harness.rec.log[2], ConnectInfo)


async def test_given_server_stops_answering_pings_when_heartbeat_expires_then_stream_reconnects(
    fake_ari: FakeAri, session: aiohttp.ClientSession
) -> None:
    h = make_stream(fake_ari, session, heartbeat=0.2)
    h.start()
    try:
        await h.rec.wait_connects(1)
        fake_ari.answer_pings = False
        async with asyncio.timeout(3):
            while not h.rec.disconnects:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        fake_ari.answer_pings = True
        await h.rec.wait_connects(2)
        assert fake_ari.connections >= 2
    finally:
        await h.stop()


async def test_given_application_replaced_when_event_arrives_then_stream_stops_without_reconnecting(
    fake_ari: FakeAri, session: aiohttp.ClientSession
) -> None:
    h = make_stream(fake_ari, session)
    h.start()
    await h.rec.wait_connects(1)
    with capture_logs() as logs:
        await fake_ari.send_event({"type": "ApplicationReplaced"})
        assert h.task is not None
        await asyncio.wait_for(h.task, 2)
    assert h.stream.replaced
    assert fake_ari.connections == 1
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["ari.application_replaced"]
    assert gauge(h.metrics, "sambung_ari_connected") == 0


async def test_given_an_event_handler_that_raises_when_events_flow_then_the_stream_keeps_going(
    fake_ari: FakeAri, session: aiohttp.ClientSession
) -> None:
    h = make_stream(fake_ari, session)
    seen: list[str] = []

    def flaky(event: AriEvent) -> None:
        seen.append(event.type)
        if len(seen) == 1:
            raise RuntimeError("engine bug")

    h.stream._on_event = flaky
    h.start()
    try:
        await h.rec.wait_connects(1)
        with capture_logs() as logs:
            await fake_ari.inbound_call("c1")
            await fake_ari.press_digit("c1", "2")
            async with asyncio.timeout(2):
                while len(seen) < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
        assert seen == ["StasisStart", "ChannelDtmfReceived"]
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["ari.on_event_failed"]
    finally:
        await h.stop()


async def test_given_event_with_timestamp_when_delivered_then_lag_is_observed(
    harness: Harness, fake_ari: FakeAri
) -> None:
    await harness.rec.wait_connects(1)
    await fake_ari.inbound_call("c1")
    await harness.rec.wait_events(1)
    count = harness.metrics.registry.get_sample_value("sambung_ari_event_lag_seconds_count")
    assert count == 1


async def test_given_malformed_event_when_read_then_it_is_logged_and_skipped(
    harness: Harness, fake_ari: FakeAri
) -> None:
    await harness.rec.wait_connects(1)
    with capture_logs() as logs:
        await fake_ari.send_event({"type": "StasisStart", "args": ["inbound"]})  # no channel
        await fake_ari.inbound_call("c2")
        await harness.rec.wait_events(1)
    assert [type(e).__name__ for e in harness.rec.events] == ["StasisStart"]
    assert any(e["event"] == "ari.event_unparseable" for e in logs)


async def test_given_a_bug_in_parsing_when_reading_then_stream_reconnects_instead_of_hanging(
    fake_ari: FakeAri, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_stream(fake_ari, session)
    h.start()
    try:
        await h.rec.wait_connects(1)

        def broken(text: str) -> AriEvent | None:
            raise RuntimeError("parser bug")

        monkeypatch.setattr(h.stream, "_parse", broken)
        with capture_logs() as logs:
            await fake_ari.inbound_call("c1")
            async with asyncio.timeout(3):
                while not h.rec.disconnects:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
            monkeypatch.undo()
            await h.rec.wait_connects(2)
        assert any(e["event"] == "ari.reader_failed" for e in logs)
    finally:
        await h.stop()

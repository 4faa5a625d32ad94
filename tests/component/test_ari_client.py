"""The typed ARI REST client against the fake ARI server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from sambung.asterisk.ari.client import AriClient
from sambung.asterisk.ari.errors import (
    AriAuthFailed,
    AriBadRequest,
    AriConflict,
    AriFenced,
    AriNotFound,
    AriServerError,
    AriUnavailable,
    AriUnprocessable,
    ChannelGone,
)
from sambung.engine.errors import CallGone
from sambung.engine.metrics import Metrics, build_metrics
from tests.fakes.fake_ari import FakeAri, channel_json

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def metrics() -> Metrics:
    return build_metrics()


@pytest.fixture
def client(fake_ari: FakeAri, session: aiohttp.ClientSession, metrics: Metrics) -> AriClient:
    return AriClient(
        session, fake_ari.base_url, fake_ari.username, fake_ari.password, "sambung", metrics
    )


def errors(metrics: Metrics, status: str) -> float:
    value = metrics.registry.get_sample_value("sambung_ari_http_errors_total", {"status": status})
    return 0.0 if value is None else value


async def test_given_http_root_or_ari_root_then_base_url_is_the_ari_root(
    session: aiohttp.ClientSession,
) -> None:
    a = AriClient(session, "http://127.0.0.1:8088", "u", "p", "app")
    b = AriClient(session, "http://127.0.0.1:8088/ari/", "u", "p", "app")
    assert a.base_url == b.base_url == "http://127.0.0.1:8088/ari"


async def test_given_a_client_then_its_repr_never_shows_the_password(client: AriClient) -> None:
    assert "sambung-dev-secret" not in repr(client)
    assert "sambung-dev-secret" not in str(vars(client).get("base_url"))


async def test_given_asterisk_when_info_requested_then_typed_start_time_and_entity_id(
    client: AriClient, fake_ari: FakeAri
) -> None:
    info = await client.asterisk_info()
    assert info.startup_time == fake_ari.startup_time
    assert info.entity_id == fake_ari.entity_id
    assert info.version == "22.10.1"
    assert fake_ari.requests[-1].query == {"only": "status,system"}
    ping = await client.ping()
    assert ping.asterisk_id == fake_ari.entity_id


async def test_given_channel_in_stasis_when_play_then_media_list_goes_in_json_body(
    client: AriClient, fake_ari: FakeAri
) -> None:
    fake_ari.channels["c1"] = channel_json("c1", state="Up")
    media = ["sound:hello-world", "tone:440+480/2000,0/4000"]
    playback = await client.play("c1", "c1-greeting-1", media, lang="id")
    req = fake_ari.requests[-1]
    assert (req.method, req.path) == ("POST", "/channels/c1/play/c1-greeting-1")
    assert req.body == {"media": media, "lang": "id"}
    assert req.query == {}
    assert playback.id == "c1-greeting-1"
    assert playback.target_uri == "channel:c1"
    assert playback.state == "queued"
    active = await client.get_playback("c1-greeting-1")
    assert active is not None
    assert await client.stop_playback("c1-greeting-1") is True
    assert await client.stop_playback("c1-greeting-1") is False
    assert await client.get_playback("c1-greeting-1") is None


async def test_given_channel_gone_when_answer_then_channel_gone_is_raised_and_counted(
    client: AriClient, metrics: Metrics
) -> None:
    with pytest.raises(ChannelGone) as info:
        await client.answer("gone-1")
    assert isinstance(info.value, CallGone)
    assert info.value.status == 404
    assert info.value.method == "POST"
    assert info.value.path == "/channels/gone-1/answer"
    assert info.value.message == "Channel not found"
    assert info.value.channel_id == "gone-1"
    assert errors(metrics, "404") == 1


async def test_given_channel_not_in_our_app_when_answer_then_conflict(
    client: AriClient, fake_ari: FakeAri
) -> None:
    fake_ari.channels["c2"] = channel_json("c2", app_args="other,inbound,1")
    with pytest.raises(AriConflict):
        await client.answer("c2")


async def test_given_hangup_twice_then_it_is_idempotent_and_the_404_is_not_an_error(
    client: AriClient, fake_ari: FakeAri, metrics: Metrics
) -> None:
    fake_ari.channels["c3"] = channel_json("c3")
    assert await client.hangup("c3", reason="busy") is True
    req = fake_ari.requests[-1]
    assert (req.method, req.path, req.query) == ("DELETE", "/channels/c3", {"reason": "busy"})
    await asyncio.sleep(0.05)  # the fake ends the channel asynchronously, like Asterisk
    assert await client.hangup("c3") is False
    assert errors(metrics, "404") == 0


async def test_given_ids_with_slashes_then_path_segments_are_quoted(
    client: AriClient, fake_ari: FakeAri
) -> None:
    fake_ari.channels["PJSIP/trunk-00000001"] = channel_json("PJSIP/trunk-00000001")
    assert await client.hangup("PJSIP/trunk-00000001") is True


async def test_given_originate_then_preassigned_id_app_args_and_variables_are_sent(
    client: AriClient, fake_ari: FakeAri
) -> None:
    channel = await client.originate(
        "PJSIP/agent1001",
        channel_id="agt-call1-1",
        app_args=["agent", "call1"],
        variables={"CALLERID(name)": "Queue sales"},
        caller_id="Sambung <1500>",
        ring_timeout=20,
    )
    req = fake_ari.requests[-1]
    assert (req.method, req.path) == ("POST", "/channels/agt-call1-1")
    assert req.query == {
        "endpoint": "PJSIP/agent1001",
        "app": "sambung",
        "timeout": "20",
        "appArgs": "agent,call1",
        "callerId": "Sambung <1500>",
    }
    assert req.body == {"variables": {"CALLERID(name)": "Queue sales"}}
    assert channel.id == "agt-call1-1"
    assert channel.state == "Down"
    with pytest.raises(AriConflict):
        await client.originate("PJSIP/agent1001", channel_id="agt-call1-1")


async def test_given_unregistered_endpoint_when_originate_then_server_error(
    client: AriClient, fake_ari: FakeAri, metrics: Metrics
) -> None:
    fake_ari.unreachable_endpoints.add("PJSIP/agent1002")
    with pytest.raises(AriServerError) as info:
        await client.originate("PJSIP/agent1002", channel_id="agt-x")
    assert info.value.message == "Allocation failed"
    assert errors(metrics, "500") == 1


async def test_given_bridges_then_create_add_remove_moh_and_destroy_behave_like_asterisk(
    client: AriClient, fake_ari: FakeAri
) -> None:
    fake_ari.channels["c4"] = channel_json("c4", state="Up")
    fake_ari.channels["c5"] = channel_json("c5", app_args="other")
    bridge = await client.create_bridge("q-sales", "holding", name="queue sales")
    assert (bridge.id, bridge.bridge_type, bridge.name) == ("q-sales", "holding", "queue sales")
    with pytest.raises(AriConflict):
        await client.create_bridge("q-sales")
    await client.add_channel("q-sales", ["c4"], role="participant")
    assert fake_ari.requests[-1].query == {"channel": "c4", "role": "participant"}
    with pytest.raises(AriBadRequest):
        await client.add_channel("q-sales", ["nope"])
    with pytest.raises(AriUnprocessable):
        await client.add_channel("q-sales", ["c5"])
    await client.start_bridge_moh("q-sales", "default")
    await client.stop_bridge_moh("q-sales")
    assert [b.id for b in await client.list_bridges()] == ["q-sales"]
    assert (await client.get_bridge("q-sales")).channels == ["c4"]
    await client.remove_channel("q-sales", ["c4"])
    assert await client.destroy_bridge("q-sales") is True
    assert await client.destroy_bridge("q-sales") is False
    with pytest.raises(AriNotFound) as info:
        await client.start_bridge_moh("q-sales")
    assert not isinstance(info.value, ChannelGone)


async def test_given_app_registered_then_filter_and_subscriptions_round_trip(
    client: AriClient, fake_ari: FakeAri, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(AriNotFound):
        await client.get_application()  # no events socket yet: app not registered
    ws = await session.ws_connect(
        fake_ari.ws_url_base + "/events?app=sambung", headers=client.auth_headers
    )
    try:
        await fake_ari.wait_connections(1)
        app = await client.set_event_filter(disallowed=["ChannelVarset"])
        assert app.events_disallowed == [{"type": "ChannelVarset"}]
        assert fake_ari.requests[-1].body == {
            "allowed": [],
            "disallowed": [{"type": "ChannelVarset"}],
        }
        await client.subscribe(["deviceState:PJSIP/agent1001", "endpoint:PJSIP/agent1001"])
        assert fake_ari.requests[-1].query == {
            "eventSource": "deviceState:PJSIP/agent1001,endpoint:PJSIP/agent1001"
        }
        assert (await client.get_application()).name == "sambung"
    finally:
        await ws.close()


async def test_given_channel_then_variables_continue_list_and_get_work(
    client: AriClient, fake_ari: FakeAri
) -> None:
    fake_ari.channels["c6"] = channel_json("c6", state="Up")
    await client.set_channel_var("c6", "SAMBUNG_CALL", "yes")
    assert await client.get_channel_var("c6", "SAMBUNG_CALL") == "yes"
    assert [c.id for c in await client.list_channels()] == ["c6"]
    assert (await client.get_channel("c6")).state == "Up"
    await client.ring("c6")
    await client.continue_in_dialplan("c6", context="from-trunk", extension="s", priority=2)
    assert fake_ari.requests[-1].query == {
        "context": "from-trunk",
        "extension": "s",
        "priority": "2",
    }
    with pytest.raises(ChannelGone):
        await client.get_channel("nope")


async def test_given_endpoints_then_list_and_get(client: AriClient, fake_ari: FakeAri) -> None:
    fake_ari.add_endpoint("PJSIP", "agent1001", "online")
    assert [e.resource for e in await client.list_endpoints()] == ["agent1001"]
    assert [e.resource for e in await client.list_endpoints("PJSIP")] == ["agent1001"]
    ep = await client.get_endpoint("PJSIP", "agent1001")
    assert ep.state == "online"
    with pytest.raises(AriNotFound):
        await client.get_endpoint("PJSIP", "agent9999")


async def test_given_wrong_password_then_auth_failed(
    fake_ari: FakeAri, session: aiohttp.ClientSession, metrics: Metrics
) -> None:
    bad = AriClient(session, fake_ari.base_url, "sambung", "wrong", "sambung", metrics)
    with pytest.raises(AriAuthFailed) as info:
        await bad.asterisk_info()
    assert "wrong" not in str(info.value)
    assert errors(metrics, "401") == 1


async def test_given_nothing_listening_then_unavailable(
    session: aiohttp.ClientSession, metrics: Metrics
) -> None:
    dead = AriClient(session, "http://127.0.0.1:9", "u", "p", "app", metrics, timeout=1.0)
    with pytest.raises(AriUnavailable) as info:
        await dead.ping()
    assert info.value.path == "/asterisk/ping"
    assert errors(metrics, "unreachable") == 1


async def test_given_asterisk_that_never_answers_then_timeout_is_unavailable(
    session: aiohttp.ClientSession,
) -> None:
    release = asyncio.Event()
    handlers: list[asyncio.Task[object]] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        await reader.read(65536)
        await release.wait()  # never answers while the client waits
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        slow = AriClient(session, f"http://127.0.0.1:{port}", "u", "p", "app", timeout=0.2)
        with pytest.raises(AriUnavailable) as info:
            await slow.answer("c1")
        assert "Timeout" in info.value.reason
    finally:
        release.set()
        await asyncio.gather(*handlers, return_exceptions=True)
        server.close()
        await server.wait_closed()


async def test_given_a_fenced_engine_then_changes_are_refused_before_they_leave_and_reads_pass(
    fake_ari: FakeAri, session: aiohttp.ClientSession, metrics: Metrics
) -> None:
    """With a hot standby the client asks ``acting`` at each request: once the lease is gone,
    nothing that would change a call reaches Asterisk (the request is never sent)."""
    holding = [True]
    client = AriClient(
        session,
        fake_ari.base_url,
        fake_ari.username,
        fake_ari.password,
        "sambung",
        metrics,
        acting=lambda: holding[0],
    )
    fake_ari.channels["c1"] = channel_json("c1", state="Up")
    await client.answer("c1")
    sent = len(fake_ari.requests)
    holding[0] = False
    for change in (
        client.answer("c1"),
        client.hangup("c1"),
        client.play("c1", "c1-p", ["sound:hello-world"]),
    ):
        with pytest.raises(AriFenced) as info:
            await change
        assert info.value.error_id == "ari.fenced"
        assert isinstance(info.value, AriUnavailable)  # handled where Asterisk is away
    assert len(fake_ari.requests) == sent
    assert errors(metrics, "fenced") == 3
    # Reads still pass: a fenced engine may look, never touch.
    info_ = await client.asterisk_info()
    assert info_.entity_id == fake_ari.entity_id
    assert len(fake_ari.requests) == sent + 1

"""The AMI adapter against the fake AMI server: login, watchdog, no re-send, retries, handlers.

Intervals are tiny (tens of milliseconds) so every reconnect story runs in well under a second;
every test is bounded by pytest-timeout as well as by its own waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, MutableMapping, Sequence
from typing import Any

import pytest
from structlog.testing import capture_logs

from sambung.asterisk.ami import (
    AmiActionFailed,
    AmiActionOutcomeUnknown,
    AmiAdapter,
    AmiMessage,
    AmiUnavailable,
    FullyBooted,
    PjsipContact,
)
from sambung.engine.metrics import Metrics, build_metrics
from tests.fakes.fake_ami import FakeAmi
from tests.fakes.fake_ami import fake_ami as fake_ami  # the fixture
from tests.fakes.fake_ami import loop_errors as loop_errors  # the fixture

pytestmark = [pytest.mark.timeout(15), pytest.mark.usefixtures("loop_errors")]


class Booted:
    """Records on_fully_booted calls and lets a test wait for the n-th one."""

    def __init__(self) -> None:
        self.calls: list[FullyBooted] = []
        self._changed = asyncio.Event()

    async def __call__(self, booted: FullyBooted) -> None:
        self.calls.append(booted)
        self._changed.set()

    async def wait(self, count: int, timeout: float = 3.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.calls) < count:
                self._changed.clear()
                await self._changed.wait()


def make(fake: FakeAmi, metrics: Metrics, **kw: Any) -> AmiAdapter:
    params: dict[str, Any] = {
        "ping_interval": 0.05,
        "ping_timeout": 0.1,
        "reconnect_initial": 0.01,
        "reconnect_max": 0.05,
        "connect_timeout": 0.5,
        "action_timeout": 2.0,
    }
    params.update(kw)
    secret = params.pop("secret", fake.secret)
    return AmiAdapter(fake.host, fake.port, fake.username, secret, metrics, **params)


@contextlib.asynccontextmanager
async def running(adapter: AmiAdapter, wait: bool = True) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.get_running_loop().create_task(adapter.run(), name="ami-under-test")
    try:
        if wait:
            await adapter.wait_connected(3.0)
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def gauge(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("sambung_ami_connected")


def reconnects(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("sambung_ami_reconnects_total")


def events(logs: Sequence[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


async def until(predicate: Any, timeout: float = 3.0) -> None:
    """Poll a condition spread over several objects (adapter, metrics, logs) that share no
    event to wait on; bounded by ``timeout``."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


ORIGINATE = {
    "Action": "Originate",
    "Channel": "PJSIP/0811@customers",
    "Context": "dialer",
    "Exten": "s",
    "Priority": "1",
}


# -- connect, login, FullyBooted ------------------------------------------------------------


async def test_given_asterisk_up_when_run_then_logs_in_and_hands_fully_booted_over(
    fake_ami: FakeAmi,
) -> None:
    metrics = build_metrics()
    booted = Booted()
    adapter = make(fake_ami, metrics, on_fully_booted=booted)
    with capture_logs() as logs:
        async with running(adapter):
            await booted.wait(1)
            assert booted.calls == [FullyBooted(4242, 4242, "Fully Booted")]
            assert adapter.connected
            assert gauge(metrics) == 1
            assert reconnects(metrics) == 0
            login = fake_ami.actions("Login")[0].fields
            assert login["username"] == fake_ami.username
            assert login["events"] == "on"
    assert gauge(metrics) == 0
    assert len(events(logs, "ami.connected")) == 1
    await fake_ami.wait_action("Logoff")  # a polite goodbye on cancel


async def test_typed_helpers(fake_ami: FakeAmi) -> None:
    fake_ami.channels = [
        {
            "Channel": "PJSIP/customers-00000001",
            "Uniqueid": "1763800000.1",
            "Linkedid": "1763800000.1",
            "ChannelStateDesc": "Up",
            "CallerIDNum": "0811",
            "Context": "from-trunk",
            "Exten": "1500",
            "Application": "Stasis",
            "ApplicationData": "sambung,inbound,1500",
            "Duration": "00:00:42",
            "BridgeId": "",
        }
    ]
    adapter = make(fake_ami, build_metrics())
    async with running(adapter):
        contacts = await adapter.pjsip_contacts()
        assert contacts == [
            PjsipContact("agent-1001", "agent-1001", "sip:1001@127.0.0.1:5071", "Reachable", 1834),
            PjsipContact("customers", "customers", "sip:127.0.0.1:5080", "NonQualified", None),
        ]
        # The static one needed the endpoint detail of "customers" only, not of every endpoint.
        assert [a.fields["endpoint"] for a in fake_ami.actions("PJSIPShowEndpoint")] == [
            "customers"
        ]
        assert await adapter.pjsip_contacts(include_static=False) == contacts[:1]
        channels = await adapter.core_show_channels()
        assert [(c.channel, c.duration_seconds) for c in channels] == [
            ("PJSIP/customers-00000001", 42)
        ]
        await adapter.ping()

        # Only static contacts: PJSIPShowContacts answers "Error: No Contacts found".
        fake_ami.contacts = [c for c in fake_ami.contacts if c.static]
        assert [c.aor for c in await adapter.pjsip_contacts()] == ["customers"]
        fake_ami.contacts = []
        fake_ami.other_endpoints = []  # and "No endpoints found"
        assert await adapter.pjsip_contacts() == []
        fake_ami.channels = []
        assert await adapter.core_show_channels() == []

        with pytest.raises(AmiActionFailed) as failed:
            await adapter.send_action({"Action": "NoSuchThing"})
        assert failed.value.error_id == "ami.action_failed"

        with pytest.raises(ValueError, match="sent by the adapter"):
            await adapter.send_action({"Action": "Logoff"})


async def test_sync_originate_resolves_on_its_single_reply(fake_ami: FakeAmi) -> None:
    # panoramisk alone would wait forever here (its multi-part guess, #88/#89).
    adapter = make(fake_ami, build_metrics())
    async with running(adapter):
        reply = await asyncio.wait_for(adapter.send_action(ORIGINATE), 2.0)
        assert [m.message for m in reply] == ["Originate successfully queued"]
        reply = await asyncio.wait_for(adapter.send_action({**ORIGINATE, "Async": "true"}), 2.0)
        assert [m.event for m in reply] == ["", "OriginateResponse"]


async def test_given_not_connected_when_sending_then_unavailable_at_once(
    fake_ami: FakeAmi,
) -> None:
    adapter = make(fake_ami, build_metrics())
    with pytest.raises(AmiUnavailable) as err:
        await adapter.send_action(ORIGINATE)
    assert err.value.error_id == "ami.unavailable"
    assert fake_ami.actions("Originate") == []

    fake_ami.half_open = True  # the login of every connection goes unanswered
    async with running(adapter, wait=False):
        await fake_ami.wait_action("Login")
        with pytest.raises(AmiUnavailable):
            await asyncio.wait_for(adapter.send_action(ORIGINATE), 0.5)
        assert fake_ami.actions("Originate") == []


# -- the ping watchdog ----------------------------------------------------------------------


async def test_given_half_open_connection_when_pings_go_unanswered_then_reconnects_logging_once(
    fake_ami: FakeAmi,
) -> None:
    metrics = build_metrics()
    booted = Booted()
    adapter = make(fake_ami, metrics, on_fully_booted=booted)
    async with running(adapter):
        await booted.wait(1)
        with capture_logs() as logs:
            fake_ami.go_half_open()  # no FIN, no RST: only the missing Pong tells
            await fake_ami.wait_logins(2)
            await booted.wait(2)
            await until(lambda: adapter.connected)
            # Several more ping rounds on the new connection: no more log lines.
            await fake_ami.wait_action("Ping", count=len(fake_ami.actions("Ping")) + 3)
        assert [e["reason"] for e in events(logs, "ami.disconnected")] == [
            "ping_timeout: no reply to Ping within 0.1s"
        ]
        assert len(events(logs, "ami.connected")) == 1
        assert events(logs, "ami.connected")[0]["reconnect"] is True
        assert [e for e in logs if e["log_level"] in ("warning", "error")] == events(
            logs, "ami.disconnected"
        )
        assert gauge(metrics) == 1
        assert reconnects(metrics) == 1
        assert fake_ami.logins_ok == 2


async def test_given_a_healthy_connection_then_the_watchdog_does_not_reconnect(
    fake_ami: FakeAmi,
) -> None:
    adapter = make(fake_ami, build_metrics())
    async with running(adapter):
        await fake_ami.wait_action("Ping", count=5)
        assert fake_ami.logins_ok == 1
        assert adapter.connected


async def test_given_pings_stop_being_answered_then_gauge_drops_while_down(
    fake_ami: FakeAmi,
) -> None:
    metrics = build_metrics()
    adapter = make(fake_ami, metrics)
    async with running(adapter):
        fake_ami.half_open = True  # every connection, so it stays down
        await until(lambda: gauge(metrics) == 0)
        assert not adapter.connected
        with pytest.raises(AmiUnavailable):
            await adapter.ping()
        fake_ami.half_open = False
        await adapter.wait_connected(3.0)
        assert gauge(metrics) == 1


# -- no re-send of call-changing actions ----------------------------------------------------


@pytest.mark.parametrize("how", ["fin", "half_open", "asterisk_restart"])
@pytest.mark.parametrize(
    "action",
    [
        ORIGINATE,
        {"Action": "Hangup", "Channel": "PJSIP/customers-00000001", "Cause": "16"},
        {
            "Action": "Redirect",
            "Channel": "PJSIP/customers-00000001",
            "Context": "q",
            "Exten": "s",
            "Priority": "1",
        },
    ],
    ids=["originate", "hangup", "redirect"],
)
async def test_given_non_idempotent_action_in_flight_when_connection_drops_then_outcome_unknown_and_never_resent(  # noqa: E501
    fake_ami: FakeAmi, action: dict[str, str], how: str
) -> None:
    name = action["Action"]
    fake_ami.withhold.add(name.lower())
    booted = Booted()
    adapter = make(fake_ami, build_metrics(), on_fully_booted=booted)
    async with running(adapter):
        await booted.wait(1)
        sent = asyncio.get_running_loop().create_task(adapter.send_action(action))
        await fake_ami.wait_action(name)
        if how == "fin":
            await fake_ami.drop_connections()
        elif how == "half_open":
            fake_ami.go_half_open()
        else:
            await fake_ami.shutdown(restart=True)
        with pytest.raises(AmiActionOutcomeUnknown) as err:
            await sent
        assert err.value.error_id == "ami.action_outcome_unknown"
        assert err.value.action == name

        # Back on a new connection, FullyBooted seen (panoramisk's re-send trigger), and a few
        # more round trips: the fake still has exactly the one copy.
        await fake_ami.wait_logins(2)
        await booted.wait(2)
        for _ in range(3):
            await adapter.ping()
        assert [a.connection for a in fake_ami.actions(name)] == [1]


async def test_given_non_idempotent_action_unanswered_when_timeout_then_outcome_unknown(
    fake_ami: FakeAmi,
) -> None:
    fake_ami.withhold_originate = True
    adapter = make(fake_ami, build_metrics())
    async with running(adapter):
        with pytest.raises(AmiActionOutcomeUnknown, match=r"no reply within 0\.2s"):
            await adapter.send_action(ORIGINATE, timeout=0.2)
        await adapter.ping()
        assert len(fake_ami.actions("Originate")) == 1
        assert fake_ami.logins_ok == 1  # a slow action is not a dead connection


# -- idempotent reads are retried once -------------------------------------------------------


async def test_given_read_in_flight_when_connection_drops_then_retried_once_on_next_connection(
    fake_ami: FakeAmi,
) -> None:
    fake_ami.withhold.add("pjsipshowcontacts")
    adapter = make(fake_ami, build_metrics())
    async with running(adapter):
        with capture_logs() as logs:
            pending = asyncio.get_running_loop().create_task(adapter.pjsip_contacts())
            await fake_ami.wait_action("PJSIPShowContacts")
            fake_ami.withhold.clear()
            await fake_ami.drop_connections()
            contacts = await pending
        assert [c.aor for c in contacts] == ["agent-1001", "customers"]
        assert [a.connection for a in fake_ami.actions("PJSIPShowContacts")] == [1, 2]
        assert len(events(logs, "ami.action_retry")) == 1


async def test_given_read_lost_twice_then_unavailable_after_exactly_two_sends(
    fake_ami: FakeAmi,
) -> None:
    fake_ami.withhold.add("coreshowchannels")
    adapter = make(fake_ami, build_metrics())
    async with running(adapter):
        pending = asyncio.get_running_loop().create_task(adapter.core_show_channels())
        await fake_ami.wait_action("CoreShowChannels")
        await fake_ami.drop_connections()
        await fake_ami.wait_action("CoreShowChannels", count=2)
        await fake_ami.drop_connections()
        with pytest.raises(AmiUnavailable):
            await pending
        await fake_ami.wait_logins(3)
        await adapter.wait_connected(3.0)
        await adapter.ping()
        assert [a.connection for a in fake_ami.actions("CoreShowChannels")] == [1, 2]


async def test_given_read_lost_and_asterisk_stays_down_then_unavailable_within_timeout(
    fake_ami: FakeAmi,
) -> None:
    fake_ami.withhold.add("pjsipshowcontacts")
    adapter = make(fake_ami, build_metrics(), action_timeout=0.3)
    async with running(adapter):
        pending = asyncio.get_running_loop().create_task(adapter.pjsip_contacts())
        await fake_ami.wait_action("PJSIPShowContacts")
        fake_ami.half_open = True  # new connections never get past Login
        await fake_ami.drop_connections()
        with pytest.raises(AmiUnavailable, match="not back within the timeout"):
            await asyncio.wait_for(pending, 1.0)
        assert len(fake_ami.actions("PJSIPShowContacts")) == 1


# -- credentials ------------------------------------------------------------------------------


async def test_given_wrong_secret_then_one_error_line_then_backed_off_retries(
    fake_ami: FakeAmi,
) -> None:
    metrics = build_metrics()
    adapter = make(fake_ami, metrics, secret="wrong-secret-xyz")
    with capture_logs() as logs:
        async with running(adapter, wait=False) as task:
            await fake_ami.wait_until(lambda: fake_ami.logins_failed >= 4)
            assert not task.done(), "a login failure must not end run()"
            assert gauge(metrics) == 0
            fake_ami.secret = "wrong-secret-xyz"  # the operator fixes manager.conf and reloads
            await adapter.wait_connected(3.0)
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["ami.login_rejected"]
    assert errors[0]["username"] == fake_ami.username
    assert errors[0]["host"] == fake_ami.host
    assert errors[0]["asterisk_said"] == "Authentication failed"
    assert "wrong-secret-xyz" not in repr(logs)
    assert len(events(logs, "ami.connected")) == 1


async def test_given_asterisk_not_listening_then_one_warning_and_retries_until_it_is(
    fake_ami: FakeAmi,
) -> None:
    port = fake_ami.port
    await fake_ami.close()
    adapter = make(fake_ami, build_metrics(), reconnect_initial=0.01, reconnect_max=0.02)
    with capture_logs() as logs:
        async with running(adapter, wait=False) as task:
            await asyncio.sleep(0.3)  # a dozen refused attempts at this backoff
            assert not task.done()
            await fake_ami.start(port)  # Asterisk comes up
            await adapter.wait_connected(3.0)
    # (Retries log at debug level, which the engine's configured filter may drop: not counted.)
    assert [e["event"] for e in logs if e["log_level"] in ("warning", "error")] == [
        "ami.unreachable"
    ]
    assert len(events(logs, "ami.connected")) == 1


# -- events and handlers ------------------------------------------------------------------------


async def test_given_a_handler_that_raises_then_it_is_logged_and_later_events_still_arrive(
    fake_ami: FakeAmi,
) -> None:
    seen: list[str] = []

    async def broken(msg: AmiMessage) -> None:
        raise RuntimeError(f"handler bug on {msg.get('UserEvent')}")

    async def good(msg: AmiMessage) -> None:
        seen.append(msg.get("UserEvent"))

    async def broken_booted(_: FullyBooted) -> None:
        raise ValueError("resync failed")

    adapter = make(fake_ami, build_metrics(), on_fully_booted=broken_booted)
    adapter.register_event("UserEvent", broken)
    adapter.register_event("user*", good)  # fnmatch, case-insensitive
    with capture_logs() as logs:
        async with running(adapter):
            await fake_ami.emit({"Event": "UserEvent", "UserEvent": "first"})
            await fake_ami.emit({"Event": "UserEvent", "UserEvent": "second"})
            await until(lambda: seen == ["first", "second"])
    failed = events(logs, "ami.handler_failed")
    assert [(e["handler"], e["ami_event"]) for e in failed] == [
        ("on_fully_booted", "FullyBooted"),
        ("UserEvent", "UserEvent"),
        ("UserEvent", "UserEvent"),
    ]
    assert all(isinstance(e["exc_info"], Exception) for e in failed)
    assert "handler bug on first" in failed[1]["error"]


async def test_unregistered_handler_gets_nothing_more(fake_ami: FakeAmi) -> None:
    seen: list[str] = []

    async def handler(msg: AmiMessage) -> None:
        seen.append(msg.get("UserEvent"))

    adapter = make(fake_ami, build_metrics())
    unregister = adapter.register_event("UserEvent", handler)
    async with running(adapter):
        await fake_ami.emit({"Event": "UserEvent", "UserEvent": "a"})
        await until(lambda: seen == ["a"])
        unregister()
        await fake_ami.emit({"Event": "UserEvent", "UserEvent": "b"})
        await adapter.ping()  # a round trip later, "b" has been read and dispatched
        await asyncio.sleep(0.02)
        assert seen == ["a"]


async def test_fully_booted_handler_may_use_the_adapter(fake_ami: FakeAmi) -> None:
    # The engine's on_fully_booted reconciles; it must find the new connection usable.
    got: list[list[PjsipContact]] = []
    adapter: AmiAdapter

    async def on_booted(_: FullyBooted) -> None:
        got.append(await adapter.pjsip_contacts())

    adapter = make(fake_ami, build_metrics(), on_fully_booted=on_booted)
    async with running(adapter):
        await until(lambda: len(got) == 1)
        await fake_ami.drop_connections()
        await until(lambda: len(got) == 2)
    assert all(len(c) == 2 for c in got)


async def test_given_asterisk_shuts_down_then_on_shutdown_and_reconnect(fake_ami: FakeAmi) -> None:
    reasons: list[str] = []
    booted = Booted()

    async def on_shutdown(reason: str) -> None:
        reasons.append(reason)

    metrics = build_metrics()
    adapter = make(fake_ami, metrics, on_fully_booted=booted, on_shutdown=on_shutdown)
    with capture_logs() as logs:
        async with running(adapter):
            await booted.wait(1)
            await fake_ami.shutdown(restart=True)
            await booted.wait(2)
    assert reasons == ["Cleanly"]
    assert [e["reason"] for e in events(logs, "ami.disconnected")] in (
        ["asterisk_shutdown"],
        ["closed_by_asterisk"],  # if the FIN is read in the same chunk, before the event
    )
    assert reconnects(metrics) == 1


async def test_given_login_pending_when_cancelled_then_socket_is_closed(fake_ami: FakeAmi) -> None:
    fake_ami.half_open = True
    adapter = make(fake_ami, build_metrics(), connect_timeout=5.0)
    async with running(adapter, wait=False):
        await fake_ami.wait_action("Login")
        assert fake_ami.open_connections == 1
    await fake_ami.wait_until(lambda: fake_ami.open_connections == 0)


async def test_given_connected_when_cancelled_then_logoff_socket_closed_and_gauge_zero(
    fake_ami: FakeAmi,
) -> None:
    metrics = build_metrics()
    adapter = make(fake_ami, metrics)
    async with running(adapter):
        assert gauge(metrics) == 1
    await fake_ami.wait_action("Logoff")
    await fake_ami.wait_until(lambda: fake_ami.open_connections == 0)
    assert gauge(metrics) == 0
    assert not adapter.connected
    with pytest.raises(AmiUnavailable):
        await adapter.ping()


async def test_run_twice_at_once_is_refused(fake_ami: FakeAmi) -> None:
    adapter = make(fake_ami, build_metrics())
    async with running(adapter):
        with pytest.raises(RuntimeError, match="already running"):
            await adapter.run()

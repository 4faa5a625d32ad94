"""The AMI adapter against the real Asterisk 22 sandbox (``ops/sandbox up``).

Read-only on purpose: the sandbox is shared with other tests running at the same time, so these
tests never restart Asterisk, never originate calls and never change its configuration. They
check what the fake cannot prove: that Asterisk 22 sends FullyBooted right after Login, answers
PJSIPShowContacts and CoreShowChannels in the shape the adapter parses, answers our Ping, and
rejects a wrong secret the way the adapter expects (error reply, then it closes).

Set SAMBUNG_SKIP_INTEGRATION=1 to skip; otherwise a missing sandbox is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from sambung.asterisk.ami import AmiActionOutcomeUnknown, AmiAdapter, AmiMessage, FullyBooted
from sambung.engine.metrics import Metrics, build_metrics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

AMI_HOST = os.environ.get("SAMBUNG_AMI_HOST", "127.0.0.1")
AMI_PORT = int(os.environ.get("SAMBUNG_AMI_PORT", "5038"))
AMI_USER = os.environ.get("SAMBUNG_AMI_USER", "sambung")
AMI_SECRET = os.environ.get("SAMBUNG_AMI_SECRET", "sambung-dev-ami-secret")


def ami_listening(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((AMI_HOST, AMI_PORT), timeout=1.0) as sock:
                banner = sock.recv(64)
                if banner.startswith(b"Asterisk Call Manager/"):
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


@pytest.fixture(autouse=True)
def real_ami() -> None:
    if os.environ.get("SAMBUNG_SKIP_INTEGRATION") == "1":
        pytest.skip("SAMBUNG_SKIP_INTEGRATION=1: integration tests skipped on request")
    if not ami_listening(10.0):
        pytest.fail(
            f"no Asterisk manager on {AMI_HOST}:{AMI_PORT}: start the sandbox (ops/sandbox up)"
        )


class SilencingProxy:
    """A loopback TCP proxy to the real AMI that can go silent toward the client.

    ``silence()`` keeps the connections open now, still carries what the client writes to
    Asterisk, and throws away everything Asterisk answers: Asterisk acts on our action, but
    the reply never arrives and no FIN or RST tells us. That is the worst half-open case for
    a non-idempotent action. New connections work normally.
    """

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._silenced: set[asyncio.StreamWriter] = set()
        self._live: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepted = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._live):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def silence(self) -> None:
        self._silenced.update(self._live)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_r, up_w = await asyncio.open_connection(AMI_HOST, AMI_PORT)
        self._live.update((writer, up_w))
        loop = asyncio.get_running_loop()
        for coro in (self._pipe(reader, up_w, None), self._pipe(up_r, writer, writer)):
            task = loop.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        client: asyncio.StreamWriter | None,
    ) -> None:
        try:
            while data := await src.read(65536):
                if client is not None and client in self._silenced:
                    continue
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._live.discard(dst)
            with contextlib.suppress(Exception):
                dst.transport.abort()


class Booted:
    def __init__(self) -> None:
        self.calls: list[FullyBooted] = []
        self.arrived = asyncio.Event()

    async def __call__(self, booted: FullyBooted) -> None:
        self.calls.append(booted)
        self.arrived.set()


@contextlib.asynccontextmanager
async def running(adapter: AmiAdapter) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.get_running_loop().create_task(adapter.run(), name="ami-real")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def sample(metrics: Metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name)


async def test_login_fully_booted_contacts_channels_and_ping() -> None:
    metrics = build_metrics()
    booted = Booted()
    adapter = AmiAdapter(
        AMI_HOST,
        AMI_PORT,
        AMI_USER,
        AMI_SECRET,
        metrics,
        on_fully_booted=booted,
        ping_interval=0.5,
        ping_timeout=2.0,
    )
    with capture_logs() as logs:
        async with running(adapter):
            await adapter.wait_connected(10.0)
            assert sample(metrics, "sambung_ami_connected") == 1

            # Asterisk 22 sends FullyBooted right after Login when already booted.
            await asyncio.wait_for(booted.arrived.wait(), 5.0)
            fb = booted.calls[0]
            assert fb.status == "Fully Booted"
            assert fb.uptime_seconds >= 0
            assert fb.last_reload_seconds >= 0

            contacts = await adapter.pjsip_contacts()
            assert isinstance(contacts, list)
            for c in contacts:
                assert c.uri.startswith("sip"), c
                assert c.aor, c
                assert c.status in {"Reachable", "Unreachable", "NonQualified", "Unknown"}, c
            # The customers trunk's AOR has a static contact=: Asterisk 22 leaves it out of
            # PJSIPShowContacts, the adapter finds it through PJSIPShowEndpoint.
            customers = [c for c in contacts if c.aor == "customers"]
            assert customers, contacts
            assert customers[0].endpoint == "customers"
            registered_only = await adapter.pjsip_contacts(include_static=False)
            assert all(c.aor != "customers" for c in registered_only), registered_only

            channels = await adapter.core_show_channels()
            assert isinstance(channels, list)
            assert all(ch.channel and ch.uniqueid for ch in channels)

            reply = await adapter.send_action({"Action": "Ping"})
            assert reply[0].response == "Success"
            assert reply[0].get("Ping") == "Pong"

            # Let the watchdog run a few rounds against the real manager: no false alarm.
            started = asyncio.get_running_loop().time()
            await asyncio.sleep(2.0)
            elapsed = asyncio.get_running_loop().time() - started + 10.0
            if any(e["event"] == "ami.disconnected" for e in logs):
                # Asterisk went away meanwhile; a restart ends with a new FullyBooted.
                async with asyncio.timeout(30.0):
                    while len(booted.calls) < 2:
                        booted.arrived.clear()
                        await booted.arrived.wait()
            await adapter.wait_connected(15.0)
    version = next(e for e in logs if e["event"] == "ami.connected")["ami_version"]
    assert version, "the banner's protocol version was read"
    # The sandbox is shared: another test may restart Asterisk meanwhile (tests/integration/
    # test_faults.py does). That must show as a real restart (a new FullyBooted with a small
    # uptime), never as a watchdog false alarm.
    alarms = [e for e in logs if e["log_level"] in ("warning", "error")]
    restarted = any(b.uptime_seconds <= elapsed for b in booted.calls[1:])
    if not restarted:
        assert alarms == []
        assert len([e for e in logs if e["event"] == "ami.connected"]) == 1
        assert sample(metrics, "sambung_ami_reconnects_total") == 0
    else:
        assert all(not str(e.get("reason", "")).startswith("ping_timeout") for e in alarms)


async def test_wrong_secret_is_one_error_line_and_retries_without_crashing() -> None:
    metrics = build_metrics()
    bad = "definitely-not-the-secret"
    proxy = SilencingProxy()  # only to count the connection attempts
    await proxy.start()
    adapter = AmiAdapter(
        "127.0.0.1",
        proxy.port,
        AMI_USER,
        bad,
        metrics,
        reconnect_initial=0.2,
        reconnect_max=0.5,
        connect_timeout=5.0,  # Asterisk waits 1 s before it answers a failed Login
    )
    try:
        with capture_logs() as logs:
            async with running(adapter) as task:
                async with asyncio.timeout(20.0):
                    while proxy.accepted < 3:
                        assert not task.done()
                        await asyncio.sleep(0.1)
                assert not adapter.connected
                assert sample(metrics, "sambung_ami_connected") == 0
    finally:
        await proxy.close()
    errors: list[dict[str, Any]] = [dict(e) for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["ami.login_rejected"]
    assert errors[0]["username"] == AMI_USER
    assert errors[0]["host"] == "127.0.0.1"
    assert errors[0]["asterisk_said"] == "Authentication failed"
    assert bad not in repr(logs)


async def test_reply_lost_after_asterisk_acted_is_outcome_unknown_and_never_repeated() -> None:
    """On the real Asterisk: a non-idempotent action (UserEvent: harmless to everyone else
    on the shared sandbox, but it does something observable) is executed, its reply is lost on
    a half-open connection, the watchdog reconnects and FullyBooted arrives again: the caller
    gets AmiActionOutcomeUnknown, and an independent AMI session sees the action's effect
    exactly once."""
    marker = f"sambung-test-{uuid.uuid4().hex}"
    seen: list[str] = []

    async def on_user_event(msg: AmiMessage) -> None:
        if msg.get("UserEvent") == marker:
            seen.append(marker)

    observer = AmiAdapter(AMI_HOST, AMI_PORT, AMI_USER, AMI_SECRET, build_metrics())
    observer.register_event("UserEvent", on_user_event)
    proxy = SilencingProxy()
    await proxy.start()
    booted = Booted()
    metrics = build_metrics()
    subject = AmiAdapter(
        "127.0.0.1",
        proxy.port,
        AMI_USER,
        AMI_SECRET,
        metrics,
        on_fully_booted=booted,
        ping_interval=0.2,
        ping_timeout=0.5,
        reconnect_initial=0.05,
        reconnect_max=0.2,
        action_timeout=10.0,
    )
    try:
        async with running(observer), running(subject):
            await observer.wait_connected(10.0)
            await subject.wait_connected(10.0)
            await asyncio.wait_for(booted.arrived.wait(), 5.0)
            with capture_logs() as logs:
                proxy.silence()
                with pytest.raises(AmiActionOutcomeUnknown) as err:
                    await subject.send_action({"Action": "UserEvent", "UserEvent": marker})
                assert err.value.reason.startswith("ping_timeout"), err.value.reason
                async with asyncio.timeout(10.0):
                    while len(booted.calls) < 2:
                        booted.arrived.clear()
                        await booted.arrived.wait()
                await subject.wait_connected(5.0)
                for _ in range(3):
                    await subject.ping()
                await observer.ping()
                await asyncio.sleep(0.5)
            assert seen == [marker], "Asterisk ran the UserEvent exactly once"
            disconnected = [e for e in logs if e["event"] == "ami.disconnected"]
            assert len(disconnected) == 1, disconnected
            assert disconnected[0]["reason"].startswith("ping_timeout")
            assert len([e for e in logs if e["event"] == "ami.connected"]) == 1
            assert sample(metrics, "sambung_ami_reconnects_total") == 1
    finally:
        await proxy.close()


async def test_read_whose_reply_is_lost_is_retried_once_on_the_next_connection() -> None:
    proxy = SilencingProxy()
    await proxy.start()
    subject = AmiAdapter(
        "127.0.0.1",
        proxy.port,
        AMI_USER,
        AMI_SECRET,
        build_metrics(),
        ping_interval=0.2,
        ping_timeout=0.5,
        reconnect_initial=0.05,
        reconnect_max=0.2,
        action_timeout=10.0,
    )
    try:
        async with running(subject):
            await subject.wait_connected(10.0)
            with capture_logs() as logs:
                proxy.silence()
                channels = await subject.core_show_channels()
            assert isinstance(channels, list)
            assert len([e for e in logs if e["event"] == "ami.action_retry"]) == 1
    finally:
        await proxy.close()

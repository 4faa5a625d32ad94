"""panoramisk 1.4's re-send path cannot fire for call-changing actions.

panoramisk parks every unanswered action that is not "forgetable" in
``Manager.awaiting_actions`` when the connection closes (``AMIProtocol.close``) and writes it
again on the next ``FullyBooted`` (``Manager.send_awaiting_actions``). The first test shows that
this really happens with panoramisk's defaults, so the others, which drive the very same
panoramisk code with our configuration, would catch a regression. No sockets: the protocol
writes into a recording transport and "Asterisk" is bytes fed to ``data_received``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from sambung.asterisk.ami._panoramisk import AmiSession
from sambung.asterisk.ami.actions import NON_IDEMPOTENT_ACTIONS, forgetable_actions

FULLY_BOOTED = (
    b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 1\r\nLastReload: 1\r\n"
    b"Status: Fully Booted\r\n\r\n"
)


class RecordingTransport:
    def __init__(self) -> None:
        self.written: list[str] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data.decode())

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def actions(self, name: str) -> list[str]:
        return [w for w in self.written if f"Action: {name}\r\n" in w]


def attach(manager: Any) -> tuple[AMIProtocol, RecordingTransport]:
    """What Manager.connect() does once the TCP connection exists, and a successful Login."""
    transport = RecordingTransport()
    protocol = AMIProtocol()
    protocol.connection_made(transport)
    done: asyncio.Future[tuple[Any, Any]] = asyncio.get_running_loop().create_future()
    done.set_result((transport, protocol))
    manager.connection_made(done)
    login = next(w for w in transport.written if "Action: Login" in w)
    action_id = next(
        line.split(": ", 1)[1] for line in login.split("\r\n") if line.startswith("ActionID")
    )
    reply = f"Response: Success\r\nActionID: {action_id}\r\nMessage: Authentication accepted"
    protocol.data_received(f"{reply}\r\n\r\n".encode())
    return protocol, transport


def originate() -> dict[str, str]:
    return {
        "Action": "Originate",
        "Channel": "PJSIP/0811@customers",
        "Context": "dialer",
        "Exten": "s",
        "Priority": "1",
    }


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_control_with_panoramisk_defaults_an_unanswered_originate_is_sent_again() -> None:
    manager = Manager(loop=asyncio.get_running_loop(), username="u", secret="s")
    protocol, _ = attach(manager)
    manager.send_action(originate())
    protocol.close()  # the socket dies before Asterisk answered
    assert len(manager.awaiting_actions) == 1

    protocol2, second = attach(manager)
    protocol2.data_received(FULLY_BOOTED)
    await settle()  # panoramisk runs its coroutine callback through ensure_future
    assert len(second.actions("Originate")) == 1, "the hazard this module guards against"
    manager.close()


@pytest.mark.parametrize("name", sorted(NON_IDEMPOTENT_ACTIONS))
async def test_with_our_forgetable_actions_panoramisk_parks_no_call_changing_action(
    name: str,
) -> None:
    # The stock Manager, only configured like ours: the first of the two locks on its own.
    manager = Manager(
        loop=asyncio.get_running_loop(),
        username="u",
        secret="s",
        forgetable_actions=forgetable_actions(),
    )
    protocol, _ = attach(manager)
    manager.send_action({"Action": name, "Channel": "PJSIP/x-1"})
    protocol.close()
    assert list(manager.awaiting_actions) == []

    protocol2, second = attach(manager)
    protocol2.data_received(FULLY_BOOTED)
    await settle()
    await Manager.send_awaiting_actions(manager)  # panoramisk's own re-send, called directly
    assert second.actions(name) == []
    manager.close()


async def test_our_session_manager_never_resends_even_an_action_it_has_parked() -> None:
    session = AmiSession("127.0.0.1", 1, "u", "s", on_event=lambda _m: None)
    manager = session.manager
    protocol, _ = attach(manager)
    manager.send_action({"Action": "NotClassifiedYet"})  # not forgetable: panoramisk parks it
    protocol.close()
    assert len(manager.awaiting_actions) == 1

    # Even if the same Manager were reused and saw FullyBooted, nothing is written again.
    protocol2, second = attach(manager)
    protocol2.data_received(FULLY_BOOTED)
    await settle()
    await manager.send_awaiting_actions()
    assert second.actions("NotClassifiedYet") == []
    assert list(manager.awaiting_actions) == []
    manager.close()


async def test_our_session_manager_does_not_reconnect_by_itself() -> None:
    lost: list[str] = []
    session = AmiSession("127.0.0.1", 1, "u", "s", on_event=lambda _m: None)
    manager = session.manager
    protocol, _ = attach(manager)
    loop = asyncio.get_running_loop()
    scheduled_before = len(loop._scheduled)  # type: ignore[attr-defined]
    protocol.connection_lost(ConnectionResetError())
    assert session.lost.done()
    lost.append(session.lost.result())
    assert lost == ["connection_lost: ConnectionResetError()"]
    # panoramisk 1.4 would have scheduled ``connect`` with call_later here.
    assert len(loop._scheduled) <= scheduled_before  # type: ignore[attr-defined]


async def test_events_are_held_until_the_adapter_starts_them_and_never_ensure_futured() -> None:
    seen: list[str] = []
    session = AmiSession("127.0.0.1", 1, "u", "s", on_event=lambda m: seen.append(m.event))
    protocol, _ = attach(session.manager)
    protocol.data_received(FULLY_BOOTED)
    assert seen == []
    session.start_events()
    assert seen == ["FullyBooted"]
    protocol.data_received(b"Event: ContactStatus\r\nURI: sip:x\r\n\r\n")
    assert seen == ["FullyBooted", "ContactStatus"]
    session.close("test")


async def test_secret_is_scrubbed_from_panoramisk_log_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = AmiSession("127.0.0.1", 1, "u", "hunter2", on_event=lambda _m: None)
    caplog.set_level("DEBUG", logger="asterisk.ami.panoramisk")
    # The two shapes panoramisk prints an Action in: str() in "Adding action ... to awaiting
    # list: %s", and repr() in "Fail to send %r".
    session.manager.log.info("awaiting list: %s", "Action: Login\r\nSecret: hunter2\r\n")
    session.manager.log.error("Fail to send %r", {"Action": "Login", "Secret": "hunter2"})
    assert "hunter2" not in caplog.text
    assert "Secret: ***" in caplog.text
    assert "'Secret': '***'" in caplog.text

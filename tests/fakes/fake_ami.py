"""A scripted fake of Asterisk's AMI (the TCP manager interface) for component tests.

It speaks the wire format of Asterisk 22's ``main/manager.c``: the ``Asterisk Call Manager/x``
banner line, ``Key: value`` lines ending in a blank line, ``ActionID`` echoed in every reply and
list event, EventList replies (``EventList: start`` ... ``<Name>Complete``), ``FullyBooted``
right after a successful Login, the error-then-close of a failed Login. It records every
action it reads, so tests can assert on what was (and was not) sent, and how many times.

Switches for the failure modes the adapter must survive:

- ``answer_pings = False``: reads Pings and never answers. ``go_half_open()``: the connections
  open now answer nothing any more, as when the Asterisk host vanished and TCP did not notice;
  new connections work. ``half_open = True``: no connection answers anything.
- ``withhold_originate = True`` (or any names in ``withhold``): the action is recorded but its
  reply never comes, so it is "in flight" when the test drops the connection.
- ``drop_connections()``: closes every client socket; ``shutdown()``: a ``Shutdown`` event first.

Typical use (the ``fake_ami`` fixture starts one on an ephemeral loopback port)::

    adapter = AmiAdapter(fake_ami.host, fake_ami.port, fake_ami.username, fake_ami.secret, m)
    ...
    await fake_ami.wait_action("Originate")
    await fake_ami.drop_connections()
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

EOL = "\r\n"
BANNER = "Asterisk Call Manager/9.0.0"


@dataclass(frozen=True)
class ReceivedAction:
    connection: int  # 1 for the first TCP connection the fake accepted, 2 for the next...
    fields: dict[str, str]

    @property
    def name(self) -> str:
        return self.fields.get("action", "")


@dataclass(frozen=True)
class FakeContact:
    """A PJSIP contact as the fake's Asterisk knows it.

    ``static`` contacts come from an AOR's ``contact=`` line (trunks). Like the real Asterisk
    22.10.1, the fake leaves them out of ``PJSIPShowContacts`` and shows them only through
    ``PJSIPShowEndpoints`` (as "aor/uri") and ``PJSIPShowEndpoint`` (``ContactStatusDetail``).
    """

    endpoint: str
    aor: str
    uri: str
    static: bool = False
    status: str = "NonQualified"
    rtt_usec: int | None = None

    @property
    def _hash(self) -> str:
        return hashlib.md5(self.uri.encode(), usedforsecurity=False).hexdigest()

    def contact_list_item(self) -> dict[str, str]:
        """The ``ContactList`` event body (res/res_pjsip/pjsip_options.c)."""
        sep = "@@" if self.static else ";@"
        return {
            "ObjectType": "contact",
            "ObjectName": f"{self.aor}{sep}{self._hash}",
            "ViaAddr": "" if self.static else "127.0.0.1",
            "ViaPort": "0" if self.static else "5071",
            "QualifyTimeout": "3.000000",
            "CallId": "" if self.static else "a84b4c76e66710",
            "RegServer": "",
            "PruneOnBoot": "no",
            "Path": "",
            "Endpoint": "" if self.static else self.endpoint,
            "AuthenticateQualify": "no",
            "Uri": self.uri,
            "QualifyFrequency": "0" if self.static else "60",
            "UserAgent": "" if self.static else "Yealink SIP-T31P",
            "ExpirationTime": "0" if self.static else "1763803600",
            "OutboundProxy": "",
            "Qualify2xxOnly": "no",
            "Status": self.status,
            "RoundtripUsec": "N/A" if self.rtt_usec is None else str(self.rtt_usec),
        }

    def status_detail(self) -> dict[str, str]:
        """The ``ContactStatusDetail`` event body of ``PJSIPShowEndpoint`` (as on 22.10.1)."""
        sep = "@@" if self.static else ";@"
        return {
            "AOR": self.aor,
            "URI": self.uri,
            "UserAgent": "" if self.static else "Yealink SIP-T31P",
            "RegExpire": "0",
            "Status": self.status,
            "RoundtripUsec": "N/A" if self.rtt_usec is None else str(self.rtt_usec),
            "EndpointName": self.endpoint,
            "ID": f"{self.aor}{sep}{self._hash}",
            "AuthenticateQualify": "0",
            "OutboundProxy": "",
            "Path": "",
            "QualifyFrequency": "0",
            "QualifyTimeout": "3.000",
            "Qualify2xxOnly": "0",
        }


def _render(headers: Mapping[str, str]) -> bytes:
    return ("".join(f"{k}: {v}{EOL}" for k, v in headers.items()) + EOL).encode()


def _parse(raw: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in raw.decode(errors="replace").split(EOL):
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


class FakeAmi:
    def __init__(self, username: str = "sambung", secret: str = "fake-ami-secret") -> None:
        self.username = username
        self.secret = secret
        self.host = "127.0.0.1"
        self.port = 0
        self.answer_pings = True
        self.half_open = False
        self.send_fully_booted = True
        self.uptime = 4242
        self.withhold: set[str] = set()  # lower-cased action names never answered
        self.contacts: list[FakeContact] = [
            FakeContact("customers", "customers", "sip:127.0.0.1:5080", static=True),
            FakeContact(
                "agent-1001", "agent-1001", "sip:1001@127.0.0.1:5071", False, "Reachable", 1834
            ),
        ]
        self.other_endpoints: list[str] = ["agent-1002"]  # configured, no contact
        self.channels: list[dict[str, str]] = []
        self.received: list[ReceivedAction] = []
        self.logins_ok = 0
        self.logins_failed = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: dict[asyncio.StreamWriter, bool] = {}  # -> logged in
        self._silent: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Condition()

    # -- switches and inspection -------------------------------------------------------------

    @property
    def withhold_originate(self) -> bool:
        return "originate" in self.withhold

    @withhold_originate.setter
    def withhold_originate(self, value: bool) -> None:
        if value:
            self.withhold.add("originate")
        else:
            self.withhold.discard("originate")

    def go_half_open(self) -> None:
        """From now on, read and ignore everything on the connections open now, as if the path
        to Asterisk had died without a FIN or RST. New connections are answered normally."""
        self._silent.update(self._writers)

    def actions(self, name: str) -> list[ReceivedAction]:
        return [a for a in self.received if a.name.lower() == name.lower()]

    @property
    def open_connections(self) -> int:
        return len(self._writers)

    @property
    def logged_in_connections(self) -> int:
        return sum(1 for ok in self._writers.values() if ok)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 3.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_action(self, name: str, count: int = 1, timeout: float = 3.0) -> None:
        await self.wait_until(lambda: len(self.actions(name)) >= count, timeout)

    async def wait_logins(self, count: int, timeout: float = 3.0) -> None:
        await self.wait_until(lambda: self.logins_ok >= count, timeout)

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        """Listen on ``port`` (0: an ephemeral one; the same port again to "restart")."""
        self._server = await asyncio.start_server(self._serve, self.host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self.drop_connections()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def drop_connections(self) -> None:
        """Close every client connection (TCP FIN), as when Asterisk stops or restarts."""
        writers = list(self._writers)
        for w in writers:
            w.close()
        for w in writers:
            with contextlib.suppress(ConnectionError):
                await w.wait_closed()

    async def emit(self, headers: Mapping[str, str]) -> None:
        """Send an event to every logged-in connection."""
        for w, logged_in in list(self._writers.items()):
            if logged_in and not self.half_open and w not in self._silent:
                w.write(_render(headers))
                with contextlib.suppress(ConnectionError):
                    await w.drain()

    async def shutdown(self, restart: bool = True) -> None:
        """What ``core restart now`` looks like on AMI: a Shutdown event, then the socket closes."""
        await self.emit(
            {
                "Event": "Shutdown",
                "Privilege": "system,all",
                "Shutdown": "Cleanly",
                "Restart": "True" if restart else "False",
            }
        )
        await self.drop_connections()

    # -- the protocol --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        conn = self.connections
        self._writers[writer] = False
        writer.write(f"{BANNER}{EOL}".encode())
        try:
            while True:
                raw = await reader.readuntil(f"{EOL}{EOL}".encode())
                fields = _parse(raw)
                self.received.append(ReceivedAction(conn, fields))
                await self._notify()
                if self.half_open or writer in self._silent:
                    continue
                if not await self._answer(writer, fields):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.pop(writer, None)
            self._silent.discard(writer)
            writer.close()
            self._handlers.discard(task)
            await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _answer(self, w: asyncio.StreamWriter, f: dict[str, str]) -> bool:
        """Reply to one action; False when the connection must close after it."""
        name = f.get("action", "").lower()
        aid = {"ActionID": f["actionid"]} if "actionid" in f else {}
        if name == "login":
            if f.get("username") != self.username or f.get("secret") != self.secret:
                self.logins_failed += 1
                # Asterisk sleeps 1 s here, answers, then ends the session (manager.c).
                w.write(_render({"Response": "Error", **aid, "Message": "Authentication failed"}))
                await w.drain()
                await self._notify()
                return False
            self.logins_ok += 1
            self._writers[w] = True
            w.write(_render({"Response": "Success", **aid, "Message": "Authentication accepted"}))
            if self.send_fully_booted:
                w.write(
                    _render(
                        {
                            "Event": "FullyBooted",
                            "Privilege": "system,all",
                            "Uptime": str(self.uptime),
                            "LastReload": str(self.uptime),
                            "Status": "Fully Booted",
                        }
                    )
                )
            await self._notify()
            return True
        if not self._writers.get(w):
            w.write(_render({"Response": "Error", **aid, "Message": "Permission denied"}))
            return True
        if name in self.withhold:
            return True
        if name == "ping":
            if self.answer_pings:
                w.write(
                    _render(
                        {
                            "Response": "Success",
                            **aid,
                            "Ping": "Pong",
                            "Timestamp": "1763800000.123456",
                        }
                    )
                )
            return True
        if name == "logoff":
            w.write(_render({"Response": "Goodbye", **aid, "Message": "Thanks for all the fish."}))
            return False
        if name == "pjsipshowcontacts":
            registered = [c.contact_list_item() for c in self.contacts if not c.static]
            if not registered:
                w.write(_render({"Response": "Error", **aid, "Message": "No Contacts found\n"}))
                return True
            self._write_list(
                w,
                aid,
                "A listing of Contacts follows, presented as ContactList events",
                "ContactList",
                registered,
            )
            return True
        if name == "pjsipshowendpoints":
            names = self._endpoint_names()
            if not names:
                w.write(_render({"Response": "Error", **aid, "Message": "No endpoints found\n"}))
                return True
            items = [
                {
                    "ObjectType": "endpoint",
                    "ObjectName": ep,
                    "Transport": "transport-udp",
                    "Aor": ep,
                    "Auths": "",
                    "OutboundAuths": "",
                    "Contacts": "".join(
                        f"{c.aor}/{c.uri}," for c in self.contacts if c.endpoint == ep
                    ),
                    "DeviceState": "Not in use",
                    "ActiveChannels": "0",
                }
                for ep in names
            ]
            self._write_list(
                w,
                aid,
                "A listing of Endpoints follows, presented as EndpointList events",
                "EndpointList",
                items,
            )
            return True
        if name == "pjsipshowendpoint":
            ep = f.get("endpoint", "")
            if ep not in self._endpoint_names():
                msg = f"Unable to retrieve endpoint {ep}\n"
                w.write(_render({"Response": "Error", **aid, "Message": msg}))
                return True
            w.write(
                _render(
                    {
                        "Response": "Success",
                        **aid,
                        "EventList": "start",
                        "Message": "Following are Events for each object associated with the "
                        "Endpoint",
                    }
                )
            )
            w.write(_render({"Event": "EndpointDetail", **aid, "ObjectName": ep}))
            details = [c.status_detail() for c in self.contacts if c.endpoint == ep]
            for d in details:
                w.write(_render({"Event": "ContactStatusDetail", **aid, **d}))
            w.write(
                _render(
                    {
                        "Event": "EndpointDetailComplete",
                        **aid,
                        "EventList": "Complete",
                        "ListItems": str(len(details) + 1),
                    }
                )
            )
            return True
        if name == "coreshowchannels":
            self._write_list(
                w,
                aid,
                "Channels will follow",
                "CoreShowChannel",
                self.channels,
                complete="CoreShowChannelsComplete",
            )
            return True
        if name == "originate":
            w.write(
                _render({"Response": "Success", **aid, "Message": "Originate successfully queued"})
            )
            if f.get("async", "").lower() in ("true", "yes", "1"):
                w.write(
                    _render(
                        {
                            "Event": "OriginateResponse",
                            "Privilege": "call,all",
                            **aid,
                            "Response": "Success",
                            "Channel": f.get("channel", ""),
                            "Reason": "4",
                            "Uniqueid": "1763800000.1",
                        }
                    )
                )
            return True
        if name in ("hangup", "redirect", "setvar"):
            w.write(_render({"Response": "Success", **aid, "Message": f"{name} done"}))
            return True
        w.write(_render({"Response": "Error", **aid, "Message": "Invalid/unknown command"}))
        return True

    def _endpoint_names(self) -> list[str]:
        names = [c.endpoint for c in self.contacts] + self.other_endpoints
        return list(dict.fromkeys(names))

    @staticmethod
    def _write_list(
        w: asyncio.StreamWriter,
        aid: dict[str, str],
        message: str,
        event: str,
        items: list[dict[str, str]],
        complete: str | None = None,
    ) -> None:
        w.write(_render({"Response": "Success", **aid, "EventList": "start", "Message": message}))
        for item in items:
            w.write(_render({"Event": event, **aid, **item}))
        w.write(
            _render(
                {
                    "Event": complete or f"{event}Complete",
                    **aid,
                    "EventList": "Complete",
                    "ListItems": str(len(items)),
                }
            )
        )


@pytest.fixture
async def fake_ami() -> AsyncIterator[FakeAmi]:
    """A FakeAmi on an ephemeral loopback port, closed after the test."""
    fake = FakeAmi()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Fail the test if anything reaches the event loop's exception handler (a task exception
    never retrieved, an exception in a callback): those are errors nobody handled."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    try:
        yield seen
        gc.collect()  # "Task exception was never retrieved" is reported when the task is freed
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert not seen, f"exceptions reached the event loop: {seen}"


__all__ = [
    "BANNER",
    "FakeAmi",
    "FakeContact",
    "ReceivedAction",
    "fake_ami",
    "loop_errors",
]

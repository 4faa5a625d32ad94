"""The one module that touches panoramisk 1.4 (untyped); everything else sees typed values.

panoramisk does the AMI wire protocol for us: framing, ActionIDs, matching responses and
EventList items to the action that asked, case-insensitive messages. Its connection
management is what we must not use (ari-notes 3.2, checked against the 1.4 source):

- ``Manager.connect()`` and ``Manager.connection_lost()`` schedule ``connect()`` again with
  ``loop.call_later``: an untracked reconnect loop that would race our supervisor.
- ``AMIProtocol.close()`` parks unanswered, non-"forgetable" actions in
  ``Manager.awaiting_actions`` and ``send_awaiting_actions`` re-sends them on the next
  ``FullyBooted``: an Originate in flight when Asterisk restarts would ring twice.
- ``Manager.ping()`` writes a Ping every ``ping_interval`` and never reads the answer, so a
  half-open connection goes unnoticed.
- ``Manager.dispatch()`` wraps coroutine callbacks in ``asyncio.ensure_future`` and drops the
  task: a failing handler is only seen as "Task exception was never retrieved".

So ``AmiSession`` builds one ``_SessionManager`` per TCP connection, opens the socket itself and
hands it over through ``Manager.connection_made`` (the same callback ``connect()`` would use),
and overrides the four behaviours above. No Manager outlives its connection, so nothing it
parked can ever be written to a later connection. On top, every action we know is declared
forgetable, so panoramisk does not even park them (``actions.forgetable_actions``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from sambung.asterisk.ami.actions import forgetable_actions
from sambung.asterisk.ami.errors import AmiLoginRejected, AmiUnavailable
from sambung.asterisk.ami.model import AmiMessage

# Both shapes panoramisk prints: "Secret: x" (str of an Action) and "'Secret': 'x'" (its repr).
_SECRET_RE: Final = re.compile(r"""(?i)(secret['"]?\s*:\s*['"]?)[^'"\s,}\\]+""")


class _RedactSecret(logging.Filter):
    """panoramisk logs whole actions on some paths (``Fail to send <action>``, "Adding action
    to awaiting list"); the Login action carries our AMI secret. Scrub it before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "ecret" in text:
            record.msg = _SECRET_RE.sub(r"\g<1>***", text)
            record.args = ()
        return True


_PANORAMISK_LOG: Final = logging.getLogger("asterisk.ami.panoramisk")
_PANORAMISK_LOG.addFilter(_RedactSecret())

_ids = itertools.count(1)
_ID_PREFIX: Final = f"sambung-{uuid.uuid4().hex[:8]}"


def _next_action_id() -> str:
    return f"{_ID_PREFIX}-{next(_ids)}"


def to_messages(result: Any) -> list[AmiMessage]:
    """panoramisk resolves an action to one ``Message`` or a list of them; we always use a list."""
    items = result if isinstance(result, list) else [result]
    return [_to_message(m) for m in items]


def _to_message(msg: Any) -> AmiMessage:
    # panoramisk's Message stores the body text of "Response: Follows" as a key "content".
    headers: dict[str, str | Sequence[str]] = {}
    content = ""
    for key, value in msg.items():
        if key == "content":
            content = str(value or "")
        elif isinstance(value, list):
            headers[str(key)] = [str(v) for v in value]
        else:
            headers[str(key)] = str(value)
    return AmiMessage.from_headers(headers, content)


def _describe_loss(exc: object) -> str:
    if exc is None:
        return "closed_by_asterisk"
    if isinstance(exc, BaseException):
        return f"connection_lost: {exc!r}"
    # AMIProtocol.handle_message passes the Shutdown event itself as ``exc``.
    return "asterisk_shutdown"


class _SessionManager(Manager):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's Manager for exactly one TCP connection, its own timers and retries off."""

    def __init__(
        self,
        *,
        on_event: Callable[[Any], None],
        on_lost: Callable[[str], None],
        **config: Any,
    ) -> None:
        super().__init__(**config)
        self._sambung_on_event = on_event
        self._sambung_on_lost = on_lost

    def ping(self) -> None:
        """Do nothing: the adapter's watchdog pings and, unlike 1.4, checks the answer."""

    def dispatch(self, event: Any) -> list[str]:
        """Hand every unsolicited event to the session; no callbacks, no ensure_future."""
        self._sambung_on_event(event)
        return []

    def connection_lost(self, exc: object) -> None:
        """Report the loss; do not reconnect (1.4 would ``call_later(..., self.connect)``)."""
        self._connected = False
        pinger: Any = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None
        self._sambung_on_lost(_describe_loss(exc))

    async def send_awaiting_actions(self, *_: Any) -> None:
        """Never re-send. Only reachable through 1.4's FullyBooted callback, which our
        ``dispatch`` never calls; kept as a second lock on the same door."""
        self.awaiting_actions.clear()


class AmiSession:
    """One TCP connection to AMI, logged in, backed by a panoramisk Manager of its own.

    ``lost`` resolves (with a short reason) when the connection ends for any reason: peer
    closed, ``Shutdown`` event, or ``close()``. Events received before ``start_events()`` are
    held back, so the adapter can finish its own bookkeeping for the new connection before the
    ``FullyBooted`` that follows every login reaches a handler.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        on_event: Callable[[AmiMessage], None],
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._loop = asyncio.get_running_loop()
        self.lost: asyncio.Future[str] = self._loop.create_future()
        self._on_event = on_event
        self._held: list[AmiMessage] | None = []
        self.version = ""
        # Built inside the running loop and given it: 1.4 creates its futures and tasks with
        # the deprecated implicit-loop APIs (ari-notes 3.2).
        self._manager = _SessionManager(
            on_event=self._event,
            on_lost=self._lost,
            loop=self._loop,
            host=host,
            port=port,
            username=username,
            secret=secret,
            events="on",
            forgetable_actions=forgetable_actions(),
            log=_PANORAMISK_LOG,
        )

    @property
    def manager(self) -> Any:
        """The panoramisk Manager (for tests that check its re-send machinery)."""
        return self._manager

    async def open(self, timeout: float) -> None:
        """Connect and log in. Raises AmiLoginRejected, or AmiUnavailable for anything else."""
        try:
            transport, protocol = await asyncio.wait_for(
                self._loop.create_connection(AMIProtocol, self.host, self.port), timeout
            )
        except (OSError, TimeoutError) as err:
            self._lost(f"connect_failed: {err!r}")
            raise AmiUnavailable(
                "Login", f"cannot connect to {self.host}:{self.port}: {err!r}"
            ) from err
        connected: asyncio.Future[tuple[Any, Any]] = self._loop.create_future()
        connected.set_result((transport, protocol))
        # Manager.connection_made wires the protocol to the manager and writes the Login.
        self._manager.connection_made(connected)
        login = self._manager.authenticated_future
        try:
            # asyncio.wait, not wait_for: cancelling panoramisk's future would make its own
            # done-callback (Manager.login) raise inside the loop.
            await asyncio.wait({login, self.lost}, timeout=timeout, return_when="FIRST_COMPLETED")
        except (Exception, asyncio.CancelledError):
            self.close("cancelled_during_login")  # nobody else knows this socket yet
            raise
        if login.done():
            reply = _to_message(login.result())
            if reply.is_error:
                self.close("login_rejected")
                raise AmiLoginRejected("Login", reply.message or "authentication failed")
            self.version = str(getattr(protocol, "version", None) or "")
            return
        if self.lost.done():
            raise AmiUnavailable("Login", f"connection ended during login: {self.lost.result()}")
        self.close("login_timeout")
        raise AmiUnavailable("Login", f"no reply to Login within {timeout:g}s")

    def send(
        self, action: Mapping[str, str | Sequence[str]], as_list: bool | None
    ) -> tuple[str, asyncio.Future[Any]]:
        """Write one action; returns its ActionID and panoramisk's future for the reply."""
        data: dict[str, Any] = {
            k: (v if isinstance(v, str) else list(v))
            for k, v in action.items()
            if k.lower() != "actionid"
        }
        action_id = _next_action_id()
        data["ActionID"] = action_id
        future: asyncio.Future[Any] = self._manager.send_action(data, as_list=as_list)
        return action_id, future

    def forget(self, action_id: str) -> None:
        """Drop an action we stopped waiting for, so a late reply cannot pile up."""
        protocol = self._manager.protocol
        responses = getattr(protocol, "responses", None)
        if not responses:
            return
        action = responses.pop(action_id, None)
        if action is not None:
            responses.pop(action.id, None)

    def start_events(self) -> None:
        held, self._held = self._held, None
        for msg in held or ():
            self._on_event(msg)

    def close(self, reason: str) -> None:
        """Close the socket (idempotent). Unanswered actions are failed by their waiters."""
        if not self.lost.done():
            self.lost.set_result(reason)
        self._manager.close()

    def logoff_and_close(self, reason: str) -> None:
        """A polite Logoff (so Asterisk logs "logged off", not "disconnected"), then close.

        The write is queued before the transport closes, and the transport flushes it."""
        if not self.lost.done() and self._manager.protocol is not None:
            self.send({"Action": "Logoff"}, as_list=False)
        self.close(reason)

    # -- callbacks from panoramisk ---------------------------------------------------------

    def _event(self, raw: Any) -> None:
        msg = _to_message(raw)
        if self._held is not None:
            self._held.append(msg)
        else:
            self._on_event(msg)

    def _lost(self, reason: str) -> None:
        if not self.lost.done():
            self.lost.set_result(reason)

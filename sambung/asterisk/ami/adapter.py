"""The AMI adapter: one supervised, logged-in AMI connection for what ARI lacks.

Shape: ``AmiAdapter.run()`` is the whole life of the adapter. The composition root starts it
as one long-lived task (``TaskSet``/``TaskGroup``) and cancels it at shutdown; cancelling logs
off, closes the socket and sets ``sambung_ami_connected`` to 0. While ``run()`` is running the
other methods may be called from any task; when AMI is down they raise ``AmiUnavailable`` at
once instead of waiting::

    ami = AmiAdapter(host, port, user, secret, metrics, on_fully_booted=resync)
    task = services.start(ami.run(), name="ami")
    ...
    contacts = await ami.pjsip_contacts()
    ...
    task.cancel()

What ``run()`` does:

- Connects and logs in through panoramisk 1.4 (wrapped in ``_panoramisk.py``, one Manager per
  connection, its own reconnect/re-send/ping/dispatch machinery switched off).
- Watchdog: every ``ping_interval`` an ``Action: Ping`` must be answered within
  ``ping_timeout``. A half-open TCP connection (Asterisk host gone, NAT state dropped) never
  errors by itself; this is what notices it.
- On timeout, connection loss or a ``Shutdown`` event: logs ``ami.disconnected`` once, sets the
  gauge to 0, closes, and reconnects with capped exponential backoff plus jitter. Logs
  ``ami.connected`` once when logged in again and counts ``sambung_ami_reconnects``.
- Wrong credentials: one ``ami.login_rejected`` error line naming user and host (never the
  secret), then the same backed-off retries; an operator can fix manager.conf and reload.
- Events are handed to handlers by a task of the adapter's own, one at a time in arrival order.
  A handler that raises is logged as ``ami.handler_failed`` and the next event is delivered.
  Handlers should be quick: a slow one delays every later event (they queue, none is lost).

Actions and re-sending (see ``actions.py``): an action is written at most once per call of
``send_action``. If the connection dies before the reply, a read-only action is sent once more
on the next connection (within the same timeout); any other action raises
``AmiActionOutcomeUnknown`` and is never written again, by us or by panoramisk.
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import structlog

from sambung.asterisk.ami._panoramisk import AmiSession, to_messages
from sambung.asterisk.ami.actions import SESSION_ACTIONS, is_idempotent
from sambung.asterisk.ami.errors import (
    AmiActionFailed,
    AmiActionOutcomeUnknown,
    AmiLoginRejected,
    AmiUnavailable,
)
from sambung.asterisk.ami.model import AmiMessage, CoreChannel, FullyBooted, PjsipContact
from sambung.engine.metrics import Metrics

log = structlog.get_logger(__name__)

T = TypeVar("T")

EventHandler = Callable[[AmiMessage], Awaitable[None]]
ActionFields = Mapping[str, str | Sequence[str]]

_SESSION_ACTIONS_LOWER: Final = frozenset(a.lower() for a in SESSION_ACTIONS)
_TRUE: Final = frozenset({"true", "yes", "1", "on"})


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Capped exponential backoff with "equal jitter": uniform in [c/2, c], c = min(cap, i*2^n).

    The jitter spreads the reconnects of several engines after one Asterisk restart; the floor
    of c/2 keeps a flapping Asterisk from being hammered. ``attempt`` counts from 0.
    """
    ceiling = min(cap, initial * 2.0 ** min(max(attempt, 0), 60))
    return rng.uniform(ceiling / 2.0, ceiling)


def _action_name(action: ActionFields) -> str:
    for key, value in action.items():
        if key.lower() == "action" and isinstance(value, str):
            return value
    return ""


def _as_list(name: str, action: ActionFields) -> bool | None:
    """panoramisk guesses whether a reply has several parts. For a synchronous Originate the
    guess is wrong: "Originate successfully queued" looks multi-part unless ``Async`` is the
    literal "false", so the future would wait forever for an OriginateResponse that Asterisk
    only sends for async originates (panoramisk #88/#89). Say "one message" explicitly then."""
    if name.lower() == "originate":
        is_async = any(
            k.lower() == "async" and isinstance(v, str) and v.lower() in _TRUE
            for k, v in action.items()
        )
        return None if is_async else False
    return None


class AmiAdapter:
    """A supervised AMI connection; see the module docstring for the life cycle."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        metrics: Metrics,
        on_fully_booted: Callable[[FullyBooted], Awaitable[None]] | None = None,
        on_shutdown: Callable[[str], Awaitable[None]] | None = None,
        ping_interval: float = 5.0,
        ping_timeout: float = 3.0,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 30.0,
        *,
        connect_timeout: float = 10.0,
        action_timeout: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self._metrics = metrics
        self._on_fully_booted = on_fully_booted
        self._on_shutdown = on_shutdown
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._reconnect_initial = reconnect_initial
        self._reconnect_max = reconnect_max
        self._connect_timeout = connect_timeout
        self._action_timeout = action_timeout
        self._rng = rng or random.Random()
        self._handlers: list[tuple[str, EventHandler]] = []
        # Unbounded on purpose: AMI cannot be paused, and dropping a Shutdown or ContactStatus
        # would be worse than memory held while a handler is slow.
        self._events: asyncio.Queue[AmiMessage] = asyncio.Queue()
        self._session: AmiSession | None = None
        self._next_up: asyncio.Future[AmiSession] | None = None
        self._running = False
        self._ever_connected = False
        self._outage_logged = False  # one warning per outage, not one per retry
        self._login_error_logged = False

    def __repr__(self) -> str:
        return f"AmiAdapter({self.username}@{self.host}:{self.port})"

    # -- public API ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while logged in and not (yet) known to be lost."""
        session = self._session
        return session is not None and not session.lost.done()

    async def wait_connected(self, timeout: float) -> None:
        """Return once logged in; ``AmiUnavailable`` if that does not happen within ``timeout``
        (``run()`` may be started after this is called)."""
        session = self._session
        if session is not None and not session.lost.done():
            return
        await asyncio.wait({self._next_up_future()}, timeout=timeout)
        if not self.connected:
            raise AmiUnavailable("Login", f"not connected within {timeout:g}s")

    def register_event(self, pattern: str, handler: EventHandler) -> Callable[[], None]:
        """Call ``handler`` for every event whose name matches the fnmatch ``pattern``
        (case-insensitive: "ContactStatus", "MixMonitor*", "*"). Returns an unregister function.
        Handlers run in the adapter's event task, one event at a time, in arrival order."""
        entry = (pattern, handler)
        self._handlers.append(entry)

        def unregister() -> None:
            if entry in self._handlers:
                self._handlers.remove(entry)

        return unregister

    async def send_action(
        self, action: ActionFields, *, timeout: float | None = None
    ) -> list[AmiMessage]:
        """Send one action and return its reply: the response, then any list events.

        Raises ``AmiUnavailable`` at once when not connected, ``AmiActionFailed`` when Asterisk
        answers Error, and for a connection lost before the reply: ``AmiActionOutcomeUnknown``
        for a non-idempotent action (never sent again), or one retry on the next connection for
        a read-only one (then ``AmiUnavailable``). ``timeout`` bounds the whole call; when it
        expires a non-idempotent action also ends in ``AmiActionOutcomeUnknown``.
        The ActionID is always the adapter's own.

        Asterisk answers a synchronous Originate only once the call is answered or has failed,
        and panoramisk resolves an ``Async: true`` one only at its OriginateResponse (the call
        outcome): give either a ``timeout`` longer than the Originate's own ``Timeout``.
        """
        name = _action_name(action)
        if not name:
            raise ValueError("an AMI action needs an 'Action' field")
        if name.lower() in _SESSION_ACTIONS_LOWER:
            raise ValueError(f"{name} is sent by the adapter itself")
        idempotent = is_idempotent(name)
        loop = asyncio.get_running_loop()
        budget = self._action_timeout if timeout is None else timeout
        deadline = loop.time() + budget
        session = self._session
        if session is None or session.lost.done():
            raise AmiUnavailable(name, "not connected")
        first_try = True
        while True:
            action_id, reply = session.send(action, as_list=_as_list(name, action))
            try:
                await asyncio.wait(
                    {reply, session.lost},
                    timeout=max(0.0, deadline - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            except asyncio.CancelledError:
                session.forget(action_id)  # the caller gave up; a late reply has nobody to go to
                raise
            # A reply that arrived together with the loss still counts: check it first.
            if reply.done():
                return self._result(name, reply.result())
            session.forget(action_id)
            lost = session.lost.done()
            reason = session.lost.result() if lost else f"no reply within {budget:g}s"
            if not idempotent:
                log.warning(
                    "ami.action_outcome_unknown", action=name, action_id=action_id, reason=reason
                )
                raise AmiActionOutcomeUnknown(name, action_id, reason)
            if not lost or not first_try:
                raise AmiUnavailable(name, reason)
            first_try = False
            log.info("ami.action_retry", action=name, action_id=action_id, reason=reason)
            session = await self._next_session(name, session, deadline)

    async def ping(self) -> None:
        await self.send_action({"Action": "Ping"})

    async def pjsip_contacts(self, include_static: bool = True) -> list[PjsipContact]:
        """Every PJSIP contact with its qualify status: registered ones (agents' phones) from
        ``PJSIPShowContacts``, then, unless ``include_static`` is False, the static ``contact=``
        ones of AORs (trunks), which that action leaves out on Asterisk 22 (see PjsipContact).

        Static contacts cost one ``PJSIPShowEndpoints`` plus one ``PJSIPShowEndpoint`` per
        endpoint that has a contact not listed already: usually only the few trunks.
        """
        contacts = [
            PjsipContact.from_message(m)
            for m in await self._list_or_empty({"Action": "PJSIPShowContacts"})
            if m.event == "ContactList"
        ]
        if not include_static:
            return contacts
        seen = {(c.aor, c.uri) for c in contacts}
        endpoints: list[str] = []
        for m in await self._list_or_empty({"Action": "PJSIPShowEndpoints"}):
            # "Contacts: customers/sip:127.0.0.1:5080," -- aor/uri pairs, comma-terminated.
            pairs = (p.strip().partition("/") for p in m.get("Contacts").split(","))
            if m.event == "EndpointList" and any(
                uri and (aor, uri) not in seen for aor, _, uri in pairs
            ):
                endpoints.append(m.get("ObjectName"))
        for endpoint in endpoints:
            detail = await self._list_or_empty(
                {"Action": "PJSIPShowEndpoint", "Endpoint": endpoint}
            )
            for m in detail:
                if m.event != "ContactStatusDetail":
                    continue
                contact = PjsipContact.from_status_detail(m)
                if (contact.aor, contact.uri) not in seen:
                    seen.add((contact.aor, contact.uri))
                    contacts.append(contact)
        return contacts

    async def _list_or_empty(self, action: ActionFields) -> list[AmiMessage]:
        """A list action whose "nothing there" answer is an error, not an empty list:
        "No Contacts found", "No endpoints found", "Unable to retrieve endpoint x" (the
        endpoint was deleted between two actions) (``res/res_pjsip/*.c``)."""
        try:
            return await self.send_action(action)
        except AmiActionFailed as err:
            text = err.message.lower()
            if text.startswith(("no ", "unable to retrieve")):
                return []
            raise

    async def core_show_channels(self) -> list[CoreChannel]:
        """Every channel in Asterisk, Stasis or not (``CoreShowChannels``)."""
        msgs = await self.send_action({"Action": "CoreShowChannels"})
        return [CoreChannel.from_message(m) for m in msgs if m.event == "CoreShowChannel"]

    async def run(self) -> None:
        """Keep AMI connected and deliver its events until cancelled."""
        if self._running:
            raise RuntimeError("AmiAdapter.run() is already running")
        self._running = True
        self._metrics.ami_connected.set(0)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._deliver_events(), name="ami-events")
                await self._supervise()
        finally:
            session, self._session = self._session, None
            if session is not None:
                session.logoff_and_close("adapter_stopped")
                log.info("ami.stopped", host=self.host, port=self.port)
            self._metrics.ami_connected.set(0)
            self._next_up = None
            self._running = False

    # -- supervisor ------------------------------------------------------------------------

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            session = AmiSession(
                self.host, self.port, self.username, self._secret, self._events.put_nowait
            )
            try:
                await session.open(self._connect_timeout)
            except AmiLoginRejected as err:
                self._note_login_rejected(err)
            except AmiUnavailable as err:
                self._note_unreachable(err)
            else:
                up_at = loop.time()
                self._up(session)
                reason = await self._watch(session)
                self._down(session, reason)
                # Only a connection that stayed up a while resets the backoff, so an Asterisk
                # that accepts and drops at once is not reconnected to in a tight loop.
                if loop.time() - up_at >= self._reconnect_max:
                    attempt = 0
            await asyncio.sleep(
                backoff_delay(attempt, self._reconnect_initial, self._reconnect_max, self._rng)
            )
            attempt += 1

    async def _watch(self, session: AmiSession) -> str:
        """Ping until the connection is lost; returns why it ended."""
        while True:
            await asyncio.wait({session.lost}, timeout=self._ping_interval)
            if session.lost.done():
                return session.lost.result()
            action_id, pong = session.send({"Action": "Ping"}, as_list=False)
            await asyncio.wait(
                {pong, session.lost},
                timeout=self._ping_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if pong.done():
                continue  # any reply proves the connection and Asterisk's manager thread alive
            if session.lost.done():
                return session.lost.result()
            session.forget(action_id)
            return f"ping_timeout: no reply to Ping within {self._ping_timeout:g}s"

    def _up(self, session: AmiSession) -> None:
        self._session = session
        self._metrics.ami_connected.set(1)
        if self._ever_connected:
            self._metrics.ami_reconnects.inc()
        log.info(
            "ami.connected",
            host=self.host,
            port=self.port,
            username=self.username,
            ami_version=session.version,
            reconnect=self._ever_connected,
        )
        self._ever_connected = True
        self._outage_logged = False
        self._login_error_logged = False
        self._next_up_future().set_result(session)
        self._next_up = None
        # Only now let this connection's events through: FullyBooted follows every login, and
        # its handler may use send_action, which needs ``_session`` set.
        session.start_events()

    def _down(self, session: AmiSession, reason: str) -> None:
        if self._session is session:
            self._session = None
        session.close(reason)
        self._metrics.ami_connected.set(0)
        log.warning("ami.disconnected", host=self.host, port=self.port, reason=reason)
        self._outage_logged = True

    def _next_up_future(self) -> asyncio.Future[AmiSession]:
        """Resolved by the next successful login (then replaced for the one after)."""
        if self._next_up is None or self._next_up.done():
            self._next_up = asyncio.get_running_loop().create_future()
        return self._next_up

    def _note_unreachable(self, err: AmiUnavailable) -> None:
        if self._outage_logged:
            log.debug("ami.connect_retry", host=self.host, port=self.port, error=err.reason)
            return
        log.warning("ami.unreachable", host=self.host, port=self.port, error=err.reason)
        self._outage_logged = True

    def _note_login_rejected(self, err: AmiLoginRejected) -> None:
        if self._login_error_logged:
            log.debug("ami.login_retry", username=self.username, host=self.host)
            return
        log.error(
            "ami.login_rejected",
            username=self.username,
            host=self.host,
            port=self.port,
            asterisk_said=err.reason,
            hint="check this user's entry in Asterisk's manager.conf; retrying with backoff",
        )
        self._login_error_logged = True
        self._outage_logged = True

    async def _next_session(self, action: str, old: AmiSession, deadline: float) -> AmiSession:
        current = self._session
        if current is not None and current is not old and not current.lost.done():
            return current
        if not self._running:
            raise AmiUnavailable(action, "the adapter stopped")
        waiter = self._next_up_future()
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        await asyncio.wait({waiter}, timeout=remaining)
        if not waiter.done():
            raise AmiUnavailable(action, "connection lost and not back within the timeout")
        return waiter.result()

    @staticmethod
    def _result(action: str, raw: Any) -> list[AmiMessage]:
        msgs = to_messages(raw)
        if msgs and msgs[0].is_error:
            raise AmiActionFailed(action, msgs[0].message)
        return msgs

    # -- events ----------------------------------------------------------------------------

    async def _deliver_events(self) -> None:
        while True:
            msg = await self._events.get()
            name = msg.event
            if name == "FullyBooted" and self._on_fully_booted is not None:
                await self._call(
                    "on_fully_booted", self._on_fully_booted, FullyBooted.from_message(msg), name
                )
            elif name == "Shutdown" and self._on_shutdown is not None:
                # "Cleanly" or "Uncleanly"; Restart: True/False is in the raw event.
                await self._call("on_shutdown", self._on_shutdown, msg.get("Shutdown"), name)
            lowered = name.lower()
            for pattern, handler in list(self._handlers):
                if fnmatch.fnmatchcase(lowered, pattern.lower()):
                    await self._call(pattern, handler, msg, name)

    async def _call(
        self, what: str, fn: Callable[[T], Awaitable[None]], arg: T, event_name: str
    ) -> None:
        try:
            await fn(arg)
        except Exception as err:
            log.error(
                "ami.handler_failed",
                handler=what,
                ami_event=event_name,
                error=repr(err),
                exc_info=err,
            )


__all__ = [
    "AmiActionFailed",
    "AmiActionOutcomeUnknown",
    "AmiAdapter",
    "AmiMessage",
    "AmiUnavailable",
    "CoreChannel",
    "EventHandler",
    "FullyBooted",
    "PjsipContact",
    "backoff_delay",
]

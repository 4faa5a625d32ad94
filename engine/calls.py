"""The dispatcher and per-call tasks.

Events from the telephony adapter arrive through ``CallDispatcher.dispatch``, which is
synchronous: it only looks up the call's inbox and puts the event in it. It never awaits
handler work, so one slow call can never delay another's events. Each call is owned by exactly
one task, which reads its inbox in order; one owner per call means no locks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import structlog

from engine.events import (
    CallEnded,
    CallEvent,
    CallOffered,
    CallResynced,
    DeviceChanged,
    EngineEvent,
    TelephonyConnected,
    TelephonyLost,
)
from engine.metrics import Metrics
from engine.tasks import TaskSet

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Envelope:
    event: object  # a CallEvent, or an event the call task posted to itself
    queued_at: float


class CallInbox:
    """The ordered events of one call, as its task sees them."""

    def __init__(self, call_id: str, metrics: Metrics) -> None:
        self.call_id = call_id
        self._queue: asyncio.Queue[_Envelope] = asyncio.Queue()
        self._metrics = metrics
        self._loop = asyncio.get_running_loop()

    def put(self, event: CallEvent) -> None:
        self._queue.put_nowait(_Envelope(event, self._loop.time()))

    def post_local(self, event: object) -> None:
        """An event the call task makes for itself (a timer fired, a lookup answered).

        It goes through the same queue as Asterisk's events so the task sees one order.
        """
        self._queue.put_nowait(_Envelope(event, self._loop.time()))

    async def next(self, timeout: float | None = None) -> CallEvent | None:
        """The next event, or None if ``timeout`` seconds pass without one.

        For tasks that never post local events.
        """
        return cast("CallEvent | None", await self.next_any(timeout))

    async def next_any(self, timeout: float | None = None) -> object | None:
        try:
            env = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        self._metrics.dispatch_lag.observe(self._loop.time() - env.queued_at)
        return env.event


CallHandler = Callable[[CallOffered, CallInbox], Awaitable[None]]


class CallDispatcher:
    def __init__(
        self,
        handler: CallHandler,
        refuse: Callable[[CallOffered], Awaitable[None]],
        metrics: Metrics,
        on_connection: Callable[[TelephonyConnected | TelephonyLost], None] | None = None,
        on_device: Callable[[DeviceChanged], None] | None = None,
    ) -> None:
        self._handler = handler
        self._refuse = refuse
        self._metrics = metrics
        self._on_connection = on_connection
        self._on_device = on_device
        self._inboxes: dict[str, CallInbox] = {}
        self._offers: dict[str, CallOffered] = {}
        self.tasks = TaskSet("calls")
        self.accepting = True

    @property
    def active_calls(self) -> dict[str, CallOffered]:
        return dict(self._offers)

    def dispatch(self, event: EngineEvent) -> None:
        if isinstance(event, TelephonyConnected | TelephonyLost):
            if self._on_connection is not None:
                self._on_connection(event)
            return
        if isinstance(event, DeviceChanged):
            if self._on_device is not None:
                self._on_device(event)
            return
        if isinstance(event, CallOffered):
            self._offer(event)
            return
        inbox = self._inboxes.get(event.call_id)
        if inbox is None:
            # Normal: late events after a call task finished, or legs that are not ours.
            log.debug("dispatch.no_owner", call_id=event.call_id, kind=type(event).__name__)
            return
        inbox.put(event)

    def _offer(self, offer: CallOffered) -> None:
        if offer.call_id in self._inboxes:
            log.warning("dispatch.duplicate_offer", call_id=offer.call_id)
            return
        inbox = CallInbox(offer.call_id, self._metrics)
        self._inboxes[offer.call_id] = inbox
        self._offers[offer.call_id] = offer
        self._metrics.calls_active.set(len(self._inboxes))
        work = self._handler(offer, inbox) if self.accepting else self._refuse(offer)
        self.tasks.start(self._own(offer.call_id, work), name=f"call-{offer.call_id}")

    def start_owned(self, call_id: str, work: Callable[[CallInbox], Awaitable[None]]) -> bool:
        """Start a task that owns ``call_id`` without an inbound offer (a callback attempt).

        Events about its legs reach it like any call's. False when the engine is draining or
        the id is taken.
        """
        if not self.accepting or call_id in self._inboxes:
            return False
        inbox = CallInbox(call_id, self._metrics)
        self._inboxes[call_id] = inbox
        self._metrics.calls_active.set(len(self._inboxes))
        self.tasks.start(self._own(call_id, work(inbox)), name=f"call-{call_id}")
        return True

    def inbox_of(self, call_id: str) -> CallInbox | None:
        return self._inboxes.get(call_id)

    async def _own(self, call_id: str, work: Awaitable[None]) -> None:
        structlog.contextvars.bind_contextvars(call_id=call_id)
        try:
            await work
        finally:
            self._inboxes.pop(call_id, None)
            self._offers.pop(call_id, None)
            self._metrics.calls_active.set(len(self._inboxes))

    def end_calls(self, call_ids: set[str] | None, reason: str) -> int:
        """Tell call tasks their call is gone when Asterisk cannot say so (restart, lost)."""
        ended = 0
        now = datetime.now(UTC)
        for cid, inbox in list(self._inboxes.items()):
            if call_ids is None or cid in call_ids:
                inbox.put(CallEnded(cid, 0, reason.replace("_", " "), now, reason=reason))
                ended += 1
        return ended

    def resync_calls(self, call_ids: set[str]) -> None:
        now = datetime.now(UTC)
        for cid in call_ids:
            inbox = self._inboxes.get(cid)
            if inbox is not None:
                inbox.put(CallResynced(cid, now))

    async def drain(self, timeout: float) -> bool:
        self.accepting = False
        return await self.tasks.wait_empty(timeout)

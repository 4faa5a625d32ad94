"""The dispatcher and per-call tasks.

Events from the telephony adapter arrive through ``CallDispatcher.dispatch``, which is
synchronous: it only looks up the call's inbox and puts the event in it. It never awaits
handler work, so one slow call can never delay another's events. Each call is owned by exactly
one task, which reads its inbox in order; one owner per call means no locks.

Owning every call's task makes the dispatcher the one place that sees each call begin and end,
whichever feature carried it. So it records the start of every offered call (the ``calls`` row,
before any feature acts on it), and it keeps the shell's call metrics: the calls ended by
direction and outcome and their length (from what the call's own facts said, see
``engine.facts``), and how many events wait in the call inboxes. Calls the engine places itself
(callbacks) record their own start, because only the feature knows whether it dialled at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, cast

import structlog

from sambung.engine.events import (
    CallEnded,
    CallEvent,
    CallOffered,
    CallResynced,
    DeviceChanged,
    EngineEvent,
    TelephonyConnected,
    TelephonyLost,
)
from sambung.engine.facts import CallStartedFact, CallTrace, Fact, trace_call
from sambung.engine.metrics import Metrics
from sambung.engine.tasks import TaskSet

log = structlog.get_logger(__name__)

# The `outcome` label of sambung_calls_total (docs/metrics.md): a small fixed set, so the end
# reasons features record (which name their own details) are folded into it here.
CALL_OUTCOMES: Final = (
    "completed",  # the call did what it was for
    "abandoned",  # the other party hung up before being served
    "refused",  # the engine ended it on purpose without serving it
    "not_reached",  # a call the engine placed reached no one
    "failed",  # an engine or telephony error
    "lost",  # the engine lost the call (Asterisk restart, stream down, stopped past the drain)
    "other",  # an end reason this table does not know yet: logged, to be added here
)
# The `direction` label: the calls table's directions (its CHECK constraint), else "other".
CALL_DIRECTIONS: Final = frozenset({"inbound", "outbound", "callback", "agent_feature", "dialer"})

_OUTCOME_OF_REASON: Final[Mapping[str, str]] = {
    # Hotline greetings, the IVR, queues, callbacks, desk-phone feature codes, the dialer.
    "completed": "completed",
    "ivr_completed": "completed",
    "max_attempts": "completed",  # a menu's retries ran out: the flow's goodbye (IVR: contained)
    "agent_hung_up": "completed",
    "caller_hung_up": "completed",  # after talking to an agent
    "message_left": "completed",
    "callback_requested": "completed",  # the caller took the offer and was told when
    "callback_completed": "completed",
    "feature_ok": "completed",
    "reminder_played": "completed",
    "connected": "completed",
    "reminder": "completed",
    "caller_abandoned_ivr": "abandoned",
    "caller_abandoned_queue": "abandoned",
    "message_abandoned": "abandoned",
    "feature_abandoned": "abandoned",
    "hung_up_at_answer": "abandoned",
    "hung_up_during_amd": "abandoned",
    "abandoned": "abandoned",
    "refused_shutdown": "refused",
    "unknown_number": "refused",
    "overflow_hangup": "refused",  # a full queue's message, or the dialer's safe harbour
    "feature_wrong_pin": "refused",
    "feature_refused": "refused",
    "feature_unknown_phone": "refused",
    "feature_unknown_code": "refused",
    "cancelled": "refused",  # the dialer stopped the attempt (campaign stopped)
    "ring_timeout": "not_reached",
    "callback_no_answer": "not_reached",
    "machine": "not_reached",
    "busy": "not_reached",
    "no_answer": "not_reached",
    "rejected": "not_reached",
    "congestion": "not_reached",
    "invalid_number": "not_reached",
    "engine_error": "failed",
    "timeout": "failed",  # the call fell silent past calls.max_silent_seconds
    "flow_error": "failed",
    "flow_loop": "failed",
    "originate_failed": "failed",
    "callback_failed": "failed",
    "feature_failed": "failed",
    "failed": "failed",
    "asterisk_restart": "lost",
    "lost_while_disconnected": "lost",
    "lost": "lost",
    "engine_restart": "lost",
    "shutdown": "lost",  # the task was stopped past the drain time
}
# Reasons that carry a detail after a fixed prefix.
_OUTCOME_OF_PREFIX: Final = (
    ("not_answered:", None),  # the dialer's "not_answered:<outcome>": the outcome decides
    ("transfer:", "abandoned"),  # the caller left while the IVR's transfer prompts played
    ("callback_agent_", "not_reached"),  # no agent took the callback: nobody was dialled
)
# How an IVR session's outcome reads as a call's, for a flow's own hang-up reasons.
_OUTCOME_OF_IVR: Final[Mapping[str, str]] = {
    "completed": "completed",
    "abandoned": "abandoned",
    "failed": "failed",
    "lost": "lost",
}


def call_outcome(end_reason: str, ivr_end: tuple[str, str] | None = None) -> str:
    """The `outcome` label for a call that ended with ``end_reason``; "other" if unknown.

    ``ivr_end`` is (end reason, outcome) of the call's IVR session: a flow's hang-up nodes name
    their own reasons (after_hours...), which only the IVR knows how to read.
    """
    known = _OUTCOME_OF_REASON.get(end_reason)
    if known is not None:
        return known
    for prefix, outcome in _OUTCOME_OF_PREFIX:
        if end_reason.startswith(prefix):
            if outcome is None:
                return _OUTCOME_OF_REASON.get(end_reason.removeprefix(prefix), "other")
            return outcome
    if ivr_end is not None and ivr_end[0] == end_reason:
        return _OUTCOME_OF_IVR.get(ivr_end[1], "other")
    return "other"


# Unknown end reasons are logged once each; the set is capped so it cannot grow with traffic.
_UNKNOWN_REASONS_KEPT = 100


@dataclass(slots=True)
class _Owned:
    """What the dispatcher knows of a call it owns, for counting it when its task ends."""

    direction: str  # until the call's own start fact names it
    started_at: datetime  # the offer's time, or when the engine started the task
    offered: bool  # an inbound offer is a call even if its task records nothing
    # The dispatcher told the task its call is gone (Asterisk restarted, or the call vanished
    # while the event stream was down): whatever the feature then records, the call was lost.
    lost: bool = False


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
        self.handed_over = False

    def hand_over(self) -> None:
        """The task leaves its call to the next engine (the caller still waits, nothing of
        the call was closed): the call is not counted as ended by this one."""
        self.handed_over = True

    @property
    def waiting(self) -> int:
        """Events put in and not yet taken by the call's task."""
        return self._queue.qsize()

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


@dataclass(frozen=True, slots=True)
class StartRecorder:
    """How the dispatcher records an offered call's start.

    ``hotline_of`` names the hotline or flow the call came in on (None for a number nobody
    serves and for desk-phone feature codes); the router picks the call's route when it answers,
    so the name stored is the route the call then takes.
    """

    record: Callable[[Fact], None]
    instance_id: str
    asterisk_id: Callable[[], str]
    hotline_of: Callable[[CallOffered], str | None]

    def started(self, offer: CallOffered, direction: str) -> None:
        self.record(
            CallStartedFact(
                offer.call_id,
                direction,
                offer.channel_name,
                offer.did,
                offer.caller_number,
                offer.caller_name,
                self.hotline_of(offer),
                self.asterisk_id(),
                self.instance_id,
                offer.at,
            )
        )


class CallDispatcher:
    def __init__(
        self,
        handler: CallHandler,
        refuse: Callable[[CallOffered], Awaitable[None]],
        metrics: Metrics,
        on_connection: Callable[[TelephonyConnected | TelephonyLost], None] | None = None,
        on_device: Callable[[DeviceChanged], None] | None = None,
        starts: StartRecorder | None = None,
    ) -> None:
        self._handler = handler
        self._starts = starts
        self._refuse = refuse
        self._metrics = metrics
        self._on_connection = on_connection
        self._on_device = on_device
        self._inboxes: dict[str, CallInbox] = {}
        self._offers: dict[str, CallOffered] = {}
        self._owned: dict[str, _Owned] = {}
        self._unknown_reasons: set[str] = set()
        self.tasks = TaskSet("calls")
        self.accepting = True
        # Read at scrape time, not kept up to date per event: a sum over the live calls' queue
        # sizes costs nothing on the event path and is exact whenever it is read.
        metrics.dispatch_queue_depth.set_function(self._events_waiting)

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
        if isinstance(event, CallEnded) and event.reason is not None:
            self._mark_lost(event.call_id)  # the adapter's "lost while disconnected"
        inbox.put(event)

    def _offer(self, offer: CallOffered) -> None:
        if offer.call_id in self._inboxes:
            log.warning("dispatch.duplicate_offer", call_id=offer.call_id)
            return
        inbox = CallInbox(offer.call_id, self._metrics)
        self._inboxes[offer.call_id] = inbox
        self._offers[offer.call_id] = offer
        direction = "agent_feature" if offer.kind == "feature" else "inbound"
        self._owned[offer.call_id] = _Owned(direction, offer.at, offered=True)
        self._metrics.calls_active.set(len(self._inboxes))
        if self._starts is not None:
            # Before the task runs, so the row exists before anything the call does refers
            # to it, and a call refused at shutdown is on record too.
            self._starts.started(offer, direction)
        work = self._handler(offer, inbox) if self.accepting else self._refuse(offer)
        self.tasks.start(self._own(offer.call_id, work), name=f"call-{offer.call_id}")

    def start_owned(
        self,
        call_id: str,
        work: Callable[[CallInbox], Awaitable[None]],
        direction: str = "outbound",
    ) -> bool:
        """Start a task that owns ``call_id`` without an inbound offer (a callback attempt).

        Events about its legs reach it like any call's. ``direction`` labels the call in the
        metrics unless the task records a start fact that names one. False when the engine is
        draining or the id is taken.
        """
        if not self.accepting or call_id in self._inboxes:
            return False
        inbox = CallInbox(call_id, self._metrics)
        self._inboxes[call_id] = inbox
        self._owned[call_id] = _Owned(direction, datetime.now(UTC), offered=False)
        self._metrics.calls_active.set(len(self._inboxes))
        self.tasks.start(self._own(call_id, work(inbox)), name=f"call-{call_id}")
        return True

    def adopt(self, offer: CallOffered, work: Callable[[CallInbox], Awaitable[None]]) -> bool:
        """Start a task for a call an earlier engine left live (taken over at start-up).

        Like an offered call (listed in ``active_calls``, counted when it ends), but its start
        was recorded by the engine that took it in: nothing is recorded now. False when the
        engine is draining or the id is taken.
        """
        if not self.accepting or offer.call_id in self._inboxes:
            return False
        inbox = CallInbox(offer.call_id, self._metrics)
        self._inboxes[offer.call_id] = inbox
        self._offers[offer.call_id] = offer
        self._owned[offer.call_id] = _Owned("inbound", offer.at, offered=True)
        self._metrics.calls_active.set(len(self._inboxes))
        self.tasks.start(self._own(offer.call_id, work(inbox)), name=f"call-{offer.call_id}")
        return True

    def inbox_of(self, call_id: str) -> CallInbox | None:
        return self._inboxes.get(call_id)

    async def _own(self, call_id: str, work: Awaitable[None]) -> None:
        structlog.contextvars.bind_contextvars(call_id=call_id)
        trace = trace_call(call_id)
        try:
            await work
        finally:
            inbox = self._inboxes.pop(call_id, None)
            self._offers.pop(call_id, None)
            owned = self._owned.pop(call_id, None)
            self._metrics.calls_active.set(len(self._inboxes))
            if inbox is not None and inbox.handed_over:
                log.info("calls.handed_over")  # the next engine counts it when it ends
            elif owned is not None:
                self._count(owned, trace)

    def _count(self, owned: _Owned, trace: CallTrace) -> None:
        """One call ended: sambung_calls_total and sambung_call_duration_seconds."""
        if not owned.offered and trace.started_at is None and trace.end_reason is None:
            return  # a task that placed no call (a callback the rules held back)
        direction = trace.direction or owned.direction
        if direction not in CALL_DIRECTIONS:
            direction = "other"
        if owned.lost:
            outcome = "lost"
        elif trace.end_reason is None:
            # The task ended without recording how (a bug): the next start closes its calls
            # row as lost (engine_restart), so it is counted as lost here too.
            log.warning("calls.end_not_recorded")
            outcome = "lost"
        else:
            outcome = call_outcome(trace.end_reason, trace.ivr_end)
            if outcome == "other":
                self._unknown_reason(trace.end_reason)
        started = trace.started_at or owned.started_at
        ended = trace.ended_at or datetime.now(UTC)
        self._metrics.calls_total.labels(direction=direction, outcome=outcome).inc()
        self._metrics.call_duration.observe(max(0.0, (ended - started).total_seconds()))

    def _unknown_reason(self, reason: str) -> None:
        if reason in self._unknown_reasons or len(self._unknown_reasons) >= _UNKNOWN_REASONS_KEPT:
            return
        self._unknown_reasons.add(reason)
        log.warning("calls.unknown_end_reason", reason=reason)

    def _mark_lost(self, call_id: str) -> None:
        owned = self._owned.get(call_id)
        if owned is not None:
            owned.lost = True

    def _events_waiting(self) -> float:
        return float(sum(inbox.waiting for inbox in self._inboxes.values()))

    def end_calls(self, call_ids: set[str] | None, reason: str) -> int:
        """Tell call tasks their call is gone when Asterisk cannot say so (restart, lost)."""
        ended = 0
        now = datetime.now(UTC)
        for cid, inbox in list(self._inboxes.items()):
            if call_ids is None or cid in call_ids:
                self._mark_lost(cid)
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

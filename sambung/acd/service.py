"""The ACD: who waits in which queue, which agent takes which call, and the queue figures.

One ``AcdService`` per engine, used only from the event loop's thread, so it needs no locks.
It never talks to Asterisk itself: a waiting call is owned by its call task (``acd/call.py``),
which the service tells what to do by posting ``Offer`` into the call's inbox. The service
decides (through the pure ``acd.routing``) and keeps the books; the task acts.

Routing runs on every event that can create a match (a call joins or returns to a queue, an
agent becomes ready) and at the next moment a waiting call's skills relax or its priority ages
(one loop timer for the earliest such moment). Runs asked for in the same loop iteration are
coalesced into one.

Expected wait: ``ceil(position x handle time / staffed agents)``, where the handle time is the
mean of the queue's last 50 handle times (talk + hold + wrap-up) blended with the queue's
``default_handle_seconds`` as a prior worth three calls, so a quiet morning does not promise
a two-second wait. Callers hear it rounded up to whole minutes, never less than one; with
nobody staffed the wait is unknown and not announced.

Callbacks follow ``acd.callback_rules``: the service holds the rules (rebuilt when the holiday
calendars are reloaded) and screens a caller id against them with what PostgreSQL knows (the
do-not-call list, the callbacks already made to the number), through a lookup the engine
provides. A callback that may not be dialled yet waits out of the queue (keeping its place)
until the first moment the rules allow.
"""

from __future__ import annotations

import asyncio
import math
import re
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from sambung.acd import routing
from sambung.acd.agents import Agent, AgentBook, AgentProfile, StateChange
from sambung.acd.callback_rules import CallbackRules, NumberVerdict, check_number, next_dial_at
from sambung.acd.events import CallContext
from sambung.acd.model import AcdConfig, CallbackRuleConfig, QueueConfig
from sambung.acd.place import PlaceTag, rebase
from sambung.dialer.compliance import CallingWindow
from sambung.dialer.phones import WIB
from sambung.engine.calendars import HolidayCalendar
from sambung.engine.calls import CallInbox
from sambung.engine.errors import SambungError
from sambung.engine.metrics import Metrics

log = structlog.get_logger(__name__)

HANDLE_SAMPLES = 50
PRIOR_WEIGHT = 3
CALLBACK_ATTEMPTS = 3
CALLBACK_RETRY_SECONDS = 120.0
EXCLUDE_SECONDS = 20.0  # an agent whose phone was busy is not offered the same call this long
# PostgreSQL is asked about a caller id (do-not-call, earlier callbacks) while the caller waits:
# no longer than this, or no callback is offered (it cannot be checked, so it is not made).
CALLBACK_LOOKUP_SECONDS = 1.0
CALLBACK_HISTORY = timedelta(days=7)  # as far back as the callback caps look


class QueueFull(SambungError):
    error_id = "acd.queue_full"
    title = "Queue is full"
    http_status = 409


class UnknownQueue(SambungError):
    error_id = "acd.unknown_queue"
    title = "No such queue"
    http_status = 404


class CallbackLookupFailed(SambungError):
    """What a caller id's callback history lookup raises when PostgreSQL does not answer."""

    error_id = "acd.callback_lookup_failed"
    title = "Callback history unavailable"
    http_status = 503


@dataclass(frozen=True, slots=True)
class CallbackHistory:
    dnc: frozenset[str]  # the do-not-call entries (E.164) that concern the number
    dials: tuple[datetime, ...]  # callback dials to the number in the period asked for


# (E.164, the caller id as it came, since) -> what PostgreSQL knows; set by the engine.
CallbackLookup = Callable[[str, str, datetime], Awaitable[CallbackHistory]]


@dataclass(frozen=True, slots=True)
class CallbackScreen:
    """What the callback rules say about a caller id at a moment, with what PostgreSQL knows."""

    verdict: NumberVerdict
    history: tuple[datetime, ...]  # earlier callback dials to the number
    next_at: datetime | None  # the first moment it may be dialled
    # None: it may be called back (at next_at). Else why not: one of REFUSAL_REASONS,
    # "no_window" (no allowed moment ahead) or "unchecked" (PostgreSQL did not answer).
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None


def callback_rules_of(c: CallbackRuleConfig, calendar: HolidayCalendar) -> CallbackRules:
    h, m = (int(x) for x in c.start.split(":"))
    eh, em = (int(x) for x in c.end.split(":"))
    window = CallingWindow(
        weekdays=frozenset(c.days),
        start=time(h, m),
        end=time(eh, em),
        last_dial_margin=timedelta(minutes=c.last_dial_margin_minutes),
        holidays=calendar,
    )
    return CallbackRules(
        window=window,
        phone_types=frozenset(c.phone_types),
        international_prefixes=tuple(c.international_prefixes),
        max_per_number_per_day=c.max_per_number_per_day,
    )


# Until the engine hands over its holiday calendars, no day is known: no callback is made.
_NO_CALENDAR = HolidayCalendar({}, frozenset(), "none")


@dataclass(frozen=True, slots=True)
class Offer:
    """Posted to a call's inbox: ring this agent for this entry."""

    entry_id: str
    agent_id: str
    endpoint: str
    leg_id: str


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """Posted to a call's inbox by the API: blind transfer to a queue or an agent."""

    queue: str | None
    agent_id: str | None


@dataclass(slots=True)
class Entry:
    """A call (or a callback) waiting in, or being connected from, a queue."""

    entry_id: str
    call_id: str  # the task that owns it: the caller's channel id, or the callback's id
    queue: str
    kind: str  # caller | callback
    priority: int
    enqueued_at: float  # loop clock; kept through transfers and overflows (the caller's place)
    enqueued_wall: datetime
    joined_at: float  # loop clock; when it joined *this* queue (max wait counts from here)
    caller_number: str = ""
    caller_name: str = ""
    did: str = ""
    language: str = "en"
    attributes: dict[str, str] = field(default_factory=dict)
    needs: tuple[routing.SkillNeed, ...] = ()
    relax: tuple[routing.RelaxStep, ...] = ()
    pinned_agent: str | None = None
    excluded: set[str] = field(default_factory=set)
    state: str = "waiting"  # waiting | offering (an answered call leaves the queue)
    inbox: CallInbox | None = None
    agent_id: str | None = None
    callback_attempts: int = 0
    # A callback's number as the rules judged it, and the callback dials made to it (from
    # PostgreSQL and this entry's own attempts): where the next attempt may land.
    callback_verdict: NumberVerdict | None = None
    callback_history: tuple[datetime, ...] = ()

    def for_routing(self) -> routing.WaitingCall:
        return routing.WaitingCall(
            entry_id=self.entry_id,
            queue=self.queue,
            priority=self.priority,
            enqueued_at=self.enqueued_at,
            needs=self.needs,
            relax=self.relax,
            pinned_agent=self.pinned_agent,
            excluded_agents=frozenset(self.excluded),
        )

    def context(self) -> CallContext:
        """What the agent sees about the call when it is offered."""
        return CallContext(
            self.entry_id,
            self.call_id,
            self.queue,
            self.kind,
            self.caller_number,
            self.caller_name,
            self.did,
            self.language,
            self.enqueued_wall,
            dict(self.attributes),
        )


def needs_of(
    q: QueueConfig,
) -> tuple[tuple[routing.SkillNeed, ...], tuple[routing.RelaxStep, ...]]:
    needs = tuple(routing.SkillNeed(n.skill, n.min_level) for n in q.needs)
    relax = tuple(
        routing.RelaxStep(
            r.after_seconds, tuple(routing.SkillNeed(n.skill, n.min_level) for n in r.needs)
        )
        for r in q.relax
    )
    return needs, relax


def profiles_of(settings: AcdConfig) -> list[AgentProfile]:
    return [
        AgentProfile(
            agent_id=a.id,
            name=a.name,
            endpoint=a.endpoint,
            skills=tuple(sorted(a.skills)),
            queues=frozenset(a.queues),
            team=a.team,
        )
        for a in settings.agents
    ]


class AcdService:
    def __init__(
        self,
        settings: AcdConfig,
        metrics: Metrics,
        clock: Callable[[], float] | None = None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        start_callback: Callable[[Entry, Offer], None] | None = None,
        callback_lookup: CallbackLookup | None = None,
        callback_noted: Callable[[Entry, datetime | None], None] | None = None,
        callback_settled: Callable[[Entry], None] | None = None,
    ) -> None:
        """``start_callback``: start a task that owns a callback matched to an agent (it gets
        its own inbox). ``callback_lookup``: what PostgreSQL knows about a number; without
        it, no callbacks. ``callback_noted`` (entry, not before) and ``callback_settled``: a
        callback waits (asked for, held, retried) or left its queue, for it to outlive the
        engine."""
        self.settings = settings
        self.queues: dict[str, QueueConfig] = {q.name: q for q in settings.queues}
        self._m = metrics
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._wall = wall
        self.agents = AgentBook(profiles_of(settings), self._clock, wall, on_ready=self.kick)
        self.agents.listeners.append(self._agent_metrics)
        self.entries: dict[str, Entry] = {}
        self._policies = {
            q.name: routing.QueuePolicy(
                routing.Strategy(q.strategy), q.aging_seconds if q.aging_seconds > 0 else None
            )
            for q in settings.queues
        }
        self._handle: dict[str, deque[float]] = {
            q: deque(maxlen=HANDLE_SAMPLES) for q in self.queues
        }
        # (when, answered within the service level?) per queue, for the rolling service level.
        # (when, answered within the threshold, abandoned) per counted call in the window.
        self._sl: dict[str, deque[tuple[float, bool, bool]]] = {q: deque() for q in self.queues}
        self._route_pending = False
        self._relax_timer: asyncio.TimerHandle | None = None
        self._delayed: dict[str, asyncio.TimerHandle] = {}
        # Callbacks held out of the queue until a moment (the rules, a retry), by entry id.
        self.held: dict[str, Entry] = {}
        self._start_callback = start_callback
        self._callback_lookup = callback_lookup
        self._callback_noted = callback_noted
        self._callback_settled = callback_settled
        self.callback_rules = callback_rules_of(settings.callbacks, _NO_CALENDAR)
        self._next_id = 1  # entry ids: <call id>-q<n>
        for name in self.queues:
            self._gauges(name)
        self.refresh_agent_gauges()

    def _gauges(self, name: str) -> None:
        # Computed when scraped: waits grow by themselves, and nothing needs a ticker task.
        m = self._m
        m.queue_waiting.labels(queue=name).set_function(lambda: float(self.waiting_count(name)))
        m.queue_longest_wait.labels(queue=name).set_function(lambda: self.longest_wait(name))
        m.queue_expected_wait.labels(queue=name).set_function(
            lambda: float(self.expected_wait(name, self.waiting_count(name) + 1) or 0.0)
        )
        m.queue_service_level.labels(queue=name).set_function(lambda: self.service_level(name))

    # ---- queue figures ----------------------------------------------------------------

    def queue(self, name: str) -> QueueConfig:
        q = self.queues.get(name)
        if q is None:
            raise UnknownQueue(f"queue {name!r} is not configured")
        return q

    def _waiting(self, queue: str | None = None) -> list[Entry]:
        return [e for e in self.entries.values() if queue is None or e.queue == queue]

    def waiting_count(self, queue: str) -> int:
        return len(self._waiting(queue))

    def longest_wait(self, queue: str) -> float:
        now = self._clock()
        waits = [now - e.joined_at for e in self._waiting(queue)]
        return max(waits, default=0.0)

    def position(self, entry_id: str) -> int:
        """1-based place in its queue, in the order routing serves calls."""
        entry = self.entries.get(entry_id)
        if entry is None:
            return 0
        now = self._clock()
        same = [e.for_routing() for e in self._waiting(entry.queue)]
        ordered = routing.order(same, self._policies, now)
        for i, c in enumerate(ordered, start=1):
            if c.entry_id == entry_id:
                return i
        return 0

    def handle_time(self, queue: str) -> float:
        q = self.queue(queue)
        samples = self._handle.get(queue, deque())
        return (sum(samples) + PRIOR_WEIGHT * q.default_handle_seconds) / (
            len(samples) + PRIOR_WEIGHT
        )

    def expected_wait(self, queue: str, position: int) -> float | None:
        """Seconds a caller at ``position`` can expect to wait; None when nobody is staffed."""
        staffed = self.agents.staffed(queue)
        if staffed == 0:
            return None
        ready = sum(1 for a in self.agents.ready_for_routing() if queue in a.queues)
        if position <= ready:
            return 0.0
        return float(math.ceil((position - ready) * self.handle_time(queue) / staffed))

    def service_level(self, queue: str) -> float:
        """Share of the window's calls answered within the threshold (1.0 with no calls)."""
        window = self._window(queue)
        if not window:
            return 1.0
        return sum(1 for _, ok, _ in window if ok) / len(window)

    def abandon_rate(self, queue: str) -> float:
        """Share of the window's counted calls (short abandons left out) that hung up waiting."""
        window = self._window(queue)
        if not window:
            return 0.0
        return sum(1 for _, _, gone in window if gone) / len(window)

    def _window(self, queue: str) -> deque[tuple[float, bool, bool]] | None:
        window = self._sl.get(queue)
        cutoff = self._clock() - self.settings.service_level_window_seconds
        while window and window[0][0] < cutoff:
            window.popleft()
        return window

    def view(self) -> list[dict[str, Any]]:
        out = []
        for name, q in self.queues.items():
            n = self.waiting_count(name)
            ewt = self.expected_wait(name, n + 1)
            out.append(
                {
                    "queue": name,
                    "waiting": n,
                    "longest_wait_seconds": round(self.longest_wait(name), 1),
                    "expected_wait_seconds": ewt,
                    "service_level": round(self.service_level(name), 4),
                    "abandon_rate": round(self.abandon_rate(name), 4),
                    "counted_calls": len(self._window(name) or ()),
                    "service_level_seconds": q.service_level_seconds,
                    "staffed": self.agents.staffed(name),
                    "handle_time_seconds": round(self.handle_time(name), 1),
                    "calls": [
                        {
                            **e.context().to_wire(),
                            "state": e.state,
                            "position": self.position(e.entry_id),
                            "agent_id": e.agent_id,
                        }
                        for e in self._waiting(name)
                    ],
                }
            )
        return out

    # ---- entering and leaving -------------------------------------------------------------

    def new_entry(
        self,
        call_id: str,
        queue: str,
        *,
        kind: str = "caller",
        inbox: CallInbox | None,
        caller_number: str = "",
        caller_name: str = "",
        did: str = "",
        language: str | None = None,
        attributes: Mapping[str, str] | None = None,
        enqueued_at: float | None = None,
        enqueued_wall: datetime | None = None,
        pinned_agent: str | None = None,
        priority: int | None = None,
    ) -> Entry:
        q = self.queue(queue)
        needs, relax = needs_of(q)
        now = self._clock()
        return Entry(
            entry_id=f"{call_id}-q{self._take_id()}",
            call_id=call_id,
            queue=queue,
            kind=kind,
            priority=q.priority if priority is None else priority,
            enqueued_at=now if enqueued_at is None else enqueued_at,
            enqueued_wall=enqueued_wall or self._wall(),
            joined_at=now,
            caller_number=caller_number,
            caller_name=caller_name,
            did=did,
            language=language or q.language,
            attributes=dict(attributes or {}),
            needs=needs,
            relax=relax,
            pinned_agent=pinned_agent,
            inbox=inbox,
        )

    def _take_id(self) -> int:
        n = self._next_id
        self._next_id += 1
        return n

    def adopted_entry(
        self,
        call_id: str,
        tag: PlaceTag,
        *,
        caller_number: str = "",
        caller_name: str = "",
        did: str = "",
    ) -> Entry:
        """The entry of a caller an earlier engine left waiting, at its place (``tag``, read
        from the caller's channel): the same id, kind, priority, language and relaxation, its
        first enqueue and its join of this queue moved onto this loop's clock, so that it is
        served in the order it would have been with no restart. Not listed yet: ``readmit``."""
        q = self.queue(tag.queue)
        needs, relax = needs_of(q) if tag.relax_step == 0 else ((), ())
        clock, wall = self._clock(), self._wall()
        # This process numbers entries afresh: past the adopted one, so that a transfer of
        # this call can never make an id its earlier entries had.
        m = re.search(r"-q(\d+)$", tag.entry_id)
        if m is not None:
            self._next_id = max(self._next_id, int(m.group(1)) + 1)
        return Entry(
            entry_id=tag.entry_id,
            call_id=call_id,
            queue=tag.queue,
            kind=tag.kind,
            priority=tag.priority,
            enqueued_at=rebase(tag.first_wall, wall, clock),
            enqueued_wall=tag.first_wall,
            joined_at=rebase(tag.entry_wall, wall, clock),
            caller_number=caller_number,
            caller_name=caller_name,
            did=did,
            language=tag.language,
            needs=needs,
            relax=relax,
            pinned_agent=tag.pinned_agent,
        )

    def restored_callback(
        self,
        entry_id: str,
        callback_id: str,
        queue: str,
        priority: int,
        first_wall: datetime,
        joined_wall: datetime,
        *,
        caller_number: str,
        caller_name: str,
        did: str,
        language: str,
        attempts: int,
    ) -> Entry:
        """A callback an earlier engine left pending (from PostgreSQL), at its place: its
        first enqueue and its join of this queue moved onto this loop's clock, as for a caller
        taken over. Raises UnknownQueue when the queue is no longer served."""
        q = self.queue(queue)
        needs, relax = needs_of(q)
        clock, wall = self._clock(), self._wall()
        m = re.search(r"-q(\d+)$", entry_id)
        if m is not None:
            self._next_id = max(self._next_id, int(m.group(1)) + 1)
        return Entry(
            entry_id=entry_id,
            call_id=callback_id,
            queue=queue,
            kind="callback",
            priority=priority,
            enqueued_at=rebase(first_wall, wall, clock),
            enqueued_wall=first_wall,
            joined_at=rebase(joined_wall, wall, clock),
            caller_number=caller_number,
            caller_name=caller_name,
            did=did,
            language=language,
            needs=needs,
            relax=relax,
            callback_attempts=attempts,
        )

    def wall_of(self, at: float) -> datetime:
        """The wall-clock time of a moment on this loop's clock."""
        return self._wall() - timedelta(seconds=self._clock() - at)

    def readmit(self, entry: Entry) -> None:
        """An adopted entry waits again at its place. Its offer was counted by the engine that
        enqueued it; its outcome will be counted here."""
        self.entries[entry.entry_id] = entry
        log.info("acd.readmitted", queue=entry.queue, entry=entry.entry_id, kind=entry.kind)
        self.kick()

    def unlist(self, entry: Entry) -> None:
        """The entry leaves this engine's books with no outcome: the caller still waits, and
        the next engine carries the entry on (a graceful stop's hand-over)."""
        self._release(entry, entry.call_id)
        self.entries.pop(entry.entry_id, None)
        timer = self._delayed.pop(entry.entry_id, None)
        if timer is not None:
            timer.cancel()
        self.held.pop(entry.entry_id, None)
        log.info("acd.unlisted", queue=entry.queue, entry=entry.entry_id)

    def is_full(self, queue: str) -> bool:
        return self.waiting_count(queue) >= self.queue(queue).max_length

    def enqueue(self, entry: Entry) -> int:
        """Join the queue; returns the position. Raises QueueFull (the caller overflows)."""
        if self.is_full(entry.queue):
            raise QueueFull(
                f"queue {entry.queue!r} has {self.queue(entry.queue).max_length} waiting"
            )
        self.entries[entry.entry_id] = entry
        self._m.queue_calls.labels(queue=entry.queue, outcome="offered").inc()
        log.info("acd.enqueued", queue=entry.queue, entry=entry.entry_id, kind=entry.kind)
        self.kick()
        return self.position(entry.entry_id)

    def _release(self, entry: Entry, call_id: str) -> None:
        # An agent reserved for this entry whose offer the call never acted on (the caller
        # left with the Offer still in its inbox) goes back to work; a no-op otherwise.
        if entry.state == "offering" and entry.agent_id is not None:
            self.agents.offer_failed(entry.agent_id, call_id, "busy")

    def leave(self, entry: Entry, outcome: str) -> float:
        """The entry leaves its queue for good; returns its wait in this queue (seconds)."""
        if entry.kind == "callback" and self._callback_settled is not None:
            self._callback_settled(entry)
        if outcome != "answered":
            self._release(entry, entry.call_id)
        self.entries.pop(entry.entry_id, None)
        timer = self._delayed.pop(entry.entry_id, None)
        if timer is not None:
            timer.cancel()
        self.held.pop(entry.entry_id, None)
        now = self._clock()
        waited = max(0.0, now - entry.joined_at)
        q = self.queues.get(entry.queue)
        if q is not None and outcome in ("answered", "abandoned"):
            short = outcome == "abandoned" and waited < self.settings.short_abandon_seconds
            if not short:
                # Short abandons (misdials, a caller who changed their mind) are left out of
                # the service level, as call centres usually count it.
                self._sl[entry.queue].append(
                    (
                        now,
                        outcome == "answered" and waited <= q.service_level_seconds,
                        outcome == "abandoned",
                    )
                )
            label = "short_abandoned" if short else outcome
            self._m.queue_calls.labels(queue=entry.queue, outcome=label).inc()
            self._m.queue_wait.labels(queue=entry.queue, outcome=outcome).observe(waited)
        elif q is not None:
            self._m.queue_calls.labels(queue=entry.queue, outcome=outcome).inc()
        log.info(
            "acd.left_queue",
            queue=entry.queue,
            entry=entry.entry_id,
            outcome=outcome,
            waited=round(waited, 2),
        )
        return waited

    def back_to_queue(self, entry: Entry, agent_id: str, outcome: str) -> None:
        """An offer failed: the entry waits again with its original place."""
        entry.state = "waiting"
        entry.agent_id = None
        if outcome in ("busy", "unavailable"):
            # Try the others first; after a while this agent may be offered the call again
            # (a one-agent queue must not wait until max wait for an agent who is ready).
            entry.excluded.add(agent_id)
            loop = asyncio.get_running_loop()
            loop.call_later(EXCLUDE_SECONDS, self._unexclude, entry, agent_id)
        if entry.entry_id in self.entries:
            self.kick()

    def _unexclude(self, entry: Entry, agent_id: str) -> None:
        entry.excluded.discard(agent_id)
        if entry.entry_id in self.entries:
            self.kick()

    def handle_done(self, queue: str, seconds: float) -> None:
        if queue in self._handle and seconds > 0:
            self._handle[queue].append(seconds)

    def to_callback(
        self,
        entry: Entry,
        callback_id: str,
        screen: CallbackScreen | None = None,
        not_before: datetime | None = None,
    ) -> None:
        """The caller asked to be called back: the entry keeps its place with no caller.

        ``not_before``: the rules allow no dial before then (outside the calling window): the
        entry is not routed until that moment.
        """
        self._release(entry, entry.call_id)
        entry.kind = "callback"
        entry.call_id = callback_id
        entry.inbox = None
        entry.state = "waiting"
        if screen is not None:
            entry.callback_verdict = screen.verdict
            entry.callback_history = screen.history
        self._m.queue_calls.labels(queue=entry.queue, outcome="callback_requested").inc()
        if not_before is not None:
            self.hold_callback(entry, not_before)
        elif self._callback_noted is not None:
            self._callback_noted(entry, None)
        self.kick()

    def hold_callback(self, entry: Entry, until: datetime) -> None:
        """The callback may not be dialled before ``until``: it waits out of the queue (its
        place kept) and an agent reserved for it goes back to work."""
        self._release(entry, entry.call_id)
        self.entries.pop(entry.entry_id, None)
        entry.state = "waiting"
        entry.agent_id = None
        seconds = max(0.0, (until - self._wall()).total_seconds())
        log.info("acd.callback_held", entry=entry.entry_id, until=until.isoformat())
        if self._callback_noted is not None:
            self._callback_noted(entry, until)

        def again() -> None:
            self._delayed.pop(entry.entry_id, None)
            self.held.pop(entry.entry_id, None)
            self.entries[entry.entry_id] = entry
            self.kick()

        old = self._delayed.pop(entry.entry_id, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._delayed[entry.entry_id] = loop.call_later(seconds, again)
        self.held[entry.entry_id] = entry

    def retry_callback_later(self, entry: Entry) -> bool:
        """A callback attempt failed; try again later unless attempts are used up.

        Later means ``CALLBACK_RETRY_SECONDS`` from now or, if the rules allow no dial then
        (the window closes, the day's cap is reached), the first moment they do; False when
        the attempts are used up or no such moment comes.
        """
        entry.callback_attempts += 1
        self.entries.pop(entry.entry_id, None)
        if entry.callback_attempts >= CALLBACK_ATTEMPTS:
            return False
        soonest = self._wall() + timedelta(seconds=CALLBACK_RETRY_SECONDS)
        when: datetime | None = soonest
        if entry.callback_verdict is not None:
            when = next_dial_at(
                entry.callback_verdict, self.callback_rules, soonest, entry.callback_history
            )
        if when is None:
            return False
        self.hold_callback(entry, when)
        return True

    # ---- callback rules ------------------------------------------------------------------

    def reload_calendars(self, calendars: Mapping[str, HolidayCalendar]) -> None:
        """Swap in freshly loaded holiday calendars (start-up, ``sambung reload``, SIGHUP)."""
        c = self.settings.callbacks
        self.callback_rules = callback_rules_of(c, calendars[c.calendar])

    def callback_refused(self, reason: str) -> None:
        self._m.callbacks_refused.labels(reason=reason).inc()

    async def screen_callback(
        self,
        caller_number: str,
        at: datetime,
        *,
        dialled: Sequence[datetime] = (),
        offering: bool = True,
    ) -> CallbackScreen:
        """May ``caller_number`` be called back, and from when? ``dialled``: callback dials
        this engine knows of that PostgreSQL may not have yet.

        ``offering``: deciding whether to offer a callback, where a number already called back
        the day's maximum is refused (``daily_cap``). Before each dial of an accepted callback
        the day's cap only postpones it (the history does that): a caller who was promised a
        callback gets it on the next allowed day rather than never.
        """
        rules = self.callback_rules
        first = check_number(caller_number, rules)
        if not first.ok or first.e164 is None:
            return CallbackScreen(first, (), None, first.reason)
        lookup = self._callback_lookup
        if lookup is None:
            return CallbackScreen(first, (), None, "unchecked")
        try:
            async with asyncio.timeout(CALLBACK_LOOKUP_SECONDS):
                found = await lookup(first.e164, caller_number, at - CALLBACK_HISTORY)
        except (CallbackLookupFailed, TimeoutError) as err:
            # Not checked, not called: the do-not-call list or the caps might forbid it. The
            # number is personal data: only why goes into the log.
            why = err.error_id if isinstance(err, SambungError) else "acd.callback_lookup_timeout"
            log.info("acd.callback_unchecked", reason=why)
            return CallbackScreen(first, (), None, "unchecked")
        history = tuple(sorted({*found.dials, *dialled}))
        today = _local_day_count(history, first.zone or WIB, at) if offering else 0
        verdict = check_number(caller_number, rules, dnc=found.dnc, dialled_today=today)
        if not verdict.ok:
            return CallbackScreen(verdict, history, None, verdict.reason)
        when = next_dial_at(verdict, rules, at, history)
        return CallbackScreen(verdict, history, when, None if when is not None else "no_window")

    def kick(self) -> None:
        """Ask for a routing run soon (once per loop iteration, however often asked)."""
        if self._route_pending:
            return
        self._route_pending = True
        try:
            asyncio.get_running_loop().call_soon(self._route)
        except RuntimeError:
            self._route_pending = False  # no loop (unit tests of the books): nothing to run

    def _route(self) -> None:
        self._route_pending = False
        now = self._clock()
        waiting = [e.for_routing() for e in self.entries.values() if e.state == "waiting"]
        if self._relax_timer is not None:
            self._relax_timer.cancel()
            self._relax_timer = None
        if not waiting:
            return
        ready = self.agents.ready_for_routing()
        matches = routing.route(waiting, ready, self._policies, now) if ready else []
        for m in matches:
            entry = self.entries[m.entry_id]
            agent = self.agents.reserve(m.agent_id, entry.call_id)
            entry.state = "offering"
            entry.agent_id = agent.profile.agent_id
            offer = Offer(
                entry.entry_id,
                agent.profile.agent_id,
                agent.profile.endpoint,
                f"leg-{uuid.uuid4().hex[:20]}",
            )
            log.info(
                "acd.match",
                queue=entry.queue,
                entry=entry.entry_id,
                agent=m.agent_id,
                step=m.step,
                waited=round(now - entry.enqueued_at, 2),
            )
            if entry.inbox is not None:
                entry.inbox.post_local(offer)
            elif self._start_callback is not None:
                self._start_callback(entry, offer)
        nxt = routing.next_change(
            [e.for_routing() for e in self.entries.values() if e.state == "waiting"],
            self._policies,
            now,
        )
        if nxt is not None:
            loop = asyncio.get_running_loop()
            self._relax_timer = loop.call_later(max(0.0, nxt - now) + 0.01, self.kick)

    # ---- metrics ---------------------------------------------------------------------

    def _agent_metrics(self, agent: Agent, change: StateChange) -> None:
        self.refresh_agent_gauges()

    def refresh_agent_gauges(self) -> None:
        # Recounted rather than incremented, so a restore at start-up cannot skew it.
        for state, count in self.agents.counts().items():
            self._m.agents.labels(state=state).set(count)


def _local_day_count(history: Sequence[datetime], zone: str, at: datetime) -> int:
    """Dials in ``history`` on the local day of ``at`` in ``zone``."""
    tz = ZoneInfo(zone)
    day: date = at.astimezone(tz).date()
    return sum(1 for h in history if h.astimezone(tz).date() == day)

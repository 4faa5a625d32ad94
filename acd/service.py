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
"""

from __future__ import annotations

import asyncio
import itertools
import math
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from acd import routing
from acd.agents import Agent, AgentBook, AgentProfile, StateChange
from engine.calls import CallInbox
from engine.config import AcdSettings, QueueSettings
from engine.errors import SambungError
from engine.metrics import Metrics

log = structlog.get_logger(__name__)

HANDLE_SAMPLES = 50
PRIOR_WEIGHT = 3
CALLBACK_ATTEMPTS = 3
CALLBACK_RETRY_SECONDS = 120.0
EXCLUDE_SECONDS = 20.0  # an agent whose phone was busy is not offered the same call this long


class QueueFull(SambungError):
    error_id = "acd.queue_full"
    title = "Queue is full"
    http_status = 409


class UnknownQueue(SambungError):
    error_id = "acd.unknown_queue"
    title = "No such queue"
    http_status = 404


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

    def context(self) -> dict[str, Any]:
        """What the agent sees about the call when it is offered."""
        return {
            "entry_id": self.entry_id,
            "call_id": self.call_id,
            "queue": self.queue,
            "kind": self.kind,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "did": self.did,
            "language": self.language,
            "enqueued_at": self.enqueued_wall.isoformat(),
            "attributes": dict(self.attributes),
        }


def needs_of(
    q: QueueSettings,
) -> tuple[tuple[routing.SkillNeed, ...], tuple[routing.RelaxStep, ...]]:
    needs = tuple(routing.SkillNeed(n.skill, n.min_level) for n in q.needs)
    relax = tuple(
        routing.RelaxStep(
            r.after_seconds, tuple(routing.SkillNeed(n.skill, n.min_level) for n in r.needs)
        )
        for r in q.relax
    )
    return needs, relax


def profiles_of(settings: AcdSettings) -> list[AgentProfile]:
    return [
        AgentProfile(
            agent_id=a.id,
            name=a.name,
            endpoint=a.endpoint,
            skills=tuple(sorted(a.skills.items())),
            queues=frozenset(a.queues),
            team=a.team,
        )
        for a in settings.agents
    ]


class AcdService:
    def __init__(
        self,
        settings: AcdSettings,
        metrics: Metrics,
        clock: Callable[[], float] | None = None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.queues: dict[str, QueueSettings] = {q.name: q for q in settings.queues}
        self._m = metrics
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._wall = wall
        self.agents = AgentBook(profiles_of(settings), self._clock, wall)
        self.agents.on_ready = self.kick
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
        # Set by the engine: start a task that owns a callback (it gets its own inbox).
        self.start_callback: Callable[[Entry, Offer], None] | None = None
        self._ids = itertools.count(1)
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

    def queue(self, name: str) -> QueueSettings:
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
                            **e.context(),
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
            entry_id=f"{call_id}-q{next(self._ids)}",
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
        if outcome != "answered":
            self._release(entry, entry.call_id)
        self.entries.pop(entry.entry_id, None)
        timer = self._delayed.pop(entry.entry_id, None)
        if timer is not None:
            timer.cancel()
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

    def to_callback(self, entry: Entry, callback_id: str) -> None:
        """The caller asked to be called back: the entry keeps its place with no caller."""
        self._release(entry, entry.call_id)
        entry.kind = "callback"
        entry.call_id = callback_id
        entry.inbox = None
        entry.state = "waiting"
        self._m.queue_calls.labels(queue=entry.queue, outcome="callback_requested").inc()
        self.kick()

    def retry_callback_later(self, entry: Entry) -> bool:
        """A callback attempt failed; try again later unless attempts are used up."""
        entry.callback_attempts += 1
        self.entries.pop(entry.entry_id, None)
        if entry.callback_attempts >= CALLBACK_ATTEMPTS:
            return False
        entry.state = "waiting"
        entry.agent_id = None

        def again() -> None:
            self._delayed.pop(entry.entry_id, None)
            self.entries[entry.entry_id] = entry
            self.kick()

        loop = asyncio.get_running_loop()
        self._delayed[entry.entry_id] = loop.call_later(CALLBACK_RETRY_SECONDS, again)
        return True

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
            elif self.start_callback is not None:
                self.start_callback(entry, offer)
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

"""The agents' events: the engine's own subscribers, and each agent's screens.

``publish`` hands a typed event (``acd/events.py``) first to every subscriber of its type, in
the order they subscribed and in the publisher's own call (the call index, the console's call
cards: quick bookkeeping), then to the agent's open screens. Each screen (a WebSocket, a
console page) gets its own bounded queue. A screen that stops reading loses its oldest
messages rather than slowing call handling; every message carries a sequence number so the
screen can tell that it missed some and reload the agent's state from the API.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sambung.acd.events import AgentEvent

SUBSCRIBER_BUFFER = 256

E = TypeVar("E", bound=AgentEvent)


@dataclass(frozen=True, slots=True)
class Delivered:
    """An event as a screen receives it, numbered by the hub (one sequence for all agents)."""

    seq: int
    event: AgentEvent

    def to_wire(self) -> dict[str, Any]:
        return {"seq": self.seq, **self.event.to_wire()}


class AgentHub:
    def __init__(self) -> None:
        self._subscribers: list[Callable[[AgentEvent], None]] = []
        self._screens: dict[str, set[asyncio.Queue[Delivered]]] = defaultdict(set)
        self._seq = itertools.count(1)

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> Callable[[], None]:
        """Call ``handler`` with every event of ``event_type`` (``AgentEvent``: every event),
        for every agent, screens open or not. Returns what ends the subscription."""

        def deliver(event: AgentEvent) -> None:
            if isinstance(event, event_type):
                handler(event)

        self._subscribers.append(deliver)

        def unsubscribe() -> None:
            if deliver in self._subscribers:
                self._subscribers.remove(deliver)

        return unsubscribe

    def open_stream(self, agent_id: str) -> asyncio.Queue[Delivered]:
        """A screen's queue of the agent's events, from now on."""
        q: asyncio.Queue[Delivered] = asyncio.Queue(SUBSCRIBER_BUFFER)
        self._screens[agent_id].add(q)
        return q

    def close_stream(self, agent_id: str, q: asyncio.Queue[Delivered]) -> None:
        self._screens[agent_id].discard(q)

    def publish(self, event: AgentEvent) -> None:
        delivered = Delivered(next(self._seq), event)
        for deliver in list(self._subscribers):
            deliver(event)
        for q in list(self._screens.get(event.agent_id, ())):
            if q.full():
                q.get_nowait()  # drop the oldest; the gap in seq tells the reader
            q.put_nowait(delivered)

"""Per-agent event streams: what an agent's screen hears about (offers, state changes).

Each WebSocket subscriber gets its own bounded queue. A screen that stops reading loses its
oldest messages rather than slowing call handling; every message carries a sequence number so
the screen can tell that it missed some and reload the agent's state from the API.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Callable
from typing import Any

SUBSCRIBER_BUFFER = 256


class AgentHub:
    def __init__(self) -> None:
        self._subs: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._seq = itertools.count(1)
        # Called with every message, subscribers or not (the engine remembers which agent had
        # which call; the console keeps each agent's call card).
        self.taps: list[Callable[[dict[str, Any]], None]] = []

    def subscribe(self, agent_id: str) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_BUFFER)
        self._subs[agent_id].add(q)
        return q

    def unsubscribe(self, agent_id: str, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._subs[agent_id].discard(q)

    def publish(self, agent_id: str, kind: str, **body: Any) -> None:
        msg = {"seq": next(self._seq), "type": kind, "agent_id": agent_id, **body}
        for tap in self.taps:
            tap(msg)
        for q in list(self._subs.get(agent_id, ())):
            if q.full():
                q.get_nowait()  # drop the oldest; the gap in seq tells the reader
            q.put_nowait(msg)

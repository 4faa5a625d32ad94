"""Which agents were offered or connected to which call, and each call's context.

Two questions lean on it: "does this agent act only on their own calls?" (transfer,
disposition, recordings) and "which disposition schema applies?" (the call's queue). It listens
to the agents' events (the offers and connections, which show the call) and remembers the
most recent calls; older ones are asked of PostgreSQL.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import asyncpg

from sambung.acd import store
from sambung.acd.agents import AgentBook
from sambung.acd.events import CallContext, CallShown
from sambung.engine.db import DB_ERRORS
from sambung.engine.errors import DatabaseUnavailable

CALLS_REMEMBERED = 5000


class CallIndex:
    def __init__(
        self, agents: AgentBook, pool: asyncpg.Pool | None = None, size: int = CALLS_REMEMBERED
    ) -> None:
        self._agents = agents
        self.pool = pool  # set once the engine has one
        self._size = size
        self._seen: OrderedDict[str, tuple[CallContext, set[str]]] = OrderedDict()

    def hear(self, event: CallShown) -> None:
        """An agent was offered, or connected to, a call (subscribed to the AgentHub)."""
        call = event.call
        if not call.call_id:
            return
        _, agents = self._seen.pop(call.call_id, (call, set()))
        agents.add(event.agent_id)
        self._seen[call.call_id] = (call, agents)
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)

    def context(self, call_id: str) -> dict[str, Any] | None:
        """The call as its agents last saw it (their screens' ``call``)."""
        seen = self._seen.get(call_id)
        return None if seen is None else seen[0].to_wire()

    async def handled_by(self, call_id: str, agent_id: str) -> bool:
        seen = self._seen.get(call_id)
        if seen is not None and agent_id in seen[1]:
            return True
        agent = self._agents.find(agent_id)
        if agent is not None and agent.call_id == call_id:
            return True
        if self.pool is None:
            return False
        try:
            async with self.pool.acquire() as conn:
                return await store.agent_handled(conn, call_id, agent_id)
        except DB_ERRORS as err:
            raise DatabaseUnavailable(f"cannot check the call's agent: {err}") from err

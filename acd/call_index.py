"""Which agents were offered or connected to which call, and each call's context.

Two questions lean on it: "does this agent act only on their own calls?" (transfer,
disposition, recordings) and "which disposition schema applies?" (the call's queue). It listens
to the agents' event stream and remembers the most recent calls; older ones are asked of
PostgreSQL.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import asyncpg

from acd import store
from acd.agents import AgentBook
from engine.db import DB_ERRORS
from engine.errors import DatabaseUnavailable

CALLS_REMEMBERED = 5000


class CallIndex:
    def __init__(
        self, agents: AgentBook, pool: asyncpg.Pool | None = None, size: int = CALLS_REMEMBERED
    ) -> None:
        self._agents = agents
        self.pool = pool  # set once the engine has one
        self._size = size
        self._seen: OrderedDict[str, tuple[dict[str, Any], set[str]]] = OrderedDict()

    def hear(self, msg: dict[str, Any]) -> None:
        """A message of the agents' event stream (AgentHub tap)."""
        if msg.get("type") not in ("offered", "connected"):
            return
        call = msg.get("call")
        if not isinstance(call, dict) or not call.get("call_id"):
            return
        cid = str(call["call_id"])
        _, agents = self._seen.pop(cid, ({}, set()))
        agents.add(str(msg["agent_id"]))
        self._seen[cid] = (call, agents)
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)

    def context(self, call_id: str) -> dict[str, Any] | None:
        seen = self._seen.get(call_id)
        return None if seen is None else seen[0]

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

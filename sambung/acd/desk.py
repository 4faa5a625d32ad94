"""Saving an agent's disposition, whichever feature the call came from.

A feature that places calls of its own (the dialer) claims its calls first and checks them
against its campaign's schema; any other call is checked against its queue's dispositions when
the queue declares some, or saved as a plain code and note. Either way a disposition on the
agent's current call ends the agent's wrap-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from sambung.acd import dispositions, store
from sambung.acd.agents import AgentState
from sambung.acd.call_index import CallIndex
from sambung.acd.facts import DispositionFact
from sambung.acd.service import AcdService
from sambung.dialer.facts import DialerDispositionFact
from sambung.engine.db import DB_ERRORS
from sambung.engine.errors import NotFound
from sambung.engine.facts import Fact

# (call id, agent id, code, note, details) -> whether the claimant saved it as its own call's.
Claimant = Callable[[str, str, str, str, dict[str, Any]], Awaitable[bool]]


class DispositionDesk:
    def __init__(
        self,
        acd: AcdService,
        index: CallIndex,
        record: Callable[[Fact], None],
        in_queue: Callable[[str], bool],
        pool: asyncpg.Pool | None = None,
    ) -> None:
        self._acd = acd
        self._index = index
        self._record = record
        self._in_queue = in_queue
        self.pool = pool
        self.claimants: list[Claimant] = []

    async def save(
        self,
        call_id: str,
        agent_id: str,
        code: str,
        note: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        agent = self._acd.agents.get(agent_id)
        for claim in self.claimants:
            if await claim(call_id, agent_id, code, note, details or {}):
                self._end_wrap_up(agent_id, call_id)
                return
        if not await self._known(call_id):
            raise NotFound(f"no call with id {call_id!r}")
        now = datetime.now(UTC)
        context = self._index.context(call_id) or await self._answered_from(call_id, agent_id)
        queue = self._acd.queues.get(str(context.get("queue", "")))
        if queue is not None and queue.dispositions:
            checked = dispositions.check(
                dispositions.find(queue.dispositions, code, f"queue {queue.name!r}"),
                details or {},
                now,
                now.date(),
            )
            attrs = context.get("attributes") or {}
            self._record(
                DialerDispositionFact(
                    call_id,
                    agent_id,
                    code,
                    note,
                    now,
                    None,
                    attrs.get("account") or attrs.get("account_id"),
                    None if checked.amount is None else str(checked.amount),
                    None if checked.promise_date is None else checked.promise_date.isoformat(),
                    checked.callback_at,
                    checked.code.right_party,
                )
            )
        else:
            self._record(DispositionFact(call_id, agent_id, code, note, now))
        if agent.state is AgentState.WRAP_UP and agent.call_id == call_id:
            self._end_wrap_up(agent_id, call_id)

    def _end_wrap_up(self, agent_id: str, call_id: str) -> None:
        # The disposition is the wrap-up's end.
        agent = self._acd.agents.get(agent_id)
        if agent.state is AgentState.WRAP_UP and agent.call_id == call_id:
            self._acd.agents.end_wrap_up(agent_id, "api")

    async def _known(self, call_id: str) -> bool:
        if self._in_queue(call_id):
            return True
        if self.pool is None:
            return True  # nothing to ask yet: the fact waits in the writer like any other
        try:
            async with self.pool.acquire() as conn:
                return await store.call_known(conn, call_id)
        except DB_ERRORS:
            # The database is away: the fact waits in the writer's queue, as every fact does;
            # only a call we have never heard of is refused.
            return True

    async def _answered_from(self, call_id: str, agent_id: str) -> dict[str, Any]:
        """The queue a call was answered from, when it is older than the calls remembered."""
        if self.pool is None:
            return {}
        try:
            async with self.pool.acquire() as conn:
                queue = await store.answered_from(conn, call_id, agent_id)
        except DB_ERRORS:
            return {}
        return {} if queue is None else {"queue": queue}

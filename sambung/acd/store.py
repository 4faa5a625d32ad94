"""The ACD's SQL reads. (Its writes are facts: ``acd/facts.py``.)"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import asyncpg

from sambung.dialer.store import dnc_hits
from sambung.engine.db import Conn


async def callback_history(
    conn: Conn, e164: str, forms: Iterable[str], since: datetime
) -> tuple[frozenset[str], tuple[datetime, ...]]:
    """The do-not-call entries for ``e164`` and the callback dials to the number since
    ``since``, oldest first.

    A callback's ``calls`` row keeps the customer's number in ``caller_number``: as E.164
    digits now, as the caller id came in before, so every form the number was written in
    (``forms``) is looked for.
    """
    dnc = await dnc_hits(conn, [e164], [])
    rows = await conn.fetch(
        """SELECT started_at FROM calls
           WHERE direction = 'callback' AND caller_number = ANY($1) AND started_at >= $2
           ORDER BY started_at""",
        sorted({e164, *forms}),
        since,
    )
    return frozenset(dnc), tuple(r["started_at"] for r in rows)


async def last_agent_states(conn: Conn) -> list[tuple[str, str, str, datetime]]:
    """Each agent's latest recorded state: (agent id, state, reason, since)."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (agent_id) agent_id, state, reason, at
           FROM agent_states ORDER BY agent_id, at DESC, seq DESC"""
    )
    return [(r["agent_id"], r["state"], r["reason"], r["at"]) for r in rows]


async def agent_handled(conn: Conn, call_id: str, agent_id: str) -> bool:
    """Whether the agent had a leg of the call, or a dialer line was put through to them."""
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM call_legs WHERE call_id = $1 AND agent_id = $2)
                   OR EXISTS (SELECT 1 FROM dial_attempts WHERE call_id = $1 AND agent_id = $2)""",
            call_id,
            agent_id,
        )
    )


async def call_known(conn: Conn, call_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM calls WHERE call_id = $1", call_id))


async def answered_from(conn: Conn, call_id: str, agent_id: str) -> str | None:
    """The queue the agent answered the call from (its latest entry with that agent)."""
    queue = await conn.fetchval(
        """SELECT queue FROM queue_entries WHERE call_id = $1 AND agent_id = $2
           ORDER BY enqueued_at DESC LIMIT 1""",
        call_id,
        agent_id,
    )
    return None if queue is None else str(queue)


async def caller_context(
    conn: Conn, call_id: str
) -> tuple[str, str, str, dict[str, str] | None] | None:
    """What the engine that took a call in knew of its caller, for an engine taking the call
    over: (number, name, DID, the IVR's kept attributes or None without an IVR session); None
    when the call has no row (yet)."""
    row = await conn.fetchrow(
        """SELECT c.caller_number, c.caller_name, c.did, s.attributes
           FROM calls c LEFT JOIN ivr_sessions s USING (call_id) WHERE c.call_id = $1""",
        call_id,
    )
    if row is None:
        return None
    raw = row["attributes"]
    attributes = None
    if raw is not None:
        data = json.loads(raw) if isinstance(raw, str) else raw
        attributes = {str(k): str(v) for k, v in dict(data).items()}
    return row["caller_number"] or "", row["caller_name"] or "", row["did"] or "", attributes


async def callback_talk(
    conn: Conn, agent_leg: str
) -> tuple[datetime | None, str | None, str | None] | None:
    """When a callback's agent answered, the callback's queue and entry, for an engine taking
    the talk over; None when the leg has no row (yet)."""
    row = await conn.fetchrow(
        """SELECT l.answered_at, e.queue, l.entry_id FROM call_legs l
           LEFT JOIN queue_entries e USING (entry_id) WHERE l.leg_id = $1""",
        agent_leg,
    )
    if row is None:
        return None
    return row["answered_at"], row["queue"], row["entry_id"]


async def pending_callbacks(conn: Conn) -> list[asyncpg.Record]:
    """The callbacks no engine has made or given up yet, oldest place first."""
    return list(
        await conn.fetch(
            """SELECT entry_id, callback_id, queue, priority, first_enqueued_at, enqueued_at,
                      caller_number, caller_name, did, language, not_before, attempts
               FROM pending_callbacks WHERE settled_at IS NULL
               ORDER BY first_enqueued_at, entry_id"""
        )
    )

"""The IVR's SQL beyond the facts it appends (``engine/facts.py`` writes those)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from sambung.engine.db import Conn

# Which step records hold digits a caller entered: an input's ``input`` and ``invalid``
# (choice: the digits). A menu's keys (``option``, ``repeat``, ``zero_out``, and ``invalid``
# of one key) are single characters that say nothing about the caller: they stay for the path
# analysis; so does a one-digit invalid input, for the same reason.
_FORGET_DIGITS = """
    UPDATE ivr_steps SET choice = NULL
     WHERE at < $1
       AND choice IS NOT NULL
       AND (kind = 'input' OR (kind = 'invalid' AND length(choice) > 1))
"""

# What a session's attributes keep once its time is up: the keys that say how the call went,
# not who called or what they said. The rest (the caller's number and name, inputs, CRM
# lookups) is personal data kept only as long as the entered digits are.
KEPT_ATTRIBUTES = ("language", "did")
_FORGET_ATTRIBUTES = """
    UPDATE ivr_sessions
       SET attributes = (SELECT coalesce(jsonb_object_agg(key, value), '{}'::jsonb)
                           FROM jsonb_each(attributes) WHERE key = ANY($2::text[]))
     WHERE started_at < $1
       AND EXISTS (SELECT 1 FROM jsonb_object_keys(attributes) AS k
                    WHERE k <> ALL($2::text[]))
"""


async def forget_entered_digits(db: asyncpg.Pool | Conn, before: datetime) -> int:
    """Blank the digits of every step record older than ``before``; the rows stay (paths and
    counts still add up). Returns how many were blanked."""
    status = await db.execute(_FORGET_DIGITS, before)
    return int(status.rsplit(" ", 1)[1])  # "UPDATE <n>"


async def forget_session_attributes(db: asyncpg.Pool | Conn, before: datetime) -> int:
    """Drop all but ``KEPT_ATTRIBUTES`` from sessions that started before ``before``.
    Returns how many sessions lost some."""
    status = await db.execute(_FORGET_ATTRIBUTES, before, list(KEPT_ATTRIBUTES))
    return int(status.rsplit(" ", 1)[1])  # "UPDATE <n>"


_OPEN_SESSION = """
    SELECT s.flow, s.live_state::text AS live_state,
           (SELECT max(seq) FROM ivr_steps WHERE call_id = s.call_id) AS steps_seq
      FROM ivr_sessions s
     WHERE s.call_id = $1 AND s.ended_at IS NULL
"""


@dataclass(frozen=True, slots=True)
class OpenSession:
    flow: str
    live_state: str | None  # ``ivr_sessions.live_state`` as JSON text; None: never written
    steps_seq: int  # its highest step record


async def open_session(db: asyncpg.Pool | Conn, call_id: str) -> OpenSession | None:
    """The call's IVR session if it is still open (None: no session, or it ended)."""
    row = await db.fetchrow(_OPEN_SESSION, call_id)
    if row is None:
        return None
    return OpenSession(row["flow"], row["live_state"], int(row["steps_seq"] or 0))

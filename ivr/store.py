"""The IVR's SQL beyond the facts it appends (``engine/facts.py`` writes those)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from engine.db import Conn

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


async def forget_entered_digits(db: asyncpg.Pool | Conn, before: datetime) -> int:
    """Blank the digits of every step record older than ``before``; the rows stay (paths and
    counts still add up). Returns how many were blanked."""
    status = await db.execute(_FORGET_DIGITS, before)
    return int(status.rsplit(" ", 1)[1])  # "UPDATE <n>"

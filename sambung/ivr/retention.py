"""Entered digits are kept ``[ivr] digits_retention_days``, then blanked in ``ivr_steps``; the
IVR sessions' attributes (the caller's number and name, inputs, CRM lookups) go at the same
age, keeping only the language and the number dialled.

Account numbers keyed by callers serve the path analysis and disputes for a while; kept for
ever they are personal data nobody needs. The job runs when the engine starts and then once a
day (an engine restarted often still runs it); a database that is down is tried again sooner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from sambung.engine.db import DB_ERRORS
from sambung.ivr.store import forget_entered_digits, forget_session_attributes

log = structlog.get_logger(__name__)

DAY_SECONDS = 86_400.0
RETRY_SECONDS = 300.0
_DB_DOWN = DB_ERRORS  # TimeoutError is an OSError, so a timeout is in it too


async def run_digits_retention(
    pool: asyncpg.Pool,
    days: int,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    every_seconds: float = DAY_SECONDS,
    retry_seconds: float = RETRY_SECONDS,
) -> None:
    """Blank digits older than ``days`` now, then every ``every_seconds``; runs until
    cancelled. ``days`` of 0 keeps them for ever (the engine then does not start this)."""
    while True:
        wait = every_seconds
        try:
            before = clock() - timedelta(days=days)
            blanked = await forget_entered_digits(pool, before)
            sessions = await forget_session_attributes(pool, before)
            log.info(
                "ivr.digits_retention", blanked=blanked, sessions=sessions, older_than_days=days
            )
        except _DB_DOWN as err:
            log.warning("ivr.digits_retention_failed", error=type(err).__name__)
            wait = min(every_seconds, retry_seconds)
        await asyncio.sleep(wait)

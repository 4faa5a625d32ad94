"""The engine's start order and its staged shutdown, and the database watch.

Start-up: metrics -> database pool (lazy, so a database that is briefly down does not stop
calls) -> schema check -> fact writer (replaying its spool) -> the features -> HTTP -> the ARI
event stream -> AMI. The features start in dependency order: recordings (the ACD tells it when
talks start), the ACD (agents take back their states), the dialer (on the ACD's queues), the
IVR (handing callers to the ACD's queues).

Shutdown is staged, the reverse of the work's dependencies: stop dialling -> stop taking new
calls -> hand waiting callers over to the next engine (``[engine] on_stop = "handover"``, the
default: they stay in their queue's holding bridge with their place, see acd/place.py) -> let
live calls finish (bounded by ``drain_timeout_seconds``) -> hang up what is left -> stop
recordings and monitoring -> close ARI and AMI -> write the remaining facts (those
PostgreSQL does not take in time stay in the spool, where every fact already is) -> cancel
background work; the exit stack then closes HTTP and the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from sambung.dialer.feature import Dialer
from sambung.engine import db
from sambung.engine.calls import CallDispatcher
from sambung.engine.db import DB_ERRORS
from sambung.engine.errors import SambungError
from sambung.engine.facts import FactWriter
from sambung.engine.metrics import Metrics
from sambung.engine.tasks import TaskSet
from sambung.recordings import Recordings

log = structlog.get_logger(__name__)

DB_CHECK_SECONDS = 5.0


class SchemaBehind(SambungError):
    error_id = "db.schema_behind"
    title = "Database schema is behind"


async def check_schema(pool: asyncpg.Pool) -> bool:
    """Refuse to run on a schema older than the code; True when the database answered."""
    try:
        async with pool.acquire() as conn:
            pending = await db.pending_migrations(conn)
    except DB_ERRORS as err:
        log.warning("db.unreachable_at_start", error=str(err))
        return False
    if pending:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in pending)
        raise SchemaBehind(f"pending migrations ({names}): run 'sambung migrate' first")
    return True


async def watch_database(pool: asyncpg.Pool, metrics: Metrics, up: Callable[[bool], None]) -> None:
    """Ask PostgreSQL every few seconds; readiness and ``sambung_db_up`` follow the answer."""
    was_ok: bool | None = None
    while True:
        try:
            async with asyncio.timeout(2):
                await pool.fetchval("SELECT 1")
            ok = True
        except DB_ERRORS:  # TimeoutError is an OSError
            ok = False
        up(ok)
        metrics.db_up.set(1 if ok else 0)
        if ok != was_ok:
            log.log(20 if ok else 40, "db.up" if ok else "db.down")
            was_ok = ok
        await asyncio.sleep(DB_CHECK_SECONDS)


async def staged_shutdown(
    *,
    dialer: Dialer,
    dispatcher: CallDispatcher,
    drain_timeout: float,
    recordings: Recordings | None,
    adapters: list[asyncio.Task[Any] | None],
    facts: FactWriter,
    services: TaskSet,
    let_go: Callable[[], Awaitable[None]],
    hand_over: Callable[[], int] | None = None,
) -> None:
    """``hand_over``: leave callers in queues, talks and flows to the next engine (None:
    drain them too). ``let_go``: tell Asterisk that no engine drives its calls any more, once
    this one has handed them over or ended them, while Asterisk is still connected."""
    log.info("engine.stopping", stage="stop_dialing", lines=len(dispatcher.tasks))
    await dialer.service.stop()
    log.info("engine.stopping", stage="stop_new_calls", active=len(dispatcher.tasks))
    dispatcher.accepting = False
    if hand_over is not None:
        log.info("engine.stopping", stage="hand_over", callers=hand_over())
        # The talks handed over have no driver from here on, while the drain below may take
        # its whole timeout: Asterisk's talk guard takes them now.
        await let_go()
    drained = await dispatcher.drain(drain_timeout)
    if not drained:
        log.warning("engine.stopping", stage="hangup_remaining", left=len(dispatcher.tasks))
        await dispatcher.tasks.cancel_all()
    if hand_over is None:
        await let_go()
    if recordings is not None:
        # Recordings stopped and journalled; monitoring ended, or left with the talks.
        await recordings.close(hand_over=hand_over is not None)
    log.info("engine.stopping", stage="close_adapters")
    for t in adapters:
        if t is not None:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
    log.info("engine.stopping", stage="write_facts", pending=facts.pending)
    await facts.drain(timeout=5.0)
    await services.cancel_all()
    log.info("engine.stopped")

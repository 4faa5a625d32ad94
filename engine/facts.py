"""Durable facts and the writer that puts them in PostgreSQL without blocking call control.

Call tasks hand facts to ``FactWriter.record`` (synchronous, never waits on the database). One
consumer task writes them in order; when PostgreSQL is down it retries with capped backoff and
keeps the order, so a later fact never overtakes an earlier one about the same call. Every
statement is idempotent (insert-if-absent, update-if-still-open), which makes a retry after an
ambiguous failure, or a replay from the spool file, safe. At shutdown whatever could not be
written is spilled to a JSON-lines spool file and replayed at the next start: nothing is lost.

``record`` is also the one place every call's start and end pass through, whichever feature
carried the call, so it notes them in the recording task's ``CallTrace`` (see ``trace_call``):
the dispatcher counts the call from that when the call's task ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import asyncpg
import structlog

from engine.metrics import Metrics

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Fact:
    sql: ClassVar[str] = ""

    def args(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))


@dataclass(frozen=True, slots=True)
class CallStartedFact(Fact):
    sql = """INSERT INTO calls (call_id, direction, channel_name, did, caller_number,
                 caller_name, hotline, asterisk_id, engine_instance, started_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (call_id) DO NOTHING"""
    call_id: str
    direction: str
    channel_name: str
    did: str
    caller_number: str
    caller_name: str
    hotline: str | None
    asterisk_id: str
    engine_instance: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class CallAnsweredFact(Fact):
    sql = "UPDATE calls SET answered_at = $2 WHERE call_id = $1 AND answered_at IS NULL"
    call_id: str
    answered_at: datetime


@dataclass(frozen=True, slots=True)
class CallEndedFact(Fact):
    sql = """UPDATE calls SET ended_at = $2, end_reason = $3, hangup_cause = $4,
                 hangup_cause_text = $5, sip_code = $6
             WHERE call_id = $1 AND ended_at IS NULL"""
    call_id: str
    ended_at: datetime
    end_reason: str
    hangup_cause: int | None
    hangup_cause_text: str | None
    sip_code: int | None


@dataclass(frozen=True, slots=True)
class OpenCallsClosedFact(Fact):
    """Close every call an engine instance left open, except the ones still alive."""

    sql = """WITH closed AS (
                 UPDATE calls SET ended_at = $3, end_reason = $4
                 WHERE engine_instance = $1 AND ended_at IS NULL
                   AND NOT (call_id = ANY($2::text[]))
                 RETURNING call_id)
             UPDATE ivr_sessions s SET ended_at = $3, outcome = 'lost', end_reason = $4
             FROM closed WHERE s.call_id = closed.call_id AND s.ended_at IS NULL"""
    engine_instance: str
    keep_call_ids: list[str]
    ended_at: datetime
    end_reason: str


@dataclass(frozen=True, slots=True)
class IvrSessionStartedFact(Fact):
    sql = """INSERT INTO ivr_sessions (call_id, flow, flow_version, started_at, language)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (call_id) DO NOTHING"""
    call_id: str
    flow: str
    flow_version: str
    started_at: datetime
    language: str


@dataclass(frozen=True, slots=True)
class IvrStepFact(Fact):
    sql = """INSERT INTO ivr_steps (call_id, seq, at, node, kind, choice)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (call_id, seq) DO NOTHING"""
    call_id: str
    seq: int
    at: datetime
    node: str
    kind: str
    choice: str | None


@dataclass(frozen=True, slots=True)
class IvrSessionEndedFact(Fact):
    sql = """UPDATE ivr_sessions SET ended_at = $2, outcome = $3, end_reason = $4,
                 last_node = $5, language = $6, attributes = $7::jsonb
             WHERE call_id = $1 AND ended_at IS NULL"""
    call_id: str
    ended_at: datetime
    outcome: str
    end_reason: str
    last_node: str
    language: str
    attributes_json: str


@dataclass(slots=True)
class CallTrace:
    """What a call's own facts said about it while its task ran: direction, start and end.

    Filled in by ``FactWriter.record`` (first start and first end win, as in the calls row,
    whose statements only fill what is still empty); read by the dispatcher when the task ends.
    """

    call_id: str
    direction: str | None = None
    started_at: datetime | None = None
    end_reason: str | None = None
    ended_at: datetime | None = None
    # How the call's IVR session ended, (end reason, outcome), if it had one: a flow's own
    # hang-up reasons (after_hours...) are named in flow files, so only the IVR can tell them.
    ivr_end: tuple[str, str] | None = None

    def note(self, fact: Fact) -> None:
        match fact:
            case CallStartedFact(call_id=cid) if cid == self.call_id:
                if self.started_at is None:
                    self.direction, self.started_at = fact.direction, fact.started_at
            case CallEndedFact(call_id=cid) if cid == self.call_id:
                if self.end_reason is None:
                    self.end_reason, self.ended_at = fact.end_reason, fact.ended_at
            case IvrSessionEndedFact(call_id=cid) if cid == self.call_id:
                self.ivr_end = (fact.end_reason, fact.outcome)
            case _:
                pass


# A context variable, not an argument: features hand facts to whatever ``record`` they were
# given, so the call task's context is what ties a recorded fact to the call being traced. Tasks
# a call task starts (IVR lookups) inherit it; facts recorded outside call tasks (spool replay,
# open calls closed at start-up) are not traced.
_TRACE: contextvars.ContextVar[CallTrace | None] = contextvars.ContextVar(
    "sambung_call_trace", default=None
)


def trace_call(call_id: str) -> CallTrace:
    """From now on, facts the current task records about ``call_id`` are noted in the result.

    Only for the task that owns the call: the setting lasts as long as the task's context.
    """
    trace = CallTrace(call_id)
    _TRACE.set(trace)
    return trace


_FACT_TYPES: dict[str, type[Fact]] = {
    t.__name__: t
    for t in (
        CallStartedFact,
        CallAnsweredFact,
        CallEndedFact,
        OpenCallsClosedFact,
        IvrSessionStartedFact,
        IvrStepFact,
        IvrSessionEndedFact,
    )
}


def register_facts(*types: type[Fact]) -> None:
    """Make a feature's facts known to the spool reader (features own their facts)."""
    for t in types:
        _FACT_TYPES[t.__name__] = t


def fact_to_json(fact: Fact) -> str:
    body: dict[str, Any] = {}
    for f in dataclasses.fields(fact):
        v = getattr(fact, f.name)
        body[f.name] = {"$dt": v.isoformat()} if isinstance(v, datetime) else v
    return json.dumps({"type": type(fact).__name__, "fields": body}, separators=(",", ":"))


def fact_from_json(line: str) -> Fact:
    data = json.loads(line)
    cls = _FACT_TYPES[data["type"]]
    fields = {
        k: datetime.fromisoformat(v["$dt"]) if isinstance(v, dict) and "$dt" in v else v
        for k, v in data["fields"].items()
    }
    return cls(**fields)


class FactWriter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: Metrics,
        spool_file: Path,
        retry_max_seconds: float = 10.0,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._spool = spool_file
        self._retry_max = retry_max_seconds
        self._queue: asyncio.Queue[Fact] = asyncio.Queue()
        self._in_hand: Fact | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._db_ok = True

    @property
    def pending(self) -> int:
        return self._queue.qsize() + (1 if self._in_hand is not None else 0)

    @property
    def database_ok(self) -> bool:
        return self._db_ok

    def record(self, fact: Fact) -> None:
        trace = _TRACE.get()
        if trace is not None:
            trace.note(fact)
        self._enqueue(fact)

    def _enqueue(self, fact: Fact) -> None:
        self._queue.put_nowait(fact)
        self._idle.clear()
        self._metrics.db_pending_writes.set(self.pending)

    def replay_spool(self) -> int:
        """Queue the facts a previous run could not write, ahead of anything new."""
        if not self._spool.exists():
            return 0
        lines = [ln for ln in self._spool.read_text("utf-8").splitlines() if ln.strip()]
        for ln in lines:
            # Not through ``record``: the run that made these facts has counted its calls.
            self._enqueue(fact_from_json(ln))
        # The facts are in memory now; if this run dies they are spilled again on shutdown.
        self._spool.unlink()
        log.info("facts.spool_replayed", count=len(lines), file=str(self._spool))
        return len(lines)

    async def run(self) -> None:
        try:
            while True:
                self._in_hand = await self._queue.get()
                await self._write_with_retry(self._in_hand)
                self._in_hand = None
                self._metrics.db_pending_writes.set(self.pending)
                if self._queue.empty():
                    self._idle.set()
        finally:
            self._spill()

    async def drain(self, timeout: float) -> bool:
        """Wait until every recorded fact is written; False if the time ran out."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _write_with_retry(self, fact: Fact) -> None:
        delay = 0.1
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                async with self._pool.acquire() as conn:
                    await conn.execute(fact.sql, *fact.args())
            except (
                OSError,
                asyncpg.PostgresConnectionError,
                asyncpg.InterfaceError,
                asyncpg.CannotConnectNowError,
                TimeoutError,
            ) as err:
                attempt += 1
                self._metrics.db_write_retries.inc()
                if self._db_ok:
                    log.warning("facts.database_unavailable", error=str(err), pending=self.pending)
                self._db_ok = False
                self._metrics.db_up.set(0)
                await asyncio.sleep(random.uniform(0, delay))
                delay = min(delay * 2, self._retry_max)
                continue
            except asyncpg.PostgresError as err:
                # A fact the database refuses (constraint, type) will never succeed: keep it in
                # the spool for a person to look at instead of blocking every later fact.
                log.error("facts.rejected", fact=type(fact).__name__, error=str(err))
                self._append_spool([fact], suffix=".rejected")
                return
            self._metrics.db_write_latency.observe(time.perf_counter() - started)
            if not self._db_ok:
                log.info("facts.database_back", retries=attempt, pending=self.pending)
            self._db_ok = True
            self._metrics.db_up.set(1)
            return

    def _spill(self) -> None:
        left: list[Fact] = []
        if self._in_hand is not None:
            left.append(self._in_hand)
            self._in_hand = None
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
        if left:
            self._append_spool(left)
            log.warning("facts.spilled", count=len(left), file=str(self._spool))
        self._metrics.db_pending_writes.set(0)

    def _append_spool(self, facts: list[Fact], suffix: str = "") -> None:
        path = self._spool.with_name(self._spool.name + suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            for f in facts:
                fh.write(fact_to_json(f) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

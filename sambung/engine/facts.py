"""Durable facts and the writer that puts them in PostgreSQL without blocking call control.

Call tasks hand facts to ``FactWriter.record`` (synchronous, never waits on the database or
the disk). Each fact is first appended to the spool, a local write-ahead file: a thread of its
own writes what arrived since its last round and fsyncs it once for all of them, so a fact is
on disk within about one fsync of being recorded, and from then on it counts whatever happens
to the process (``durable`` waits for that). One consumer task writes facts from the spool to
PostgreSQL in order, in batches, one transaction each; only then are they dropped from the
spool. A later fact never overtakes an earlier one about the same call.

A crash between a commit and the spool catching up would replay committed facts. So every
engine start opens a new spool generation, numbers its facts, and each batch moves that
generation's mark (``fact_spool_marks``) in its own transaction: at start the writer replays
the spool first and skips what the marks say is in. Every fact lands exactly once, whatever
its statement (most are idempotent too: insert-if-absent, update-if-still-open).

Errors are sorted by SQLSTATE (``engine.db.classify_error``): a database that is away, busy,
read-only after a failover, or a deadlock is retried with capped backoff and the batch waits
in the spool; only a row the database refuses for its values is set aside, alone, in the
dead-letter file next to the spool (``<spool>.rejected``), counted and logged.

``record`` is also the one place every call's start and end pass through, whichever feature
carried the call, so it notes them in the recording task's ``CallTrace`` (see ``trace_call``):
the dispatcher counts the call from that when the call's task ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import json
import os
import random
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import asyncpg
import structlog

from sambung.engine import db
from sambung.engine.metrics import Metrics

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
    """Close every call an engine instance left open, except the ones still alive. No
    instance (``None``): every engine's, for the engine that took the lease over (with a hot
    standby only the lease holder drives calls, so an open row nobody took over is dead).

    Their IVR sessions close with them, and with ``close_legs`` their agents' legs too (at an
    engine's start: no task of this process will end them). A leg that was answered keeps
    ``answered`` (the talk happened) with no talk time: it ended while no engine watched, so
    its length is not known, and a guess would skew the agent's figures. A leg never answered
    is ``lost``. Not after an Asterisk restart: the calls' own tasks are still there and end
    their legs with the figures they know."""

    sql = """WITH closed AS (
                 UPDATE calls SET ended_at = $3, end_reason = $4
                 WHERE ($1::text IS NULL OR engine_instance = $1) AND ended_at IS NULL
                   AND NOT (call_id = ANY($2::text[]))
                 RETURNING call_id),
             legs AS (
                 UPDATE call_legs l SET ended_at = $3,
                     outcome = CASE WHEN l.answered_at IS NULL THEN 'lost' ELSE 'answered' END
                 FROM closed WHERE $5 AND l.call_id = closed.call_id AND l.ended_at IS NULL)
             UPDATE ivr_sessions s SET ended_at = $3, outcome = 'lost', end_reason = $4,
                 live_state = NULL
             FROM closed WHERE s.call_id = closed.call_id AND s.ended_at IS NULL"""
    engine_instance: str | None
    keep_call_ids: list[str]
    ended_at: datetime
    end_reason: str
    close_legs: bool = True


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
class IvrLiveStateFact(Fact):
    """What a session knows at the node its caller reached (ivr/resume.py, ``LiveState``).
    A later step's state never gives way to an earlier one replayed out of order."""

    sql = """UPDATE ivr_sessions SET live_state = $3::jsonb
             WHERE call_id = $1 AND ended_at IS NULL
               AND (live_state IS NULL OR (live_state->>'seq')::int <= $2)"""
    call_id: str
    seq: int
    state_json: str


@dataclass(frozen=True, slots=True)
class IvrSessionEndedFact(Fact):
    sql = """UPDATE ivr_sessions SET ended_at = $2, outcome = $3, end_reason = $4,
                 last_node = $5, language = $6, attributes = $7::jsonb, live_state = NULL
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
        IvrLiveStateFact,
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


# ---- the spool: a write-ahead log of facts --------------------------------------------------
#
# One line per entry: eight hex digits of the CRC-32 of the body, a space, the body, "\n".
#   G <generation>          the facts after this line belong to that generation
#   F <seq> <fact JSON>     one fact, numbered from 1 within its generation
# A crash can cut the last append short; that line fails its checksum (or lacks its newline
# and its checksum) and is skipped: its fsync never returned, so it never counted. Plain JSON
# lines (the spool of earlier versions, which wrote only at shutdown) are read too.

# How long the spool thread waits for work before it ends (a new fact starts it again).
_SPOOL_IDLE_SECONDS = 2.0
_COPY_CHUNK = 1 << 20


def _frame(body: str) -> bytes:
    raw = body.encode("utf-8")
    return b"%08x %s\n" % (zlib.crc32(raw), raw)


def _unframe(line: bytes) -> str | None:
    """The body of one spool line, or None when the line is torn or damaged."""
    if len(line) < 10 or line[8:9] != b" " or line[:8].strip(b"0123456789abcdef"):
        return None
    body = line[9:]
    if zlib.crc32(body) != int(line[:8], 16):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass(slots=True)
class SpoolContents:
    # (generation, seq, fact JSON) in file order, each (generation, seq) once.
    records: list[tuple[str, int, str]]
    # Every generation the file names, with facts or without.
    generations: list[str]
    torn_tail: bool = False  # the last line was cut short: a crash in the middle of an append
    damaged: int = 0  # complete lines that fail their checksum, or facts outside a generation
    legacy: int = 0  # plain JSON lines from a spool of an earlier version


def read_spool(data: bytes) -> SpoolContents:
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline, as every finished append does
    out = SpoolContents([], [])
    seen: set[tuple[str, int]] = set()
    gen: str | None = None
    legacy_gen: str | None = None
    for i, line in enumerate([*lines, tail] if tail else lines):
        last = bool(tail) and i == len(lines)
        if not line.strip():
            continue
        if line.startswith(b"{"):
            try:
                json.loads(line)
            except ValueError:
                if last:
                    out.torn_tail = True
                else:
                    out.damaged += 1
                continue
            if legacy_gen is None:
                legacy_gen = uuid.uuid4().hex
                out.generations.append(legacy_gen)
            out.legacy += 1
            out.records.append((legacy_gen, out.legacy, line.decode("utf-8")))
            continue
        body = _unframe(line)
        if body is None:
            if last:
                out.torn_tail = True
            else:
                out.damaged += 1
            continue
        kind, _, rest = body.partition(" ")
        if kind == "G" and rest:
            gen = rest
            if gen not in out.generations:
                out.generations.append(gen)
            continue
        seq_text, _, fact_json = rest.partition(" ")
        if kind != "F" or gen is None or not seq_text.isdigit() or not fact_json:
            out.damaged += 1
            continue
        key = (gen, int(seq_text))
        if key not in seen:  # an append retried after a failed fsync may repeat lines
            seen.add(key)
            out.records.append((gen, key[1], fact_json))
    return out


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Spool:
    """The spool file, appended and compacted by one thread of its own.

    The event loop hands it framed lines (``append``) and tells it how far PostgreSQL has
    committed (``committed``); the thread writes what came in since its last round in one
    write and one fdatasync (group commit: the busier it is, the more facts share an fsync),
    then drops committed lines: by truncating the file when nothing is left, or by rewriting
    it once the committed part is at least half the file and ``compact_bytes`` long. ``wake``
    is called (from the thread) after each round.

    A generation whose facts have all left the file is reported (``take_retired``) so its mark
    can be deleted; its ``G`` line stays in the file until the loop says the mark is gone
    (``marks_deleted``), so a run that dies first leaves the next run a name to delete.
    """

    def __init__(self, path: Path, wake: Callable[[], None], compact_bytes: int) -> None:
        self.path = path
        self._wake = wake
        self._compact_bytes = compact_bytes
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        # Shared with the loop, under _cond.
        self._queue: list[tuple[int, str, bytes]] = []
        self._appended_n = 0
        self._committed_n = 0
        self._settled_n = 0  # commits the file has caught up with (compacted)
        self._retired: list[str] = []
        self._deleted: set[str] = set()
        self._closing = False
        # Read by the loop without the lock (an int, set by the thread only).
        self.durable_n = 0
        self.failing = False
        # The thread's own (and open()'s, before any thread runs).
        self.gen = ""
        self._header = b""
        self._fd = -1
        self._size = 0
        self._entries: deque[tuple[int, str, int]] = deque()  # (n, generation, end offset)
        self._cut = 0  # end of the last committed line still in the file
        self._forgotten_n = 0
        self._emptied: set[str] = set()  # no facts left in the file; their marks may remain
        self._named: set[str] = set()  # the generations the file has a line for

    # ---- the loop's side ----------------------------------------------------------------

    def open(self) -> tuple[list[tuple[int, str, int, str]], list[str], SpoolContents]:
        """Read what a previous run left, start a new generation; the facts to replay
        (n, generation, seq, JSON) and the generations no longer in the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = self.path.read_bytes() if self.path.exists() else b""
        contents = read_spool(data)
        self.gen = uuid.uuid4().hex
        self._header = _frame(f"G {self.gen}")
        kept = {gen for gen, _, _ in contents.records}
        self._emptied = {g for g in contents.generations if g not in kept}
        out = bytearray(self._emptied_lines())
        loaded: list[tuple[int, str, int, str]] = []
        current: str | None = None
        for gen, seq, body in contents.records:
            if gen != current:
                out += _frame(f"G {gen}")
                current = gen
            out += _frame(f"F {seq} {body}")
            loaded.append((len(loaded) + 1, gen, seq, body))
            self._entries.append((len(loaded), gen, len(out)))
        out += self._header
        # Rewritten whole: a torn tail, damaged lines and plain JSON lines are gone, and this
        # run's appends start on a clean line.
        self._replace(bytes(out))
        self.durable_n = self._appended_n = len(loaded)
        self._named = kept | self._emptied | {self.gen}
        return loaded, sorted(self._emptied), contents

    def append(self, n: int, gen: str, line: bytes) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("the fact spool is closed")
            self._queue.append((n, gen, line))
            self._appended_n = n
            self._start()
            self._cond.notify()

    def committed(self, n: int) -> None:
        with self._cond:
            self._committed_n = max(self._committed_n, n)
            self._start()
            self._cond.notify()

    def take_retired(self) -> list[str]:
        with self._cond:
            out, self._retired = self._retired, []
            return out

    def marks_deleted(self, gens: list[str]) -> None:
        with self._cond:
            self._deleted.update(gens)

    def flush(self, timeout: float) -> bool:
        """Block until every appended line is on disk and the file has dropped what is
        committed (a clean stop leaves only uncommitted facts); False if the time ran out."""
        with self._cond:
            target = self._appended_n

            def caught_up() -> bool:
                return self.durable_n >= target and self._settled_n >= self._committed_n

            if caught_up():
                return True
            self._start()
            self._cond.notify()
            return self._cond.wait_for(caught_up, timeout)

    def close(self, timeout: float) -> bool:
        flushed = self.flush(timeout)
        with self._cond:
            self._closing = True
            thread = self._thread
            self._cond.notify()
        if thread is not None:
            thread.join(timeout)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        return flushed

    def _start(self) -> None:  # under _cond
        if self._thread is None and not self._closing:
            self._thread = threading.Thread(target=self._main, name="fact-spool", daemon=True)
            self._thread.start()

    # ---- the thread's side --------------------------------------------------------------

    def _main(self) -> None:
        while True:
            with self._cond:
                idle_until = time.monotonic() + _SPOOL_IDLE_SECONDS
                while not self._queue and self._committed_n <= self._forgotten_n:
                    left = idle_until - time.monotonic()
                    if self._closing or left <= 0:
                        self._thread = None
                        return
                    self._cond.wait(left)
                batch, self._queue = self._queue, []
                committed = self._committed_n
            written = self._write(batch) if batch else False
            if batch and not written:  # closed while the disk refused: nothing more to do
                with self._cond:
                    self._thread = None
                return
            self._forget(committed)
            retired = self._compact()
            with self._cond:
                if written:
                    self.durable_n = batch[-1][0]
                self._settled_n = max(self._settled_n, committed)
                self._retired.extend(retired)
                self._cond.notify_all()
            self._wake()

    def _write(self, batch: list[tuple[int, str, bytes]]) -> bool:
        data = b"".join(line for _, _, line in batch)
        if self._size == 0:  # a truncation that could not put the header back
            data = self._header + data
        while True:
            try:
                _write_all(self._fd, data)
                os.fdatasync(self._fd)
                break
            except OSError as err:
                if not self.failing:
                    log.error("facts.spool_write_failed", file=str(self.path), error=str(err))
                self.failing = True
                # Cut back what got written, or the half line would swallow the next one;
                # after a failed fsync the kernel may have dropped the pages: write them again.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
                if self._closing:
                    return False
                time.sleep(1.0)
        if self.failing:
            log.info("facts.spool_write_recovered", file=str(self.path))
            self.failing = False
        end = self._size + (len(self._header) if self._size == 0 else 0)
        for n, gen, line in batch:
            end += len(line)
            self._entries.append((n, gen, end))
        self._size = end
        return True

    def _forget(self, committed: int) -> None:
        while self._entries and self._entries[0][0] <= committed:
            self._cut = self._entries.popleft()[2]
        self._forgotten_n = max(self._forgotten_n, committed)

    def _emptied_lines(self) -> bytes:
        return b"".join(_frame(f"G {g}") for g in sorted(self._emptied))

    def _compact(self) -> list[str]:
        """Drop committed lines; the generations whose facts have all (durably) left the file."""
        with self._cond:
            deleted, self._deleted = self._deleted, set()
        self._emptied -= deleted
        try:
            if not self._entries:
                # Every generation but this run's now has no facts here.
                newly = sorted(self._named - self._emptied - {self.gen})
                self._emptied.update(newly)
                target = self._emptied_lines() + self._header
                if not newly and self._size == len(target):
                    return []
                os.ftruncate(self._fd, 0)
                self._size = 0
                _write_all(self._fd, target)
                self._size = self._cut = len(target)
                if newly:
                    # Their marks may be deleted only once no fact of theirs can come back.
                    os.fdatasync(self._fd)
                self._named = set(self._emptied) | {self.gen}
                return newly
            if self._cut < self._compact_bytes or self._cut * 2 < self._size:
                return []
            with_facts = {g for _, g, _ in self._entries}
            newly = sorted(self._named - with_facts - self._emptied - {self.gen})
            self._emptied.update(newly)
            head = self._emptied_lines() + _frame(f"G {self._entries[0][1]}")
            self._replace(head, copy_from=self._cut)
            delta = len(head) - self._cut
            self._entries = deque((n, g, end + delta) for n, g, end in self._entries)
            self._cut = len(head)
            self._named = with_facts | self._emptied | {self.gen}
            return newly
        except OSError as err:
            # Left as it was (or truncated to nothing, which the next append repairs):
            # committed lines stay a while longer and are skipped if replayed.
            log.warning("facts.spool_compaction_failed", file=str(self.path), error=str(err))
            return []

    def _replace(self, head: bytes, copy_from: int | None = None) -> None:
        """Make the file ``head`` (plus the current file from ``copy_from``), atomically."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        size = len(head)
        try:
            _write_all(fd, head)
            if copy_from is not None:
                pos = copy_from
                while pos < self._size:
                    chunk = os.pread(self._fd, min(_COPY_CHUNK, self._size - pos), pos)
                    if not chunk:
                        break
                    _write_all(fd, chunk)
                    pos += len(chunk)
                    size += len(chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        self._size = size


# ---- the writer -------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Rec:
    n: int  # this run's running number (facts replayed from the spool come first)
    gen: str
    seq: int
    fact: Fact | None  # None: the spool held a fact this code cannot read
    text: str  # its JSON, as in the spool


_MARKS_SELECT = """SELECT generation, committed_seq FROM fact_spool_marks
                   WHERE generation = ANY($1::text[]) FOR UPDATE"""
_MARKS_UPSERT = """INSERT INTO fact_spool_marks (generation, spool, committed_seq)
                   VALUES ($1, $2, $3)
                   ON CONFLICT (generation) DO UPDATE
                   SET committed_seq = GREATEST(fact_spool_marks.committed_seq,
                                                EXCLUDED.committed_seq),
                       updated_at = now()"""
_MARKS_DELETE = "DELETE FROM fact_spool_marks WHERE generation = ANY($1::text[])"


class FactWriter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: Metrics,
        spool_file: Path,
        retry_max_seconds: float = 10.0,
        *,
        batch_max: int = 500,
        compact_bytes: int = 1 << 20,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._spool = _Spool(spool_file, self._wake_from_thread, compact_bytes)
        self.rejected_file = spool_file.with_name(spool_file.name + ".rejected")
        self._retry_max = retry_max_seconds
        self._batch_max = batch_max
        self._recs: deque[_Rec] = deque()  # recorded (or replayed), not yet committed
        self._n = 0
        self._seq = 0
        self._opened = False
        self._loaded = 0
        self._replay_n = 0
        # How far each generation is committed, as far as this writer knows for sure.
        self._marks: dict[str, int] = {}
        # Generations gone from the spool, whose marks can go too.
        self._retire: set[str] = set()
        self._dead: set[tuple[str, int]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._work = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._replayed = asyncio.Event()
        self._durable_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._db_ok = True

    @property
    def pending(self) -> int:
        return len(self._recs)

    @property
    def database_ok(self) -> bool:
        return self._db_ok

    @property
    def spool_file(self) -> Path:
        return self._spool.path

    def record(self, fact: Fact) -> None:
        trace = _TRACE.get()
        if trace is not None:
            trace.note(fact)
        self._enqueue(fact)

    def _enqueue(self, fact: Fact) -> None:
        self._open()
        self._catch_loop()
        try:
            text = fact_to_json(fact)
        except (TypeError, ValueError) as err:
            # A fact the spool cannot hold cannot be written ahead: set aside where a person
            # finds it, never raised into the call that recorded it.
            self._reject(type(fact).__name__, repr(fact), str(err), None, None)
            return
        self._n += 1
        self._seq += 1
        rec = _Rec(self._n, self._spool.gen, self._seq, fact, text)
        self._recs.append(rec)
        self._spool.append(rec.n, rec.gen, _frame(f"F {rec.seq} {text}"))
        self._idle.clear()
        self._metrics.db_pending_writes.set(len(self._recs))

    def flush_spool(self, timeout: float) -> bool:
        """Block until every fact recorded so far is on disk in the spool (not necessarily in
        PostgreSQL): what an engine must do before it stops without a shutdown (fenced)."""
        return self._spool.flush(timeout)

    def replay_spool(self) -> int:
        """Open the spool; its facts from a previous run are written first. Their number."""
        self._open()
        return self._loaded

    def _open(self) -> None:
        if self._opened:
            return
        loaded, retired, contents = self._spool.open()  # raises when the spool is unusable
        self._opened = True
        if contents.torn_tail:
            log.warning("facts.spool_torn_line_skipped", file=str(self._spool.path))
        if contents.damaged:
            log.warning(
                "facts.spool_damaged_lines_skipped",
                count=contents.damaged,
                file=str(self._spool.path),
            )
        self._retire.update(retired)
        for n, gen, seq, text in loaded:
            fact: Fact | None
            try:
                fact = fact_from_json(text)
            except (KeyError, TypeError, ValueError):
                fact = None
            # Not through ``record``: the run that made these facts has counted its calls.
            self._recs.append(_Rec(n, gen, seq, fact, text))
        self._n = self._replay_n = self._loaded = len(loaded)
        self._marks[self._spool.gen] = 0  # a new generation: nothing of it is committed yet
        if loaded:
            self._idle.clear()
            self._metrics.db_pending_writes.set(len(self._recs))
            log.info(
                "facts.spool_replaying",
                count=len(loaded),
                legacy=contents.legacy,
                file=str(self._spool.path),
            )
        else:
            self._replayed.set()

    def _catch_loop(self) -> None:
        if self._loop is None:
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()

    def _wake_from_thread(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(self._on_spool)

    def _on_spool(self) -> None:
        durable = self._spool.durable_n
        waiting = []
        for n, fut in self._durable_waiters:
            if n <= durable:
                if not fut.done():
                    fut.set_result(None)
            else:
                waiting.append((n, fut))
        self._durable_waiters = waiting
        self._retire.update(self._spool.take_retired())
        self._work.set()

    async def durable(self, timeout: float | None = None) -> bool:
        """Wait until every fact recorded so far is in the spool on disk (it counts then,
        whatever happens to this process); False if the time ran out."""
        self._catch_loop()
        target = self._n
        if self._spool.durable_n >= target:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._durable_waiters.append((target, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return False
        return True

    async def replayed(self, timeout: float) -> bool:
        """Wait until the facts replayed from the spool are in PostgreSQL."""
        try:
            await asyncio.wait_for(self._replayed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def drain(self, timeout: float) -> bool:
        """Wait until every recorded fact is written; False if the time ran out."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        self._open()
        self._catch_loop()
        try:
            while True:
                self._retire.update(self._spool.take_retired())
                batch = self._ready()
                if batch:
                    await self._write_with_retry(batch)
                    self._done(batch)
                    continue
                if self._retire and self._db_ok:
                    await self._retire_generations()
                self._work.clear()
                if not self._ready():
                    await self._work.wait()
        finally:
            # Everything recorded is on disk before this returns; what PostgreSQL has not
            # committed stays in the spool for the next start.
            if not self._spool.flush(5.0):
                log.error("facts.spool_flush_timed_out", file=str(self._spool.path))
            if self._recs:
                log.warning(
                    "facts.left_in_spool", count=len(self._recs), file=str(self._spool.path)
                )

    def close(self, timeout: float = 5.0) -> bool:
        """Flush the spool and close it (after ``run`` has ended); for tools and tests."""
        return self._spool.close(timeout)

    def _ready(self) -> list[_Rec]:
        """The oldest facts already on disk, at most one batch."""
        durable = self._spool.durable_n
        out: list[_Rec] = []
        for rec in self._recs:
            if rec.n > durable or len(out) >= self._batch_max:
                break
            out.append(rec)
        return out

    def _done(self, batch: list[_Rec]) -> None:
        for rec in batch:
            self._recs.popleft()
            self._dead.discard((rec.gen, rec.seq))
        self._spool.committed(batch[-1].n)
        self._metrics.db_pending_writes.set(len(self._recs))
        if not self._recs:
            self._idle.set()
        if not self._replayed.is_set() and batch[-1].n >= self._replay_n:
            self._replayed.set()
            log.info("facts.spool_replayed", count=self._replay_n, file=str(self._spool.path))

    async def _write_with_retry(self, batch: list[_Rec]) -> None:
        delay = 0.1
        attempt = 0
        row_by_row = False
        while True:
            started = time.perf_counter()
            try:
                await self._write(batch, row_by_row)
            except Exception as err:  # every failure is sorted below; none may end the writer
                # Whether the commit happened is unknown: ask for the marks again next time.
                for rec in batch:
                    self._marks.pop(rec.gen, None)
                kind = db.classify_error(err)
                state = getattr(err, "sqlstate", None)
                if kind is db.ErrorKind.INVALID_ROW and not row_by_row:
                    # One row is bad: find it, keep its neighbours.
                    row_by_row = True
                    continue
                attempt += 1
                self._metrics.db_write_retries.inc()
                if kind is db.ErrorKind.TRANSIENT:
                    if self._db_ok:
                        log.warning(
                            "facts.database_unavailable",
                            error=str(err) or type(err).__name__,
                            sqlstate=state,
                            pending=self.pending,
                        )
                    self._db_ok = False
                    self._metrics.db_up.set(0)
                else:
                    # Not the rows' fault (the schema, a permission): retried, never dropped,
                    # and loud, because every later fact waits behind this batch.
                    log.error(
                        "facts.write_failed",
                        error=str(err) or type(err).__name__,
                        sqlstate=state,
                        facts=sorted({type(r.fact).__name__ for r in batch}),
                        attempt=attempt,
                        pending=self.pending,
                    )
                await asyncio.sleep(random.uniform(0, delay))
                delay = min(delay * 2, self._retry_max)
                continue
            self._metrics.db_write_latency.observe(time.perf_counter() - started)
            if not self._db_ok:
                log.info("facts.database_back", retries=attempt, pending=self.pending)
            self._db_ok = True
            self._metrics.db_up.set(1)
            return

    async def _write(self, batch: list[_Rec], row_by_row: bool) -> None:
        """One transaction: the batch's facts not yet committed, and the marks that say so."""
        last: dict[str, int] = {}
        for rec in batch:
            last[rec.gen] = rec.seq
        retiring = sorted(self._retire)
        async with self._pool.acquire() as conn, conn.transaction():
            marks = {g: self._marks[g] for g in last if g in self._marks}
            unknown = [g for g in last if g not in marks]
            if unknown:
                rows = await conn.fetch(_MARKS_SELECT, unknown)
                found = {r["generation"]: r["committed_seq"] for r in rows}
                marks.update({g: found.get(g, 0) for g in unknown})
            todo = [r for r in batch if r.seq > marks[r.gen]]
            # A replayed batch wholly below its mark leaves the mark where it is.
            last = {g: max(seq, marks[g]) for g, seq in last.items()}
            if row_by_row:
                await self._write_rows(conn, todo)
            else:
                await self._write_runs(conn, todo)
            await conn.executemany(
                _MARKS_UPSERT, [(g, self._spool.path.name, seq) for g, seq in last.items()]
            )
            if retiring:
                await conn.execute(_MARKS_DELETE, retiring)
        self._marks.update(last)
        self._forget_marks(retiring)

    async def _write_runs(self, conn: db.Conn, todo: list[_Rec]) -> None:
        """Each run of facts of one kind in one pipelined round trip, in order."""
        i = 0
        while i < len(todo):
            rec = todo[i]
            if rec.fact is None:
                self._reject_rec(rec, "the spool holds a fact this version cannot read", None)
                i += 1
                continue
            kind = type(rec.fact)
            j = i + 1
            while j < len(todo) and type(todo[j].fact) is kind:
                j += 1
            if j - i == 1:
                await conn.execute(kind.sql, *rec.fact.args())
            else:
                await conn.executemany(
                    kind.sql, [r.fact.args() for r in todo[i:j] if r.fact is not None]
                )
            i = j

    async def _write_rows(self, conn: db.Conn, todo: list[_Rec]) -> None:
        """One savepoint per fact: a row the database refuses is set aside alone."""
        for rec in todo:
            if rec.fact is None:
                self._reject_rec(rec, "the spool holds a fact this version cannot read", None)
                continue
            try:
                async with conn.transaction():
                    await conn.execute(rec.fact.sql, *rec.fact.args())
            except Exception as err:  # sorted: only an invalid row is set aside
                if db.classify_error(err) is not db.ErrorKind.INVALID_ROW:
                    raise
                self._reject_rec(rec, str(err), getattr(err, "sqlstate", None))

    async def _retire_generations(self) -> None:
        """Delete the marks of generations gone from the spool; tried again later on failure."""
        gens = sorted(self._retire)
        try:
            async with asyncio.timeout(2.0), self._pool.acquire() as conn:
                await conn.execute(_MARKS_DELETE, gens)
        except Exception as err:  # a mark left behind is harmless: the next batch deletes it
            log.debug("facts.marks_not_deleted", error=str(err))
            return
        self._forget_marks(gens)

    def _forget_marks(self, gens: list[str]) -> None:
        if gens:
            self._retire.difference_update(gens)
            for g in gens:
                self._marks.pop(g, None)
            self._spool.marks_deleted(gens)

    def _reject_rec(self, rec: _Rec, error: str, sqlstate: str | None) -> None:
        key = (rec.gen, rec.seq)
        if key in self._dead:  # the batch is being tried again: set aside once
            return
        self._dead.add(key)
        name = type(rec.fact).__name__ if rec.fact is not None else "unknown"
        self._reject(name, rec.text, error, sqlstate, key)

    def _reject(
        self,
        name: str,
        text: str,
        error: str,
        sqlstate: str | None,
        key: tuple[str, int] | None,
    ) -> None:
        """Keep a fact that can never be written in the dead-letter file, counted and logged.

        Each line is the fact's spool JSON (``type``, ``fields``) plus ``rejected``: why, and
        which spool entry it was. Written before the batch commits, so a crash in between can
        repeat a line (same generation and seq) but never lose one.
        """
        try:
            entry: dict[str, Any] = json.loads(text)
            if not isinstance(entry, dict):
                entry = {"raw": text}
        except ValueError:
            entry = {"raw": text}
        entry["rejected"] = {
            "error": error,
            "sqlstate": sqlstate,
            "at": datetime.now(UTC).isoformat(),
            "generation": key[0] if key else None,
            "seq": key[1] if key else None,
        }
        path = self.rejected_file
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, separators=(",", ":"), default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._metrics.facts_rejected.inc()
        log.error("facts.rejected", fact=name, sqlstate=sqlstate, error=error, file=str(path))

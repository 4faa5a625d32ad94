"""Recording agent-connected calls, and moving the files into the recordings store.

The ACD tells this service when an agent is connected with a caller (``talk_started``: the
call's mixing bridge holds both) and when that talk ends (``talk_ended``). Both hooks are
synchronous and never wait: the call task must not be slowed by recordings. What follows runs
in tasks this service owns:

- Policy ``all``: the announcement (if any) is played to the caller, then the bridge is
  recorded as ``sambung/<call id>`` (``-2``, ``-3``... for later talks of the same call).
  ``on_demand``: the same, when asked through the API. ``none``: never.
- Pause and resume mute and unmute the recording: Asterisk writes silence meanwhile, so the
  file keeps the call's timeline and its length matches the call (checked on Asterisk 22: a
  paused ARI recording leaves the span out instead, a muted one writes silence in its place).
- When the talk ends the recording is stopped and its job moves on in the journal
  (``recordings.journal``): fetched from Asterisk through ARI, put in the store with its size
  and SHA-256, indexed in PostgreSQL, and only then deleted from Asterisk's spool. A store or
  database that is away only delays a step; the journal keeps it across restarts.

Operations on one call's recording (the start task, API pause/resume/stop, the end) take that
call's lock: they come from different tasks (the call's hooks, HTTP requests), and Asterisk's
answers must be applied in the order the requests were made.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from sambung.engine.errors import CallGone, TelephonyError
from sambung.engine.facts import Fact
from sambung.engine.tasks import TaskSet
from sambung.recordings import store as sql
from sambung.recordings.errors import (
    Forbidden,
    NoLiveCall,
    NotRecording,
    PolicyForbids,
    RangeNotSatisfiable,
    RecordingNotFound,
    StoreUnavailable,
)
from sambung.recordings.journal import Job, Journal
from sambung.recordings.model import (
    Action,
    ByteRange,
    PausedSpan,
    Policy,
    Principal,
    Role,
    Rules,
    ScopeRules,
    Talk,
)
from sambung.recordings.policy import (
    NotWav,
    close_spans,
    expired,
    may,
    parse_range,
    recording_name,
    rules_for,
    shortest_retention,
    store_key,
    wav_duration,
)
from sambung.recordings.ports import RecordingAri
from sambung.recordings.storage import RecordingStore

log = structlog.get_logger(__name__)

ANNOUNCEMENT_MAX_SECONDS = 30.0
RETRY_INITIAL_SECONDS = 0.5
ORPHAN_RECHECK_SECONDS = 5.0
MAX_SEGMENTS_REMEMBERED = 50_000
# How many earlier segments of one talk a resumed talk looks for in Asterisk.
MAX_EARLIER_SEGMENTS = 20
STOP_TIMEOUT_SECONDS = 5.0
_AUDIT_RANGE_CHARS = 100  # of a refused Range header, kept in the audit trail


@dataclass(eq=False)
class _Live:
    """An agent's talk on a call, and its recording if there is one."""

    talk: Talk
    rules: ScopeRules
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ended: bool = False
    name: str | None = None  # the live recording
    job: Job | None = None
    started_mono: float = 0.0
    spans: list[PausedSpan] = field(default_factory=list)

    @property
    def paused(self) -> bool:
        return bool(self.spans) and self.spans[-1].end is None


@dataclass(frozen=True)
class Download:
    name: str
    size: int
    range: ByteRange | None
    content_type: str
    filename: str
    chunks: AsyncIterator[bytes]


class RecordingService:
    def __init__(
        self,
        rules: Rules,
        ari: RecordingAri,
        store: RecordingStore,
        journal: Journal,
        pool: asyncpg.Pool,
        record: Callable[[Fact], None],
        *,
        campaign_of: Callable[[str], str | None] = lambda _q: None,
        fmt: str = "wav",
        retention_interval: float = 3600.0,
        retry_max: float = 30.0,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.rules = rules
        self.ari = ari
        self.store = store
        self.journal = journal
        self.pool = pool
        self.record = record
        self.campaign_of = campaign_of
        self.fmt = fmt
        self.retention_interval = retention_interval
        self.retry_max = retry_max
        self.wall = wall
        self.rng = rng or random.Random()
        self.live: dict[str, _Live] = {}
        self._tasks = TaskSet("recordings")
        self._segments: OrderedDict[str, int] = OrderedDict()
        self._wake = asyncio.Event()
        self._next_try: dict[str, float] = {}
        self._attempts: dict[str, int] = {}
        # Called when a talk ends (the monitoring sessions on that call end with it).
        self.talk_end_listeners: list[Callable[[str], None]] = []
        self.moved: list[tuple[str, float]] = []  # (name, seconds from end to indexed), last 100

    # ---- hooks from the ACD (sync, never wait) ---------------------------------------------

    def talk_started(
        self,
        call_id: str,
        agent_id: str,
        leg_id: str,
        bridge_id: str,
        queue: str,
        resumed: bool = False,
        since: datetime | None = None,
    ) -> None:
        """``resumed``: a talk an earlier engine left, carried on here. Its recording goes on
        in a new segment of the same call and agent; the earlier engine's segments, whether or
        not this engine's journal knows them (a standby has its own), are claimed, stopped and
        kept by the mover (``_claim_earlier``, ``_adopt``); the caller was told of the
        recording already. ``since``: when the resumed talk began (its first segment's
        start)."""
        campaign = self.campaign_of(queue)
        talk = Talk(call_id, agent_id, leg_id, bridge_id, queue, campaign, self.wall())
        rules = rules_for(self.rules, queue, campaign)
        if resumed and rules.announcement:
            rules = replace(rules, announcement=())
        live = _Live(talk, rules)
        old = self.live.get(call_id)
        if old is not None:
            self._end(old)
        self.live[call_id] = live
        log.info("recordings.talk", call_id=call_id, agent=agent_id, policy=rules.policy.value)
        if resumed:
            self._tasks.start(
                self._resume(live, since or talk.started_at), name=f"recording-resume-{call_id}"
            )
        elif rules.policy is Policy.ALL:
            self._tasks.start(self._begin(live), name=f"recording-start-{call_id}")

    async def _resume(self, live: _Live, since: datetime) -> None:
        await self._claim_earlier(live.talk, live.rules.policy.value, since)
        if live.rules.policy is Policy.ALL:
            await self._begin(live)

    async def _claim_earlier(self, talk: Talk, policy: str, since: datetime) -> None:
        """Journal the segments of this call an earlier engine recorded that this engine's
        journal does not know, so that the mover stops, fetches and indexes them like its
        own. Segments are numbered from 1 with no gap: the first name neither live nor stored
        in Asterisk ends the search.

        A claimed segment starts at ``since``, the talk's start (the agent's answer): for the
        first segment that is its start to within the whisper, if the queue has one (the
        recording begins when the two are bridged). A later one (a talk taken over more than
        once) began at an earlier takeover that no engine wrote down anywhere shared; the
        talk's start is the one moment known, and the segment number orders them."""
        for segment in range(1, MAX_EARLIER_SEGMENTS + 1):
            name = recording_name(talk.call_id, segment)
            if name in self.journal.jobs:
                continue
            try:
                live = await self.ari.live_recording_state(name) is not None
                stored = live or await self.ari.stored_recording_exists(name)
            except TelephonyError as err:
                log.warning("recordings.claim_failed", call_id=talk.call_id, error=str(err))
                return
            if not stored:
                return
            job = self._job(talk, name, segment, policy, since)
            self.journal.write(job if live else job.advance("finished", ended_at=self.wall()))
            self._wake.set()
            log.info("recordings.claimed", call_id=talk.call_id, recording=name, live=live)

    def talk_ended(self, call_id: str) -> None:
        live = self.live.pop(call_id, None)
        if live is not None:
            self._end(live)
        for listener in self.talk_end_listeners:
            try:
                listener(call_id)
            except Exception:
                log.exception("recordings.talk_end_listener_failed", call_id=call_id)

    def _end(self, live: _Live) -> None:
        live.ended = True
        self._tasks.start(self._finish(live), name=f"recording-end-{live.talk.call_id}")

    def talk_of(self, call_id: str | None = None, agent_id: str | None = None) -> Talk:
        """The live talk of a call, or of an agent; ``NoLiveCall`` if there is none."""
        for live in self.live.values():
            if (call_id is None or live.talk.call_id == call_id) and (
                agent_id is None or live.talk.agent_id == agent_id
            ):
                return live.talk
        what = f"call {call_id!r}" if call_id is not None else f"agent {agent_id!r}"
        raise NoLiveCall(f"{what} has no agent-connected call now")

    # ---- starting and ending --------------------------------------------------------------

    async def _begin(self, live: _Live) -> None:
        async with live.lock:
            if live.ended or live.name is not None:
                return
            if live.rules.announcement:
                await self._announce(live)
                if live.ended:
                    return
            await self._start_recording(live)

    async def _announce(self, live: _Live) -> None:
        """Play the announcement to the caller and wait for its end (or the talk's)."""
        call_id = live.talk.call_id
        pid = f"{call_id}-recording-notice-{self._segments.get(call_id, 0) + 1}"
        try:
            await self.ari.play(call_id, pid, live.rules.announcement)
        except TelephonyError as err:
            log.warning("recordings.announcement_failed", call_id=call_id, error=str(err))
            return
        deadline = time.monotonic() + ANNOUNCEMENT_MAX_SECONDS
        while not live.ended and time.monotonic() < deadline:
            # The playback's end reaches the call's task, not this one: ask for it instead.
            try:
                if await self.ari.get_playback(pid) is None:
                    return
            except TelephonyError:
                return
            await asyncio.sleep(0.1)
        with contextlib.suppress(TelephonyError):
            await self.ari.stop_playback(pid)

    async def _free_name(self, call_id: str) -> tuple[str, int]:
        segment = self._segments.get(call_id, 0)
        while True:
            segment += 1
            name = recording_name(call_id, segment)
            if name in self.journal.jobs:
                continue
            if await self.ari.live_recording_state(name) is not None:
                continue
            if await self.ari.stored_recording_exists(name):
                continue
            self._segments[call_id] = segment
            self._segments.move_to_end(call_id)
            while len(self._segments) > MAX_SEGMENTS_REMEMBERED:
                self._segments.popitem(last=False)
            return name, segment

    def _job(self, talk: Talk, name: str, segment: int, policy: str, started: datetime) -> Job:
        return Job(
            name=name,
            call_id=talk.call_id,
            segment=segment,
            agent_id=talk.agent_id,
            queue=talk.queue,
            campaign=talk.campaign,
            policy=policy,
            fmt=self.fmt,
            started_at=started,
        )

    async def _start_recording(self, live: _Live) -> None:
        talk = live.talk
        try:
            name, segment = await self._free_name(talk.call_id)
        except TelephonyError as err:
            log.warning("recordings.start_failed", call_id=talk.call_id, error=str(err))
            return
        job = self._job(talk, name, segment, live.rules.policy.value, self.wall())
        # Written ahead: if the engine dies from here on, the next start finds the job and
        # fetches whatever Asterisk recorded.
        self.journal.write(job)
        try:
            await self.ari.record_bridge(talk.bridge_id, name, fmt=self.fmt)
        except TelephonyError as err:
            log.warning("recordings.start_failed", call_id=talk.call_id, error=str(err))
            self.journal.write(job.advance("failed", detail=f"record: {err}"))
            return
        live.name = name
        live.job = job
        live.started_mono = time.monotonic()
        live.spans = []
        log.info("recordings.started", call_id=talk.call_id, recording=name)

    async def _finish(self, live: _Live) -> None:
        async with live.lock:
            await self._stop_recording(live)

    async def _stop_recording(self, live: _Live) -> None:
        name, job = live.name, live.job
        if name is None or job is None:
            return
        elapsed = time.monotonic() - live.started_mono
        try:
            # False: it was over already (the bridge went away with the call).
            await self.ari.stop_recording(name)
        except TelephonyError as err:
            # The journal still says "recording": the mover stops it once Asterisk is back.
            log.warning("recordings.stop_failed", recording=name, error=str(err))
            live.name = live.job = None
            self._wake.set()
            return
        spans = tuple((s.start, s.end) for s in close_spans(live.spans, elapsed) if s.end)
        done = job.advance("finished", ended_at=self.wall(), paused_spans=spans)
        self.journal.write(done)
        live.name = live.job = None
        log.info("recordings.finished", call_id=job.call_id, recording=name)
        self._wake.set()

    # ---- control through the API ----------------------------------------------------------

    def _live_for(self, call_id: str, who: Principal) -> _Live:
        if not may(who.role, Action.CONTROL):
            raise Forbidden(f"role {who.role.value!r} may not control recordings")
        live = self.live.get(call_id)
        if live is None:
            raise NoLiveCall(f"call {call_id!r} has no agent-connected call now")
        if who.role is Role.AGENT and live.talk.agent_id != who.name:
            raise Forbidden("an agent controls only the recording of their own call")
        return live

    def view(self, call_id: str, who: Principal) -> dict[str, Any]:
        live = self._live_for(call_id, who)
        return self._view(live)

    def _view(self, live: _Live) -> dict[str, Any]:
        return {
            "call_id": live.talk.call_id,
            "agent_id": live.talk.agent_id,
            "queue": live.talk.queue,
            "campaign": live.talk.campaign,
            "policy": live.rules.policy.value,
            "recording": live.name,
            "state": "paused" if live.paused else ("recording" if live.name else "off"),
        }

    async def start(self, call_id: str, who: Principal) -> dict[str, Any]:
        live = self._live_for(call_id, who)
        if live.rules.policy is Policy.NONE:
            raise PolicyForbids(f"queue {live.talk.queue!r} records no calls")
        self._audit(who, "start", live.name, call_id)
        if live.name is None:
            await self._begin(live)
        return self._view(live)

    async def stop(self, call_id: str, who: Principal) -> dict[str, Any]:
        live = self._live_for(call_id, who)
        async with live.lock:
            if live.name is None:
                raise NotRecording(f"call {call_id!r} is not being recorded")
            self._audit(who, "stop", live.name, call_id)
            await self._stop_recording(live)
        return self._view(live)

    async def pause(self, call_id: str, who: Principal, paused: bool) -> dict[str, Any]:
        live = self._live_for(call_id, who)
        async with live.lock:
            name = live.name
            if name is None:
                raise NotRecording(f"call {call_id!r} is not being recorded")
            if live.paused != paused:
                try:
                    await self.ari.mute_recording(name, paused)
                except CallGone as err:
                    raise NotRecording(f"call {call_id!r} is not being recorded") from err
                offset = round(time.monotonic() - live.started_mono, 3)
                if paused:
                    live.spans.append(PausedSpan(offset, None))
                else:
                    live.spans[-1] = PausedSpan(live.spans[-1].start, offset)
                log.info(
                    "recordings.paused" if paused else "recordings.resumed",
                    call_id=call_id,
                    recording=name,
                    offset=offset,
                    by=who.name,
                )
            self._audit(who, "pause" if paused else "resume", name, call_id)
        return self._view(live)

    def _audit(
        self,
        who: Principal,
        action: str,
        name: str | None,
        call_id: str | None,
        rng: ByteRange | None = None,
        status: int | None = None,
        detail: str = "",
    ) -> None:
        self.record(
            sql.RecordingAuditFact(
                sql.new_audit_id(),
                self.wall(),
                who.name,
                who.role.value,
                action,
                name,
                call_id,
                None if rng is None else rng.start,
                None if rng is None else rng.end,
                status,
                detail,
            )
        )

    # ---- reading recordings ---------------------------------------------------------------

    async def search(self, who: Principal, **filters: Any) -> list[dict[str, Any]]:
        if not may(who.role, Action.LIST):
            raise Forbidden(f"role {who.role.value!r} may not list recordings")
        try:
            return await sql.list_recordings(self.pool, **filters)
        except sql.DB_DOWN as err:
            raise StoreUnavailable("the recordings index (PostgreSQL) is unavailable") from err

    async def get(self, name: str, who: Principal) -> dict[str, Any]:
        if not may(who.role, Action.LIST):
            raise Forbidden(f"role {who.role.value!r} may not read recordings")
        row = await self._row(name)
        if row is None:
            raise RecordingNotFound(f"no recording {name!r}")
        return row

    async def _row(self, name: str) -> dict[str, Any] | None:
        try:
            return await sql.get_recording(self.pool, name)
        except sql.DB_DOWN as err:
            raise StoreUnavailable("the recordings index (PostgreSQL) is unavailable") from err

    async def audit_trail(self, who: Principal, name: str) -> list[dict[str, Any]]:
        if not may(who.role, Action.AUDIT):
            raise Forbidden(f"role {who.role.value!r} may not read the audit trail")
        try:
            return await sql.audit_rows(self.pool, "recording_audit", "name", name)
        except sql.DB_DOWN as err:
            raise StoreUnavailable("the recordings index (PostgreSQL) is unavailable") from err

    async def download(
        self, name: str, who: Principal, range_header: str | None, *, listen: bool
    ) -> Download:
        """The file (or the asked range of it); every attempt is audited, refusals too."""
        action = "listen" if listen else "download"
        if not may(who.role, Action.LISTEN if listen else Action.DOWNLOAD):
            self._audit(who, action, name, None, status=403)
            raise Forbidden(f"role {who.role.value!r} may not {action} recordings")
        row = await self._row(name)
        if row is None or row["deleted_at"] is not None:
            self._audit(who, action, name, None, status=404)
            raise RecordingNotFound(f"no recording {name!r}")
        size = int(row["size_bytes"])
        try:
            rng = parse_range(range_header, size)
        except RangeNotSatisfiable:
            # The header as sent, cut short: it can be kilobytes of digits.
            shown = (range_header or "")[:_AUDIT_RANGE_CHARS]
            self._audit(who, action, name, row["call_id"], status=416, detail=shown)
            raise
        key = str(row["store_key"])
        chunks = self.store.read(key, rng.start if rng else 0, rng.end if rng else None)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = b""
        except OSError as err:
            self._audit(who, action, name, row["call_id"], status=503, detail=str(err))
            raise StoreUnavailable(f"recording {name!r} cannot be read from the store") from err
        self._audit(who, action, name, row["call_id"], rng, 206 if rng else 200)

        async def body() -> AsyncIterator[bytes]:
            if first:
                yield first
            async for block in chunks:
                yield block

        return Download(
            name,
            size,
            rng,
            "audio/wav" if row["format"] == "wav" else "application/octet-stream",
            key.rpartition("/")[2],
            body(),
        )

    # ---- the mover ------------------------------------------------------------------------

    def pending_jobs(self) -> int:
        return len(self.journal.jobs)

    async def run_mover(self) -> None:
        """Carry every journalled job to its end; runs until cancelled."""
        loop = asyncio.get_running_loop()
        owned = self._owned_names
        while True:
            now = loop.time()
            due = [
                j
                for j in self.journal.pending()
                if self._next_try.get(j.name, 0.0) <= now
                and (j.stage != "recording" or j.name not in owned())
            ]
            if not due:
                waits = [t - now for n, t in self._next_try.items() if n in self.journal.jobs]
                timeout = max(0.05, min(waits)) if waits else None
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                continue
            for job in due:
                await self._step(job)

    def _owned_names(self) -> set[str]:
        return {live.name for live in self.live.values() if live.name is not None}

    async def _step(self, job: Job) -> None:
        try:
            nxt = await self._advance(job)
        except (TelephonyError, OSError, *sql.DB_DOWN) as err:
            n = self._attempts.get(job.name, 0) + 1
            self._attempts[job.name] = n
            delay = min(self.retry_max, RETRY_INITIAL_SECONDS * 2 ** min(n - 1, 20))
            delay = self.rng.uniform(delay / 2, delay)
            self._next_try[job.name] = asyncio.get_running_loop().time() + delay
            log.warning(
                "recordings.move_retry",
                recording=job.name,
                stage=job.stage,
                attempt=n,
                retry_in=round(delay, 2),
                error=f"{type(err).__name__}: {err}",
            )
            return
        except asyncpg.PostgresError as err:
            # A row the database refuses will never be accepted: keep the file, say so loudly.
            log.error("recordings.index_rejected", recording=job.name, error=str(err))
            self.journal.write(job.advance("failed", detail=f"index: {err}"))
            self._forget(job.name)
            return
        if nxt is None:
            return
        self._attempts.pop(job.name, None)
        self.journal.write(nxt)
        if nxt.stage in ("done", "failed"):
            self._forget(job.name)
        else:
            self._next_try.pop(job.name, None)

    def _forget(self, name: str) -> None:
        self._next_try.pop(name, None)
        self._attempts.pop(name, None)

    async def _advance(self, job: Job) -> Job | None:
        """Do the job's next step; return its new state (``None``: look again later)."""
        match job.stage:
            case "recording":
                return await self._adopt(job)
            case "finished":
                data = await self.ari.stored_recording_file(job.name)
                if data is None:
                    have = await self.store.stat(job.store_key) if job.store_key else None
                    if have is None:
                        log.error("recordings.file_missing", recording=job.name)
                        return job.advance("failed", detail="Asterisk has no such recording")
                    return job.advance("stored", size_bytes=have.size, sha256=have.sha256)
                try:
                    duration = round(wav_duration(data), 3) if job.fmt.startswith("wav") else 0.0
                except NotWav as err:
                    log.warning("recordings.not_wav", recording=job.name, error=str(err))
                    duration = 0.0
                key = store_key(job.name, job.started_at, job.fmt)
                obj = await self.store.put(key, data)
                log.info(
                    "recordings.stored",
                    recording=job.name,
                    key=key,
                    size=obj.size,
                    duration=duration,
                )
                return job.advance(
                    "stored",
                    store_key=key,
                    size_bytes=obj.size,
                    sha256=obj.sha256,
                    duration_seconds=duration,
                    stored_at=self.wall(),
                )
            case "stored":
                await sql.insert_recording(self.pool, job)
                return job.advance("indexed")
            case "indexed":
                await self.ari.delete_stored_recording(job.name)
                end = job.ended_at or job.stored_at
                took = (self.wall() - end).total_seconds() if end else 0.0
                self.moved = [*self.moved[-99:], (job.name, took)]
                log.info("recordings.moved", recording=job.name, seconds=round(took, 3))
                return job.advance("done")
            case _:
                return job.advance("failed", detail=f"unknown stage {job.stage!r}")

    async def _adopt(self, job: Job) -> Job | None:
        """A job a previous run started (or whose stop failed): where is that recording?"""
        state = await self.ari.live_recording_state(job.name)
        if state is not None:
            # Still live with no talk of ours behind it: the call went with the previous run
            # (calls do not survive an engine restart), and a Stasis bridge outlives its
            # callers, so its recorder would go on recording silence. Stop it.
            await self.ari.stop_recording(job.name)
            log.info("recordings.orphan_stopped", recording=job.name, state=state)
        if await self.ari.stored_recording_exists(job.name):
            return job.advance("finished", ended_at=job.ended_at or self.wall())
        if state is None:
            log.error("recordings.file_missing", recording=job.name)
            return job.advance("failed", detail="not live and not stored in Asterisk")
        self._next_try[job.name] = asyncio.get_running_loop().time() + ORPHAN_RECHECK_SECONDS
        return None

    def replay(self) -> int:
        """Pick up what the journal holds from earlier runs; returns how many jobs."""
        jobs = self.journal.replay()
        self._wake.set()
        return len(jobs)

    # ---- retention ------------------------------------------------------------------------

    async def run_retention(self) -> None:
        while True:
            try:
                await self.retention_once()
            except (*sql.DB_DOWN, asyncpg.PostgresError) as err:
                log.warning("recordings.retention_failed", error=str(err))
            await asyncio.sleep(self.retention_interval)

    async def retention_once(self, now: datetime | None = None) -> list[str]:
        """Delete the recordings past their scope's retention; returns their names."""
        now = now or self.wall()
        days = shortest_retention(self.rules)
        if days is None:
            return []
        candidates = await sql.retention_candidates(self.pool, now - timedelta(days=days))
        deleted: list[str] = []
        for c in expired(candidates, self.rules, now):
            try:
                existed = await self.store.delete(c.store_key)
            except OSError as err:
                log.warning("recordings.retention_delete_failed", recording=c.name, error=str(err))
                continue
            await sql.mark_deleted(self.pool, c.name, now, "retention")
            kept = rules_for(self.rules, c.queue, c.campaign).retention_days
            self.record(
                sql.RecordingAuditFact(
                    sql.new_audit_id(),
                    now,
                    "retention",
                    "system",
                    "delete",
                    c.name,
                    None,
                    None,
                    None,
                    None,
                    f"older than {kept} days (queue {c.queue}"
                    + (f", campaign {c.campaign})" if c.campaign else ")")
                    + ("" if existed else "; file was already gone"),
                )
            )
            log.info(
                "recordings.retention_deleted",
                recording=c.name,
                queue=c.queue,
                campaign=c.campaign,
                started_at=c.started_at.isoformat(),
                retention_days=kept,
                key=c.store_key,
                file_existed=existed,
            )
            deleted.append(c.name)
        return deleted

    # ---- shutdown -------------------------------------------------------------------------

    async def close(self) -> None:
        """End what is live (the calls are gone by now) and let the ends reach the journal."""
        for call_id in list(self.live):
            self.talk_ended(call_id)
        if not await self._tasks.wait_empty(STOP_TIMEOUT_SECONDS):
            log.warning("recordings.stop_timeout", left=len(self._tasks))
            await self._tasks.cancel_all()

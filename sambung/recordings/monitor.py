"""Supervisors listening to, whispering to (coaching the agent only) and barging into agents'
live calls, on the supervisor's own desk phone.

A session: the supervisor's phone is originated into our app; once it answers, a Snoop
channel is put on the agent's channel with the mode's directions (``model.SNOOP_DIRECTIONS``)
and both go into a mixing bridge of their own (``sambung-monitor-<session>``). Changing the
mode swaps the snoop channel for one with the new directions. The session ends when the
supervisor hangs up, asks to stop, or the agent's talk ends; every step is audited.

The channels of a session are not calls: the ARI translator routes no events for them. Each
session's task asks Asterisk instead (answered yet? still there?), at most every
``POLL_SECONDS``, which costs little for the few sessions a contact centre runs at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from sambung.engine.db import DB_ERRORS
from sambung.engine.errors import CallGone, SambungError, TelephonyError
from sambung.engine.events import (
    HeldMonitor,
    monitor_bridge,
    monitor_snoop,
    monitor_supervisor,
    snoop_number,
)
from sambung.engine.facts import Fact
from sambung.engine.tasks import TaskSet
from sambung.recordings import store as sql
from sambung.recordings.errors import Forbidden, MonitorUnavailable, SessionNotFound
from sambung.recordings.model import SNOOP_DIRECTIONS, Action, MonitorMode, Principal, Role, Talk
from sambung.recordings.policy import may
from sambung.recordings.ports import MonitorAri

log = structlog.get_logger(__name__)

POLL_SECONDS = 0.2
TALK_WAIT_ATTEMPTS = 50  # of 0.1 s: how long a session taken over waits for its talk
WATCH_SECONDS = 1.0
JOIN_ATTEMPTS = 15
OFFLINE_STATES = frozenset({"UNAVAILABLE", "INVALID", "UNKNOWN"})


@dataclass(eq=False)
class _Session:
    session_id: str
    who: Principal
    endpoint: str
    talk: Talk
    mode: MonitorMode
    started_at: datetime
    state: str = "ringing"  # ringing | active | ended
    end_reason: str = ""
    snoops: int = 0
    snoop_id: str | None = None
    wanted_mode: MonitorMode | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    handed_over: bool = False  # a graceful stop left the session to the next engine

    @property
    def sup_id(self) -> str:
        return monitor_supervisor(self.session_id)

    @property
    def bridge_id(self) -> str:
        return monitor_bridge(self.session_id)

    def view(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "supervisor": self.who.name,
            "endpoint": self.endpoint,
            "call_id": self.talk.call_id,
            "agent_id": self.talk.agent_id,
            "mode": self.mode.value,
            "state": self.state,
            "started_at": self.started_at.isoformat(),
            "end_reason": self.end_reason or None,
        }


class MonitorService:
    def __init__(
        self,
        ari: MonitorAri,
        find_talk: Callable[[str | None, str | None], Talk],
        phones: Mapping[str, str],
        record: Callable[[Fact], None],
        *,
        ring_seconds: int = 20,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        read_session: Callable[[str], Awaitable[sql.SessionRecord | None]] | None = None,
    ) -> None:
        # What the supervision audit says of a session (for one taken over from another engine).
        self.read_session = read_session
        self.ari = ari
        self.find_talk = find_talk
        self.phones = dict(phones)
        self.record = record
        self.ring_seconds = ring_seconds
        self.wall = wall
        self.sessions: dict[str, _Session] = {}
        self._resuming: set[str] = set()  # taken over, being read back
        self._tasks = TaskSet("monitoring")

    # ---- API ------------------------------------------------------------------------------

    def views(self, who: Principal) -> list[dict[str, Any]]:
        self._allowed(who)
        return [
            s.view()
            for s in self.sessions.values()
            if who.role is Role.ADMIN or s.who.name == who.name
        ]

    async def start(
        self, who: Principal, mode: MonitorMode, call_id: str | None, agent_id: str | None
    ) -> dict[str, Any]:
        self._allowed(who)
        endpoint = self.phones.get(who.name)
        if endpoint is None:
            raise MonitorUnavailable(f"no phone is configured for {who.name!r}")
        talk = self.find_talk(call_id, agent_id)
        for s in self.sessions.values():
            if s.endpoint == endpoint:
                raise MonitorUnavailable(f"{endpoint} is already in session {s.session_id}")
        try:
            state = await self.ari.get_device_state(f"PJSIP/{endpoint}")
        except TelephonyError as err:
            raise MonitorUnavailable(f"the state of {endpoint} is unknown: {err}") from err
        if state in OFFLINE_STATES:
            raise MonitorUnavailable(f"{endpoint} is not registered ({state})")
        session = _Session(uuid.uuid4().hex[:12], who, endpoint, talk, mode, self.wall())
        self.sessions[session.session_id] = session
        self._audit(session, "start")
        log.info(
            "monitor.start",
            session=session.session_id,
            supervisor=who.name,
            call_id=talk.call_id,
            agent=talk.agent_id,
            mode=mode.value,
        )
        self._tasks.start(self._run(session), name=f"monitor-{session.session_id}")
        return session.view()

    def set_mode(self, who: Principal, session_id: str, mode: MonitorMode) -> dict[str, Any]:
        session = self._own(who, session_id)
        if mode is not session.mode:
            session.wanted_mode = mode
            session.changed.set()
        return session.view()

    def stop(self, who: Principal, session_id: str) -> dict[str, Any]:
        session = self._own(who, session_id)
        session.end_reason = session.end_reason or "stopped"
        session.stop.set()
        return session.view()

    def call_ended(self, call_id: str) -> None:
        """The agent's talk is over: every session on it ends."""
        for s in self.sessions.values():
            if s.talk.call_id == call_id:
                s.end_reason = s.end_reason or "call_ended"
                s.stop.set()

    async def stop_all(self, *, hand_over: bool = False) -> None:
        """At shutdown: every session ends, or (``hand_over``, a graceful stop that left the
        talks to the next engine) each active one is left as it is for the next engine."""
        for s in self.sessions.values():
            if hand_over and s.state == "active":
                s.handed_over = True
            s.end_reason = s.end_reason or "engine_stopping"
            s.stop.set()
        if not await self._tasks.wait_empty(5.0):
            await self._tasks.cancel_all()

    def take_over(self, found: Sequence[HeldMonitor]) -> set[str]:
        """Sessions an earlier engine left (found at connect: their bridge, the supervisor's
        phone, the snoop): each goes on, read from the supervision audit (who, which talk,
        which mode), once the talk it watches is this engine's too. Returns their channels,
        which are then no orphans; a session that cannot go on is ended as usual."""
        taken: set[str] = set()
        for m in found:
            # Every connect finds them again (a resync too): still not orphans, and resumed once.
            taken.add(m.supervisor)
            if m.snoop is not None:
                taken.add(m.snoop)
            if m.session_id in self.sessions or m.session_id in self._resuming:
                continue
            self._resuming.add(m.session_id)
            self._tasks.start(self._resume(m), name=f"monitor-{m.session_id}")
        return taken

    def _allowed(self, who: Principal) -> None:
        if not may(who.role, Action.MONITOR):
            raise Forbidden(f"role {who.role.value!r} may not monitor calls")

    def _own(self, who: Principal, session_id: str) -> _Session:
        self._allowed(who)
        session = self.sessions.get(session_id)
        if session is None or (who.role is not Role.ADMIN and session.who.name != who.name):
            raise SessionNotFound(f"no monitoring session {session_id!r}")
        return session

    def _audit(self, s: _Session, action: str, detail: str = "") -> None:
        self.record(
            sql.SupervisionAuditFact(
                sql.new_audit_id(),
                s.session_id,
                self.wall(),
                s.who.name,
                s.who.role.value,
                action,
                s.mode.value,
                s.talk.call_id,
                s.talk.agent_id,
                s.endpoint,
                detail,
            )
        )

    # ---- a session's task -----------------------------------------------------------------

    async def _run(self, s: _Session) -> None:
        try:
            if await self._ring(s) and await self._connect(s):
                s.state = "active"
                self._audit(s, "answered")
                log.info("monitor.active", session=s.session_id, mode=s.mode.value)
                await self._watch(s)
        except TelephonyError as err:
            s.end_reason = s.end_reason or "failed"
            self._audit(s, "failed", str(err))
            log.warning("monitor.failed", session=s.session_id, error=str(err))
        finally:
            await self._finish(s)

    async def _finish(self, s: _Session) -> None:
        self.sessions.pop(s.session_id, None)
        if s.handed_over:
            self._audit(s, "handed_over")
            log.info("monitor.handed_over", session=s.session_id)
            return
        s.state = "ended"
        await self._teardown(s)
        self._audit(s, "stop", s.end_reason or "ended")
        log.info("monitor.stop", session=s.session_id, reason=s.end_reason)

    async def _resume(self, m: HeldMonitor) -> None:
        """A session taken over: rebuilt from its audit and the talk, then watched as before."""
        try:
            await self._resume_session(m)
        finally:
            self._resuming.discard(m.session_id)

    async def _resume_session(self, m: HeldMonitor) -> None:
        record = None
        if self.read_session is not None:
            with contextlib.suppress(*DB_ERRORS):
                record = await self.read_session(m.session_id)
        talk: Talk | None = None
        if record is not None and m.snoop is not None:
            # The talk's task is started by the same takeover: give it a moment to be listed.
            for _ in range(TALK_WAIT_ATTEMPTS):
                try:
                    talk = self.find_talk(record.call_id, record.agent_id)
                    break
                except SambungError:
                    await asyncio.sleep(0.1)
        if record is None or talk is None or m.snoop is None:
            # Nothing to go on with: end it as a session ends (its channels, its bridge).
            log.info("monitor.not_resumed", session=m.session_id)
            for channel_id in (m.snoop, m.supervisor):
                if channel_id is not None:
                    with contextlib.suppress(TelephonyError):
                        await self.ari.hangup(channel_id)
            with contextlib.suppress(TelephonyError):
                await self.ari.destroy_bridge(monitor_bridge(m.session_id))
            return
        # The next snoop is numbered after the one found.
        last = snoop_number(m.session_id, m.snoop)
        s = _Session(
            m.session_id,
            Principal(record.principal, Role(record.role)),
            record.endpoint,
            talk,
            MonitorMode(record.mode),
            record.started_at,
            state="active",
            snoops=1 if last is None else last,
            snoop_id=m.snoop,
        )
        self.sessions[s.session_id] = s
        self._audit(s, "taken_over")
        log.info("monitor.taken_over", session=s.session_id, mode=s.mode.value)
        try:
            await self._watch(s)
        except TelephonyError as err:
            s.end_reason = s.end_reason or "failed"
            log.warning("monitor.failed", session=s.session_id, error=str(err))
        finally:
            await self._finish(s)

    async def _ring(self, s: _Session) -> bool:
        """Ring the supervisor's phone; True once it answered (it is then in our app)."""
        await self.ari.originate(
            f"PJSIP/{s.endpoint}",
            channel_id=s.sup_id,
            app_args=("monitor", s.session_id),
            caller_id=f'"Monitor {s.talk.agent_id}" <{s.mode.value}>',
            ring_timeout=self.ring_seconds,
        )
        deadline = time.monotonic() + self.ring_seconds + 3
        while not s.stop.is_set():
            try:
                channel = await self.ari.get_channel(s.sup_id)
            except CallGone:
                s.end_reason = s.end_reason or "no_answer"
                return False
            if channel.state == "Up":
                return True
            if time.monotonic() > deadline:
                s.end_reason = "no_answer"
                return False
            await _wait(s.stop, POLL_SECONDS)
        return False

    async def _connect(self, s: _Session) -> bool:
        await self.ari.create_bridge(s.bridge_id, "mixing", name=s.bridge_id)
        await self._join(s, s.sup_id)
        return await self._new_snoop(s, s.mode)

    async def _new_snoop(self, s: _Session, mode: MonitorMode) -> bool:
        spy, whisper = SNOOP_DIRECTIONS[mode]
        s.snoops += 1
        snoop_id = monitor_snoop(s.session_id, s.snoops)
        try:
            await self.ari.snoop(
                s.talk.leg_id,
                snoop_id,
                spy=spy,
                whisper=whisper,
                app_args=("monitor", s.session_id),
            )
        except CallGone:
            s.end_reason = s.end_reason or "call_ended"
            return False
        await self._join(s, snoop_id)
        old, s.snoop_id, s.mode = s.snoop_id, snoop_id, mode
        if old is not None:
            with contextlib.suppress(TelephonyError):
                await self.ari.hangup(old)
        return True

    async def _join(self, s: _Session, channel_id: str) -> None:
        # A channel just created can answer 409/422 "not in Stasis" for a moment (wazo-calld
        # PR #29, ari-notes 1.6): try again briefly before calling it a failure.
        for attempt in range(JOIN_ATTEMPTS):
            try:
                await self.ari.add_channel(s.bridge_id, [channel_id])
                return
            except CallGone:
                raise
            except TelephonyError:
                if attempt == JOIN_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.1)

    async def _watch(self, s: _Session) -> None:
        while not s.stop.is_set():
            if s.changed.is_set():
                s.changed.clear()
                mode = s.wanted_mode
                if mode is not None and mode is not s.mode:
                    previous = s.mode
                    if not await self._new_snoop(s, mode):
                        return
                    self._audit(s, "mode", f"{previous.value} -> {mode.value}")
                    log.info("monitor.mode", session=s.session_id, mode=mode.value)
            for channel_id, reason in (
                (s.sup_id, "supervisor_hung_up"),
                (s.snoop_id, "call_ended"),
            ):
                if channel_id is None:
                    continue
                try:
                    await self.ari.get_channel(channel_id)
                except CallGone:
                    s.end_reason = s.end_reason or reason
                    return
            await _wait_any((s.stop, s.changed), WATCH_SECONDS)

    async def _teardown(self, s: _Session) -> None:
        for channel_id in (s.snoop_id, s.sup_id):
            if channel_id is not None:
                with contextlib.suppress(TelephonyError):
                    await self.ari.hangup(channel_id)
        with contextlib.suppress(TelephonyError):
            await self.ari.destroy_bridge(s.bridge_id)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def _wait_any(events: tuple[asyncio.Event, ...], seconds: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()

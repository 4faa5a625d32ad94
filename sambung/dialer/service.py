"""The dialer service: runs campaigns, asks the pacing policy how many to dial, dials them.

One ``DialerService`` per engine, on the event loop's thread. Every tick (and at once when an
agent becomes ready or a line ends) each running campaign is paced:

1. the figures: ready agents of the campaign (less inbound callers waiting for them when
   inbound goes first), each busy agent's phase (in a call, in wrap-up) and its time in it,
   each line in flight's age and its record's answer rate, the live answers waiting for an
   agent, the abandon figures of the rolling window and the last hour, and what the campaign
   has taught the pacer (``dialer/pacer_state.py``: talk and wrap-up durations, when lines
   become live answers, the answer rate by hour band, bucket and zone);
2. the records whose turn has come, taken in a transaction (``FOR UPDATE SKIP LOCKED``), each
   checked against the calling rules in the debtor's own time zone, the attempt caps and the
   do-not-call list; a record the rules hold back is rescheduled to when they allow it;
3. ``dialer.pacing.plan`` says how many to dial; that many attempt rows (with calls rows) are
   written in the same transaction; after the commit each is originated by its own task.

A campaign's agents and inbound queues share one agent book: a campaign is served through an
ACD queue of its own (``dialer-<campaign>``) whose wait is the connect limit and whose
overflow is the safe-harbour message. Blending therefore needs no second routing: queue
priority decides (inbound first by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import structlog

from sambung.acd import dispositions
from sambung.acd.agents import Agent, AgentState, StateChange
from sambung.acd.model import OverflowConfig, QueueConfig
from sambung.acd.place import PlaceTag
from sambung.acd.service import AcdService, Entry
from sambung.dialer import compliance, outcomes, pacer_state, pacing, store
from sambung.dialer.call import AttemptPlan, AttemptResult, AttemptRunner, TakenOver
from sambung.dialer.facts import DialerDispositionFact, RecordScheduledFact
from sambung.dialer.line_machine import HANDED_OVER
from sambung.dialer.model import CampaignConfig, DialerConfig
from sambung.dialer.phones import WIB, WIT, WITA
from sambung.engine.calendars import HolidayCalendar
from sambung.engine.calls import CallDispatcher, CallInbox
from sambung.engine.db import DB_ERRORS, Conn
from sambung.engine.errors import BadRequest, DatabaseUnavailable, NotFound, SambungError
from sambung.engine.facts import Fact
from sambung.engine.metrics import Metrics
from sambung.engine.tasks import TaskSet

log = structlog.get_logger(__name__)

# A live answer is known after answering-machine detection, at most this long after the
# answer (asterisk/conf/amd.conf: total analysis 5 s).
AMD_SECONDS = 5
BLEND_PRIORITY = {"inbound_first": -1, "equal": 0, "outbound_first": 9}
# The safe-harbour message must already be playing when the connect limit runs out; stopping
# the music, answering the overflow and starting a playback take about a tenth of a second.
SAFE_HARBOUR_LEAD = 0.3
# How long a previewed record stays with the agent who is looking at it.
PREVIEW_LEASE = timedelta(minutes=5)


class UnknownCampaign(SambungError):
    error_id = "dialer.unknown_campaign"
    title = "No such campaign"
    http_status = 404


class CampaignStateError(SambungError):
    error_id = "dialer.campaign_state"
    title = "Campaign cannot do that now"
    http_status = 409


def queue_of(campaign: str) -> str:
    return f"dialer-{campaign}"


def campaign_queue(c: CampaignConfig) -> QueueConfig:
    """The ACD queue a campaign's live answers wait in, for at most the connect limit."""
    # Who may take the calls is decided by membership (the campaign's agents and skilled
    # agents serve this queue), so the queue itself asks for no skill.
    return QueueConfig(
        name=queue_of(c.name),
        language=c.default_language,
        greeting=(),
        moh_class=c.moh_class,
        announce_every_seconds=0,
        priority=BLEND_PRIORITY[c.blend],
        aging_seconds=0,
        max_wait_seconds=max(0.2, c.connect_limit_seconds - SAFE_HARBOUR_LEAD),
        max_length=10000,
        overflow=OverflowConfig(action="hangup", prompts=c.safe_harbour),
        wrap_up_seconds=c.wrap_up_seconds,
        ring_timeout_seconds=max(3, min(120, int(c.connect_limit_seconds) + 3)),
        whisper=c.whisper,
        auto_answer=c.auto_answer,
    )


def window_of(c: CampaignConfig, calendar: HolidayCalendar) -> compliance.CallingWindow:
    h, m = (int(x) for x in c.start.split(":"))
    eh, em = (int(x) for x in c.end.split(":"))
    return compliance.CallingWindow(
        weekdays=frozenset(c.days),
        start=time(h, m),
        end=time(eh, em),
        last_dial_margin=timedelta(minutes=c.last_dial_margin_minutes),
        holidays=calendar,
    )


def retry_rules_of(c: CampaignConfig) -> compliance.RetryRules:
    return compliance.parse_retry_rules(dict(c.retry))


HOUR = 3600.0  # the pacer's hourly guard looks back this far
# See DialerService._recovery_hold_seconds.
RECOVERY_HOLD_MARGIN_SECONDS = 60.0
# How long a line taken over keeps asking PostgreSQL for its attempt (it may be coming back).
TAKEOVER_READ_SECONDS = 10.0


@dataclass(slots=True)
class Line:
    """An attempt in progress."""

    plan: AttemptPlan
    started: float
    live: bool = False
    connected: bool = False  # a live answer an agent took
    # The live-answer rate of its record when dialled, and its stratum (hour band, bucket,
    # zone): the pacer weighs the line by it and learns the stratum's rate from its end.
    rate: float | None = None
    stratum: pacer_state.Stratum | None = None
    learned: bool = False  # its answer (or its end) has been given to the pacer's history

    @property
    def in_flight(self) -> bool:
        """Not yet settled: ringing, or answered and still waiting for an agent (the pacer
        must count a waiting answer: it becomes an abandon if no agent comes)."""
        return not self.connected


@dataclass(slots=True)
class CampaignRun:
    settings: CampaignConfig
    window: compliance.CallingWindow
    caps: compliance.AttemptCaps
    rules: compliance.RetryRules
    state: str = "stopped"
    lines: dict[str, Line] = field(default_factory=dict)
    # (loop time, kind) for the rolling window, oldest first: "ended" (an attempt ended),
    # "live" (a live answer), "abandoned" (a live answer no agent took). Counted as they come
    # and go, and the last hour's live answers and abandons kept apart: the pacer reads these
    # figures twice a round, and a day's window of a large floor holds some 10^5 events.
    events: deque[tuple[float, str]] = field(default_factory=deque)
    tally: dict[str, int] = field(default_factory=lambda: {"ended": 0, "live": 0, "abandoned": 0})
    hour_lives: deque[float] = field(default_factory=deque)
    hour_abandons: deque[float] = field(default_factory=deque)
    started_at: float | None = None
    busy_seconds: float = 0.0  # agent time on calls and wrap-up since the start
    staffed_seconds: float = 0.0
    last_tick: float | None = None
    last_plan: pacing.PacingDecision | None = None
    # What the pacer has learned of this campaign (phases' durations, the answer curve, the
    # rates by stratum) and the inputs of its last round (for the campaign's view).
    learning: pacer_state.CampaignLearning | None = None
    last_inputs: dict[str, Any] | None = None

    def add_event(self, at: float, kind: str) -> None:
        self.events.append((at, kind))
        self.tally[kind] += 1
        if kind == "live":
            self.hour_lives.append(at)
        elif kind == "abandoned":
            self.hour_abandons.append(at)

    def hour_counts(self, now: float, guard: float) -> tuple[int, int, float | None]:
        """(live answers, abandons, seconds since the first of those answers) in the last
        hour, for the pacer's hourly guard and loop. Live answers older than the hour less
        ``guard`` (a line's ring plus the connect limit) are left out: an abandon of a line
        dialled now could come that late, and its hour would start after them. The seconds
        (None with no answer) tell the pacer how much of the hour its answers took: in the
        morning they are the first part of a full hour."""
        for times in (self.hour_lives, self.hour_abandons):
            while times and times[0] <= now - HOUR:
                times.popleft()
        leaving = 0  # live answers that drop out of the hour within ``guard``
        for t in self.hour_lives:
            if t > now - HOUR + guard:
                break
            leaving += 1
        live = len(self.hour_lives) - leaving
        since = now - self.hour_lives[leaving] if live else None
        return live, len(self.hour_abandons), since

    def counts(self, now: float) -> tuple[int, int, int]:
        """(ended attempts, live answers, abandoned) in the rolling window."""
        cutoff = now - self.settings.abandon_window_hours * 3600
        while self.events and self.events[0][0] < cutoff:
            _, kind = self.events.popleft()
            self.tally[kind] -= 1
        return self.tally["ended"], self.tally["live"], self.tally["abandoned"]


class DialerService:
    def __init__(
        self,
        settings: DialerConfig,
        acd: AcdService,
        metrics: Metrics,
        *,
        engine_instance: str,
        calendars: Mapping[str, HolidayCalendar],
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        sweep_every_instance: bool = False,
    ) -> None:
        self.settings = settings
        self.acd = acd
        self.m = metrics
        self.instance = engine_instance
        # Whose open attempts a start closes as lost: this instance's, or with a hot standby
        # every engine's (only the lease holder dials).
        self._sweep: str | None = None if sweep_every_instance else engine_instance
        self.wall = wall
        self.campaigns: dict[str, CampaignRun] = {
            c.name: CampaignRun(
                settings=c,
                window=window_of(c, calendars[c.calendar]),
                caps=compliance.AttemptCaps(c.max_attempts_per_day, c.max_attempts_per_7_days),
                rules=retry_rules_of(c),
            )
            for c in settings.campaigns
        }
        for run in self.campaigns.values():
            run.learning = pacer_state.CampaignLearning(
                wrap_timer=run.settings.wrap_up_seconds,
                ring_seconds=run.settings.ring_seconds + AMD_SECONDS,
            )
        self.pool: asyncpg.Pool | None = None
        self.dispatcher: CallDispatcher | None = None
        self.runner: AttemptRunner | None = None
        self.record: Callable[[Fact], None] = lambda f: None
        self.asterisk_id: Callable[[], str] = lambda: ""
        self.trunk_ok: Callable[[], bool] = lambda: True
        self.tasks = TaskSet("dialer")
        self._wake = asyncio.Event()
        self._stopping = False
        self._phases = pacer_state.AgentPhases()
        self._record_counts: dict[str, dict[str, int]] = {}
        acd.agents.listeners.append(self._agent_changed)
        for name in self.campaigns:
            self._gauges(name)

    def reload_calendars(self, calendars: Mapping[str, HolidayCalendar]) -> None:
        """Swap in freshly loaded holiday calendars (``sambung reload``, SIGHUP).

        The next check of every due record uses them; records refused as
        ``calendar_missing`` were left due, so an extended calendar releases them at once.
        """
        for run in self.campaigns.values():
            run.window = window_of(run.settings, calendars[run.settings.calendar])
        self._wake.set()

    def calendar_blocked(self) -> dict[str, str]:
        """Running campaigns whose calendar does not cover today somewhere in Indonesia,
        with the calendar's name (for the wallboard's banner)."""
        now = self.wall()
        out: dict[str, str] = {}
        for name, run in self.campaigns.items():
            if run.state != "running":
                continue
            for zone in (WIB, WITA, WIT):
                if compliance.closed_reason(run.window, zone, now) == "calendar_missing":
                    out[name] = run.settings.calendar
                    break
        return out

    # ---- set-up ------------------------------------------------------------------------

    def agent_ids(self, name: str) -> set[str]:
        c = self.campaigns[name].settings
        out = set(c.agents)
        if c.skill is not None:
            for a in self.acd.agents.all():
                if dict(a.profile.skills).get(c.skill, 0) >= c.min_level:
                    out.add(a.profile.agent_id)
        return out

    async def start(
        self,
        pool: asyncpg.Pool,
        dispatcher: CallDispatcher,
        runner: AttemptRunner,
        record: Callable[[Fact], None],
        asterisk_id: Callable[[], str],
    ) -> None:
        self.pool = pool
        self.dispatcher = dispatcher
        self.runner = runner
        self.record = record
        self.asterisk_id = asterisk_id
        try:
            async with pool.acquire() as conn:
                states = await store.ensure_campaigns(
                    conn, {n: c.settings.mode for n, c in self.campaigns.items()}
                )
                closed = await store.recover_open_attempts(
                    conn, self._sweep, self._recovery_hold_seconds()
                )
                await self._load_dnc_files(conn)
                since = self.wall() - timedelta(hours=720)
                for name, run in self.campaigns.items():
                    run.state = states.get(name, "stopped")
                    await self._load_window(conn, run, since)
                    self.m.dialer_running.labels(campaign=name).set(
                        1 if run.state == "running" else 0
                    )
        except DB_ERRORS as err:
            log.warning("dialer.start_without_database", error=str(err))
            return
        if closed:
            log.info("dialer.recovered_attempts", closed=closed)

    def _recovery_hold_seconds(self) -> float:
        """How long a record whose attempt a previous run left open waits before it is dialled
        again: its old line may still ring until the new engine's orphan sweep hangs it up (a
        couple of seconds after it connects to Asterisk), and a debtor must never have two of
        our lines at once. The longest ring of any campaign, and a minute more."""
        rings = [c.ring_seconds for c in self.settings.campaigns]
        return max(rings, default=0) + RECOVERY_HOLD_MARGIN_SECONDS

    async def _load_dnc_files(self, conn: Conn) -> None:
        for path in self.settings.dnc_files:
            numbers = compliance_dnc(path)
            n = await store.add_dnc(conn, "phone", numbers, f"file:{path.name}")
            log.info("dialer.dnc_loaded", file=path.name, numbers=n)

    async def _load_window(self, conn: Conn, run: CampaignRun, since: datetime) -> None:
        """Rebuild the rolling window from the attempts table (an engine restart keeps it)."""
        now_wall = self.wall()
        now = _loop_time()
        window_start = now_wall - timedelta(hours=run.settings.abandon_window_hours)
        rows = await store.window_events(conn, run.settings.name, max(since, window_start))
        # In the order they ended: the window is trimmed from its oldest end.
        ended = sorted((r for r in rows if r["ended_at"] is not None), key=lambda r: r["ended_at"])
        for r in ended:
            at = now - (now_wall - r["ended_at"]).total_seconds()
            run.add_event(at, "ended")
            if r["live_at"] is not None or r["outcome"] in ("connected", "abandoned"):
                run.add_event(at, "live")
                if outcomes.abandoned_in_window(r["outcome"], True, r["connected_at"] is not None):
                    run.add_event(at, "abandoned")
            says_nothing = r["outcome"] == "cancelled" or (
                r["outcome"] == "lost" and r["live_at"] is None
            )
            if run.learning is not None and not says_nothing:
                # The answer curve and the rates by stratum survive a restart too.
                live_at = r["live_at"]
                seconds = ((live_at or r["ended_at"]) - r["created_at"]).total_seconds()
                where = None
                if r["bucket"] is not None and r["zone"] is not None:
                    where = pacer_state.stratum(r["bucket"], r["zone"], r["created_at"])
                run.learning.attempt_resolved(seconds, live_at is not None, where)

    # ---- metrics -----------------------------------------------------------------------

    def _gauges(self, name: str) -> None:
        m = self.m
        run = self.campaigns[name]
        m.dialer_abandon_cap.labels(campaign=name).set(run.settings.abandon_cap)
        m.dialer_lines_in_flight.labels(campaign=name).set_function(
            lambda: float(sum(1 for x in run.lines.values() if x.in_flight))
        )
        m.dialer_lines_per_agent.labels(campaign=name).set_function(
            lambda: self.lines_per_agent(name)
        )
        m.dialer_abandon_ratio.labels(campaign=name).set_function(lambda: self.abandon_rate(name))
        m.dialer_contact_ratio.labels(campaign=name).set_function(lambda: self.contact_rate(name))
        m.dialer_occupancy.labels(campaign=name).set_function(lambda: self.occupancy(name))
        for state in ("pending", "scheduled", "dialing", "done", "stopped"):
            m.dialer_records.labels(campaign=name, state=state).set_function(
                lambda s=state: float(self._record_counts.get(name, {}).get(s, 0))  # type: ignore[misc]
            )

    def logged_in(self, name: str) -> list[Agent]:
        ids = self.agent_ids(name)
        return [
            a
            for a in self.acd.agents.all()
            if a.profile.agent_id in ids
            and a.state not in (AgentState.LOGGED_OUT, AgentState.PAUSED)
        ]

    def lines_per_agent(self, name: str) -> float:
        run = self.campaigns[name]
        n = len(self.logged_in(name))
        return round(len(run.lines) / n, 3) if n else 0.0

    def abandon_rate(self, name: str) -> float:
        _, live, abandoned = self.campaigns[name].counts(_loop_time())
        return abandoned / live if live else 0.0

    def contact_rate(self, name: str) -> float:
        ended, live, _ = self.campaigns[name].counts(_loop_time())
        return live / ended if ended else 0.0

    def occupancy(self, name: str) -> float:
        run = self.campaigns[name]
        return run.busy_seconds / run.staffed_seconds if run.staffed_seconds else 0.0

    # ---- agents ------------------------------------------------------------------------

    def _agent_changed(self, agent: Agent, change: StateChange) -> None:
        aid = agent.profile.agent_id
        talk, wrap = self._phases.changed(aid, change.state, _loop_time())
        if talk is not None or wrap is not None:
            for name, run in self.campaigns.items():
                if run.learning is None or aid not in self.agent_ids(name):
                    continue
                if talk is not None:
                    run.learning.talk_ended(talk)
                if wrap is not None:
                    run.learning.wrap_ended(wrap)
        if change.state is AgentState.READY:
            self.kick()

    def kick(self) -> None:
        self._wake.set()

    # ---- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        tick = self.settings.tick_seconds
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), tick)
            self._wake.clear()
            for name, run in self.campaigns.items():
                self._account_time(name, run)
                if run.state != "running" or self._stopping:
                    continue
                try:
                    await self.pace(name)
                except DB_ERRORS as err:
                    log.warning("dialer.pace_db_error", campaign=name, error=str(err))
                except SambungError as err:
                    log.warning("dialer.pace_failed", campaign=name, error=err.detail)
            await self._refresh_counts()

    def _account_time(self, name: str, run: CampaignRun) -> None:
        now = _loop_time()
        if run.last_tick is not None and run.state == "running":
            dt = now - run.last_tick
            agents = self.logged_in(name)
            run.staffed_seconds += dt * len(agents)
            run.busy_seconds += dt * sum(1 for a in agents if a.state is not AgentState.READY)
        run.last_tick = now

    async def _refresh_counts(self) -> None:
        if self.pool is None:
            return
        try:
            async with self.pool.acquire() as conn:
                for name in self.campaigns:
                    self._record_counts[name] = await store.record_counts(conn, name)
        except DB_ERRORS:
            pass

    def inputs(self, name: str, dialable: int, new_rate: float | None = None) -> pacing.PacingInput:
        """The pacer's inputs now: ready agents, each busy agent's phase and its time in it,
        each line in flight's age and rate, answers waiting, the window's and the last hour's
        figures, and the models learned from this campaign."""
        run = self.campaigns[name]
        c = run.settings
        now = _loop_time()
        ids = self.agent_ids(name)
        ready_ids = [a.agent_id for a in self.acd.agents.ready_for_routing() if a.agent_id in ids]
        ready = len(ready_ids)
        if c.blend == "inbound_first" and ready:
            # Callers already waiting for these agents take them first.
            waiting = sum(
                1
                for e in self.acd.entries.values()
                if e.state == "waiting"
                and not e.queue.startswith("dialer-")
                and any(e.queue in self.acd.agents.get(a).profile.queues for a in ready_ids)
            )
            ready = max(0, ready - waiting)
        _, live, abandoned = run.counts(now)
        guard = c.ring_seconds + c.connect_limit_seconds
        hour_live, hour_abandoned, hour_seconds = run.hour_counts(now, guard)
        learning = run.learning
        assert learning is not None
        models = learning.models(now)
        # Only the agents who come back free after their phase: a paused agent's phase is
        # over until it returns, and one who asked during the call for a pause or to log out
        # (or whose phone went offline) is paused when the call or its wrap-up ends. The
        # pacer takes a wrap-up's timer as the moment an agent is free for certain.
        working = [
            a.profile.agent_id for a in self.logged_in(name) if a.pending is None and a.online
        ]
        ringing = [x for x in run.lines.values() if not x.live]
        base = models.curve.rate()
        return pacing.PacingInput(
            mode=c.mode,
            ready_agents=ready,
            max_lines=c.max_lines,
            dialable=dialable,
            abandon_cap=c.abandon_cap,
            window_live=live,
            window_abandoned=abandoned,
            talk_elapsed=self._phases.talk_elapsed(working, now),
            wrap_elapsed=self._phases.wrap_elapsed(working, now),
            talk=models.talk,
            wrap=models.wrap,
            line_ages=tuple(now - x.started for x in ringing),
            line_rates=tuple(base if x.rate is None else x.rate for x in ringing),
            curve=models.curve,
            new_rate=new_rate,
            waiting_answers=sum(1 for x in run.lines.values() if x.live and not x.connected),
            hour_live=hour_live,
            hour_abandoned=hour_abandoned,
            hour_seconds=hour_seconds,
            connect_limit=c.connect_limit_seconds,
            warmup_live=c.pacing_warmup_live,
        )

    def _rate_of(self, run: CampaignRun, rec: store.DueRecord, at: datetime) -> float:
        """The record's live-answer rate: its stratum's effect (hour band, bucket, zone) on
        the campaign's recent rate (the answer curve's, which the pacer weighs lines by)."""
        learning = run.learning
        assert learning is not None
        models = learning.models(_loop_time())
        band, bucket, zone = pacer_state.stratum(rec.bucket, rec.zone, at)
        return models.rates.rate(band, bucket, zone) * models.curve.rate() / models.rates.mean

    def _note_round(
        self, run: CampaignRun, inp: pacing.PacingInput, decision: pacing.PacingDecision
    ) -> None:
        """Keep the round's inputs for the campaign's view and say them at debug level: what
        the engine knew (no debtor's data: ages, phases and counts only)."""
        run.last_plan = decision
        summary: dict[str, Any] = {
            "ready_agents": inp.ready_agents,
            "talk_elapsed": [round(x, 1) for x in inp.talk_elapsed],
            "wrap_elapsed": [round(x, 1) for x in inp.wrap_elapsed],
            "line_ages": [round(x, 1) for x in inp.line_ages],
            "waiting_answers": inp.waiting_answers,
            "window_live": inp.window_live,
            "window_abandoned": inp.window_abandoned,
            "hour_live": inp.hour_live,
            "hour_abandoned": inp.hour_abandoned,
            "hour_seconds": None if inp.hour_seconds is None else round(inp.hour_seconds, 1),
            "connect_limit": inp.connect_limit,
            "warmup_live": inp.warmup_live,
            "answer_rate": round(inp.curve.rate(), 4),
            "talk_samples": len(run.learning.talks) if run.learning else 0,
            "finished_attempts": len(run.learning.finished) if run.learning else 0,
        }
        run.last_inputs = summary
        log.debug(
            "dialer.pace",
            campaign=run.settings.name,
            dial=decision.dial,
            reason=decision.reason,
            warmup=decision.warmup,
            gain=round(decision.share, 5),
            **summary,
        )

    async def pace(self, name: str) -> int:
        """One pacing round for a running campaign; returns how many were dialled."""
        run = self.campaigns[name]
        c = run.settings
        if c.mode == "preview" or self.pool is None or self.dispatcher is None:
            return 0
        room = c.max_lines - len(run.lines)
        if room <= 0:
            return 0
        # What pacing would allow with every record available: no need to read more.
        probe_inputs = self.inputs(name, room)
        probe = pacing.plan(probe_inputs)
        if probe.dial <= 0:
            self._note_round(run, probe_inputs, probe)
            return 0
        now_wall = self.wall()
        plans: list[tuple[AttemptPlan, store.DueRecord]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            due = await store.due_records(
                conn, name, now_wall, probe.dial * 3 + 5, max_attempts=run.settings.max_attempts
            )
            allowed = await self._check(conn, run, due, now_wall)
            # The records next in line, by their stratum's rate: what a new line will bring.
            rates = [self._rate_of(run, r, now_wall) for r in allowed[: probe.dial]]
            inp = self.inputs(name, len(allowed), sum(rates) / len(rates) if rates else None)
            decision = pacing.plan(inp)
            self._note_round(run, inp, decision)
            for rec in allowed[: decision.dial]:
                plan = self._plan(run, rec)
                await store.begin_attempt(
                    conn,
                    store.NewAttempt(plan.attempt_id, rec, plan.phone, c.mode),
                    at=now_wall,
                    engine_instance=self.instance,
                    asterisk_id=self.asterisk_id(),
                    trunk=c.trunk,
                )
                plans.append((plan, rec))
        for plan, rec in plans:
            self._launch(run, plan, rec, now_wall)
        if plans:
            log.info(
                "dialer.dialled",
                campaign=name,
                n=len(plans),
                reason=run.last_plan.reason if run.last_plan else "",
                in_flight=len(run.lines),
            )
        return len(plans)

    async def _check(
        self,
        conn: Conn,
        run: CampaignRun,
        due: list[store.DueRecord],
        now: datetime,
        *,
        for_agent: str | None = None,
    ) -> list[store.DueRecord]:
        """The calling rules, at the last moment: window, caps, DNC, a paid account."""
        if not due:
            return []
        name = run.settings.name
        history = await store.attempt_history(
            conn, [r.account_id for r in due], now - timedelta(days=8)
        )
        hits = await store.dnc_hits(
            conn, [p for r in due for p in r.phones], [r.account_id for r in due]
        )
        busy_accounts = {x.plan.account_id for x in run.lines.values()}
        out: list[store.DueRecord] = []
        for r in due:
            if r.account_id in hits:
                await store.stop_record(conn, r.record_id, "dnc")
                self.m.dialer_blocked.labels(campaign=name, reason="dnc").inc()
                continue
            if r.account_id in busy_accounts:
                continue  # never two lines to one debtor at once
            phones = [p for p in r.phones if p not in hits]
            if not phones:
                await store.stop_record(conn, r.record_id, "dnc")
                self.m.dialer_blocked.labels(campaign=name, reason="dnc").inc()
                continue
            if r.phone() in hits:
                # Skip the barred number this time; the next attempt moves to the next one.
                self.m.dialer_blocked.labels(campaign=name, reason="dnc").inc()
                continue
            held = r.callback_agent is not None and r.callback_agent != for_agent
            if held and (for_agent is not None or not self._agent_ready(r.callback_agent or "")):
                continue  # a promised callback (or a preview) waits for its agent
            verdict = compliance.check_dial(
                run.window, run.caps, r.zone, now, history.get(r.account_id, [])
            )
            if not verdict.allowed:
                reason = verdict.reason or "window"
                self.m.dialer_blocked.labels(campaign=name, reason=reason).inc()
                action, next_at = compliance.on_refusal(verdict)
                if action == "stop":
                    await store.stop_record(conn, r.record_id, f"rules:{reason}")
                elif action == "reschedule" and next_at is not None:
                    await store.reschedule(conn, r.record_id, next_at, "scheduled")
                continue
            out.append(r)
            busy_accounts.add(r.account_id)
        return out

    def _agent_ready(self, agent_id: str) -> bool:
        try:
            return self.acd.agents.get(agent_id).state is AgentState.READY
        except SambungError:
            return False

    def _plan(self, run: CampaignRun, rec: store.DueRecord) -> AttemptPlan:
        c = run.settings
        phone = rec.phone()
        number = phone.removeprefix("+")
        return AttemptPlan(
            attempt_id=f"dlr-{uuid.uuid4().hex[:24]}",
            campaign=c.name,
            queue=queue_of(c.name),
            mode=c.mode,
            record_id=rec.record_id,
            account_id=rec.account_id,
            debtor_name=rec.name,
            phone=phone,
            language=rec.language,
            amount_due=rec.amount_due,
            context=self.debtor_context(rec, c.name),
            endpoint=f"PJSIP/{number}@{c.trunk}",
            caller_id=c.caller_id,
            ring_seconds=c.ring_seconds,
            amd=c.amd,
            machine_message=tuple(c.machine_message),
            reminder_key=c.reminder_key,
            reminder_wait=c.reminder_wait_seconds,
            pinned_agent=rec.callback_agent,
        )

    @staticmethod
    def debtor_context(rec: store.DueRecord, campaign: str) -> dict[str, str]:
        ctx = {
            "campaign": campaign,
            "account_id": rec.account_id,
            "debtor_name": rec.name,
            "amount_due": str(rec.amount_due),
            "days_past_due": str(rec.days_past_due),
            "bucket": rec.bucket,
            "due_date": rec.due_date.isoformat() if rec.due_date else "",
            "attempts": str(rec.attempts + 1),
            "zone": rec.zone,
        }
        for k, v in rec.extra.items():
            ctx.setdefault(f"extra.{k}", str(v))
        return ctx

    def _launch(
        self, run: CampaignRun, plan: AttemptPlan, rec: store.DueRecord, at: datetime
    ) -> None:
        assert self.dispatcher is not None
        runner = self.runner
        assert runner is not None
        where = pacer_state.stratum(rec.bucket, rec.zone, at)
        line = Line(plan, _loop_time(), rate=self._rate_of(run, rec, at), stratum=where)
        run.lines[plan.attempt_id] = line

        def live(p: AttemptPlan) -> None:
            line.live = True
            self._learn(run, line, _loop_time(), live=True)
            self.kick()

        async def work(inbox: CallInbox) -> None:
            await self._line(
                run,
                line,
                runner.run(plan, inbox, on_live=live, on_connected=self._connected(line)),
            )

        if not self.dispatcher.start_owned(plan.attempt_id, work, direction="dialer"):
            run.lines.pop(plan.attempt_id, None)
            self._attempt_done(run, plan, AttemptResult(outcome="cancelled"))

    def _connected(self, line: Line) -> Callable[[AttemptPlan], None]:
        def connected(p: AttemptPlan) -> None:
            line.connected = True
            self.kick()

        return connected

    async def _line(
        self, run: CampaignRun, line: Line, running: Coroutine[Any, Any, AttemptResult]
    ) -> None:
        """A line's task from the runner's start to the record's next step."""
        plan = line.plan
        result: AttemptResult | None = None
        try:
            result = await running
        finally:
            # A task that failed still says how its line ended (lost, not cancelled,
            # unless the service hung it up): its record waits out the retry rule.
            result = result or plan.stopped_with
            run.lines.pop(plan.attempt_id, None)
            if result is not None and result.live_at is not None:
                # Live without telling the service (a hang-up while AMD listened).
                self._learn(run, line, result.live_at, live=True)
            elif result is not None and result.outcome not in ("cancelled", "lost"):
                self._learn(run, line, _loop_time(), live=False)
            self._attempt_done(run, plan, result)
            self.kick()

    # ---- engines handing live answers over -------------------------------------------

    def adopt(
        self,
        call_id: str,
        entry: Entry,
        tag: PlaceTag,
        fallback: Callable[[CallInbox], Coroutine[Any, Any, None]],
    ) -> Callable[[CallInbox], Coroutine[Any, Any, None]] | None:
        """The task for a live answer an earlier engine left in a campaign's queue (the ACD
        read its place), or None when no campaign here has that queue. The task reads the
        attempt and its record, then the line goes on as if it had never changed engines:
        counted among the campaign's lines, ended as connected or abandoned, its record
        scheduled. An attempt it cannot read (PostgreSQL away for the whole wait, or already
        closed) is served by ``fallback``, the ACD's own carrying on: the debtor still reaches
        an agent; an attempt still open then is closed as lost by a later start's sweep."""
        name = next((n for n in self.campaigns if queue_of(n) == tag.queue), None)
        if name is None:
            return None
        run = self.campaigns[name]

        async def work(inbox: CallInbox) -> None:
            row = await self._attempt_to_resume(call_id)
            runner = self.runner
            if row is None or runner is None:
                log.warning("dialer.line_not_resumed", call_id=call_id, campaign=name)
                await fallback(inbox)
                return
            rec = store.due_of(row)
            # The record already counts this attempt (begin_attempt); the plan's context
            # numbers the attempt from the count before it, as for a fresh line.
            plan = replace(
                self._plan(run, replace(rec, attempts=max(0, rec.attempts - 1))),
                attempt_id=call_id,
                phone=row["attempt_phone"],
                mode=row["attempt_mode"],
            )
            line = Line(plan, _loop_time(), live=True, connected=row["connected_at"] is not None)
            line.learned = True  # its answer was learned by the engine that dialled it
            run.lines[call_id] = line
            resumed = TakenOver(entry, tag, row["live_at"], row["connected_at"])
            log.info("dialer.line_taken_over", call_id=call_id, campaign=name)
            await self._line(
                run, line, runner.resume(plan, inbox, resumed, on_connected=self._connected(line))
            )

        return work

    async def _attempt_to_resume(self, call_id: str) -> asyncpg.Record | None:
        """The open live attempt, retried for a while: the takeover may come while
        PostgreSQL is still coming back."""
        deadline = _loop_time() + TAKEOVER_READ_SECONDS
        while self.pool is not None:
            try:
                async with self.pool.acquire() as conn:
                    return await store.attempt_to_resume(conn, call_id)
            except DB_ERRORS as err:
                if _loop_time() >= deadline:
                    log.warning("dialer.takeover_read_failed", error=type(err).__name__)
                    return None
            await asyncio.sleep(0.5)
        return None

    def taken_over(self, kept: set[str]) -> None:
        """At the first connect, after the takeover: the live answers an earlier run left
        open that this engine did not carry on (not in ``kept``) are closed as lost and
        counted in the rolling window (an abandon unless an agent had them)."""
        self.tasks.start(self._close_unadopted(kept), name="dialer-close-unadopted")

    async def _close_unadopted(self, kept: set[str]) -> None:
        if self.pool is None:
            return
        keep = sorted(kept | {aid for run in self.campaigns.values() for aid in run.lines})
        try:
            async with self.pool.acquire() as conn:
                rows = await store.close_unadopted(
                    conn, self._sweep, self._recovery_hold_seconds(), keep
                )
        except DB_ERRORS as err:
            log.warning("dialer.close_unadopted_failed", error=str(err))
            return
        now = _loop_time()
        for r in rows:
            run = self.campaigns.get(r["campaign"])
            if run is None:
                continue
            run.add_event(now, "ended")
            run.add_event(now, "live")
            if outcomes.abandoned_in_window(r["outcome"], True, r["connected_at"] is not None):
                run.add_event(now, "abandoned")
        if rows:
            log.info("dialer.live_answers_lost", closed=len(rows))
            self.kick()

    @staticmethod
    def _learn(run: CampaignRun, line: Line, at: float, *, live: bool) -> None:
        """Give the pacer's history a line's live answer, or its end without one, once.
        A line the service cancelled (stop, paid), or one lost before it was known to be a
        person, says nothing about answering."""
        if line.learned or run.learning is None:
            return
        line.learned = True
        run.learning.attempt_resolved(at - line.started, live, line.stratum)

    def _attempt_done(
        self, run: CampaignRun, plan: AttemptPlan, result: AttemptResult | None
    ) -> None:
        if result is not None and result.outcome == HANDED_OVER:
            return  # the next engine carries the line on and ends the attempt
        if result is not None:
            outcome = result.outcome
        else:
            outcome = "cancelled" if plan.cancelled else "lost"
        now = _loop_time()
        run.add_event(now, "ended")
        if result is not None and (
            result.live_at is not None or outcome in ("connected", "abandoned")
        ):
            run.add_event(now, "live")
            if outcomes.abandoned_in_window(outcome, True, result.connected_at is not None):
                run.add_event(now, "abandoned")
        at = self.wall()
        next_at = compliance.next_attempt_at(
            outcome, run.rules, run.window, run.caps, self._zone_of(plan), at, [at]
        )
        bad = plan.phone if outcome == "invalid_number" else None
        made = int(plan.context.get("attempts") or 0)
        if outcome == "connected":
            state, next_at = "done", None  # the disposition decides what follows
        elif next_at is None or made >= run.settings.max_attempts:
            # The rules allow no more, or the record has had the campaign's attempts.
            state, next_at = "done", None
        else:
            state = "scheduled"
        self.record(
            RecordScheduledFact(
                plan.record_id,
                state,
                next_at,
                outcome,
                "exhausted" if state == "done" and outcome != "connected" else None,
                bad,
                None,
            )
        )

    def _zone_of(self, plan: AttemptPlan) -> str:
        return plan.context.get("zone") or self.campaigns[plan.campaign].settings.default_zone

    # ---- control -----------------------------------------------------------------------

    def get(self, name: str) -> CampaignRun:
        run = self.campaigns.get(name)
        if run is None:
            raise UnknownCampaign(f"campaign {name!r} is not configured")
        return run

    async def set_state(self, name: str, action: str) -> dict[str, Any]:
        run = self.get(name)
        target = {"start": "running", "resume": "running", "pause": "paused", "stop": "stopped"}
        if action not in target:
            raise NotFound(f"no campaign action {action!r}; actions: start, pause, resume, stop")
        new = target[action]
        if self.pool is None:
            raise DatabaseUnavailable("the database is not reachable")
        try:
            async with self.pool.acquire() as conn:
                await store.set_campaign_state(conn, name, new)
        except DB_ERRORS as err:
            raise DatabaseUnavailable(f"campaign state not saved: {err}") from err
        run.state = new
        if new == "running" and run.started_at is None:
            run.started_at = _loop_time()
        self.m.dialer_running.labels(campaign=name).set(1 if new == "running" else 0)
        log.info("dialer.campaign_state", campaign=name, state=new)
        if new == "stopped":
            # Lines not yet answered are cancelled; live calls are finished by their agents.
            await self._cancel_ringing(run)
        self.kick()
        return self.view(name)

    async def _cancel_ringing(self, run: CampaignRun, account: str | None = None) -> int:
        runner = self.runner
        if runner is None:
            return 0
        n = 0
        for line in list(run.lines.values()):
            if line.live or (account is not None and line.plan.account_id != account):
                continue
            line.plan.cancelled = True
            with contextlib.suppress(SambungError):
                await runner.tel.hangup(line.plan.attempt_id, "normal")
                n += 1
        return n

    async def stop(self) -> None:
        """Staged shutdown, first stage: no new dials; ringing lines are hung up."""
        self._stopping = True
        self._wake.set()
        for run in self.campaigns.values():
            await self._cancel_ringing(run)

    def view(self, name: str) -> dict[str, Any]:
        run = self.get(name)
        c = run.settings
        now = _loop_time()
        ended, live, abandoned = run.counts(now)
        lp = run.last_plan
        return {
            "campaign": name,
            "mode": c.mode,
            "state": run.state,
            "lines_in_flight": sum(1 for x in run.lines.values() if x.in_flight),
            "waiting_answers": sum(1 for x in run.lines.values() if x.live and not x.connected),
            "live_calls": sum(1 for x in run.lines.values() if x.live),
            "max_lines": c.max_lines,
            "agents_logged_in": len(self.logged_in(name)),
            "lines_per_agent": self.lines_per_agent(name),
            "abandon_rate": round(abandoned / live, 4) if live else 0.0,
            "abandon_cap": c.abandon_cap,
            "abandon_window_hours": c.abandon_window_hours,
            "window": {"attempts": ended, "live_answers": live, "abandoned": abandoned},
            "contact_rate": round(live / ended, 4) if ended else 0.0,
            "occupancy": round(self.occupancy(name), 4),
            "records": self._record_counts.get(name, {}),
            "last_plan": None if lp is None else _plan_view(lp, run.last_inputs),
        }

    # ---- preview mode ------------------------------------------------------------------

    def _preview_agent(self, name: str, agent_id: str) -> CampaignRun:
        run = self.get(name)
        if run.settings.mode != "preview":
            raise CampaignStateError(f"campaign {name!r} is {run.settings.mode}, not preview")
        if run.state != "running":
            raise CampaignStateError(f"campaign {name!r} is {run.state}")
        if agent_id not in self.agent_ids(name):
            raise CampaignStateError(f"agent {agent_id!r} does not work campaign {name!r}")
        return run

    async def preview_next(self, name: str, agent_id: str) -> dict[str, Any] | None:
        """The next record for an agent to look at, held for them for PREVIEW_LEASE."""
        run = self._preview_agent(name, agent_id)
        if self.pool is None:
            raise DatabaseUnavailable("the database is not reachable")
        now = self.wall()
        async with self.pool.acquire() as conn, conn.transaction():
            due = await store.due_records(
                conn, name, now, 20, for_agent=agent_id, max_attempts=run.settings.max_attempts
            )
            # A record already held for this agent comes first; others' holds are invisible.
            allowed = [
                r
                for r in await self._check(conn, run, due, now, for_agent=agent_id)
                if r.callback_agent in (None, agent_id)
            ]
            if not allowed:
                return None
            rec = allowed[0]
            await store.lease(conn, rec.record_id, agent_id, now + PREVIEW_LEASE)
            promises = await store.promises_of(conn, rec.account_id)
        return {
            "record_id": rec.record_id,
            "phones": list(rec.phones),
            "next_phone": rec.phone(),
            "held_until": (now + PREVIEW_LEASE).isoformat(),
            "debtor": self.debtor_context(rec, name),
            "promises": promises,
        }

    async def preview_dial(self, name: str, record_id: int, agent_id: str) -> dict[str, Any]:
        """The agent starts the call they previewed; the answer goes to them alone."""
        run = self._preview_agent(name, agent_id)
        if self.pool is None or self.dispatcher is None:
            raise DatabaseUnavailable("the database is not reachable")
        if not self._agent_ready(agent_id):
            raise CampaignStateError(f"agent {agent_id!r} must be ready to start a call")
        now = self.wall()
        async with self.pool.acquire() as conn, conn.transaction():
            rec = await store.lock_record(conn, name, record_id)
            if rec is None or rec.callback_agent not in (None, agent_id):
                raise NotFound(f"record {record_id} is not available to {agent_id!r}")
            # Only the record this agent was shown (and holds), and only once it is due: the
            # pacer's rules, the retry schedule and a promised callback's time included.
            if rec.held_by != agent_id or rec.held_until is None or rec.held_until <= now:
                raise CampaignStateError(
                    f"record {record_id} is not held for {agent_id!r}: take it with "
                    "GET .../preview first (a hold lasts a few minutes)"
                )
            if rec.next_at is not None and rec.next_at > now:
                raise CampaignStateError(
                    f"record {record_id} is not due until {rec.next_at.isoformat()}"
                )
            rec = replace(rec, callback_agent=agent_id)
            if not await self._check(conn, run, [rec], now, for_agent=agent_id):
                raise CampaignStateError(
                    f"record {record_id} may not be called now (calling window, caps or DNC)"
                )
            plan = self._plan(run, rec)
            await store.begin_attempt(
                conn,
                store.NewAttempt(plan.attempt_id, rec, plan.phone, "preview"),
                at=now,
                engine_instance=self.instance,
                asterisk_id=self.asterisk_id(),
                trunk=run.settings.trunk,
            )
        self._launch(run, plan, rec, now)
        return {"attempt_id": plan.attempt_id, "phone": plan.phone, "record_id": record_id}

    # ---- payments, DNC, dispositions -----------------------------------------------------

    async def paid(
        self, account_id: str, amount: Decimal, paid_at: datetime, reference: str
    ) -> dict[str, Any]:
        if self.pool is None:
            raise DatabaseUnavailable("the database is not reachable")
        try:
            async with self.pool.acquire() as conn:
                new, stopped = await store.record_payment(
                    conn, account_id, amount, paid_at, reference
                )
        except DB_ERRORS as err:
            raise DatabaseUnavailable(f"payment not saved: {err}") from err
        hung_up = 0
        for run in self.campaigns.values():
            hung_up += await self._cancel_ringing(run, account_id)
        if new:
            for name in stopped or [n for n in self.campaigns]:
                if name in self.campaigns:
                    self.m.dialer_payments.labels(campaign=name).inc()
                    self.m.dialer_collected_amount.labels(campaign=name).inc(float(amount))
                    break
        log.info("dialer.paid", stopped=len(stopped), new=new, ringing_hung_up=hung_up)
        return {"recorded": new, "stopped_campaigns": stopped, "lines_hung_up": hung_up}

    async def disposition(
        self,
        call_id: str,
        agent_id: str,
        code: str,
        note: str,
        body: dict[str, Any],
    ) -> bool:
        """A disposition for a dialer call; False if the call is not one (the ACD's then)."""
        if self.pool is None:
            return False
        try:
            async with self.pool.acquire() as conn:
                row = await store.attempt_row(conn, call_id)
        except DB_ERRORS as err:
            raise DatabaseUnavailable(f"disposition not saved: {err}") from err
        if row is None:
            return False
        run = self.get(row["campaign"])
        now = self.wall()
        checked = dispositions.check(
            dispositions.find(run.settings.dispositions, code, f"campaign {run.settings.name!r}"),
            body,
            now,
            now.date(),
        )
        d, amount = checked.code, checked.amount
        promise, callback_at = checked.promise_date, checked.callback_at
        who = body.get("callback_agent", "same")
        if who not in ("same", "any"):
            raise BadRequest("'callback_agent' is 'same' or 'any'")
        name = run.settings.name
        self.record(
            DialerDispositionFact(
                call_id,
                agent_id,
                code,
                note,
                now,
                name,
                row["account_id"],
                None if amount is None else str(amount),
                None if promise is None else promise.isoformat(),
                callback_at,
                d.right_party,
            )
        )
        self.m.dialer_dispositions.labels(campaign=name, code=code).inc()
        if d.right_party:
            self.m.dialer_right_party_contacts.labels(campaign=name).inc()
        if d.promise and amount is not None:
            self.m.dialer_promises.labels(campaign=name).inc()
            self.m.dialer_promised_amount.labels(campaign=name).inc(float(amount))
        state, next_at, stop, bad, cb_agent = "done", None, None, None, None
        if d.paid:
            state, stop = "stopped", "paid"
        elif d.then == "callback":
            state, next_at = "scheduled", callback_at
            cb_agent = agent_id if who == "same" else None
        elif d.then == "retry":
            state = "scheduled"
            # Spoken to but not settled: the next calling day, like a machine's retry.
            next_at = compliance.next_attempt_at(
                "machine",
                run.rules,
                run.window,
                run.caps,
                run.settings.default_zone,
                now,
                [now],
            )
            if next_at is None:
                state = "done"
        elif d.then == "bad_number":
            state, next_at, bad = "scheduled", now, row["phone"]
        elif d.then == "done":
            stop = "disposition"
        self.record(
            RecordScheduledFact(
                row["record_id"], state, next_at, f"disposition:{code}", stop, bad, cb_agent
            )
        )
        log.info("dialer.disposition", campaign=name, code=code, then=d.then)
        return True


def compliance_dnc(path: Any) -> frozenset[str]:
    from sambung.dialer.lists import parse_dnc

    with open(path, encoding="utf-8") as fh:
        return parse_dnc(fh)


def _plan_view(d: pacing.PacingDecision, inputs: dict[str, Any] | None) -> dict[str, Any]:
    """The last pacing round: its decision, why, and what the engine knew then."""
    return {
        "dial": d.dial,
        "reason": d.reason,
        "warmup": d.warmup,
        "gain": round(d.share, 5),
        "target": round(d.target, 5),
        "answer_rate": round(d.answer_rate, 4),
        "expected_free": round(d.expected_free, 3),
        "expected_answers": round(d.expected_answers, 3),
        "expected_abandons": round(d.expected_abandons, 4),
        "budget": d.budget,
        "inputs": inputs,
    }


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


__all__ = ["DialerService", "ZoneInfo", "campaign_queue", "queue_of"]

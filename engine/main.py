"""The composition root: the one place that knows every part and wires them together.

Start-up: metrics -> database pool (lazy, so a database that is briefly down does not stop
calls) -> schema check -> fact writer -> HTTP -> ARI event stream -> AMI.
Shutdown is staged, the reverse of the work's dependencies: stop taking new calls -> let live
calls finish (bounded by ``drain_timeout_seconds``) -> hang up what is left -> close ARI and
AMI -> write the remaining facts (or spill them to the spool) -> close HTTP and the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
import structlog
from aiohttp import web

from acd import dispositions
from acd import store as acd_store
from acd.agents import Agent, AgentState, StateChange
from acd.call import QueueCallInfo, QueueRunner, bridge_for_queue
from acd.callback import CallbackRunner
from acd.facts import AgentStateFact, AgentUpsertFact, DispositionFact
from acd.features import FeatureCodes
from acd.hub import AgentHub
from acd.service import (
    AcdService,
    CallbackHistory,
    CallbackLookupFailed,
    Entry,
    Offer,
    TransferRequest,
)
from asterisk.ami.adapter import AmiAdapter, FullyBooted
from asterisk.ari.client import AriClient
from asterisk.telephony import AriTelephony
from auth.ratelimit import Limits
from auth.service import AuthService, SessionPolicy
from console.app import Console
from dialer import store as dialer_store
from dialer.call import AttemptRunner
from dialer.facts import DialerDispositionFact
from dialer.importer import ImportProgress, import_list
from dialer.phones import InvalidPhone, normalise_phone
from dialer.service import DialerService, campaign_queue, queue_of
from engine import db
from engine.calendar_config import CalendarBook, unknown_days_open
from engine.calendars import HolidayCalendar
from engine.calls import CallDispatcher, CallInbox
from engine.config import AcdSettings, Settings
from engine.errors import (
    BadRequest,
    ConfigError,
    DatabaseUnavailable,
    NotFound,
    SambungError,
    TelephonyError,
)
from engine.events import CallOffered, DeviceChanged, TelephonyConnected, TelephonyLost
from engine.facts import CallStartedFact, FactWriter, OpenCallsClosedFact
from engine.http import HttpDeps, RoleToken, build_app
from engine.metrics import Metrics, build_metrics
from engine.tasks import TaskSet
from ivr.flows import FlowTable, load_flow_table
from ivr.model import GreetingFlow
from ivr.retention import run_digits_retention
from ivr.runner import IvrRunner
from ivr.service import GreetingService
from recordings import Recordings
from recordings import setup as setup_recordings

log = structlog.get_logger(__name__)


ORPHAN_GRACE_SECONDS = 2.0
CALLS_REMEMBERED = 5000
PROMISES_CACHE_SECONDS = 5.0


class SchemaBehind(SambungError):
    error_id = "db.schema_behind"
    title = "Database schema is behind"


# How often the calendars' days-left gauge is brought up to date.
CALENDAR_REFRESH_SECONDS = 3600.0


class Engine:
    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or build_metrics()
        self.asterisk_id = ""
        self._db_ok = False
        self.http_port: int | None = None
        self.started = asyncio.Event()
        self.telephony: AriTelephony | None = None
        self.dispatcher: CallDispatcher | None = None
        self.facts: FactWriter | None = None
        self._pool: asyncpg.Pool | None = None
        self._service_tasks = TaskSet("services")
        self._greeting: GreetingService | None = None
        self._ivr: IvrRunner | None = None
        self.flows = FlowTable()
        self.hub = AgentHub()
        self.acd = AcdService(with_campaign_queues(settings), self.metrics)
        self.acd.agents.listeners.append(self._agent_changed)
        self.acd.start_callback = self._start_callback
        self._queues: QueueRunner | None = None
        self._callbacks: CallbackRunner | None = None
        self._features: FeatureCodes | None = None
        self.recordings: Recordings | None = None
        # One id per engine run: agent state rows are numbered within a run.
        self.run_id = uuid.uuid4().hex[:12]
        self._queued_calls: set[str] = set()
        self._imports: dict[int, ImportProgress] = {}
        # One set of holiday calendars for the IVR and the dialer; a bad override file stops
        # start-up here, naming the file and the key.
        self.calendars = CalendarBook(settings.calendars, self.metrics)
        self.calendars.use(self.calendars.load())
        self.acd.reload_calendars(self.calendars.current)
        self.acd.callback_lookup = self._callback_history
        self.dialer = DialerService(
            settings.dialer,
            self.acd,
            self.metrics,
            engine_instance=settings.engine.instance_id,
            calendars=self.calendars.current,
        )
        self.auth: AuthService | None = None
        self.console: Console | None = None
        # Which agents were offered or connected to which call, and the call's context (queue,
        # IVR attributes, debtor): for "an agent acts only on their own calls" and for the
        # disposition schema of the call's queue. The most recent calls only.
        self._calls_seen: OrderedDict[str, tuple[dict[str, Any], set[str]]] = OrderedDict()
        self.hub.taps.append(self._remember_call)
        self._promises_today: tuple[float, dict[str, dict[str, Any]]] = (-1e9, {})

    # ---- who handled which call ------------------------------------------------------------

    def _remember_call(self, msg: dict[str, Any]) -> None:
        if msg.get("type") not in ("offered", "connected"):
            return
        call = msg.get("call")
        if not isinstance(call, dict) or not call.get("call_id"):
            return
        cid = str(call["call_id"])
        _, agents = self._calls_seen.pop(cid, ({}, set()))
        agents.add(str(msg["agent_id"]))
        self._calls_seen[cid] = (call, agents)
        while len(self._calls_seen) > CALLS_REMEMBERED:
            self._calls_seen.popitem(last=False)

    def call_context(self, call_id: str) -> dict[str, Any] | None:
        seen = self._calls_seen.get(call_id)
        return None if seen is None else seen[0]

    async def call_handled_by(self, call_id: str, agent_id: str) -> bool:
        seen = self._calls_seen.get(call_id)
        if seen is not None and agent_id in seen[1]:
            return True
        agent = self.acd.agents.find(agent_id)
        if agent is not None and agent.call_id == call_id:
            return True
        if self._pool is None:
            return False
        try:
            return bool(
                await self._pool.fetchval(
                    """SELECT EXISTS (SELECT 1 FROM call_legs WHERE call_id = $1 AND agent_id = $2)
                           OR EXISTS (SELECT 1 FROM dial_attempts
                                      WHERE call_id = $1 AND agent_id = $2)""",
                    call_id,
                    agent_id,
                )
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            raise DatabaseUnavailable(f"cannot check the call's agent: {err}") from err

    # ---- readiness and API views ---------------------------------------------------------

    def readiness(self) -> dict[str, bool]:
        tel = self.telephony
        return {"ari": bool(tel and tel.is_connected), "database": self._db_ok}

    def active_calls(self) -> list[dict[str, Any]]:
        if self.dispatcher is None:
            return []
        return [
            {
                "call_id": o.call_id,
                "did": o.did,
                "caller": o.caller_number,
                "offered_at": o.at.isoformat(),
            }
            for o in self.dispatcher.active_calls.values()
        ]

    async def call_record(self, call_id: str) -> dict[str, Any] | None:
        assert self._pool is not None
        row = await self._pool.fetchrow("SELECT * FROM calls WHERE call_id = $1", call_id)
        if row is None:
            return None
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}

    # ---- reconciliation ---------------------------------------------------------------------

    def _on_connection(self, event: TelephonyConnected | TelephonyLost) -> None:
        if isinstance(event, TelephonyLost):
            return
        if self.acd.queues or self.acd.agents.all():
            self._service_tasks.start(self._acd_sync(), name="acd-sync")
        assert self.dispatcher is not None
        assert self.facts is not None
        self.asterisk_id = event.asterisk_id
        owned = set(self.dispatcher.active_calls)
        now = datetime.now(UTC)
        if event.restarted:
            n = self.dispatcher.end_calls(None, "asterisk_restart")
            log.warning("reconcile.asterisk_restarted", calls_lost=n)
            self.facts.record(
                OpenCallsClosedFact(self.settings.engine.instance_id, [], now, "asterisk_restart")
            )
            return
        vanished = owned - event.live_call_ids
        if vanished:
            self.dispatcher.end_calls(vanished, "lost_while_disconnected")
            log.warning("reconcile.calls_vanished", count=len(vanished))
        if not event.first_connect:
            self.dispatcher.resync_calls(owned & event.live_call_ids)
        if event.first_connect:
            # Rows left open by a previous run of this instance: those calls cannot be resumed.
            self.facts.record(
                OpenCallsClosedFact(
                    self.settings.engine.instance_id, sorted(owned), now, "engine_restart"
                )
            )
        orphans = event.live_call_ids - owned
        if orphans:
            log.warning("reconcile.orphans", count=len(orphans))
            assert self.telephony is not None
            self._service_tasks.start(self._hangup_orphans(orphans), name="hangup-orphans")

    async def _hangup_orphans(self, call_ids: frozenset[str]) -> None:
        # A call that entered Stasis while we were reconciling shows up in GET /channels before
        # its StasisStart reaches the dispatcher (the stream holds events until reconciliation
        # is done). Give those a moment to be claimed; only what is still unowned is an orphan
        # (a call left by a previous engine process, whose state we cannot rebuild).
        await asyncio.sleep(ORPHAN_GRACE_SECONDS)
        assert self.telephony is not None
        assert self.dispatcher is not None
        for cid in call_ids - set(self.dispatcher.active_calls):
            log.warning("reconcile.orphan_hangup", call_id=cid)
            await self.telephony.hangup_orphan(cid)

    # ---- the ACD ---------------------------------------------------------------------------

    async def _acd_sync(self) -> None:
        """After each (re)connect: the queues' holding bridges, and every phone's state.

        Device-state events missed while disconnected are made good by asking for each phone.
        """
        tel = self.telephony
        assert tel is not None
        for name, q in self.acd.queues.items():
            try:
                await tel.ensure_holding_bridge(bridge_for_queue(name), q.moh_class)
            except TelephonyError as err:
                log.error("acd.bridge_setup_failed", queue=name, error=str(err))
        for agent in self.acd.agents.all():
            try:
                state = await tel.device_state(agent.profile.device)
            except TelephonyError as err:
                log.warning("acd.device_state_failed", agent=agent.profile.agent_id, error=str(err))
                continue
            self.acd.agents.phone_state(agent, _online(state))
        log.info("acd.synced", queues=len(self.acd.queues), agents=len(self.acd.agents.all()))

    def _on_device(self, event: DeviceChanged) -> None:
        agent = self.acd.agents.by_device(event.device)
        if agent is not None:
            online = _online(event.state)
            if online != agent.online:
                log.info(
                    "acd.phone", agent=agent.profile.agent_id, online=online, state=event.state
                )
            self.acd.agents.phone_state(agent, online)

    def _agent_changed(self, agent: Agent, change: StateChange) -> None:
        assert self.facts is not None
        self.facts.record(
            AgentStateFact(
                change.agent_id,
                self.settings.engine.instance_id,
                self.run_id,
                change.seq,
                change.at,
                change.state.value,
                change.previous.value,
                change.reason,
                change.call_id,
                change.source,
            )
        )
        log.info(
            "agent.state",
            agent=change.agent_id,
            state=change.state.value,
            reason=change.reason or None,
            previous=change.previous.value,
            source=change.source,
        )
        self.hub.publish(
            change.agent_id,
            "state",
            state=change.state.value,
            reason=change.reason,
            previous=change.previous.value,
            at=change.at.isoformat(),
            call_id=change.call_id,
        )

    def _start_callback(self, entry: Entry, offer: Offer) -> None:
        assert self.dispatcher is not None
        cb = self._callbacks
        assert cb is not None
        attempt = f"{entry.call_id}-{entry.callback_attempts + 1}-{offer.leg_id[-6:]}"

        async def work(inbox: CallInbox) -> None:
            await cb.run(attempt, entry, offer, inbox)

        if not self.dispatcher.start_owned(attempt, work):
            self.acd.agents.offer_failed(offer.agent_id, entry.call_id, "busy")
            self.acd.back_to_queue(entry, offer.agent_id, "busy")

    async def _callback_history(self, e164: str, raw: str, since: datetime) -> CallbackHistory:
        """What PostgreSQL knows about a number the ACD may call back (do-not-call, callbacks
        made); CallbackLookupFailed when it cannot say."""
        if self._pool is None:
            raise CallbackLookupFailed("no database yet")
        try:
            async with self._pool.acquire() as conn:
                dnc, dials = await acd_store.callback_history(
                    conn, e164, (raw, e164.removeprefix("+")), since
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            raise CallbackLookupFailed("the database did not answer") from err
        return CallbackHistory(dnc, dials)

    async def _restore_agents(self) -> None:
        """Agents keep their state across an engine restart (their calls do not)."""
        assert self._pool is not None
        assert self.facts is not None
        now = datetime.now(UTC)
        for agent in self.acd.agents.all():
            p = agent.profile
            self.facts.record(
                AgentUpsertFact(
                    p.agent_id,
                    p.name,
                    p.endpoint,
                    p.team,
                    json.dumps(dict(p.skills)),
                    sorted(p.queues),
                    now,
                )
            )
        try:
            rows = await self._pool.fetch(
                """SELECT DISTINCT ON (agent_id) agent_id, state, reason, at
                   FROM agent_states ORDER BY agent_id, at DESC, seq DESC"""
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            log.warning("acd.restore_failed", error=str(err))
            return
        for row in rows:
            state = AgentState(row["state"])
            if state in (AgentState.LOGGED_OUT, AgentState.PAUSED):
                self.acd.agents.restore(row["agent_id"], state, row["reason"], row["at"])
            else:
                # Mid-call states died with the previous run: the agent is available again
                # once the phone is confirmed registered (paused until then).
                self.acd.agents.restore(
                    row["agent_id"], AgentState.PAUSED, "phone_offline", row["at"]
                )
        self.acd.refresh_agent_gauges()

    # -- API for the ACD --

    def agents_view(self) -> list[dict[str, object]]:
        return [a.view() for a in self.acd.agents.all()]

    def agent_action(self, agent_id: str, action: str, reason: str = "") -> dict[str, object]:
        book = self.acd.agents
        match action:
            case "login":
                agent = book.login(agent_id, "api")
            case "ready":
                agent = book.make_ready(agent_id, "api")
            case "pause":
                agent = book.pause(agent_id, reason or "break", "api")
            case "logout":
                agent = book.logout(agent_id, "api")
            case "end-wrap-up":
                agent = book.end_wrap_up(agent_id, "api")
            case _:
                raise NotFound(f"no agent action {action!r}")
        return agent.view()

    def transfer(self, call_id: str, queue: str | None, agent_id: str | None) -> None:
        assert self.dispatcher is not None
        if (queue is None) == (agent_id is None):
            raise BadRequest("give exactly one of 'queue' or 'agent_id'")
        if queue is not None:
            self.acd.queue(queue)
        if agent_id is not None:
            agent = self.acd.agents.get(agent_id)
            if not agent.profile.queues:
                raise BadRequest(f"agent {agent_id!r} serves no queue to wait in")
        inbox = self.dispatcher.inbox_of(call_id)
        if inbox is None or call_id not in self._queued_calls:
            raise NotFound(f"call {call_id!r} is not in a queue or with an agent")
        inbox.post_local(TransferRequest(queue, agent_id))

    async def disposition(
        self,
        call_id: str,
        agent_id: str,
        code: str,
        note: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        assert self.facts is not None
        assert self._pool is not None
        agent = self.acd.agents.get(agent_id)
        if await self.dialer.disposition(call_id, agent_id, code, note, details or {}):
            if agent.state is AgentState.WRAP_UP and agent.call_id == call_id:
                self.acd.agents.end_wrap_up(agent_id, "api")
            return
        try:
            known = (
                await self._pool.fetchval("SELECT 1 FROM calls WHERE call_id = $1", call_id)
                or call_id in self._queued_calls
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # The database is away: the fact waits in the writer's queue, as every fact does;
            # only a call we have never heard of is refused.
            known = True
        if not known:
            raise NotFound(f"no call with id {call_id!r}")
        now = datetime.now(UTC)
        context = self.call_context(call_id) or await self._queue_context(call_id, agent_id)
        queue = self.acd.queues.get(str(context.get("queue", "")))
        if queue is not None and queue.dispositions:
            checked = dispositions.check(
                dispositions.find(queue.dispositions, code, f"queue {queue.name!r}"),
                details or {},
                now,
                now.date(),
            )
            attrs = context.get("attributes") or {}
            self.facts.record(
                DialerDispositionFact(
                    call_id,
                    agent_id,
                    code,
                    note,
                    now,
                    None,
                    attrs.get("account") or attrs.get("account_id"),
                    None if checked.amount is None else str(checked.amount),
                    None if checked.promise_date is None else checked.promise_date.isoformat(),
                    checked.callback_at,
                    checked.code.right_party,
                )
            )
        else:
            self.facts.record(DispositionFact(call_id, agent_id, code, note, now))
        if agent.state is AgentState.WRAP_UP and agent.call_id == call_id:
            self.acd.agents.end_wrap_up(agent_id, "api")  # the disposition is the wrap-up's end

    async def _queue_context(self, call_id: str, agent_id: str) -> dict[str, Any]:
        """The queue a call was answered from, when it is older than the calls remembered."""
        if self._pool is None:
            return {}
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            queue = await self._pool.fetchval(
                """SELECT queue FROM queue_entries WHERE call_id = $1 AND agent_id = $2
                   ORDER BY enqueued_at DESC LIMIT 1""",
                call_id,
                agent_id,
            )
            if queue is not None:
                return {"queue": queue}
        return {}

    async def previous_promises(self, account_id: str) -> list[dict[str, Any]]:
        """The account's latest promises to pay (the agent's call card)."""
        if self._pool is None or not account_id:
            return []
        async with self._pool.acquire() as conn:
            return await dialer_store.promises_of(conn, account_id)

    async def wallboard(self) -> dict[str, Any]:
        """The floor at a glance: queues, agents by state, campaigns (supervisors' screen)."""
        queues = [{k: v for k, v in q.items() if k != "calls"} for q in self.acd.view()]
        agents = [a.view() for a in self.acd.agents.all()]
        now = datetime.now(UTC)
        for a in agents:
            since = datetime.fromisoformat(str(a["since"]))
            a["seconds_in_state"] = round(max(0.0, (now - since).total_seconds()), 1)
        promises = await self._promises_by_campaign()
        campaigns = []
        for name in self.dialer.campaigns:
            view = self.dialer.view(name)
            view["promises_today"] = promises.get(name, {"count": 0, "amount": "0"})
            campaigns.append(view)
        return {
            "at": now.isoformat(),
            "queues": queues,
            "agents": agents,
            "campaigns": campaigns,
            "calendars": self.calendar_alerts(),
        }

    def calendar_alerts(self) -> list[dict[str, object]]:
        """Calendars a supervisor must hear about: lapsing within 60 days, or blocking the
        dialer today (with the campaigns they block)."""
        self.calendars.refresh()
        blocked = self.dialer.calendar_blocked()
        out = []
        for c in self.calendars.view():
            stopped = sorted(n for n, cal in blocked.items() if cal == c["calendar"])
            if c["warning"] is None and not stopped:
                continue
            out.append({**c, "blocked_campaigns": stopped})
        return out

    async def _promises_by_campaign(self) -> dict[str, dict[str, Any]]:
        # Every open wallboard asks each second; PostgreSQL is asked at most every 5 s.
        loop_now = asyncio.get_running_loop().time()
        at, cached = self._promises_today
        if loop_now - at < PROMISES_CACHE_SECONDS or self._pool is None:
            return cached
        since = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        try:
            rows = await self._pool.fetch(
                """SELECT campaign, count(*) AS n, coalesce(sum(amount), 0) AS amount
                   FROM dispositions WHERE at >= $1 AND promise_date IS NOT NULL
                     AND campaign IS NOT NULL
                   GROUP BY campaign""",
                since,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return cached
        fresh = {r["campaign"]: {"count": r["n"], "amount": str(r["amount"])} for r in rows}
        self._promises_today = (loop_now, fresh)
        return fresh

    # ---- the dialer's API ------------------------------------------------------------------

    def campaigns_view(self) -> list[dict[str, Any]]:
        return [self.dialer.view(n) for n in self.dialer.campaigns]

    async def campaign_detail(self, name: str) -> dict[str, Any]:
        view = self.dialer.view(name)
        if self._pool is None:
            return view
        since = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        try:
            async with self._pool.acquire() as conn:
                view["kpis"] = await dialer_store.kpis(conn, name, since)
                view["attempts_today"] = await dialer_store.outcome_counts(conn, name, since)
                view["records"] = await dialer_store.record_counts(conn, name)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            view["kpis_error"] = f"database unavailable: {err}"
        return view

    async def campaign_action(self, name: str, action: str) -> dict[str, Any]:
        return await self.dialer.set_state(name, action)

    async def start_import(self, name: str, text: str, source: str) -> dict[str, Any]:
        run = self.dialer.get(name)
        if self._pool is None:
            raise DatabaseUnavailable("the database is not reachable")
        pool = self._pool
        got_id: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def started(import_id: int) -> None:
            if not got_id.done():
                got_id.set_result(import_id)

        def progress(p: ImportProgress) -> None:
            self._imports[p.import_id] = p

        async def work() -> None:
            try:
                await import_list(
                    pool,
                    run.settings,
                    text,
                    source=source,
                    metrics=self.metrics,
                    on_progress=progress,
                    started=started,
                )
            except SambungError as err:
                if not got_id.done():
                    got_id.set_exception(err)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
                if not got_id.done():
                    got_id.set_exception(DatabaseUnavailable(f"import failed: {err}"))
                log.warning("dialer.import_failed", campaign=name, error=str(err))

        self._service_tasks.start(work(), name=f"import-{name}")
        import_id = await got_id
        return {"import_id": import_id, "campaign": name, "state": "running"}

    async def import_status(self, import_id: int) -> dict[str, Any]:
        assert self._pool is not None
        row = await self._pool.fetchrow(
            "SELECT * FROM list_imports WHERE import_id = $1", import_id
        )
        if row is None:
            raise NotFound(f"no import with id {import_id}")
        out: dict[str, Any] = {
            k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()
        }
        out["problems"] = json.loads(row["problems"]) if row["problems"] else []
        live = self._imports.get(import_id)
        if live is not None and row["state"] == "running":
            out["rows_parsed"] = live.rows_read
            out["records_written"] = live.written
            out["records_total"] = live.total_records
        return out

    async def paid(
        self, account_id: str, amount: Decimal, paid_at: datetime, reference: str
    ) -> dict[str, Any]:
        return await self.dialer.paid(account_id, amount, paid_at, reference)

    async def preview_next(self, name: str, agent_id: str) -> dict[str, Any] | None:
        return await self.dialer.preview_next(name, agent_id)

    async def preview_dial(self, name: str, record_id: int, agent_id: str) -> dict[str, Any]:
        return await self.dialer.preview_dial(name, record_id, agent_id)

    async def add_dnc(self, phones: list[str], accounts: list[str], reason: str) -> dict[str, Any]:
        if self._pool is None:
            raise DatabaseUnavailable("the database is not reachable")
        numbers = []
        for i, raw in enumerate(phones):
            try:
                numbers.append(normalise_phone(raw))
            except InvalidPhone as err:
                raise BadRequest(f"phones[{i}] {raw!r}: {err.detail}") from err
        async with self._pool.acquire() as conn:
            n_p = await dialer_store.add_dnc(conn, "phone", numbers, reason)
            n_a = await dialer_store.add_dnc(conn, "account", accounts, reason)
        return {"phones": n_p, "accounts": n_a}

    # ---- background loops ---------------------------------------------------------------

    async def _watch_database(self) -> None:
        assert self._pool is not None
        was_ok: bool | None = None
        while True:
            try:
                async with asyncio.timeout(2):
                    await self._pool.fetchval("SELECT 1")
                ok = True
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                ok = False
            self._db_ok = ok
            self.metrics.db_up.set(1 if ok else 0)
            if ok != was_ok:
                log.log(20 if ok else 40, "db.up" if ok else "db.down")
                was_ok = ok
            await asyncio.sleep(5)

    async def _on_fully_booted(self, booted: FullyBooted) -> None:
        # AMI sees a (re)booted Asterisk sometimes before the ARI socket notices it dropped.
        if self.telephony is not None:
            self.telephony.request_resync("ami_fully_booted")

    # ---- the whole life ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        async with AsyncExitStack() as stack:
            # min_size=0: no connection is made up front, so a database that is down at start
            # delays facts (they queue) instead of refusing calls.
            self._pool = await db.connect_pool(
                s.database.url.get_secret_value(), min_size=0, max_size=s.database.pool_max
            )
            stack.push_async_callback(self._pool.close)
            await self._check_schema()
            self.flows = self.load_flows()
            for warning in self.flows.warnings:
                log.warning("ivr.flow_warning", detail=warning)
            for w in self.calendars.warnings():
                log.warning("calendars.warning", calendar=w.calendar, detail=w.text)

            s.engine.spool_dir.mkdir(parents=True, exist_ok=True)
            self.facts = FactWriter(
                self._pool,
                self.metrics,
                s.engine.spool_dir / f"facts-{s.engine.instance_id}.jsonl",
                s.database.retry_max_seconds,
            )
            self.facts.replay_spool()
            self._service_tasks.start(self._watch_calendars(), name="calendar-watch")

            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=50, keepalive_timeout=10)
            )
            stack.push_async_callback(session.close)
            client = AriClient(
                session,
                s.ari.url,
                s.ari.username,
                s.ari.password.get_secret_value(),
                s.ari.app,
                metrics=self.metrics,
                timeout=s.ari.request_timeout_seconds,
            )
            self.dispatcher = CallDispatcher(
                handler=self._handle_call,
                refuse=self._refuse_call,
                metrics=self.metrics,
                on_connection=self._on_connection,
                on_device=self._on_device,
            )
            self.telephony = AriTelephony(
                client=client,
                session=session,
                sink=self.dispatcher.dispatch,
                metrics=self.metrics,
                heartbeat=s.ari.heartbeat_seconds,
                backoff_initial=s.ari.backoff_initial_seconds,
                backoff_max=s.ari.backoff_max_seconds,
                # Registration and use of every agent's phone, without the event volume of an
                # endpoint subscription (ari-notes 1.4 and pitfall 13).
                subscriptions=[f"deviceState:{a.profile.device}" for a in self.acd.agents.all()],
            )
            self._greeting = self._greeting_service(self.telephony, self.facts)
            campaign_of = {queue_of(c.name): c.name for c in s.dialer.campaigns}.get
            self.recordings = setup_recordings(
                s, client, self._pool, self.facts.record, campaign_of
            )
            self._queues = QueueRunner(
                self.acd,
                self.telephony,
                self.facts.record,
                self.metrics,
                self.hub,
                max_silent_seconds=s.calls.max_silent_seconds,
                talk_hooks=self.recordings.service,
            )
            self._callbacks = CallbackRunner(
                self.acd,
                self.telephony,
                self.facts.record,
                self.metrics,
                self.hub,
                s.engine.instance_id,
                lambda: self.asterisk_id,
                s.acd.callback_trunk,
            )
            self._features = FeatureCodes(
                self.acd.agents,
                {a.id: a.pin.get_secret_value() for a in s.acd.agents},
                self.telephony,
                self.facts.record,
                self.metrics,
                s.engine.instance_id,
                lambda: self.asterisk_id,
            )
            await self._restore_agents()
            await self.dialer.start(
                self._pool,
                self.dispatcher,
                AttemptRunner(self.telephony, self._queues, self.facts.record, self.metrics),
                self.facts.record,
                lambda: self.asterisk_id,
            )
            self._ivr = IvrRunner(
                telephony=self.telephony,
                record=self.facts.record,
                http=session,
                metrics=self.metrics,
                engine_instance=s.engine.instance_id,
                asterisk_id=lambda: self.asterisk_id,
                max_silent_seconds=s.calls.max_silent_seconds,
                takes_queue=self._queues.knows,
            )

            self.auth = AuthService(
                self._pool,
                self.facts,
                SessionPolicy(
                    timedelta(hours=s.auth.session_hours), timedelta(minutes=s.auth.idle_minutes)
                ),
                Limits(
                    s.auth.login_failures_per_user,
                    s.auth.login_failures_per_address,
                    s.auth.login_window_minutes * 60,
                ),
                agent_exists=lambda a: self.acd.agents.find(a) is not None,
                logins=self.metrics.auth_logins,
            )
            if s.console.enabled:
                self.console = Console(self, s.console)
            runner = web.AppRunner(
                build_app(
                    HttpDeps(
                        tokens=[t.get_secret_value() for t in s.http.api_tokens],
                        registry=self.metrics.registry,
                        readiness=self.readiness,
                        active_calls=self.active_calls,
                        call_record=self.call_record,
                        flows=self.flows_view,
                        reload_flows=self.reload_flows,
                        acd=self,
                        dialer=self,
                        role_tokens=[
                            RoleToken(t.name, t.token.get_secret_value(), t.role)
                            for t in s.http.role_tokens
                        ],
                        extra_routes=self.recordings.add_routes,
                        auth=self.auth,
                        cookie_secure=s.auth.cookie_secure,
                        call_handled_by=self.call_handled_by,
                        wallboard=self.wallboard,
                        console_routes=None if self.console is None else self.console.add_routes,
                        allowed_origins=s.http.allowed_origins,
                    )
                ),
                access_log=None,
            )
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, s.http.host, s.http.port)
            await site.start()
            server = getattr(site, "_server", None)
            sockets = getattr(server, "sockets", None) or []
            self.http_port = sockets[0].getsockname()[1] if sockets else s.http.port

            services = self._service_tasks
            writer_task = services.start(self.facts.run(), name="fact-writer")
            services.start(self._watch_database(), name="db-watch")
            ari_task = services.start(self.telephony.run(), name="ari")
            services.start(self.dialer.run(), name="dialer")
            services.start(self.recordings.service.run_mover(), name="recordings-mover")
            services.start(self.recordings.service.run_retention(), name="recordings-retention")
            if s.ivr.digits_retention_days > 0:
                services.start(
                    run_digits_retention(self._pool, s.ivr.digits_retention_days),
                    name="ivr-digits-retention",
                )
            ami: AmiAdapter | None = None
            ami_task: asyncio.Task[Any] | None = None
            if s.ami.enabled:
                ami = AmiAdapter(
                    s.ami.host,
                    s.ami.port,
                    s.ami.username,
                    s.ami.secret.get_secret_value(),
                    self.metrics,
                    on_fully_booted=self._on_fully_booted,
                    ping_interval=s.ami.ping_interval_seconds,
                    ping_timeout=s.ami.ping_timeout_seconds,
                )
                ami_task = services.start(ami.run(), name="ami")

            log.info(
                "engine.started",
                http=f"{s.http.host}:{self.http_port}",
                instance=s.engine.instance_id,
                hotlines=len(s.hotlines),
            )
            self.started.set()
            stop_wait = asyncio.get_running_loop().create_task(stop.wait(), name="stop-wait")
            try:
                # A crash of the fact writer or the ARI supervisor ends the engine: without them
                # it would take calls it can neither control nor record.
                done, _ = await asyncio.wait(
                    [stop_wait, writer_task, ari_task], return_when=asyncio.FIRST_COMPLETED
                )
                for t in done:
                    if t is not stop_wait and not t.cancelled() and t.exception() is not None:
                        log.error("engine.service_crashed", task=t.get_name())
            finally:
                stop_wait.cancel()
                await self._shutdown(ari_task, ami_task, writer_task)

    async def _shutdown(
        self,
        ari_task: asyncio.Task[Any],
        ami_task: asyncio.Task[Any] | None,
        writer_task: asyncio.Task[Any],
    ) -> None:
        s = self.settings
        assert self.dispatcher is not None
        assert self.facts is not None
        log.info("engine.stopping", stage="stop_dialing", lines=len(self.dispatcher.tasks))
        await self.dialer.stop()
        log.info("engine.stopping", stage="stop_new_calls", active=len(self.dispatcher.tasks))
        drained = await self.dispatcher.drain(s.engine.drain_timeout_seconds)
        if not drained:
            log.warning(
                "engine.stopping", stage="hangup_remaining", left=len(self.dispatcher.tasks)
            )
            await self.dispatcher.tasks.cancel_all()
        if self.recordings is not None:
            await self.recordings.close()  # recordings stopped, monitoring ended, journalled
        log.info("engine.stopping", stage="close_adapters")
        for t in (ami_task, ari_task):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        log.info("engine.stopping", stage="write_facts", pending=self.facts.pending)
        await self.facts.drain(timeout=5.0)
        await self._service_tasks.cancel_all()
        log.info("engine.stopped")

    async def _check_schema(self) -> None:
        assert self._pool is not None
        try:
            async with self._pool.acquire() as conn:
                pending = await db.pending_migrations(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            log.warning("db.unreachable_at_start", error=str(err))
            return
        if pending:
            names = ", ".join(f"{m.version:04d}_{m.name}" for m in pending)
            raise SchemaBehind(f"pending migrations ({names}): run 'sambung migrate' first")
        self._db_ok = True

    def _greeting_service(self, telephony: AriTelephony, facts: FactWriter) -> GreetingService:
        s = self.settings
        flows = {
            h.did: GreetingFlow(h.name, tuple(h.greeting), h.language, "completed")
            for h in s.hotlines
        }
        unknown = GreetingFlow(
            "unknown-number", tuple(s.calls.unknown_number_prompts), "en", "unknown_number"
        )
        return GreetingService(
            telephony=telephony,
            record=facts.record,
            flows_by_did=flows,
            unknown_number=unknown,
            engine_instance=s.engine.instance_id,
            asterisk_id=lambda: self.asterisk_id,
            max_silent_seconds=s.calls.max_silent_seconds,
        )

    async def _handle_call(self, offer: CallOffered, inbox: CallInbox) -> None:
        if offer.kind == "feature":
            assert self._features is not None
            await self._features.handle(offer, inbox)
            return
        # The flow is picked once, here: a reload later never changes a call in progress.
        flow = self.flows.by_did.get(offer.did)
        if flow is not None:
            assert self._ivr is not None
            handoff = await self._ivr.handle(offer, inbox, flow)
            if handoff is not None:
                info = QueueCallInfo(
                    offer.call_id,
                    handoff.queue,
                    offer.caller_number,
                    offer.caller_name,
                    offer.did,
                    handoff.language or None,
                    handoff.attributes,
                    answered=True,
                )
                await self._queue_call(info, inbox)
            return
        hotline = self.settings.hotline_for(offer.did)
        if hotline is not None and hotline.queue is not None:
            assert self.facts is not None
            self.facts.record(
                CallStartedFact(
                    offer.call_id,
                    "inbound",
                    offer.channel_name,
                    offer.did,
                    offer.caller_number,
                    offer.caller_name,
                    hotline.name,
                    self.asterisk_id,
                    self.settings.engine.instance_id,
                    offer.at,
                )
            )
            info = QueueCallInfo(
                offer.call_id,
                hotline.queue,
                offer.caller_number,
                offer.caller_name,
                offer.did,
                hotline.language,
                {"caller_number": offer.caller_number, "did": offer.did},
                answered=False,
            )
            await self._queue_call(info, inbox)
            return
        assert self._greeting is not None
        await self._greeting.handle(offer, inbox)

    async def _queue_call(self, info: QueueCallInfo, inbox: CallInbox) -> None:
        assert self._queues is not None
        assert self.facts is not None
        self._queued_calls.add(info.call_id)
        try:
            await self._queues.run(info, inbox)
        finally:
            self._queued_calls.discard(info.call_id)

    # ---- flows ---------------------------------------------------------------------------

    def load_flows(self, calendars: Mapping[str, HolidayCalendar] | None = None) -> FlowTable:
        s = self.settings
        root = s.ivr.sounds_root
        if s.ivr.flows and root is not None and not root.is_dir():
            # Without this every prompt would be reported missing, which hides the real cause.
            raise ConfigError(
                str(s.source or "(settings)"),
                "ivr.sounds_root",
                f"an existing folder, but {root} is not there: start the sandbox "
                "(ops/sandbox up) or remove the key to skip the prompt check",
            )
        reserved = {h.did: f"hotline {h.name!r} in the settings file" for h in s.hotlines}
        return load_flow_table(
            s.ivr.flows,
            queues=[*s.ivr.queues, *(q.name for q in s.acd.queues)],
            sounds_root=s.ivr.sounds_root,
            max_menu_depth=s.ivr.max_menu_depth,
            reserved_dids=reserved,
            calendars=calendars if calendars is not None else self.calendars.current,
            unknown_days_open=unknown_days_open(s.calendars),
        )

    def flows_view(self) -> list[dict[str, object]]:
        return self.flows.describe()

    async def reload_flows(self) -> list[dict[str, object]]:
        """Load every flow file again and swap them in as one; a bad file changes nothing.

        Calls already in a flow keep the version they started with (they hold it).
        """
        # Holiday calendars first (override files may have changed): the flows are checked
        # against the new ones, and nothing is swapped unless both load.
        try:
            calendars = await asyncio.to_thread(self.calendars.load)
        except SambungError as err:
            self.metrics.calendar_reloads.labels(result="refused").inc()
            self.metrics.ivr_flow_reloads.labels(result="refused").inc()
            log.error("calendars.reload_refused", error=str(err))
            raise
        try:
            table = await asyncio.to_thread(self.load_flows, calendars)
        except SambungError as err:
            self.metrics.calendar_reloads.labels(result="refused").inc()
            self.metrics.ivr_flow_reloads.labels(result="refused").inc()
            log.error("ivr.reload_refused", error=str(err))
            raise
        self.calendars.use(calendars)
        self.dialer.reload_calendars(calendars)
        self.acd.reload_calendars(calendars)
        self.metrics.calendar_reloads.labels(result="ok").inc()
        for w in self.calendars.warnings():
            log.warning("calendars.warning", calendar=w.calendar, detail=w.text)
        self.flows = table
        for warning in table.warnings:
            log.warning("ivr.flow_warning", detail=warning)
        self.metrics.ivr_flow_reloads.labels(result="ok").inc()
        view = table.describe()
        log.info("ivr.reloaded", flows=[f"{f['flow']}@{f['version']}" for f in view])
        return view

    async def _watch_calendars(self) -> None:
        """Count the days-left gauge down as days pass (the alert reads it) and say the
        calendar warnings again each new day; the calendars themselves change on reload."""
        said: date | None = datetime.now(UTC).date()
        while True:
            await asyncio.sleep(CALENDAR_REFRESH_SECONDS)
            self.calendars.refresh()
            today = datetime.now(UTC).date()
            if today != said:
                said = today
                for w in self.calendars.warnings():
                    log.warning("calendars.warning", calendar=w.calendar, detail=w.text)

    def request_reload(self) -> None:
        """From a signal handler (SIGHUP): reload in a task the engine owns."""
        self._service_tasks.start(self._reload_quietly(), name="reload-flows")

    async def _reload_quietly(self) -> None:
        # A refused reload is logged by reload_flows; the old flows stay.
        with contextlib.suppress(SambungError):
            await self.reload_flows()

    async def _refuse_call(self, offer: CallOffered) -> None:
        assert self._greeting is not None
        await self._greeting.refuse(offer)


def _online(device_state: str) -> bool:
    """A registered phone: any aggregate device state but these (ari-notes 1.4)."""
    return device_state not in ("UNAVAILABLE", "INVALID", "UNKNOWN")


def with_campaign_queues(settings: Settings) -> AcdSettings:
    """The ACD's settings with one queue per campaign, and each campaign agent serving it."""
    acd = settings.acd
    campaigns = settings.dialer.campaigns
    if not campaigns:
        return acd
    members: dict[str, list[str]] = {a.id: list(a.queues) for a in acd.agents}
    for c in campaigns:
        for a in acd.agents:
            skilled = c.skill is not None and a.skills.get(c.skill, 0) >= c.min_level
            if a.id in c.agents or skilled:
                members[a.id].append(queue_of(c.name))
    return acd.model_copy(
        update={
            "queues": [*acd.queues, *(campaign_queue(c) for c in campaigns)],
            "agents": [a.model_copy(update={"queues": members[a.id]}) for a in acd.agents],
        }
    )

"""The composition root: builds the features, runs them, and stops them.

Each feature wires itself (its ``setup`` and ``start``); the start order and the staged
shutdown are in ``engine/lifecycle.py``, reconciliation with Asterisk in ``engine/reconcile.py``,
which feature takes a new call in ``engine/inbound.py``, and the reload of calendars and flows
in ``engine/reload.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import structlog
from aiohttp import web

import acd as acd_feature
import dialer as dialer_feature
import ivr as ivr_feature
import wallboard as wallboard_feature
from acd.feature import Acd
from asterisk.ami.adapter import AmiAdapter, FullyBooted
from asterisk.ari.client import AriClient
from asterisk.telephony import AriTelephony
from auth.ratelimit import Limits
from auth.service import AuthService, SessionPolicy
from console import ConsoleServices
from console.app import Console
from dialer.feature import Dialer
from engine import db
from engine.calendar_config import CalendarBook
from engine.calls import CallDispatcher
from engine.config import Settings
from engine.facts import FactWriter
from engine.http import HttpDeps, RoleToken, build_app
from engine.inbound import CallRouter
from engine.lifecycle import check_schema, staged_shutdown, watch_database
from engine.metrics import Metrics, build_metrics
from engine.reconcile import Reconciler
from engine.reload import Reloader
from engine.shell import Shell
from engine.tasks import TaskSet
from ivr.feature import Ivr
from recordings import Recordings
from recordings import setup as setup_recordings
from wallboard import Wallboard

log = structlog.get_logger(__name__)


class Engine:
    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or build_metrics()
        self.http_port: int | None = None
        self.started = asyncio.Event()
        self._db_ok = False
        self._services = TaskSet("services")
        # One id per engine run: agent state rows are numbered within a run.
        self.run_id = uuid.uuid4().hex[:12]
        # One set of holiday calendars for the IVR, the dialer and the ACD's callbacks; a bad
        # override file stops start-up here, naming the file and the key.
        self.calendars = CalendarBook(settings.calendars, self.metrics)
        self.calendars.use(self.calendars.load())
        self.acd: Acd = acd_feature.setup(
            dialer_feature.campaign_queues(settings),
            settings.calls,
            self.metrics,
            settings.engine.instance_id,
            self.run_id,
        )
        self.acd.service.reload_calendars(self.calendars.current)
        self.dialer: Dialer = dialer_feature.setup(
            settings.dialer,
            self.acd,
            self.metrics,
            settings.engine.instance_id,
            self.calendars.current,
        )
        self.wallboard: Wallboard = wallboard_feature.setup(self.acd, self.dialer, self.calendars)
        self.reloader = Reloader(
            self.calendars, self.acd, self.dialer, self.metrics, self._services
        )
        self.ivr: Ivr = ivr_feature.setup(settings)
        self.reloader.ivr = self.ivr
        self.facts: FactWriter | None = None
        self.telephony: AriTelephony | None = None
        self.dispatcher: CallDispatcher | None = None
        self.recordings: Recordings | None = None
        self.auth: AuthService | None = None
        self.console: Console | None = None
        self._pool: asyncpg.Pool | None = None

    # ---- what the shell's own routes show -------------------------------------------------

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

    def request_reload(self) -> None:
        """From a signal handler (SIGHUP)."""
        self.reloader.request()

    def _db_up(self, ok: bool) -> None:
        self._db_ok = ok

    # ---- the whole life -------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        services = self._services
        async with AsyncExitStack() as stack:
            # min_size=0: no connection is made up front, so a database that is down at start
            # delays facts (they queue) instead of refusing calls.
            pool = await db.connect_pool(
                s.database.url.get_secret_value(), min_size=0, max_size=s.database.pool_max
            )
            self._pool = pool
            stack.push_async_callback(pool.close)
            self._db_ok = await check_schema(pool)
            ivr = self.ivr
            ivr.use(ivr.load(self.calendars.current))
            self.reloader.log_calendar_warnings()

            s.engine.spool_dir.mkdir(parents=True, exist_ok=True)
            self.facts = facts = FactWriter(
                pool,
                self.metrics,
                s.engine.spool_dir / f"facts-{s.engine.instance_id}.jsonl",
                s.database.retry_max_seconds,
            )
            facts.replay_spool()
            services.start(self.reloader.watch_calendars(), name="calendar-watch")

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
            reconciler = Reconciler(s.engine.instance_id, facts.record, services, self.acd.sync)
            router = CallRouter(
                s.hotline_for,
                ivr,
                self.acd,
                facts.record,
                s.engine.instance_id,
                lambda: reconciler.asterisk_id,
            )
            self.dispatcher = dispatcher = CallDispatcher(
                handler=router.handle,
                refuse=router.refuse,
                metrics=self.metrics,
                on_connection=reconciler.on_connection,
                on_device=self.acd.on_device,
            )
            self.telephony = telephony = AriTelephony(
                client=client,
                session=session,
                sink=dispatcher.dispatch,
                metrics=self.metrics,
                heartbeat=s.ari.heartbeat_seconds,
                backoff_initial=s.ari.backoff_initial_seconds,
                backoff_max=s.ari.backoff_max_seconds,
                subscriptions=self.acd.device_subscriptions(),
            )
            reconciler.bind(dispatcher, telephony)
            shell = Shell(
                metrics=self.metrics,
                pool=pool,
                record=facts.record,
                telephony=telephony,
                ari=client,
                http=session,
                dispatcher=dispatcher,
                tasks=services,
                instance_id=s.engine.instance_id,
                asterisk_id=lambda: reconciler.asterisk_id,
            )

            self.recordings = recordings = setup_recordings(
                s, client, pool, facts.record, self.dialer.campaign_of
            )
            await self.acd.start(shell, recordings.service)
            assert self.acd.queues is not None
            await self.dialer.start(shell, self.acd.queues)
            ivr.start(shell, self.acd.takes_queue)
            self.auth = auth = AuthService(
                pool,
                facts,
                SessionPolicy(
                    timedelta(hours=s.auth.session_hours), timedelta(minutes=s.auth.idle_minutes)
                ),
                Limits(
                    s.auth.login_failures_per_user,
                    s.auth.login_failures_per_address,
                    s.auth.login_window_minutes * 60,
                ),
                agent_exists=lambda a: self.acd.service.agents.find(a) is not None,
                logins=self.metrics.auth_logins,
            )
            features: list[Any] = [
                recordings.add_routes,
                lambda app: self.acd.add_routes(app, auth, 15.0),
                self.dialer.add_routes,
                lambda app: ivr.add_routes(app, self.reloader.reload),
                self.wallboard.add_routes,
            ]
            if s.console.enabled:
                self.console = Console(self.console_services(), s.console)
                features.append(self.console.add_routes)
            await self._serve_http(stack, features)

            writer_task = services.start(facts.run(), name="fact-writer")
            services.start(watch_database(pool, self.metrics, self._db_up), name="db-watch")
            ari_task = services.start(telephony.run(), name="ari")
            services.start(self.dialer.service.run(), name="dialer")
            services.start(recordings.service.run_mover(), name="recordings-mover")
            services.start(recordings.service.run_retention(), name="recordings-retention")
            ami_task = self._start_ami()

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
                await staged_shutdown(
                    dialer=self.dialer,
                    dispatcher=dispatcher,
                    drain_timeout=s.engine.drain_timeout_seconds,
                    recordings=recordings,
                    adapters=[ami_task, ari_task],
                    facts=facts,
                    services=services,
                )

    def console_services(self) -> ConsoleServices:
        """What the console uses, and nothing else."""
        return ConsoleServices(
            auth=self.auth,
            cookie_secure=self.settings.auth.cookie_secure,
            agents=self.acd.service.agents,
            hub=self.acd.hub,
            agent_action=self.acd.agent_action,
            handled_by=self.acd.index.handled_by,
            disposition=self.acd.desk.save,
            dialer=self.dialer,
            wallboard=self.wallboard.view,
            monitor=None if self.recordings is None else self.recordings.monitor,
            streams=self.metrics.console_streams,
            queue_dispositions={q.name: list(q.dispositions) for q in self.settings.acd.queues},
            campaign_dispositions={
                c.name: list(c.dispositions) for c in self.settings.dialer.campaigns
            },
        )

    async def _serve_http(self, stack: AsyncExitStack, features: list[Any]) -> None:
        s = self.settings
        runner = web.AppRunner(
            build_app(
                HttpDeps(
                    tokens=[t.get_secret_value() for t in s.http.api_tokens],
                    registry=self.metrics.registry,
                    readiness=self.readiness,
                    active_calls=self.active_calls,
                    call_record=self.call_record,
                    role_tokens=[
                        RoleToken(t.name, t.token.get_secret_value(), t.role)
                        for t in s.http.role_tokens
                    ],
                    features=features,
                    auth=self.auth,
                    cookie_secure=s.auth.cookie_secure,
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

    def _start_ami(self) -> asyncio.Task[Any] | None:
        s = self.settings
        if not s.ami.enabled:
            return None
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
        return self._services.start(ami.run(), name="ami")

    async def _on_fully_booted(self, booted: FullyBooted) -> None:
        # AMI sees a (re)booted Asterisk sometimes before the ARI socket notices it dropped.
        if self.telephony is not None:
            self.telephony.request_resync("ami_fully_booted")

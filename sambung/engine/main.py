"""The composition root: builds the features, runs them, and stops them.

Each feature wires itself (its ``setup`` and ``start``); the start order and the staged
shutdown are in ``engine/lifecycle.py``, reconciliation with Asterisk in ``engine/reconcile.py``,
which feature takes a new call in ``engine/inbound.py``, and the reload of calendars and flows
in ``engine/reload.py``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import structlog
from aiohttp import web

import sambung.acd as acd_feature
import sambung.dialer as dialer_feature
import sambung.ivr as ivr_feature
import sambung.wallboard as wallboard_feature
from sambung.acd.feature import Acd
from sambung.asterisk.ami.adapter import AmiAdapter, FullyBooted
from sambung.asterisk.ari.client import AriClient
from sambung.asterisk.telephony import AriTelephony
from sambung.auth.ratelimit import Limits
from sambung.auth.service import AuthService, SessionPolicy
from sambung.console import ConsoleServices
from sambung.console import config as console_config
from sambung.console.app import Console
from sambung.dialer.feature import Dialer
from sambung.engine import db
from sambung.engine.calendar_config import CalendarBook
from sambung.engine.calls import CallDispatcher, StartRecorder
from sambung.engine.config import LEASE_MARGIN_SECONDS, Settings
from sambung.engine.events import HeldCall, HeldMonitor
from sambung.engine.facts import FactWriter
from sambung.engine.http import HttpDeps, RoleToken, build_app
from sambung.engine.inbound import CallRouter
from sambung.engine.lease import LeaseKeeper, LeaseTimes, Role, claim_instance
from sambung.engine.lifecycle import check_schema, staged_shutdown, watch_database
from sambung.engine.metrics import Metrics, build_metrics, watch_event_loop_lag
from sambung.engine.reconcile import Reconciler
from sambung.engine.reload import Reloader
from sambung.engine.shell import Shell
from sambung.engine.tasks import TaskSet
from sambung.ivr.feature import Ivr
from sambung.recordings import Recordings
from sambung.recordings import config as recordings_config
from sambung.recordings import setup as setup_recordings
from sambung.wallboard import Wallboard

log = structlog.get_logger(__name__)

# EX_TEMPFAIL: a fenced engine exits with this; its supervisor (systemd, compose) starts it
# again and it comes back as a standby.
EXIT_FENCED = 75
# How long a fenced engine waits for its spool to reach the disk before it exits (the spool's
# writer thread is usually a few milliseconds behind).
FENCED_FLUSH_SECONDS = 2.0


def exit_fenced() -> None:
    """Stop at once, as a crash would: every fact is already in the spool (written ahead), and
    the engine that holds the lease now adopts the calls, as after a kill -9. A clean
    shutdown would act on calls this engine no longer owns."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_FENCED)


class Engine:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics | None = None,
        on_fenced: Callable[[], None] = exit_fenced,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or build_metrics()
        self._on_fenced = on_fenced
        self.lease: LeaseKeeper | None = None
        self._router: CallRouter | None = None
        self._stopping = False
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
        # Each feature converts its own settings; the dialer's live answers wait in ACD queues
        # of its own, so the ACD's config gets them before the ACD is built.
        dialer_config = dialer_feature.config(settings.dialer)
        self.acd: Acd = acd_feature.setup(
            dialer_feature.campaign_queues(
                acd_feature.config(settings.acd, settings.calls), dialer_config
            ),
            self.metrics,
            settings.engine.instance_id,
            self.run_id,
            sweep_every_instance=settings.engine.lease,
        )
        self.acd.service.reload_calendars(self.calendars.current)
        self.dialer: Dialer = dialer_feature.setup(
            dialer_config,
            self.acd,
            self.metrics,
            settings.engine.instance_id,
            self.calendars.current,
            sweep_every_instance=settings.engine.lease,
        )
        self.wallboard: Wallboard = wallboard_feature.setup(self.acd, self.dialer, self.calendars)
        self.reloader = Reloader(
            self.calendars, self.acd, self.dialer, self.metrics, self._services
        )
        self.ivr: Ivr = ivr_feature.setup(ivr_feature.config(settings))
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
        checks = {"ari": bool(tel and tel.is_connected), "database": self._db_ok}
        if self.settings.engine.lease:
            checks["lease"] = self.acting()
        return checks

    def role(self) -> str:
        """ "active" drives Asterisk; "standby" waits for the lease (``[engine] lease``)."""
        if not self.settings.engine.lease:
            return Role.ACTIVE.value
        return Role.ACTIVE.value if self.acting() else Role.STANDBY.value

    def acting(self) -> bool:
        """May this engine change calls now? Without a lease always; with one, only while it is
        held (the local deadline included) and ARI has not given our app to another engine."""
        if not self.settings.engine.lease:
            return True
        tel = self.telephony
        return self.lease is not None and self.lease.acting() and not (tel and tel.replaced)

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
            # The writer starts first and writes what a previous run left in the spool before
            # the features read their state back from PostgreSQL (not waited for while the
            # database is away: calls are taken meanwhile, and the facts wait on disk).
            replaying = facts.replay_spool()
            writer_task = services.start(facts.run(), name="fact-writer")
            if replaying and self._db_ok and not await facts.replayed(15.0):
                log.warning("engine.spool_replay_unfinished", pending=facts.pending)
            services.start(self.reloader.watch_calendars(), name="calendar-watch")
            # Standbys too: a standby that cannot keep its loop on time would take over late.
            services.start(watch_event_loop_lag(self.metrics.event_loop_lag), name="loop-lag")
            # One listening socket for the engine's whole life: a standby answers /ready on it,
            # and the full service takes it over without a moment of refused connections.
            listener = self._listen()
            stack.callback(listener.close)
            if s.engine.lease and not await self._stand_by(pool, listener, stop):
                await self._stop_standing_by(facts, services)  # stopped while standing by
                return

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
                acting=self.acting if s.engine.lease else None,
            )
            reconciler = Reconciler(
                s.engine.instance_id,
                facts.record,
                services,
                self.acd.sync,
                self._take_over,
                sweep_every_instance=s.engine.lease,
            )
            self._router = router = CallRouter(s.hotline_for, ivr, self.acd)
            self.dispatcher = dispatcher = CallDispatcher(
                handler=router.handle,
                refuse=router.refuse,
                metrics=self.metrics,
                on_connection=reconciler.on_connection,
                on_device=self.acd.on_device,
                starts=StartRecorder(
                    facts.record,
                    s.engine.instance_id,
                    lambda: reconciler.asterisk_id,
                    router.hotline_of,
                ),
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
                recordings_config(s), client, pool, facts.record, self.dialer.campaign_of
            )
            await self.acd.start(shell, recordings.service)
            assert self.acd.queues is not None
            await self.dialer.start(shell, self.acd)
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
                self.console = Console(self.console_services(), console_config(s.console))
                features.append(self.console.add_routes)
            await self._serve_http(stack, features, listener)

            services.start(watch_database(pool, self.metrics, self._db_up), name="db-watch")
            ari_task = services.start(telephony.run(), name="ari")
            services.start(self.dialer.service.run(), name="dialer")
            services.start(recordings.service.run_mover(), name="recordings-mover")
            services.start(recordings.service.run_retention(), name="recordings-retention")
            ami_task = self._start_ami()

            if not s.engine.lease:
                # One engine, no lease: it is the active one for as long as it runs.
                self.metrics.engine_active.labels(instance=s.engine.instance_id).set(1)
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
                if s.engine.lease and telephony.replaced:
                    # Another engine connected to our ARI app: it holds the lease, or believes
                    # it does. Either way this one must not touch a call again.
                    self._fenced("ARI gave our application to another connection")
                    return
            finally:
                stop_wait.cancel()
                self._stopping = True
                await staged_shutdown(
                    dialer=self.dialer,
                    dispatcher=dispatcher,
                    drain_timeout=s.engine.drain_timeout_seconds,
                    recordings=recordings,
                    adapters=[ami_task, ari_task],
                    facts=facts,
                    services=services,
                    hand_over=self._hand_over if s.engine.on_stop == "handover" else None,
                    let_go=self.acd.let_go,
                )
                if self.lease is not None:
                    # Let the lease go at once: a standby need not wait for it to lapse.
                    await self.lease.release()

    # ---- hot standby ------------------------------------------------------------------------

    async def _stand_by(
        self, pool: asyncpg.Pool, listener: socket.socket, stop: asyncio.Event
    ) -> bool:
        """Wait, warm, until this engine holds the lease (True) or is asked to stop (False).

        Settings, calendars, flows and the database pool are ready by now and the spool has
        been replayed: taking over is connecting to Asterisk and adopting its calls."""
        s = self.settings
        instance = s.engine.instance_id
        times = LeaseTimes(
            s.engine.lease_ttl_seconds, s.engine.lease_renew_seconds, LEASE_MARGIN_SECONDS
        )
        active = self.metrics.engine_active.labels(instance=instance)
        active.set(0)
        # A duplicate instance id that is alive refuses the start (DuplicateInstance) before
        # this engine answers anything, so it is never taken for a standby; a database that is
        # down is waited for: without it nobody can hold the lease.
        while True:
            try:
                async with pool.acquire() as conn:
                    await claim_instance(conn, instance, self.run_id, times.ttl_seconds)
                break
            except db.DB_ERRORS as err:
                log.warning("engine.standby_waiting_for_database", error=str(err))
                if await _stopped_within(stop, times.renew_every_seconds):
                    return False
        runner = await self._serve_standby(listener)
        try:
            became = asyncio.Event()
            self.lease = keeper = LeaseKeeper(
                pool,
                instance,
                self.run_id,
                times,
                on_active=lambda _token: became.set(),
                on_fenced=lambda: self._fenced("the lease was lost"),
            )
            self._services.start(keeper.run(), name="lease")
            log.info("engine.standby", instance=instance, http=f"{s.http.host}:{self.http_port}")
            waits = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(became.wait()),
            ]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            if not became.is_set():
                return False
        finally:
            await runner.cleanup()
        active.set(1)
        previous = keeper.previous_holder
        if previous and previous != instance:
            self.metrics.engine_takeovers.labels(instance=instance).inc()
        log.warning("engine.active", instance=instance, token=keeper.token, previous=previous)
        return True

    async def _stop_standing_by(self, facts: FactWriter, services: TaskSet) -> None:
        self._stopping = True
        if self.lease is not None:
            await self.lease.release()
        log.info("engine.stopping", stage="write_facts", pending=facts.pending)
        await facts.drain(timeout=5.0)
        await services.cancel_all()
        log.info("engine.stopped")

    def _take_over(
        self, held: Sequence[HeldCall], monitors: Sequence[HeldMonitor], first_connect: bool
    ) -> set[str]:
        """Callers an earlier engine left: in queues and talks to the ACD (which also closes,
        at the first connect, the entries nobody took over, and gives debtors' live answers to
        the dialer), in no bridge to the IVR (a caller in a flow is there)."""
        assert self._router is not None
        calls = [h for h in held if h.in_bridge and h.customer_leg is None]
        taken = self.acd.take_over(calls, first_connect)
        taken |= self.acd.take_over_callbacks([h for h in held if h.customer_leg is not None])
        if first_connect:
            # The dialer's live answers the earlier run left and nobody took over are lost.
            self.dialer.taken_over(taken)
        unbridged = [h for h in held if not h.in_bridge]
        taken |= self.ivr.take_over(unbridged, self._router.to_queue)
        if self.recordings is not None:
            # After the talks: a session goes on watching the talk it was on.
            taken |= self.recordings.monitor.take_over(monitors)
        return taken

    def _hand_over(self) -> int:
        """A graceful stop leaves callers in queues, talks and flows to the next engine."""
        return self.acd.hand_over() + self.ivr.hand_over()

    def _fenced(self, why: str) -> None:
        self.metrics.engine_active.labels(instance=self.settings.engine.instance_id).set(0)
        if self._stopping:
            return  # a clean stop lets the lease go; nothing left to fence
        log.error("engine.fenced", instance=self.settings.engine.instance_id, reason=why)
        if self.facts is not None and not self.facts.flush_spool(FENCED_FLUSH_SECONDS):
            log.error("engine.fenced_spool_unflushed", pending=self.facts.pending)
        self._on_fenced()

    async def _serve_standby(self, listener: socket.socket) -> web.AppRunner:
        """/health, /ready (503, role "standby") and /metrics while waiting for the lease."""
        return await self._serve(listener, features=[], active_calls=lambda: [])

    def _listen(self) -> socket.socket:
        s = self.settings
        family, kind, proto, _, addr = socket.getaddrinfo(
            s.http.host, s.http.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
        sock.setblocking(False)
        self.http_port = sock.getsockname()[1]
        return sock

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
            queue_dispositions={q.name: q.dispositions for q in self.acd.settings.queues},
            campaign_dispositions={
                name: run.settings.dispositions
                for name, run in self.dialer.service.campaigns.items()
            },
        )

    async def _serve_http(
        self, stack: AsyncExitStack, features: list[Any], listener: socket.socket
    ) -> None:
        runner = await self._serve(listener, features, self.active_calls, auth=self.auth)
        stack.push_async_callback(runner.cleanup)

    async def _serve(
        self,
        listener: socket.socket,
        features: list[Any],
        active_calls: Callable[[], list[dict[str, Any]]],
        auth: AuthService | None = None,
    ) -> web.AppRunner:
        s = self.settings
        runner = web.AppRunner(
            build_app(
                HttpDeps(
                    tokens=[t.get_secret_value() for t in s.http.api_tokens],
                    registry=self.metrics.registry,
                    readiness=self.readiness,
                    role=self.role,
                    active_calls=active_calls,
                    call_record=self.call_record,
                    role_tokens=[
                        RoleToken(t.name, t.token.get_secret_value(), t.role)
                        for t in s.http.role_tokens
                    ],
                    features=features,
                    auth=auth,
                    cookie_secure=s.auth.cookie_secure,
                    allowed_origins=s.http.allowed_origins,
                    trusted_proxies=s.http.trusted_proxies,
                )
            ),
            access_log=None,
        )
        await runner.setup()
        # A copy of the socket: closing the server closes the copy, the listener stays open.
        await web.SockSite(runner, listener.dup()).start()
        return runner

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


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True

"""The IVR feature object: what ``setup`` builds and the rest of the engine uses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

import structlog
from aiohttp import web

from sambung.engine.calendars import HolidayCalendar
from sambung.engine.calls import CallInbox
from sambung.engine.db import DB_ERRORS
from sambung.engine.errors import ConfigError, TelephonyError
from sambung.engine.events import CallOffered, HeldCall
from sambung.engine.facts import CallEndedFact, Fact, IvrSessionEndedFact
from sambung.engine.ports import Telephony
from sambung.engine.shell import Shell
from sambung.ivr.flows import FlowTable, load_flow_table
from sambung.ivr.greeting import UNKNOWN_NUMBER_FLOW, greeting_flow
from sambung.ivr.http import add_routes
from sambung.ivr.model import Flow, IvrConfig
from sambung.ivr.resume import LiveState, StateUnreadable, plan_resumption
from sambung.ivr.retention import run_digits_retention
from sambung.ivr.runner import Handoff, HandOverAsked, IvrRunner
from sambung.ivr.store import OpenSession, open_session

# How long a call taken over keeps trying to read its session before it is let go, and how
# long one read may take.
SESSION_READ_SECONDS = 10.0
SESSION_READ_TRY_SECONDS = 2.0
# What a flow's caller goes on to after a hand-off: the queue (the engine's call router).
ToQueue = Callable[[CallOffered, CallInbox, Handoff], Awaitable[None]]

log = structlog.get_logger(__name__)


class Ivr:
    """The IVR as the rest of the engine sees it."""

    def __init__(self, settings: IvrConfig) -> None:
        self._settings = settings
        # Empty until the engine runs: the flow files are read then (and on each reload).
        self.flows = FlowTable()
        self._runner: IvrRunner | None = None
        # Hotlines with neither a flow nor a queue are greeted by a flow of their own.
        self._greetings = {
            h.did: greeting_flow(h.name, (h.did,), h.greeting, h.language, "completed")
            for h in settings.hotlines
            if h.queue is None
        }
        self._unknown = greeting_flow(
            UNKNOWN_NUMBER_FLOW, (), settings.unknown_number_prompts, "en", "unknown_number"
        )
        self._tel: Telephony | None = None
        self._record: Callable[[Fact], None] | None = None
        self._shell: Shell | None = None
        # Calls running a flow (call id -> flow): at a graceful stop those in a flow of the
        # flow files are handed over; greetings are short and end on their own.
        self._in_flows: dict[str, Flow] = {}

    def load(self, calendars: Mapping[str, HolidayCalendar]) -> FlowTable:
        """Every flow file, checked against the queues, the prompts on disk and ``calendars``;
        ConfigError or FlowError naming every problem when one is wrong."""
        s = self._settings
        root = s.sounds_root
        if s.flows and root is not None and not root.is_dir():
            # Without this every prompt would be reported missing, which hides the real cause.
            raise ConfigError(
                s.source,
                "ivr.sounds_root",
                f"an existing folder, but {root} is not there: start the sandbox "
                "(ops/sandbox up) or remove the key to skip the prompt check",
            )
        reserved = {h.did: f"hotline {h.name!r} in the settings file" for h in s.hotlines}
        return load_flow_table(
            s.flows,
            queues=s.transfer_queues,
            sounds_root=s.sounds_root,
            max_menu_depth=s.max_menu_depth,
            reserved_dids=reserved,
            calendars=calendars,
            unknown_days_open=s.unknown_days_open,
        )

    def use(self, table: FlowTable) -> None:
        """Swap in a loaded table. Calls already in a flow keep the version they started
        with (they hold it)."""
        self.flows = table
        self.log_warnings()

    def log_warnings(self) -> None:
        for warning in self.flows.warnings:
            log.warning("ivr.flow_warning", detail=warning)

    def flow_for(self, did: str) -> Flow | None:
        return self.flows.by_did.get(did)

    def view(self) -> list[dict[str, object]]:
        return self.flows.describe()

    def start(self, shell: Shell, takes_queue: Callable[[str], bool]) -> None:
        s = self._settings
        self._runner = IvrRunner(
            telephony=shell.telephony,
            record=shell.record,
            http=shell.http,
            metrics=shell.metrics,
            max_silent_seconds=s.max_silent_seconds,
            takes_queue=takes_queue,
            safeguard_seconds=s.adopt_within_seconds,
        )
        self._tel = shell.telephony
        self._record = shell.record
        self._shell = shell
        if s.digits_retention_days > 0:
            shell.tasks.start(
                run_digits_retention(shell.pool, s.digits_retention_days),
                name="ivr-digits-retention",
            )

    def add_routes(
        self, app: web.Application, reload: Callable[[], Awaitable[list[dict[str, object]]]]
    ) -> None:
        add_routes(app, self.view, reload)

    # ---- calls ----------------------------------------------------------------------------

    async def run_flow(self, offer: CallOffered, inbox: CallInbox, flow: Flow) -> Handoff | None:
        assert self._runner is not None
        with self._in_flow(offer.call_id, flow):
            return await self._runner.handle(offer, inbox, flow)

    @contextlib.contextmanager
    def _in_flow(self, call_id: str, flow: Flow) -> Iterator[None]:
        """The call is listed while its task runs the flow."""
        self._in_flows[call_id] = flow
        try:
            yield
        finally:
            self._in_flows.pop(call_id, None)

    def _flow_named(self, name: str) -> Flow | None:
        for flow in self.flows.flows:
            if flow.name == name:
                return flow
        return None

    def hand_over(self) -> int:
        """A graceful stop leaves callers in flows to the next engine: each call's task stops
        where it is, leaving the caller in Asterisk and its session open with the node it is
        at (``ivr/resume.py``); the next engine resumes it there. Returns how many were asked."""
        assert self._shell is not None
        dispatcher = self._shell.dispatcher
        greetings = {id(self._unknown), *(id(g) for g in self._greetings.values())}
        asked = 0
        for call_id, flow in list(self._in_flows.items()):
            inbox = dispatcher.inbox_of(call_id)
            # The next engine resumes a call by its flow's name, from the flow files.
            resumable = id(flow) not in greetings and self._flow_named(flow.name) is not None
            if resumable and inbox is not None:
                inbox.post_local(HandOverAsked())
                asked += 1
        return asked

    def take_over(self, held: Sequence[HeldCall], to_queue: ToQueue) -> set[str]:
        """Answered callers an earlier engine left in no bridge (``held``): a caller in an IVR
        flow is there. Each gets a task at once (whether it is in a flow is PostgreSQL's to
        say, and the reconciler must know now which calls are taken); the task reads the
        call's session and resumes the flow at its node, whose prompt plays again. A call
        with no open session, or whose flow this engine does not have, is let go as an orphan
        would be (hung up, its rows closed). Returns the call ids taken."""
        assert self._shell is not None
        dispatcher = self._shell.dispatcher
        taken: set[str] = set()
        for h in held:
            offer = CallOffered(
                h.call_id, h.channel_name, h.did, h.caller_number, h.caller_name, h.at
            )

            async def work(inbox: CallInbox, o: CallOffered = offer) -> None:
                await self._carry_on(o, inbox, to_queue)

            if dispatcher.adopt(offer, work):
                taken.add(h.call_id)
        if taken:
            log.info("ivr.found_unbridged", calls=len(taken))
        return taken

    async def _carry_on(self, offer: CallOffered, inbox: CallInbox, to_queue: ToQueue) -> None:
        assert self._shell is not None
        assert self._runner is not None
        session = await self._session(offer.call_id)
        flow = self._flow_named(session.flow) if session is not None else None
        live: LiveState | None = None
        if session is not None and session.live_state is not None:
            try:
                live = LiveState.from_json(session.live_state)
            except StateUnreadable as err:
                log.warning("ivr.state_unreadable", error=str(err))
        if session is None:
            await self._let_go(offer, None, "no open session")
            return
        if flow is None or live is None:
            await self._let_go(
                offer, session, "flow not served here" if flow is None else "no stored state"
            )
            return
        self._shell.metrics.calls_adopted.labels(kind="ivr").inc()
        at = plan_resumption(offer.call_id, live, session.steps_seq)
        with self._in_flow(offer.call_id, flow):
            handoff = await self._runner.resume(offer, inbox, flow, at)
        if handoff is not None:
            await to_queue(offer, inbox, handoff)

    async def _session(self, call_id: str) -> OpenSession | None:
        """The call's open session; None when there is none, or when PostgreSQL did not
        answer within ``SESSION_READ_SECONDS`` (tried again meanwhile): nothing is known."""
        assert self._shell is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SESSION_READ_SECONDS
        while True:
            try:
                async with asyncio.timeout(SESSION_READ_TRY_SECONDS):
                    return await open_session(self._shell.pool, call_id)
            except DB_ERRORS as err:
                if loop.time() >= deadline:
                    log.warning("ivr.session_unread", error=type(err).__name__)
                    return None
            await asyncio.sleep(0.5)

    async def _let_go(self, offer: CallOffered, session: OpenSession | None, why: str) -> None:
        """A caller in no bridge that cannot be carried on: hung up and closed, as the orphan
        sweep would, with the reason in the log."""
        assert self._shell is not None
        log.warning("ivr.not_resumed", why=why)
        try:
            await self._shell.telephony.hangup(offer.call_id)
        except TelephonyError as err:
            log.warning("ivr.let_go_failed", error=str(err))
        now = datetime.now(UTC)
        if session is not None:
            self._shell.record(
                IvrSessionEndedFact(offer.call_id, now, "lost", "engine_restart", "", "", "{}")
            )
        self._shell.record(CallEndedFact(offer.call_id, now, "engine_restart", None, None, None))

    def greeting_for(self, did: str) -> Flow:
        """The greeting of a hotline without a flow or queue; else the unknown-number one."""
        return self._greetings.get(did, self._unknown)

    async def refuse(self, offer: CallOffered) -> None:
        """A call that arrives while the engine is stopping: released at once with congestion,
        so the carrier can try another route or the caller again."""
        assert self._tel is not None
        assert self._record is not None
        try:
            await self._tel.hangup(offer.call_id, reason="congestion")
        except TelephonyError as err:
            log.warning("call.refuse_failed", error=str(err))
        # 34: no circuit available, the cause the congestion hang-up gives the carrier.
        self._record(
            CallEndedFact(offer.call_id, datetime.now(UTC), "refused_shutdown", 34, None, None)
        )

"""The IVR feature object: what ``setup`` builds and the rest of the engine uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import structlog
from aiohttp import web

from engine.calendar_config import unknown_days_open
from engine.calendars import HolidayCalendar
from engine.calls import CallInbox
from engine.config import Settings
from engine.errors import ConfigError
from engine.events import CallOffered
from engine.shell import Shell
from ivr.flows import FlowTable, load_flow_table
from ivr.http import add_routes
from ivr.model import Flow, GreetingFlow
from ivr.retention import run_digits_retention
from ivr.runner import Handoff, IvrRunner
from ivr.service import GreetingService

log = structlog.get_logger(__name__)


class Ivr:
    """The IVR as the rest of the engine sees it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # Empty until the engine runs: the flow files are read then (and on each reload).
        self.flows = FlowTable()
        self._runner: IvrRunner | None = None
        self._greeting: GreetingService | None = None

    def load(self, calendars: Mapping[str, HolidayCalendar]) -> FlowTable:
        """Every flow file, checked against the queues, the prompts on disk and ``calendars``;
        ConfigError or FlowError naming every problem when one is wrong."""
        s = self._settings
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
            calendars=calendars,
            unknown_days_open=unknown_days_open(s.calendars),
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
            engine_instance=shell.instance_id,
            asterisk_id=shell.asterisk_id,
            max_silent_seconds=s.calls.max_silent_seconds,
            takes_queue=takes_queue,
        )
        greetings = {
            h.did: GreetingFlow(h.name, tuple(h.greeting), h.language, "completed")
            for h in s.hotlines
        }
        unknown = GreetingFlow(
            "unknown-number", tuple(s.calls.unknown_number_prompts), "en", "unknown_number"
        )
        self._greeting = GreetingService(
            telephony=shell.telephony,
            record=shell.record,
            flows_by_did=greetings,
            unknown_number=unknown,
            engine_instance=shell.instance_id,
            asterisk_id=shell.asterisk_id,
            max_silent_seconds=s.calls.max_silent_seconds,
        )
        if s.ivr.digits_retention_days > 0:
            shell.tasks.start(
                run_digits_retention(shell.pool, s.ivr.digits_retention_days),
                name="ivr-digits-retention",
            )

    def add_routes(
        self, app: web.Application, reload: Callable[[], Awaitable[list[dict[str, object]]]]
    ) -> None:
        add_routes(app, self.view, reload)

    # ---- calls ----------------------------------------------------------------------------

    async def run_flow(self, offer: CallOffered, inbox: CallInbox, flow: Flow) -> Handoff | None:
        assert self._runner is not None
        return await self._runner.handle(offer, inbox, flow)

    async def greet(self, offer: CallOffered, inbox: CallInbox) -> None:
        """A hotline without a flow or queue, or a number nobody serves: greet and hang up."""
        assert self._greeting is not None
        await self._greeting.handle(offer, inbox)

    async def refuse(self, offer: CallOffered) -> None:
        """A call that arrives while the engine is stopping: told so, politely."""
        assert self._greeting is not None
        await self._greeting.refuse(offer)

"""Reloading the holiday calendars and the IVR flows as one (``sambung reload``, SIGHUP,
``POST /api/v1/flows/reload``), and keeping the calendars' days-left gauge current.

Calendars first (override files may have changed), then the flows checked against them; only
when both load are they swapped in, into the IVR, the dialer's calling windows and the ACD's
callback rules together. A bad file changes nothing and says which file and key.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, date, datetime

import structlog

from sambung.acd.feature import Acd
from sambung.dialer.feature import Dialer
from sambung.engine.calendar_config import CalendarBook
from sambung.engine.errors import SambungError
from sambung.engine.metrics import Metrics
from sambung.engine.tasks import TaskSet
from sambung.ivr.feature import Ivr

log = structlog.get_logger(__name__)

# How often the calendars' days-left gauge is brought up to date.
CALENDAR_REFRESH_SECONDS = 3600.0


class Reloader:
    def __init__(
        self, calendars: CalendarBook, acd: Acd, dialer: Dialer, metrics: Metrics, tasks: TaskSet
    ) -> None:
        self._calendars = calendars
        self._acd = acd
        self._dialer = dialer
        self._m = metrics
        self._tasks = tasks
        self.ivr: Ivr | None = None

    def log_calendar_warnings(self) -> None:
        for w in self._calendars.warnings():
            log.warning("calendars.warning", calendar=w.calendar, detail=w.text)

    async def reload(self) -> list[dict[str, object]]:
        """Load every calendar and flow file again and swap them in as one."""
        ivr = self.ivr
        assert ivr is not None, "flows are reloaded once the engine runs"
        try:
            calendars = await asyncio.to_thread(self._calendars.load)
        except SambungError as err:
            self._refused()
            log.error("calendars.reload_refused", error=str(err))
            raise
        try:
            table = await asyncio.to_thread(ivr.load, calendars)
        except SambungError as err:
            self._refused()
            log.error("ivr.reload_refused", error=str(err))
            raise
        self._calendars.use(calendars)
        self._dialer.service.reload_calendars(calendars)
        self._acd.service.reload_calendars(calendars)
        self._m.calendar_reloads.labels(result="ok").inc()
        self.log_calendar_warnings()
        ivr.use(table)
        self._m.ivr_flow_reloads.labels(result="ok").inc()
        view = table.describe()
        log.info("ivr.reloaded", flows=[f"{f['flow']}@{f['version']}" for f in view])
        return view

    def _refused(self) -> None:
        self._m.calendar_reloads.labels(result="refused").inc()
        self._m.ivr_flow_reloads.labels(result="refused").inc()

    def request(self) -> None:
        """From a signal handler (SIGHUP): reload in a task the engine owns."""
        self._tasks.start(self._quietly(), name="reload-flows")

    async def _quietly(self) -> None:
        # A refused reload is logged by reload(); the old flows stay.
        with contextlib.suppress(SambungError):
            await self.reload()

    async def watch_calendars(self) -> None:
        """Count the days-left gauge down as days pass (the alert reads it) and say the
        calendar warnings again each new day; the calendars themselves change on reload."""
        said: date | None = datetime.now(UTC).date()
        while True:
            await asyncio.sleep(CALENDAR_REFRESH_SECONDS)
            self._calendars.refresh()
            today = datetime.now(UTC).date()
            if today != said:
                said = today
                self.log_calendar_warnings()

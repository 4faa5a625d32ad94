"""The engine's holiday calendars: built from the settings' ``[calendars]``, shared by the
IVR and the dialer, reloaded as a whole, and watched (a gauge of covered days left)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime

import structlog

from sambung.engine.calendars import (
    CalendarWarning,
    HolidayCalendar,
    build_calendar,
    calendar_warnings,
)
from sambung.engine.config import CalendarSettings
from sambung.engine.metrics import Metrics

log = structlog.get_logger(__name__)


def build_calendars(
    specs: Mapping[str, CalendarSettings], today: date
) -> dict[str, HolidayCalendar]:
    """Every named calendar; ConfigError (naming file and key) if an override file is bad."""
    return {
        name: build_calendar(
            name,
            country=spec.country,
            categories=spec.categories,
            overrides=spec.overrides,
            years=spec.years,
            use_package=spec.package,
            today=today,
        )
        for name, spec in specs.items()
    }


def unknown_days_open(specs: Mapping[str, CalendarSettings]) -> list[str]:
    return [n for n, s in specs.items() if s.unknown_days == "open"]


class CalendarBook:
    """The calendars in force. ``load`` builds a new set without touching the current one, so
    a refused reload leaves the engine on the calendars it had."""

    def __init__(
        self,
        specs: Mapping[str, CalendarSettings],
        metrics: Metrics,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.specs = specs
        self.m = metrics
        self.today = today
        self.current: dict[str, HolidayCalendar] = {}

    def load(self) -> dict[str, HolidayCalendar]:
        return build_calendars(self.specs, self.today())

    def use(self, calendars: dict[str, HolidayCalendar]) -> None:
        self.current = calendars
        self.refresh()

    def refresh(self) -> None:
        """Set the days-left gauge (called at start, on reload, and daily by the tick)."""
        today = self.today()
        for name, cal in self.current.items():
            self.m.calendar_days_left.labels(calendar=name).set(min(cal.days_left(today), 36500))

    def warnings(self) -> list[CalendarWarning]:
        return calendar_warnings(self.current, self.today())

    def view(self) -> list[dict[str, object]]:
        """For the API and the wallboard: each calendar's reach and what to warn about."""
        today = self.today()
        # Estimated dates are for whoever keeps the override file, not for the floor.
        warn = {w.calendar: w.text for w in self.warnings() if w.kind != "estimated"}
        out: list[dict[str, object]] = []
        for name, cal in sorted(self.current.items()):
            until = cal.covered_until(today)
            out.append(
                {
                    "calendar": name,
                    "covered_until": None if until in (None, date.max) else str(until),
                    "days_left": min(cal.days_left(today), 36500),
                    "today_known": until is not None,
                    "warning": warn.get(name),
                }
            )
        return out

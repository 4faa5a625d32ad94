"""Holiday calendars shared by the IVR's business hours and the dialer's calling rules.

The days come from the ``holidays`` package (its Indonesian calendar follows each year's joint
decree of three ministers, SKB 3 Menteri, on national holidays and collective leave), plus
override files for what the government changes after publication. A calendar also knows which
days it *covers*: a day in a year that no source speaks for is unknown, and an unknown day is
never a callable day (the dialer blocks with ``calendar_missing``).

Which years the package covers: for a country whose calendar has a ``government`` category
(Indonesia's cuti bersama), a year is covered once the package carries that category for it,
because the collective-leave days are published in the same decree as the national holidays.
A year without them is a year whose decree the package has not caught up with: its religious
holidays are then astronomical estimates, and the year is treated as unknown. Other countries'
calendars are rule-based and cover the package's whole supported range.

Override files (YAML), every change with its source::

    name: Indonesia, changes after publication
    covers: [2028]            # optional: years these files make complete
    changes:
      - add: "2027-03-09"
        name: Cuti bersama Idul Fitri
        source: SKB 3 Menteri ...
      - move: "2027-03-10"    # a date the package (or an earlier change) has
        to: "2027-03-11"
        source: Keputusan Menteri Agama (sidang isbat) ...
      - drop: "2027-12-26"
        source: ...

Errors name the file and the key (``changes[1].move``). Everything here is pure apart from
reading the override files: ``today`` is an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import holidays as holidays_pkg
import yaml

from sambung.engine.errors import ConfigError

# How far around today a calendar is computed. The dialer looks at most 400 days ahead
# (dialer.compliance.MAX_DAYS_AHEAD); a day past the computed years is simply unknown.
YEARS_BEFORE: Final = 1
YEARS_AFTER: Final = 3
# `sambung check-config` and the wallboard warn this long before a calendar runs out.
WARN_DAYS: Final = 60


class CalendarInvalid(ConfigError):
    """An override file (or a calendar's settings) is wrong; a reload keeps the old calendars."""

    error_id = "calendar.invalid"
    title = "Invalid holiday calendar"
    http_status = 422


@dataclass(frozen=True)
class HolidayCalendar:
    """Holidays by date, and the years somebody vouches for.

    ``covered`` None means "no claim about coverage" (a plain list of extra closing days):
    every day counts as known. ``estimated`` are dates the package computed rather than read
    from a decree (Islamic holidays, which the sidang isbat can move by a day).
    """

    days: Mapping[date, str] = field(default_factory=dict)
    covered: frozenset[int] | None = None
    name: str = ""
    estimated: frozenset[date] = frozenset()

    def __contains__(self, d: object) -> bool:
        return d in self.days

    def __hash__(self) -> int:
        return hash((self.name, frozenset(self.days), self.covered))

    def covers(self, d: date) -> bool:
        return self.covered is None or d.year in self.covered

    def covered_until(self, today: date) -> date | None:
        """The last day of the unbroken run of covered days from ``today``.

        None when ``today`` itself is unknown; ``date.max`` when the calendar claims nothing.
        """
        if self.covered is None:
            return date.max
        if today.year not in self.covered:
            return None
        year = today.year
        while year + 1 in self.covered:
            year += 1
        return date(year, 12, 31)

    def days_left(self, today: date) -> int:
        """Covered days from today on, today included (0: today is unknown)."""
        until = self.covered_until(today)
        if until is None:
            return 0
        if until == date.max:
            return 10**6
        return (until - today).days + 1


@dataclass(frozen=True)
class CalendarWarning:
    calendar: str
    text: str
    # missing: today is not covered; ending: covered for fewer than WARN_DAYS more days;
    # estimated: the package's estimated dates in the next WARN_DAYS (check them).
    kind: Literal["missing", "ending", "estimated"] = "ending"


@dataclass(frozen=True)
class _Change:
    kind: Literal["add", "move", "drop"]
    day: date
    to: date | None
    name: str
    where: str  # file and key, for messages


@dataclass(frozen=True)
class OverrideFile:
    path: str
    covers: frozenset[int]
    changes: tuple[_Change, ...]


def _date(v: Any, file: str, key: str) -> date:
    if isinstance(v, date):
        return v
    if isinstance(v, str):
        try:
            return date.fromisoformat(v.strip())
        except ValueError:
            pass
    raise CalendarInvalid(file, key, f'a date "YYYY-MM-DD", got {v!r}')


def _text(v: Any, file: str, key: str, what: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise CalendarInvalid(file, key, f"{what} (text), got {v!r}")
    return v.strip()


def read_override_file(path: Path) -> OverrideFile:
    """Parse one override file; raise ConfigError naming the file and the key."""
    file = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise CalendarInvalid(file, "(file)", f"a readable file ({err.strerror})") from err
    except yaml.YAMLError as err:
        raise CalendarInvalid(file, "(syntax)", f"valid YAML ({err})") from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CalendarInvalid(file, "(file)", "a mapping with name, covers and changes")
    unknown = sorted(set(map(str, data)) - {"name", "source", "covers", "changes"})
    if unknown:
        raise CalendarInvalid(
            file, unknown[0], "one of name, source, covers, changes (an override file)"
        )
    covers_raw = data.get("covers", [])
    if not isinstance(covers_raw, list) or not all(
        isinstance(y, int) and not isinstance(y, bool) and 1900 <= y <= 2200 for y in covers_raw
    ):
        raise CalendarInvalid(file, "covers", f"a list of years such as [2028], got {covers_raw!r}")
    changes_raw = data.get("changes", [])
    if changes_raw is None:
        changes_raw = []
    if not isinstance(changes_raw, list):
        raise CalendarInvalid(file, "changes", "a list of add, move or drop entries")
    changes: list[_Change] = []
    for i, item in enumerate(changes_raw):
        at = f"changes[{i}]"
        if not isinstance(item, dict):
            raise CalendarInvalid(file, at, f"an entry with add, move or drop, got {item!r}")
        kinds = [k for k in ("add", "move", "drop") if k in item]
        if len(kinds) != 1:
            raise CalendarInvalid(file, at, "exactly one of add, move or drop")
        kind = kinds[0]
        allowed = {"add": {"add", "name", "source"}, "move": {"move", "to", "source", "name"}}
        extra = sorted(set(map(str, item)) - allowed.get(kind, {"drop", "source"}))
        if extra:
            raise CalendarInvalid(file, f"{at}.{extra[0]}", f"not a key of a {kind} entry")
        day = _date(item[kind], file, f"{at}.{kind}")
        # A change nobody can trace is a change nobody can check: the source is required.
        _text(item.get("source"), file, f"{at}.source", "where this change comes from")
        to = _date(item.get("to"), file, f"{at}.to") if kind == "move" else None
        name = (
            _text(item.get("name"), file, f"{at}.name", "the holiday's name")
            if (kind == "add")
            else str(item.get("name") or "")
        )
        changes.append(_Change(kind, day, to, name, f"{file}: {at}"))  # type: ignore[arg-type]
    return OverrideFile(file, frozenset(covers_raw), tuple(changes))


def _package_years(
    name: str, country: str, categories: Sequence[str], years: Iterable[int]
) -> tuple[dict[date, str], frozenset[int], frozenset[date]]:
    """Days, covered years and estimated dates from the ``holidays`` package."""
    try:
        cls = holidays_pkg.country_holidays(country).__class__
    except NotImplementedError as err:
        raise CalendarInvalid(
            "(settings)",
            f"calendars.{name}.country",
            f"a country code the holidays package knows, got {country!r}",
        ) from err
    supported = tuple(getattr(cls, "supported_categories", ("public",)))
    bad = [c for c in categories if c not in supported]
    if bad:
        raise CalendarInvalid(
            "(settings)",
            f"calendars.{name}.categories",
            f"categories of {country}'s calendar ({', '.join(supported)}), got {bad[0]!r}",
        )
    start = int(getattr(cls, "start_year", 1900))
    end = int(getattr(cls, "end_year", 2200))
    days: dict[date, str] = {}
    covered: set[int] = set()
    estimated: set[date] = set()
    for year in years:
        if not start <= year <= end:
            continue
        # English names: the same text for every user; "estimated" is marked in English.
        got = holidays_pkg.country_holidays(
            country, years=year, categories=tuple(categories), language="en_US"
        )
        for d, name in got.items():
            days[d] = name
            if "estimated" in name:
                estimated.add(d)
        if "government" in supported:
            decree = holidays_pkg.country_holidays(country, years=year, categories=("government",))
            if len(decree) > 0:
                covered.add(year)
        else:
            covered.add(year)
    return days, frozenset(covered), frozenset(estimated)


def build_calendar(
    name: str,
    *,
    country: str = "ID",
    categories: Sequence[str] = ("public",),
    overrides: Sequence[Path] = (),
    years: Sequence[int] | None = None,
    use_package: bool = True,
    today: date,
) -> HolidayCalendar:
    """One named calendar: the package's days, the override files applied in order, and the
    covered years (the package's, plus what override files declare, limited to ``years``).

    Without the package (a centre that keeps its own calendar) the days are the override
    files' alone, and the covered years are the files' ``covers`` plus ``years``: listing a
    year is then vouching for it.
    """
    span = range(today.year - YEARS_BEFORE, today.year + YEARS_AFTER + 1)
    if use_package:
        days, covered, estimated = _package_years(name, country, categories, span)
    else:
        days, covered, estimated = {}, frozenset(years or ()), frozenset()
    covered_set = set(covered)
    est = set(estimated)
    for path in overrides:
        of = read_override_file(path)
        covered_set |= of.covers
        for ch in of.changes:
            if ch.kind == "add":
                days[ch.day] = ch.name
                est.discard(ch.day)
            elif ch.kind == "drop":
                if ch.day not in days:
                    raise CalendarInvalid(
                        ch.where, "drop", f"a holiday of the calendar, but {ch.day} is none"
                    )
                del days[ch.day]
                est.discard(ch.day)
            else:
                if ch.day not in days:
                    raise CalendarInvalid(
                        ch.where, "move", f"a holiday of the calendar, but {ch.day} is none"
                    )
                assert ch.to is not None
                moved = days.pop(ch.day)
                days[ch.to] = ch.name or moved.replace(" (estimated)", "")
                est.discard(ch.day)
    if years is not None and use_package:
        covered_set &= set(years)
    return HolidayCalendar(days, frozenset(covered_set), name, frozenset(est))


def calendar_warnings(
    calendars: Mapping[str, HolidayCalendar], today: date, warn_days: int = WARN_DAYS
) -> list[CalendarWarning]:
    """What an operator must hear before a calendar lapses, or about estimated dates soon."""
    out: list[CalendarWarning] = []
    for name, cal in sorted(calendars.items()):
        until = cal.covered_until(today)
        if until is None:
            out.append(
                CalendarWarning(
                    name,
                    f"calendar {name!r} does not cover today ({today}): the dialer is blocked "
                    "(calendar_missing); update the holidays package or add an override file "
                    "that covers the year",
                    "missing",
                )
            )
            continue
        if until != date.max and (until - today).days < warn_days:
            out.append(
                CalendarWarning(
                    name,
                    f"calendar {name!r} covers days only up to {until} "
                    f"({(until - today).days + 1} days left): after that the dialer blocks "
                    "(calendar_missing); update the holidays package or add an override file "
                    "with covers: [" + str(until.year + 1) + "]",
                )
            )
        soon = sorted(d for d in cal.estimated if today <= d <= today + timedelta(days=warn_days))
        if soon:
            shown = ", ".join(f"{d} ({cal.days.get(d, '?')})" for d in soon)
            out.append(
                CalendarWarning(
                    name,
                    f"calendar {name!r}: {shown} are estimates; check them against the "
                    "Ministry of Religious Affairs' announcement and add a move if they differ",
                    "estimated",
                )
            )
    return out


def explicit_days(pairs: Mapping[date, str]) -> HolidayCalendar:
    """A plain list of closing days that claims no coverage (tests, a hotline's own days)."""
    return HolidayCalendar(dict(pairs), None)


def no_days() -> HolidayCalendar:
    return HolidayCalendar({}, None)


__all__ = [
    "WARN_DAYS",
    "CalendarInvalid",
    "CalendarWarning",
    "HolidayCalendar",
    "OverrideFile",
    "build_calendar",
    "calendar_warnings",
    "explicit_days",
    "no_days",
    "read_override_file",
]

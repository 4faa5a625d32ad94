"""A flow's calendars: business hours in a time zone, closing days, the shared holiday calendar.

``read_calendars`` reads the flow's ``calendars:`` (weekdays and time ranges, the IANA time
zone, the hotline's own dates and holiday files, the settings' calendar it follows);
``read_calendar_ref`` reads a condition's calendar name against them. How a calendar decides
open or closed at a moment is ``ivr.model.Calendar`` and ``ivr/menu.py``'s, not this module's.
"""

from __future__ import annotations

import os
import re
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sambung.ivr.loader_reader import At, Obj, Reader, did_you_mean, show
from sambung.ivr.loader_yaml import YamlMap, YamlSeq
from sambung.ivr.model import Calendar, OpenSpan

__all__ = [
    "CALENDAR_KEYS",
    "DEFAULT_CALENDAR",
    "HOLIDAY_FILE_KEYS",
    "WEEKDAYS",
    "read_calendar_ref",
    "read_calendars",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The shared calendar a flow calendar uses when it names none: Indonesia's national holidays.
DEFAULT_CALENDAR = "id-national"
# (required keys, optional keys)
CALENDAR_KEYS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("timezone", "hours"),
    ("holidays", "holiday_calendar"),
)
HOLIDAY_FILE_KEYS = ("holidays", "name", "source")

_CALENDAR = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_DATE_LIKE = re.compile(r"[0-9]{4}-")
# A typed empty, so that ``take``'s default does not narrow what its reader returns.
_NO_DAYS: frozenset[date] = frozenset()


def read_calendars(r: Reader, v: Any, at: At) -> tuple[Calendar, ...] | None:
    if not isinstance(v, YamlMap):
        r.err(at, f"expected a mapping of calendar name -> calendar, got {show(v)}")
        return None
    out: list[Calendar] = []
    ok = True
    for name, cd in v.items():
        c_at = at.child(str(name), v.lines[name])
        if not isinstance(name, str) or not _CALENDAR.fullmatch(name):
            r.err(c_at, f"expected a calendar name (letters, digits, - _), got {show(name)}")
            ok = False
            continue
        r.calendar_names.add(name)
        cal = _read_calendar(r, name, cd, c_at)
        if cal is None:
            ok = False
        else:
            out.append(cal)
    return tuple(out) if ok else None


def read_calendar_ref(r: Reader, v: Any, at: At) -> str | None:
    """A calendar a condition names: one of the flow's ``calendars``."""
    if not isinstance(v, str) or not v:
        r.err(at, f"expected a calendar name, got {show(v)}")
        return None
    if v not in r.calendar_names:
        if r.calendar_names:
            hint = did_you_mean(v, r.calendar_names) or (
                f" (calendars: {', '.join(sorted(r.calendar_names))})"
            )
        else:
            hint = " (the flow has no calendars)"
        r.err(at, f"unknown calendar {v!r}{hint}")
        return None
    return v


def _read_calendar(r: Reader, name: str, v: Any, at: At) -> Calendar | None:
    if not isinstance(v, YamlMap):
        r.err(at, f"expected a calendar (timezone, hours, holidays), got {show(v)}")
        return None
    o = Obj(r, v, at, "a calendar", *CALENDAR_KEYS)
    tz = o.take("timezone", _read_timezone)
    spans = o.take("hours", _read_hours)
    holidays = o.take("holidays", _read_holidays, _NO_DAYS)
    shared = o.take("holiday_calendar", _read_shared_calendar, DEFAULT_CALENDAR)
    if tz is None or spans is None or holidays is None or shared is None:
        return None
    national = None if r.calendars is None else r.calendars.get(shared)
    if national is not None:
        # The flow's version changes when its shared calendar does (a reload shows it).
        r.hasher.update(repr(sorted(national.days)).encode())
        r.hasher.update(repr(sorted(national.covered or ())).encode())
    return Calendar(name, tz, spans, holidays, national, shared in r.unknown_days_open)


def _read_shared_calendar(r: Reader, v: Any, at: At) -> str | None:
    if not isinstance(v, str) or not v:
        r.err(at, f"expected the name of a calendar from the settings, got {show(v)}")
        return None
    if r.calendars is not None and v not in r.calendars:
        known = ", ".join(sorted(r.calendars))
        r.err(at, f"expected a calendar from the settings' [calendars] ({known}), got {v!r}")
        return None
    return v


def _read_timezone(r: Reader, v: Any, at: At) -> str | None:
    if not isinstance(v, str) or not v:
        r.err(at, f"expected an IANA time zone such as Asia/Jakarta, got {show(v)}")
        return None
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        hint = did_you_mean(v, available_timezones())
        r.err(at, f"unknown time zone {v!r}{hint}")
        return None
    return v


# ---- business hours -------------------------------------------------------------------------


def _read_hours(r: Reader, v: Any, at: At) -> tuple[OpenSpan, ...] | None:
    if not isinstance(v, YamlMap):
        r.err(at, f'expected weekdays -> time ranges ({{mon-fri: "08:00-17:00"}}), got {show(v)}')
        return None
    out: list[OpenSpan] = []
    ok = True
    for days_spec, ranges in v.items():
        d_at = at.child(str(days_spec), v.lines[days_spec])
        days = _read_weekdays(r, days_spec, d_at)
        if isinstance(ranges, str):
            items: list[tuple[Any, At]] = [(ranges, d_at)]
        elif isinstance(ranges, YamlSeq) and ranges:
            items = [(x, d_at.child(i, ranges.lines[i])) for i, x in enumerate(ranges)]
        else:
            r.err(
                d_at,
                f'expected a time range "HH:MM-HH:MM" or a list of them, got {show(ranges)}',
            )
            ok = False
            continue
        for text, r_at in items:
            span = _read_time_range(r, text, r_at)
            if span is None or days is None:
                ok = False
            else:
                out.append(OpenSpan(days, span[0], span[1]))
    return tuple(out) if ok else None


def _read_weekdays(r: Reader, spec: Any, at: At) -> frozenset[int] | None:
    if not isinstance(spec, str) or not spec.strip():
        r.err(at, f"expected weekdays such as mon-fri or sat,sun, got {show(spec)}")
        return None
    days: set[int] = set()
    for part in spec.lower().split(","):
        ends = [p.strip() for p in part.split("-")]
        if len(ends) > 2:
            r.err(at, f"expected a weekday or a range of two (mon-fri), got {part.strip()!r}")
            return None
        idx: list[int] = []
        for day in ends:
            if day not in WEEKDAYS:
                r.err(
                    at,
                    f"unknown weekday {day!r}{did_you_mean(day, WEEKDAYS)}: "
                    f"use {', '.join(WEEKDAYS)}",
                )
                return None
            idx.append(WEEKDAYS.index(day))
        first, last = idx[0], idx[-1]
        # fri-mon wraps over the weekend: fri, sat, sun, mon
        span = (last - first) % 7
        days.update((first + i) % 7 for i in range(span + 1))
    return frozenset(days)


def _read_time_range(r: Reader, v: Any, at: At) -> tuple[time, time] | None:
    if not isinstance(v, str):
        r.err(at, f'expected a time range as a quoted string ("08:00-17:00"), got {show(v)}')
        return None
    parts = v.replace(" ", "").split("-")
    times: list[time] = []
    for i, p in enumerate(parts if len(parts) == 2 else []):
        m = _TIME.fullmatch(p)
        h, mi = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
        if i == 1 and (h, mi) == (24, 0):
            times.append(time(0))  # midnight at the end of the day (ivr/menu.py's rule)
        elif 0 <= h <= 23 and 0 <= mi <= 59:
            times.append(time(h, mi))
    if len(times) != 2:
        r.err(at, f'expected a time range "HH:MM-HH:MM" (24-hour, end up to 24:00), got {v!r}')
        return None
    start, end = times
    if end != time(0) and end <= start:
        r.err(
            at,
            f"expected the start before the end, got {v!r} (past midnight is two ranges: "
            '"22:00-24:00" and "00:00-06:00" on the next day)',
        )
        return None
    return start, end


# ---- closing days ---------------------------------------------------------------------------


def _read_holidays(r: Reader, v: Any, at: At) -> frozenset[date] | None:
    if isinstance(v, str):
        items: list[tuple[Any, At]] = [(v, at)]
    elif isinstance(v, YamlSeq):
        items = [(x, at.child(i, v.lines[i])) for i, x in enumerate(v)]
    else:
        r.err(at, f"expected a holiday file or a list of files and dates, got {show(v)}")
        return None
    out: set[date] = set()
    ok = True
    for x, x_at in items:
        if not isinstance(x, str) or not x:
            r.err(x_at, f'expected a date "YYYY-MM-DD" or a holiday file, got {show(x)}')
            ok = False
        elif _DATE_LIKE.match(x):
            d = _read_date(r, x, x_at)
            if d is None:
                ok = False
            else:
                out.add(d)
        else:
            got = _read_holiday_file(r, x, x_at)
            if got is None:
                ok = False
            else:
                out.update(got)
    return frozenset(out) if ok else None


def _read_date(r: Reader, v: Any, at: At, file: str | None = None) -> date | None:
    try:
        if not isinstance(v, str):
            raise ValueError
        return date.fromisoformat(v)
    except ValueError:
        r.err(at, f'expected a date "YYYY-MM-DD", got {show(v)}', file)
        return None


def _read_holiday_file(r: Reader, ref: str, at: At) -> frozenset[date] | None:
    path = Path(ref)
    if not path.is_absolute():
        path = r.path.parent / path
    shown = os.path.normpath(path)  # messages only; the file is opened as written
    errors_before = len(r.errors)
    data = r.parse_yaml(path, shown, at)
    if data is None:
        if len(r.errors) == errors_before:
            r.err(
                At("", "", None),
                "expected a holiday file (holidays: ...), got an empty file",
                shown,
            )
        return None
    if not isinstance(data, YamlMap):
        r.err(At("", "", 1), f"expected a holiday file (holidays: ...), got {show(data)}", shown)
        return None
    # Problems inside the holiday file name that file; the flow file's own line is not
    # needed to find them.
    ok = True
    for k, line in data.lines.items():
        if k not in HOLIDAY_FILE_KEYS:
            r.err(
                At("", str(k), line),
                f"unknown key{did_you_mean(str(k), HOLIDAY_FILE_KEYS)}: "
                "a holiday file takes holidays, name, source",
                shown,
            )
            ok = False
    for k in ("name", "source"):
        if k in data and not isinstance(data[k], str):
            r.err(At("", k, data.lines[k]), f"expected text, got {show(data[k])}", shown)
            ok = False
    days = data.get("holidays")
    if not isinstance(days, YamlMap):
        line = data.lines.get("holidays", data.line)
        r.err(
            At("", "holidays", line),
            f'expected a mapping "YYYY-MM-DD": name, got {show(days)}',
            shown,
        )
        return None
    out: set[date] = set()
    for k, what in days.items():
        k_at = At("", f"holidays.{k}", days.lines[k])
        d = _read_date(r, k, k_at, shown)
        if d is None:
            ok = False
            continue
        if not isinstance(what, str) or not what:
            r.err(k_at, f"expected the holiday's name, got {show(what)}", shown)
            ok = False
        out.add(d)
    return frozenset(out) if ok else None

"""The calling rules: when a debtor may be called, how often, and when to try again. Pure.

Defaults follow OJK regulation POJK 22/2023 on consumer and public protection in the
financial services sector, which allows collection by telephone only on Monday to Saturday,
outside national holidays, from 08:00 to 20:00 in the debtor's local time, and forbids
collection that harasses or is done repeatedly in a way that disturbs the debtor. The
regulation sets no number for "repeatedly", so the attempt caps are the campaign's to choose
(defaults 3 per day and 10 per 7 days, per debtor over all their numbers and campaigns: a
day's worth of busy/no-answer retries without hounding anyone). Time is always an argument;
every moment is an aware datetime and every comparison happens in the debtor's own zone
(WIB, WITA or WIT).

The engine checks ``check_dial`` at the last moment before each dial, with the debtor's
attempt history from the database, and reschedules a refused record to ``next_at``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from sambung.engine.calendars import HolidayCalendar, no_days

MAX_DAYS_AHEAD = 400  # beyond this a record is not callable "soon": it stops
DAY = timedelta(days=1)
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class CallingWindow:
    weekdays: frozenset[int]  # 0 = Monday
    start: time
    end: time
    # No new dial this close to the end: a call placed at 19:59 would run past 20:00.
    last_dial_margin: timedelta = timedelta(minutes=5)
    holidays: HolidayCalendar = field(default_factory=no_days)

    def last_dial(self, day: date) -> datetime:
        return datetime.combine(day, self.end) - self.last_dial_margin


def default_ojk_window(holidays: HolidayCalendar | None = None) -> CallingWindow:
    return CallingWindow(
        weekdays=frozenset(range(6)),
        start=time(8, 0),
        end=time(20, 0),
        holidays=holidays or no_days(),
    )


@dataclass(frozen=True)
class AttemptCaps:
    per_day: int = 3  # in the debtor's local calendar day
    per_7_days: int = 10  # in any rolling 7 x 24 hours


@dataclass(frozen=True)
class RetryRule:
    kind: Literal["after", "next_day", "never"]
    seconds: float = 0.0


RetryRules = Mapping[str, RetryRule]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_retry_rules(rules: Mapping[str, str]) -> dict[str, RetryRule]:
    """``{"busy": "15m", "machine": "next_day", "invalid_number": "never", "cancelled": "now"}``."""
    out: dict[str, RetryRule] = {}
    for outcome, text in rules.items():
        if text == "never":
            out[outcome] = RetryRule("never")
        elif text == "next_day":
            out[outcome] = RetryRule("next_day")
        elif text == "now":
            out[outcome] = RetryRule("after", 0.0)
        elif len(text) >= 2 and text[:-1].isdigit() and text[-1] in _UNITS:
            out[outcome] = RetryRule("after", float(int(text[:-1]) * _UNITS[text[-1]]))
        else:
            raise ValueError(f"retry rule for {outcome!r}: {text!r} is not Ns/Nm/Nh/Nd/never")
    return out


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: Literal["window", "holiday", "calendar_missing", "daily_cap", "weekly_cap"] | None = (
        None
    )
    # The earliest moment every rule allows (None: not within MAX_DAYS_AHEAD).
    next_at: datetime | None = None


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def closed_reason(window: CallingWindow, zone: str, at: datetime) -> str | None:
    """None when ``at`` is inside the window in ``zone``; else "calendar_missing", "holiday"
    or "window".

    A day the holiday calendar does not cover is closed whatever the clock says: it might be
    a holiday nobody told us about (POJK 22/2023 forbids collection calls on those).
    """
    local = at.astimezone(_zone(zone))
    day = local.date()
    if not window.holidays.covers(day):
        return "calendar_missing"
    if day in window.holidays:
        return "holiday"
    if local.weekday() not in window.weekdays:
        return "window"
    naive = local.replace(tzinfo=None)
    if naive < datetime.combine(day, window.start) or naive >= window.last_dial(day):
        return "window"
    return None


def window_open(window: CallingWindow, zone: str, at: datetime) -> bool:
    return closed_reason(window, zone, at) is None


def next_open(window: CallingWindow, zone: str, at: datetime) -> datetime | None:
    """``at`` itself when open, else the next opening of the window (in UTC as given).

    A day the calendar does not cover counts as a working day here, so that a retry lands on
    it rather than being given up: ``check_dial`` then refuses it (``calendar_missing``) and
    the record waits, due, until the calendar is extended.
    """
    tz = _zone(zone)
    local = at.astimezone(tz)
    for d in range(MAX_DAYS_AHEAD + 1):
        day = local.date() + timedelta(days=d)
        known = window.holidays.covers(day)
        if (known and day in window.holidays) or day.weekday() not in window.weekdays:
            continue
        opens = datetime.combine(day, window.start, tz)
        last = window.last_dial(day).replace(tzinfo=tz)
        if opens >= last:
            continue  # the margin leaves no time at all
        if d == 0:
            if local < opens:
                return opens.astimezone(at.tzinfo)
            if local < last:
                return at
            continue
        return opens.astimezone(at.tzinfo)
    return None


def _cap_block(
    caps: AttemptCaps, zone: str, at: datetime, history: Sequence[datetime]
) -> tuple[str, datetime] | None:
    """Which cap blocks a dial at ``at``, and the first moment that cap no longer does."""
    tz = _zone(zone)
    day = at.astimezone(tz).date()
    today = [h for h in history if h.astimezone(tz).date() == day and h <= at]
    if len(today) >= caps.per_day:
        return "daily_cap", datetime.combine(day + DAY, time(0), tz).astimezone(at.tzinfo)
    week = sorted(h for h in history if at - WEEK < h <= at)
    if len(week) >= caps.per_7_days:
        # Wait until enough of the week's attempts are older than 7 days.
        oldest_to_expire = week[len(week) - caps.per_7_days]
        return "weekly_cap", oldest_to_expire + WEEK + timedelta(seconds=1)
    return None


def check_dial(
    window: CallingWindow,
    caps: AttemptCaps,
    zone: str,
    at: datetime,
    history: Sequence[datetime],
) -> Verdict:
    """May the debtor (in ``zone``, dialled at ``history``) be dialled at ``at``?"""
    reason = closed_reason(window, zone, at)
    if reason is None:
        block = _cap_block(caps, zone, at, history)
        if block is None:
            return Verdict(True)
        reason = block[0]
    nxt = earliest_allowed(window, caps, zone, at, history)
    return Verdict(False, reason, nxt)  # type: ignore[arg-type]


RefusalAction = Literal["wait", "reschedule", "stop"]


def on_refusal(verdict: Verdict) -> tuple[RefusalAction, datetime | None]:
    """What the dialer does with a record the rules refused at the last check.

    ``wait``: leave it due and untouched (the calendar does not cover the day: a reload that
    extends it releases the record at once); ``reschedule`` to ``next_at``; ``stop`` when no
    allowed moment exists within MAX_DAYS_AHEAD.
    """
    if verdict.reason == "calendar_missing":
        return "wait", None
    if verdict.next_at is None:
        return "stop", None
    return "reschedule", verdict.next_at


def earliest_allowed(
    window: CallingWindow,
    caps: AttemptCaps,
    zone: str,
    at: datetime,
    history: Sequence[datetime],
) -> datetime | None:
    """The first moment at or after ``at`` that the window and both caps allow."""
    t: datetime | None = at
    limit = at + timedelta(days=MAX_DAYS_AHEAD)
    while t is not None and t <= limit:
        t = next_open(window, zone, t)
        if t is None:
            return None
        block = _cap_block(caps, zone, t, history)
        if block is None:
            return t
        t = max(block[1], t + timedelta(seconds=1))
    return None


def next_attempt_at(
    outcome: str,
    rules: RetryRules,
    window: CallingWindow,
    caps: AttemptCaps,
    zone: str,
    at: datetime,
    history: Sequence[datetime],
) -> datetime | None:
    """When a record whose attempt ended ``at`` with ``outcome`` may be tried again.

    None means never (the rule says so, or no allowed moment within MAX_DAYS_AHEAD).
    ``history`` includes the attempt that just ended. The result is always a moment that
    ``check_dial`` allows with that history.
    """
    rule = rules.get(outcome, RetryRule("never"))
    if rule.kind == "never":
        return None
    if rule.kind == "next_day":
        local = at.astimezone(_zone(zone))
        start = datetime.combine(local.date() + DAY, time(0), _zone(zone)).astimezone(at.tzinfo)
    else:
        start = at + timedelta(seconds=rule.seconds)
    return earliest_allowed(window, caps, zone, start, history)

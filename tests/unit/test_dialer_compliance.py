"""sambung/dialer/compliance.py: the OJK window in the debtor's zone, holidays, caps and retries."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sambung.dialer.compliance import (
    AttemptCaps,
    check_dial,
    closed_reason,
    default_ojk_window,
    next_attempt_at,
    next_open,
    parse_retry_rules,
)
from sambung.engine.calendars import build_calendar, no_days

ROOT = Path(__file__).resolve().parents[2]
# Indonesia's national holidays from the holidays package, as the engine builds them in mid
# 2026 (covering 2025 to 2027: the years whose decree the package carries).
HOLIDAYS = build_calendar("id-national", today=date(2026, 6, 1))
W = default_ojk_window(HOLIDAYS)
CAPS = AttemptCaps(per_day=3, per_7_days=10)
RULES = parse_retry_rules(
    {"busy": "15m", "no_answer": "60m", "machine": "next_day", "invalid_number": "never"}
)
ZONES = ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura")


def at(zone: str, y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def test_the_example_calendar_has_the_2026_holidays() -> None:
    assert date(2026, 8, 17) in HOLIDAYS
    assert date(2026, 3, 21) in HOLIDAYS
    assert date(2026, 8, 18) not in HOLIDAYS


@pytest.mark.parametrize(
    ("zone", "when", "reason"),
    [
        ("Asia/Jakarta", (2026, 11, 23, 8, 0), None),  # Monday 08:00 WIB
        ("Asia/Jakarta", (2026, 11, 23, 7, 59), "window"),
        ("Asia/Jakarta", (2026, 11, 23, 19, 54), None),
        ("Asia/Jakarta", (2026, 11, 23, 19, 55), "window"),  # the last 5 minutes
        ("Asia/Jakarta", (2026, 11, 28, 10, 0), None),  # Saturday
        ("Asia/Jakarta", (2026, 11, 29, 10, 0), "window"),  # Sunday
        ("Asia/Jakarta", (2026, 8, 17, 10, 0), "holiday"),  # Independence Day
        ("Asia/Jayapura", (2026, 11, 23, 8, 30), None),
    ],
)
def test_window_in_local_time(zone: str, when: tuple[int, ...], reason: str | None) -> None:
    assert closed_reason(W, zone, at(zone, *when)) == reason


def test_one_utc_instant_is_open_in_one_zone_and_closed_in_another() -> None:
    # 23:30 UTC on Sunday is 06:30 WIB Monday (closed) and 08:30 WIT Monday (open).
    instant = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    assert closed_reason(W, "Asia/Jakarta", instant) == "window"
    assert closed_reason(W, "Asia/Jayapura", instant) is None


def test_next_open_skips_sunday_and_holidays() -> None:
    sat_night = at("Asia/Jakarta", 2026, 8, 15, 21)  # Saturday; Sunday closed; Monday 17 Aug
    got = next_open(W, "Asia/Jakarta", sat_night)
    assert got == at("Asia/Jakarta", 2026, 8, 18, 8)


def test_daily_and_weekly_caps() -> None:
    monday = at("Asia/Jakarta", 2026, 11, 23, 10)
    three = [monday - timedelta(hours=h) for h in (1, 1.5, 2)]
    v = check_dial(W, CAPS, "Asia/Jakarta", monday, three)
    assert (v.allowed, v.reason) == (False, "daily_cap")
    assert v.next_at == at("Asia/Jakarta", 2026, 11, 24, 8)
    week = [monday - timedelta(days=d, hours=3) for d in range(1, 6) for _ in range(2)]
    v = check_dial(W, CAPS, "Asia/Jakarta", monday, week)
    assert (v.allowed, v.reason) == (False, "weekly_cap")
    assert v.next_at is not None
    assert check_dial(W, CAPS, "Asia/Jakarta", v.next_at, week).allowed


def test_retry_rules() -> None:
    t = at("Asia/Jakarta", 2026, 11, 23, 10)
    assert next_attempt_at("busy", RULES, W, CAPS, "Asia/Jakarta", t, [t]) == t + timedelta(
        minutes=15
    )
    assert next_attempt_at("invalid_number", RULES, W, CAPS, "Asia/Jakarta", t, [t]) is None
    machine = next_attempt_at("machine", RULES, W, CAPS, "Asia/Jakarta", t, [t])
    assert machine == at("Asia/Jakarta", 2026, 11, 24, 8)
    late = at("Asia/Jakarta", 2026, 11, 23, 19, 30)
    assert next_attempt_at("no_answer", RULES, W, CAPS, "Asia/Jakarta", late, [late]) == at(
        "Asia/Jakarta", 2026, 11, 24, 8
    )
    with pytest.raises(ValueError, match="soon"):
        parse_retry_rules({"busy": "soon"})


instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
histories = st.lists(
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=9)), max_size=15
)


def _inside(zone: str, t: datetime) -> bool:
    local = t.astimezone(ZoneInfo(zone))
    return (
        local.weekday() < 6
        and local.date() not in HOLIDAYS
        and time(8) <= local.time() < time(19, 55)
    )


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ZONES), instants, histories)
def test_never_allows_a_moment_outside_the_window_in_the_debtors_zone(
    zone: str, t: datetime, ago: list[timedelta]
) -> None:
    v = check_dial(W, CAPS, zone, t, [t - a for a in ago])
    if v.allowed:
        assert _inside(zone, t)
        assert HOLIDAYS.covers(t.astimezone(ZoneInfo(zone)).date())
    elif v.next_at is not None:
        assert v.next_at >= t
        again = check_dial(W, CAPS, zone, v.next_at, [t - a for a in ago])
        if HOLIDAYS.covers(v.next_at.astimezone(ZoneInfo(zone)).date()):
            assert _inside(zone, v.next_at)
            assert again.allowed
        else:
            # Past the calendar's reach the next moment is kept (the record waits, due) and
            # refused until the calendar is extended.
            assert again.reason == "calendar_missing"


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ZONES),
    instants,
    histories,
    st.sampled_from(["busy", "no_answer", "machine", "invalid_number"]),
)
def test_a_retry_is_always_an_allowed_moment(
    zone: str, t: datetime, ago: list[timedelta], outcome: str
) -> None:
    history = [t - a for a in ago] + [t]
    nxt = next_attempt_at(outcome, RULES, W, CAPS, zone, t, history)
    if nxt is not None:
        assert nxt > t or outcome == "cancelled"
        verdict = check_dial(W, CAPS, zone, nxt, history)
        # A retry that lands past the calendar's reach is kept (not given up) and refused as
        # calendar_missing until the calendar is extended.
        local_day = nxt.astimezone(ZoneInfo(zone)).date()
        assert verdict.allowed or (
            verdict.reason == "calendar_missing" and not HOLIDAYS.covers(local_day)
        )


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ZONES), instants)
def test_a_greedy_dialer_never_passes_the_caps(zone: str, start: datetime) -> None:
    """Dial whenever allowed for two weeks: no local day over 3, no 7 days over 10."""
    history: list[datetime] = []
    t = start
    for _ in range(60):
        v = check_dial(W, CAPS, zone, t, history)
        if not v.allowed:
            if v.next_at is None:
                break
            t = v.next_at
            continue
        history.append(t)
        t = t + timedelta(minutes=15)
    tz = ZoneInfo(zone)
    days: dict[date, int] = {}
    for h in history:
        days[h.astimezone(tz).date()] = days.get(h.astimezone(tz).date(), 0) + 1
        assert sum(1 for x in history if h - timedelta(days=7) < x <= h) <= 10
    assert max(days.values(), default=0) <= 3
    assert all(_inside(zone, h) for h in history)


def test_an_empty_calendar_is_fine() -> None:
    w = default_ojk_window(no_days())
    assert closed_reason(w, "Asia/Jakarta", at("Asia/Jakarta", 2026, 8, 17, 10)) is None

"""acd/callback_rules.py: which caller ids may be called back, and when (OJK window, per zone)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from sambung.acd.callback_rules import (
    REFUSAL_REASONS,
    CallbackRules,
    NumberVerdict,
    check_number,
    may_dial_now,
    next_dial_at,
)
from sambung.dialer.compliance import AttemptCaps, default_ojk_window, earliest_allowed
from sambung.engine.calendars import build_calendar

# Indonesia's national holidays as the engine builds them in December 2026: 2025 to 2027 are
# covered (2027-01-01 is New Year's Day), 2028 is not.
HOLIDAYS = build_calendar("id-national", today=date(2026, 12, 6))
RULES = CallbackRules(window=default_ojk_window(HOLIDAYS))
WIB, WITA, WIT = "Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"
ZONES = (WIB, WITA, WIT)

MOBILE = "0812345678"
WIB_LINE = "+62218350123"  # Jakarta (021)
WITA_LINE = "+62361234567"  # Denpasar (0361)
WIT_LINE = "+62967123456"  # Jayapura (0967)
SINGAPORE = "+6591234567"


def example(kind: int) -> str:
    number = phonenumbers.example_number_for_type("ID", kind)
    assert number is not None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


PREMIUM = example(PhoneNumberType.PREMIUM_RATE)
TOLL_FREE = example(PhoneNumberType.TOLL_FREE)
SHARED_COST = example(PhoneNumberType.SHARED_COST)


def at(zone: str, y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def ok(raw: str, rules: CallbackRules = RULES) -> NumberVerdict:
    v = check_number(raw, rules)
    assert v.ok, v
    return v


# ---- who ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "withheld"),
        ("   ", "withheld"),
        ("anonymous", "withheld"),
        ("Anonymous", "withheld"),
        ("asterisk", "withheld"),
        ("unknown", "withheld"),
        ("restricted", "withheld"),
        ("+", "withheld"),
        ("sipp", "withheld"),
        ("+62 123 4567 890", "invalid"),
        ("12345", "invalid"),
        ("+62812", "invalid"),
        ("+99912345678", "invalid"),  # no such country
        (PREMIUM, "type_not_allowed"),
        (TOLL_FREE, "type_not_allowed"),
        (SHARED_COST, "type_not_allowed"),
        (SINGAPORE, "international"),
        ("+14155550123", "international"),
        (MOBILE, None),
        ("+62 812-3456-78", None),
        ("62812345678", None),
        (WIB_LINE, None),
        (WIT_LINE, None),
    ],
)
def test_given_a_caller_id_then_the_verdict_says_whether_it_may_be_called_back(
    raw: str, reason: str | None
) -> None:
    v = check_number(raw, RULES)
    assert (v.ok, v.reason) == (reason is None, reason)
    assert v.reason is None or v.reason in REFUSAL_REASONS
    if reason in ("withheld", "invalid"):
        assert (v.e164, v.zone) == (None, None)


def test_the_verdict_carries_the_e164_number_and_its_zone() -> None:
    assert ok(MOBILE) == NumberVerdict(True, None, "+62812345678", None)  # a mobile: unknown
    assert ok(WIB_LINE).zone == WIB
    assert ok(WITA_LINE).zone == WITA
    assert ok(WIT_LINE) == NumberVerdict(True, None, WIT_LINE, WIT)


def test_a_foreign_number_needs_its_prefix_listed_and_its_type_allowed() -> None:
    abroad = replace(RULES, international_prefixes=("+65", "+1", "+61"))
    assert ok(SINGAPORE, abroad) == NumberVerdict(True, None, SINGAPORE, "Asia/Singapore")
    # Fixed line or mobile (North America): both types must be allowed.
    assert ok("+14155550123", abroad).zone == "America/Los_Angeles"
    mobiles_only = replace(abroad, phone_types=frozenset({"mobile"}))
    assert check_number("+14155550123", mobiles_only).reason == "type_not_allowed"
    fixed_only = replace(abroad, phone_types=frozenset({"fixed_line"}))
    assert check_number(SINGAPORE, fixed_only).reason == "type_not_allowed"
    # A country over several zones: the centre's own (WIB).
    assert ok("+61412345678", abroad).zone == WIB
    # A prefix allows that country only.
    assert check_number("+447911123456", abroad).reason == "international"


def test_a_type_refused_by_default_can_be_allowed() -> None:
    rules = replace(RULES, phone_types=frozenset({"mobile", "fixed_line", "toll_free"}))
    assert ok(TOLL_FREE, rules).e164 == TOLL_FREE
    assert check_number(PREMIUM, rules).reason == "type_not_allowed"


def test_do_not_call_and_the_daily_cap() -> None:
    assert check_number(MOBILE, RULES, dnc={"+62812345678"}).reason == "dnc"
    assert check_number(MOBILE, RULES, dnc={"+62812345679"}).ok
    assert check_number(MOBILE, RULES, dialled_today=1).ok
    assert check_number(MOBILE, RULES, dialled_today=2).reason == "daily_cap"
    assert check_number(MOBILE, replace(RULES, max_per_number_per_day=3), dialled_today=2).ok
    # What is wrong with the number itself comes first.
    assert check_number(PREMIUM, RULES, dnc={PREMIUM}).reason == "type_not_allowed"


# ---- when --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "asked", "expected"),
    [
        # Monday 2026-12-28 22:00 WIB: 08:00 WIB the next (working) day.
        (WIB_LINE, at(WIB, 2026, 12, 28, 22), at(WIB, 2026, 12, 29, 8)),
        (MOBILE, at(WIB, 2026, 12, 28, 22), at(WIB, 2026, 12, 29, 8)),
        # A mobile before 08:00 WIB waits for it; WIT opens two hours earlier, WIB last.
        (MOBILE, at(WIB, 2026, 12, 28, 7, 30), at(WIB, 2026, 12, 28, 8)),
        # 18:30 WIB is 20:30 WIT: closed in the east, so the next day.
        (MOBILE, at(WIB, 2026, 12, 28, 18, 30), at(WIB, 2026, 12, 29, 8)),
        (MOBILE, at(WIB, 2026, 12, 28, 17, 54), at(WIB, 2026, 12, 28, 17, 54)),
        (MOBILE, at(WIB, 2026, 12, 28, 17, 55), at(WIB, 2026, 12, 29, 8)),  # 19:55 WIT
        # A fixed line in Jayapura keeps its own clock.
        (WIT_LINE, at(WIT, 2026, 12, 28, 7, 30), at(WIT, 2026, 12, 28, 8)),
        (WIT_LINE, at(WIB, 2026, 12, 28, 7, 30), at(WIB, 2026, 12, 28, 7, 30)),  # 09:30 WIT
        (WIB_LINE, at(WIB, 2026, 12, 28, 18, 30), at(WIB, 2026, 12, 28, 18, 30)),
        (WITA_LINE, at(WITA, 2026, 12, 28, 19, 56), at(WITA, 2026, 12, 29, 8)),
        # Sunday goes to Monday.
        (MOBILE, at(WIB, 2027, 1, 3, 10), at(WIB, 2027, 1, 4, 8)),
        # New Year's Day (a Friday) is skipped: Saturday.
        (WIB_LINE, at(WIB, 2026, 12, 31, 22), at(WIB, 2027, 1, 2, 8)),
        (MOBILE, at(WIB, 2027, 1, 1, 9), at(WIB, 2027, 1, 2, 8)),
        # Saturday is a working day; its evening goes to Monday.
        (MOBILE, at(WIB, 2027, 1, 2, 19), at(WIB, 2027, 1, 4, 8)),
    ],
)
def test_next_dial_at_is_the_first_moment_the_window_is_open_in_the_numbers_zone(
    raw: str, asked: datetime, expected: datetime
) -> None:
    v = ok(raw)
    assert next_dial_at(v, RULES, asked, []) == expected
    assert may_dial_now(v, RULES, asked, []) is (asked == expected)
    assert may_dial_now(v, RULES, expected, [])


def test_a_day_the_calendar_does_not_cover_is_never_callable() -> None:
    monday = at(WIB, 2028, 1, 3, 10)  # 2028: no decree known yet
    v = ok(WIB_LINE)
    # The dialer's rule lands on the unknown day (its records wait there for the calendar)...
    caps = AttemptCaps(per_day=2, per_7_days=14)
    assert earliest_allowed(RULES.window, caps, WIB, monday, []) == monday
    # ... a callback is never promised for it, and nothing after it is covered.
    assert next_dial_at(v, RULES, monday, []) is None
    assert not may_dial_now(v, RULES, monday, [])
    # The last covered day still is callable; a mobile's window there has closed (WIT).
    last = at(WIB, 2027, 12, 31, 17)
    assert may_dial_now(v, RULES, last, [])
    assert next_dial_at(ok(MOBILE), RULES, at(WIB, 2027, 12, 31, 18), []) is None


def test_the_daily_cap_pushes_to_the_next_day() -> None:
    v = ok(WIB_LINE)
    history = [at(WIB, 2026, 12, 28, 9), at(WIB, 2026, 12, 28, 10)]
    assert next_dial_at(v, RULES, at(WIB, 2026, 12, 28, 11), history) == at(WIB, 2026, 12, 29, 8)
    assert not may_dial_now(v, RULES, at(WIB, 2026, 12, 28, 11), history)
    # One dial today leaves one more.
    assert may_dial_now(v, RULES, at(WIB, 2026, 12, 28, 11), history[:1])
    # A mobile's two dials count in every zone's day.
    m = ok(MOBILE)
    assert next_dial_at(m, RULES, at(WIB, 2026, 12, 28, 11), history) == at(WIB, 2026, 12, 29, 8)


def test_a_refused_verdict_has_no_moment() -> None:
    v = check_number(PREMIUM, RULES)
    assert next_dial_at(v, RULES, at(WIB, 2026, 12, 28, 10), []) is None
    assert not may_dial_now(v, RULES, at(WIB, 2026, 12, 28, 10), [])


def test_a_foreign_number_is_called_in_its_own_zone() -> None:
    abroad = replace(RULES, international_prefixes=("+65",))
    v = ok(SINGAPORE, abroad)
    sg = "Asia/Singapore"
    assert next_dial_at(v, abroad, at(sg, 2026, 12, 28, 7, 30), []) == at(sg, 2026, 12, 28, 8)
    # 20:30 WIB is 21:30 in Singapore: the next day.
    assert next_dial_at(v, abroad, at(WIB, 2026, 12, 28, 19, 30), []) == at(sg, 2026, 12, 29, 8)


# ---- the property ------------------------------------------------------------------------

POOL = (MOBILE, WIB_LINE, WITA_LINE, WIT_LINE, PREMIUM, "anonymous", SINGAPORE, "+61412345678")
ABROAD = replace(RULES, international_prefixes=("+65", "+61"))
START = datetime(2026, 12, 28, tzinfo=UTC)
SPAN = timedelta(days=14)  # 2026-12-28 .. 2027-01-10
instants = st.integers(0, int(SPAN.total_seconds())).map(lambda s: START + timedelta(seconds=s))


@settings(max_examples=300, deadline=None)
@given(
    raw=st.sampled_from(POOL),
    rules=st.sampled_from((RULES, ABROAD)),
    now=instants,
    history=st.lists(instants, max_size=3),
)
def test_whenever_a_dial_is_allowed_it_is_inside_the_window_in_every_possible_zone(
    raw: str, rules: CallbackRules, now: datetime, history: list[datetime]
) -> None:
    v = check_number(raw, rules)
    earlier = [h for h in history if h < now]
    if may_dial_now(v, rules, now, earlier):
        assert v.ok
        for zone in (v.zone,) if v.zone is not None else ZONES:
            local = now.astimezone(ZoneInfo(zone))
            assert local.weekday() <= 5, (raw, zone, local)
            assert time(8, 0) <= local.time() < time(19, 55), (raw, zone, local)
            assert local.date() not in HOLIDAYS, (raw, zone, local)
            today = [h for h in earlier if h.astimezone(ZoneInfo(zone)).date() == local.date()]
            assert len(today) < rules.max_per_number_per_day
    # Whatever moment is named is one that is allowed, and never before the request.
    nxt = next_dial_at(v, rules, now, earlier)
    if nxt is not None:
        assert nxt >= now
        assert may_dial_now(v, rules, nxt, earlier)

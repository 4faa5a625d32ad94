"""Which caller ids a queue may call back, and when. Pure: no I/O, no clock (time is an argument).

A callback dials whatever number the caller id says, after ringing an agent first. A caller id
is easy to spoof, so without rules a caller could make the centre ring an agent and then dial a
premium or international number, several times (toll fraud); and a debtor could be called back
at 22:00. The rules:

* who: a number the centre can dial and may call: not withheld, a valid number, Indonesian
  (+62) unless its country prefix is allowed, of a type allowed (a person's own line by
  default: never premium rate, toll-free, shared cost...), not on the do-not-call list, and
  not already called back the day's maximum number of times;
* when: only inside the calling window in the number's own zone. The defaults follow OJK
  regulation POJK 22/2023 (collection calls Monday to Saturday, 08:00-20:00 in the debtor's
  local time, never on national holidays), which is the dialer's window
  (``dialer.compliance``): a callback to a debtor is a collection call like any other.

A mobile number says nothing about where its owner is (a mobile goes wherever they do), so a
number of unknown zone (``zone`` None) may be called only when the window is open in all three
of Indonesia's zones (WIB, WITA, WIT): from 08:00 WIB (10:00 WIT) to 18:00 WIB (20:00 WIT).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType
from phonenumbers.timezone import time_zones_for_number

from sambung.dialer.compliance import (
    MAX_DAYS_AHEAD,
    AttemptCaps,
    CallingWindow,
    closed_reason,
    earliest_allowed,
)
from sambung.dialer.phones import WIB, WIT, WITA, InvalidPhone, classify

REFUSAL_REASONS: Final = (
    "withheld",
    "invalid",
    "international",
    "type_not_allowed",
    "dnc",
    "daily_cap",
)
INDONESIAN_ZONES: Final = (WIB, WITA, WIT)

# What people and trunks put between digits; a caller id with anything else in it (a SIP user
# such as "anonymous", "restricted", "asterisk") is not a number at all.
_SEPARATORS = re.compile(r"[\s\-().\/]")
# libphonenumber's types by the names ``dialer.phones.PHONE_TYPES`` uses. FIXED_LINE_OR_MOBILE
# (North America, among others) may be either: both must be allowed, as a number of unknown
# zone must be callable in every zone.
_INTERNATIONAL_KINDS: Final[dict[int, frozenset[str]]] = {
    PhoneNumberType.FIXED_LINE: frozenset({"fixed_line"}),
    PhoneNumberType.MOBILE: frozenset({"mobile"}),
    PhoneNumberType.FIXED_LINE_OR_MOBILE: frozenset({"fixed_line", "mobile"}),
    PhoneNumberType.TOLL_FREE: frozenset({"toll_free"}),
    PhoneNumberType.PREMIUM_RATE: frozenset({"premium_rate"}),
    PhoneNumberType.SHARED_COST: frozenset({"shared_cost"}),
    PhoneNumberType.VOIP: frozenset({"voip"}),
    PhoneNumberType.PERSONAL_NUMBER: frozenset({"personal_number"}),
    PhoneNumberType.PAGER: frozenset({"pager"}),
    PhoneNumberType.UAN: frozenset({"uan"}),
    PhoneNumberType.VOICEMAIL: frozenset({"voicemail"}),
}


@dataclass(frozen=True)
class CallbackRules:
    window: CallingWindow
    phone_types: frozenset[str] = frozenset({"mobile", "fixed_line"})
    international_prefixes: tuple[str, ...] = ()  # E.164 prefixes such as "+65"; none by default
    max_per_number_per_day: int = 2  # callback dials per number per local day


@dataclass(frozen=True)
class NumberVerdict:
    ok: bool
    reason: str | None  # None when ok; else one of REFUSAL_REASONS
    e164: str | None
    zone: str | None  # IANA zone of the number; None = unknown (every Indonesian zone must allow)


def _refused(reason: str, e164: str | None = None, zone: str | None = None) -> NumberVerdict:
    return NumberVerdict(False, reason, e164, zone)


def check_number(
    raw: str, rules: CallbackRules, *, dnc: Collection[str] = (), dialled_today: int = 0
) -> NumberVerdict:
    """May the caller id ``raw`` be offered a callback? ``dnc``: the do-not-call entries (E.164)
    that concern it; ``dialled_today``: callback dials to it in its local day so far."""
    compact = _SEPARATORS.sub("", raw.strip())
    digits = compact.removeprefix("+")
    if not digits or not (digits.isascii() and digits.isdigit()):
        return _refused("withheld")
    try:
        info = classify(compact)
    except InvalidPhone as err:
        if err.reason != "not_indonesian":
            return _refused("invalid")
        verdict = _international(compact, rules)
    else:
        kinds = frozenset({info.kind})
        verdict = NumberVerdict(True, None, info.e164, info.zone)
        if not kinds <= rules.phone_types:
            return _refused("type_not_allowed", info.e164, info.zone)
    if not verdict.ok:
        return verdict
    if verdict.e164 in dnc:
        return _refused("dnc", verdict.e164, verdict.zone)
    if dialled_today >= rules.max_per_number_per_day:
        return _refused("daily_cap", verdict.e164, verdict.zone)
    return verdict


def _international(compact: str, rules: CallbackRules) -> NumberVerdict:
    try:
        number = phonenumbers.parse(compact, None)
    except NumberParseException:
        return _refused("invalid")
    if not phonenumbers.is_valid_number(number):
        return _refused("invalid")
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    zones = [z for z in time_zones_for_number(number) if z != "Etc/Unknown"]
    # The number's own zone when its country (or area) has exactly one. A country spread over
    # several zones (or none known) falls back to WIB, the zone of the centre's working day:
    # callbacks abroad are a convenience the centre chose to allow (by prefix), so they happen
    # in its own office hours; requiring every zone of, say, the United States to be inside
    # 08:00-20:00 at once would leave almost no time at all.
    zone = zones[0] if len(zones) == 1 else WIB
    if not any(e164.startswith(p) for p in rules.international_prefixes):
        return _refused("international", e164, zone)
    kinds = _INTERNATIONAL_KINDS.get(phonenumbers.number_type(number), frozenset({"unknown"}))
    if not kinds <= rules.phone_types:
        return _refused("type_not_allowed", e164, zone)
    return NumberVerdict(True, None, e164, zone)


def _caps(rules: CallbackRules) -> AttemptCaps:
    return AttemptCaps(
        per_day=rules.max_per_number_per_day, per_7_days=7 * rules.max_per_number_per_day
    )


def _earliest_in(
    rules: CallbackRules, zone: str, at: datetime, history: Sequence[datetime], limit: datetime
) -> datetime | None:
    """The first moment at or after ``at`` that the window, a covered calendar day and the
    caps allow in ``zone``.

    ``compliance.earliest_allowed`` lands on a day the calendar does not cover (for the dialer,
    whose records then wait, due, for the calendar to be extended); a callback must never be
    promised for such a day, so it is skipped here.
    """
    caps = _caps(rules)
    tz = ZoneInfo(zone)
    t: datetime | None = at
    while t is not None and t <= limit:
        t = earliest_allowed(rules.window, caps, zone, t, history)
        if t is None or t > limit:
            return None
        if closed_reason(rules.window, zone, t) != "calendar_missing":
            return t
        next_day = t.astimezone(tz).date() + timedelta(days=1)
        t = datetime.combine(next_day, time(0), tz).astimezone(at.tzinfo)
    return None


def next_dial_at(
    verdict: NumberVerdict, rules: CallbackRules, at: datetime, history: Sequence[datetime]
) -> datetime | None:
    """The first moment at or after ``at`` when the number may be dialled (``history``: the
    earlier callback dials to it); None when the verdict refuses it or no such moment comes
    within ``compliance.MAX_DAYS_AHEAD`` days."""
    if not verdict.ok:
        return None
    zones = (verdict.zone,) if verdict.zone is not None else INDONESIAN_ZONES
    limit = at + timedelta(days=MAX_DAYS_AHEAD)
    t = at
    # Every zone's earliest moment from t; the latest of them is the next candidate. When all
    # agree on t itself, every zone allows it. t only moves forward, so this ends.
    while t <= limit:
        found = [_earliest_in(rules, z, t, history, limit) for z in zones]
        if any(f is None for f in found):
            return None
        latest = max(f for f in found if f is not None)
        if latest == t:
            return t
        t = latest
    return None


def may_dial_now(
    verdict: NumberVerdict, rules: CallbackRules, at: datetime, history: Sequence[datetime]
) -> bool:
    return next_dial_at(verdict, rules, at, history) == at


__all__ = [
    "REFUSAL_REASONS",
    "CallbackRules",
    "NumberVerdict",
    "check_number",
    "may_dial_now",
    "next_dial_at",
]

"""A seeded, simulated fortnight of collections and queue callbacks, judged by an outside oracle.

    .venv/bin/python -m bench.compliance_week                  # 3000 debtors, 400 callbacks
    .venv/bin/python -m bench.compliance_week --debtors 500 --callbacks 100 --seed 7

The fortnight runs from Monday 2026-12-28 to Sunday 2027-01-10: through New Year's Day
(Friday 2027-01-01), Isra Mikraj (Tuesday 2027-01-05) and two Sundays. Debtors live in WIB,
WITA and WIT (by a list's zone column, or a landline's area code); they are dialled by the real
calling rules (``dialer.compliance.check_dial`` at the last moment, ``on_refusal`` for what
happens to a refused record, ``next_attempt_at`` with the campaign's retry rules after every
outcome, as ``dialer/service.py`` does), with a floor of ``--lines`` dials a minute. Outcomes
are drawn per attempt (person, no answer, busy, machine, congestion, invalid number); a person
may ask to be called back at a time of their choosing, which the agent's disposition schedules
(the dialer then checks that moment like any other). Inbound callers ask for a queue callback
at random moments of the fortnight (nights and Sundays included), from a pool of caller ids
that includes spoofed premium, toll-free and foreign numbers, withheld ones and numbers on the
do-not-call list; the real ``acd.callback_rules`` decide which may be called back and when.

Every dial is then judged by an oracle that shares no code with the engine: the debtor's
local clock (every Indonesian zone when the number says nothing about where its owner is),
Monday to Saturday 08:00-20:00, Indonesia's national holidays straight from the ``holidays``
package, the caps (3 a local day, 10 in any 7 x 24 h, per debtor), and ``phonenumbers`` plus
the do-not-call list for callback numbers.

Two arms in the same run, the same debtors and the same dice:
  * before: the rules as they were (the 2026 holiday file only, which ends on 31 December;
    queue callbacks to any 6-15 digit caller id, at once, retried 2 minutes later);
  * after: the engine's calendars (the ``holidays`` package, fail closed) and callback rules.

Printed per arm: calls attempted, calls outside the window per zone, calls on holidays, calls
over the per-day and per-7-day caps, callbacks to refused numbers. The goal is 0 for every
violation in "after"; the exit status is 1 when it is missed.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import phonenumbers
import yaml
from phonenumbers import timezone as pn_timezone

from sambung.acd.callback_rules import CallbackRules, check_number, next_dial_at
from sambung.dialer import compliance
from sambung.dialer.phones import WIB, WIT, WITA
from sambung.engine.calendars import HolidayCalendar, build_calendar, explicit_days

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 12, 28, 0, 0, tzinfo=ZoneInfo(WIB)).astimezone(UTC)
END = datetime(2027, 1, 11, 0, 0, tzinfo=ZoneInfo(WIB)).astimezone(UTC)
TODAY = date(2026, 12, 6)  # when the engine would have built its calendars
TICK = timedelta(minutes=1)
ZONES = (WIB, WITA, WIT)
ZONE_NAMES = {WIB: "WIB", WITA: "WITA", WIT: "WIT"}
PER_DAY, PER_WEEK = 3, 10
RETRY = {
    "busy": "15m",
    "no_answer": "60m",
    "congestion": "5m",
    "machine": "next_day",
    "invalid_number": "never",
    "rejected": "4h",
}
# Outcome of a dial, and its probability (a telecollection list's usual mix).
OUTCOMES = (
    ("person", 0.22),
    ("no_answer", 0.38),
    ("busy", 0.14),
    ("machine", 0.14),
    ("congestion", 0.07),
    ("rejected", 0.03),
    ("invalid_number", 0.02),
)
# What the person says, and what the agent's disposition does with the record.
PERSON = (("ptp", 0.35), ("callback", 0.15), ("refused", 0.30), ("no_contact", 0.20))
# Fixed lines by area code, one per zone: Jakarta, Denpasar, Makassar, Jayapura.
AREAS = (("21", WIB), ("361", WITA), ("411", WITA), ("967", WIT))


@dataclass
class Debtor:
    account: str
    phone: str
    zone: str
    next_at: datetime | None
    history: list[datetime] = field(default_factory=list)
    done: bool = False


@dataclass
class Dial:
    at: datetime
    kind: str  # debtor | callback
    account: str  # the debtor, or the callback's number
    zones: tuple[str, ...]  # the zones the oracle checks (all three when unknown)
    refused_number: bool = False  # a callback the oracle says must never be dialled


@dataclass
class Arm:
    name: str
    dials: list[Dial] = field(default_factory=list)
    callbacks_requested: int = 0
    callbacks_refused: int = 0
    seconds: float = 0.0


# ---- the world ------------------------------------------------------------------------------


def mobile(rng: random.Random) -> str:
    return "+628" + rng.choice("1235789") + "".join(rng.choice("0123456789") for _ in range(9))


def landline(rng: random.Random) -> tuple[str, str]:
    area, zone = rng.choice(AREAS)
    sub = "".join(rng.choice("23456789") for _ in range(11 - len(area)))
    return f"+62{area}{sub}", zone


def make_debtors(n: int, rng: random.Random) -> list[Debtor]:
    out = []
    for i in range(n):
        if rng.random() < 0.3:
            phone, zone = landline(rng)
        else:
            # A mobile says nothing: the zone comes from the list's province column.
            phone = mobile(rng)
            zone = rng.choices(ZONES, weights=(60, 25, 15))[0]
        out.append(Debtor(f"ACC{i:05d}", phone, zone, START))
    return out


def example(kind: int, region: str = "ID") -> str:
    num = phonenumbers.example_number_for_type(region, kind)
    assert num is not None
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def caller_pool(rng: random.Random, n: int) -> tuple[list[str], frozenset[str]]:
    """Caller ids that ask for callbacks, and the do-not-call list."""
    T = phonenumbers.PhoneNumberType
    bad = [
        example(T.PREMIUM_RATE),
        example(T.TOLL_FREE),
        example(T.MOBILE, "SG"),
        example(T.FIXED_LINE, "US"),
        example(T.PREMIUM_RATE, "GB"),
        "anonymous",
        "",
        "+621234567890",  # right length, not a valid Indonesian number
    ]
    dnc = [mobile(rng) for _ in range(5)]
    good = [mobile(rng) for _ in range(40)] + [landline(rng)[0] for _ in range(15)]
    pool = []
    for _ in range(n):
        r = rng.random()
        if r < 0.2:
            pool.append(rng.choice(bad))
        elif r < 0.25:
            pool.append(rng.choice(dnc))
        else:
            pool.append(rng.choice(good))
    return pool, frozenset(dnc)


def pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


# ---- the dialer, through the real rules ------------------------------------------------------


def run_dialer(
    debtors: list[Debtor], window: compliance.CallingWindow, lines: int, seed: int
) -> list[Dial]:
    """The dialer's decisions minute by minute; records wait in a heap by next_at (the
    engine's ``dial_records`` ordered by ``next_at``), at most ``lines`` dials a minute."""
    rng = random.Random(seed)
    caps = compliance.AttemptCaps(PER_DAY, PER_WEEK)
    rules = compliance.parse_retry_rules(RETRY)
    dials: list[Dial] = []
    heap = [(d.next_at or START, i) for i, d in enumerate(debtors)]
    heapq.heapify(heap)
    now = START
    while heap and now < END:
        now = max(now, heap[0][0])
        if now >= END:
            break
        placed = 0
        later: list[tuple[datetime, int]] = []
        while heap and heap[0][0] <= now and placed < lines:
            _, i = heapq.heappop(heap)
            d = debtors[i]
            verdict = compliance.check_dial(window, caps, d.zone, now, d.history)
            if not verdict.allowed:
                action, next_at = compliance.on_refusal(verdict)
                if action == "reschedule" and next_at is not None:
                    d.next_at = next_at
                    later.append((next_at, i))
                elif action == "wait":
                    later.append((now + TICK, i))  # stays due: looked at again next tick
                continue
            placed += 1
            d.history.append(now)
            dials.append(Dial(now, "debtor", d.account, (d.zone,)))
            outcome = pick(rng, OUTCOMES)
            if outcome == "person":
                said = pick(rng, PERSON)
                if said == "ptp":
                    continue  # done
                if said == "callback":
                    # The debtor names a time, any time in the next two days: the disposition
                    # schedules it, and the dialer checks that moment when it comes.
                    d.next_at = now + timedelta(minutes=rng.randrange(30, 48 * 60))
                    later.append((d.next_at, i))
                    continue
                outcome = "no_answer"  # retried like a contact without a promise
            d.next_at = compliance.next_attempt_at(outcome, rules, window, caps, d.zone, now, [now])
            if d.next_at is not None:
                later.append((d.next_at, i))
        for item in later:
            heapq.heappush(heap, item)
        now += TICK
    return dials


# ---- queue callbacks -----------------------------------------------------------------------


def run_callbacks_after(
    requests: list[tuple[datetime, str]], rules: CallbackRules, dnc: frozenset[str], seed: int
) -> tuple[list[Dial], int]:
    """The engine's rules: offer only to good numbers; dial only when the rules allow."""
    rng = random.Random(seed)
    dials: list[Dial] = []
    refused = 0
    history: dict[str, list[datetime]] = defaultdict(list)
    queue: list[tuple[datetime, int, str, int]] = []  # (when, order, number, attempt)
    for i, (at, raw) in enumerate(requests):
        local_day = at.astimezone(ZoneInfo(WIB)).date()
        today = sum(1 for h in history[raw] if h.astimezone(ZoneInfo(WIB)).date() == local_day)
        verdict = check_number(raw, rules, dnc=dnc, dialled_today=today)
        if not verdict.ok:
            refused += 1  # never offered: the caller hears the other options
            continue
        when = next_dial_at(verdict, rules, at, history[raw])
        if when is not None:
            heapq.heappush(queue, (when, i, raw, 1))
    while queue:
        when, i, raw, attempt = heapq.heappop(queue)
        if when >= END:
            continue
        verdict = check_number(raw, rules, dnc=dnc)
        ok_at = next_dial_at(verdict, rules, when, history[raw]) if verdict.ok else None
        if ok_at != when:
            # The moment is no longer allowed (cap reached meanwhile): wait for the next one.
            if ok_at is not None:
                heapq.heappush(queue, (ok_at, i, raw, attempt))
            continue
        history[raw].append(when)
        dials.append(Dial(when, "callback", raw, _oracle_zones(raw)))
        if rng.random() < 0.4 and attempt < 3:  # no answer: again later, inside the rules
            retry = next_dial_at(verdict, rules, when + timedelta(minutes=2), history[raw])
            if retry is not None:
                heapq.heappush(queue, (retry, i, raw, attempt + 1))
    return dials, refused


def run_callbacks_before(requests: list[tuple[datetime, str]], seed: int) -> tuple[list[Dial], int]:
    """The rule as it was: any 6-15 digit caller id, dialled at once, 3 attempts 2 min apart."""
    rng = random.Random(seed)
    dials: list[Dial] = []
    refused = 0
    for at, raw in requests:
        digits = raw.removeprefix("+")
        if not (digits.isdigit() and 6 <= len(digits) <= 15):
            refused += 1
            continue
        for attempt in range(3):
            when = at + timedelta(minutes=2 * attempt)
            dials.append(Dial(when, "callback", raw, _oracle_zones(raw)))
            if rng.random() >= 0.4:
                break
    return dials, refused


# ---- the oracle ------------------------------------------------------------------------------

_ID_HOLIDAYS = holidays.country_holidays("ID", years=(2026, 2027))


def _oracle_zones(raw: str) -> tuple[str, ...]:
    """Where a callback number's owner may be: libphonenumber's one zone for a fixed line,
    else anywhere in Indonesia (a mobile or a foreign number says nothing)."""
    try:
        num = phonenumbers.parse(raw, "ID")
    except phonenumbers.NumberParseException:
        return ZONES
    if phonenumbers.number_type(num) != phonenumbers.PhoneNumberType.FIXED_LINE:
        return ZONES
    zones = [z for z in pn_timezone.time_zones_for_number(num) if z in ZONES]
    return (zones[0],) if len(zones) == 1 else ZONES


def oracle_number_ok(raw: str, dnc: frozenset[str]) -> bool:
    """A callback number anybody would accept: a valid Indonesian mobile or fixed line, not
    on the do-not-call list (phonenumbers directly; nothing of the engine's)."""
    try:
        num = phonenumbers.parse(raw, "ID")
    except phonenumbers.NumberParseException:
        return False
    kind = phonenumbers.number_type(num)
    e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    return (
        phonenumbers.is_valid_number(num)
        and num.country_code == 62
        and kind
        in (
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE,
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        )
        and e164 not in dnc
    )


@dataclass
class Judgement:
    attempted: int = 0
    outside: Counter[str] = field(default_factory=Counter)
    on_holiday: int = 0
    over_day: int = 0
    over_week: int = 0
    callbacks_refused_numbers: int = 0
    callbacks: int = 0


def judge(dials: list[Dial], dnc: frozenset[str]) -> Judgement:
    j = Judgement(attempted=len(dials))
    per: dict[str, list[Dial]] = defaultdict(list)
    for d in dials:
        per[d.account].append(d)
        for zone in d.zones:
            local = d.at.astimezone(ZoneInfo(zone))
            if local.date() in _ID_HOLIDAYS:
                j.on_holiday += 1
                break
        for zone in d.zones:
            local = d.at.astimezone(ZoneInfo(zone))
            minutes = local.hour * 60 + local.minute
            if local.weekday() == 6 or not 8 * 60 <= minutes < 20 * 60:
                j.outside[ZONE_NAMES[zone]] += 1
                break
        if d.kind == "callback":
            j.callbacks += 1
            if not oracle_number_ok(d.account, dnc):
                j.callbacks_refused_numbers += 1
    for ds in per.values():
        if ds[0].kind != "debtor":
            continue
        tz = ZoneInfo(ds[0].zones[0])
        days = Counter(d.at.astimezone(tz).date() for d in ds)
        j.over_day += sum(max(0, n - PER_DAY) for n in days.values())
        times = sorted(d.at for d in ds)
        for i, t in enumerate(times):
            in_week = sum(1 for u in times[: i + 1] if t - timedelta(days=7) < u)
            if in_week > PER_WEEK:
                j.over_week += 1
    return j


# ---- the two arms --------------------------------------------------------------------------


def old_calendar() -> HolidayCalendar:
    data = yaml.safe_load(
        (ROOT / "tests" / "fixtures" / "holidays" / "id-2026.yaml").read_text(encoding="utf-8")
    )
    return explicit_days({date.fromisoformat(str(k)): v for k, v in data["holidays"].items()})


def requests_for(n: int, pool: list[str], rng: random.Random) -> list[tuple[datetime, str]]:
    span = int((END - START).total_seconds())
    return sorted((START + timedelta(seconds=rng.randrange(span)), pool[i]) for i in range(n))


def run_arm(
    name: str,
    calendar: HolidayCalendar,
    callbacks: Callable[[list[tuple[datetime, str]]], tuple[list[Dial], int]],
    args: argparse.Namespace,
    requests: list[tuple[datetime, str]],
) -> Arm:
    t0 = time.perf_counter()
    debtors = make_debtors(args.debtors, random.Random(args.seed))
    window = compliance.default_ojk_window(calendar)
    arm = Arm(name)
    arm.dials = run_dialer(debtors, window, args.lines, args.seed + 1)
    cb_dials, refused = callbacks(requests)
    arm.dials += cb_dials
    arm.callbacks_requested = len(requests)
    arm.callbacks_refused = refused
    arm.seconds = time.perf_counter() - t0
    return arm


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--debtors", type=int, default=3000)
    ap.add_argument("--callbacks", type=int, default=400)
    ap.add_argument("--lines", type=int, default=40, help="dials a minute at most")
    ap.add_argument("--seed", type=int, default=20261228)
    args = ap.parse_args(argv)

    rng = random.Random(args.seed + 2)
    pool, dnc = caller_pool(rng, args.callbacks)
    requests = requests_for(args.callbacks, pool, rng)
    national = build_calendar("id-national", today=TODAY)
    rules = CallbackRules(window=compliance.default_ojk_window(national))

    before = run_arm(
        "before",
        old_calendar(),
        lambda reqs: run_callbacks_before(reqs, args.seed + 3),
        args,
        requests,
    )
    after = run_arm(
        "after",
        national,
        lambda reqs: run_callbacks_after(reqs, rules, dnc, args.seed + 3),
        args,
        requests,
    )
    judged = {a.name: judge(a.dials, dnc) for a in (before, after)}

    print(
        f"compliance fortnight {START.astimezone(ZoneInfo(WIB)).date()} .. "
        f"{(END - timedelta(days=1)).astimezone(ZoneInfo(WIB)).date()} (WIB), "
        f"{args.debtors} debtors, {args.callbacks} callback requests, seed {args.seed}"
    )
    rows: list[tuple[str, Callable[[Arm, Judgement], object]]] = [
        ("calls attempted", lambda a, j: j.attempted),
        ("  of them queue callbacks", lambda a, j: j.callbacks),
        ("callback requests refused (never offered)", lambda a, j: a.callbacks_refused),
        ("calls outside the window, WIB", lambda a, j: j.outside["WIB"]),
        ("calls outside the window, WITA", lambda a, j: j.outside["WITA"]),
        ("calls outside the window, WIT", lambda a, j: j.outside["WIT"]),
        ("calls on national holidays", lambda a, j: j.on_holiday),
        (f"calls over {PER_DAY} a day per debtor", lambda a, j: j.over_day),
        (f"calls over {PER_WEEK} in 7 days per debtor", lambda a, j: j.over_week),
        ("callbacks to refused numbers", lambda a, j: j.callbacks_refused_numbers),
        ("simulation seconds", lambda a, j: f"{a.seconds:.1f}"),
    ]
    print(f"{'':44}{'before':>10}{'after':>10}   goal (after)")
    for label, get in rows:
        goal = (
            "0"
            if label.startswith(("calls outside", "calls on", "calls over", "callbacks to"))
            else ""
        )
        print(
            f"{label:44}{get(before, judged['before'])!s:>10}"
            f"{get(after, judged['after'])!s:>10}   {goal}"
        )
    j = judged["after"]
    violations = (
        sum(j.outside.values())
        + j.on_holiday
        + j.over_day
        + j.over_week
        + j.callbacks_refused_numbers
    )
    print(f"after: {violations} violation(s); {'GOAL MET' if violations == 0 else 'GOAL MISSED'}")
    return 0 if violations == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

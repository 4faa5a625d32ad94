"""How many lines to dial now. Pure: figures in, a number out; no clock, no I/O.

Modes:
- preview: 0. The agent looks at the record and starts the call.
- progressive: one line per ready agent: ``ready - lines in flight - answers waiting``. Every
  live answer finds an agent waiting, so it never abandons (unless an agent walks away).
- reminder (agentless): fill the campaign's lines.
- predictive: dial for the agents who are ready *and* those who will be free when the answers
  come, with the abandon cap as the constraint the plan is made against.

Predictive, in three parts:

1. **The forecast**, second by second over the next half minute (checkpoints ``u`` up to the
   age past which no line answers): the live answers ``A(u)`` that will have come (the answers
   already waiting for an agent, each line in flight by its age on the campaign's answer
   curve, the new lines by the rate of the records next in line) and the agents ``F(u + c)``
   free by ``u`` plus the connect limit ``c`` (ready now; in wrap-up, by the wrap-up's own
   durations and its timer; in a call, by the survival of talk times given the time already
   talked, plus a typical wrap-up). An answer arriving at ``u`` finds nobody when the answers
   by then outnumber the agents free by ``u + c``; summed over the answers expected at each
   step, that is the plan's expected abandons (normal approximation).
2. **The gain, in a closed loop.** Lines are added one at a time while the abandons each adds
   stay under a threshold per answer it brings: the chance that this line's answer would find
   no agent. The threshold is the gain: it starts at a calibrated fraction of the target ratio
   (the forecast sees one round, and later rounds add lines that the earlier ones compete
   with) and moves with the window's own figures: abandons below the target so far raise it,
   above lower it, by ``exp(K * slack / sd)`` where ``slack`` is the abandons the target
   allows minus those that happened and ``sd`` their noise. The target is just under the cap,
   ``cap - z * sqrt(cap / live)``, a margin that shrinks as live answers accumulate. The last
   hour steers too, with a margin ``HOUR_LOOP`` times as wide (an hour holds fewer answers
   than the window); while the hour is still filling (the morning) its margin is taken on
   more than the answers so far: halfway, on the geometric mean of those and of a full hour's
   at their pace. The gain moves smoothly: pacing never swings to a long stretch of
   progressive.
3. **The guards**, at every round. The campaign's window, worst case: if every line in flight
   answered at once and no busy agent freed up, the answers beyond the ready agents (answers
   already waiting included) would be at most the abandons that keep
   ``(abandoned + a) / (live + a)`` at or under the cap. The last hour, by chance: the
   answers of the lines in flight (each by its age, second by second) beyond the agents
   certain to be free by then (ready, or at the end of a wrap-up's timer) pass the hour's
   room with probability at most ``HOUR_RISK`` (a Chernoff bound). The worst case there would
   hold an hour's room (about 3% of an hour's answers) against every line at once: at a 10%
   answer rate a floor needs several times that many lines in flight, so it would never leave
   progressive. No forecast can talk past the guards; with no room (the start of a window, or
   after abandons) predictive is exactly progressive.

Until the window holds ``warmup_live`` live answers its ratio means little: the gain stays at
the value it would start from at that many answers, and only the guards move.

The progressive number is always allowed (it cannot abandon).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from sambung.dialer.forecast import (
    DEFAULT_CURVE,
    DEFAULT_TALK,
    DEFAULT_WRAP,
    MIN_RATE,
    AnswerCurve,
    Survival,
)

Mode = Literal["preview", "progressive", "predictive", "reminder"]
# Live answers in the window before the closed loop moves the gain.
WARMUP_LIVE = 100
# The margin under the cap, in standard deviations of the ratio's noise at ``live`` answers.
MARGIN_Z = 1.0
# The gain (a line's added abandons per answer it brings) starts at this fraction of the
# target ratio: the simulated floors realise about 3.5 times the gain as their ratio.
GAIN_START = 0.3
# How strongly the window's slack (in standard deviations) moves the gain, and how far.
GAIN_K = 0.5
GAIN_RANGE = 8.0
# The last hour's guard: the most it lets the chance be that the lines in flight bring more
# abandons than the hour can take, counting only the agents certain to be free in time (ready,
# or in a wrap-up whose timer ends first); a Chernoff bound, so the true chance is smaller
# still. Rounds follow each other with much the same lines, so an hour holds many such
# chances. In the simulation (20 seeds, two days) 1e-5 held every hour; 3e-5 passed the cap in
# an hour of one seed at 10 agents (10/0.10/300), and 1e-4 in several small-team cells.
HOUR_RISK = 1e-5
# A line the curve thinks will not answer any more still answers with at least this share of
# the rate, for the hour's guard (late answers happen; the curve is learned, not known).
HOUR_FLOOR = 0.1
# The last hour steers the gain too, with its margin this many times the window's: an hour
# holds fewer answers, so its ratio is noisier and needs the wider margin.
HOUR_LOOP = 1.5
# While the last hour is filling (the morning), its loop takes the margin on the answers so
# far and a full hour's, weighted so: 0 is the answers so far, 1 the full hour. In the
# simulation (20 seeds, two days) 1 passed the cap in a morning hour of one seed at 25 agents
# (a busy hour alone, in mid-day hours of small teams, whose hours are far from busy); 0.5
# held every hour.
HOUR_BLEND = 0.5
# A line whose chance of a live answer is below this adds nothing the forecast would notice.
NEGLIGIBLE = 1e-3


@dataclass(frozen=True)
class PacingInput:
    mode: Mode
    ready_agents: int  # free now and not already taken by a live answer
    max_lines: int
    dialable: int  # records the calling rules allow now
    abandon_cap: float  # e.g. 0.03
    window_live: int  # live answers in the rolling window
    window_abandoned: int  # abandoned live answers in the rolling window
    # Per agent in a call (reserved, ringing, talking, on hold): seconds since the call began
    # (0 until it is answered).
    talk_elapsed: tuple[float, ...] = ()
    # Per agent in wrap-up: seconds into it.
    wrap_elapsed: tuple[float, ...] = ()
    talk: Survival = DEFAULT_TALK
    wrap: Survival = DEFAULT_WRAP
    # Per line in flight (dialled, not yet a live answer): its age, seconds since the dial.
    line_ages: tuple[float, ...] = ()
    # Per line in flight: the live-answer rate of its record when dialled (empty: the curve's).
    line_rates: tuple[float, ...] = ()
    curve: AnswerCurve = DEFAULT_CURVE
    # The live-answer rate of the records next in line (None: the curve's).
    new_rate: float | None = None
    # Live answers waiting for an agent (within the connect limit): certain answers.
    waiting_answers: int = 0
    # The last hour, less the time a line dialled now could take to abandon (ring + connect
    # limit): live answers and abandons in it. None: no hourly guard.
    hour_live: int | None = None
    hour_abandoned: int = 0
    # Seconds from the first of those live answers to now (None: no answer yet, or not known;
    # the answers so far are then taken as the hour's). In the morning the hour is still
    # filling: its answers so far are a part of a full one.
    hour_seconds: float | None = None
    connect_limit: float = 2.0
    warmup_live: int = WARMUP_LIVE
    margin_z: float = MARGIN_Z

    @property
    def lines_in_flight(self) -> int:
        return len(self.line_ages)


@dataclass(frozen=True)
class PacingDecision:
    dial: int
    # What bound the number: preview, no_records, max_lines, no_agents, progressive,
    # abandon_budget (the hard guard), planned (the forecast and the closed loop), reminder.
    reason: str
    answer_rate: float = 0.0  # of the next records
    expected_free: float = 0.0  # agents free by the last checkpoint plus the connect limit
    expected_answers: float = 0.0  # from the waiting, the lines in flight and the new ones
    budget: int = 0  # abandons the window (and the last hour) can take at the cap
    expected_abandons: float = 0.0  # the forecast's abandons with this plan
    share: float = 0.0  # the gain: abandons a new line may add per answer it brings
    target: float = 0.0  # the ratio the closed loop aims at
    warmup: bool = False


def target_ratio(cap: float, live: float, z: float = MARGIN_Z) -> float:
    """The abandon ratio the loop aims at: under the cap by ``z`` standard deviations of the
    ratio's noise over ``live`` answers (0 while the noise is larger than the cap)."""
    if live <= 0 or cap <= 0:
        return 0.0
    return max(0.0, cap - z * math.sqrt(cap / live))


def gain(cap: float, live: int, abandoned: int, z: float = MARGIN_Z, full: float = 0.0) -> float:
    """The closed loop: the abandons a new line may add per answer it brings.

    ``GAIN_START`` times the target ratio, times ``exp(GAIN_K * slack / sd)``: ``slack`` is
    the abandons the target allows over the window's live answers minus those that happened,
    ``sd`` the noise of that count; bounded to ``GAIN_RANGE`` times either way. ``full``: a
    count of answers to take the target's margin on where it is larger than ``live`` (the
    last hour's while it fills, ``filling_hour``).
    """
    target = target_ratio(cap, max(float(live), full), z)
    if target <= 0:
        return 0.0
    slack = target * live - abandoned
    sd = math.sqrt(max(1.0, target * live))
    step = max(-math.log(GAIN_RANGE), min(math.log(GAIN_RANGE), GAIN_K * slack / sd))
    return GAIN_START * target * math.exp(step)


def _room_at_cap(cap: float, live: int, abandoned: int) -> int:
    """``a`` more abandons (each also a live answer) keep ``(abandoned + a) / (live + a)`` at
    or under ``cap``."""
    if cap >= 1:
        return 10**9
    return math.floor((cap * live - abandoned) / (1 - cap) + 1e-9)


def hard_budget(inp: PacingInput, cap: float | None = None) -> int:
    """Abandons the campaign's window (and the last hour, when given) can take at ``cap``
    (the full cap unless told)."""
    c = inp.abandon_cap if cap is None else cap
    budget = _room_at_cap(c, inp.window_live, inp.window_abandoned)
    if inp.hour_live is not None:
        budget = min(budget, _room_at_cap(c, inp.hour_live, inp.hour_abandoned))
    return budget


_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, slots=True)
class Forecast:
    """Answers and free agents at each checkpoint ``u``, before any new line."""

    checks: tuple[float, ...]
    answers_mean: tuple[float, ...]  # A(u): the waiting + the lines in flight, by u
    answers_var: tuple[float, ...]
    arriving: tuple[float, ...]  # A(u) - A(previous checkpoint): the answers arriving then
    free_mean: tuple[float, ...]  # F(u + c): agents free by u plus the connect limit
    free_var: tuple[float, ...]
    new_line: tuple[float, ...]  # P(a new line is a live answer by u)
    new_arriving: tuple[float, ...]
    eventual: float  # expected answers of the waiting and the lines in flight, in all
    new_rate: float
    # For the hour's guard each line in flight answers with at least HOUR_FLOOR of the rate,
    # however old (late answers happen): what that floor adds to the curve's answers. The
    # guard counts them as possible at every checkpoint.
    late: float = 0.0

    # Per checkpoint, what a round of look-ups needs: (answers less free agents less a half
    # for the continuity correction, their variance, answers arriving in the step, a new line's
    # chance by then, its variance, its chance in the step).
    steps: tuple[tuple[float, float, float, float, float, float], ...] = field(
        init=False, default=()
    )

    def __post_init__(self) -> None:
        steps = tuple(
            (am - fm - 0.5, av + fv, da, g, g * (1 - g), dg)
            for am, av, da, fm, fv, g, dg in zip(
                self.answers_mean,
                self.answers_var,
                self.arriving,
                self.free_mean,
                self.free_var,
                self.new_line,
                self.new_arriving,
                strict=True,
            )
        )
        object.__setattr__(self, "steps", steps)

    def added(self, n: int) -> float:
        """The expected abandons the ``n``-th new line adds: ``risk(n) - risk(n - 1)``, in one
        pass over the checkpoints a new line can reach."""
        total = 0.0
        erfc, root = math.erfc, math.sqrt
        for mu0, var0, da, g, gv, dg in self.steps:
            if g <= 1e-12:
                continue  # no new line can have answered yet: nothing changes here
            for m, sign in ((n, 1.0), (n - 1, -1.0)):
                arriving = da + m * dg
                if arriving <= 1e-12:
                    continue
                mean = mu0 + m * g
                var = var0 + m * gv
                if var <= 1e-12:
                    total += sign * arriving * (1.0 if mean > 0 else 0.0)
                else:
                    total += sign * arriving * 0.5 * erfc(-mean / (root(var) * _SQRT2))
        return total

    def risk(self, n: int) -> float:
        """Expected abandons with ``n`` new lines: each answer expected in a step of the
        checkpoints, times the chance that the answers by then (it included) outnumber the
        agents free by then plus the connect limit (P(X >= 1), continuity-corrected)."""
        total = 0.0
        for mu0, var0, da, g, gv, dg in self.steps:
            arriving = da + n * dg
            if arriving <= 1e-9:
                continue
            mean = mu0 + n * g
            var = var0 + n * gv
            if var <= 1e-12:
                if mean > 0:
                    total += arriving
                continue
            total += arriving * 0.5 * math.erfc(-mean / (math.sqrt(var) * _SQRT2))
        return total

    def answers(self, n: int) -> float:
        return self.eventual + n * self.new_rate


def forecast(inp: PacingInput) -> Forecast:
    curve = inp.curve
    base = max(MIN_RATE, curve.rate())
    new_rate = base if inp.new_rate is None else min(1.0, max(MIN_RATE, inp.new_rate))
    checks = curve.checks
    k = len(checks)
    c = inp.connect_limit

    # Agents free by each checkpoint plus the connect limit.
    fm = [float(inp.ready_agents)] * k
    fv = [0.0] * k
    wrap = inp.wrap
    if inp.wrap_elapsed:
        wg = wrap.alive
        wtop = len(wg) - 1
        w_w, w_m, limit = wrap.prior_weight, wrap.prior_mean, wrap.limit
        reach = [u + c for u in checks]
        for e in inp.wrap_elapsed:
            x = int(e)
            alive = wg[x] if x < wtop else w_w * math.exp(-x / w_m)
            for i in range(k):
                h = e + reach[i]
                if (limit is not None and h >= limit) or alive <= 1e-12:
                    # Ended by then for certain (its timer), and so at every later checkpoint.
                    for j in range(i, k):
                        fm[j] += 1.0
                    break
                y = int(h)
                q = 1.0 - (wg[y] if y < wtop else w_w * math.exp(-y / w_m)) / alive
                if q > 0:
                    fm[i] += q
                    fv[i] += q * (1 - q)
    # An agent in a call is free once the call ends and a typical wrap-up follows: by the
    # last checkpoint with the survival of talk times, given the time already talked; at the
    # earlier ones in proportion to the time left (talk times change little over a few
    # seconds, and one look-up per agent keeps a round of 100 agents fast).
    after = [u + c - wrap.typical for u in checks]
    first = next((i for i, x in enumerate(after) if x > 0), k)
    if first < k and inp.talk_elapsed:
        g = inp.talk.alive
        top = len(g) - 1
        tail_w, tail_m = inp.talk.prior_weight, inp.talk.prior_mean
        span = after[-1]
        last_step = int(span)
        total = 0.0
        spread = 0.0
        for e in inp.talk_elapsed:
            x = int(e)
            alive = g[x] if x < top else tail_w * math.exp(-x / tail_m)
            if alive <= 1e-12:
                total += 1.0
                continue
            y = x + last_step
            q = 1.0 - (g[y] if y < top else tail_w * math.exp(-y / tail_m)) / alive
            if q > 0:
                total += q
                spread += q * q
        for i in range(first, k):
            share = after[i] / span
            fm[i] += total * share
            # Bernoulli variance of each agent's scaled chance: sum of q*s - (q*s)^2.
            fv[i] += total * share - spread * share * share

    # Answers by each checkpoint: the waiting ones for certain, the lines by their age.
    waiting = float(max(0, inp.waiting_answers))
    am = [waiting] * k
    av = [0.0] * k
    eventual = waiting
    late = 0.0
    floor = HOUR_FLOOR * base
    table, last = curve.within, len(curve.within)
    rates = inp.line_rates if len(inp.line_rates) == len(inp.line_ages) else ()
    # Lines of the same age (whole seconds) and rate add alike: once per group.
    groups: dict[tuple[int, float], int] = {}
    if rates:
        by_age: Counter[int] = Counter()
        for age, rate in zip(inp.line_ages, rates, strict=True):
            if rate == base:
                by_age[int(age)] += 1
            else:
                key = (int(age), rate)
                groups[key] = groups.get(key, 0) + 1
    else:
        by_age = Counter(map(int, inp.line_ages))
    ev, variance = curve.eventual, curve.within_var
    for age, count in by_age.items():
        if age >= last:
            late += count * floor
            continue  # older than any answer seen: the forecast expects no answer
        e = ev[age]
        if e < floor:
            late += count * (floor - e)
        eventual += count * e
        if e < NEGLIGIBLE:
            continue  # too old to matter to the forecast (the guards still count it)
        am = [a + count * p for a, p in zip(am, table[age])]  # noqa: B905 (hot loop)
        av = [v + count * p for v, p in zip(av, variance[age])]  # noqa: B905
    for (age, rate), count in groups.items():
        if age >= last:
            late += count * floor * rate / base
            continue
        # A record with its own rate: the curve's shape, scaled to that rate.
        scale = rate / base
        answers = min(1.0, ev[age] * scale)
        late += count * (max(floor, ev[age]) * scale - answers)
        eventual += count * answers
        scaled = [min(1.0, p * scale) for p in table[age]]
        am = [a + count * p for a, p in zip(am, scaled, strict=True)]
        av = [v + count * p * (1 - p) for v, p in zip(av, scaled, strict=True)]
    scale = new_rate / base
    new_line = tuple(min(1.0, p * scale) for p in table[0])
    arriving = [am[0]] + [am[i] - am[i - 1] for i in range(1, k)]
    new_arriving = (new_line[0], *(new_line[i] - new_line[i - 1] for i in range(1, k)))
    return Forecast(
        checks,
        tuple(am),
        tuple(av),
        tuple(arriving),
        tuple(fm),
        tuple(fv),
        new_line,
        new_arriving,
        eventual,
        new_rate,
        late,
    )


def plan(inp: PacingInput) -> PacingDecision:
    in_flight = inp.lines_in_flight
    waiting = max(0, inp.waiting_answers)
    free_lines = inp.max_lines - in_flight - waiting
    room = max(0, min(free_lines, inp.dialable))
    if inp.mode == "preview":
        return PacingDecision(0, "preview")
    if inp.dialable <= 0:
        return PacingDecision(0, "no_records")
    if free_lines <= 0:
        return PacingDecision(0, "max_lines")
    if inp.mode == "reminder":
        return PacingDecision(room, "reminder")
    progressive = max(0, min(room, inp.ready_agents - in_flight - waiting))
    if inp.mode == "progressive":
        if progressive == 0:
            return PacingDecision(0, "no_agents")
        return PacingDecision(progressive, "progressive")

    # Predictive.
    agents = inp.ready_agents + len(inp.talk_elapsed) + len(inp.wrap_elapsed)
    if agents == 0:
        return PacingDecision(0, "no_agents")
    cap = inp.abandon_cap
    warm = inp.window_live < inp.warmup_live
    budget = hard_budget(inp)
    guard = _room_at_cap(cap, inp.window_live, inp.window_abandoned)
    # The window's guard: even if every line answered at once and nobody freed up, the
    # answers beyond the ready agents (those already waiting included) stay within its room.
    hi = min(room, inp.ready_agents + max(0, guard) - in_flight - waiting)
    target = target_ratio(cap, inp.window_live, inp.margin_z)
    if hi <= progressive:
        reason = "progressive" if progressive > 0 else "abandon_budget"
        return PacingDecision(progressive, reason, budget=budget, target=target, warmup=warm)
    fc = forecast(inp)
    hour_hi = _hour_limit(inp, fc, progressive, hi)
    limit = min(hi, hour_hi)
    if warm:
        theta = GAIN_START * target_ratio(cap, inp.warmup_live, inp.margin_z)
    else:
        theta = gain(cap, inp.window_live, inp.window_abandoned, inp.margin_z)
        if inp.hour_live is not None and HOUR_LOOP:
            # The last hour steers too, so its ratio stays under the cap and its guard
            # seldom has to stop the dialling.
            hour_z = inp.margin_z * HOUR_LOOP
            full = filling_hour(inp, agents)
            theta = min(theta, gain(cap, inp.hour_live, inp.hour_abandoned, hour_z, full))
    allowed = theta * fc.new_rate  # the abandons a line may add, per line

    n = progressive
    if limit > progressive and fc.added(progressive + 1) <= allowed:
        # The added abandons grow with every line: the last line that fits is found by halves.
        lo, top = progressive + 1, limit
        while lo < top:
            mid = (lo + top + 1) // 2
            if fc.added(mid) <= allowed:
                lo = mid
            else:
                top = mid - 1
        n = lo
    if n > progressive and n == limit:
        if limit == room and room < free_lines:
            reason = "no_records"
        elif limit == room:
            reason = "max_lines"
        else:
            reason = "abandon_budget"
    elif n > progressive:
        reason = "planned"
    else:
        reason = "progressive" if progressive > 0 else "planned"
    return PacingDecision(
        dial=n,
        reason=reason,
        answer_rate=fc.new_rate,
        expected_free=fc.free_mean[-1],
        expected_answers=fc.answers(n),
        budget=budget,
        expected_abandons=fc.risk(n),
        share=theta,
        target=target,
        warmup=warm,
    )


def busy_hour(inp: PacingInput, agents: int) -> float:
    """The live answers an hour holds on this floor with every agent kept busy: each agent
    takes a call, talks and wraps up, one after another."""
    handle = (inp.talk.mean or inp.talk.prior_mean) + (inp.wrap.mean or inp.wrap.prior_mean)
    return agents * 3600.0 / max(1.0, handle)


def filling_hour(inp: PacingInput, agents: int) -> float:
    """The live answers the last hour's loop takes its margin on, while the hour is filling.

    Early in the day the hour holds only the answers since the first of them: judged on
    those alone, its margin is wider than the cap for the first hundred or so answers and
    holds the floor near progressive for most of the first hour. Judged on the hour it will
    be once full (the answers so far at their pace, at most a busy hour's), a run of early
    abandons passes the cap on the part-filled hour faster than the guard can stop it (seen
    in the simulation at 25 agents). The margin is taken between the two, on their geometric
    mean (``HOUR_BLEND``). 0 when the engine does not say how long the answers took to come,
    or when they already fill the hour."""
    if inp.hour_live is None or inp.hour_seconds is None or inp.hour_seconds <= 0:
        return 0.0
    full = min(busy_hour(inp, agents), inp.hour_live * 3600.0 / inp.hour_seconds)
    if inp.hour_live <= 0 or full <= inp.hour_live:
        return 0.0
    return float(inp.hour_live ** (1 - HOUR_BLEND) * full**HOUR_BLEND)


def _hour_limit(inp: PacingInput, fc: Forecast, lo: int, hi: int) -> int:
    """The most lines (from ``lo`` to ``hi``) the last hour's guard allows.

    Abandons pass the hour's room when, by some checkpoint ``u``, the answers reach the
    agents certain to be free by ``u`` plus the connect limit (ready now, or in a wrap-up
    whose timer ends by then; a busy agent in a call may talk on) plus the room. Answers by
    ``u`` only grow with ``u``, so between two wrap-ups ending it is enough to look at the
    last checkpoint; the chance of each such moment (Chernoff's bound on a sum of independent
    answers, each line by its age and at least ``HOUR_FLOOR`` of the rate) is summed, and the
    sum must stay within ``HOUR_RISK``."""
    if inp.hour_live is None:
        return hi
    room = _room_at_cap(inp.abandon_cap, inp.hour_live, inp.hour_abandoned)
    if room < 0:
        return lo
    waiting = max(0, inp.waiting_answers)
    c = inp.connect_limit
    limit = inp.wrap.limit
    ends = sorted(limit - e for e in inp.wrap_elapsed) if limit is not None else []
    # (checkpoint, answers beyond the certain agents that pass the room) at the last
    # checkpoint before each further wrap-up ends.
    moments: list[tuple[int, int]] = []
    ended = 0
    checks = fc.checks
    for i, u in enumerate(checks):
        while ended < len(ends) and ends[ended] <= u + c:
            ended += 1
        last = i + 1 == len(checks) or (ended < len(ends) and ends[ended] <= checks[i + 1] + c)
        if last:
            moments.append((i, inp.ready_agents + ended + room + 1 - waiting))
    lines = inp.lines_in_flight

    def ok(n: int) -> bool:
        total = 0.0
        for i, need in moments:
            # The waiting answers are certain: they take the first agents (in ``need``).
            mean = fc.answers_mean[i] - waiting + fc.late + n * fc.new_line[i]
            if need <= 0 or mean >= need:
                return False
            total += _chernoff(mean, lines + n, need)
            if total > HOUR_RISK:
                return False
        return True

    if ok(hi):
        return hi
    if not ok(lo):
        return lo
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _chernoff(mean: float, n: int, m: int) -> float:
    """An upper bound on P(S >= m) for S a sum of ``n`` independent Bernoullis with this mean
    (Chernoff-Hoeffding: ``exp(-n KL(m/n, mean/n))``)."""
    if m > n:
        return 0.0
    if mean <= 0:
        return 0.0
    a, p = m / n, mean / n
    if a >= 1:
        return math.exp(n * math.log(p)) if p > 0 else 0.0
    kl = a * math.log(a / p) + (1 - a) * math.log((1 - a) / (1 - p))
    return math.exp(-n * kl)

"""How many lines to dial now. Pure: figures in, a number out; no clock, no I/O.

Modes:
- preview: 0. The agent looks at the record and starts the call.
- progressive: one line per ready agent: ``ready - lines in flight``. Every live answer finds
  an agent waiting, so it never abandons (unless an agent walks away meanwhile).
- reminder (agentless): fill the campaign's lines.
- predictive: dial for the agents who are ready *and* those likely to be free when the
  answers come, while the abandon cap is a constraint the plan is made against.

The predictive model, over a horizon of one answer delay ``D``:

- live answers ``X ~ Binomial(in_flight + n, p)``, where ``p`` is the live-answer rate with a
  prior (``answer_rate_prior`` worth ``answer_rate_prior_weight`` attempts), so a new
  campaign neither overdials on luck nor stalls;
- free agents ``Y = ready + sum of Bernoulli(q_i)``, ``q_i`` the chance that busy agent ``i``,
  ``e_i`` seconds into its call, is done within ``D + connect_limit``:
  ``P(T <= e_i + D + c | T > e_i)`` from the recent handle times (the empirical survival
  curve, with the prior mean as an exponential tail where samples run out);
- the **abandon budget**: ``k = floor(abandon_cap x window_live - window_abandoned)``, the
  abandons the rolling window can still take without its ratio passing the cap even if no
  other call is answered. The plan keeps ``P(X - Y > k) <= RISK``: the chance that this
  round's answers outnumber free agents by more than the budget is small.
- the worst case is bounded too, at every round, before and after warm-up: if every line
  answered at once and no busy agent freed up, the answers beyond the ready agents would be
  at most ``hard_budget``: the abandons that keep ``(abandoned + a) / (live + a)`` at or under
  the full cap in the campaign's window *and* in the last hour. Live answers already waiting
  for an agent are answers for certain and count against it. So lines in flight plus waiting
  answers never exceed ``ready + hard_budget``: with no budget left (the start of a window, or
  after abandons) predictive is exactly progressive, and no run of luck can break the cap;
- and it never aims past the agents: expected answers stay within expected free agents.

The progressive number is always allowed (it cannot abandon), so an exhausted budget
degrades predictive to progressive instead of stopping. The cap is what the plan is measured
against; nothing waits for a breach to slow down.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Literal

Mode = Literal["preview", "progressive", "predictive", "reminder"]
# Expected abandons of the lines in flight, as a share of their expected answers, are kept
# under this fraction of the cap: the rest of the cap is margin for bad luck.
TARGET = 0.6
# Below this many live answers in the window a ratio means little: only the worst-case bound.
MIN_LIVE = 300
# Aim for one answer more than the agents expected free: the expected-abandon bound decides.
AIM_EXTRA = 1.0
# The lines in flight may expect to use at most this share of the abandons left, so one
# unlucky minute cannot spend the whole budget.
BUDGET_SHARE = 0.3
CAP_SHARE = 0.7
MIN_RATE = 0.02  # a campaign with no answers yet still dials, slowly
EXACT_AGENTS = 16


@dataclass(frozen=True)
class PacingInput:
    mode: Mode
    ready_agents: int  # free now and not already taken by a live answer
    busy_elapsed: tuple[float, ...]  # per busy agent: seconds into its call (and wrap-up)
    handle_samples: tuple[float, ...]  # recent handle times, seconds
    handle_prior: float  # prior mean handle time, seconds
    handle_prior_weight: int
    answered: int  # live answers observed
    attempts: int  # attempts ended
    answer_rate_prior: float
    answer_rate_prior_weight: int
    answer_delay: float  # mean seconds from originate to a live answer
    lines_in_flight: int  # originated, not yet answered or ended
    max_lines: int
    abandon_cap: float  # e.g. 0.03
    window_live: int  # live answers in the rolling window
    window_abandoned: int  # abandoned live answers in the rolling window
    dialable: int  # records the calling rules allow now
    connect_limit: float = 2.0
    # Live answers waiting for an agent (within the connect limit): certain answers that need
    # an agent, not lines that may or may not answer. Leaving them out of the bound let the
    # last unit of budget be dialled while one was already waiting (two abandons at once).
    waiting_answers: int = 0
    # The last hour, less the time a line dialled now could take to abandon (ring + connect
    # limit): live answers and abandons in it. Every 1-hour window ending at an abandon must
    # hold the cap too, not only the campaign's long window. None: no hourly guard.
    hour_live: int | None = None
    hour_abandoned: int = 0


@dataclass(frozen=True)
class PacingDecision:
    dial: int
    # What bound the number: preview, no_records, max_lines, no_agents, progressive,
    # abandon_budget, planned (as many as the agents can take), reminder.
    reason: str
    answer_rate: float = 0.0
    expected_free: float = 0.0
    expected_answers: float = 0.0
    budget: int = 0  # abandons the window can still take
    expected_abandons: float = 0.0  # E[answers beyond free agents] with this plan


def answer_rate(inp: PacingInput) -> float:
    w = inp.answer_rate_prior_weight
    rate = (inp.answered + inp.answer_rate_prior * w) / max(1, inp.attempts + w)
    return min(1.0, max(MIN_RATE, rate))


def abandon_budget(inp: PacingInput) -> int:
    """Abandons the rolling window can still take with its ratio at or under the cap.

    Only ``CAP_SHARE`` of the cap is planned for: abandons come in bursts (several answers
    in the same second), and the rest of the cap absorbs them. With ``hour_live`` given, the
    last hour bounds it too: ``a`` more abandons (each also a live answer) keep that hour at
    or under the cap while ``(abandoned + a) / (live + a) <= cap``.
    """
    budget = math.floor(CAP_SHARE * inp.abandon_cap * inp.window_live - inp.window_abandoned + 1e-9)
    if inp.hour_live is not None and inp.abandon_cap < 1:
        cap = inp.abandon_cap
        hourly = math.floor((cap * inp.hour_live - inp.hour_abandoned) / (1 - cap) + 1e-9)
        budget = min(budget, hourly)
    return budget


def hard_budget(inp: PacingInput) -> int:
    """Abandons the campaign's window can take at the full cap: ``a`` more abandons (each a
    live answer too) keep ``(abandoned + a) / (live + a) <= cap``."""
    cap = inp.abandon_cap
    if cap >= 1:
        return 10**9
    return math.floor((cap * inp.window_live - inp.window_abandoned) / (1 - cap) + 1e-9)


def free_within(
    elapsed: float, horizon: float, samples: list[float], prior_mean: float, prior_weight: int
) -> float:
    """P(done within ``horizon`` more seconds | ``elapsed`` seconds in), from sorted samples.

    The empirical survival curve, with ``prior_weight`` pseudo-calls from an exponential of
    the prior mean, so a few samples cannot make an agent look certain (or never) to finish.
    """
    mean = max(1.0, prior_mean)
    exp_alive = math.exp(-elapsed / mean)
    exp_done = exp_alive - math.exp(-(elapsed + horizon) / mean)
    n = len(samples)
    alive = (n - bisect_right(samples, elapsed)) + prior_weight * exp_alive
    done = (bisect_right(samples, elapsed + horizon) - bisect_right(samples, elapsed)) + (
        prior_weight * exp_done
    )
    if alive <= 1e-12:
        return 1.0  # longer than every call ever seen: treat as about to finish
    return min(1.0, max(0.0, done / alive))


def _free_distribution(ready: int, qs: list[float]) -> list[float]:
    """P(Y = y) for y = 0.., Y = ready + sum of Bernoulli(q)."""
    dist = [1.0]
    for q in qs:
        nxt = [0.0] * (len(dist) + 1)
        for y, pr in enumerate(dist):
            nxt[y] += pr * (1 - q)
            nxt[y + 1] += pr * q
        dist = nxt
    return [0.0] * ready + dist


def _binomial_tail(n: int, p: float) -> list[float]:
    """tail[x] = P(X >= x) for X ~ Binomial(n, p), x = 0..n+1."""
    pmf = [0.0] * (n + 1)
    if p >= 1.0:
        pmf[n] = 1.0
    else:
        pmf[0] = (1 - p) ** n
        ratio = p / (1 - p)
        for x in range(1, n + 1):
            pmf[x] = pmf[x - 1] * ratio * (n - x + 1) / x
    tail = [0.0] * (n + 2)
    for x in range(n, -1, -1):
        tail[x] = tail[x + 1] + pmf[x]
    return tail


def _normal_overflow(
    lines: int, p: float, free_mean: float, free_var: float, certain: int = 0
) -> float:
    """E[max(0, certain + X - Y)] with X - Y taken as normal (many busy agents)."""
    mean = certain + lines * p - free_mean
    sd = math.sqrt(lines * p * (1 - p) + free_var)
    if sd <= 1e-9:
        return max(0.0, mean)
    z = mean / sd
    pdf = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * math.erfc(-z / math.sqrt(2))
    return sd * pdf + mean * cdf


def expected_overflow(lines: int, p: float, free: list[float], certain: int = 0) -> float:
    """E[max(0, certain + X - Y)] with X ~ Binomial(lines, p), Y distributed as ``free``,
    and ``certain`` answers already in (waiting for an agent)."""
    tail = _binomial_tail(lines, p)
    # E[max(0, X - m)] = sum over x > m of P(X >= x) for m >= 0; for m < 0 it is E[X] - m.
    above = [0.0] * (lines + 2)
    for x in range(lines, -1, -1):
        above[x] = above[x + 1] + tail[x + 1]
    total = 0.0
    for y, py in enumerate(free):
        m = y - certain
        if m < 0:
            total += py * (lines * p - m)
        elif m <= lines:
            total += py * above[m]
    return total


def plan(inp: PacingInput) -> PacingDecision:
    room = max(0, min(inp.max_lines - inp.lines_in_flight, inp.dialable))
    if inp.mode == "preview":
        return PacingDecision(0, "preview")
    if inp.dialable <= 0:
        return PacingDecision(0, "no_records")
    if inp.max_lines - inp.lines_in_flight <= 0:
        return PacingDecision(0, "max_lines")
    if inp.mode == "reminder":
        return PacingDecision(room, "reminder")
    waiting = max(0, inp.waiting_answers)
    progressive = max(0, min(room, inp.ready_agents - inp.lines_in_flight - waiting))
    if inp.mode == "progressive":
        if progressive == 0:
            return PacingDecision(0, "no_agents")
        return PacingDecision(progressive, "progressive")

    # Predictive.
    agents = inp.ready_agents + len(inp.busy_elapsed)
    if agents == 0:
        return PacingDecision(0, "no_agents")
    p = answer_rate(inp)
    horizon = max(0.0, inp.answer_delay) + inp.connect_limit
    samples = sorted(inp.handle_samples)
    qs = [
        free_within(e, horizon, samples, inp.handle_prior, inp.handle_prior_weight)
        for e in inp.busy_elapsed
    ]
    expected_free = inp.ready_agents + sum(qs)
    # Exact for a small floor; past EXACT_AGENTS busy agents the sum of many Bernoullis is
    # close to normal and the exact convolution would cost O(agents^2) per round.
    exact = len(qs) <= EXACT_AGENTS
    free = _free_distribution(inp.ready_agents, qs) if exact else []
    free_var = sum(q * (1 - q) for q in qs)

    def overflow(lines: int) -> float:
        if exact:
            return expected_overflow(lines, p, free, waiting)
        return _normal_overflow(lines, p, expected_free, free_var, waiting)

    budget = abandon_budget(inp)
    aim = (expected_free + AIM_EXTRA - waiting) / p
    room_lines = min(room, max(0, math.ceil(aim) - inp.lines_in_flight))
    # Always allowed: even if every line answered and no busy agent freed up, the answers
    # beyond the ready agents (those already waiting included) would not pass the budget.
    worst = max(
        0, min(room_lines, inp.ready_agents + max(0, budget) - inp.lines_in_flight - waiting)
    )
    n = worst if inp.window_live < MIN_LIVE else min(worst, progressive)
    # The hard guard, after warm-up too: even if every line answered at once and nobody freed
    # up, the abandons would stay within what the windows can take at the full cap.
    hard = max(0, inp.ready_agents + max(0, hard_budget(inp)) - inp.lines_in_flight - waiting)
    if inp.window_live >= MIN_LIVE and budget >= 1:
        # Planned against the cap: the expected overflow of every line in flight stays
        # under TARGET x cap of the answers they bring, and within the budget left.
        def fits(k: int) -> bool:
            lines = inp.lines_in_flight + k
            over = overflow(lines)
            answers = lines * p + waiting
            return over <= TARGET * inp.abandon_cap * answers and over <= BUDGET_SHARE * budget

        lo, hi = n, min(room_lines, hard)
        if not fits(lo):
            hi = lo
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid - 1
        n = lo
    if n >= room_lines and room_lines == room and room < inp.max_lines - inp.lines_in_flight:
        reason = "no_records"
    elif n >= room_lines and room_lines == inp.max_lines - inp.lines_in_flight:
        reason = "max_lines"
    elif n >= room_lines:
        reason = "planned"
    else:
        reason = "abandon_budget"
    if n <= progressive:
        n, reason = progressive, ("progressive" if progressive > 0 else reason)
    return PacingDecision(
        dial=n,
        reason=reason,
        answer_rate=p,
        expected_free=expected_free,
        expected_answers=(inp.lines_in_flight + n) * p + waiting,
        budget=budget,
        expected_abandons=overflow(inp.lines_in_flight + n),
    )

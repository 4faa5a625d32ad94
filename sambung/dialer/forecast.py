"""What the pacer learns from the campaign's history. Pure: samples in, frozen models out.

Three models, each built by the service from what it has seen (and by the simulator from what
the engine would have seen), and read by ``dialer.pacing.plan`` many times a second:

- ``Survival``: how long a phase lasts (an agent's talk, or wrap-up). Recent durations plus a
  few pseudo-samples from an exponential of a prior mean, so a handful of calls cannot make an
  agent look certain, or never, to finish. Held as weights on a one-second grid, so asking
  "will this agent, 80 s into a call, be free within 20 s?" is two look-ups.
- ``AnswerCurve``: when dialled lines become live answers. From the campaign's finished
  attempts: at each age, the weight of attempts that became live later, and of attempts still
  open (neither live nor ended). ``P(live answer | still open after t s)`` falls as a line
  rings on: most people who answer do so in the first rings, while the lines that end without
  a person (no answer, a machine) end late. Counting every line in flight as a fresh dial
  overstated the answers to come.
- ``RateTable``: the live-answer rate of the next records, per hour band (the debtor's local
  time), bucket and zone, each shrunk to the campaign's mean by its own number of attempts,
  since debtors answer differently at 9:00 and at 19:00 and a new band must not swing the
  pacer on a few calls.

Builders take plain numbers and return frozen values; no clock, no I/O.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# A phase longer than this is off the grid: only the prior's exponential tail speaks for it.
GRID_LIMIT = 4 * 3600
# Attempts older than this many seconds are off the answer curve's grid (nobody answers then).
CURVE_LIMIT = 300
MIN_RATE = 0.02  # a campaign with no answers yet still dials, slowly


@dataclass(frozen=True, slots=True)
class Survival:
    """How long a phase lasts: ``alive[i]`` is the weight of durations longer than ``i`` s.

    Past the grid only the prior's exponential tail is left. ``limit``: the phase ends by then
    for certain (wrap-up ends on its timer). ``typical``: the median duration.
    """

    alive: tuple[float, ...]
    prior_mean: float
    prior_weight: float
    limit: float | None = None
    typical: float = 0.0
    # The mean duration, the samples and the prior's pseudo-samples together (0: the prior's).
    mean: float = 0.0

    def weight_after(self, x: float) -> float:
        g = self.alive
        if x <= 0:
            return g[0]
        i = int(x)
        if i + 1 < len(g):
            return g[i] + (g[i + 1] - g[i]) * (x - i)
        return self.prior_weight * math.exp(-x / self.prior_mean)

    def ends_within(self, elapsed: float, more: float) -> float:
        """P(the phase ends within ``more`` seconds | it has lasted ``elapsed`` seconds)."""
        if self.limit is not None and elapsed + more >= self.limit:
            return 1.0
        alive = self.weight_after(elapsed)
        if alive <= 1e-12:
            return 1.0  # longer than anything seen: about to end
        return min(1.0, max(0.0, 1.0 - self.weight_after(elapsed + more) / alive))

    def expected_ends(self, elapsed: Iterable[float], more: float) -> float:
        """How many of these phases (each ``elapsed`` seconds in) end within ``more`` seconds,
        in expectation; read at whole seconds, for many agents at once."""
        g = self.alive
        top = len(g) - 1
        w, m, limit = self.prior_weight, self.prior_mean, self.limit
        total = 0.0
        for e in elapsed:
            if limit is not None and e + more >= limit:
                total += 1.0
                continue
            x = int(e)
            alive = g[x] if x < top else w * math.exp(-x / m)
            if alive <= 1e-12:
                total += 1.0
                continue
            y = int(e + more)
            q = 1.0 - (g[y] if y < top else w * math.exp(-y / m)) / alive
            if q > 0:
                total += q
        return total


def survival(
    samples: Iterable[float],
    prior_mean: float,
    prior_weight: float,
    *,
    limit: float | None = None,
) -> Survival:
    """The survival of a phase from recent durations (seconds) and an exponential prior."""
    mean = max(1.0, prior_mean)
    xs = sorted(max(0.0, s) for s in samples if math.isfinite(s))
    top = min(GRID_LIMIT, int(xs[-1]) if xs else 0)
    if limit is not None:
        top = min(top, int(limit))
    n = len(xs)
    alive: list[float] = []
    j = 0
    for i in range(top + 2):
        while j < n and xs[j] <= i:
            j += 1
        alive.append((n - j) + prior_weight * math.exp(-i / mean))
    half = alive[0] / 2
    typical = float(next((i for i, a in enumerate(alive) if a <= half), len(alive)))
    if typical >= len(alive) - 1 and prior_weight > 0:
        # Past the samples the exponential tail decides where half is left.
        typical = max(typical, mean * math.log(2))
    if limit is not None:
        typical = min(typical, limit)
    weight = n + max(0.0, prior_weight)
    average = (sum(xs) + max(0.0, prior_weight) * mean) / weight if weight > 0 else mean
    if limit is not None:
        average = min(average, limit)
    return Survival(tuple(alive), mean, float(prior_weight), limit, typical, average)


DEFAULT_TALK = survival((), 120.0, 5)
DEFAULT_WRAP = survival((), 15.0, 5, limit=15.0)


def checkpoints(horizon: float) -> tuple[float, ...]:
    """Where the pacer compares answers with free agents: every 3 s for the first 20 s (an
    answer needs an agent within the connect limit; steps of 5 s or more hide gaps that
    abandon, and finer ones changed nothing in the simulation), then every 6 s to 40 s and
    every 10 s after, up to the horizon past which no line answers."""
    out = [float(u) for u in range(1, 21, 3)]
    out += [float(u) for u in range(22, 41, 6)]
    out += [float(u) for u in range(50, CURVE_LIMIT + 1, 10)]
    return (*(u for u in out if u < horizon), float(horizon))


@dataclass(frozen=True, slots=True)
class AnswerCurve:
    """When lines become live answers, by age (seconds since the dial), on a 1 s grid.

    ``live_after[i]``: weight of attempts that became live answers later than ``i`` s;
    ``open_at[i]``: weight of attempts still open at ``i`` s (live later, or ended later).
    ``checks``: the pacer's checkpoints for this curve; ``within[i][k]``: P(live answer within
    ``checks[k]`` more seconds | still open at ``i`` s); ``eventual[i]``: P(live answer |
    still open at ``i`` s). Ages past the grid answer no more.
    """

    live_after: tuple[float, ...]
    open_at: tuple[float, ...]
    checks: tuple[float, ...]
    within: tuple[tuple[float, ...], ...]
    eventual: tuple[float, ...]
    within_var: tuple[tuple[float, ...], ...] = ()  # p * (1 - p) of ``within``

    def rate(self) -> float:
        """The live-answer rate of a fresh dial."""
        return self.eventual[0] if self.eventual[0] > 0 else MIN_RATE

    def live_eventually(self, age: float) -> float:
        """P(live answer | still open after ``age`` s)."""
        i = max(0, int(age))
        return self.eventual[i] if i < len(self.eventual) else 0.0

    def live_within(self, age: float, within: float) -> float:
        """P(live answer within ``within`` more seconds | still open after ``age`` s)."""
        g, o = self.live_after, self.open_at
        i = max(0, int(age))
        if i >= len(g) or o[i] <= 1e-12:
            return 0.0
        j = int(age + within)
        later = g[j] if j < len(g) else 0.0
        return max(0.0, (g[i] - later) / o[i])

    @property
    def horizon(self) -> float:
        """No live answer is expected from a line older than this."""
        return self.checks[-1]


def _curve(live_after: list[float], open_at: list[float]) -> AnswerCurve:
    last = next((i + 1 for i in range(len(live_after) - 1, -1, -1) if live_after[i] > 1e-9), 1)
    horizon = float(max(1, last))
    checks = checkpoints(horizon)
    n = len(live_after)

    def after(x: int) -> float:
        return live_after[x] if x < n else 0.0

    within = tuple(
        tuple(
            max(0.0, (live_after[i] - after(i + int(u))) / open_at[i])
            if open_at[i] > 1e-12
            else 0.0
            for u in checks
        )
        for i in range(n)
    )
    eventual = tuple(live_after[i] / open_at[i] if open_at[i] > 1e-12 else 0.0 for i in range(n))
    within_var = tuple(tuple(p * (1 - p) for p in row) for row in within)
    return AnswerCurve(tuple(live_after), tuple(open_at), checks, within, eventual, within_var)


def answer_curve(
    live_delays: Iterable[float],
    other_ends: Iterable[float],
    *,
    prior_rate: float,
    prior_weight: float,
    ring_seconds: float,
) -> AnswerCurve:
    """The curve from finished attempts: seconds from dial to live answer for the live ones,
    from dial to end for the others.

    ``prior_weight`` pseudo-attempts at ``prior_rate`` spread evenly (live answers over 3 s to
    the ring time, other ends over 1 s to the ring time plus 5 s of answering-machine
    detection) keep a new campaign's curve sensible.
    """
    lives = sorted(min(CURVE_LIMIT, max(0.0, x)) for x in live_delays if math.isfinite(x))
    others = sorted(min(CURVE_LIMIT, max(0.0, x)) for x in other_ends if math.isfinite(x))
    ring = max(4.0, float(ring_seconds))
    top = int(max(ring + 5, lives[-1] if lives else 0, others[-1] if others else 0)) + 2
    top = min(top, CURVE_LIMIT + 2)
    p0 = min(1.0, max(0.0, prior_rate))
    w_live, w_other = prior_weight * p0, prior_weight * (1 - p0)
    live_after: list[float] = []
    open_at: list[float] = []
    for i in range(top + 1):
        pl = w_live * _uniform_after(i, 3.0, ring)
        po = w_other * _uniform_after(i, 1.0, ring + 5)
        la = len(lives) - bisect_right(lives, i) + pl
        live_after.append(la)
        open_at.append(la + len(others) - bisect_right(others, i) + po)
    return _curve(live_after, open_at)


def _uniform_after(x: float, lo: float, hi: float) -> float:
    """P(U > x) for U uniform on [lo, hi]."""
    if x <= lo:
        return 1.0
    if x >= hi:
        return 0.0
    return (hi - x) / (hi - lo)


DEFAULT_CURVE = answer_curve((), (), prior_rate=0.25, prior_weight=20, ring_seconds=25)


# ---- the live-answer rate by hour band, bucket and zone ----------------------------------

HOUR_BAND = 2  # hours per band of the debtor's local day: 8-10, 10-12, ...


def hour_band(local_hour: int) -> int:
    return local_hour // HOUR_BAND


@dataclass(frozen=True, slots=True)
class Tally:
    live: int = 0
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class RateTable:
    """Live-answer rates that shrink to the campaign's mean where data are thin.

    ``mean``: the campaign's rate (its own attempts, with the prior). Each factor (hour band,
    bucket, zone) has its rate shrunk to the mean with ``strength`` pseudo-attempts; a record's
    rate is the mean times each factor's ratio to it, and then its own cell's figures
    (the three together) are shrunk toward that.
    """

    mean: float
    bands: Mapping[int, float]
    buckets: Mapping[str, float]
    zones: Mapping[str, float]
    cells: Mapping[tuple[int, str, str], Tally]
    strength: float

    def guess(self, band: int, bucket: str, zone: str) -> float:
        """The rate from the three factors alone: the mean times each one's ratio to it."""
        m = self.mean
        guess = m
        for r in (self.bands.get(band), self.buckets.get(bucket), self.zones.get(zone)):
            if r is not None and m > 0:
                guess *= r / m
        return min(1.0, max(MIN_RATE, guess))

    def rate(self, band: int, bucket: str, zone: str) -> float:
        """The guess, with the stratum's own figures shrunk toward it."""
        guess = self.guess(band, bucket, zone)
        cell = self.cells.get((band, bucket, zone))
        if cell is None:
            return guess
        k = self.strength
        return min(1.0, max(MIN_RATE, (cell.live + k * guess) / (cell.attempts + k)))


def rate_table(
    tallies: Mapping[tuple[int, str, str], Tally],
    *,
    prior_rate: float,
    prior_weight: float,
    strength: float = 50.0,
) -> RateTable:
    """Shrunk rates from live answers and attempts per (hour band, bucket, zone)."""
    live = sum(t.live for t in tallies.values())
    attempts = sum(t.attempts for t in tallies.values())
    mean = (live + prior_rate * prior_weight) / max(1e-9, attempts + prior_weight)
    mean = min(1.0, max(MIN_RATE, mean))

    def factor(index: int) -> dict[int | str, float]:
        sums: dict[int | str, list[int]] = {}
        for key, t in tallies.items():
            s = sums.setdefault(key[index], [0, 0])
            s[0] += t.live
            s[1] += t.attempts
        return {k: (lv + strength * mean) / (n + strength) for k, (lv, n) in sums.items()}

    return RateTable(
        mean=mean,
        bands={int(k): v for k, v in factor(0).items()},
        buckets={str(k): v for k, v in factor(1).items()},
        zones={str(k): v for k, v in factor(2).items()},
        cells=dict(tallies),
        strength=strength,
    )

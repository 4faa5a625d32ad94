"""A seeded discrete-event simulation of a dialling floor, driven by ``dialer.pacing.plan``.

    .venv/bin/python -m bench.dialer_sim                 # the grid, then the 100-seed target
    .venv/bin/python -m bench.dialer_sim --quick         # shorter shift, fewer seeds
    .venv/bin/python -m bench.dialer_sim --cell 25,0.25,120 --seeds 20

The world: ``agents`` agents on an ``hours`` shift; every dial is a live answer with
probability ``rate`` after an answer delay (uniform 6-18 s), otherwise it ends without a
person after 3-30 s (busy, no answer, machine); a live answer takes a free agent at once, or
waits up to the connect limit (2 s) for one, or is abandoned; talk time is exponential around
``talk`` seconds (at least 10 s), wrap-up 15 s. The pacing module sees what the engine sees
(ready agents, how long each busy agent has been busy, the last 200 handle times, answers and
attempts so far, the mean answer delay, lines in flight, the window's live answers and
abandons) and is asked on every 1 s tick and whenever an agent frees up, as the engine does.

Printed per grid cell (agents, live-answer rate, talk, mode): agent occupancy (busy time over
logged-in time), the worst rolling abandon rate over the campaign's 24 h window (over one
shift, the running ratio after every live answer), the worst over any 1 h window holding at
least 30 live answers, dials, answers and abandons. Progressive is the baseline; predictive's
occupancy gain over it is printed for each cell. Then the target: 25 agents, rate 0.25, talk
120 s, predictive, over 100 seeds: mean occupancy >= 0.92 and no window above the 3% cap in
any seed. The exit status is 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import sys
import time
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass, field

from dialer.pacing import Mode, PacingInput, plan

CAP = 0.03
CONNECT_LIMIT = 2.0
WRAP = 15.0
HOUR = 3600.0
# A line dialled now abandons, if it does, within its longest ring (30 s here) plus the connect
# limit: the last hour's live answers the pacer may count on are those older than that.
GUARD = 30.0 + CONNECT_LIMIT


@dataclass
class Result:
    occupancy: float
    worst_running: float  # the 24 h window over one shift: the running ratio
    worst_hour: float
    dials: int
    answers: int
    abandons: int
    plan_us: list[float] = field(default_factory=list)
    worst_live: int = 0  # live answers so far when the running ratio was at its worst
    # The worst running ratio once there were 1/cap live answers (one abandon's worth).
    worst_running_after_one: float = 0.0


def simulate(
    agents: int,
    rate: float,
    talk: float,
    mode: Mode,
    seed: int,
    hours: float = 8.0,
    max_lines_per_agent: int = 3,
    sample_timing: bool = False,
) -> Result:
    rng = random.Random(seed)
    end = hours * HOUR
    events: list[tuple[float, int, str, int]] = []
    seq = 0

    def push(t: float, kind: str, ref: int = 0) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, ref))

    ready = agents
    busy_since: dict[int, float] = {}  # agent -> start of its handling
    free_ids = list(range(agents))
    waiting: deque[tuple[float, int]] = deque()  # (deadline, line id) of live answers
    in_flight = 0
    handle: deque[float] = deque(maxlen=200)
    delays: deque[float] = deque(maxlen=200)
    dials = answers = abandons = attempts_ended = 0
    busy_time = 0.0
    live_times: list[float] = []
    abandon_times: list[float] = []
    worst_running = 0.0
    worst_after_one = 0.0
    one_abandon = math.ceil(1 / CAP)
    worst_live = 0
    plan_us: list[float] = []
    line_start: dict[int, float] = {}
    line_id = 0

    def start_handling(t: float) -> None:
        nonlocal ready, busy_time
        agent = free_ids.pop()
        ready -= 1
        dur = max(10.0, rng.expovariate(1 / talk)) + WRAP
        busy_since[agent] = t
        busy_time += min(dur, end - t)
        push(t + dur, "free", agent)

    def pace(t: float) -> None:
        nonlocal in_flight, dials, line_id
        inp = PacingInput(
            mode=mode,
            ready_agents=ready if not waiting else 0,
            busy_elapsed=tuple(t - s for s in busy_since.values()),
            handle_samples=tuple(handle),
            handle_prior=talk + WRAP,
            handle_prior_weight=5,
            answered=answers,
            attempts=attempts_ended,
            answer_rate_prior=0.25,
            answer_rate_prior_weight=20,
            answer_delay=statistics.fmean(delays) if delays else 12.0,
            lines_in_flight=in_flight,
            waiting_answers=len(waiting),
            hour_live=_count_between(live_times, t - HOUR + GUARD, t),
            hour_abandoned=_count_between(abandon_times, t - HOUR, t),
            max_lines=agents * max_lines_per_agent,
            abandon_cap=CAP,
            window_live=answers,
            window_abandoned=abandons,
            dialable=10**9,
            connect_limit=CONNECT_LIMIT,
        )
        if sample_timing:
            t0 = time.perf_counter()
            n = plan(inp).dial
            plan_us.append((time.perf_counter() - t0) * 1e6)
        else:
            n = plan(inp).dial
        for _ in range(n):
            line_id += 1
            dials += 1
            in_flight += 1
            line_start[line_id] = t
            if rng.random() < rate:
                push(t + rng.uniform(6.0, 18.0), "answer", line_id)
            else:
                push(t + rng.uniform(3.0, 30.0), "fail", line_id)

    for s in range(int(end)):
        push(float(s), "tick")
    while events:
        t, _, kind, ref = heapq.heappop(events)
        if t >= end:
            break
        # Live answers whose connect limit passed are abandoned.
        while waiting and waiting[0][0] <= t:
            waiting.popleft()
            abandons += 1
            abandon_times.append(t)
            if abandons / max(1, answers) > worst_running:
                worst_running, worst_live = abandons / max(1, answers), answers
            if answers >= one_abandon:
                worst_after_one = max(worst_after_one, abandons / answers)
        if kind == "tick":
            pace(t)
        elif kind == "fail":
            in_flight -= 1
            attempts_ended += 1
            line_start.pop(ref, None)
        elif kind == "answer":
            in_flight -= 1
            attempts_ended += 1
            answers += 1
            live_times.append(t)
            delays.append(t - line_start.pop(ref, t))
            if ready > 0:
                start_handling(t)
            else:
                waiting.append((t + CONNECT_LIMIT, ref))
            if abandons / answers > worst_running:
                worst_running, worst_live = abandons / answers, answers
            if answers >= one_abandon:
                worst_after_one = max(worst_after_one, abandons / answers)
        elif kind == "free":
            handle.append(t - busy_since.pop(ref))
            free_ids.append(ref)
            ready += 1
            if waiting:
                waiting.popleft()
                start_handling(t)
            pace(t)
    occupancy = busy_time / (agents * end)
    return Result(
        occupancy,
        worst_running,
        _worst_hour(live_times, abandon_times),
        dials,
        answers,
        abandons,
        plan_us,
        worst_live,
        worst_after_one,
    )


def _count_between(times: list[float], lo: float, hi: float) -> int:
    """How many of the sorted ``times`` lie in (lo, hi]."""
    return bisect_right(times, hi) - bisect_right(times, lo)


def _worst_hour(live: list[float], abandoned: list[float]) -> float:
    """The worst abandon ratio over any 1 h window (ending at an abandon) with >= 30 lives."""
    worst = 0.0
    for i, t in enumerate(abandoned):
        n_live = bisect_left(live, t + 1e-9) - bisect_left(live, t - HOUR)
        n_ab = i + 1 - bisect_left(abandoned, t - HOUR)
        if n_live >= 30:
            worst = max(worst, n_ab / n_live)
    return worst


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))] if s else 0.0


def grid(hours: float, seed: int) -> None:
    print(
        f"grid: one {hours:g} h shift per cell, seed {seed}; "
        "worst 24h = running abandon ratio after each live answer"
    )
    print(
        f"{'agents':>6} {'rate':>5} {'talk':>5} {'mode':>12} {'occupancy':>9} "
        f"{'worst 24h':>9} {'worst 1h':>8} {'dials':>7} {'answers':>7} {'abandons':>8} "
        f"{'gain':>6} {'wall s':>6}"
    )
    for agents in (10, 25, 50):
        for rate in (0.10, 0.25, 0.40):
            for talk in (120, 300):
                base = 0.0
                for mode in ("progressive", "predictive"):
                    t0 = time.perf_counter()
                    r = simulate(agents, rate, talk, mode, seed, hours)
                    wall = time.perf_counter() - t0
                    gain = "" if mode == "progressive" else f"{r.occupancy - base:+.3f}"
                    base = r.occupancy if mode == "progressive" else base
                    print(
                        f"{agents:>6} {rate:>5.2f} {talk:>5} {mode:>12} {r.occupancy:>9.3f} "
                        f"{r.worst_running:>9.2%} {r.worst_hour:>8.2%} {r.dials:>7} "
                        f"{r.answers:>7} {r.abandons:>8} {gain:>6} {wall:>6.1f}",
                        flush=True,
                    )


def target(seeds: int, hours: float) -> bool:
    occ: list[float] = []
    worst: list[float] = []
    hour: list[float] = []
    breaches = 0
    timing: list[float] = []
    t0 = time.perf_counter()
    for s in range(seeds):
        r = simulate(25, 0.25, 120, "predictive", 1000 + s, hours, sample_timing=(s == 0))
        occ.append(r.occupancy)
        worst.append(r.worst_running)
        hour.append(r.worst_hour)
        timing += r.plan_us
        if r.worst_running > CAP:
            breaches += 1
    ok = statistics.fmean(occ) >= 0.92 and breaches == 0
    print(
        f"\ntarget: 25 agents, rate 0.25, talk 120 s, predictive, {seeds} seeds x {hours:g} h "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    print(
        f"  occupancy mean {statistics.fmean(occ):.3f} min {min(occ):.3f} max {max(occ):.3f} "
        "(target >= 0.92)"
    )
    print(
        f"  worst abandon ratio in the campaign's 24 h window: max {max(worst):.2%} over "
        f"seeds; seeds over the 3% cap: {breaches} (target 0)"
    )
    print(
        f"  (for information, 1 h windows with >= 30 live answers: worst {max(hour):.2%}, "
        f"{sum(1 for h in hour if h > CAP)} seeds above 3%: the cap is not planned per hour)"
    )
    print(
        f"  plan() per call: p50 {_pct(timing, 0.5):.0f} us, p99 {_pct(timing, 0.99):.0f} us "
        f"({len(timing)} calls)"
    )
    print(f"  {'MET' if ok else 'MISSED'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--quick", action="store_true", help="2 h shifts, 10 seeds")
    ap.add_argument("--cell", help="agents,rate,talk: run only this cell, both modes")
    ap.add_argument("--no-grid", action="store_true")
    args = ap.parse_args(argv)
    hours, seeds = (2.0, 10) if args.quick else (args.hours, args.seeds)
    if args.cell:
        a, r, t = args.cell.split(",")
        for mode in ("progressive", "predictive"):
            rs = [simulate(int(a), float(r), float(t), mode, 1000 + s, hours) for s in range(seeds)]
            print(
                f"{mode:>12}: occupancy mean {statistics.fmean(x.occupancy for x in rs):.3f}, "
                f"worst 24h {max(x.worst_running for x in rs):.2%}, "
                f"worst 1h {max(x.worst_hour for x in rs):.2%}, "
                f"abandons {sum(x.abandons for x in rs)} of {sum(x.answers for x in rs)} answers"
            )
        return 0
    if not args.no_grid:
        grid(hours, 7)
    return 0 if target(seeds, hours) else 1


if __name__ == "__main__":
    sys.exit(main())

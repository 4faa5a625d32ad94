"""Skill routing decision time: ``acd.routing.route`` against a naive reference, in one run.

Each round draws a fresh, seeded contact-centre moment: waiting calls spread over four
queues (one per strategy, two of them aging), six skills at levels 1-5, priorities 0-3 (mostly
0), need profiles per queue that relax with waiting on most calls, a few pinned calls and a
few with agents excluded; ready agents serve one to three queues. Both implementations decide
every round and must return the same matches; only the decision itself is timed.

    .venv/bin/python -m bench.routing --calls 1000 --agents 200 --rounds 200
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sambung.acd.routing import (
    Match,
    QueuePolicy,
    ReadyAgent,
    RelaxStep,
    SkillNeed,
    Strategy,
    WaitingCall,
    next_change,
    route,
)

QUEUES = ("billing", "collections", "sales", "support")
LANGUAGES = ("id", "en")
PRODUCTS = ("cards", "loans", "insurance", "tech")
POLICIES = {
    "billing": QueuePolicy(Strategy.LONGEST_IDLE, aging_seconds=60.0),
    "collections": QueuePolicy(Strategy.FEWEST_CALLS),
    "sales": QueuePolicy(Strategy.BEST_SKILL, aging_seconds=120.0),
    "support": QueuePolicy(Strategy.ROUND_ROBIN),
}
NOW = 100_000.0


# ---- the naive reference: every eligible free agent for every call, in service order ------


def _naive_step(call: WaitingCall, now: float) -> tuple[int, tuple[SkillNeed, ...]]:
    step, needs = 0, call.needs
    for i, relax in enumerate(call.relax, start=1):
        if now - call.enqueued_at >= relax.after_seconds:
            step, needs = i, relax.needs
    return step, needs


def _naive_priority(call: WaitingCall, policy: QueuePolicy, now: float) -> int:
    if policy.aging_seconds:
        return call.priority + math.floor(max(0.0, now - call.enqueued_at) / policy.aging_seconds)
    return call.priority


def _naive_level(agent: ReadyAgent, skill: str) -> int:
    return max((lv for s, lv in agent.skills if s == skill), default=0)


def _naive_rank(
    strategy: Strategy, needs: tuple[SkillNeed, ...]
) -> Callable[[ReadyAgent], tuple[Any, ...]]:
    def key(a: ReadyAgent) -> tuple[Any, ...]:
        if strategy is Strategy.FEWEST_CALLS:
            return (a.calls_today, a.idle_since, a.agent_id)
        if strategy is Strategy.BEST_SKILL:
            return (-sum(_naive_level(a, n.skill) for n in needs), a.idle_since, a.agent_id)
        if strategy is Strategy.ROUND_ROBIN:
            return (a.last_offered, a.agent_id)
        return (a.idle_since, a.agent_id)

    return key


def naive_route(
    calls: Sequence[WaitingCall],
    agents: Sequence[ReadyAgent],
    policies: Mapping[str, QueuePolicy],
    now: float,
) -> list[Match]:
    """The routing rules read literally, O(calls x agents): the reference ``route`` must match."""
    default = QueuePolicy()
    ordered = sorted(
        calls,
        key=lambda c: (
            -_naive_priority(c, policies.get(c.queue, default), now),
            c.enqueued_at,
            c.entry_id,
        ),
    )
    free = list(agents)
    out: list[Match] = []
    for call in ordered:
        step, needs = _naive_step(call, now)
        fit = [
            a
            for a in free
            if call.queue in a.queues
            and a.agent_id not in call.excluded_agents
            and call.pinned_agent in (None, a.agent_id)
            and all(_naive_level(a, n.skill) >= n.min_level for n in needs)
        ]
        if fit:
            strategy = Strategy(policies.get(call.queue, default).strategy)
            best = min(fit, key=_naive_rank(strategy, needs))
            out.append(Match(call.entry_id, best.agent_id, step))
            free.remove(best)
    return out


# ---- a seeded moment in a contact centre ------------------------------------------------


def _profiles(rng: random.Random) -> dict[str, list[tuple[tuple[SkillNeed, ...], bool]]]:
    """Per queue, three kinds of caller: (needs at step 0, relaxes with waiting?)."""
    out: dict[str, list[tuple[tuple[SkillNeed, ...], bool]]] = {}
    for queue in QUEUES:
        kinds: list[tuple[tuple[SkillNeed, ...], bool]] = []
        for _ in range(3):
            needs: tuple[SkillNeed, ...] = (
                SkillNeed(rng.choice(LANGUAGES), rng.randint(1, 3)),
                SkillNeed(rng.choice(PRODUCTS), rng.randint(2, 5)),
            )
            kinds.append((needs, rng.random() < 0.7))
        out[queue] = kinds
    return out


def scenario(
    rng: random.Random, n_calls: int, n_agents: int
) -> tuple[list[WaitingCall], list[ReadyAgent]]:
    agent_ids = [f"agent{i:04d}" for i in range(n_agents)]
    agents = []
    for agent_id in agent_ids:
        skills = {lang: rng.randint(2, 5) for lang in rng.sample(LANGUAGES, rng.randint(1, 2))}
        skills |= {p: rng.randint(1, 5) for p in rng.sample(PRODUCTS, rng.randint(1, 3))}
        agents.append(
            ReadyAgent(
                agent_id,
                tuple(sorted(skills.items())),
                frozenset(rng.sample(QUEUES, rng.randint(1, 3))),
                idle_since=NOW - rng.uniform(0, 300),
                calls_today=rng.randint(0, 40),
                last_offered=NOW - rng.uniform(0, 900),
            )
        )
    profiles = _profiles(rng)
    calls = []
    for i in range(n_calls):
        queue = rng.choice(QUEUES)
        needs, relaxes = rng.choice(profiles[queue])
        relax: tuple[RelaxStep, ...] = ()
        if relaxes:
            relax = (RelaxStep(30.0, needs[1:]), RelaxStep(90.0, ()))
        calls.append(
            WaitingCall(
                f"e{i:05d}",
                queue,
                rng.choices((0, 1, 2, 3), weights=(70, 15, 10, 5))[0],
                enqueued_at=NOW - rng.uniform(0, 600),
                needs=needs,
                relax=relax,
                pinned_agent=rng.choice(agent_ids) if rng.random() < 0.01 else None,
                excluded_agents=(
                    frozenset(rng.sample(agent_ids, rng.randint(1, 2)))
                    if rng.random() < 0.1
                    else frozenset()
                ),
            )
        )
    return calls, agents


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q * (len(s) - 1))))
    return s[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1000, help="waiting calls (default 1000)")
    ap.add_argument("--agents", type=int, default=200, help="ready agents (default 200)")
    ap.add_argument("--rounds", type=int, default=100, help="decisions timed (default 100)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    times: dict[str, list[float]] = {"route": [], "naive": [], "next_change": []}
    matched: list[int] = []
    for r in range(args.rounds + 3):
        calls, agents = scenario(rng, args.calls, args.agents)
        t0 = time.perf_counter_ns()
        fast = route(calls, agents, POLICIES, NOW)
        t1 = time.perf_counter_ns()
        slow = naive_route(calls, agents, POLICIES, NOW)
        t2 = time.perf_counter_ns()
        next_change(calls, POLICIES, NOW)
        t3 = time.perf_counter_ns()
        assert fast == slow, f"round {r}: route and the naive reference disagree"
        if r < 3:
            continue  # warm-up
        times["route"].append((t1 - t0) / 1e6)
        times["naive"].append((t2 - t1) / 1e6)
        times["next_change"].append((t3 - t2) / 1e6)
        matched.append(len(fast))

    print(
        f"Routing decision: {args.calls} waiting calls x {args.agents} ready agents, "
        f"{len(QUEUES)} queues, {len(LANGUAGES) + len(PRODUCTS)} skills, {args.rounds} rounds "
        f"(seed {args.seed}); every round route() == naive reference"
    )
    print(
        f"matches per decision: mean {sum(matched) / len(matched):.1f}, "
        f"min {min(matched)}, max {max(matched)}"
    )
    print(f"{'what':<14}{'n':>5}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for label, v in times.items():
        print(f"{label:<14}{len(v):>5}{pct(v, 0.5):>10.3f}{pct(v, 0.99):>10.3f}{max(v):>10.3f}")
    fast_v, slow_v = times["route"], times["naive"]
    print(
        f"ratio naive/route: p50 {pct(slow_v, 0.5) / pct(fast_v, 0.5):.1f}x, "
        f"p99 {pct(slow_v, 0.99) / pct(fast_v, 0.99):.1f}x"
    )
    print(
        f"{args.calls}x{args.agents}: route() p50 {pct(fast_v, 0.5):.3f} ms, "
        f"p99 {pct(fast_v, 0.99):.3f} ms ({pct(slow_v, 0.5) / pct(fast_v, 0.5):.0f}x faster "
        f"than naive at p50)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Skill routing: which waiting call goes to which ready agent, decided at one instant.

Pure: no I/O, no clock reads. ``now`` is an argument, on the same clock as each call's
``enqueued_at`` (the service's loop clock), so the same inputs always give the same matches.

What it decides
---------------
``route`` walks the waiting calls in service order (``order``) and gives each, in turn, the
best ready agent still free that may take it; an agent takes at most one call per run. A call
no free agent can take is passed over rather than waited on: a caller who needs a rare skill
must not hold up the callers behind them whom other agents could serve now.

An agent may take a call (``eligible``) when it serves the call's queue, is not among the
call's excluded agents (already tried, or refused it), is the pinned agent if the call is
pinned (a transfer to a named agent), and has every skill the call needs *at its current
step* at or above the minimum level. A call's needs relax with waiting: ``needs`` apply from
the start, and each ``RelaxStep`` replaces them all once the call has waited
``after_seconds``, so a caller who waits long enough is offered to a wider pool of agents.

Service order and aging
-----------------------
Calls are served by effective priority (higher first), then by arrival (older first), then by
``entry_id`` so the order is total and reproducible. Strict priority alone starves: in a busy
queue a steady stream of priority-2 calls would keep a priority-0 caller waiting for ever.
With ``aging_seconds`` set, every full ``aging_seconds`` of waiting adds one to the effective
priority, so any caller eventually outranks every newer arrival, whatever its priority; how
long that takes is the priority gap times ``aging_seconds``, a bound the queue's owner chooses.

Which agent (per the call's queue's strategy; ties always end on ``agent_id``)
-------------------------------------------------------------------------------
- longest_idle: idle the longest (smallest ``idle_since``);
- fewest_calls: fewest ``calls_today``, then longest idle;
- best_skill: highest sum of levels over the call's current needs (all equal when it has
  none), then longest idle;
- round_robin: offered least recently (smallest ``last_offered``), then ``agent_id``.

``next_change`` tells the service when to run routing again although nothing else happened:
the next instant a call's step or effective priority changes.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "Match",
    "QueuePolicy",
    "ReadyAgent",
    "RelaxStep",
    "SkillNeed",
    "Strategy",
    "WaitingCall",
    "current_step",
    "effective_priority",
    "eligible",
    "next_change",
    "order",
    "route",
]

MIN_LEVEL = 1
MAX_LEVEL = 5


class Strategy(StrEnum):
    LONGEST_IDLE = "longest_idle"
    FEWEST_CALLS = "fewest_calls"
    BEST_SKILL = "best_skill"
    ROUND_ROBIN = "round_robin"


def _check_level(what: str, level: int) -> None:
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(f"{what}: level {level} is outside {MIN_LEVEL}..{MAX_LEVEL}")


@dataclass(frozen=True, slots=True)
class SkillNeed:
    skill: str
    min_level: int  # 1..5

    def __post_init__(self) -> None:
        _check_level(f"need {self.skill!r}", self.min_level)


@dataclass(frozen=True, slots=True)
class RelaxStep:
    # From this much waiting on (now - enqueued_at >= after_seconds), ``needs`` is the
    # complete set of needs; empty means any agent of the queue.
    after_seconds: float
    needs: tuple[SkillNeed, ...]

    def __post_init__(self) -> None:
        if not self.after_seconds >= 0:  # also rejects NaN, which would never compare
            raise ValueError(f"relax step after_seconds must be >= 0, got {self.after_seconds}")


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    strategy: Strategy = Strategy.LONGEST_IDLE
    # Every this many seconds of waiting adds 1 to the effective priority. None or 0 = no
    # aging (the settings file says "0 = no aging").
    aging_seconds: float | None = None

    def __post_init__(self) -> None:
        Strategy(self.strategy)  # an unknown name fails here, not in the middle of a run
        if self.aging_seconds is not None and not self.aging_seconds >= 0:
            raise ValueError(f"aging_seconds must be >= 0 or None, got {self.aging_seconds}")


_DEFAULT_POLICY = QueuePolicy()


@dataclass(frozen=True, slots=True)
class WaitingCall:
    entry_id: str
    queue: str
    priority: int  # higher is served first
    enqueued_at: float
    needs: tuple[SkillNeed, ...] = ()  # step 0
    relax: tuple[RelaxStep, ...] = ()  # by after_seconds, ascending
    pinned_agent: str | None = None  # only this agent may take it
    excluded_agents: frozenset[str] = frozenset()  # never offer it to these

    def __post_init__(self) -> None:
        if not math.isfinite(self.enqueued_at):
            raise ValueError(f"call {self.entry_id}: enqueued_at must be finite")
        after = [r.after_seconds for r in self.relax]
        if after != sorted(after):
            # current_step and next_change rely on the steps being in time order.
            raise ValueError(f"call {self.entry_id}: relax steps must be sorted by after_seconds")


@dataclass(frozen=True, slots=True)
class ReadyAgent:
    agent_id: str
    skills: tuple[tuple[str, int], ...]  # (skill, level 1..5), each skill once
    queues: frozenset[str]
    idle_since: float
    calls_today: int = 0
    last_offered: float = 0.0

    def __post_init__(self) -> None:
        names = [s for s, _ in self.skills]
        if len(set(names)) != len(names):
            raise ValueError(f"agent {self.agent_id}: a skill is listed twice")
        for skill, level in self.skills:
            _check_level(f"agent {self.agent_id} skill {skill!r}", level)
        if math.isnan(self.idle_since) or math.isnan(self.last_offered):
            raise ValueError(f"agent {self.agent_id}: idle_since and last_offered must be numbers")

    def level(self, skill: str) -> int:
        """The agent's level in ``skill``, 0 if it does not have it."""
        for name, level in self.skills:
            if name == skill:
                return level
        return 0


@dataclass(frozen=True, slots=True)
class Match:
    entry_id: str
    agent_id: str
    step: int  # the need-set used: 0 = the call's ``needs``, k = ``relax[k - 1]``


def _waited(call: WaitingCall, now: float) -> float:
    # A call stamped a hair after ``now`` (the stamp and the run read the clock separately)
    # has waited nothing, not a negative time that would age it backwards.
    return max(0.0, now - call.enqueued_at)


def current_step(call: WaitingCall, now: float) -> tuple[int, tuple[SkillNeed, ...]]:
    """The index of the need-set in force at ``now`` (0 = ``needs``) and the needs themselves."""
    waited = now - call.enqueued_at
    step, needs = 0, call.needs
    for relax in call.relax:
        if not waited >= relax.after_seconds:
            break  # sorted: no later step can be in force either
        step += 1
        needs = relax.needs
    return step, needs


def _aging_steps(call: WaitingCall, aging: float, now: float) -> int:
    return math.floor(_waited(call, now) / aging)


def effective_priority(call: WaitingCall, policy: QueuePolicy, now: float) -> int:
    """The priority plus one per full ``aging_seconds`` waited (just the priority without aging)."""
    aging = policy.aging_seconds
    if aging:
        return call.priority + _aging_steps(call, aging, now)
    return call.priority


def _meets(levels: Mapping[str, int], needs: tuple[SkillNeed, ...]) -> bool:
    return all(levels.get(n.skill, 0) >= n.min_level for n in needs)


def _qualified(
    agents: list[ReadyAgent], needs: tuple[SkillNeed, ...], levels: Mapping[str, Mapping[str, int]]
) -> list[ReadyAgent]:
    # One need at a time over a shrinking list: a comprehension per need is several times
    # cheaper than a generator per agent, and this runs for every need-set ranked. With no
    # needs this is ``agents`` itself, so callers must not sort the result in place.
    for need in needs:
        skill, least = need.skill, need.min_level
        agents = [a for a in agents if levels[a.agent_id].get(skill, 0) >= least]
    return agents


def eligible(call: WaitingCall, agent: ReadyAgent, now: float) -> bool:
    """May ``agent`` be offered ``call`` at ``now``?"""
    if call.queue not in agent.queues or agent.agent_id in call.excluded_agents:
        return False
    if call.pinned_agent is not None and call.pinned_agent != agent.agent_id:
        return False
    return all(agent.level(n.skill) >= n.min_level for n in current_step(call, now)[1])


_ServiceKey = tuple[int, float, str, int, WaitingCall]


def _service_keys(
    calls: Sequence[WaitingCall], policies: Mapping[str, QueuePolicy], now: float
) -> list[_ServiceKey]:
    """Sortable (-effective priority, enqueued_at, entry_id, index, call) for each call.

    ``effective_priority`` inlined, with each queue's aging looked up once: this runs for
    every waiting call on every routing run. The index keeps the comparison away from the
    call itself should two calls share an entry_id.
    """
    aging_of: dict[str, float] = {}
    keys: list[_ServiceKey] = []
    for i, call in enumerate(calls):
        aging = aging_of.get(call.queue)
        if aging is None:
            aging = aging_of[call.queue] = (
                policies.get(call.queue, _DEFAULT_POLICY).aging_seconds or 0.0
            )
        priority = call.priority
        if aging:
            waited = now - call.enqueued_at
            if waited > 0:
                priority += math.floor(waited / aging)
        keys.append((-priority, call.enqueued_at, call.entry_id, i, call))
    return keys


def order(
    calls: Sequence[WaitingCall], policies: Mapping[str, QueuePolicy], now: float
) -> list[WaitingCall]:
    """Service order: effective priority (high first), then arrival (old first), then entry_id."""
    return [key[-1] for key in sorted(_service_keys(calls, policies, now))]


def _rank_key(
    strategy: Strategy, needs: tuple[SkillNeed, ...], levels: Mapping[str, Mapping[str, int]]
) -> Callable[[ReadyAgent], tuple[Any, ...]]:
    """Sort key for the agents of one queue and need-set: the best agent sorts first."""
    if strategy is Strategy.FEWEST_CALLS:
        return lambda a: (a.calls_today, a.idle_since, a.agent_id)
    if strategy is Strategy.BEST_SKILL:

        def by_skill(a: ReadyAgent) -> tuple[int, float, str]:
            mine = levels[a.agent_id]
            return (-sum(mine.get(n.skill, 0) for n in needs), a.idle_since, a.agent_id)

        return by_skill
    if strategy is Strategy.ROUND_ROBIN:
        return lambda a: (a.last_offered, a.agent_id)
    return lambda a: (a.idle_since, a.agent_id)


class _Ranking:
    """One queue's agents qualified for one need-set, best first, and where to look next.

    Agents only ever leave the pool during a run, so ``head`` moves past the taken prefix
    for good: a ranking is walked once in all, not once per call.
    """

    __slots__ = ("agents", "head")

    def __init__(self, agents: list[ReadyAgent]) -> None:
        self.agents = agents
        self.head = 0


def route(
    calls: Sequence[WaitingCall],
    agents: Sequence[ReadyAgent],
    policies: Mapping[str, QueuePolicy],
    now: float,
) -> list[Match]:
    """Match waiting calls to ready agents, in service order; a queue with no policy gets the
    default one. Raises ValueError if two calls share an entry_id or two agents an agent_id."""
    if len({c.entry_id for c in calls}) != len(calls):
        raise ValueError("two waiting calls share an entry_id")
    by_id = {a.agent_id: a for a in agents}
    if len(by_id) != len(agents):
        raise ValueError("two ready agents share an agent_id")
    if not calls or not agents:
        return []

    by_queue: dict[str, list[ReadyAgent]] = {}
    for agent in agents:
        for queue in agent.queues:
            by_queue.setdefault(queue, []).append(agent)
    levels = {a.agent_id: dict(a.skills) for a in agents}

    # The calls of one queue at the same step share a need-set, so rank that queue's
    # qualified agents once per (queue, needs) and let each call take the first one still
    # free: one sort per need-set instead of a scan of every agent for every call. Keyed by
    # the needs tuple's identity, because hashing a tuple of dataclasses on every call is a
    # measurable share of a run: the service hands every call of a queue step the same tuple,
    # all of them live through the run (so no id is reused), and two equal tuples that are
    # distinct objects merely get a ranking each, with the same result.
    rankings: dict[tuple[str, int], _Ranking] = {}
    by_rank: dict[str, list[ReadyAgent]] = {}
    taken: set[str] = set()
    matches: list[Match] = []
    free = len(by_id)

    # A heap, not a sort: once the agents run out the rest of the calls need no order.
    queue_order = _service_keys(calls, policies, now)
    heapq.heapify(queue_order)
    while queue_order:
        call = heapq.heappop(queue_order)[-1]
        step, needs = current_step(call, now)
        excluded = call.excluded_agents
        pick: ReadyAgent | None = None
        if call.pinned_agent is not None:
            pinned = by_id.get(call.pinned_agent)
            if (
                pinned is not None
                and pinned.agent_id not in taken
                and pinned.agent_id not in excluded
                and call.queue in pinned.queues
                and _meets(levels[pinned.agent_id], needs)
            ):
                pick = pinned
        else:
            key = (call.queue, id(needs))
            ranking = rankings.get(key)
            if ranking is None:
                strategy = Strategy(policies.get(call.queue, _DEFAULT_POLICY).strategy)
                if strategy is Strategy.BEST_SKILL:  # the ranking depends on the needs
                    pool = sorted(
                        _qualified(by_queue.get(call.queue, []), needs, levels),
                        key=_rank_key(strategy, needs, levels),
                    )
                else:  # rank the queue once; filtering keeps that order for every need-set
                    queue_ranked = by_rank.get(call.queue)
                    if queue_ranked is None:
                        queue_ranked = sorted(
                            by_queue.get(call.queue, []), key=_rank_key(strategy, (), levels)
                        )
                        by_rank[call.queue] = queue_ranked
                    pool = _qualified(queue_ranked, needs, levels)
                ranking = rankings[key] = _Ranking(pool)
            pool, i, end = ranking.agents, ranking.head, len(ranking.agents)
            while i < end and pool[i].agent_id in taken:
                i += 1
            ranking.head = i
            if not excluded:
                pick = pool[i] if i < end else None
            else:
                for j in range(i, end):
                    cand = pool[j]
                    if cand.agent_id not in taken and cand.agent_id not in excluded:
                        pick = cand
                        break
        if pick is None:
            continue  # nobody free can take it now; the calls behind it may still match
        taken.add(pick.agent_id)
        matches.append(Match(call.entry_id, pick.agent_id, step))
        free -= 1
        if free == 0:
            break
    return matches


def _earliest(changed: Callable[[float], bool], now: float, guess: float) -> float | None:
    """The smallest float t > now with ``changed(t)``, for a ``changed`` that is false at
    ``now`` and stays true once true; ``guess`` is the answer in exact arithmetic.

    Rounding can put the float answer an ulp or two either side of ``guess``. A timer armed
    an ulp early would fire, find nothing changed and be armed again for the same instant, so
    the answer is pinned down exactly: gallop away from the guess to bracket it, then bisect.
    """
    if not guess < math.inf:
        return None
    hi = guess if guess > now else math.nextafter(now, math.inf)
    if changed(hi):
        lo, gap = now, math.ulp(hi)
        while hi - gap > now:
            if not changed(hi - gap):
                lo = hi - gap
                break
            hi -= gap
            gap *= 2
    else:
        lo, gap = hi, math.ulp(hi)
        while True:
            hi = lo + gap
            if hi == math.inf:
                return None
            if changed(hi):
                break
            lo, gap = hi, gap * 2
    while True:
        mid = 0.5 * lo + 0.5 * hi
        if not lo < mid < hi:
            return hi
        if changed(mid):
            hi = mid
        else:
            lo = mid


def _relaxed_by(start: float, after: float) -> Callable[[float], bool]:
    return lambda t: t - start >= after


def _aged_by(start: float, aging: float, steps: int) -> Callable[[float], bool]:
    return lambda t: math.floor(max(0.0, t - start) / aging) > steps


def next_change(
    calls: Sequence[WaitingCall], policies: Mapping[str, QueuePolicy], now: float
) -> float | None:
    """The earliest time after ``now`` at which some call's step or effective priority
    changes (when to route again if nothing else happens), None if that never happens."""
    best: float | None = None
    # A candidate can only come first if it has already happened by the float just before
    # the best time so far: one cheap test settles most calls, and only the few that pass
    # it are pinned down exactly by ``_earliest``.
    before = 0.0
    aging_of: dict[str, float] = {}
    for call in calls:
        start = call.enqueued_at
        waited = now - start
        for relax in call.relax:
            after = relax.after_seconds
            if waited >= after:
                continue  # in force already
            if best is None or (before > now and before - start >= after):
                t = _earliest(_relaxed_by(start, after), now, start + after)
                if t is not None:
                    best, before = t, math.nextafter(t, -math.inf)
            break  # only the next step matters; the later ones come after it
        aging = aging_of.get(call.queue)
        if aging is None:
            aging = policies.get(call.queue, _DEFAULT_POLICY).aging_seconds or 0.0
            aging_of[call.queue] = aging
        if aging:
            steps = math.floor(max(0.0, waited) / aging)
            if best is None or (
                before > now and math.floor(max(0.0, before - start) / aging) > steps
            ):
                t = _earliest(_aged_by(start, aging, steps), now, start + (steps + 1) * aging)
                if t is not None:
                    best, before = t, math.nextafter(t, -math.inf)
    return best

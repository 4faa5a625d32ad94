"""Tables for skill routing (``sambung/acd/routing.py``): strategies, relaxation, pins, exclusions,
aging, multi-queue agents, when to route again, and what the module refuses.

Agents and calls are written compactly: ``A("siti", idle=5)`` is a ready agent of queue ``q``,
``C("e1", at=0)`` a call waiting in ``q``, and ``n("en>=3")`` a skill need.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import cast

import pytest

from sambung.acd.routing import (
    Match,
    QueuePolicy,
    ReadyAgent,
    RelaxStep,
    SkillNeed,
    Strategy,
    WaitingCall,
    current_step,
    effective_priority,
    eligible,
    next_change,
    order,
    route,
)

Q = "q"


def n(spec: str) -> SkillNeed:
    skill, _, level = spec.partition(">=")
    return SkillNeed(skill, int(level))


def needs(*specs: str) -> tuple[SkillNeed, ...]:
    return tuple(n(s) for s in specs)


def A(
    agent_id: str,
    *,
    skills: Mapping[str, int] | None = None,
    queues: Iterable[str] = (Q,),
    idle: float = 0.0,
    calls: int = 0,
    offered: float = 0.0,
) -> ReadyAgent:
    return ReadyAgent(
        agent_id,
        tuple(sorted((skills or {}).items())),
        frozenset(queues),
        idle_since=idle,
        calls_today=calls,
        last_offered=offered,
    )


def C(
    entry_id: str,
    *,
    queue: str = Q,
    priority: int = 0,
    at: float = 0.0,
    want: tuple[SkillNeed, ...] = (),
    relax: tuple[RelaxStep, ...] = (),
    pinned: str | None = None,
    excluded: Iterable[str] = (),
) -> WaitingCall:
    return WaitingCall(
        entry_id,
        queue,
        priority,
        at,
        needs=want,
        relax=relax,
        pinned_agent=pinned,
        excluded_agents=frozenset(excluded),
    )


def pairs(matches: list[Match]) -> list[tuple[str, str]]:
    return [(m.entry_id, m.agent_id) for m in matches]


NOW = 1000.0
SALES_EN = needs("en>=1", "sales>=1")


# ---- strategies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "want", "agents", "expected"),
    [
        pytest.param(
            Strategy.LONGEST_IDLE,
            (),
            [A("a", idle=50), A("b", idle=10), A("c", idle=30)],
            "b",
            id="longest-idle-smallest-idle-since",
        ),
        pytest.param(
            Strategy.LONGEST_IDLE,
            (),
            [A("b", idle=10), A("a", idle=10), A("c", idle=30)],
            "a",
            id="longest-idle-tie-by-agent-id",
        ),
        pytest.param(
            Strategy.FEWEST_CALLS,
            (),
            [A("a", calls=3, idle=0), A("b", calls=1, idle=20), A("c", calls=1, idle=5)],
            "c",
            id="fewest-calls-tie-by-longest-idle",
        ),
        pytest.param(
            Strategy.FEWEST_CALLS,
            (),
            [A("b", calls=2, idle=5), A("a", calls=2, idle=5)],
            "a",
            id="fewest-calls-then-agent-id",
        ),
        pytest.param(
            Strategy.BEST_SKILL,
            SALES_EN,
            [
                A("a", skills={"en": 3, "sales": 2}, idle=0),
                A("b", skills={"en": 5, "sales": 4}, idle=20),
                A("c", skills={"en": 4, "sales": 5}, idle=10),
            ],
            "c",
            id="best-skill-sum-tie-by-longest-idle",
        ),
        pytest.param(
            Strategy.BEST_SKILL,
            needs("en>=1"),
            [
                A("a", skills={"en": 2, "sales": 5, "tech": 5}, idle=0),
                A("b", skills={"en": 3}, idle=50),
            ],
            "b",
            id="best-skill-counts-only-the-needed-skills",
        ),
        pytest.param(
            Strategy.BEST_SKILL,
            (),
            [A("a", skills={"en": 5}, idle=40), A("b", idle=20)],
            "b",
            id="best-skill-without-needs-is-longest-idle",
        ),
        pytest.param(
            Strategy.ROUND_ROBIN,
            (),
            [A("a", offered=100, idle=0), A("c", offered=50, idle=0), A("b", offered=50, idle=90)],
            "b",
            id="round-robin-least-recently-offered-then-agent-id",
        ),
    ],
)
def test_given_a_strategy_when_one_call_waits_then_it_gets_the_best_agent(
    strategy: Strategy, want: tuple[SkillNeed, ...], agents: list[ReadyAgent], expected: str
) -> None:
    matches = route([C("e1", want=want)], agents, {Q: QueuePolicy(strategy)}, NOW)
    assert matches == [Match("e1", expected, 0)]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (Strategy.LONGEST_IDLE, [("e1", "c"), ("e2", "a"), ("e3", "b")]),
        (Strategy.FEWEST_CALLS, [("e1", "b"), ("e2", "c"), ("e3", "a")]),
        (Strategy.BEST_SKILL, [("e1", "a"), ("e2", "b"), ("e3", "c")]),
        (Strategy.ROUND_ROBIN, [("e1", "b"), ("e2", "c"), ("e3", "a")]),
    ],
)
def test_given_three_calls_when_routed_then_each_takes_the_best_agent_left(
    strategy: Strategy, expected: list[tuple[str, str]]
) -> None:
    agents = [
        A("a", skills={"en": 5}, idle=20, calls=4, offered=30),
        A("b", skills={"en": 4}, idle=30, calls=1, offered=10),
        A("c", skills={"en": 1}, idle=10, calls=4, offered=20),
    ]
    calls = [C(f"e{i}", at=float(i), want=needs("en>=1")) for i in (1, 2, 3)]
    assert pairs(route(calls, agents, {Q: QueuePolicy(strategy)}, NOW)) == expected


def test_given_no_policy_for_the_queue_when_routed_then_longest_idle_applies() -> None:
    agents = [A("a", idle=20, calls=0), A("b", idle=10, calls=9)]
    assert route([C("e1")], agents, {}, NOW) == [Match("e1", "b", 0)]


def test_given_queues_with_different_strategies_when_routed_then_each_uses_its_own() -> None:
    agents = [
        A("a", queues={"x", "y"}, idle=10, calls=5),
        A("b", queues={"x", "y"}, idle=20, calls=0),
        A("c", queues={"x", "y"}, idle=30, calls=1),
    ]
    calls = [C("ex", queue="x", at=1), C("ey", queue="y", at=2)]
    policies = {"x": QueuePolicy(Strategy.FEWEST_CALLS), "y": QueuePolicy(Strategy.LONGEST_IDLE)}
    assert pairs(route(calls, agents, policies, NOW)) == [("ex", "b"), ("ey", "a")]


# ---- relaxation ---------------------------------------------------------------------------

RELAXING = C(
    "e1",
    at=100.0,
    want=needs("en>=4"),
    relax=(RelaxStep(30.0, needs("en>=2")), RelaxStep(90.0, ())),
)


@pytest.mark.parametrize(
    ("waited", "step", "expected_needs"),
    [
        (0.0, 0, needs("en>=4")),
        (29.999, 0, needs("en>=4")),
        (30.0, 1, needs("en>=2")),
        (89.0, 1, needs("en>=2")),
        (90.0, 2, ()),
        (10_000.0, 2, ()),
        (-5.0, 0, needs("en>=4")),
    ],
)
def test_current_step_follows_the_wait(
    waited: float, step: int, expected_needs: tuple[SkillNeed, ...]
) -> None:
    assert current_step(RELAXING, 100.0 + waited) == (step, expected_needs)


@pytest.mark.parametrize(
    ("waited", "expected"),
    [
        pytest.param(0.0, [], id="strict-needs-nobody-fits"),
        pytest.param(29.9, [], id="just-before-the-first-step"),
        pytest.param(30.0, [Match("e1", "y", 1)], id="first-step-opens-to-en2"),
        pytest.param(89.9, [Match("e1", "y", 1)], id="still-first-step"),
        pytest.param(90.0, [Match("e1", "z", 2)], id="second-step-any-agent-longest-idle"),
    ],
)
def test_given_relaxing_needs_when_the_call_waits_then_the_pool_widens(
    waited: float, expected: list[Match]
) -> None:
    agents = [A("y", skills={"en": 2}, idle=50), A("z", idle=10)]
    assert route([RELAXING], agents, {}, 100.0 + waited) == expected


def test_given_a_qualified_agent_when_the_call_is_fresh_then_step_zero_is_reported() -> None:
    agents = [A("x", skills={"en": 5}, idle=90), A("z", idle=10)]
    assert route([RELAXING], agents, {}, 100.0) == [Match("e1", "x", 0)]


# ---- pinned and excluded agents ---------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        pytest.param(C("e1", pinned="b"), [Match("e1", "b", 0)], id="pinned-beats-longer-idle"),
        pytest.param(C("e1", pinned="b", excluded={"b"}), [], id="pinned-but-excluded"),
        pytest.param(C("e1", pinned="ghost"), [], id="pinned-agent-not-ready"),
        pytest.param(C("e1", pinned="b", want=needs("en>=5")), [], id="pinned-lacks-skill"),
        pytest.param(C("e1", pinned="c"), [], id="pinned-serves-another-queue"),
        pytest.param(C("e1", excluded={"a"}), [Match("e1", "b", 0)], id="excluded-skipped"),
        pytest.param(C("e1", excluded={"a", "b"}), [], id="all-excluded"),
        pytest.param(C("e1", excluded={"z"}), [Match("e1", "a", 0)], id="excluded-not-ready"),
    ],
)
def test_pinned_and_excluded_agents(call: WaitingCall, expected: list[Match]) -> None:
    agents = [
        A("a", skills={"en": 5}, idle=10),
        A("b", skills={"en": 3}, idle=20),
        A("c", skills={"en": 5}, queues={"other"}, idle=0),
    ]
    assert route([call], agents, {}, NOW) == expected


def test_given_a_call_pinned_elsewhere_when_routed_then_the_next_call_still_matches() -> None:
    calls = [C("e1", priority=5, pinned="ghost"), C("e2")]
    assert route(calls, [A("a")], {}, NOW) == [Match("e2", "a", 0)]


def test_given_a_pinned_call_behind_when_its_agent_suits_an_earlier_call_then_it_waits() -> None:
    # Pins restrict who may take the pinned call; they do not reserve the agent against
    # calls that come first in service order.
    calls = [C("e1", at=1), C("e2", at=2, pinned="a")]
    assert route(calls, [A("a", idle=0), A("b", idle=5)], {}, NOW) == [Match("e1", "a", 0)]


# ---- service order and aging --------------------------------------------------------------


@pytest.mark.parametrize(
    ("aging", "waited", "expected"),
    [
        (None, 0.0, 3),
        (None, 10_000.0, 3),
        (0.0, 10_000.0, 3),
        (60.0, 0.0, 3),
        (60.0, 59.999, 3),
        (60.0, 60.0, 4),
        (60.0, 179.0, 5),
        (60.0, -30.0, 3),
    ],
)
def test_effective_priority_adds_one_per_full_aging_period(
    aging: float | None, waited: float, expected: int
) -> None:
    call = C("e1", priority=3, at=500.0)
    assert effective_priority(call, QueuePolicy(aging_seconds=aging), 500.0 + waited) == expected


@pytest.mark.parametrize(
    ("aging", "now", "first"),
    [
        pytest.param(None, 1000.0, "new", id="no-aging-priority-wins-for-ever"),
        pytest.param(60.0, 119.0, "new", id="aged-one-step-not-enough"),
        pytest.param(60.0, 120.0, "old", id="aged-two-steps-ties-and-is-older"),
        pytest.param(60.0, 500.0, "old", id="aged-well-past"),
    ],
)
def test_given_aging_when_a_low_priority_call_waits_long_then_it_overtakes(
    aging: float | None, now: float, first: str
) -> None:
    old = C("old", priority=0, at=0.0)
    new = C("new", priority=2, at=now - 1.0)
    policies = {Q: QueuePolicy(aging_seconds=aging)}
    second = "new" if first == "old" else "old"
    assert [c.entry_id for c in order([new, old], policies, now)] == [first, second]
    assert pairs(route([new, old], [A("a")], policies, now)) == [(first, "a")]


def test_order_breaks_ties_by_arrival_then_entry_id() -> None:
    calls = [
        C("e3", priority=1, at=5.0),
        C("e2", priority=1, at=5.0),
        C("e1", priority=1, at=7.0),
        C("e0", priority=0, at=0.0),
        C("e9", priority=2, at=9.0),
    ]
    assert [c.entry_id for c in order(calls, {}, NOW)] == ["e9", "e2", "e3", "e1", "e0"]


def test_aging_applies_per_queue_policy() -> None:
    fast = C("fast", queue="x", priority=0, at=0.0)
    slow = C("slow", queue="y", priority=0, at=0.0 + 1e-3)
    policies = {"x": QueuePolicy(aging_seconds=10.0), "y": QueuePolicy(aging_seconds=None)}
    now = 35.0
    assert [c.entry_id for c in order([slow, fast], policies, now)] == ["fast", "slow"]
    assert effective_priority(fast, policies["x"], now) == 3
    assert effective_priority(slow, policies["y"], now) == 0


# ---- several queues, scarce agents, rare skills -----------------------------------------


@pytest.mark.parametrize(
    ("priorities", "expected"),
    [
        pytest.param(
            {"sales": 1, "support": 0},
            [("e-sales", "a"), ("e-support", "b")],
            id="sales-first-takes-the-shared-agent",
        ),
        pytest.param(
            {"sales": 0, "support": 1},
            [("e-support", "a")],
            id="support-first-takes-the-shared-agent-sales-waits",
        ),
    ],
)
def test_given_an_agent_in_two_queues_when_routed_then_service_order_decides(
    priorities: dict[str, int], expected: list[tuple[str, str]]
) -> None:
    agents = [A("a", queues={"sales", "support"}, idle=0), A("b", queues={"support"}, idle=10)]
    calls = [
        C("e-sales", queue="sales", priority=priorities["sales"], at=1),
        C("e-support", queue="support", priority=priorities["support"], at=2),
    ]
    assert pairs(route(calls, agents, {}, NOW)) == expected


def test_given_a_call_needing_a_rare_skill_when_nobody_has_it_then_others_still_match() -> None:
    calls = [
        C("rare", priority=9, at=0, want=needs("arabic>=3")),
        C("e2", at=1, want=needs("en>=2")),
        C("e3", at=2),
    ]
    agents = [A("a", skills={"en": 3}, idle=0), A("b", skills={"arabic": 2}, idle=5)]
    assert route(calls, agents, {}, NOW) == [Match("e2", "a", 0), Match("e3", "b", 0)]


def test_given_more_calls_than_agents_when_routed_then_each_agent_is_used_once() -> None:
    calls = [C(f"e{i}", at=float(i)) for i in range(5)]
    agents = [A("a", idle=2), A("b", idle=1)]
    assert pairs(route(calls, agents, {}, NOW)) == [("e0", "b"), ("e1", "a")]


def test_given_an_agent_of_another_queue_when_routed_then_no_match() -> None:
    assert route([C("e1", queue="x")], [A("a", queues={"y"})], {}, NOW) == []


def test_given_nothing_to_route_then_no_matches() -> None:
    assert route([], [A("a")], {}, NOW) == []
    assert route([C("e1")], [], {}, NOW) == []


@pytest.mark.parametrize(
    ("agent", "call", "expected"),
    [
        (A("a", skills={"en": 3}), C("e1", want=needs("en>=3")), True),
        (A("a", skills={"en": 2}), C("e1", want=needs("en>=3")), False),
        (A("a", skills={"en": 3}), C("e1", want=needs("en>=3", "id>=1")), False),
        (A("a", queues={"x"}), C("e1"), False),
        (A("a"), C("e1", excluded={"a"}), False),
        (A("a"), C("e1", pinned="a"), True),
        (A("a"), C("e1", pinned="b"), False),
        (A("a", skills={"en": 2}), RELAXING, False),
    ],
)
def test_eligible(agent: ReadyAgent, call: WaitingCall, expected: bool) -> None:
    assert eligible(call, agent, 100.0) is expected


def test_eligible_uses_the_step_in_force() -> None:
    agent = A("a", skills={"en": 2})
    assert not eligible(RELAXING, agent, 129.0)
    assert eligible(RELAXING, agent, 130.0)


# ---- when to route again ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calls", "policies", "now", "expected"),
    [
        pytest.param([C("e1", at=100.0)], {}, 110.0, None, id="nothing-ever-changes"),
        pytest.param([RELAXING], {}, 110.0, 130.0, id="first-relax-step"),
        pytest.param([RELAXING], {}, 130.0, 190.0, id="at-a-step-the-next-one"),
        pytest.param([RELAXING], {}, 190.0, None, id="fully-relaxed"),
        pytest.param(
            [C("e1", at=100.0)], {Q: QueuePolicy(aging_seconds=60.0)}, 110.0, 160.0, id="aging"
        ),
        pytest.param(
            [C("e1", at=100.0)],
            {Q: QueuePolicy(aging_seconds=60.0)},
            160.0,
            220.0,
            id="aging-at-a-boundary-the-next-one",
        ),
        pytest.param(
            [RELAXING], {Q: QueuePolicy(aging_seconds=20.0)}, 110.0, 120.0, id="aging-before-relax"
        ),
        pytest.param(
            [C("e1", at=100.0), C("e2", queue="x", at=50.0)],
            {"x": QueuePolicy(aging_seconds=45.0)},
            110.0,
            140.0,
            id="earliest-over-calls",
        ),
        pytest.param(
            [C("e1", at=100.0)],
            {Q: QueuePolicy(aging_seconds=60.0)},
            90.0,
            160.0,
            id="stamped-after-now-ages-from-its-stamp",
        ),
        pytest.param([], {}, 0.0, None, id="no-calls"),
    ],
)
def test_next_change(
    calls: list[WaitingCall], policies: dict[str, QueuePolicy], now: float, expected: float | None
) -> None:
    assert next_change(calls, policies, now) == expected


def test_next_change_is_exact_where_float_arithmetic_is_not() -> None:
    # 0.1 + 0.2 is 0.30000000000000004: the change must be reported where it really happens,
    # not an ulp early (the timer would fire, find nothing changed and ask again).
    call = C("e1", at=0.1, relax=(RelaxStep(0.2, ()),))
    t = next_change([call], {}, 0.1)
    assert t is not None
    assert current_step(call, t)[0] == 1
    assert current_step(call, math.nextafter(t, -math.inf))[0] == 0
    aged = C("e2", at=0.1)
    policy = {Q: QueuePolicy(aging_seconds=0.7)}
    t = next_change([aged], policy, 0.1)
    assert t is not None
    assert effective_priority(aged, policy[Q], t) == 1
    assert effective_priority(aged, policy[Q], math.nextafter(t, -math.inf)) == 0


# ---- what the module refuses --------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: SkillNeed("en", 0), id="need-level-0"),
        pytest.param(lambda: SkillNeed("en", 6), id="need-level-6"),
        pytest.param(lambda: RelaxStep(-1.0, ()), id="relax-negative"),
        pytest.param(lambda: RelaxStep(math.nan, ()), id="relax-nan"),
        pytest.param(
            lambda: C("e1", relax=(RelaxStep(60.0, ()), RelaxStep(30.0, ()))), id="relax-unsorted"
        ),
        pytest.param(lambda: C("e1", at=math.inf), id="enqueued-at-infinite"),
        pytest.param(lambda: A("a", skills={"en": 0}), id="agent-level-0"),
        pytest.param(lambda: A("a", skills={"en": 6}), id="agent-level-6"),
        pytest.param(
            lambda: ReadyAgent("a", (("en", 2), ("en", 3)), frozenset({Q}), 0.0),
            id="agent-skill-twice",
        ),
        pytest.param(lambda: A("a", idle=math.nan), id="agent-idle-nan"),
        pytest.param(lambda: QueuePolicy(aging_seconds=-1.0), id="aging-negative"),
        pytest.param(lambda: QueuePolicy(aging_seconds=math.nan), id="aging-nan"),
        pytest.param(lambda: QueuePolicy(cast(Strategy, "random")), id="unknown-strategy"),
        pytest.param(lambda: route([C("e1"), C("e1")], [A("a")], {}, NOW), id="entry-twice"),
        pytest.param(lambda: route([C("e1")], [A("a"), A("a")], {}, NOW), id="agent-twice"),
    ],
)
def test_invalid_input_is_refused(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        build()


def test_relax_steps_at_the_same_time_are_accepted_and_the_last_wins() -> None:
    call = C("e1", at=0.0, relax=(RelaxStep(30.0, needs("en>=2")), RelaxStep(30.0, ())))
    assert current_step(call, 30.0) == (2, ())

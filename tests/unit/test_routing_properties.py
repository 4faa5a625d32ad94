"""Hypothesis: routing fairness and soundness over random moments (``sambung/acd/routing.py``).

Small universes (three queues, three skills, eight agent names, levels and times drawn from
few values) so that ties, pins to absent agents, exclusions and shared agents come up often.
Whatever the draw: every match is eligible; no agent or call is used twice; a call is only
passed over for an agent it could have had when that agent went to a call served before it;
no unmatched call could have had a still-free agent; each call got the best agent left by its
queue's strategy (the result equals the naive reference); a low-priority caller eventually
overtakes newcomers when aging is on; and ``next_change`` is exactly when something changes.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.routing import naive_route
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

QUEUES = ("a", "b", "c")
SKILLS = ("x", "y", "z")
AGENT_IDS = tuple(f"g{i}" for i in range(8))
PROPS = settings(max_examples=200, deadline=None)

# Round values make ties (equal idle times, equal arrivals) common; floats cover the rest.
times = st.one_of(
    st.integers(0, 60).map(lambda i: i * 10.0),
    st.floats(min_value=0.0, max_value=600.0, allow_nan=False),
)
skill_needs = st.lists(
    st.builds(SkillNeed, st.sampled_from(SKILLS), st.integers(1, 5)), max_size=2
).map(tuple)
relax_steps = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=300.0, allow_nan=False), skill_needs),
    max_size=2,
).map(lambda steps: tuple(RelaxStep(t, n) for t, n in sorted(steps, key=lambda s: s[0])))
policies = st.dictionaries(
    st.sampled_from(QUEUES),
    st.builds(
        QueuePolicy,
        st.sampled_from(list(Strategy)),
        st.one_of(st.none(), st.sampled_from([0.0, 7.5, 60.0]), st.floats(0.5, 300.0)),
    ),
)


# Built once: a strategy made inside a draw is validated again on every draw.
queue_names = st.sampled_from(QUEUES)
agent_names = st.sampled_from(AGENT_IDS)
priorities = st.integers(0, 3)
pins = st.one_of(st.none(), agent_names)
exclusions = st.frozensets(agent_names, max_size=2)
skill_sets = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5)).map(
    lambda levels: tuple(sorted(levels.items()))
)
queue_sets = st.frozensets(queue_names, max_size=3)
call_counts = st.integers(0, 10)
calls_today = st.integers(0, 3)
agent_id_lists = st.lists(agent_names, unique=True, max_size=len(AGENT_IDS))


@st.composite
def waiting_calls(draw: st.DrawFn) -> list[WaitingCall]:
    return [
        WaitingCall(
            f"e{i}",
            draw(queue_names),
            draw(priorities),
            draw(times),
            needs=draw(skill_needs),
            relax=draw(relax_steps),
            pinned_agent=draw(pins),
            excluded_agents=draw(exclusions),
        )
        for i in range(draw(call_counts))
    ]


@st.composite
def ready_agents(draw: st.DrawFn) -> list[ReadyAgent]:
    return [
        ReadyAgent(
            agent_id,
            draw(skill_sets),
            draw(queue_sets),
            idle_since=draw(times),
            calls_today=draw(calls_today),
            last_offered=draw(times),
        )
        for agent_id in draw(agent_id_lists)
    ]


nows = st.floats(min_value=0.0, max_value=1200.0, allow_nan=False)
Moment = tuple[list[WaitingCall], list[ReadyAgent], dict[str, QueuePolicy], float]
moments = st.tuples(waiting_calls(), ready_agents(), policies, nows)


def _decide(moment: Moment) -> tuple[list[Match], dict[str, WaitingCall], dict[str, ReadyAgent]]:
    calls, agents, pols, now = moment
    return (
        route(calls, agents, pols, now),
        {c.entry_id: c for c in calls},
        {a.agent_id: a for a in agents},
    )


@PROPS
@given(moments)
def test_every_match_is_eligible_at_the_step_in_force(moment: Moment) -> None:
    matches, calls, agents = _decide(moment)
    now = moment[3]
    for m in matches:
        call, agent = calls[m.entry_id], agents[m.agent_id]
        step, needs = current_step(call, now)
        assert m.step == step
        assert call.queue in agent.queues
        assert agent.agent_id not in call.excluded_agents
        assert call.pinned_agent in (None, agent.agent_id)
        for need in needs:
            assert dict(agent.skills).get(need.skill, 0) >= need.min_level
        assert eligible(call, agent, now)


@PROPS
@given(moments)
def test_no_agent_and_no_call_is_matched_twice(moment: Moment) -> None:
    matches, calls, agents = _decide(moment)
    assert len({m.agent_id for m in matches}) == len(matches)
    assert len({m.entry_id for m in matches}) == len(matches)
    assert all(m.entry_id in calls and m.agent_id in agents for m in matches)


@PROPS
@given(moments)
def test_a_call_is_passed_over_only_for_calls_served_before_it(moment: Moment) -> None:
    matches, calls, agents = _decide(moment)
    call_list, _, pols, now = moment
    rank = {c.entry_id: i for i, c in enumerate(order(call_list, pols, now))}
    holder = {m.agent_id: m.entry_id for m in matches}
    matched = {m.entry_id for m in matches}
    for call in calls.values():
        if call.entry_id in matched:
            continue
        for agent_id, taker in holder.items():
            if eligible(call, agents[agent_id], now):
                assert rank[taker] < rank[call.entry_id]
    # In particular the first call in service order that any agent could take is served.
    servable = [
        c for c in order(call_list, pols, now) if any(eligible(c, a, now) for a in agents.values())
    ]
    if servable:
        assert servable[0].entry_id in matched


@PROPS
@given(moments)
def test_no_unmatched_call_could_have_had_an_agent_left_free(moment: Moment) -> None:
    matches, calls, agents = _decide(moment)
    now = moment[3]
    matched = {m.entry_id for m in matches}
    used = {m.agent_id for m in matches}
    for call in calls.values():
        if call.entry_id not in matched:
            assert not any(
                eligible(call, a, now) for a in agents.values() if a.agent_id not in used
            )


def _rank_key(
    strategy: Strategy, call: WaitingCall, agent: ReadyAgent, now: float
) -> tuple[Any, ...]:
    if strategy is Strategy.FEWEST_CALLS:
        return (agent.calls_today, agent.idle_since, agent.agent_id)
    if strategy is Strategy.BEST_SKILL:
        skill = -sum(agent.level(n.skill) for n in current_step(call, now)[1])
        return (skill, agent.idle_since, agent.agent_id)
    if strategy is Strategy.ROUND_ROBIN:
        return (agent.last_offered, agent.agent_id)
    return (agent.idle_since, agent.agent_id)


@PROPS
@given(moments)
def test_each_call_gets_the_best_agent_its_strategy_allows_among_those_left(
    moment: Moment,
) -> None:
    matches, calls, agents = _decide(moment)
    call_list, _, pols, now = moment
    rank = {c.entry_id: i for i, c in enumerate(order(call_list, pols, now))}
    holder = {m.agent_id: m.entry_id for m in matches}
    for m in matches:
        call = calls[m.entry_id]
        strategy = pols.get(call.queue, QueuePolicy()).strategy
        mine = _rank_key(strategy, call, agents[m.agent_id], now)
        for other in agents.values():
            if eligible(call, other, now) and _rank_key(strategy, call, other, now) < mine:
                # A better agent was there: only a call served earlier may have taken it.
                assert other.agent_id in holder
                assert rank[holder[other.agent_id]] < rank[call.entry_id]
    assert matches == naive_route(call_list, list(agents.values()), pols, now)


@PROPS
@given(
    low=st.integers(0, 3),
    gap=st.integers(1, 5),
    aging=st.floats(min_value=0.5, max_value=600.0),
    start=st.floats(min_value=0.0, max_value=10_000.0),
    extra=st.floats(min_value=0.0, max_value=10_000.0),
    strategy=st.sampled_from(list(Strategy)),
)
def test_given_aging_a_low_priority_call_eventually_precedes_newcomers(
    low: int, gap: int, aging: float, start: float, extra: float, strategy: Strategy
) -> None:
    old = WaitingCall("old", "a", low, start)
    # (gap + 1) periods, not gap: float rounding may leave gap periods a hair short.
    now = start + (gap + 1) * aging + extra
    newcomer = WaitingCall("new", "a", low + gap, now)
    aged = {"a": QueuePolicy(strategy, aging_seconds=aging)}
    assert [c.entry_id for c in order([newcomer, old], aged, now)] == ["old", "new"]
    agent = ReadyAgent("g0", (), frozenset({"a"}), 0.0)
    assert route([newcomer, old], [agent], aged, now) == [Match("old", "g0", 0)]
    # Without aging the newcomer's priority wins however long the other has waited.
    plain = {"a": QueuePolicy(strategy)}
    assert [c.entry_id for c in order([newcomer, old], plain, now)] == ["new", "old"]


def _state(
    calls: list[WaitingCall], pols: dict[str, QueuePolicy], t: float
) -> list[tuple[int, int]]:
    return [
        (current_step(c, t)[0], effective_priority(c, pols.get(c.queue, QueuePolicy()), t))
        for c in calls
    ]


@PROPS
@given(waiting_calls(), policies, nows)
def test_next_change_is_the_first_instant_anything_changes(
    calls: list[WaitingCall], pols: dict[str, QueuePolicy], now: float
) -> None:
    t = next_change(calls, pols, now)
    before = _state(calls, pols, now)
    if t is None:
        # Nothing left to relax and nothing ages.
        for c in calls:
            assert current_step(c, now)[0] == len(c.relax)
            assert not pols.get(c.queue, QueuePolicy()).aging_seconds
        return
    assert t > now
    assert _state(calls, pols, t) != before
    just_before = math.nextafter(t, -math.inf)
    if just_before > now:
        # Steps and priorities only grow with time, so unchanged here means unchanged since now.
        assert _state(calls, pols, just_before) == before

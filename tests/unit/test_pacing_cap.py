"""The abandon cap is never broken on the campaign's window: answered calls waiting for an
agent count against the budget, and a hard guard holds the window at the full cap after
warm-up too. The last hour bounds the planned (expected) abandons."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.dialer_sim import CAP, simulate
from dialer.pacing import PacingInput, abandon_budget, hard_budget, plan

BASE = PacingInput(
    mode="predictive",
    ready_agents=0,
    busy_elapsed=(200.0,) * 9,
    handle_samples=(135.0,) * 50,
    handle_prior=135.0,
    handle_prior_weight=5,
    answered=60,
    attempts=240,
    answer_rate_prior=0.25,
    answer_rate_prior_weight=20,
    answer_delay=12.0,
    lines_in_flight=0,
    max_lines=30,
    abandon_cap=CAP,
    window_live=51,
    window_abandoned=0,
    dialable=1000,
)


def test_given_a_call_waiting_for_an_agent_then_the_last_unit_of_budget_is_not_dialled() -> None:
    """The breach the simulation found at 10 agents: 51 live answers, one abandon's worth of
    budget, an answered call already waiting; dialling one more line could give 2 abandons in
    52 answers (3.8%)."""
    assert hard_budget(BASE) == 1
    assert plan(BASE).dial >= 1  # nothing waiting: the budget may be used
    waiting = replace(BASE, waiting_answers=1)
    assert plan(waiting).dial == 0
    assert plan(waiting).expected_answers >= 1.0  # the waiting call is an answer for certain


def test_given_calls_waiting_then_progressive_leaves_their_agents_alone() -> None:
    inp = replace(BASE, mode="progressive", ready_agents=3, waiting_answers=2)
    assert plan(inp).dial == 1


def test_given_an_hour_with_few_live_answers_then_it_bounds_the_planned_budget() -> None:
    long_window = replace(BASE, window_live=3000, window_abandoned=10)
    assert abandon_budget(long_window) > 40
    quiet_hour = replace(long_window, hour_live=40, hour_abandoned=1)
    assert abandon_budget(quiet_hour) == 0  # (1 + 1) / (40 + 1) would be 4.9%
    # With nothing to spend, predictive plans no line beyond the ready agents.
    assert plan(replace(quiet_hour, ready_agents=2)).dial <= 2


@settings(max_examples=25, deadline=None)
@given(
    agents=st.integers(4, 30),
    rate=st.floats(0.08, 0.5),
    talk=st.floats(30.0, 400.0),
    seed=st.integers(0, 10**6),
    hours=st.floats(0.5, 1.5),
)
def test_property_the_running_ratio_never_passes_the_cap(
    agents: int, rate: float, talk: float, seed: int, hours: float
) -> None:
    """Random floors and event orders (answer delays, failures, talk times): the running
    abandon ratio never passes the cap once it has an abandon's worth of live answers."""
    r = simulate(agents, rate, talk, "predictive", seed, hours=hours)
    assert r.worst_running_after_one <= CAP + 1e-12, (r.worst_running_after_one, r.worst_live)

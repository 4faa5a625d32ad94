"""The abandon cap is never broken on the campaign's window: answered calls waiting for an
agent count against the guard, which holds the window at the full cap whatever the forecast
says. The last hour is steered and guarded by the chance of its room being passed."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.dialer_sim import CAP, simulate
from sambung.dialer.forecast import answer_curve, survival
from sambung.dialer.pacing import PacingInput, hard_budget, plan

BASE = PacingInput(
    mode="predictive",
    ready_agents=0,
    max_lines=30,
    dialable=1000,
    abandon_cap=CAP,
    window_live=51,
    window_abandoned=0,
    talk_elapsed=(200.0,) * 9,
    talk=survival([135.0] * 50, 120.0, 5),
    curve=answer_curve(
        [12.0] * 60, [15.0] * 180, prior_rate=0.25, prior_weight=20, ring_seconds=30
    ),
    warmup_live=1,
)


def test_given_a_call_waiting_for_an_agent_then_the_last_unit_of_budget_is_not_dialled() -> None:
    """The breach the simulation found at 10 agents: 51 live answers, one abandon's worth of
    budget, an answered call already waiting; dialling one more line could give 2 abandons in
    52 answers (3.8%)."""
    assert hard_budget(BASE) == 1
    waiting = replace(BASE, waiting_answers=1)
    d = plan(waiting)
    # The waiting call is an answer for certain: with no agent ready, it takes the budget.
    assert (d.dial, d.reason, d.budget) == (0, "abandon_budget", 1)


def test_given_calls_waiting_then_progressive_leaves_their_agents_alone() -> None:
    inp = replace(BASE, mode="progressive", ready_agents=3, waiting_answers=2)
    assert plan(inp).dial == 1


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
    r = simulate(agents, rate, talk, "ours", seed, hours=hours)
    assert r.worst_running <= CAP + 1e-12, (r.worst_running, r.worst_live)


@settings(max_examples=8, deadline=None)
@given(
    agents=st.integers(8, 40),
    rate=st.floats(0.1, 0.45),
    talk=st.floats(60.0, 300.0),
    seed=st.integers(0, 10**6),
)
def test_property_no_hour_with_30_live_answers_passes_the_cap(
    agents: int, rate: float, talk: float, seed: int
) -> None:
    """Over three hours of random floors, no 1-hour window holding at least 30 live answers
    passes the cap."""
    r = simulate(agents, rate, talk, "ours", seed, hours=3.0)
    assert r.worst_hour <= CAP + 1e-12, r.worst_hour

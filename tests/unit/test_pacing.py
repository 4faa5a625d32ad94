"""dialer/pacing.py: tables for each mode and reason, and Hypothesis properties."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.pacing import (
    MIN_LIVE,
    PacingInput,
    abandon_budget,
    expected_overflow,
    free_within,
    plan,
)

BASE = PacingInput(
    mode="predictive",
    ready_agents=2,
    busy_elapsed=(),
    handle_samples=(),
    handle_prior=135.0,
    handle_prior_weight=5,
    answered=0,
    attempts=0,
    answer_rate_prior=0.25,
    answer_rate_prior_weight=20,
    answer_delay=12.0,
    lines_in_flight=0,
    max_lines=20,
    abandon_cap=0.03,
    window_live=0,
    window_abandoned=0,
    dialable=1000,
)


def test_preview_never_dials() -> None:
    assert plan(replace(BASE, mode="preview")).dial == 0


def test_progressive_is_one_line_per_ready_agent() -> None:
    d = plan(replace(BASE, mode="progressive", ready_agents=5, lines_in_flight=2))
    assert (d.dial, d.reason) == (3, "progressive")
    assert plan(replace(BASE, mode="progressive", ready_agents=0)).reason == "no_agents"


def test_reminder_fills_the_lines_without_agents() -> None:
    d = plan(replace(BASE, mode="reminder", ready_agents=0, lines_in_flight=4, max_lines=10))
    assert (d.dial, d.reason) == (6, "reminder")


def test_nothing_to_dial_and_no_room() -> None:
    assert plan(replace(BASE, dialable=0)).reason == "no_records"
    assert plan(replace(BASE, lines_in_flight=20)).reason == "max_lines"
    assert plan(replace(BASE, ready_agents=0)).reason == "no_agents"


def test_with_no_budget_predictive_is_progressive() -> None:
    # The start of a window: no live answers yet, so not one abandon may be risked.
    d = plan(replace(BASE, ready_agents=3, busy_elapsed=(100.0,) * 10))
    assert (d.dial, d.reason) == (3, "progressive")


def test_with_a_budget_predictive_dials_for_agents_about_to_be_free() -> None:
    busy = tuple(float(x) for x in range(60, 300, 10))  # 24 agents well into their calls
    inp = replace(
        BASE,
        ready_agents=1,
        busy_elapsed=busy,
        answered=2000,
        attempts=8000,
        window_live=2000,
        window_abandoned=10,
        handle_samples=tuple(float(x) for x in range(40, 240, 2)),
    )
    d = plan(inp)
    assert d.dial > 1, d
    assert d.expected_abandons <= 0.03 * d.expected_answers
    assert d.expected_abandons <= abandon_budget(inp)


def test_a_spent_budget_stops_the_extra_lines() -> None:
    busy = (100.0,) * 24
    inp = replace(BASE, ready_agents=1, busy_elapsed=busy, window_live=2000, window_abandoned=60)
    d = plan(inp)
    assert abandon_budget(inp) <= 0
    assert d.dial == 1


def test_free_within_follows_the_samples() -> None:
    samples = sorted([100.0] * 50 + [200.0] * 50)
    # Half the calls end at 100 s: an agent 95 s in is likely to be free within 10 s.
    assert free_within(95, 10, samples, 150, 0) == 0.5
    assert free_within(150, 10, samples, 150, 0) == 0.0
    assert free_within(195, 10, samples, 150, 0) == 1.0
    assert 0 < free_within(500, 10, samples, 150, 5) <= 1  # past every sample: the prior


def test_expected_overflow_small_cases() -> None:
    assert expected_overflow(0, 0.5, [1.0]) == 0.0
    # One line that surely answers, nobody free: one abandon.
    assert expected_overflow(1, 1.0, [1.0]) == 1.0
    # Two lines at 1/2, one agent for sure: E[max(0, X - 1)] = P(X = 2) = 1/4.
    assert abs(expected_overflow(2, 0.5, [0.0, 1.0]) - 0.25) < 1e-12


inputs = st.builds(
    PacingInput,
    mode=st.sampled_from(["preview", "progressive", "predictive", "reminder"]),
    ready_agents=st.integers(0, 60),
    busy_elapsed=st.lists(st.floats(0, 2000), max_size=40).map(tuple),
    handle_samples=st.lists(st.floats(1, 2000), max_size=60).map(tuple),
    handle_prior=st.floats(10, 1000),
    handle_prior_weight=st.integers(0, 20),
    answered=st.integers(0, 5000),
    attempts=st.integers(0, 20000),
    answer_rate_prior=st.floats(0.01, 1.0),
    answer_rate_prior_weight=st.integers(1, 100),
    answer_delay=st.floats(0, 40),
    lines_in_flight=st.integers(0, 200),
    max_lines=st.integers(1, 200),
    abandon_cap=st.floats(0, 0.2),
    window_live=st.integers(0, 10000),
    window_abandoned=st.integers(0, 500),
    dialable=st.integers(0, 500),
    connect_limit=st.floats(0.5, 5),
).filter(lambda i: i.answered <= i.attempts)


@settings(max_examples=400, deadline=None)
@given(inputs)
def test_never_more_than_the_lines_or_the_records(inp: PacingInput) -> None:
    d = plan(inp)
    assert d.dial >= 0
    assert d.dial <= inp.dialable
    assert inp.lines_in_flight + d.dial <= max(inp.max_lines, inp.lines_in_flight)
    if d.dial > 0:
        assert inp.lines_in_flight + d.dial <= inp.max_lines


@settings(max_examples=400, deadline=None)
@given(inputs)
def test_preview_is_zero_and_progressive_never_outnumbers_ready_agents(inp: PacingInput) -> None:
    assert plan(replace(inp, mode="preview")).dial == 0
    d = plan(replace(inp, mode="progressive"))
    assert inp.lines_in_flight + d.dial <= max(inp.ready_agents, inp.lines_in_flight)


@settings(max_examples=300, deadline=None)
@given(inputs, st.integers(0, 10))
def test_progressive_is_monotone_in_ready_agents(inp: PacingInput, more: int) -> None:
    a = plan(replace(inp, mode="progressive")).dial
    b = plan(replace(inp, mode="progressive", ready_agents=inp.ready_agents + more)).dial
    assert b >= a


@settings(max_examples=500, deadline=None)
@given(inputs)
def test_predictive_never_plans_past_the_abandon_budget(inp: PacingInput) -> None:
    """Lines beyond the progressive number are only dialled when the plan's expected abandons
    fit the budget left, and lines in flight never exceed ready agents plus that budget
    until the window holds enough live answers for the expected figures to mean anything."""
    inp = replace(inp, mode="predictive")
    d = plan(inp)
    progressive = max(0, min(inp.ready_agents - inp.lines_in_flight, inp.dialable))
    if d.dial <= progressive:
        return
    budget = abandon_budget(inp)
    assert budget >= 0
    assert d.expected_abandons <= budget + 1e-9
    if inp.window_live < MIN_LIVE:
        assert inp.lines_in_flight + d.dial <= inp.ready_agents + budget

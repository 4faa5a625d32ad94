"""sambung/dialer/pacing.py: tables for each mode and reason, the gain, the guards, and Hypothesis
properties over random inputs."""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sambung.dialer.forecast import answer_curve, survival
from sambung.dialer.pacing import (
    GAIN_RANGE,
    GAIN_START,
    HOUR_LOOP,
    MARGIN_Z,
    PacingInput,
    busy_hour,
    filling_hour,
    forecast,
    gain,
    hard_budget,
    plan,
    target_ratio,
)

CURVE = answer_curve(
    [6.0 + (i % 12) for i in range(500)],  # live answers 6-17 s after the dial
    [3.0 + (i % 27) for i in range(1500)],  # the rest end 3-29 s after it
    prior_rate=0.25,
    prior_weight=20,
    ring_seconds=30,
)
TALK = survival([30.0 + 3 * i for i in range(200)], 120.0, 5)
WRAP = survival([15.0] * 200, 15.0, 5, limit=15.0)

BASE = PacingInput(
    mode="predictive",
    ready_agents=2,
    max_lines=40,
    dialable=1000,
    abandon_cap=0.03,
    window_live=0,
    window_abandoned=0,
    talk=TALK,
    wrap=WRAP,
    curve=CURVE,
)
# A floor well into its shift: 2000 live answers, 40 abandons (2%).
WARM = replace(
    BASE,
    window_live=2000,
    window_abandoned=40,
    talk_elapsed=tuple(float(x) for x in range(20, 400, 20)),  # 19 agents talking
    wrap_elapsed=(3.0, 9.0, 14.0),
)


def test_preview_never_dials() -> None:
    assert plan(replace(BASE, mode="preview")).dial == 0


def test_progressive_is_one_line_per_ready_agent() -> None:
    d = plan(replace(BASE, mode="progressive", ready_agents=5, line_ages=(1.0, 2.0)))
    assert (d.dial, d.reason) == (3, "progressive")
    assert plan(replace(BASE, mode="progressive", ready_agents=0)).reason == "no_agents"


def test_reminder_fills_the_lines_without_agents() -> None:
    d = plan(replace(BASE, mode="reminder", ready_agents=0, line_ages=(1.0,) * 4, max_lines=10))
    assert (d.dial, d.reason) == (6, "reminder")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"dialable": 0}, "no_records"),
        ({"line_ages": (1.0,) * 40}, "max_lines"),
        ({"line_ages": (1.0,) * 30, "waiting_answers": 10}, "max_lines"),  # answers hold lines
        ({"ready_agents": 0}, "no_agents"),
    ],
)
def test_nothing_to_dial(change: dict[str, object], reason: str) -> None:
    d = plan(replace(BASE, **change))  # type: ignore[arg-type]
    assert (d.dial, d.reason) == (0, reason)


def test_given_an_empty_window_then_predictive_is_progressive() -> None:
    # The start of a window: no live answers yet, so not one abandon may be risked.
    d = plan(replace(BASE, ready_agents=3, talk_elapsed=(100.0,) * 10))
    assert (d.dial, d.reason) == (3, "progressive")
    assert d.warmup


def test_given_a_warm_window_then_it_dials_for_the_agents_about_to_be_free() -> None:
    d = plan(WARM)
    assert not d.warmup
    assert d.dial > WARM.ready_agents, d
    assert d.reason in ("planned", "abandon_budget")
    assert 0 < d.share < 0.03


def test_an_agent_in_wrap_up_counts_more_than_one_just_into_a_call() -> None:
    """Wrap-up ends on its timer: an agent 13 s into 15 s of wrap-up is free within the
    connect limit; one 13 s into a call is not (it still has its wrap-up to do)."""
    base = replace(WARM, talk_elapsed=(), wrap_elapsed=(), ready_agents=0)
    in_wrap = forecast(replace(base, wrap_elapsed=(13.0,)))
    in_call = forecast(replace(base, talk_elapsed=(13.0,)))
    assert in_wrap.free_mean[0] == pytest.approx(1.0)  # by 1 s + the 2 s connect limit
    assert in_call.free_mean[0] == 0.0
    assert in_call.free_mean[-1] < 0.5


def test_old_lines_are_counted_for_the_answers_they_can_still_bring() -> None:
    fresh = forecast(replace(WARM, line_ages=(0.0,) * 10))
    old = forecast(replace(WARM, line_ages=(16.0,) * 10))
    dead = forecast(replace(WARM, line_ages=(25.0,) * 10))
    assert fresh.eventual > old.eventual > dead.eventual
    assert fresh.eventual == pytest.approx(10 * CURVE.rate(), rel=1e-9)
    assert dead.eventual < 0.05 * fresh.eventual  # only the prior still allows a late one
    # And the answers waiting for an agent are certain.
    assert forecast(replace(WARM, waiting_answers=3)).eventual == pytest.approx(3.0)


def test_a_richer_stratum_dials_fewer_lines() -> None:
    poor = plan(replace(WARM, new_rate=0.15))
    rich = plan(replace(WARM, new_rate=0.45))
    assert rich.dial < poor.dial


def test_a_spent_window_stops_the_extra_lines() -> None:
    inp = replace(WARM, ready_agents=1, window_live=2000, window_abandoned=60)
    assert hard_budget(inp) <= 0
    d = plan(inp)
    assert (d.dial, d.reason) == (1, "progressive")


@pytest.mark.parametrize(
    ("live", "abandoned", "cap", "budget"),
    [
        (0, 0, 0.03, 0),
        (33, 0, 0.03, 1),  # 1 / 34 = 2.94%
        (32, 0, 0.03, 0),  # 1 / 33 = 3.03%
        (1000, 20, 0.03, 10),  # (20 + 10) / 1010 = 2.97%
        (1000, 31, 0.03, -2),
        (50, 0, 1.0, 10**9),
    ],
)
def test_hard_budget(live: int, abandoned: int, cap: float, budget: int) -> None:
    inp = replace(BASE, window_live=live, window_abandoned=abandoned, abandon_cap=cap)
    assert hard_budget(inp) == budget


def test_the_last_hour_bounds_the_hard_budget() -> None:
    inp = replace(BASE, window_live=3000, window_abandoned=10, hour_live=100, hour_abandoned=2)
    assert hard_budget(inp) == 1  # (2 + 1) / 101 = 2.97%


def test_a_full_hour_holds_the_lines_back_by_their_chance_of_answering() -> None:
    """The last hour's guard: its room is small (4 abandons), so only as many lines as make
    more than 4 answers beyond the ready agents a one-in-100000 chance."""
    free = plan(WARM)
    full = plan(replace(WARM, hour_live=300, hour_abandoned=5))
    assert full.dial < free.dial
    fc = forecast(replace(WARM, line_ages=(0.0,) * (full.dial + 1)))
    # The hour's guard counts these lines' answers: the curve's, with the floor under it.
    assert fc.eventual + fc.late > 0
    # No room left: only lines the agents certain to be free can take, the ready ones and
    # the three whose wrap-up timer ends before a new line can answer.
    spent = replace(WARM, hour_live=300, hour_abandoned=9)
    assert plan(spent).dial == WARM.ready_agents + len(WARM.wrap_elapsed)
    # A wrap-up with no timer may go on: then only the ready agents count.
    untimed = survival([15.0] * 200, 15.0, 5)
    assert plan(replace(spent, wrap=untimed)).dial == WARM.ready_agents


def test_the_hour_guard_counts_a_wrap_up_only_from_the_moment_its_timer_ends() -> None:
    """With no room in the hour, a wrap-up ending in a second takes a new line's answer (none
    comes before 6 s); one ending in 10 s may not, since an answer can come at 6 s."""
    spent = replace(WARM, hour_live=300, hour_abandoned=9)
    ending = plan(replace(spent, wrap_elapsed=(14.0, 14.0, 14.0)))
    later = plan(replace(spent, wrap_elapsed=(5.0, 5.0, 5.0)))
    assert (ending.dial, later.dial) == (WARM.ready_agents + 3, WARM.ready_agents)


@pytest.mark.parametrize(
    ("live", "target"),
    [(0, 0.0), (30, 0.0), (100, 0.03 - math.sqrt(0.03 / 100)), (10000, 0.03 - 0.00173205)],
)
def test_target_ratio_margin_shrinks_as_answers_accumulate(live: int, target: float) -> None:
    assert target_ratio(0.03, live) == pytest.approx(target, abs=1e-8)


def test_gain_table() -> None:
    t = target_ratio(0.03, 2000)
    on_target = gain(0.03, 2000, round(t * 2000))
    assert on_target == pytest.approx(GAIN_START * t, rel=0.05)
    assert gain(0.03, 2000, 0) > on_target > gain(0.03, 2000, 60)
    assert gain(0.03, 2000, 0) <= GAIN_START * t * GAIN_RANGE + 1e-12
    assert gain(0.03, 2000, 2000) >= GAIN_START * t / GAIN_RANGE - 1e-12
    assert gain(0.03, 10, 0) == 0.0  # no target yet: nothing beyond progressive


def test_a_busy_hour_is_every_agent_taking_call_after_call() -> None:
    agents = WARM.ready_agents + len(WARM.talk_elapsed) + len(WARM.wrap_elapsed)
    handle = TALK.mean + WRAP.mean
    assert handle == pytest.approx((6000 + 3 * 19900 + 5 * 120) / 205 + 15)
    assert busy_hour(WARM, agents) == pytest.approx(agents * 3600 / handle)


def test_early_in_the_morning_the_hours_margin_is_taken_on_more_than_its_answers() -> None:
    """The first answers of the morning: 40 in the last hour, over 5 minutes, none
    abandoned. Judged on 40 answers alone the hour's margin is wider than the cap and the
    loop allows no line beyond progressive. At their pace a full hour would hold 480, more
    than this floor takes in a busy hour (about 255), which bounds it; the margin is taken
    on the geometric mean of the answers so far and that. The hour's guard still holds
    every line against the hour's room (1 abandon)."""
    hour_z = MARGIN_Z * HOUR_LOOP
    assert gain(0.03, 40, 0, hour_z) == 0.0
    agents = WARM.ready_agents + len(WARM.talk_elapsed) + len(WARM.wrap_elapsed)
    morning = replace(WARM, hour_live=40, hour_abandoned=0, hour_seconds=300.0)
    busy = busy_hour(morning, agents)
    assert 200 < busy < 300 < 480
    assert filling_hour(morning, agents) == pytest.approx(math.sqrt(40 * busy))
    d = plan(morning)
    hour = gain(0.03, 40, 0, hour_z, math.sqrt(40 * busy))
    assert hour > 0
    assert d.share == pytest.approx(min(gain(0.03, 2000, 40), hour))
    assert d.dial > plan(replace(morning, hour_seconds=None)).dial
    # At a slower pace the hour's own pace bounds it: 40 answers in 20 minutes, 120 an hour.
    slow = replace(morning, hour_seconds=1200.0)
    assert filling_hour(slow, agents) == pytest.approx(math.sqrt(40 * 120))
    # Once the answers fill the hour, or the engine does not say, the answers alone count.
    assert filling_hour(replace(morning, hour_live=300, hour_seconds=3500.0), agents) == 0.0
    assert filling_hour(replace(morning, hour_seconds=None), agents) == 0.0
    assert gain(0.03, 400, 4, hour_z, 300.0) == gain(0.03, 400, 4, hour_z)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 20000), st.integers(0, 600), st.integers(0, 50))
def test_property_gain_falls_as_abandons_rise(live: int, abandoned: int, more: int) -> None:
    a = gain(0.03, live, abandoned)
    b = gain(0.03, live, abandoned + more)
    assert 0.0 <= b <= a
    assert a <= 0.03 * GAIN_START * GAIN_RANGE + 1e-12


def test_the_added_abandons_grow_with_each_line() -> None:
    fc = forecast(replace(WARM, ready_agents=0))
    added = [fc.added(n) for n in range(1, 30)]
    assert all(b >= a - 1e-12 for a, b in pairwise(added))
    assert fc.risk(10) == pytest.approx(fc.risk(0) + sum(added[:10]), rel=1e-9)


ages = st.lists(st.floats(0, 60), max_size=60).map(tuple)
inputs = st.builds(
    PacingInput,
    mode=st.sampled_from(["preview", "progressive", "predictive", "reminder"]),
    ready_agents=st.integers(0, 60),
    max_lines=st.integers(1, 200),
    dialable=st.integers(0, 500),
    abandon_cap=st.floats(0, 0.2),
    window_live=st.integers(0, 10000),
    window_abandoned=st.integers(0, 500),
    talk_elapsed=st.lists(st.floats(0, 2000), max_size=40).map(tuple),
    wrap_elapsed=st.lists(st.floats(0, 30), max_size=10).map(tuple),
    talk=st.just(TALK),
    wrap=st.just(WRAP),
    line_ages=ages,
    curve=st.just(CURVE),
    new_rate=st.none() | st.floats(0.01, 1.0),
    waiting_answers=st.integers(0, 10),
    hour_live=st.none() | st.integers(0, 3000),
    hour_abandoned=st.integers(0, 100),
    connect_limit=st.floats(0.5, 5),
    warmup_live=st.integers(1, 500),
)


@settings(max_examples=400, deadline=None)
@given(inputs)
def test_never_more_than_the_lines_or_the_records(inp: PacingInput) -> None:
    d = plan(inp)
    assert d.dial >= 0
    assert d.dial <= inp.dialable
    if d.dial > 0:
        assert inp.lines_in_flight + inp.waiting_answers + d.dial <= inp.max_lines


@settings(max_examples=400, deadline=None)
@given(inputs)
def test_preview_is_zero_and_progressive_never_outnumbers_ready_agents(inp: PacingInput) -> None:
    assert plan(replace(inp, mode="preview")).dial == 0
    d = plan(replace(inp, mode="progressive"))
    busy = inp.lines_in_flight + inp.waiting_answers
    assert busy + d.dial <= max(inp.ready_agents, busy)


@settings(max_examples=300, deadline=None)
@given(inputs, st.integers(0, 10))
def test_progressive_is_monotone_in_ready_agents(inp: PacingInput, more: int) -> None:
    a = plan(replace(inp, mode="progressive")).dial
    b = plan(replace(inp, mode="progressive", ready_agents=inp.ready_agents + more)).dial
    assert b >= a


@settings(max_examples=500, deadline=None)
@given(inputs)
def test_predictive_never_passes_the_window_guard(inp: PacingInput) -> None:
    """Beyond the progressive number, every line in flight answering at once with nobody
    freeing up would keep the window at or under the cap."""
    inp = replace(inp, mode="predictive")
    d = plan(inp)
    busy = inp.lines_in_flight + inp.waiting_answers
    progressive = max(0, min(inp.ready_agents - busy, inp.dialable, inp.max_lines - busy))
    if d.dial <= progressive:
        return
    window = replace(inp, hour_live=None)
    assert busy + d.dial <= inp.ready_agents + hard_budget(window)


@settings(max_examples=200, deadline=None)
@given(inputs)
def test_predictive_is_never_below_progressive(inp: PacingInput) -> None:
    inp = replace(inp, mode="predictive")
    assert plan(inp).dial >= plan(replace(inp, mode="progressive")).dial

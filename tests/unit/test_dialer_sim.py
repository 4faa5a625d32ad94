"""The dialer simulator (bench/dialer_sim.py) is honest: seeded, conserving calls."""

from __future__ import annotations

import pytest

from bench.dialer_sim import simulate, simulate_days


def test_same_seed_same_figures() -> None:
    a = simulate(10, 0.25, 120, "predictive", 5, hours=0.5)
    b = simulate(10, 0.25, 120, "predictive", 5, hours=0.5)
    assert (a.occupancy, a.dials, a.answers, a.abandons) == (
        b.occupancy,
        b.dials,
        b.answers,
        b.abandons,
    )


def test_abandons_come_from_answers_and_occupancy_is_a_share() -> None:
    r = simulate(10, 0.4, 120, "predictive", 6, hours=0.5)
    assert r.abandons <= r.answers <= r.dials
    assert 0.0 < r.occupancy <= 1.0


def test_progressive_never_abandons() -> None:
    r = simulate(10, 0.4, 120, "progressive", 7, hours=0.5)
    assert r.abandons == 0
    assert r.worst_running == 0.0


def test_a_first_day_reads_as_a_single_shift() -> None:
    (first,) = simulate_days(10, 0.4, 120, "predictive", 5, hours=0.5, days=1)
    alone = simulate(10, 0.4, 120, "predictive", 5, hours=0.5)
    assert (first.occupancy, first.dials, first.abandons) == (
        alone.occupancy,
        alone.dials,
        alone.abandons,
    )


def test_the_next_morning_yesterdays_answers_give_the_window_room() -> None:
    """On a first morning the window is empty: the hard guard holds every round to the agents
    ready. The next morning yesterday's answers are in the window, so the forecast plans."""
    yesterday = simulate(25, 0.25, 120, "ours", 5, hours=1.0)
    cold = simulate(25, 0.25, 120, "ours", 5, hours=0.1)
    warm = simulate(25, 0.25, 120, "ours", 5, hours=0.1, yesterday=yesterday.carry)
    assert "planned" not in cold.reasons
    assert warm.reasons.get("planned", 0) > 0
    # The clock runs on: the next shift starts a day after the first.
    assert warm.carry is not None
    assert yesterday.carry is not None
    assert warm.carry.start == yesterday.carry.start + 24 * 3600
    assert warm.carry.live_times[: yesterday.answers] == yesterday.carry.live_times


def test_occupancy_hour_by_hour_adds_up_to_the_shifts() -> None:
    """Each call's busy time goes to the hours it spans, the last part-hour over its own
    length: weighted by their lengths, the hours give the shift's occupancy."""
    r = simulate(10, 0.4, 120, "predictive", 6, hours=1.5)
    assert len(r.by_hour) == 2
    assert all(0.0 < x <= 1.0 for x in r.by_hour)
    assert (r.by_hour[0] + 0.5 * r.by_hour[1]) / 1.5 == pytest.approx(r.occupancy)
    # A floor that starts with every agent free is less busy in its first hour.
    assert r.by_hour[0] < r.by_hour[1]

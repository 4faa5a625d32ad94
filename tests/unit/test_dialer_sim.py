"""The dialer simulator (bench/dialer_sim.py) is honest: seeded, conserving calls."""

from __future__ import annotations

from bench.dialer_sim import simulate


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

"""dialer/forecast.py and dialer/pacer_state.py: the survival of phases, the answer curve by
line age, the rates by stratum shrunk to the campaign's mean, and agents' phases. Tables and
Hypothesis properties."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sambung.acd.agents import AgentState
from sambung.dialer.forecast import (
    MIN_RATE,
    Tally,
    answer_curve,
    hour_band,
    rate_table,
    survival,
)
from sambung.dialer.pacer_state import AgentPhases, CampaignLearning, stratum

# ---- survival ---------------------------------------------------------------------------


def test_survival_follows_the_samples() -> None:
    s = survival([100.0] * 50 + [200.0] * 50, 150.0, 0)
    # Half the calls end at 100 s: an agent 95 s in is as likely as not to be free within 10 s.
    assert s.ends_within(95, 10) == pytest.approx(0.5)
    assert s.ends_within(150, 10) == 0.0
    assert s.ends_within(195, 10) == pytest.approx(1.0)
    assert s.typical == pytest.approx(100.0, abs=1)


def test_survival_without_samples_is_the_prior() -> None:
    s = survival([], 120.0, 5)
    # Exponential of mean 120: memoryless, whatever the time already spent.
    assert s.ends_within(0, 60) == pytest.approx(1 - 2.718281828**-0.5, abs=0.01)
    assert s.ends_within(300, 60) == pytest.approx(s.ends_within(0, 60), abs=0.01)


def test_wrap_up_ends_on_its_timer() -> None:
    s = survival([], 15.0, 5, limit=15.0)
    assert s.ends_within(13.0, 2.0) == 1.0
    assert s.ends_within(0.0, 2.0) < 0.5
    assert s.typical <= 15.0


@pytest.mark.parametrize(
    ("samples", "prior", "weight", "limit", "mean"),
    [
        ([100.0] * 50 + [200.0] * 50, 150.0, 0, None, 150.0),
        ([], 120.0, 5, None, 120.0),  # no calls yet: the prior's
        ([60.0] * 5, 120.0, 5, None, 90.0),  # five calls weigh as much as the prior
        ([20.0] * 10, 15.0, 5, 15.0, 15.0),  # a wrap-up never lasts past its timer
    ],
)
def test_survival_mean_weighs_the_samples_with_the_prior(
    samples: list[float], prior: float, weight: int, limit: float | None, mean: float
) -> None:
    assert survival(samples, prior, weight, limit=limit).mean == pytest.approx(mean)


def test_a_phase_longer_than_any_seen_is_about_to_end() -> None:
    s = survival([10.0] * 20, 10.0, 0)
    assert s.ends_within(50.0, 1.0) == 1.0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(0, 3000), max_size=200),
    st.floats(1, 1000),
    st.integers(0, 20),
    st.floats(0, 4000),
    st.floats(0, 100),
    st.floats(0, 100),
)
def test_property_survival_is_a_probability_growing_with_time(
    samples: list[float], mean: float, weight: int, elapsed: float, a: float, b: float
) -> None:
    s = survival(samples, mean, weight)
    lo, hi = sorted((a, b))
    p, q = s.ends_within(elapsed, lo), s.ends_within(elapsed, hi)
    assert 0.0 <= p <= q + 1e-9 <= 1.0 + 1e-9
    # Read at whole seconds for many agents at once: a count between 0 and 3, growing too.
    assert 0.0 <= s.expected_ends([elapsed] * 3, lo) <= s.expected_ends([elapsed] * 3, hi) + 1e-9
    assert s.expected_ends([elapsed] * 3, hi) <= 3.0


# ---- the answer curve ---------------------------------------------------------------------


CURVE = answer_curve(
    [float(x) for x in range(6, 18)] * 25,  # 300 live answers at 6-17 s
    [float(x) for x in range(3, 30)] * 33,  # 891 others ending at 3-29 s
    prior_rate=0.25,
    prior_weight=0,
    ring_seconds=30,
)


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (0.0, 300 / 1191),
        (10.0, (25 * 7) / (25 * 7 + 33 * 19)),  # live at 11..17 (7), others at 11..29 (19)
        (17.0, 0.0),  # no live answer comes later than 17 s
    ],
)
def test_live_answer_by_age(age: float, expected: float) -> None:
    assert CURVE.live_eventually(age) == pytest.approx(expected, rel=1e-9)


def test_the_chance_falls_as_a_line_rings_on() -> None:
    chances = [CURVE.live_eventually(a) for a in range(0, 20)]
    assert chances[0] > chances[10] > chances[16] > chances[18] - 1e-12
    assert CURVE.live_within(0, 5) == 0.0  # nobody answers in the first 6 s
    assert CURVE.live_within(0, 60) == pytest.approx(CURVE.rate())
    assert CURVE.horizon == pytest.approx(17.0)


def test_a_new_campaign_has_the_prior_rate() -> None:
    c = answer_curve([], [], prior_rate=0.3, prior_weight=20, ring_seconds=25)
    assert c.rate() == pytest.approx(0.3)
    assert 0 < c.live_eventually(20) < 0.3


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 120), max_size=300),
    st.lists(st.floats(0, 120), max_size=300),
    st.floats(0.01, 0.9),
    st.floats(0, 50),
    st.integers(5, 60),
    st.floats(0, 150),
    st.floats(0, 60),
)
def test_property_curve_is_consistent(
    lives: list[float],
    others: list[float],
    prior: float,
    weight: float,
    ring: int,
    age: float,
    within: float,
) -> None:
    c = answer_curve(lives, others, prior_rate=prior, prior_weight=weight, ring_seconds=ring)
    eventual = c.live_eventually(age)
    assert 0.0 <= c.live_within(age, within) <= eventual + 1e-9 <= 1.0 + 1e-9
    for i, row in enumerate(c.within[:50]):
        assert all(0.0 <= p <= c.eventual[i] + 1e-9 for p in row)
        assert list(row) == sorted(row)  # more time, more chance


# ---- rates by stratum ---------------------------------------------------------------------


def test_no_data_gives_the_prior_and_thin_data_stays_near_the_mean() -> None:
    empty = rate_table({}, prior_rate=0.25, prior_weight=20)
    assert empty.rate(4, "B1", "Asia/Jakarta") == pytest.approx(0.25)
    tallies = {
        (4, "B1", "Asia/Jakarta"): Tally(300, 1000),  # 30% at 08-10
        (9, "B1", "Asia/Jakarta"): Tally(100, 1000),  # 10% at 18-20
        (9, "B2", "Asia/Jayapura"): Tally(2, 4),  # four calls: 50%, means little
    }
    t = rate_table(tallies, prior_rate=0.25, prior_weight=20)
    assert t.mean == pytest.approx((402 + 5) / (2004 + 20))
    assert t.rate(4, "B1", "Asia/Jakarta") == pytest.approx(0.30, abs=0.01)
    assert t.rate(9, "B1", "Asia/Jakarta") == pytest.approx(0.10, abs=0.01)
    thin = t.rate(9, "B2", "Asia/Jayapura")
    assert 0.10 < thin < 0.30  # pulled from 50% to the 18-20 band and the mean
    # A stratum never seen: the band's effect on the mean.
    assert t.rate(4, "B3", "Asia/Makassar") == pytest.approx(t.bands[4], rel=1e-9)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.tuples(st.integers(0, 11), st.sampled_from(["B1", "B2"]), st.sampled_from(["z1"])),
        st.tuples(st.integers(0, 500), st.integers(0, 500)).map(lambda t: Tally(min(t), max(t))),
        max_size=10,
    ),
    st.integers(0, 11),
    st.sampled_from(["B1", "B2", "B3"]),
)
def test_property_rates_are_probabilities_between_the_cell_and_its_guess(
    tallies: dict[tuple[int, str, str], Tally], band: int, bucket: str
) -> None:
    t = rate_table(tallies, prior_rate=0.25, prior_weight=20)
    r = t.rate(band, bucket, "z1")
    assert MIN_RATE <= r <= 1.0
    cell = tallies.get((band, bucket, "z1"))
    if cell is not None and cell.attempts > 0:
        own = max(MIN_RATE, cell.live / cell.attempts)
        lo, hi = sorted((own, t.guess(band, bucket, "z1")))
        assert lo - 1e-9 <= r <= hi + 1e-9


@pytest.mark.parametrize(("hour", "band"), [(8, 4), (9, 4), (10, 5), (19, 9), (0, 0)])
def test_hour_bands(hour: int, band: int) -> None:
    assert hour_band(hour) == band


def test_stratum_uses_the_debtors_local_hour() -> None:
    at = datetime(2026, 12, 7, 2, 30, tzinfo=UTC)  # 09:30 in Jakarta, 11:30 in Jayapura
    assert stratum("B1", "Asia/Jakarta", at) == (4, "B1", "Asia/Jakarta")
    assert stratum("B1", "Asia/Jayapura", at) == (5, "B1", "Asia/Jayapura")
    assert stratum("B1", "Not/AZone", at)[0] == 1  # unknown zone: the time as given


# ---- agents' phases and what the campaign learns ------------------------------------------


def test_phases_of_a_call() -> None:
    p = AgentPhases()
    assert p.changed("a", AgentState.RESERVED, 10.0) == (None, None)
    assert p.talk_elapsed(["a"], 12.0) == (0.0,)  # not answered yet: no talk time
    p.changed("a", AgentState.ON_CALL, 14.0)
    p.changed("a", AgentState.ON_HOLD, 50.0)
    p.changed("a", AgentState.ON_CALL, 60.0)  # hold keeps the call's start
    assert p.talk_elapsed(["a"], 100.0) == (86.0,)
    assert p.changed("a", AgentState.WRAP_UP, 114.0) == (100.0, None)
    assert p.talk_elapsed(["a"], 120.0) == ()
    assert p.wrap_elapsed(["a", "b"], 120.0) == (6.0,)
    assert p.phase("a") == "wrap_up"
    assert p.changed("a", AgentState.READY, 124.0) == (None, 10.0)
    assert p.phase("a") is None
    # A call ended straight to ready (no wrap-up) still gives its talk time.
    p.changed("a", AgentState.ON_CALL, 200.0)
    assert p.changed("a", AgentState.READY, 230.0) == (30.0, None)


def test_learning_rebuilds_its_models_at_most_once_a_minute() -> None:
    learn = CampaignLearning(wrap_timer=15.0, ring_seconds=30.0)
    first = learn.models(0.0)
    learn.attempt_resolved(12.0, True, (4, "B1", "Asia/Jakarta"))
    assert learn.models(30.0) is first
    later = learn.models(61.0)
    assert later is not first
    assert later.rates.cells[(4, "B1", "Asia/Jakarta")] == Tally(1, 1)
    assert learn.models(200.0) is later  # nothing new: the same models

"""The reconnect backoff: capped, exponential, fully jittered."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from sambung.asterisk.ari.stream import backoff_delay


@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    initial=st.floats(min_value=0.001, max_value=10.0),
    cap=st.floats(min_value=0.001, max_value=600.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_given_any_attempt_then_delay_is_within_zero_and_the_capped_exponential(
    attempt: int, initial: float, cap: float, seed: int
) -> None:
    delay = backoff_delay(attempt, initial, cap, random.Random(seed))
    assert 0.0 <= delay <= min(cap, initial * 2.0 ** min(attempt, 60))
    assert delay <= cap


@given(attempt=st.integers(min_value=0, max_value=50), seed=st.integers(0, 2**32))
def test_given_same_seed_then_delay_is_reproducible(attempt: int, seed: int) -> None:
    a = backoff_delay(attempt, 0.5, 30.0, random.Random(seed))
    b = backoff_delay(attempt, 0.5, 30.0, random.Random(seed))
    assert a == b


def test_given_many_draws_then_delays_are_jittered_and_spread_over_the_range() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(10, 0.5, 30.0, rng) for _ in range(500)]
    assert len(set(delays)) == len(delays)  # jitter: no two engines retry in lockstep
    assert max(delays) <= 30.0
    assert min(delays) < 5.0  # full jitter reaches down towards 0
    assert max(delays) > 25.0


def test_given_early_attempts_then_ceiling_doubles() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    ceilings = [backoff_delay(n, 0.5, 30.0, Top()) for n in range(8)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]

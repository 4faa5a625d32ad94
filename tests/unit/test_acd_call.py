"""Small pure pieces of the queue runner."""

from __future__ import annotations

import pytest

from sambung.acd.call import offer_outcome


@pytest.mark.parametrize(
    ("cause", "timed_out", "outcome"),
    [
        (19, False, "rona"),
        (18, False, "rona"),
        (16, True, "rona"),
        (17, False, "busy"),
        (21, False, "busy"),
        (20, False, "unavailable"),
        (3, False, "unavailable"),
        (34, False, "busy"),
    ],
)
def test_offer_outcome_from_the_legs_cause(cause: int, timed_out: bool, outcome: str) -> None:
    assert offer_outcome(cause, timed_out) == outcome

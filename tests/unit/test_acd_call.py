"""Small pure pieces of the queue runner."""

from __future__ import annotations

import pytest

from acd.call import callable_back, offer_outcome


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("0812345678", True),
        ("+62812345678", True),
        ("628123456789012", True),
        ("anonymous", False),
        ("sipp", False),
        ("", False),
        ("12345", False),  # too short to be a subscriber number
        ("1234567890123456", False),  # longer than E.164 allows
        ("+62 812", False),
    ],
)
def test_only_dialable_caller_ids_are_called_back(number: str, ok: bool) -> None:
    assert callable_back(number) is ok


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

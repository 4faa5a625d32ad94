"""Inputs found by fuzzing the API that must be refused with a reason, never with a 500."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sambung.acd.dispositions import DispositionInvalid, amount_of, when_of
from sambung.auth.model import USERNAME
from sambung.dialer.phones import InvalidPhone, normalise_phone


# Full-width and Arabic-Indic digits: str.isdigit() says yes, a SIP trunk would not.
@pytest.mark.parametrize(
    "raw",
    [
        "0812345678\uff19",
        "+62812\uff13\uff14\uff15\uff16\uff17\uff18",
        "0812\u0663\u0664\u0665\u0666\u0667\u0668",
    ],
)
def test_non_ascii_digits_are_not_a_phone_number(raw: str) -> None:
    with pytest.raises(InvalidPhone) as err:
        normalise_phone(raw)
    assert err.value.reason == "not_a_number"


@pytest.mark.parametrize("raw", ["0.001", "0.004", "5e-324"])
def test_an_amount_below_one_sen_is_refused(raw: str) -> None:
    with pytest.raises(DispositionInvalid, match="less than one sen"):
        amount_of(raw)


def test_an_amount_is_rounded_to_the_sen() -> None:
    assert str(amount_of("1250000.006")) == "1250000.01"
    assert str(amount_of("750000")) == "750000.00"


def test_a_callback_time_that_falls_off_the_calendar_is_refused() -> None:
    with pytest.raises(DispositionInvalid, match="out of range"):
        when_of("0001-01-01T00:30:00+05:00")
    assert when_of("2030-01-02T10:00:00+07:00") == datetime(2030, 1, 2, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "ok"),
    [("siti", True), ("siti.r@bank", True), ("siti\n", False), ("", False), ("a" * 65, False)],
)
def test_usernames(name: str, ok: bool) -> None:
    assert bool(USERNAME.match(name)) is ok

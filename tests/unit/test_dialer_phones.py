"""Indonesian numbers judged by libphonenumber: valid or not, of which type, in which zone."""

from __future__ import annotations

from typing import get_args

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from sambung.dialer.phones import (
    PHONE_TYPES,
    WIB,
    WIT,
    WITA,
    InvalidPhone,
    PhoneInfo,
    PhoneType,
    classify,
    is_mobile,
    normalise_phone,
    zone_for_phone,
)


@pytest.mark.parametrize(
    ("raw", "info"),
    [
        # Mobiles, in every form people type them; a mobile says nothing about its zone.
        ("0812-3456-7890", PhoneInfo("+6281234567890", "mobile", None)),
        ("6281234567890", PhoneInfo("+6281234567890", "mobile", None)),
        ("+62 812 3456 7890", PhoneInfo("+6281234567890", "mobile", None)),
        ("81234567890", PhoneInfo("+6281234567890", "mobile", None)),
        ("0857 3028 4657", PhoneInfo("+6285730284657", "mobile", None)),
        # Fixed lines: the zone of the area, from libphonenumber's time-zone map.
        ("(021) 8350-123", PhoneInfo("+62218350123", "fixed_line", WIB)),  # Jakarta
        ("022 6012 345", PhoneInfo("+62226012345", "fixed_line", WIB)),  # Bandung
        ("0361.555.010", PhoneInfo("+62361555010", "fixed_line", WITA)),  # Denpasar
        ("0411 555 0123", PhoneInfo("+624115550123", "fixed_line", WITA)),  # Makassar
        ("+62 967 555 010", PhoneInfo("+62967555010", "fixed_line", WIT)),  # Jayapura
        # Areas the map gives two zones for: the area-code table decides.
        ("0403 555 0123", PhoneInfo("+624035550123", "fixed_line", WITA)),  # Raha, Sultra
        ("0952 555 0123", PhoneInfo("+629525550123", "fixed_line", WIT)),  # Teminabuan
        ("0539 555 0123", PhoneInfo("+625395550123", "fixed_line", WIB)),  # Kuala Kuayan
        # Non-geographic numbers (libphonenumber's own examples for ID): no zone.
        ("0800 1234 567", PhoneInfo("+628001234567", "toll_free", None)),
        ("+628001234567", PhoneInfo("+628001234567", "toll_free", None)),
        ("0809 1234 567", PhoneInfo("+628091234567", "premium_rate", None)),
        ("0804 1234 567", PhoneInfo("+628041234567", "shared_cost", None)),
        ("0807 1123 456", PhoneInfo("+628071123456", "uan", None)),
    ],
)
def test_numbers_are_classified(raw: str, info: PhoneInfo) -> None:
    assert classify(raw) == info
    assert normalise_phone(raw) == info.e164
    assert is_mobile(info.e164) is (info.kind == "mobile")
    assert zone_for_phone(info.e164) == info.zone


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("0812-34A6", "not_a_number"),
        ("+62 812 3456 789x", "not_a_number"),
        ("0812345678\uff19", "not_a_number"),  # a full-width digit
        ("+1 415 555 0100", "not_indonesian"),
        ("12345", "bad_prefix"),
        ("00812345678", "bad_prefix"),
        ("+62 0812 3456 7890", "bad_prefix"),
        ("+62", "too_short"),
        ("0812345", "too_short"),
        ("0812 3456 7890 1234 5678", "too_long"),
        # The hand-made rule took these (8 to 12 digits after the prefix); no such ranges exist.
        ("+62 123 4567 890", "invalid"),
        ("+62 999 12345678", "invalid"),
        ("0812345678901234", "invalid"),
    ],
)
def test_junk_is_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as err:
        classify(raw)
    assert err.value.reason == reason
    if reason == "invalid":
        assert "not a valid Indonesian number" in err.value.detail
        assert "libphonenumber" in err.value.detail


def test_a_toll_free_number_is_not_a_mobile() -> None:
    assert not is_mobile("+628001234567")
    assert is_mobile("+6281234567890")
    assert not is_mobile("+62 123 4567 890")  # not a number at all


def test_what_is_not_a_valid_number_has_no_zone() -> None:
    assert zone_for_phone("+6299912345678") is None


@pytest.mark.parametrize(
    "kind",
    [
        PhoneNumberType.FIXED_LINE,
        PhoneNumberType.MOBILE,
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.VOIP,
        PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.PAGER,
        PhoneNumberType.UAN,
        PhoneNumberType.VOICEMAIL,
    ],
)
def test_every_type_the_metadata_has_an_example_of_is_named(kind: int) -> None:
    example = phonenumbers.example_number_for_type("ID", kind)
    if example is None:
        pytest.skip("libphonenumber has no such Indonesian numbers")
    e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
    name = {v: k.lower() for k, v in vars(PhoneNumberType).items() if k.isupper()}[kind]
    assert classify(e164).kind == name


def test_the_type_names_are_the_literal_type() -> None:
    assert get_args(PhoneType) == PHONE_TYPES
    assert len(set(PHONE_TYPES)) == len(PHONE_TYPES)

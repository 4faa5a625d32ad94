"""Debtor lists and Indonesian numbers: every row accounted for, every fault named."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from sambung.dialer.lists import ImportSpec, ListFileError, parse_amount, parse_dnc, parse_list
from sambung.dialer.phones import (
    InvalidPhone,
    normalise_phone,
    zone_for_phone,
    zone_for_province,
    zone_from_column,
)

ROOT = Path(__file__).resolve().parents[2]
BUCKETS = (
    ("current", 0, 0),
    ("1-30", 1, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("90+", 91, None),
)
SPEC = ImportSpec(as_of=date(2026, 11, 23), buckets=BUCKETS)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0812-3456-7890", "+6281234567890"),
        ("+62 812 3456 7890", "+6281234567890"),
        ("6281234567890", "+6281234567890"),
        ("81234567890", "+6281234567890"),
        ("(021) 5550-1234", "+622155501234"),
        ("0361.555.010", "+62361555010"),
    ],
)
def test_numbers_become_e164(raw: str, e164: str) -> None:
    assert normalise_phone(raw) == e164


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("0812-34A6", "not_a_number"),
        ("+1 415 555 0100", "not_indonesian"),
        ("12345", "bad_prefix"),
        ("0812345", "too_short"),
        # Was too_long under a hand-made limit of 12 digits; libphonenumber allows Indonesian
        # numbers of up to 17 (0800 toll-free), so this one is simply not a valid number.
        ("0812345678901234", "invalid"),
        ("0812 3456 7890 1234 5678", "too_long"),
        ("00812345678", "bad_prefix"),
    ],
)
def test_bad_numbers_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as err:
        normalise_phone(raw)
    assert err.value.reason == reason


def test_zones() -> None:
    assert zone_for_phone("+6281234567890") is None  # a mobile says nothing
    assert zone_for_phone("+622155501234") == "Asia/Jakarta"
    assert zone_for_phone("+62361555010") == "Asia/Makassar"
    assert zone_for_phone("+62967555010") == "Asia/Jayapura"
    assert zone_for_province("DKI Jakarta") == "Asia/Jakarta"
    assert zone_for_province("ntb") == "Asia/Makassar"
    assert zone_for_province("Papua Barat Daya") == "Asia/Jayapura"
    assert zone_for_province("Atlantis") is None
    assert zone_from_column("WITA") == "Asia/Makassar"


def test_amounts() -> None:
    assert parse_amount("1250000") == Decimal("1250000.00")
    assert parse_amount("Rp 1.250.000") == Decimal("1250000.00")
    assert parse_amount("1.250.000,50") == Decimal("1250000.50")
    assert parse_amount("1.250") == Decimal("1250.00")
    assert parse_amount("IDR 99,5") == Decimal("99.50")
    with pytest.raises(ValueError, match="not an amount"):
        parse_amount("satu juta")


def test_the_example_list_accounts_for_every_row() -> None:
    dnc = parse_dnc((ROOT / "examples" / "dialer" / "dnc.txt").read_text().splitlines())
    spec = ImportSpec(as_of=date(2026, 11, 23), buckets=BUCKETS, dnc_numbers=dnc)
    text = (ROOT / "examples" / "dialer" / "debtors.csv").read_text()
    r = parse_list(text.splitlines(), spec)
    merged_away = sum(len(lines) - 1 for _, lines in r.merged)
    whole_rows_suppressed = sum(1 for s in r.suppressed if s[2] is None)
    assert r.total_rows == len(r.records) + merged_away + len(r.rejected_lines) + (
        whole_rows_suppressed
    )
    reasons = {(e.line, e.column, e.reason_id) for e in r.errors}
    assert (34, "phone1", "bad_prefix") in reasons
    assert (35, "amount_due", "bad_amount") in reasons
    assert (36, "due_date", "missing") in reasons
    assert [m[0] for m in r.merged] == ["KOL-2026001"]
    by_id = {x.account_id: x for x in r.records}
    assert len(by_id["KOL-2026001"].phones) == 2  # the duplicate's number joined the record
    assert by_id["KOL-2026105"].zone == "Asia/Makassar"  # a Denpasar landline
    assert by_id["KOL-2026105"].zone_source == "phone"


def test_a_bad_second_phone_is_reported_and_the_row_still_imports() -> None:
    rows = [
        "account_id,name,phone1,phone2,amount_due,days_past_due,extra_note",
        "A1,Siti,081234567890,abc,100000,45,janji bayar",
    ]
    r = parse_list(rows, SPEC)
    assert len(r.records) == 1
    assert r.records[0].bucket == "31-60"
    assert r.records[0].extra == (("extra_note", "janji bayar"),)
    assert [(e.line, e.column) for e in r.errors] == [(2, "phone2")]
    assert r.rejected_lines == ()


def test_a_missing_required_column_refuses_the_file() -> None:
    with pytest.raises(ListFileError, match="phone1"):
        parse_list(["account_id,name,amount_due,days_past_due", "A,B,1,2"], SPEC)
    with pytest.raises(ListFileError, match="due_date or days_past_due"):
        parse_list(["account_id,name,phone1,amount_due", "A,B,0812345678,1"], SPEC)
    with pytest.raises(ListFileError, match="empty"):
        parse_list([], SPEC)


def test_dnc_suppresses_numbers_and_accounts() -> None:
    spec = ImportSpec(
        as_of=date(2026, 11, 23),
        buckets=BUCKETS,
        dnc_numbers=frozenset({"+6281200000001"}),
        dnc_accounts=frozenset({"A3"}),
    )
    rows = [
        "account_id,name,phone1,phone2,amount_due,days_past_due",
        "A1,One,081200000001,081200000002,1,1",
        "A2,Two,081200000001,,1,1",
        "A3,Three,081200000003,,1,1",
    ]
    r = parse_list(rows, spec)
    assert [x.account_id for x in r.records] == ["A1"]
    assert r.records[0].phones == ("+6281200000002",)
    assert {(s[1], s[3]) for s in r.suppressed} == {
        ("A1", "dnc_number"),
        ("A2", "dnc_number"),
        ("A2", "no_phone_left"),
        ("A3", "dnc_account"),
    }


def test_a_bad_dnc_line_names_its_line() -> None:
    with pytest.raises(ListFileError, match="line 3"):
        parse_dnc(["# comment", "081200000001", "nonsense"])


def test_a_hundred_thousand_rows_with_progress() -> None:
    rows = ["account_id,name,phone1,amount_due,days_past_due,province"]
    rows += [f"A{i},Nama {i},0812{i:08d},{i * 100},{i % 120},Jawa Barat" for i in range(100_000)]
    seen: list[int] = []
    r = parse_list(rows, SPEC, progress=seen.append)
    assert len(r.records) == 100_000
    assert seen[-1] == 100_000
    assert len(seen) == 201  # every 500 rows, and once at the end


def test_a_number_type_the_campaign_does_not_dial_is_reported_and_the_row_imports() -> None:
    rows = [
        "account_id,name,phone1,phone2,amount_due,days_past_due",
        "A1,Siti,0800 1234 567,081234567890,100000,45",
    ]
    r = parse_list(rows, SPEC)
    assert [x.phones for x in r.records] == [("+6281234567890",)]
    assert [(e.line, e.column, e.reason_id) for e in r.errors] == [
        (2, "phone1", "phone_type_not_allowed")
    ]
    assert "toll_free" in r.errors[0].message
    assert "mobile, fixed_line" in r.errors[0].message
    assert r.rejected_lines == ()


def test_a_row_with_only_a_number_type_the_campaign_does_not_dial_is_rejected() -> None:
    rows = [
        "account_id,name,phone1,phone2,amount_due,days_past_due",
        "A1,Siti,0800 1234 567,+62 809 1234 567,100000,45",
    ]
    r = parse_list(rows, SPEC)
    assert r.records == ()
    assert r.rejected_lines == (2,)
    assert [(e.column, e.reason_id) for e in r.errors] == [
        ("phone1", "phone_type_not_allowed"),
        ("phone2", "phone_type_not_allowed"),
    ]


def test_a_campaign_that_dials_toll_free_numbers_imports_them() -> None:
    from sambung.dialer.importer import spec_for
    from sambung.dialer.settings import campaign_config
    from sambung.engine.config import CampaignSettings

    c = CampaignSettings(
        name="c",
        caller_id="021",
        agents=["siti"],
        phone_types=["mobile", "fixed_line", "toll_free"],
    )
    spec = spec_for(campaign_config(c), date(2026, 11, 23), frozenset(), frozenset())
    rows = [
        "account_id,name,phone1,amount_due,days_past_due",
        "A1,Siti,0800 1234 567,100000,45",
    ]
    r = parse_list(rows, spec)
    assert [x.phones for x in r.records] == [("+628001234567",)]
    assert r.errors == ()
    assert r.records[0].zone_source == "default"  # a toll-free number says nothing


def test_a_do_not_call_file_takes_any_valid_number() -> None:
    assert parse_dnc(["0800 1234 567", "0812 3456 7890"]) == {"+628001234567", "+6281234567890"}

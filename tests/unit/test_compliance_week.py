"""bench/compliance_week.py: the oracle catches what the old rules did, and the engine's rules
give it nothing to catch (a small, fast run of the same code)."""

from __future__ import annotations

import pytest

from bench import compliance_week as cw
from sambung.dialer.phones import WIB, WIT


def figures(out: str) -> dict[str, tuple[str, str]]:
    """The table's rows: label (a 44-character column), then before and after."""
    rows = {}
    for line in out.splitlines():
        cells = line[44:].split()
        if len(cells) >= 2 and line[:44].strip():
            rows[line[:44].strip()] = (cells[0], cells[1])
    return rows


def test_given_a_small_fortnight_then_after_has_no_violation_and_before_has_some(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cw.main(["--debtors", "150", "--callbacks", "80", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    rows = figures(out)
    before_holiday, after_holiday = rows["calls on national holidays"]
    assert int(before_holiday) > 0  # the 2026 file ran out on 31 December
    assert after_holiday == "0"
    before_cb, after_cb = rows["callbacks to refused numbers"]
    assert int(before_cb) > 0  # premium, foreign and DNC caller ids were called back
    assert after_cb == "0"
    for zone in ("WIB", "WITA", "WIT"):
        assert rows[f"calls outside the window, {zone}"][1] == "0"
    assert int(rows["calls attempted"][1]) > 500
    assert "GOAL MET" in out


def test_the_oracle_sees_a_sunday_call_and_a_new_year_call() -> None:
    from datetime import UTC, datetime, timedelta

    sunday_noon = datetime(2027, 1, 3, 5, 0, tzinfo=UTC)  # 12:00 WIB
    new_year = datetime(2027, 1, 1, 3, 0, tzinfo=UTC)  # 10:00 WIB
    late = datetime(2026, 12, 29, 12, 30, tzinfo=UTC)  # 19:30 WIB = 21:30 WIT
    dials = [
        cw.Dial(sunday_noon, "debtor", "A", (WIB,)),
        cw.Dial(new_year, "debtor", "B", (WIB,)),
        cw.Dial(late, "debtor", "C", (WIT,)),
    ] + [cw.Dial(late - timedelta(hours=h), "debtor", "D", (WIB,)) for h in range(4)]
    j = cw.judge(dials, frozenset())
    assert j.outside == {"WIB": 1, "WIT": 1}
    assert j.on_holiday == 1
    assert j.over_day == 1  # four calls to D on one local day

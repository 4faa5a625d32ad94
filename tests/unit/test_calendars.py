"""sambung/engine/calendars.py: holidays from the holidays package, override files, coverage (fail
closed), the 60-day warning; and how the dialer's calling rules use them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from sambung.dialer.compliance import (
    AttemptCaps,
    check_dial,
    closed_reason,
    default_ojk_window,
    next_attempt_at,
    parse_retry_rules,
)
from sambung.engine.calendars import (
    CalendarInvalid,
    build_calendar,
    calendar_warnings,
    explicit_days,
    read_override_file,
)
from sambung.engine.cli import main as cli_main
from sambung.engine.config import load_settings
from sambung.engine.errors import ConfigError
from sambung.ivr.errors import FlowError
from sambung.ivr.loader import load_flow

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "holidays"
MID_2026 = date(2026, 6, 1)
WIB, WITA, WIT = "Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"


def at(zone: str, y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def decree(name: str) -> dict[date, str]:
    data = yaml.safe_load((FIXTURES / name).read_text(encoding="utf-8"))
    return {date.fromisoformat(str(k)): v for k, v in data["holidays"].items()}


def overrides(tmp_path: Path, text: str, name: str = "o.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


NATIONAL = build_calendar("id-national", today=MID_2026)


# ---- the package against the decree ---------------------------------------------------------


def test_given_the_package_then_its_2026_national_holidays_are_the_decree_date_for_date() -> None:
    ours = {d for d in NATIONAL.days if d.year == 2026}
    assert ours == set(decree("id-2026.yaml"))


def test_given_the_government_category_then_2026_adds_exactly_the_cuti_bersama() -> None:
    both = build_calendar("with-leave", categories=("public", "government"), today=MID_2026)
    extra = {d for d in both.days if d.year == 2026} - {d for d in NATIONAL.days if d.year == 2026}
    assert extra == set(decree("id-2026-cuti-bersama.yaml"))


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (date(2027, 1, 1), "Tahun Baru"),
        (date(2027, 2, 6), "Imlek (a Saturday: a calling day otherwise)"),
        (date(2027, 3, 10), "Idul Fitri"),
        (date(2027, 8, 17), "Proklamasi"),
        (date(2027, 12, 25), "Natal"),
    ],
)
def test_given_2027_then_it_works_out_of_the_box(day: date, why: str) -> None:
    cal = build_calendar("id-national", today=date(2026, 12, 6))
    assert cal.covers(day)
    assert day in cal, why
    w = default_ojk_window(cal)
    for zone in (WIB, WITA, WIT):
        assert closed_reason(w, zone, at(zone, day.year, day.month, day.day, 10)) == "holiday"


def test_given_the_dates_the_issue_named_then_the_dialer_refuses_them() -> None:
    """2026-01-01 was refused, 2027-01-01, 2027-02-06 and 2027-03-10 were open at 10:00 WIB."""
    cal = build_calendar("id-national", today=date(2026, 12, 6))
    w = default_ojk_window(cal)
    caps = AttemptCaps()
    for d in (date(2026, 1, 1), date(2027, 1, 1), date(2027, 2, 6), date(2027, 3, 10)):
        verdict = check_dial(w, caps, WIB, at(WIB, d.year, d.month, d.day, 10), [])
        assert (verdict.allowed, verdict.reason) == (False, "holiday"), d


# ---- coverage: fail closed -------------------------------------------------------------------


def test_given_a_year_without_its_decree_then_it_is_not_covered_and_not_callable() -> None:
    cal = build_calendar("id-national", today=date(2026, 12, 6))
    assert cal.covered_until(date(2026, 12, 6)) == date(2027, 12, 31)
    assert not cal.covers(date(2028, 1, 3))
    w = default_ojk_window(cal)
    # Monday 3 January 2028, 10:00 in each zone: an ordinary working day, but nobody knows.
    for zone in (WIB, WITA, WIT):
        verdict = check_dial(w, AttemptCaps(), zone, at(zone, 2028, 1, 3, 10), [])
        assert (verdict.allowed, verdict.reason) == (False, "calendar_missing")


def test_given_a_retry_into_an_unknown_year_then_it_is_scheduled_there_not_given_up() -> None:
    """The record must not be stopped: it waits, due, for the calendar to be extended."""
    w = default_ojk_window(NATIONAL)
    rules = parse_retry_rules({"no_answer": "60m"})
    last = at(WIB, 2027, 12, 31, 19, 30)  # a Friday evening, past the last dial
    nxt = next_attempt_at("no_answer", rules, w, AttemptCaps(), WIB, last, [last])
    assert nxt is not None
    assert nxt.astimezone(ZoneInfo(WIB)).date() == date(2028, 1, 1)  # Saturday, unknown
    assert check_dial(w, AttemptCaps(), WIB, nxt, [last]).reason == "calendar_missing"


def test_given_a_calendar_limited_to_listed_years_then_others_are_unknown() -> None:
    cal = build_calendar("signed-off", years=[2026], today=MID_2026)
    assert cal.covers(date(2026, 12, 31))
    assert not cal.covers(date(2027, 1, 4))
    assert cal.covered_until(date(2026, 12, 6)) == date(2026, 12, 31)
    w = default_ojk_window(cal)
    assert closed_reason(w, WIB, at(WIB, 2027, 1, 4, 10)) == "calendar_missing"


def test_given_an_override_that_covers_a_year_then_that_year_is_callable(tmp_path: Path) -> None:
    f = overrides(
        tmp_path,
        "covers: [2028]\nchanges:\n"
        '  - add: "2028-01-01"\n    name: Tahun Baru 2028\n    source: SKB 3 Menteri 2028\n',
    )
    cal = build_calendar("id-national", overrides=[f], today=date(2026, 12, 6))
    assert cal.covered_until(date(2026, 12, 6)) == date(2028, 12, 31)
    w = default_ojk_window(cal)
    assert closed_reason(w, WIB, at(WIB, 2028, 1, 3, 10)) is None
    assert closed_reason(w, WIB, at(WIB, 2028, 1, 1, 10)) == "holiday"


@given(st.dates(min_value=date(2025, 1, 1), max_value=date(2031, 12, 31)), st.integers(0, 23))
def test_property_an_uncovered_day_is_never_callable(day: date, hour: int) -> None:
    w = default_ojk_window(NATIONAL)
    for zone in (WIB, WITA, WIT):
        instant = at(zone, day.year, day.month, day.day, hour)
        verdict = check_dial(w, AttemptCaps(), zone, instant, [])
        if not NATIONAL.covers(day):
            assert not verdict.allowed
            assert verdict.reason == "calendar_missing"
        if verdict.allowed:
            assert NATIONAL.covers(day)
            assert day not in NATIONAL


# ---- override files ------------------------------------------------------------------------


def test_given_add_move_and_drop_then_each_applies(tmp_path: Path) -> None:
    f = overrides(
        tmp_path,
        """
name: test changes
changes:
  - add: "2027-07-01"
    name: Hari Bhayangkara (example)
    source: Keppres example
  - move: "2027-03-10"
    to: "2027-03-11"
    source: sidang isbat example
  - drop: "2027-12-26"
    source: SKB perubahan example
""",
    )
    cal = build_calendar("id-national", overrides=[f], today=MID_2026)
    assert cal.days[date(2027, 7, 1)] == "Hari Bhayangkara (example)"
    assert date(2027, 3, 10) not in cal  # moved away ...
    assert date(2027, 3, 11) in cal  # ... (this one is also the second day of Idul Fitri)
    assert date(2027, 12, 26) not in cal
    assert date(2027, 3, 10) not in cal.estimated


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ('changes:\n  - add: "2027-02-30"\n    name: x\n    source: y\n', "changes[0].add", "date"),
        ('changes:\n  - add: "2027-02-03"\n    source: y\n', "changes[0].name", "name"),
        ('changes:\n  - add: "2027-02-03"\n    name: x\n', "changes[0].source", "comes from"),
        ('changes:\n  - move: "2027-03-10"\n    source: y\n', "changes[0].to", "date"),
        ('changes:\n  - drop: "2027-03-10"\n    add: "2027-03-11"\n', "changes[0]", "exactly one"),
        ('changes:\n  - remove: "2027-03-10"\n', "changes[0]", "exactly one"),
        (
            'changes:\n  - drop: "2027-03-10"\n    source: y\n    when: z\n',
            "changes[0].when",
            "key",
        ),
        ("covers: 2028\n", "covers", "list of years"),
        ("covers: [28]\n", "covers", "list of years"),
        ("changes: nope\n", "changes", "list"),
        ("holidays: {}\n", "holidays", "override file"),
        ("changes: [\n", "(syntax)", "YAML"),
        ("- a\n- b\n", "(file)", "mapping"),
    ],
)
def test_given_a_bad_override_file_then_the_error_names_file_and_key(
    tmp_path: Path, text: str, key: str, says: str
) -> None:
    f = overrides(tmp_path, text)
    with pytest.raises(CalendarInvalid) as err:
        read_override_file(f)
    assert err.value.file == str(f)
    assert err.value.key == key
    assert says in err.value.expected
    assert isinstance(err.value, ConfigError)  # start-up stops on it like any config error


@pytest.mark.parametrize("kind", ["move", "drop"])
def test_given_a_change_to_a_day_that_is_no_holiday_then_it_is_refused(
    tmp_path: Path, kind: str
) -> None:
    extra = '\n    to: "2027-06-03"' if kind == "move" else ""
    f = overrides(tmp_path, f'changes:\n  - {kind}: "2027-06-02"{extra}\n    source: y\n')
    with pytest.raises(CalendarInvalid) as err:
        build_calendar("id-national", overrides=[f], today=MID_2026)
    assert str(f) in err.value.file
    assert "changes[0]" in err.value.file
    assert "2027-06-02 is none" in err.value.expected


def test_given_a_missing_override_file_then_it_is_named(tmp_path: Path) -> None:
    with pytest.raises(CalendarInvalid) as err:
        build_calendar("id-national", overrides=[tmp_path / "nope.yaml"], today=MID_2026)
    assert err.value.file.endswith("nope.yaml")


def test_the_example_override_file_loads() -> None:
    of = read_override_file(ROOT / "examples" / "holidays" / "id-overrides.yaml")
    assert of.changes == ()


# ---- warnings --------------------------------------------------------------------------------


def test_given_59_days_left_then_a_warning_and_60_none() -> None:
    cal = build_calendar("id-national", today=date(2027, 1, 10))  # covers to 2027-12-31
    quiet = date(2027, 12, 31) - timedelta(days=60)
    loud = date(2027, 12, 31) - timedelta(days=58)
    assert calendar_warnings({"id-national": cal}, quiet) == []
    (w,) = [x for x in calendar_warnings({"id-national": cal}, loud) if "covers days" in x.text]
    assert "2027-12-31" in w.text
    assert "59 days left" in w.text
    assert "covers: [2028]" in w.text
    (gone,) = calendar_warnings({"id-national": cal}, date(2028, 1, 2))
    assert "does not cover today" in gone.text


def test_given_estimated_dates_soon_then_they_are_named() -> None:
    cal = build_calendar("id-national", today=date(2027, 2, 1))
    texts = [w.text for w in calendar_warnings({"id-national": cal}, date(2027, 2, 1))]
    assert any("2027-03-10" in t and "estimates" in t for t in texts)


def test_given_a_plain_list_of_days_then_it_claims_no_coverage() -> None:
    cal = explicit_days({date(2026, 8, 17): "x"})
    assert cal.covers(date(2099, 1, 1))
    assert calendar_warnings({"x": cal}, date(2026, 1, 1)) == []


# ---- settings --------------------------------------------------------------------------------


# The example campaign's calendar line (the [acd.callbacks] one reads the same without this
# comment).
CAMPAIGN_CALENDAR = 'calendar = "id-national"       # the default;'


def settings_file(tmp_path: Path, text: str) -> Path:
    """The example settings, moved: paths made absolute, no prompt check (no sandbox)."""
    base = (ROOT / "examples" / "sambung.toml").read_text(encoding="utf-8")
    ex = ROOT / "examples"
    for rel in ("flows/", "holidays/", "dialer/"):
        base = base.replace(f'"{rel}', f'"{ex}/{rel}')
    base = "\n".join(x for x in base.splitlines() if not x.startswith("sounds_root"))
    p = tmp_path / "s.toml"
    p.write_text(base + "\n" + text, encoding="utf-8")
    return p


def test_given_a_campaign_naming_an_unknown_calendar_then_settings_list_the_known_ones(
    tmp_path: Path,
) -> None:
    text = (ROOT / "examples" / "sambung.toml").read_text(encoding="utf-8")
    p = tmp_path / "s.toml"
    p.write_text(text.replace(CAMPAIGN_CALENDAR, 'calendar = "bali" #'), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(p, env={})
    assert "'bali' is not a calendar" in str(err.value)
    assert "id-national" in str(err.value)


def test_given_old_holiday_files_on_a_campaign_then_settings_point_to_calendar(
    tmp_path: Path,
) -> None:
    text = (ROOT / "examples" / "sambung.toml").read_text(encoding="utf-8")
    p = tmp_path / "s.toml"
    p.write_text(text.replace(CAMPAIGN_CALENDAR, 'holidays = ["x.yaml"] #'), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(p, env={})
    assert "calendar =" in str(err.value)
    assert "[calendars" in str(err.value)


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ('[calendars.x]\ncategories = ["bank"]\n', "public"),
        ('[calendars.x]\ncountry = "XX"\n', "holidays package"),
        ("[calendars.x]\nyears = [1800]\n", "1900"),
        ('[calendars.x]\nunknown_days = "maybe"\n', "closed"),
    ],
)
def test_given_a_bad_calendar_section_then_settings_refuse_it(
    tmp_path: Path, section: str, says: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(settings_file(tmp_path, section), env={})
    assert "calendars" in err.value.key
    assert says in str(err.value)


def test_given_no_calendars_section_then_id_national_exists(tmp_path: Path) -> None:
    s = load_settings(None, env={})
    assert s.calendars["id-national"].country == "ID"
    assert s.calendars["id-national"].categories == ["public"]


def test_given_a_calendar_that_lapses_soon_then_check_config_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = settings_file(tmp_path, "[calendars.short]\nyears = [2027]\n")
    text = p.read_text(encoding="utf-8").replace(
        'name = "reminder"', 'name = "reminder"\ncalendar = "short"'
    )
    p.write_text(text, encoding="utf-8")
    assert cli_main(["check-config", "-c", str(p), "--as-of", "2027-10-01"]) == 0
    assert "short" not in capsys.readouterr().err  # 92 days left: quiet
    assert cli_main(["check-config", "-c", str(p), "--as-of", "2027-12-01"]) == 0
    out = capsys.readouterr()
    assert "calendar 'short' covers days only up to 2027-12-31 (31 days left)" in out.err
    assert "short to 2027-12-31" in out.out
    assert cli_main(["check-config", "-c", str(p), "--as-of", "2028-01-03"]) == 0
    out = capsys.readouterr()
    assert "calendar 'short' does not cover today (2028-01-03)" in out.err
    assert "short to today: NOT COVERED" in out.out


# ---- the IVR uses the same calendars -------------------------------------------------------

FLOW = """
flow: cal
dids: ["1599"]
start: bye
calendars:
  office:
    timezone: Asia/Jakarta
    hours: {mon-sat: "08:00-17:00"}
    holiday_calendar: %s
nodes:
  bye: {type: hangup}
"""


def test_given_a_flow_naming_an_unknown_shared_calendar_then_it_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "f.yaml"
    f.write_text(FLOW % "bali")
    with pytest.raises(FlowError) as err:
        load_flow(
            f,
            known_queues=(),
            sound_dirs=None,
            max_menu_depth=4,
            calendars={"id-national": NATIONAL},
        )
    assert "bali" in str(err.value)
    assert "id-national" in str(err.value)


@pytest.mark.parametrize(("open_unknown", "closed"), [((), True), (("id-national",), False)])
def test_given_an_unknown_day_then_the_hotline_is_closed_unless_the_calendar_says_open(
    tmp_path: Path, open_unknown: tuple[str, ...], closed: bool
) -> None:
    f = tmp_path / "f.yaml"
    f.write_text(FLOW % "id-national")
    flow = load_flow(
        f,
        known_queues=(),
        sound_dirs=None,
        max_menu_depth=4,
        calendars={"id-national": NATIONAL},
        unknown_days_open=open_unknown,
    )
    office = flow.calendar("office")
    assert office.closed_day(date(2027, 1, 1))  # a holiday either way
    assert not office.closed_day(date(2027, 1, 4))
    assert office.closed_day(date(2028, 1, 3)) is closed


def test_given_no_package_then_the_override_files_and_listed_years_are_the_calendar(
    tmp_path: Path,
) -> None:
    f = overrides(
        tmp_path,
        'covers: [2029]\nchanges:\n  - add: "2029-05-01"\n    name: Company day\n    source: HR\n',
    )
    cal = build_calendar("own", use_package=False, overrides=[f], years=[2030], today=MID_2026)
    assert dict(cal.days) == {date(2029, 5, 1): "Company day"}
    assert cal.covered == frozenset({2029, 2030})
    assert date(2027, 1, 1) not in cal  # no package: New Year is not a holiday here
    assert not cal.covers(date(2027, 1, 1))  # ... and nobody vouches for 2027


def test_given_a_category_the_country_lacks_then_the_error_names_the_calendar() -> None:
    with pytest.raises(CalendarInvalid) as err:
        build_calendar("sg", country="SG", categories=("government",), today=MID_2026)
    assert err.value.key == "calendars.sg.categories"
    assert "SG's calendar (public)" in err.value.expected

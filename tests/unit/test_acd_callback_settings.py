"""[acd.callbacks]: the callback rules' settings, and the rules the ACD builds from them."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path
from typing import Any

import pytest

from sambung.acd.service import callback_rules_of
from sambung.acd.settings import callback_rule_config
from sambung.dialer.phones import PHONE_TYPES
from sambung.engine.calendars import no_days
from sambung.engine.config import AcdSettings, load_settings
from sambung.engine.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sambung.toml"
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text), env={})
    return str(err.value)


def test_the_defaults_are_ojks_window_and_a_persons_own_line() -> None:
    c = AcdSettings().callbacks
    assert c.phone_types == ["mobile", "fixed_line"]
    assert c.international_prefixes == []
    assert c.max_per_number_per_day == 2
    assert c.calendar == "id-national"
    assert (c.days, c.start, c.end, c.last_dial_margin_minutes) == (
        [0, 1, 2, 3, 4, 5],
        "08:00",
        "20:00",
        5,
    )
    rules = callback_rules_of(callback_rule_config(c), no_days())
    assert rules.phone_types == frozenset({"mobile", "fixed_line"})
    assert rules.max_per_number_per_day == 2
    assert rules.window.weekdays == frozenset(range(6))
    assert (rules.window.start, rules.window.end) == (time(8), time(20))
    assert rules.window.last_dial_margin == timedelta(minutes=5)


def test_given_a_file_then_every_key_reaches_the_rules(tmp_path: Path) -> None:
    s = load_settings(
        write(
            tmp_path,
            '[acd.callbacks]\nphone_types = ["mobile"]\ninternational_prefixes = ["+65", "+1"]\n'
            'max_per_number_per_day = 1\ndays = [0, 1, 2, 3, 4]\nstart = "09:00"\n'
            'end = "17:00"\nlast_dial_margin_minutes = 15\n',
        ),
        env={},
    )
    rules = callback_rules_of(callback_rule_config(s.acd.callbacks), no_days())
    assert rules.phone_types == frozenset({"mobile"})
    assert rules.international_prefixes == ("+65", "+1")
    assert rules.max_per_number_per_day == 1
    assert rules.window.weekdays == frozenset(range(5))
    assert (rules.window.start, rules.window.end) == (time(9), time(17))
    assert rules.window.last_dial_margin == timedelta(minutes=15)


def test_an_unknown_phone_type_is_refused_with_the_list_of_types(tmp_path: Path) -> None:
    text = refused(tmp_path, '[acd.callbacks]\nphone_types = ["mobile", "premium"]\n')
    assert "acd.callbacks.phone_types" in text
    assert "'premium'" in text
    assert ", ".join(PHONE_TYPES) in text


@pytest.mark.parametrize("prefix", ["65", "+", "+0", "+65a", "+1234567", "+62", "+6281"])
def test_a_bad_international_prefix_is_refused(tmp_path: Path, prefix: str) -> None:
    text = refused(tmp_path, f'[acd.callbacks]\ninternational_prefixes = ["{prefix}"]\n')
    assert "acd.callbacks.international_prefixes" in text


def test_an_unknown_calendar_is_refused_naming_the_calendars(tmp_path: Path) -> None:
    text = refused(tmp_path, '[acd.callbacks]\ncalendar = "bali"\n')
    assert "acd.callbacks.calendar 'bali' is not a calendar" in text
    assert "id-national" in text


@pytest.mark.parametrize(
    "body",
    [
        {"max_per_number_per_day": 0},
        {"max_per_number_per_day": 11},
        {"start": "20:00", "end": "08:00"},
        {"start": "8:00"},
        {"days": []},
        {"days": [7]},
        {"phone_types": []},
        {"typo": 1},
    ],
)
def test_other_bad_values_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="callbacks"):
        AcdSettings.model_validate({"callbacks": body})

"""A settings file with several problems reports them all at once, each naming the file, the
key and what was expected (as flow files do)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sambung.engine.cli import main
from sambung.engine.config import SettingsInvalid, SettingsProblem, load_settings
from sambung.engine.errors import ConfigError

THREE_QUEUES = """
[[acd.queues]]
name = "a"
[[acd.queues]]
name = "b"
[[acd.queues]]
name = "c"
ring_timeout_seconds = 1
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sambung.toml"
    p.write_text(text, encoding="utf-8")
    return p


def problems(path: Path | None, env: dict[str, str] | None = None) -> list[SettingsProblem]:
    with pytest.raises(SettingsInvalid) as info:
        load_settings(path, env=env or {})
    return list(info.value.problems)


def test_given_three_errors_in_three_sections_when_loaded_then_all_three_are_reported(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "[http]\nport = 70000\n[engine]\nlog_format = 'xml'\n" + THREE_QUEUES)
    found = problems(path)
    assert [(p.file, p.key) for p in found] == [
        (str(path), "engine.log_format"),
        (str(path), "http.port"),
        (str(path), "acd.queues[2].ring_timeout_seconds"),
    ]
    by_key = {p.key: p.expected for p in found}
    assert by_key["http.port"] == "Input should be less than or equal to 65535, got 70000"
    assert by_key["engine.log_format"] == "Input should be 'console' or 'json', got 'xml'"
    assert by_key["acd.queues[2].ring_timeout_seconds"].endswith("got 1")


def test_given_several_errors_then_the_first_is_also_the_errors_own_key(tmp_path: Path) -> None:
    # Callers that name one problem (ConfigError.key) see the first, as before.
    path = write(tmp_path, "[http]\nport = 70000\nhost = 5\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.key == "http.host"
    assert str(info.value).startswith("2 problems:\n")
    assert f"{path}: http.port: " in str(info.value)


def test_given_unknown_keys_then_every_one_is_reported_with_a_suggestion(tmp_path: Path) -> None:
    path = write(
        tmp_path, "[http]\nprot = 8080\n[ari]\npasword = 'hunter2-secret'\n[engin]\nx = 1\n"
    )
    found = problems(path)
    assert [p.key for p in found] == ["http.prot", "ari.pasword", "engin"]
    by_key = {p.key: p.expected for p in found}
    assert by_key["http.prot"].startswith("unknown key; did you mean 'port'? (keys here: host")
    assert by_key["ari.pasword"].startswith("unknown key; did you mean 'password'?")
    assert by_key["engin"].startswith("unknown key; did you mean 'engine'?")
    # A misspelt key may well hold a secret: its value is never shown.
    assert all("hunter2" not in str(p) for p in found)


def test_given_secrets_with_bad_values_then_no_value_is_shown(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[database]\nurl = 'mysql://u:hunter2@x'\n[ari]\npassword = 12345678\n"
        "[[acd.agents]]\nid = 'a'\nname = 'A'\nendpoint = 'e'\npin = '12a4'\n",
    )
    found = problems(path)
    assert {p.key for p in found} == {"database.url", "ari.password", "acd.agents[0].pin"}
    text = "\n".join(str(p) for p in found)
    assert "hunter2" not in text
    assert "12345678" not in text
    assert "12a4" not in text


def test_given_a_toml_syntax_error_then_its_line_and_column_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nport = 1\n[ari\n")
    (p,) = problems(path)
    assert (p.file, p.line, p.column, p.key) == (str(path), 3, 5, "(syntax)")
    assert p.expected == "valid TOML (Expected ']' at the end of a table declaration)"
    assert str(p).startswith(f"{path}:3:5: (syntax): valid TOML")


def test_given_cross_check_problems_then_each_is_reported(tmp_path: Path) -> None:
    hotline = "[[hotlines]]\ndid = '15'\nname = 'x'\ngreeting = ['sound:a']\n"
    path = write(
        tmp_path,
        hotline * 3
        + "[recordings.queues.sales]\npolicy = 'all'\n"
        + "[acd.callbacks]\ncalendar = 'bali'\n",
    )
    found = problems(path)
    assert [p.expected.split(" is ")[0].split(" names ")[0] for p in found] == [
        "hotlines[1].did '15'",
        "hotlines[2].did '15'",
        "acd.callbacks.calendar 'bali'",
        "recordings.queues",
    ]
    assert {p.key for p in found} == {"(top level)"}


def test_given_a_bad_table_name_then_the_key_says_it_is_the_name(tmp_path: Path) -> None:
    (p,) = problems(write(tmp_path, '[recordings.queues."Bad Name"]\npolicy = "all"\n'))
    assert p.key == "recordings.queues.Bad Name (the name)"


def test_given_a_file_of_several_errors_then_check_config_prints_them_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[http]\nport = 70000\n[ami]\nport = 'five'\n" + THREE_QUEUES)
    assert main(["check-config", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sambung: config error: 3 problems:\n")
    for key in ("http.port", "ami.port", "acd.queues[2].ring_timeout_seconds"):
        assert f"{path}: {key}: " in err
    assert "Traceback" not in err

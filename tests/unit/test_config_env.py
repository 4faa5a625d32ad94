"""Environment overrides: nested keys, JSON lists and tables, and NAME_FILE secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from sambung.engine.config import (
    ENV_SHORTCUTS,
    FILE_SUFFIX,
    Settings,
    SettingsInvalid,
    SettingsProblem,
    load_settings,
)
from sambung.engine.config_doc import sections

FILE = """
[http]
api_tokens = ["0123456789abcdef0123"]
allowed_origins = ["https://file.example"]
[acd.callbacks]
start = "09:00"
end = "17:00"
"""


def write(tmp_path: Path, text: str = FILE) -> Path:
    p = tmp_path / "sambung.toml"
    p.write_text(text, encoding="utf-8")
    return p


def secret_file(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def problems(path: Path | None, env: dict[str, str]) -> list[SettingsProblem]:
    with pytest.raises(SettingsInvalid) as info:
        load_settings(path, env=env)
    return list(info.value.problems)


def test_given_a_json_array_then_it_replaces_the_files_list(tmp_path: Path) -> None:
    s = load_settings(
        write(tmp_path),
        env={"SAMBUNG_HTTP__ALLOWED_ORIGINS": '["https://a.example", "https://b.example"]'},
    )
    assert s.http.allowed_origins == ["https://a.example", "https://b.example"]


def test_given_a_json_list_of_tables_then_the_list_is_set(tmp_path: Path) -> None:
    queues = '[{"name": "sales", "ring_timeout_seconds": 20}, {"name": "support"}]'
    s = load_settings(None, env={"SAMBUNG_ACD__QUEUES": queues})
    assert [(q.name, q.ring_timeout_seconds) for q in s.acd.queues] == [
        ("sales", 20),
        ("support", 15),
    ]


def test_given_a_json_object_then_it_is_merged_into_the_files_table(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path), env={"SAMBUNG_ACD__CALLBACKS": '{"start": "10:00"}'})
    assert (s.acd.callbacks.start, s.acd.callbacks.end) == ("10:00", "17:00")


def test_given_a_nested_key_then_it_is_set(tmp_path: Path) -> None:
    s = load_settings(
        write(tmp_path),
        env={
            "SAMBUNG_ACD__CALLBACKS__END": "18:00",
            "SAMBUNG_CALENDARS__OFFICE__COUNTRY": "SG",
            "SAMBUNG_HTTP__PORT": "8481",
        },
    )
    assert s.acd.callbacks.end == "18:00"
    assert s.calendars["office"].country == "SG"
    assert s.http.port == 8481


def test_given_scalars_then_text_is_kept_as_text_even_if_it_looks_like_json() -> None:
    # A password may well start with "[": only lists and tables are read as JSON.
    s = load_settings(None, env={"SAMBUNG_ARI__PASSWORD": '["not", "a list"]'})
    assert s.ari.password.get_secret_value() == '["not", "a list"]'


@pytest.mark.parametrize(
    ("name", "value", "key", "expected"),
    [
        (
            "SAMBUNG_HTTP__ALLOWED_ORIGINS",
            "https://a.example",
            "http.allowed_origins",
            'a JSON array, such as ["a", "b"] (Expecting value at character 1)',
        ),
        (
            "SAMBUNG_HTTP__ALLOWED_ORIGINS",
            '{"a": 1}',
            "http.allowed_origins",
            'a JSON array, such as ["a", "b"], not a JSON object',
        ),
        (
            "SAMBUNG_ACD__CALLBACKS",
            "[]",
            "acd.callbacks",
            'a JSON object, such as {"key": "value"}, not a JSON array',
        ),
        (
            "SAMBUNG_ACD__QUEUES__0__NAME",
            "x",
            "acd.queues.0.name",
            "no index: a list is set whole, as a JSON array in SAMBUNG_ACD__QUEUES",
        ),
        (
            "SAMBUNG_HTTP__PORT__X",
            "1",
            "http.port.x",
            "no key inside SAMBUNG_HTTP__PORT, which is a single value",
        ),
        (
            "SAMBUNG_HTTP__ALLOWED_ORIGINS",
            '["https://a.example", "b"]',
            "http.allowed_origins[1]",
            "String should match pattern '^https?://[A-Za-z0-9.\\-\\[\\]:]+$', got 'b'",
        ),
        ("SAMBUNG_AMI__PORT", "five", "ami.port", "unable to parse string as an integer"),
        ("SAMBUNG_HTTP__PROT", "1", "http.prot", "unknown key; did you mean 'port'?"),
    ],
)
def test_given_a_bad_variable_then_the_problem_names_the_variable_and_the_key(
    tmp_path: Path, name: str, value: str, key: str, expected: str
) -> None:
    (p,) = problems(write(tmp_path), {name: value})
    assert (p.file, p.key) == (f"environment {name}", key)
    assert expected in p.expected


def test_given_name_file_then_the_value_is_read_without_its_trailing_newline(
    tmp_path: Path,
) -> None:
    env = {
        "SAMBUNG_ARI__PASSWORD_FILE": secret_file(tmp_path, "ari", "from-a-file\n"),
        "SAMBUNG_AMI__SECRET_FILE": secret_file(tmp_path, "ami", "ami secret\r\n"),
        "DATABASE_URL_FILE": secret_file(tmp_path, "db", "postgresql://u:p@db:5432/x\n"),
        "SAMBUNG_API_TOKEN_FILE": secret_file(tmp_path, "api", "env-token-0123456789\n"),
        "SAMBUNG_METRICS_TOKEN_FILE": secret_file(tmp_path, "m", "scrape-token-01234567"),
        "SAMBUNG_HTTP__TRUSTED_PROXIES_FILE": secret_file(tmp_path, "p", '["10.0.0.0/8"]\n'),
    }
    s = load_settings(write(tmp_path), env=env)
    assert s.ari.password.get_secret_value() == "from-a-file"
    assert s.ami.secret.get_secret_value() == "ami secret"
    assert s.database.url.get_secret_value() == "postgresql://u:p@db:5432/x"
    assert [t.get_secret_value() for t in s.http.api_tokens] == [
        "0123456789abcdef0123",
        "env-token-0123456789",
    ]
    assert [(t.name, t.token.get_secret_value()) for t in s.http.role_tokens] == [
        ("prometheus", "scrape-token-01234567")
    ]
    assert s.http.trusted_proxies == ["10.0.0.0/8"]


def test_given_name_and_name_file_then_the_error_names_both(tmp_path: Path) -> None:
    env = {
        "SAMBUNG_ARI__PASSWORD": "given",
        "SAMBUNG_ARI__PASSWORD_FILE": secret_file(tmp_path, "ari", "from-a-file"),
    }
    (p,) = problems(None, env)
    assert p.file == "environment SAMBUNG_ARI__PASSWORD and SAMBUNG_ARI__PASSWORD_FILE"
    assert p.key == "ari.password"
    assert "not both" in p.expected
    assert "given" not in str(p)
    assert "from-a-file" not in str(p)


def test_given_an_unreadable_name_file_then_the_variable_and_the_path_are_named(
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "nope")
    (p,) = problems(None, {"SAMBUNG_AMI__SECRET_FILE": missing})
    assert (p.file, p.key) == ("environment SAMBUNG_AMI__SECRET_FILE", "ami.secret")
    assert p.expected == f"a readable file ({missing}: No such file or directory)"


def test_given_a_bad_value_from_a_file_then_the_file_is_named_and_the_value_not(
    tmp_path: Path,
) -> None:
    path = secret_file(tmp_path, "db", "mysql://u:hunter2@x\n")
    (p,) = problems(None, {"DATABASE_URL_FILE": path})
    assert p.file == f"environment DATABASE_URL_FILE ({path})"
    assert p.key == "database.url"
    assert "hunter2" not in str(p)


def test_given_problems_in_file_and_environment_then_all_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path, FILE + "[engine]\nlog_level = 'loud'\n")
    found = problems(
        path,
        {"SAMBUNG_HTTP__PORT": "http", "SAMBUNG_AMI__SECRET_FILE": str(tmp_path / "nope")},
    )
    assert [(p.file, p.key) for p in found] == [
        ("environment SAMBUNG_AMI__SECRET_FILE", "ami.secret"),
        (str(path), "engine.log_level"),
        ("environment SAMBUNG_HTTP__PORT", "http.port"),
    ]


def test_given_a_short_token_variable_then_the_list_names_file_and_variable(
    tmp_path: Path,
) -> None:
    (p,) = problems(write(tmp_path), {"SAMBUNG_API_TOKEN": "short"})
    assert p.file == f"{tmp_path / 'sambung.toml'} (and environment SAMBUNG_API_TOKEN)"
    assert p.key == "http.api_tokens"
    (p,) = problems(None, {"SAMBUNG_API_TOKEN": "short"})
    assert p.file == "environment SAMBUNG_API_TOKEN"


def test_other_sambung_variables_are_not_settings(tmp_path: Path) -> None:
    # SAMBUNG_CONFIG, SAMBUNG_PASSWORD (user add) and their _FILE forms are not settings.
    s = load_settings(
        write(tmp_path),
        env={"SAMBUNG_CONFIG": "x.toml", "SAMBUNG_PASSWORD_FILE": "/nope", "HOME_FILE": "/x"},
    )
    assert s.http.port == 8480


def test_no_key_ends_in_file_so_the_file_suffix_is_never_ambiguous() -> None:
    """SAMBUNG_X__Y_FILE must mean "Y from a file", never a key named y_file."""
    suffix = FILE_SUFFIX.lower()
    clashes = [
        f"{s.path}.{name}"
        for s in sections()
        for name in s.model.model_fields
        if name.endswith(suffix)
    ]
    assert clashes == []
    assert not any(name.endswith(FILE_SUFFIX) for name in ENV_SHORTCUTS)
    assert Settings().http.port == 8480  # building Settings reads no environment

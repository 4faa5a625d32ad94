from __future__ import annotations

from pathlib import Path

import pytest

from sambung.engine.cli import main
from sambung.engine.config import load_settings
from sambung.engine.errors import ConfigError

GOOD = """
[http]
api_tokens = ["0123456789abcdef0123"]
[[hotlines]]
did = "1500"
name = "Collections"
greeting = ["sound:hello-world"]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sambung.toml"
    p.write_text(text)
    return p


def test_given_the_example_config_when_loaded_then_it_is_valid() -> None:
    s = load_settings(Path("examples/sambung.toml"), env={})
    assert s.hotline_for("1400") is not None
    assert s.ivr.flows[0].name == "collections.yaml"
    assert s.ivr.flows[0].is_absolute()
    assert s.hotline_for("9999") is None


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("[ari]\nurl = 'ftp://x'\n", "ari.url", "should match pattern"),
        ("[http]\nport = 70000\n", "http.port", "less than or equal to 65535"),
        ("[http]\nprot = 8080\n", "http.prot", "unknown key; did you mean 'port'?"),
        ("[http]\napi_tokens = ['short']\n", "http.api_tokens", "at least 16 characters"),
        ("[engine]\nlog_format = 'xml'\n", "engine.log_format", "'console' or 'json'"),
        ("[database]\nurl = 'mysql://x'\n", "database.url", "postgresql://"),
        (
            "[[hotlines]]\ndid = 'abc'\nname = 'x'\ngreeting = ['sound:a']\n",
            "hotlines[0].did",
            "should match pattern",
        ),
        (
            "[[hotlines]]\ndid = '15'\nname = 'x'\ngreeting = ['hello-world']\n",
            "hotlines[0].greeting[0]",
            "should match pattern",
        ),
        (
            "[[hotlines]]\ndid = '15'\nname = 'x'\ngreeting = []\n",
            "hotlines[0]",
            "a hotline needs a greeting, or a queue to send calls to",
        ),
        (
            "[[hotlines]]\ndid = '15'\nname = 'a'\ngreeting = ['sound:a']\n"
            "[[hotlines]]\ndid = '15'\nname = 'b'\ngreeting = ['sound:b']\n",
            "(top level)",
            "hotlines[1].did '15' is already used by hotlines[0]",
        ),
        ("[http\n", "(syntax)", "valid TOML"),
    ],
)
def test_given_a_bad_file_when_loaded_then_the_error_names_file_key_and_expectation(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    err = info.value
    assert err.file == str(path)
    assert err.key == key
    assert expected in err.expected


def test_given_a_missing_file_then_the_error_says_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.toml", env={})
    assert info.value.key == "(file)"
    assert "readable file" in info.value.expected


def test_given_environment_overrides_then_they_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    s = load_settings(
        path,
        env={
            "SAMBUNG_ARI__PASSWORD": "from-env",
            "DATABASE_URL": "postgresql://u@db:5432/x",
            "SAMBUNG_API_TOKEN": "env-token-0123456789",
        },
    )
    assert s.ari.password.get_secret_value() == "from-env"
    assert s.database.url.get_secret_value() == "postgresql://u@db:5432/x"
    assert [t.get_secret_value() for t in s.http.api_tokens] == [
        "0123456789abcdef0123",
        "env-token-0123456789",
    ]


def test_given_a_bad_secret_then_the_error_does_not_echo_it(tmp_path: Path) -> None:
    path = write(tmp_path, "[database]\nurl = 'mysql://user:hunter2@x'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "hunter2" not in str(info.value)


def test_check_config_exits_non_zero_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[ami]\nport = 'five'\n")
    assert main(["check-config", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert "ami.port" in err
    assert main(["check-config", "-c", "examples/sambung.toml"]) == 0


def test_check_config_names_a_missing_sounds_root_instead_of_every_prompt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = Path("examples/flows/collections.yaml").resolve()
    path = write(
        tmp_path,
        f'[ivr]\nflows = ["{flows}"]\nqueues = ["collections"]\n'
        f'sounds_root = "{tmp_path / "no-such-folder"}"\n',
    )
    assert main(["check-config", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "ivr.sounds_root" in err
    assert "ops/sandbox up" in err
    assert "prompt" not in err.split("ivr.sounds_root")[0]


def test_given_a_metrics_role_token_and_the_metrics_token_variable_then_both_are_scrapers(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        GOOD
        + "[[http.role_tokens]]\n"
        + "name = 'grafana-agent'\ntoken = 'scrape-token-from-file-01'\nrole = 'metrics'\n",
    )
    s = load_settings(path, env={"SAMBUNG_METRICS_TOKEN": "scrape-token-from-env-01"})
    assert [(t.name, t.token.get_secret_value(), t.role) for t in s.http.role_tokens] == [
        ("grafana-agent", "scrape-token-from-file-01", "metrics"),
        ("prometheus", "scrape-token-from-env-01", "metrics"),
    ]
    # Not an admin token as well.
    assert [t.get_secret_value() for t in s.http.api_tokens] == ["0123456789abcdef0123"]
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={"SAMBUNG_METRICS_TOKEN": "short"})
    assert info.value.key == "http.role_tokens"
    assert "short" not in str(info.value)


@pytest.mark.parametrize(
    ("origins", "ok"),
    [
        (["https://console.example.com"], True),
        (["http://10.0.0.5:8480", "https://cc.example.co.id"], True),
        (["console.example.com"], False),
        (["https://console.example.com/"], False),
        (["https://console.example.com/path"], False),
        (["*"], False),
    ],
)
def test_allowed_origins_are_scheme_host_and_port(
    tmp_path: Path, origins: list[str], ok: bool
) -> None:
    listed = ", ".join(f"'{o}'" for o in origins)
    path = write(tmp_path, GOOD.replace("[http]\n", f"[http]\nallowed_origins = [{listed}]\n"))
    if ok:
        assert load_settings(path, env={}).http.allowed_origins == origins
    else:
        with pytest.raises(ConfigError) as info:
            load_settings(path, env={})
        assert info.value.key.startswith("http.allowed_origins")

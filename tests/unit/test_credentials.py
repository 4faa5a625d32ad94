"""Published and weak credentials are refused once the engine, ARI or AMI leaves loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from sambung.engine.cli import main
from sambung.engine.config import Settings, load_settings
from sambung.engine.credentials import check_credentials, credential_problems, is_loopback
from sambung.engine.errors import ConfigError

EXAMPLE = Path("examples/sambung.toml")
STRONG_ARI = "ari-0123456789abcdef"
STRONG_AMI = "ami-0123456789abcdef"
STRONG_TOKEN = "token-0123456789abcdef"

AGENT = """
[acd]
[[acd.queues]]
name = "collections"
[[acd.agents]]
id = "siti"
name = "Siti"
endpoint = "agent1001"
pin = "{pin}"
queues = ["collections"]
"""


def settings(text: str, tmp_path: Path, env: dict[str, str] | None = None) -> Settings:
    p = tmp_path / "sambung.toml"
    p.write_text(text)
    return load_settings(p, env=env or {})


def strong(host: str = "0.0.0.0", pin: str = "4827") -> str:
    return (
        f'[http]\nhost = "{host}"\napi_tokens = ["{STRONG_TOKEN}"]\n'
        f'[ari]\npassword = "{STRONG_ARI}"\n[ami]\nsecret = "{STRONG_AMI}"\n'
        + AGENT.format(pin=pin)
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("", False),
        ("::", False),
        ("10.1.2.3", False),
        ("pbx.example.com", False),
    ],
)
def test_which_hosts_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_given_the_example_on_loopback_when_checked_then_its_defaults_are_allowed() -> None:
    s = load_settings(EXAMPLE, env={})
    assert credential_problems(s) == []
    check_credentials(s)


def test_given_the_example_beyond_loopback_then_every_default_is_named() -> None:
    s = load_settings(EXAMPLE, env={"SAMBUNG_HTTP__HOST": "0.0.0.0"})
    problems = credential_problems(s)
    keys = [p.split(":", 1)[0] for p in problems]
    assert "ari.password" in keys
    assert "ami.secret" in keys
    assert "http.api_tokens[0]" in keys
    assert "acd.agents[0].pin (siti)" in keys  # 1001 on agent1001
    with pytest.raises(ConfigError) as exc:
        check_credentials(s)
    text = str(exc.value)
    # All problems at once, each with its key; the reason names what is reachable.
    assert all(p in text for p in problems)
    assert "http.host '0.0.0.0'" in text
    for secret in ("sambung-dev-secret", "sambung-dev-ami-secret", "example-token-change-me"):
        assert secret not in text, "a secret's value is never echoed"


@pytest.mark.parametrize(
    ("env", "reachable"),
    [
        ({"SAMBUNG_HTTP__HOST": "10.0.0.5"}, "http.host"),
        ({"SAMBUNG_ARI__URL": "https://pbx.example.com:8089"}, "ari.url"),
        ({"SAMBUNG_AMI__HOST": "10.0.0.6"}, "ami.host"),
    ],
)
def test_any_address_beyond_loopback_triggers_the_check(
    env: dict[str, str], reachable: str
) -> None:
    s = load_settings(EXAMPLE, env=env)
    with pytest.raises(ConfigError) as exc:
        check_credentials(s)
    assert reachable in str(exc.value)


def test_given_strong_distinct_credentials_beyond_loopback_then_they_pass(tmp_path: Path) -> None:
    assert credential_problems(settings(strong(), tmp_path)) == []


def test_ari_and_ami_must_differ_beyond_loopback(tmp_path: Path) -> None:
    text = strong().replace(STRONG_AMI, STRONG_ARI)
    assert credential_problems(settings(text, tmp_path)) == [
        "ami.secret: is the same as ari.password; use a different secret"
    ]


def test_short_secrets_are_refused_beyond_loopback(tmp_path: Path) -> None:
    text = strong().replace(STRONG_ARI, "short-ari").replace(STRONG_AMI, "short-ami")
    problems = credential_problems(settings(text, tmp_path))
    assert problems == [
        "ari.password: is shorter than 16 characters",
        "ami.secret: is shorter than 16 characters",
    ]


def test_a_pin_equal_to_the_extension_is_refused_beyond_loopback(tmp_path: Path) -> None:
    problems = credential_problems(settings(strong(pin="1001"), tmp_path))
    assert problems == ["acd.agents[0].pin (siti): is the agent's extension; anyone can guess it"]
    # The same PIN on loopback is the sandbox's business.
    assert credential_problems(settings(strong(host="127.0.0.1", pin="1001"), tmp_path)) == []


def test_a_metrics_token_from_the_example_is_refused(tmp_path: Path) -> None:
    env = {"SAMBUNG_METRICS_TOKEN": "example-token-change-me-0123456789"}
    problems = credential_problems(settings(strong(), tmp_path, env))
    assert problems == [
        "http.role_tokens[0].token (prometheus): is a published development default"
    ]


def test_given_defaults_beyond_loopback_when_check_config_or_run_then_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMBUNG_HTTP__HOST", "0.0.0.0")
    for command in ("check-config", "run"):
        assert main([command, "-c", str(EXAMPLE)]) == 2
        err = capsys.readouterr().err
        for key in ("ari.password", "ami.secret", "http.api_tokens[0]"):
            assert key in err
        assert str(EXAMPLE) in err
    monkeypatch.delenv("SAMBUNG_HTTP__HOST")
    assert main(["check-config", "-c", str(EXAMPLE)]) == 0

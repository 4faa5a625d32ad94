"""`sambung` ends expected failures with one line naming what failed and a documented exit
code, never a traceback: PostgreSQL down, a missing or bad file, bad settings.

Each case runs the installed console script, as an operator would, with PostgreSQL pointed at
a closed port on loopback (refused at once: nothing waits for a timeout).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from sambung.engine.cli import EXIT_CONFIG, EXIT_DATABASE, EXIT_RUNTIME

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sambung.toml"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def sambung(
    *args: str, cwd: Path, stdin: str = "", database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "sambung"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "sambung.engine.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAMBUNG_")}
    env["DATABASE_URL"] = (
        database_url or f"postgresql://sambung:s3cret-password@127.0.0.1:{closed_port()}/sambung"
    )
    env["SAMBUNG_PASSWORD"] = "a-long-enough-password"
    return subprocess.run(
        [*cmd, *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_failure(r: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    out = r.stdout + r.stderr
    assert "Traceback" not in out, out
    assert r.returncode == code, out
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, out
    (line,) = lines
    assert line.startswith("sambung: "), line
    for word in words:
        assert word in line, line
    return line


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "debtors.csv").write_text("account,name,phone,amount_due,due_date\n")
    (tmp_path / "bad.toml").write_text("[engine\nlog_level = 'x'\n")
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["migrate", "-c", "{example}"],
        ["user", "list", "-c", "{example}"],
        ["user", "add", "-c", "{example}", "someone", "--role", "admin"],
        ["import", "-c", "{example}", "--campaign", "kolek-30", "{work}/debtors.csv"],
    ],
    ids=["migrate", "user-list", "user-add", "import"],
)
def test_given_postgresql_down_when_a_command_needs_it_then_one_line_and_exit_3(
    work: Path, args: list[str]
) -> None:
    r = sambung(*(a.format(work=work, example=EXAMPLE) for a in args), cwd=work)
    line = assert_one_line_failure(r, EXIT_DATABASE, "PostgreSQL at 127.0.0.1:")
    assert "s3cret-password" not in r.stdout + r.stderr, "the password reached the terminal"
    assert "/sambung" in line


@pytest.mark.parametrize(
    "command",
    [["run"], ["migrate"], ["check-config"], ["reload"], ["user", "list"]],
    ids=["run", "migrate", "check-config", "reload", "user-list"],
)
def test_given_a_missing_settings_file_when_a_command_runs_then_one_line_and_exit_2(
    work: Path, command: list[str]
) -> None:
    r = sambung(*command, "-c", str(work / "absent.toml"), cwd=work)
    assert_one_line_failure(r, EXIT_CONFIG, "absent.toml")


def test_given_a_settings_file_with_bad_toml_when_migrating_then_one_line_and_exit_2(
    work: Path,
) -> None:
    r = sambung("migrate", "-c", str(work / "bad.toml"), cwd=work)
    assert_one_line_failure(r, EXIT_CONFIG, "bad.toml", "TOML")


@pytest.mark.parametrize(
    "url",
    ["postgresql://sambung@127.0.0.1:99999/sambung", "postgresql://sambung@[::1/sambung"],
    ids=["port-out-of-range", "broken-ipv6"],
)
def test_given_a_malformed_database_url_when_migrating_then_one_line_and_exit_2(
    work: Path, url: str
) -> None:
    r = sambung("migrate", "-c", str(EXAMPLE), cwd=work, database_url=url)
    assert_one_line_failure(r, EXIT_CONFIG, "database.url")


def test_given_a_missing_list_when_importing_then_one_line_and_exit_2(work: Path) -> None:
    r = sambung(
        "import", "-c", str(EXAMPLE), "--campaign", "kolek-30", str(work / "gone.csv"), cwd=work
    )
    assert_one_line_failure(r, EXIT_CONFIG, "gone.csv")


def test_given_a_bad_date_when_importing_then_a_usage_error_and_exit_2(work: Path) -> None:
    r = sambung(
        "import",
        *("-c", str(EXAMPLE), "--campaign", "kolek-30", "--as-of", "yesterday"),
        str(work / "debtors.csv"),
        cwd=work,
    )
    assert "Traceback" not in r.stdout + r.stderr
    assert r.returncode == EXIT_CONFIG
    assert "--as-of" in r.stderr


def test_given_no_engine_when_reloading_then_one_line_and_exit_1(work: Path) -> None:
    settings = work / "reload.toml"
    settings.write_text(f'[http]\nport = {closed_port()}\napi_tokens = ["{"t" * 32}"]\n')
    r = sambung("reload", "-c", str(settings), cwd=work)
    assert_one_line_failure(r, EXIT_RUNTIME, "cannot reach the engine")


def test_given_version_when_asked_either_way_then_it_prints_the_installed_version(
    work: Path,
) -> None:
    for args in (["--version"], ["version"]):
        r = sambung(*args, cwd=work)
        assert (r.returncode, r.stdout.strip()) == (0, f"sambung {version('sambung')}"), r.stderr


def test_given_help_then_it_documents_the_exit_codes(work: Path) -> None:
    for args in (["--help"], ["migrate", "--help"]):
        r = sambung(*args, cwd=work)
        assert r.returncode == 0
        assert "exit codes:" in r.stdout
        for code in (EXIT_RUNTIME, EXIT_CONFIG, EXIT_DATABASE):
            assert f"\n  {code} " in r.stdout

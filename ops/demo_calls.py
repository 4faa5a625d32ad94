#!/usr/bin/env python3
"""The test calls ops/demo prints, kept in one place: ops/demo prints them, and
tests/integration/test_demo_calls.py runs the very same commands against the sandbox.

    python3 ops/demo_calls.py [--config examples/sambung.toml]

Prints, for a newcomer with the example engine running:
  * a caller who walks the collections hotline's menu with keys (DID 1500, SIP INFO DTMF);
  * a caller straight into the collections queue (DID 1600), who hangs up after a while;
  * how to be an agent from a softphone: the sandbox's SIP server and credentials, and the
    API call that logs the agent in.

Every SIPp command is bounded (one call, an overall timeout) and stays on loopback; the
scenario paths are relative to the checkout, so run them from its top folder. The agents, the
API token and the HTTP port come from the settings file (--config); the SIP passwords are
ops/sandbox's development ones, or what its SAMBUNG_SIP_PASSWORD_<ENDPOINT> variables say.

Standard library only, like ops/prompts.py. Exit status: 0 printed, 2 a bad argument or an
unreadable settings file.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "examples" / "sambung.toml"
SANDBOX_ADDR = "127.0.0.1"  # ops/sandbox's default SAMBUNG_SANDBOX_ADDR: loopback only
SIP_PORT = 5060  # Asterisk's UDP transport
TRUNK_PORT = 5070  # calls from this port are the carrier (asterisk/conf/pjsip.conf identify)
# ops/sandbox's development passwords (loopback only), by endpoint, and the variable that
# overrides each there; keep the two in step.
SANDBOX_SIP_PASSWORDS = {
    "agent1001": "a1001",
    "agent1002": "a1002",
    "agent1003": "a1003",
    "supervisor1": "s1001",
}
# A softphone's own SIP port: not Asterisk's 5060, nor the trunks' 5070/5075/5080, which
# pjsip.conf's identify sections would take for a trunk whatever the phone says.
SOFTPHONE_PORT = 5062


@dataclass(frozen=True)
class DemoCall:
    """One SIPp caller on the carrier trunk, printed by ops/demo and run by the test."""

    key: str  # a short name for tests and logs
    title: str
    did: str
    scenario: str  # relative to the checkout
    outcome: str  # what the newcomer should see happen
    extra: tuple[str, ...] = ()
    timeout_seconds: int = 60  # SIPp gives up (and exits non-zero) after this

    def argv(self) -> list[str]:
        return [
            "sipp",
            *("-sf", self.scenario, "-s", self.did, f"{SANDBOX_ADDR}:{SIP_PORT}"),
            *("-i", SANDBOX_ADDR, "-p", str(TRUNK_PORT), "-m", "1"),
            *self.extra,
            *("-timeout", f"{self.timeout_seconds}s", "-timeout_error"),
        ]

    def command(self) -> str:
        return shlex.join(self.argv())


MENU_WALK = DemoCall(
    key="menu_walk",
    title="Walk the collections hotline's menu with keys (DID 1500)",
    did="1500",
    scenario="tests/integration/sipp/demo_menu_walk.xml",
    outcome=(
        "keys 2 (English), 1 (amount due), account 12345678#: the amount is said, then the\n"
        "caller hangs up (about 25 s). Outside office hours (Mon-Fri 08-17, Sat 08-12 WIB)\n"
        "the hotline says so after the language and hangs up. SIPp exits 0 either way;\n"
        "the keys are in PostgreSQL's ivr_steps."
    ),
)
QUEUE_CALL = DemoCall(
    key="queue_call",
    title="Straight into the collections queue (DID 1600)",
    did="1600",
    scenario="tests/integration/sipp/uac_call.xml",
    outcome=(
        "the queue's greeting and music for 15 s, then the caller hangs up. With an agent\n"
        "logged in (below) the agent's phone rings instead and they talk until then."
    ),
    extra=("-d", "15000"),
)
INFO_LINE = DemoCall(
    key="info_line",
    title="The menu-less information line (DID 1400)",
    did="1400",
    scenario="tests/integration/sipp/uac_wait_bye.xml",
    outcome="a greeting, then the line hangs up (SIPp waits up to 30 s for that).",
)
UNKNOWN_NUMBER = DemoCall(
    key="unknown_number",
    title="A number nobody owns (9999)",
    did="9999",
    scenario="tests/integration/sipp/uac_wait_bye.xml",
    outcome="a polite message, then the line hangs up.",
)
CALLS = (MENU_WALK, QUEUE_CALL, INFO_LINE, UNKNOWN_NUMBER)


@dataclass(frozen=True)
class Softphone:
    """An agent's desk phone in the sandbox: the SIP account a softphone registers with."""

    agent_id: str
    name: str
    endpoint: str  # the SIP user name and the pjsip endpoint
    pin: str  # for the feature codes dialled from the phone (*51 log in ...)

    @property
    def password(self) -> str:
        var = f"SAMBUNG_SIP_PASSWORD_{self.endpoint.upper()}"
        return os.environ.get(var) or SANDBOX_SIP_PASSWORDS.get(self.endpoint, "")

    @property
    def login_path(self) -> str:
        return f"/api/v1/agents/{self.agent_id}/login"

    def baresip_account(self) -> str:
        """A line for baresip's ``accounts`` file."""
        return (
            f"<sip:{self.endpoint}@{SANDBOX_ADDR};transport=udp>"
            f";auth_pass={self.password};regint=600"
        )


@dataclass(frozen=True)
class Demo:
    """What the printed text is made of, read from a settings file."""

    token: str
    http_port: int
    phones: tuple[Softphone, ...]

    @property
    def base_url(self) -> str:
        return f"http://{SANDBOX_ADDR}:{self.http_port}"

    def login_command(self, phone: Softphone) -> str:
        return shlex.join(
            [
                "curl",
                *("-X", "POST"),
                *("-H", f"Authorization: Bearer {self.token}"),
                self.base_url + phone.login_path,
            ]
        )


def load_demo(config: Path) -> Demo:
    data: dict[str, Any] = tomllib.loads(config.read_text(encoding="utf-8"))
    http = data.get("http", {})
    tokens = http.get("api_tokens") or ["<token>"]
    phones = tuple(
        Softphone(
            agent_id=str(a["id"]),
            name=str(a.get("name", a["id"])),
            endpoint=str(a["endpoint"]),
            pin=str(a.get("pin", "")),
        )
        for a in data.get("acd", {}).get("agents", [])
        if a.get("endpoint")
    )
    return Demo(token=str(tokens[0]), http_port=int(http.get("port", 8480)), phones=phones)


def text(demo: Demo) -> str:
    lines = ["Test calls (from the checkout's top folder, in another terminal):"]
    for n, call in enumerate(CALLS, 1):
        lines.append(f"  {n}. {call.title}:")
        lines.append(f"       {call.command()}")
        lines += [f"     {line}" for line in call.outcome.splitlines()]
    lines.append(f"  {len(CALLS) + 1}. Be an agent from a softphone on this machine:")
    if not demo.phones:
        lines.append("       (the settings name no agents with a desk phone endpoint)")
        return "\n".join(lines) + "\n"
    first = demo.phones[0]
    lines += [
        f"       SIP server {SANDBOX_ADDR}:{SIP_PORT}, UDP, no proxy or STUN (the sandbox is on"
        " loopback only); accounts:",
        *(
            f"         {p.agent_id:<6} user {p.endpoint}, password {p.password}, PIN {p.pin}"
            for p in demo.phones
        ),
        f"       The phone's own SIP port must not be {SIP_PORT}, 5070, 5075 or 5080 (Asterisk's"
        " and the trunks').",
        "       baresip, for example: in ~/.baresip/config  sip_listen "
        f"{SANDBOX_ADDR}:{SOFTPHONE_PORT}",
        f"                             in ~/.baresip/accounts  {first.baresip_account()}",
        f"       Then log {first.agent_id} in (ready for calls) and call the queue (2. above):",
        f"         {demo.login_command(first)}",
        f"       or dial *51 from the phone and key the PIN ({first.pin}); *59 logs out.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the settings file")
    args = ap.parse_args(argv)
    try:
        demo = load_demo(args.config)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as e:
        print(f"demo_calls: cannot read {args.config}: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(text(demo))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Refuse known default and weak credentials once anything is reachable beyond loopback.

The development defaults (the sandbox's ARI password and AMI secret, the example API token,
PINs that repeat the phone's extension) are published in this repository: anyone who can
reach the engine's API, ARI or AMI could use them. On loopback (the sandbox, the tests) they
stay allowed, because only processes on the same machine can use them there.

``credential_problems`` lists every problem (key and what is wrong, never the value);
``check_credentials`` raises one ConfigError naming them all. ``sambung check-config`` and
``sambung run`` both call it, so a file that passes the check starts.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from sambung.engine.config import Settings
from sambung.engine.errors import ConfigError

# Published in this repository (engine/config.py's defaults, examples/sambung.toml,
# ops/sandbox): never a secret anywhere but on loopback.
KNOWN_DEFAULTS = frozenset(
    {
        "sambung-dev-secret",
        "sambung-dev-ami-secret",
        "example-token-change-me-0123456789",
    }
)
MIN_SECRET_LENGTH = 16
MIN_PIN_DIGITS = 4


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or a host name) is reachable from this machine only.

    The wildcard addresses (0.0.0.0, ::, empty) listen on every interface. A name other than
    localhost may resolve anywhere, so it counts as beyond loopback."""
    h = host.strip().strip("[]").lower()
    if h in ("localhost", "localhost.localdomain") or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def exposed(settings: Settings) -> list[str]:
    """The settings whose address is beyond loopback, as ``key 'host'``."""
    out = []
    if not is_loopback(settings.http.host):
        out.append(f"http.host {settings.http.host!r}")
    ari_host = urlsplit(settings.ari.url).hostname or ""
    if not is_loopback(ari_host):
        out.append(f"ari.url host {ari_host!r}")
    if settings.ami.enabled and not is_loopback(settings.ami.host):
        out.append(f"ami.host {settings.ami.host!r}")
    return out


def _secret_problem(value: str) -> str | None:
    if value in KNOWN_DEFAULTS:
        return "is a published development default"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    return None


def _extension(endpoint: str) -> str:
    """The number in a desk phone's endpoint name (agent1001 -> 1001), or the name itself."""
    digits = re.findall(r"[0-9]+", endpoint)
    return digits[-1] if digits else endpoint


def credential_problems(settings: Settings) -> list[str]:
    """Every weak or default credential, as ``key: what is wrong``; empty when on loopback."""
    if not exposed(settings):
        return []
    problems = []
    ari_password = settings.ari.password.get_secret_value()
    if (p := _secret_problem(ari_password)) is not None:
        problems.append(f"ari.password: {p}")
    if settings.ami.enabled:
        ami_secret = settings.ami.secret.get_secret_value()
        if (p := _secret_problem(ami_secret)) is not None:
            problems.append(f"ami.secret: {p}")
        if ami_secret == ari_password:
            # One leaked secret must not open both: AMI can originate and redirect too.
            problems.append("ami.secret: is the same as ari.password; use a different secret")
    for i, t in enumerate(settings.http.api_tokens):
        if (p := _secret_problem(t.get_secret_value())) is not None:
            problems.append(f"http.api_tokens[{i}]: {p}")
    for i, rt in enumerate(settings.http.role_tokens):
        if (p := _secret_problem(rt.token.get_secret_value())) is not None:
            problems.append(f"http.role_tokens[{i}].token ({rt.name}): {p}")
    for i, a in enumerate(settings.acd.agents):
        pin = a.pin.get_secret_value()
        if len(pin) < MIN_PIN_DIGITS:
            problems.append(
                f"acd.agents[{i}].pin ({a.id}): is shorter than {MIN_PIN_DIGITS} digits"
            )
        if pin in (_extension(a.endpoint), a.endpoint, _extension(a.id)):
            problems.append(
                f"acd.agents[{i}].pin ({a.id}): is the agent's extension; anyone can guess it"
            )
    return problems


def check_credentials(settings: Settings) -> None:
    """Raise a ConfigError listing every weak or default credential, if any is reachable."""
    problems = credential_problems(settings)
    if not problems:
        return
    source = str(settings.source) if settings.source is not None else "(defaults)"
    keys = ", ".join(p.split(":", 1)[0] for p in problems)
    reachable = ", ".join(exposed(settings))
    expected = (
        f"strong, non-default credentials, because {reachable} is reachable beyond loopback"
        " (set them through the environment: SAMBUNG_ARI__PASSWORD, SAMBUNG_AMI__SECRET,"
        " SAMBUNG_API_TOKEN):" + "".join(f"\n  - {p}" for p in problems)
    )
    raise ConfigError(source, keys, expected)

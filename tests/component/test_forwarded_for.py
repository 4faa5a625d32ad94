"""X-Forwarded-For through the engine's HTTP app: the login limits and the audit take the
client's address from it only when the peer is a configured proxy."""

from __future__ import annotations

from pathlib import Path

from sambung.auth.ratelimit import Limits
from tests.component.test_auth_http import PASSWORD, Stack, stack

PER_ADDRESS = 2


async def fail_login(s: Stack, forwarded: str) -> int:
    r = await s.client.post(
        "/api/v1/auth/login",
        json={"username": "siti", "password": "wrong-password"},
        headers={"X-Forwarded-For": forwarded},
    )
    return r.status


async def login_ips(s: Stack) -> list[str]:
    return [str(a["ip"]) for a in await s.audit() if a["action"] == "auth.login"]


async def test_given_no_trusted_proxy_when_a_client_sends_x_forwarded_for_then_it_is_ignored(
    tmp_path: Path,
) -> None:
    limits = Limits(per_user=100, per_address=PER_ADDRESS, window_seconds=900.0)
    async with stack(tmp_path, limits=limits) as s:
        # A new made-up address each time must not buy a fresh per-address allowance.
        statuses = [await fail_login(s, f"203.0.113.{i}") for i in range(PER_ADDRESS + 1)]
        assert statuses == [401] * PER_ADDRESS + [429]
        assert set(await login_ips(s)) == {"127.0.0.1"}


async def test_given_a_peer_that_is_not_the_proxy_then_its_header_is_ignored(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path, trusted_proxies=["10.9.9.9"]) as s:
        assert await fail_login(s, "203.0.113.7") == 401
        assert await login_ips(s) == ["127.0.0.1"]


async def test_given_the_trusted_proxy_then_the_forwarded_client_counts(tmp_path: Path) -> None:
    limits = Limits(per_user=100, per_address=PER_ADDRESS, window_seconds=900.0)
    async with stack(tmp_path, limits=limits, trusted_proxies=["127.0.0.0/8"]) as s:
        # Each client behind the proxy has its own per-address limit ...
        assert [await fail_login(s, "203.0.113.7") for _ in range(3)] == [401, 401, 429]
        assert await fail_login(s, "spoofed, 198.51.100.4") == 401
        # ... and a header that does not parse counts against the proxy itself.
        assert await fail_login(s, "<garbage>") == 401
        r = await s.client.post(
            "/api/v1/auth/login",
            json={"username": "ayu", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.4"},
        )
        assert r.status == 200
        assert await login_ips(s) == [
            "203.0.113.7",
            "203.0.113.7",
            "203.0.113.7",
            "198.51.100.4",
            "127.0.0.1",
            "198.51.100.4",
        ]

"""Whom X-Forwarded-For is believed from: configured proxies only, right-most untrusted hop."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sambung.auth.proxies import Network, client_address, parse_networks
from sambung.engine.config import load_settings
from sambung.engine.errors import ConfigError

PROXY = parse_networks(["10.0.0.0/24", "fd00::1"])


@pytest.mark.parametrize(
    ("peer", "headers", "trusted", "client"),
    [
        # No proxy configured: the header is the client's own claim and never believed.
        ("198.51.100.9", ["203.0.113.7"], (), "198.51.100.9"),
        # A peer that is not a configured proxy cannot change its address with the header.
        ("198.51.100.9", ["203.0.113.7"], PROXY, "198.51.100.9"),
        # A configured proxy's header is honoured.
        ("10.0.0.2", ["203.0.113.7"], PROXY, "203.0.113.7"),
        # The right-most hop that is not a proxy: the client may have prepended anything.
        ("10.0.0.2", ["1.2.3.4, 203.0.113.7"], PROXY, "203.0.113.7"),
        ("10.0.0.2", ["1.2.3.4, 203.0.113.7, 10.0.0.5"], PROXY, "203.0.113.7"),
        ("10.0.0.2", ["1.2.3.4", "203.0.113.7"], PROXY, "203.0.113.7"),  # two headers
        ("fd00::1", ["2001:db8::7"], PROXY, "2001:db8::7"),
        ("10.0.0.2", ["[2001:db8::7]:4711"], PROXY, "2001:db8::7"),
        ("10.0.0.2", ["203.0.113.7:4711"], PROXY, "203.0.113.7"),
        # Every hop a proxy: the left-most is as far as the chain goes.
        ("10.0.0.2", ["10.0.0.3"], PROXY, "10.0.0.3"),
        # A trusted proxy that sent no header: the proxy itself.
        ("10.0.0.2", [], PROXY, "10.0.0.2"),
        # Malformed values fall back to the peer.
        ("10.0.0.2", ["not-an-address"], PROXY, "10.0.0.2"),
        ("10.0.0.2", ["203.0.113.7, "], PROXY, "10.0.0.2"),
        ("10.0.0.2", ["unknown, 203.0.113.7"], PROXY, "203.0.113.7"),
        ("10.0.0.2", ["203.0.113.7, <script>"], PROXY, "10.0.0.2"),
        ("10.0.0.2", ["9" * 5000], PROXY, "10.0.0.2"),
        (None, ["203.0.113.7"], PROXY, "unknown"),
    ],
)
def test_client_address(
    peer: str | None, headers: list[str], trusted: tuple[Network, ...], client: str
) -> None:
    assert client_address(peer, headers, trusted) == client


@given(st.lists(st.text(max_size=60), max_size=4))
def test_an_untrusted_peer_is_never_replaced_whatever_it_sends(headers: list[str]) -> None:
    assert client_address("198.51.100.9", headers, PROXY) == "198.51.100.9"


@given(st.lists(st.text(max_size=60), max_size=4))
def test_a_trusted_proxy_yields_the_peer_or_an_address(headers: list[str]) -> None:
    import ipaddress

    got = client_address("10.0.0.2", headers, PROXY)
    ipaddress.ip_address(got)  # never a header's raw text


def test_parse_networks_names_a_bad_entry() -> None:
    assert [str(n) for n in parse_networks(["127.0.0.1", "10.1.2.3/8"])] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
    ]
    with pytest.raises(ValueError, match="'nginx'"):
        parse_networks(["nginx"])


def test_a_trusted_proxy_that_is_not_an_address_stops_the_settings(tmp_path: Path) -> None:
    p = tmp_path / "sambung.toml"
    p.write_text('[http]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8", "nginx"]\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(p, env={})
    assert exc.value.key == "http.trusted_proxies"
    assert "trusted_proxies[2] 'nginx'" in exc.value.expected
    p.write_text('[http]\ntrusted_proxies = ["127.0.0.1", "fd00::/8"]\n')
    assert load_settings(p, env={}).http.trusted_proxies == ["127.0.0.1", "fd00::/8"]

"""Which address a request comes from, when a reverse proxy may stand in front.

``X-Forwarded-For`` is written by whoever sends the request, so it is believed only when the
peer that connected is a configured proxy; otherwise a client could pick any address and walk
around the per-address login limits or write a false one into the audit. Behind trusted
proxies the client is the right-most address in the header that is not itself a trusted proxy:
each proxy appends the address it saw, so everything left of that is the client's own claim.
A header that does not parse falls back to the peer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """IP addresses or CIDR blocks; raises ValueError naming the first one that is neither."""
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError as err:
            raise ValueError(f"{v!r} is not an IP address or a CIDR block") from err
    return tuple(out)


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    v = value.strip()
    if v.startswith("[") and "]" in v:  # [2001:db8::1]:443
        v = v[1 : v.index("]")]
    elif v.count(":") == 1:  # 192.0.2.1:443
        v = v.partition(":")[0]
    try:
        addr = ipaddress.ip_address(v)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Sequence[Network]) -> bool:
    return any(addr.version == n.version and addr in n for n in nets)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str:
    """The client's address: the peer, or what trusted proxies say in X-Forwarded-For.

    ``forwarded_for`` holds every X-Forwarded-For header of the request, in order."""
    if peer is None:
        return "unknown"
    peer_addr = _address(peer)
    if not trusted or peer_addr is None or not _trusted(peer_addr, trusted):
        return peer
    hops = [h for header in forwarded_for for h in header.split(",")]
    if not hops:
        return peer
    for hop in reversed(hops):
        addr = _address(hop)
        if addr is None:
            # A value a proxy would not write: the chain cannot be read, trust nothing in it.
            return peer
        if not _trusted(addr, trusted):
            return str(addr)
    # Every hop is a proxy of ours: the left-most is as far as the chain goes.
    return str(_address(hops[0]))

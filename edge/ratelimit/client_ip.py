"""The client's IP address, believing X-Forwarded-For only from trusted proxies.

A client can write any X-Forwarded-For it likes; only entries appended by our
own proxies are facts. So the header is read right to left, skipping trusted
proxies, and the first untrusted address is the client. When the peer itself
is not a trusted proxy the header is ignored entirely.
"""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Iterable, Mapping, Sequence

Network = IPv4Network | IPv6Network


def _parse(text: str) -> IPv4Address | IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1:text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        addr = ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: IPv4Address | IPv6Address, networks: Sequence[Network]) -> bool:
    return any(addr.version == n.version and addr in n for n in networks)


def _forwarded_for(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    values = [v for k, v in items if k.lower() == "x-forwarded-for"]
    return [part for value in values for part in value.split(",")]


def client_ip(peer_ip: str, headers: Mapping[str, str] | Iterable[tuple[str, str]],
              trusted_proxies: Sequence[Network]) -> str:
    """The address to key per-IP limits on. `headers` may be a mapping or (name, value) pairs."""
    peer = _parse(peer_ip)
    if peer is None:
        return peer_ip
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return str(peer)
    client = peer
    for hop in reversed(_forwarded_for(headers)):
        addr = _parse(hop)
        if addr is None:  # garbage in the chain: stop at the last address we could vouch for
            break
        client = addr
        if not _trusted(addr, trusted_proxies):
            break
    return str(client)


def forwarded_chain(peer_ip: str, headers: Mapping[str, str] | Iterable[tuple[str, str]],
                    trusted_proxies: Sequence[Network]) -> tuple[list[str], bool]:
    """The X-Forwarded-For chain the gateway can vouch for, and whether the peer is a trusted proxy.

    The same right-to-left walk as `client_ip`: the chain is that client address, the
    trusted proxies after it, then the peer; a client's own entries beyond what
    `trusted_proxies` vouches for never appear. Its first element is `client_ip(...)`.
    An unparsable peer gives ([], False)."""
    peer = _parse(peer_ip)
    if peer is None:
        return [], False
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return [str(peer)], False
    hops: list[str] = []
    for hop in reversed(_forwarded_for(headers)):
        addr = _parse(hop)
        if addr is None:
            break
        hops.append(str(addr))
        if not _trusted(addr, trusted_proxies):
            break
    hops.reverse()
    hops.append(str(peer))
    return hops, True

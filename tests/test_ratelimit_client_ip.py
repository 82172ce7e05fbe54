"""Client IP from X-Forwarded-For, believed only as far as our own proxies go."""
from __future__ import annotations

import pytest

from edge.ratelimit import RateLimitConfig, client_ip

TRUSTED = RateLimitConfig(trusted_proxies=["10.0.0.0/8", "fd00::/8", "192.168.1.1"]).trusted_proxies


@pytest.mark.parametrize("peer, xff, expected", [
    # untrusted peer: the header is the client's own claim and is ignored
    ("203.0.113.5", "1.2.3.4", "203.0.113.5"),
    ("203.0.113.5", None, "203.0.113.5"),
    # trusted peer: the rightmost address that is not one of our proxies
    ("10.0.0.1", "198.51.100.7", "198.51.100.7"),
    ("10.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),          # the spoofed left entry is not believed
    ("10.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.1.1", "198.51.100.7"),  # chain of our proxies skipped
    ("192.168.1.1", "198.51.100.7", "198.51.100.7"),                 # single trusted host
    ("192.168.1.2", "198.51.100.7", "192.168.1.2"),                  # its neighbour is not trusted
    ("10.0.0.1", "10.2.2.2, 10.3.3.3", "10.2.2.2"),                  # all trusted: the leftmost
    ("10.0.0.1", None, "10.0.0.1"),
    ("10.0.0.1", "", "10.0.0.1"),
    ("10.0.0.1", "garbage, 198.51.100.7", "198.51.100.7"),
    ("10.0.0.1", "198.51.100.7, garbage", "10.0.0.1"),               # unparsable hop: stop at what we vouch for
    ("10.0.0.1", "198.51.100.7:4711", "198.51.100.7"),
    ("10.0.0.1", "[2001:db8::1]:443", "2001:db8::1"),
    ("fd00::1", "2001:db8::2", "2001:db8::2"),
    ("::ffff:10.0.0.1", "198.51.100.9", "198.51.100.9"),             # v4-mapped peer is the v4 proxy
])
def test_client_ip(peer, xff, expected):
    headers = {} if xff is None else {"X-Forwarded-For": xff}
    assert client_ip(peer, headers, TRUSTED) == expected


def test_repeated_headers_are_one_list():
    headers = [("x-forwarded-for", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.7, 10.0.0.9")]
    assert client_ip("10.0.0.1", headers, TRUSTED) == "198.51.100.7"


def test_no_trusted_proxies_means_the_peer():
    assert client_ip("10.0.0.1", {"x-forwarded-for": "198.51.100.7"}, []) == "10.0.0.1"

"""Tables for CORS origins: how config entries are spelled, and which request
Origins each policy allows (hostile look-alikes included). Pure, milliseconds."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.cors import AllowedOrigins, CorsConfig, parse_origin

# (config entry, canonical spelling)
CANONICAL = [
    ("https://app.example.com", "https://app.example.com"),
    ("HTTPS://App.Example.COM", "https://app.example.com"),
    ("https://app.example.com:443", "https://app.example.com"),  # the default port is never sent
    ("http://app.example.com:80", "http://app.example.com"),
    ("http://app.example.com:443", "http://app.example.com:443"),  # not http's default
    ("https://app.example.com:8443", "https://app.example.com:8443"),
    ("https://app.example.com:08443", "https://app.example.com:8443"),
    ("http://localhost:3000", "http://localhost:3000"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://[0:0:0:0:0:0:0:1]:8080", "http://[::1]:8080"),
    ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ("https://*.example.com", "https://*.example.com"),
    ("https://*.Example.com:443", "https://*.example.com"),
    ("https://*.example.com:8443", "https://*.example.com:8443"),
    ("  https://app.example.com  ", "https://app.example.com"),
    ("chrome-extension://abcdefghijklmnop", "chrome-extension://abcdefghijklmnop"),
    ("null", "null"),
    ("NULL", "null"),
    ("*", "*"),
]

# (config entry, words the refusal must contain)
REFUSED = [
    ("app.example.com", "no scheme"),
    ("//app.example.com", "no scheme"),
    ("https://", "no host"),
    ("https://app.example.com/", "a path"),
    ("https://app.example.com/app", "a path"),
    ("https://app.example.com?x=1", "a query"),
    ("https://app.example.com#top", "a fragment"),
    ("https://user@app.example.com", "user information"),
    ("https://app.example.com:", "port must be digits"),
    ("https://app.example.com:http", "port must be digits"),
    ("https://app.example.com:0", "out of range"),
    ("https://app.example.com:70000", "out of range"),
    ("https://bücher.example", "punycode"),
    ("https://app example.com", "punycode"),
    ("https://*.com", "top-level domain"),
    ("https://*example.com", "whole first label"),
    ("https://app.*.example.com", "whole first label"),
    ("https://*.*.example.com", "whole first label"),
    ("https://*", "whole first label"),
    ("https://*.10.0.0.1", "not an IP address"),
    ("https://*.[::1]", "not an IP address"),
    ("http://[::1", "closing"),
    ("http://[nothost]:80", "not an IPv6 address"),
    ("http://1.2.3", "IPv4"),
    ("http://256.1.1.1", "IPv4"),
    ("https://-bad-.example.com", "not a host name"),
    ("https://app..example.com", "not a host name"),
    ("https://app.example.com.", "not a host name"),
]


@pytest.mark.parametrize(("entry", "canonical"), CANONICAL)
def test_config_origins_take_the_browsers_spelling(entry, canonical):
    assert parse_origin(entry) == canonical


@pytest.mark.parametrize(("entry", "words"), REFUSED)
def test_config_origins_that_are_no_origin_are_refused(entry, words):
    with pytest.raises(ValueError, match=words):
        parse_origin(entry)


POLICY = AllowedOrigins([
    "https://app.example.com", "http://localhost:3000", "https://*.example.com", "https://*.example.org:8443",
])

# (request Origin, allowed by POLICY)
MATRIX = [
    ("https://app.example.com", True),
    ("http://localhost:3000", True),
    ("https://x.example.com", True),
    ("https://a.b.example.com", True),
    ("https://x-y_z.example.com", True),
    ("https://x.example.org:8443", True),
    # Scheme and port are part of the origin.
    ("http://app.example.com", False),
    ("http://x.example.com", False),
    ("https://app.example.com:443", False),  # no browser sends a default port
    ("https://x.example.com:8443", False),
    ("https://x.example.org", False),
    ("https://x.example.org:9443", False),
    ("http://localhost:3001", False),
    ("http://localhost", False),
    ("https://localhost:3000", False),
    # Look-alikes of the pattern.
    ("https://example.com", False),  # the bare domain is not a subdomain of itself
    ("https://.example.com", False),
    ("https://x..example.com", False),
    ("https://evil.com/.example.com", False),
    ("https://evil.com?.example.com", False),
    ("https://evil.com#.example.com", False),
    ("https://evil.com\\.example.com", False),
    ("https://user@x.example.com", False),
    ("https://x.example.com.evil.com", False),
    ("https://xexample.com", False),
    ("https://x.example.com.", False),
    ("https://x.example.comm", False),
    ("https://x.example.co", False),
    ("https://evil.com:1@x.example.com", False),
    ("https://x.example.com/", False),
    ("https://x.example.com\n", False),
    ("https://x.example.com, https://evil.com", False),  # two Origin headers joined
    ("https://evil.com, https://app.example.com", False),
    ("https://X.example.com", False),  # not a browser's spelling
    ("HTTPS://app.example.com", False),
    ("https://app.example.com/", False),
    ("wss://x.example.com", False),
    # Look-alikes of the exact origins.
    ("https://app.example.com.evil.com", False),
    ("https://app.example.com:3000", False),
    ("http://localhost:3000.evil.com", False),
    ("null", False),
    ("", False),
    ("*", False),
    ("https://" + "a." * 1100 + "example.com", False),  # longer than any real origin
]


@pytest.mark.parametrize(("origin", "allowed"), MATRIX)
def test_origin_matrix(origin, allowed):
    assert POLICY.allows(origin) is allowed


def test_wildcard_allows_every_origin_and_null_only_when_listed():
    anyone = AllowedOrigins(["*"])
    assert anyone.any and anyone.allows("https://evil.com") and anyone.allows("null")
    listed = AllowedOrigins(["null", "https://app.example.com"])
    assert listed.allows("null") and listed.allows("https://app.example.com")
    assert not POLICY.allows("null")
    assert not AllowedOrigins([]).allows("https://app.example.com") and not AllowedOrigins([])


def test_deep_wildcard_input_is_cheap():
    """A hostile Origin of many labels ending just short of the suffix: refused, and the
    anchored regex never re-scans more than a label at a time."""
    origin = "https://" + "a." * 1000 + "example.co"
    assert not POLICY.allows(origin)
    assert POLICY.allows("https://" + "a." * 1000 + "example.com")


def _config(**cors):
    return CorsConfig.model_validate(cors)


def test_wildcard_origin_never_with_credentials():
    with pytest.raises(ValidationError, match=r"cors: allow_origins '\*' with allow_credentials"):
        _config(allow_origins=["*"], allow_credentials=True)
    # ... whichever level set which half.
    with pytest.raises(ValidationError, match=r"cors.routes.0: allow_origins '\*'"):
        _config(allow_credentials=True, allow_origins=["https://app.example.com"],
                routes=[{"match": "GET /v1/public/*", "allow_origins": ["*"]}])
    with pytest.raises(ValidationError, match=r"cors.routes.1: allow_origins '\*'"):
        _config(allow_origins=["*"], routes=[{"match": "GET /v1/a", "allow_credentials": False},
                                             {"match": "GET /v1/b", "allow_credentials": True}])
    ok = _config(allow_credentials=True, allow_origins=["https://app.example.com"],
                 routes=[{"match": "GET /v1/public/*", "allow_origins": ["*"], "allow_credentials": False}])
    assert ok.effective(ok.routes[0]).allow_origins == ["*"]


def test_null_origin_never_with_credentials():
    with pytest.raises(ValidationError, match="'null' origin with allow_credentials"):
        _config(allow_origins=["null"], allow_credentials=True)
    assert _config(allow_origins=["null"]).allow_origins == ["null"]


@pytest.mark.parametrize(("cors", "words"), [
    ({"allow_origins": ["*", "https://app.example.com"]}, "stands alone"),
    ({"allow_methods": ["GET", "*"]}, "stands alone"),
    ({"allow_methods": ["GE T"]}, "not an HTTP method"),
    ({"allow_headers": ["x-ok", "bad header"]}, "not a header name"),
    ({"expose_headers": ["*"]}, "list the headers"),
    ({"expose_headers": ["grpc-*-x"]}, "prefix"),
    ({"max_age": "25h"}, "less than or equal"),
    ({"max_age": -1}, "negative"),
    ({"routes": [{"match": "GET /v1/*", "allow_origin": ["https://a.example.com"]}]}, "Extra inputs"),
    ({"routes": [{"allow_origins": ["https://a.example.com"]}]}, "match"),
    ({"routes": [{"match": "GET v1", "allow_origins": []}]}, "VERB /template"),
])
def test_config_mistakes_are_named(cors, words):
    with pytest.raises(ValidationError, match=words):
        _config(**cors)


def test_route_entries_inherit_what_they_leave_out():
    config = _config(allow_origins=["https://app.example.com"], allow_methods=["get", "post"], max_age="1h",
                     allow_credentials=True,
                     routes=[{"match": "edgedemo.library.v1.LibraryService/*", "allow_methods": ["DELETE"]},
                             {"match": "GET /v1/open", "allow_origins": []}])
    top, first, second = config.effective(), config.effective(config.routes[0]), config.effective(config.routes[1])
    assert top.allow_methods == ["GET", "POST"] and top.max_age == 3600 and top.allow_credentials
    assert first.allow_methods == ["DELETE"] and first.allow_origins == ["https://app.example.com"]
    assert first.max_age == 3600 and first.allow_credentials
    assert second.allow_origins == [] and second.allow_methods == ["GET", "POST"]
    assert "grpc-metadata-*" in top.expose_headers and "idempotent-replayed" in top.expose_headers

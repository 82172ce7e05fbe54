"""The documented example config must stay a valid config."""
from pathlib import Path

from edge.config import load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "edge.example.yaml"


def test_example_config_validates():
    config = load_config(EXAMPLE)
    assert [b.name for b in config.backends] == ["library", "users"]
    assert config.auth is not None and config.auth.issuers[0].expected_typ == "at+jwt"
    assert config.auth.issuers[1].discovery and config.auth.issuers[1].forward_token
    assert config.auth.api_key_store is not None and config.auth.api_keys[0].tier == "premium"
    assert config.store.backend == "redis"
    assert {p.name for p in config.rate_limits.policies} == {"per-user", "per-user-burst", "per-ip", "writes"}
    assert config.cors is not None and config.cors.allow_credentials
    assert config.cors.effective(config.cors.routes[0]).allow_origins == ["*"]
    assert config.websocket is not None and config.websocket.max_message_bytes == 64 * 1024


def test_example_config_shows_the_mobile_sections():
    config = load_config(EXAMPLE)
    assert config.caching is not None and config.caching.routes[0].cache_control == "max-age=60"
    assert config.partial_responses.enabled and config.partial_responses.read_mask
    assert [p.id for p in config.compose[0].parts] == ["shelf", "books", "me"]
    assert config.compose[0].depends("books") == ("shelf",)

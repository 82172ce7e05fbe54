"""The one table of transcoding options: profiles built from its rows, the config
turned into it (top level, per backend), and a setting seen through a real gateway."""
from __future__ import annotations

import dataclasses

import httpx
import pytest

from edge.config import GatewayConfig
from tests.support.gateway import gateway_config, running_gateway
from transcoding.options import PROFILES, QueryBodyFields, TranscodingOptions, UnknownFields, option_fields, profile


def test_every_profile_sets_every_row_from_the_table() -> None:
    assert set(PROFILES) == {"edge", "envoy", "grpc-gateway"}
    assert PROFILES["edge"] == TranscodingOptions()
    for name, options in PROFILES.items():
        for row in option_fields():
            expected = row.default if name == "edge" else row.metadata[name]
            assert getattr(options, row.name) == expected, (name, row.name)
            assert row.metadata["doc"], row.name


def test_options_are_frozen_and_hashable() -> None:
    options = TranscodingOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.use_proto_names = True  # type: ignore[misc]
    assert len({options, TranscodingOptions(), options.replace(use_proto_names=True)}) == 2


@pytest.mark.parametrize(
    "overrides, field, expected",
    [
        ({"unknown_body_fields": "reject"}, "unknown_body_fields", UnknownFields.REJECT),
        ({"forward_headers": ["X-Tenant", "x-trace"]}, "forward_headers", frozenset({"x-tenant", "x-trace"})),
        ({"use_proto_names": True}, "use_proto_names", True),
        ({"use_proto_names": None}, "use_proto_names", False),  # None keeps the profile's value
        ({"query_body_fields": "body_wins"}, "query_body_fields", QueryBodyFields.BODY_WINS),
        ({"unknown_query_parameters": "ignore"}, "unknown_query_parameters", UnknownFields.IGNORE),
        ({"ignored_query_parameters": ["key", "Key"]}, "ignored_query_parameters", frozenset({"key", "Key"})),
    ],
)
def test_profile_with_overrides(overrides, field, expected) -> None:
    assert getattr(profile("edge", overrides), field) == expected


def test_unknown_profile_and_option_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown transcoding profile 'nginx'"):
        profile("nginx")
    with pytest.raises(TypeError, match="unknown transcoding option 'colour'"):
        TranscodingOptions().replace(colour=1)


def _config(**transcoding) -> dict:
    backends = transcoding.pop("backends", [{"name": "a", "target": "a:1"}, {"name": "b", "target": "b:1"}])
    return {"backends": backends, "transcoding": transcoding}


def test_config_top_level_then_backend_profile_then_backend_overrides() -> None:
    config = GatewayConfig.model_validate(
        _config(
            unknown_body_fields="reject",
            forward_headers=["X-Tenant"],
            backends=[
                {"name": "a", "target": "a:1", "transcoding": {"profile": "grpc-gateway", "use_proto_names": True}},
                {"name": "b", "target": "b:1"},
                {"name": "c", "target": "c:1", "transcoding": {"unknown_body_fields": "ignore"}},
            ],
        )
    )
    top = config.transcoding_options()
    assert top.unknown_body_fields is UnknownFields.REJECT and top.forward_headers == {"x-tenant"}
    a = config.transcoding_options("a")
    # grpc-gateway's own value, the top-level override, and the backend's override
    assert a.response_metadata is True and a.unknown_body_fields is UnknownFields.REJECT and a.use_proto_names
    assert config.transcoding_options("b") == top
    assert config.transcoding_options("c").unknown_body_fields is UnknownFields.IGNORE


@pytest.mark.parametrize(
    "raw, message",
    [
        (_config(profile="nginx"), "unknown profile 'nginx'"),
        (_config(unknown_body_fields="drop"), "transcoding.unknown_body_fields"),
        (_config(emit_unpopulated="sometimes"), "transcoding.emit_unpopulated"),
        (_config(backends=[{"name": "a", "target": "a:1", "transcoding": {"profile": "x"}}]), "unknown profile 'x'"),
        (_config(backends=[{"name": "a", "target": "a:1", "transcoding": {"max_body_bytes": 1}}]), "max_body_bytes"),
    ],
)
def test_bad_transcoding_config_names_the_key(raw, message) -> None:
    with pytest.raises(Exception, match=message):
        GatewayConfig.model_validate(raw)


def test_config_keys_come_from_the_table() -> None:
    keys = set(GatewayConfig.model_fields["transcoding"].annotation.model_fields)
    assert {row.name for row in option_fields()} | {"profile"} <= keys


# ---------------------------------------------------------------- through a real gateway

UNKNOWN = {"theme": "new-app", "shelfColour": "teal", "nested": {"x": 1}}


def test_unknown_body_fields_are_dropped_by_default_and_refused_when_set(demo_backend) -> None:
    backend = {"name": "demo", "target": demo_backend.target}
    with running_gateway(gateway_config([backend])) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        r = client.post("/v1/shelves", json=UNKNOWN)
        assert r.status_code == 200, r.text
        assert r.json()["theme"] == "new-app"
    strict = gateway_config([{**backend, "transcoding": {"unknown_body_fields": "reject"}}])
    with running_gateway(strict) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        calls = demo_backend.recorder.calls["CreateShelf"]
        r = client.post("/v1/shelves", json=UNKNOWN)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == 3 and "shelfColour" in r.json()["message"]
        assert demo_backend.recorder.calls["CreateShelf"] == calls  # refused before the backend


def test_the_readme_table_is_the_table() -> None:
    from pathlib import Path

    from transcoding.options import markdown_table

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("<!-- options-table:start -->\n", 1)[1].split("<!-- options-table:end -->", 1)[0]
    assert block == markdown_table(), "README's options table is stale: python -m transcoding.options prints it"

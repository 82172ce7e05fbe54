"""Static Envoy configs for scripts/bench: the bare transcoder, and Envoy as an edge.

`envoy_config`: the gRPC-JSON transcoder alone in front of the demo backend, the
reference transcoder. Same backend, same descriptor set
(protos/edgedemo/descriptors.binpb), same JSON options as the gateway's defaults
(lowerCamelCase, no unpopulated fields, compact).

`envoy_edge_config`: the same transcoder behind what the gateway's "all on" rows do,
so the two can be compared like for like (issue 16): TLS termination with the same
certificate, `jwt_authn` against the same JWKS file (issuer, audience, `sub` and
`scope` copied into x-user-id / x-auth-scopes as the gateway's identity_metadata
does), `local_ratelimit` with a bucket per user and a bucket per client address
(dynamic descriptors, never empty, like the gateway's two policies) and its
RateLimit headers, and a file access log.
"""
from __future__ import annotations

import json
from pathlib import Path

SERVICES = ["edgedemo.library.v1.LibraryService", "edgedemo.users.v1.UserService"]


def envoy_config(listen_port: int, backend_port: int, descriptors: Path) -> dict:
    transcoder = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
        "proto_descriptor": str(descriptors),
        "services": SERVICES,
        "convert_grpc_status": True,
        "print_options": {
            "add_whitespace": False,
            "always_print_primitive_fields": False,
            "always_print_enums_as_ints": False,
            "preserve_proto_field_names": False,
        },
    }
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bench",
        "codec_type": "AUTO",
        "route_config": {
            "virtual_hosts": [{
                "name": "demo",
                "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "demo", "timeout": "10s"}}],
            }],
        },
        "http_filters": [
            {"name": "envoy.filters.http.grpc_json_transcoder", "typed_config": transcoder},
            {"name": "envoy.filters.http.router",
             "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    return {
        "static_resources": {
            "listeners": [{
                "name": "http",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": manager}]}],
            }],
            "clusters": [{
                "name": "demo",
                "type": "STATIC",
                "connect_timeout": "1s",
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}},
                    },
                },
                "load_assignment": {
                    "cluster_name": "demo",
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                        "address": "127.0.0.1", "port_value": backend_port}}}}]}],
                },
            }],
        },
    }


def envoy_edge_config(listen_port: int, backend_port: int, descriptors: Path, *, cert: Path, key: Path, jwks: Path,
                      issuer: str, audience: str, access_log: Path, user_bucket: tuple[int, int] = (1_000_000_000, 1),
                      ip_bucket: tuple[int, int] = (1_000_000_000, 1)) -> dict:
    """`envoy_config` with TLS, JWT, two local rate limits and a file access log in front.

    What it does not do that the gateway does: `typ: at+jwt` and the per-method scope
    policies (jwt_authn checks neither; RBAC on payload metadata would be one more filter).
    `user_bucket`, `ip_bucket`: (tokens, refill interval in seconds) of each user's and each
    client address's bucket; the benchmark's never empty.
    """
    config = envoy_config(listen_port, backend_port, descriptors)
    chain = config["static_resources"]["listeners"][0]["filter_chains"][0]
    chain["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {
                "alpn_protocols": ["h2", "http/1.1"],
                "tls_certificates": [{"certificate_chain": {"filename": str(cert)},
                                      "private_key": {"filename": str(key)}}],
            },
        },
    }
    manager = chain["filters"][0]["typed_config"]
    manager["access_log"] = [{
        "name": "envoy.access_loggers.file",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                         "path": str(access_log)},
    }]

    def tokens(bucket: tuple[int, int]) -> dict:
        return {"max_tokens": bucket[0], "tokens_per_fill": bucket[0], "fill_interval": f"{bucket[1]}s"}

    always = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
    jwt = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"edge": {
            "issuer": issuer,
            "audiences": [audience],
            "local_jwks": {"filename": str(jwks)},
            "claim_to_headers": [{"header_name": "x-user-id", "claim_name": "sub"},
                                 {"header_name": "x-auth-scopes", "claim_name": "scope"}],
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "edge"}}],
    }
    limits = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": "edge_limits",
        "token_bucket": tokens(max(user_bucket, ip_bucket)),  # requests no descriptor matched (none here)
        "filter_enabled": {"runtime_key": "edge_limits_enabled", **always},
        "filter_enforced": {"runtime_key": "edge_limits_enforced", **always},
        # An entry without a value is a wildcard: one bucket per distinct user / client address.
        "descriptors": [{"entries": [{"key": "user"}], "token_bucket": tokens(user_bucket)},
                        {"entries": [{"key": "remote_address"}], "token_bucket": tokens(ip_bucket)}],
        "max_dynamic_descriptors": 100_000,
        "rate_limits": [{"actions": [{"request_headers": {"header_name": "x-user-id", "descriptor_key": "user"}}]},
                        {"actions": [{"remote_address": {}}]}],
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
    }
    manager["http_filters"][0:0] = [
        {"name": "envoy.filters.http.jwt_authn", "typed_config": jwt},
        {"name": "envoy.filters.http.local_ratelimit", "typed_config": limits},
    ]
    return config


def write_envoy_config(path: Path, listen_port: int, backend_port: int, descriptors: Path, **edge: object) -> Path:
    """The bare transcoder's config; with `edge` (envoy_edge_config's keywords), Envoy as an edge."""
    config = envoy_edge_config(listen_port, backend_port, descriptors, **edge) if edge \
        else envoy_config(listen_port, backend_port, descriptors)
    path.write_text(json.dumps(config, indent=1))
    return path

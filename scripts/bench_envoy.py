"""A minimal static Envoy config: the gRPC-JSON transcoder in front of the demo backend.

Used by scripts/bench as the reference transcoder. Same backend, same
descriptor set (protos/edgedemo/descriptors.binpb), same JSON options as the
gateway's defaults (lowerCamelCase, no unpopulated fields, compact).
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


def write_envoy_config(path: Path, listen_port: int, backend_port: int, descriptors: Path) -> Path:
    path.write_text(json.dumps(envoy_config(listen_port, backend_port, descriptors), indent=1))
    return path

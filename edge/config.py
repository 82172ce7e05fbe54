"""The gateway's one YAML config file, validated with pydantic.

Every section is optional except `backends`; each feature owns its own section
(`listen`, `admin`, `transcoding`, `auth`, `rate_limits`, `idempotency`,
`store`, `batch`, ...) so adding a feature never renames existing keys.
Unknown keys are errors: a typo must not silently disable a policy.
"""
from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from transcoding.options import DEFAULT_PROFILE, PROFILES, TranscodingOptions, option_fields, profile

from .auth.config import AuthConfig
from .batch_config import BatchConfig
from .compose_config import ComposeRoute
from .compression import CompressionConfig
from .cors.config import CorsConfig
from .conditional import CachingConfig
from .partial import PartialResponsesConfig
from .observability.accesslog import AccessLogConfig
from .observability.tracing import TracingConfig
from .idempotency.config import IdempotencyConfig
from .ratelimit.config import RateLimitConfig
from .state.config import StateConfig
from .websocket_config import WebSocketConfig

from .units import ByteSize, Duration, parse_duration, parse_size  # noqa: F401  (re-exported)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackendTls(Section):
    """TLS from the gateway to a backend; client cert + key make it mTLS."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = Field(None, description="overrides the name checked against the backend's certificate")

    @model_validator(mode="after")
    def _pair(self) -> "BackendTls":
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self


class Backend(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    target: str = Field(description="host:port (or any gRPC target URI)")
    descriptors: str = Field("reflection", description="'reflection' or a path to a descriptor set file")
    services: list[str] | None = Field(None, description="allow-list of full service names; default: all")
    tls: BackendTls | None = None
    timeout: Duration = Field(10.0, gt=0, description="default deadline for calls")
    max_timeout: Duration = Field(60.0, gt=0, description="upper bound for client-requested deadlines")
    required: bool = Field(True, description="readiness waits for this backend's descriptors")
    transcoding: BackendTranscoding | None = Field(  # type: ignore[valid-type]
        None, description="this backend's profile and options, over the top-level transcoding section"
    )

    @model_validator(mode="after")
    def _timeouts(self) -> "Backend":
        if self.timeout > self.max_timeout:
            raise ValueError("timeout cannot exceed max_timeout")
        return self


class Http2(Section):
    """HTTP/2 on the public listener (edge/http2/): `h2` by ALPN on TLS, `h2c` by prior
    knowledge on plaintext. The bounds hold what one hostile connection can make the gateway keep."""

    enabled: bool = True
    h2c: bool = Field(True, description="plaintext listener: serve HTTP/2 to clients that open with its preface")
    max_concurrent_streams: int = Field(100, ge=1, le=10_000, description="per connection, reset streams still running included")
    stream_window: ByteSize = Field(256 * 1024, ge=65535, le=2**31 - 1, description="request body bytes one stream may have buffered")
    connection_window: ByteSize = Field(1024 * 1024, ge=65535, le=2**31 - 1, description="request body bytes one connection may have buffered")
    max_frame_size: ByteSize = Field(16384, ge=16384, le=16_777_215)
    max_resets: int = Field(200, ge=1, description="client stream resets (and refused streams) per 10s before GOAWAY")
    max_control_frames: int = Field(1000, ge=10, description="PING, SETTINGS, PRIORITY and unknown frames per 10s before GOAWAY")
    ping_interval: Duration | None = Field(30.0, gt=0, description="while streams are open and the peer is silent, PING it this often; null: never")
    ping_timeout: Duration = Field(15.0, gt=0, description="a PING unanswered this long closes the connection")
    stalled_stream_timeout: Duration = Field(30.0, gt=0, description="a response the client's window keeps from moving this long is reset")


class Listen(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    plaintext: bool = Field(False, description="serve plain HTTP; must be said explicitly")
    tls: Any | None = None  # edge.tls.TlsConfig, validated in _tls below
    # What one connection may send before the gateway answers (edge/connection_limits.py).
    max_header_bytes: ByteSize = Field(64 * 1024, ge=1024, description="request line + headers; more is a 431")
    max_url_bytes: ByteSize = Field(8 * 1024, ge=256, description="the request target; longer is a 414")
    header_timeout: Duration = Field(10.0, gt=0, description="a request head must arrive whole within this (else 408)")
    body_timeout: Duration = Field(60.0, gt=0, description="a request body must arrive whole within this after its head")
    # 75s: a phone pausing between screens keeps its connection (and TLS session), and it outlives the
    # 60s idle timeout of common load balancers in front, so they close first (no request races a close).
    keep_alive_timeout: Duration = Field(75.0, gt=0, description="an idle connection (HTTP/1.1 or HTTP/2) is closed after this")
    http2: Http2 = Field(default_factory=Http2)

    @field_validator("tls", mode="before")
    @classmethod
    def _tls(cls, value: Any) -> Any:
        if value is None:
            return None
        from .tls import TlsConfig

        return value if isinstance(value, TlsConfig) else TlsConfig.model_validate(value)

    @model_validator(mode="after")
    def _one_mode(self) -> "Listen":
        if self.tls is None and not self.plaintext:
            raise ValueError("set listen.tls (certificate and key) or say listen.plaintext: true explicitly")
        if self.tls is not None and self.plaintext:
            raise ValueError("listen.tls and listen.plaintext: true are exclusive")
        if self.max_url_bytes > self.max_header_bytes:
            raise ValueError("max_url_bytes cannot exceed max_header_bytes (the URL is part of the head)")
        return self


class Admin(Section):
    """The admin listener (reload, metrics): off the public network by default."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9901, ge=0, le=65535)


def _option_overrides(*, per_backend_only: bool) -> dict[str, Any]:
    """Config keys for the fields of transcoding/options.py's table, each optional:
    unset keeps the profile's value. Built from the table so the two never drift."""
    hints = typing.get_type_hints(TranscodingOptions)
    keys: dict[str, Any] = {}
    for f in option_fields():
        if per_backend_only and not f.metadata["per_backend"]:
            continue
        keys[f.name] = (hints[f.name] | None, Field(None, description=f.metadata["doc"]))
    return keys


class _ProfileChoice(Section):
    profile: str | None = Field(None, description=f"one of {', '.join(PROFILES)}; the defaults every option starts from")

    @field_validator("profile")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in PROFILES:
            raise ValueError(f"unknown profile {value!r}; known: {', '.join(PROFILES)}")
        return value

    def overrides(self) -> dict[str, Any]:
        """The option keys this section sets (profile excluded)."""
        return {k: v for k, v in self.model_dump(exclude={"profile"}).items() if v is not None and k in _OPTION_NAMES}


_OPTION_NAMES = frozenset(f.name for f in option_fields())

BackendTranscoding = create_model(
    "BackendTranscoding", __base__=_ProfileChoice, __doc__="A backend's own transcoding profile and options.",
    **_option_overrides(per_backend_only=True),
)
_TranscodingOptionKeys = create_model(
    "_TranscodingOptionKeys", __base__=_ProfileChoice, **_option_overrides(per_backend_only=False)
)


class Transcoding(_TranscodingOptionKeys):  # type: ignore[misc,valid-type]
    """`profile` plus overrides of transcoding/options.py's table, and the service's own limits."""

    max_body_bytes: ByteSize = Field(4 * 1024 * 1024, gt=0)
    reload_interval: Duration = Field(60.0, ge=0, description="re-read descriptors this often; 0 disables")
    retry_interval: Duration = Field(2.0, gt=0, description="first retry delay for a backend that failed to load")
    health_interval: Duration = Field(5.0, gt=0, description="how often backends' grpc.health.v1 status is polled")


class Lifecycle(Section):
    """Shutdown on SIGTERM: fail readiness, wait `pre_drain_delay` so load
    balancers notice, stop accepting, give in-flight requests (streams
    included) up to `drain_timeout`, then cancel what is left."""

    pre_drain_delay: Duration = Field(5.0, ge=0)
    drain_timeout: Duration = Field(30.0, gt=0)


class Overload(Section):
    """Load shedding (edge/overload.py): past `max_inflight` requests served at once by
    one process (streams included, a batch counts once), new requests are answered 503
    with Retry-After at once instead of queueing; /healthz and /readyz are never shed."""

    max_inflight: int | None = Field(1000, ge=1, description="per process; null turns shedding off")
    retry_after: Duration = Field(1.0, ge=0, description="the Retry-After of a shed request")


class GatewayConfig(Section):
    """The whole file. Feature sections are owned by their packages' config modules."""

    listen: Listen = Field(default_factory=lambda: Listen(plaintext=True))
    admin: Admin = Field(default_factory=Admin)
    backends: list[Backend] = Field(min_length=1)
    transcoding: Transcoding = Field(default_factory=Transcoding)
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    auth: AuthConfig | None = Field(None, description="token validation and per-route policy; off when absent")
    rate_limits: RateLimitConfig | None = None
    idempotency: IdempotencyConfig | None = None
    store: StateConfig = Field(default_factory=StateConfig, description="where limits and idempotency records live")
    batch: BatchConfig | None = Field(default_factory=BatchConfig, description="the batch endpoint; null turns it off")
    access_log: AccessLogConfig = Field(default_factory=AccessLogConfig)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    compression: CompressionConfig = Field(default_factory=CompressionConfig)
    partial_responses: PartialResponsesConfig = Field(
        default_factory=PartialResponsesConfig, description="the `fields` system parameter (edge/partial.py)"
    )
    compose: list[ComposeRoute] = Field(
        default_factory=list, description="routes answered by several RPCs at once (edge/compose.py)"
    )
    caching: CachingConfig | None = Field(
        None, description="ETags, If-None-Match and Cache-Control on GET routes (edge/conditional.py); off when absent"
    )
    overload: Overload = Field(default_factory=Overload)
    cors: CorsConfig | None = Field(None, description="browser calls from other origins; off when absent")
    websocket: WebSocketConfig | None = Field(
        None, description="streaming methods over WebSocket (edge/protocols/websocket.py); off when absent"
    )

    def transcoding_options(self, backend: str | None = None) -> TranscodingOptions:
        """The options in force: the top-level profile and overrides, then, for a
        backend, its own profile (if any) under the same top-level overrides and its
        own overrides on top. Built once per table, never per request."""
        top = self.transcoding
        name, overrides = top.profile or DEFAULT_PROFILE, top.overrides()
        if backend is not None:
            own = next(b for b in self.backends if b.name == backend).transcoding
            if own is not None:
                name = own.profile or name
                overrides = {**overrides, **own.overrides()}
        return profile(name, overrides)

    @field_validator("compose")
    @classmethod
    def _unique_routes(cls, value: list[ComposeRoute]) -> list[ComposeRoute]:
        routes = [r.route for r in value]
        twice = sorted({r for r in routes if routes.count(r) > 1})
        if twice:
            raise ValueError(f"composed route(s) listed twice: {', '.join(twice)}")
        return value

    @field_validator("backends")
    @classmethod
    def _unique_names(cls, value: list[Backend]) -> list[Backend]:
        seen: set[str] = set()
        for b in value:
            if b.name in seen:
                raise ValueError(f"duplicate backend name {b.name!r}")
            seen.add(b.name)
        return value


class ConfigError(Exception):
    """A config that cannot be used; the message names every key and problem."""


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def load_config(path: str | Path) -> GatewayConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a YAML mapping with at least 'backends'")
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid config {path}:\n{format_validation_error(exc)}") from None
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: GatewayConfig, base: Path) -> GatewayConfig:
    """Relative descriptor-set paths are relative to the config file."""
    backends = []
    for b in config.backends:
        if b.descriptors != "reflection" and not Path(b.descriptors).is_absolute():
            b = b.model_copy(update={"descriptors": str((base / b.descriptors).resolve())})
        backends.append(b)
    return config.model_copy(update={"backends": backends})

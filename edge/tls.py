"""TLS termination: server SSL context, certificate hot reload, uvicorn wiring, client certs.

Hot reload without dropping connections. uvicorn hands one `ssl.SSLContext` to
`loop.create_server`; every accepted connection keeps the context it was created with.
We serve a *listening* context whose `sni_callback` runs on every ClientHello (OpenSSL
calls its servername callback whether or not the client sent SNI; Python then passes
`server_name=None`, see tests/test_tls.py) and moves that one connection onto the newest
good context with `ssl_object.context = ...` (OpenSSL `SSL_set_SSL_CTX`). New handshakes
get the new certificate/key/chain (and client-CA store); open connections are untouched
because their handshake is over. Protocol settings (versions, ciphers, verify mode) stay
those of the listening context, so every context is built by the same function.

Mutating the listening context with `load_cert_chain` instead was rejected: it has no
rollback. Tried on OpenSSL 3.0: after `load_cert_chain(new_cert, old_key)` raises
KEY_VALUES_MISMATCH the context holds no usable certificate and every later handshake
fails (NO_SHARED_CIPHER). Certificate and key are also set in two steps with the GIL
released, so a concurrent handshake could see a new certificate with an old key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypedDict

import pydantic
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

__all__ = [
    "DEFAULT_CIPHERS",
    "CertificateError",
    "CertificateReloader",
    "PeerCertificate",
    "TlsConfig",
    "apply_to_uvicorn",
    "peer_certificate",
    "server_ssl_context",
    "tls_scope_extension",
]

logger = logging.getLogger("edge.tls")

# Mozilla "intermediate" TLS 1.2 suites: forward secret AEAD only. TLS 1.3 suites are
# configured separately by OpenSSL and its defaults are all strong.
DEFAULT_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)
_EXPIRY_WARNING = dt.timedelta(days=7)
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_VERIFY = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class TlsConfig(pydantic.BaseModel):
    """A TLS listener: certificate material, protocol floor, ciphers, client certificates."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    cert_file: Path
    """PEM leaf certificate, optionally followed by its intermediates."""
    key_file: Path
    chain_file: Path | None = None
    """PEM intermediates, served whole after the leaf."""
    key_password: pydantic.SecretStr | None = None
    min_version: Literal["1.2", "1.3"] = "1.2"
    ciphers: str = DEFAULT_CIPHERS
    """OpenSSL cipher string for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults)."""
    client_ca_file: Path | None = None
    """PEM CA bundle that client certificates must chain to (mTLS)."""
    client_cert: Literal["none", "optional", "required"] = "none"
    reload_interval: float = pydantic.Field(default=5.0, gt=0)
    """Seconds between checks of the files for changes."""

    @pydantic.field_validator("ciphers")
    @classmethod
    def _ciphers_known(cls, value: str) -> str:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(value)
        except ssl.SSLError:
            raise ValueError(f"OpenSSL accepts no cipher from {value!r}") from None
        return value

    @pydantic.model_validator(mode="after")
    def _client_ca_consistent(self) -> TlsConfig:
        if self.client_cert != "none" and self.client_ca_file is None:
            raise ValueError(f"client_cert={self.client_cert!r} needs client_ca_file to verify client certificates")
        if self.client_cert == "none" and self.client_ca_file is not None:
            raise ValueError("client_ca_file is set but client_cert is 'none'; set it to 'optional' or 'required'")
        return self


class CertificateError(Exception):
    """Certificate material that cannot be served; the message names file and reason."""


class PeerCertificate(TypedDict):
    """The verified client certificate of a connection."""

    subject: str  # RFC 4514, e.g. "CN=alice,O=Example"
    issuer: str
    serial_number: int
    not_valid_before: dt.datetime
    not_valid_after: dt.datetime
    sha256: str  # hex fingerprint of the DER certificate
    subject_alt_names: list[str]
    pem: str


ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]
_FileState = tuple[tuple[str, int, int, str] | tuple[str, None], ...]


class _Loaded:
    """A good context with what we learned while loading it."""

    def __init__(self, context: ssl.SSLContext, leaf: x509.Certificate) -> None:
        self.context = context
        self.leaf = leaf
        self.fingerprint = hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()


class CertificateReloader:
    """Owns the listening context and swaps newer certificates into new handshakes.

    `reload()` is safe from any thread and from a SIGHUP handler; a bad replacement is
    refused (logged with the reason) and the previous certificate keeps serving.
    """

    def __init__(self, cfg: TlsConfig) -> None:
        self._cfg = cfg
        self._lock = threading.Lock()
        self._alpn: list[str] | None = None
        self.last_error: str | None = None
        self._seen_state = self._file_state()
        self._current = self._load()  # raises CertificateError: nothing to serve yet
        _warn_validity(self._current.leaf, self._cfg.cert_file)
        # The listening context also holds the first certificate, so it could serve alone.
        self.context = self._load().context
        self.context.sni_callback = self._on_client_hello
        logger.info("TLS certificate %s loaded from %s", self.current_fingerprint, cfg.cert_file)

    @property
    def current_fingerprint(self) -> str:
        """SHA-256 (hex) of the DER leaf certificate new handshakes receive."""
        return self._current.fingerprint

    @property
    def not_valid_after(self) -> dt.datetime:
        return self._current.leaf.not_valid_after_utc

    def set_alpn_protocols(self, protocols: list[str]) -> None:
        """ALPN must be on every context: OpenSSL selects it on the swapped-in one."""
        with self._lock:
            self._alpn = list(protocols)
            self.context.set_alpn_protocols(self._alpn)
            self._current.context.set_alpn_protocols(self._alpn)

    def reload(self) -> bool:
        """Load the files now; True if they were good and now serve new handshakes."""
        with self._lock:
            # Taken before reading: a change while loading shows up at the next check.
            # A refused state is retried only once the files change again.
            self._seen_state = self._file_state()
            try:
                loaded = self._load()
                self._refuse_expired(loaded)
            except CertificateError as exc:
                self.last_error = str(exc)
                logger.warning(
                    "TLS reload refused, still serving %s: %s", self._current.fingerprint, exc
                )
                return False
            previous, self._current, self.last_error = self._current, loaded, None
        _warn_validity(loaded.leaf, self._cfg.cert_file)
        if loaded.fingerprint != previous.fingerprint:
            logger.info("TLS certificate %s now serving (was %s)", loaded.fingerprint, previous.fingerprint)
        else:
            logger.info("TLS material reloaded; certificate %s unchanged", loaded.fingerprint)
        return True

    def reload_if_changed(self) -> bool | None:
        """Reload when any watched file changed since the last attempt; None if none did."""
        if self._file_state() == self._seen_state:
            return None
        return self.reload()

    async def run(self, stop_event: asyncio.Event) -> None:
        """Poll the files every `reload_interval` seconds until `stop_event` is set."""
        while True:
            try:
                await asyncio.wait_for(stop_event.wait(), self._cfg.reload_interval)
                return
            except TimeoutError:
                pass
            try:
                await asyncio.to_thread(self.reload_if_changed)
            except Exception:  # a watcher that dies silently would stop all future reloads
                logger.exception("TLS certificate check failed")

    # -- internals -------------------------------------------------------------------

    def _on_client_hello(self, ssl_object: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        ssl_object.context = self._current.context

    def _watched(self) -> list[Path]:
        cfg = self._cfg
        return [p for p in (cfg.cert_file, cfg.key_file, cfg.chain_file, cfg.client_ca_file) if p is not None]

    def _file_state(self) -> _FileState:
        state: list[tuple[str, int, int, str] | tuple[str, None]] = []
        for path in self._watched():
            try:
                st = path.stat()
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                state.append((str(path), None))
            else:
                state.append((str(path), st.st_mtime_ns, st.st_size, digest))
        return tuple(state)

    def _load(self) -> _Loaded:
        cfg = self._cfg
        cert_pem = _read(cfg.cert_file, "certificate")
        chain_pem = _read(cfg.chain_file, "chain") if cfg.chain_file else b""
        try:
            leaf = x509.load_pem_x509_certificates(cert_pem)[0]
            if chain_pem:
                x509.load_pem_x509_certificates(chain_pem)
        except ValueError:
            where = cfg.cert_file if not chain_pem else f"{cfg.cert_file} or {cfg.chain_file}"
            raise CertificateError(f"{where}: not a PEM certificate") from None
        password = cfg.key_password.get_secret_value() if cfg.key_password else None
        # Checked here for clear reasons; OpenSSL would only say "PEM lib" / KEY_VALUES_MISMATCH.
        _check_key(_read(cfg.key_file, "key"), password, leaf, cfg)
        context = _new_context(cfg)
        if self._alpn:
            context.set_alpn_protocols(self._alpn)
        # load_cert_chain reads paths only; the joined leaf+chain is public, the key is not copied.
        with tempfile.NamedTemporaryFile(prefix="edge-tls-", suffix=".pem") as joined:
            joined.write(cert_pem.rstrip(b"\n") + b"\n" + chain_pem)
            joined.flush()
            try:
                # A callback even without a password: OpenSSL would otherwise prompt on the tty.
                context.load_cert_chain(joined.name, cfg.key_file, password=lambda: password or "")
            except ssl.SSLError as exc:
                raise CertificateError(f"{cfg.cert_file} with key {cfg.key_file}: {_ssl_reason(exc)}") from None
            except OSError as exc:
                raise CertificateError(f"key file {cfg.key_file}: {exc.strerror or exc}") from None
        if cfg.client_ca_file is not None:
            try:
                context.load_verify_locations(cafile=cfg.client_ca_file)
            except (ssl.SSLError, OSError) as exc:
                raise CertificateError(f"client_ca_file {cfg.client_ca_file}: {_ssl_reason(exc)}") from None
        return _Loaded(context, leaf)

    def _refuse_expired(self, loaded: _Loaded) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        if loaded.leaf.not_valid_after_utc < now <= self._current.leaf.not_valid_after_utc:
            raise CertificateError(
                f"{self._cfg.cert_file}: certificate expired {loaded.leaf.not_valid_after_utc.isoformat()}"
                " while the one serving is still valid"
            )


def server_ssl_context(cfg: TlsConfig) -> tuple[ssl.SSLContext, CertificateReloader]:
    """The listening context for uvicorn and the reloader that keeps it current.

    Raises `CertificateError` when the initial files cannot be served.
    """
    reloader = CertificateReloader(cfg)
    return reloader.context, reloader


def apply_to_uvicorn(
    config: uvicorn.Config, context: ssl.SSLContext, reloader: CertificateReloader | None = None
) -> None:
    """Make `config` serve `context` and put TLS details into each request's scope.

    Call before `config.load()` (uvicorn.Server.serve loads it). uvicorn >= 0.47 calls
    `Config.ssl_context_factory` inside `load()`, after it picked the HTTP protocol class,
    and serves whatever context it returns; we return ours (ignoring `ssl_certfile` & co.),
    giving it the protocol class's ALPN ids if it wants any (HTTP/2). `reloader` must be given
    for ALPN to reach reloaded contexts.

    uvicorn does not implement the ASGI TLS extension, and ASGI apps cannot reach the
    transport, so `config.http` is replaced by a subclass of the chosen protocol class
    that sets `scope["extensions"]["tls"]` (see `tls_scope_extension`) on every HTTP
    request of a TLS connection. WebSocket upgrades do not get it.
    """

    def factory(cfg: uvicorn.Config, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        alpn: list[str] | None = getattr(cfg.http_protocol_class, "alpn_protocols", None)
        if alpn:
            if reloader is not None:
                reloader.set_alpn_protocols(alpn)
            else:
                context.set_alpn_protocols(alpn)
        return context

    if not hasattr(config, "ssl_context_factory"):
        raise RuntimeError(f"uvicorn {uvicorn.__version__} lacks Config.ssl_context_factory; edge needs >= 0.47")
    config.ssl_context_factory = factory
    config.http = _with_tls_scope(_protocol_class(config.http))
    if config.loaded:  # already loaded: patch what load() derived
        config.http_protocol_class = _with_tls_scope(config.http_protocol_class)
        config.ssl = factory(config, lambda: context)


def tls_scope_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> dict[str, Any]:
    """The ASGI TLS extension (asgiref "TLS" spec) for an established connection.

    `server_cert` is None (Python < 3.13 cannot read back the certificate it sent) and
    `client_cert_chain` holds only the client's own certificate (likewise for its chain).
    """
    der = ssl_object.getpeercert(binary_form=True)
    chain: list[str] = []
    name: str | None = None
    if der:
        cert = x509.load_der_x509_certificate(der)
        chain.append(cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))
        name = cert.subject.rfc4514_string()
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,  # OpenSSL aborts the handshake on a bad client certificate
        "tls_version": _TLS_VERSION_IDS.get(ssl_object.version() or ""),
        "cipher_suite": _cipher_suite_id(cipher[0]) if cipher else None,
    }


def peer_certificate(scope: MutableMapping[str, Any]) -> PeerCertificate | None:
    """The verified client certificate of this request's connection, or None.

    Needs a server wired with `apply_to_uvicorn` (or any server setting the ASGI TLS
    extension) and `client_cert` "optional"/"required": OpenSSL asks for client
    certificates only then, and refuses ones that do not chain to `client_ca_file`.
    """
    tls = (scope.get("extensions") or {}).get("tls")
    if not tls or not tls.get("client_cert_chain"):
        return None
    pem: str = tls["client_cert_chain"][0]
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(getattr(n, "value", n)) for n in sans]
    except x509.ExtensionNotFound:
        names = []
    return PeerCertificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial_number=cert.serial_number,
        not_valid_before=cert.not_valid_before_utc,
        not_valid_after=cert.not_valid_after_utc,
        sha256=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        subject_alt_names=names,
        pem=pem,
    )


# -- helpers -------------------------------------------------------------------------

_TLS_VERSION_IDS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def _new_context(cfg: TlsConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[cfg.min_version]  # OpenSSL negotiates the highest both speak
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.set_ciphers(cfg.ciphers)
    context.verify_mode = _VERIFY[cfg.client_cert]
    return context


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"{what} file {path}: {exc.strerror or exc}") from None


def _check_key(key_pem: bytes, password: str | None, leaf: x509.Certificate, cfg: TlsConfig) -> None:
    secret = password.encode() if password else None
    try:
        try:
            key = serialization.load_pem_private_key(key_pem, secret)
        except TypeError:
            if secret is None:
                raise CertificateError(f"key file {cfg.key_file}: encrypted, and key_password is not set") from None
            key = serialization.load_pem_private_key(key_pem, None)  # a password for a plain key is harmless
    except ValueError as exc:
        raise CertificateError(f"key file {cfg.key_file}: {exc}") from None
    if key.public_key() != leaf.public_key():
        raise CertificateError(f"key file {cfg.key_file} does not match the certificate in {cfg.cert_file}")


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"{exc.reason} ({exc.library})" if exc.library else str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _warn_validity(leaf: x509.Certificate, path: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    if leaf.not_valid_after_utc < now:
        logger.warning("TLS certificate %s expired at %s", path, leaf.not_valid_after_utc.isoformat())
    elif leaf.not_valid_before_utc > now:
        logger.warning("TLS certificate %s is not valid before %s", path, leaf.not_valid_before_utc.isoformat())
    elif leaf.not_valid_after_utc - now < _EXPIRY_WARNING:
        logger.warning("TLS certificate %s expires soon, at %s", path, leaf.not_valid_after_utc.isoformat())


@lru_cache(maxsize=64)
def _cipher_suite_id(name: str) -> int | None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("ALL:@SECLEVEL=0")
    for cipher in context.get_ciphers():
        if cipher["name"] == name:
            return int(cipher["id"]) & 0xFFFF  # OpenSSL ids are 0x0300 << 16 | IANA id
    return None


def _protocol_class(http: str | type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    if isinstance(http, str):
        cls: type[asyncio.Protocol] = import_from_string(HTTP_PROTOCOLS.get(http, http))
        return cls
    return http


def _with_tls_scope(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    if getattr(base, "_edge_tls_scope", False):
        return base

    def connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
        base.connection_made(self, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        app = getattr(self, "app", None)
        if ssl_object is None or app is None:
            return
        # uvicorn calls connection_made after the handshake, so the peer is known here;
        # h11 and httptools protocols read self.app per request.
        self.app = _asgi_with_tls(app, tls_scope_extension(ssl_object))

    return type(f"Tls{base.__name__}", (base,), {"connection_made": connection_made, "_edge_tls_scope": True})


def _asgi_with_tls(app: ASGIApp, tls: dict[str, Any]) -> ASGIApp:
    async def with_tls(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        scope.setdefault("extensions", {})["tls"] = dict(tls)
        await app(scope, receive, send)

    return with_tls

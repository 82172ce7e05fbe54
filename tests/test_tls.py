"""TLS termination against a real uvicorn server and real TLS sockets."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import http.client
import json
import logging
import socket
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydantic
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge.devcert import (
    GeneratedCertificate,
    ensure_dev_certificate,
    generate_certificate,
    write_atomically,
)
from edge.tls import (
    CertificateError,
    CertificateReloader,
    TlsConfig,
    apply_to_uvicorn,
    peer_certificate,
    server_ssl_context,
)

HOSTS = ("localhost", "127.0.0.1")


# -- a real server -------------------------------------------------------------------


async def echo_tls(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reports what the app can see of the connection's TLS."""
    assert scope["type"] == "http"
    tls = scope.get("extensions", {}).get("tls") or {}
    peer = peer_certificate(scope)
    body = json.dumps(
        {
            "peer": peer["subject"] if peer else None,
            "peer_sha256": peer["sha256"] if peer else None,
            "tls_version": tls.get("tls_version"),
            "cipher_suite": tls.get("cipher_suite"),
            "scheme": scope["scheme"],
        }
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def serving(
    cfg: TlsConfig, *, loop: str = "auto", http: str = "auto", preload: bool = False
) -> Iterator[tuple[int, CertificateReloader]]:
    context, reloader = server_ssl_context(cfg)
    config = uvicorn.Config(
        echo_tls, lifespan="off", log_level="warning", loop=loop, http=http, timeout_graceful_shutdown=1
    )
    if preload:
        config.load()
    apply_to_uvicorn(config, context, reloader)
    server = uvicorn.Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1], reloader
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def client_context(
    trust: GeneratedCertificate, *, cert: tuple[Path, Path] | None = None, max_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=trust.cert_pem.decode())
    if max_version is not None:
        ctx.maximum_version = max_version
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


def connect(port: int, ctx: ssl.SSLContext, server_hostname: str = "127.0.0.1") -> ssl.SSLSocket:
    """An IP address as server_hostname sends no SNI; a name does."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname=server_hostname)


def get(sock: ssl.SSLSocket) -> dict[str, Any]:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: edge.test\r\n\r\n")
    response = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
    response.begin()
    assert response.status == 200
    assert not response.will_close
    return json.loads(response.read())


def served_fingerprint(sock: ssl.SSLSocket) -> str:
    der = sock.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    """A server certificate A on disk, and a self-signed replacement B in memory."""
    a = generate_certificate("a.edge.test", hosts=HOSTS)
    b = generate_certificate("b.edge.test", hosts=HOSTS)
    cert, key = a.write(tmp_path / "cert.pem", tmp_path / "key.pem")
    return {"a": a, "b": b, "cfg": TlsConfig(cert_file=cert, key_file=key), "dir": tmp_path}


def trust_both(a: GeneratedCertificate, b: GeneratedCertificate) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=(a.cert_pem + b.cert_pem).decode())


# -- handshakes ----------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["rsa", "ec"])
def test_rsa_and_ecdsa_certificates_serve_tls13_by_default(tmp_path: Path, key_type: str) -> None:
    leaf = generate_certificate("edge.test", hosts=HOSTS, key_type=key_type)  # type: ignore[arg-type]
    cert, key = leaf.write(tmp_path / "c.pem", tmp_path / "k.pem")
    with serving(TlsConfig(cert_file=cert, key_file=key)) as (port, reloader):
        with connect(port, client_context(leaf)) as sock:
            assert sock.version() == "TLSv1.3"
            assert served_fingerprint(sock) == leaf.fingerprint == reloader.current_fingerprint
            seen = get(sock)
    assert seen["scheme"] == "https"
    assert seen["tls_version"] == 0x0304
    assert seen["peer"] is None


@pytest.mark.parametrize("key_type", ["rsa", "ec"])
def test_tls12_client_gets_forward_secret_aead_cipher(tmp_path: Path, key_type: str) -> None:
    leaf = generate_certificate("edge.test", hosts=HOSTS, key_type=key_type)  # type: ignore[arg-type]
    cert, key = leaf.write(tmp_path / "c.pem", tmp_path / "k.pem")
    with serving(TlsConfig(cert_file=cert, key_file=key)) as (port, _):
        with connect(port, client_context(leaf, max_version=ssl.TLSVersion.TLSv1_2)) as sock:
            name, version, _bits = sock.cipher()
            seen = get(sock)
    assert version == "TLSv1.2"
    # The server's order decides (a default client would rather have AES-256): the first of
    # DEFAULT_CIPHERS that suits the key.
    assert name == f"ECDHE-{'RSA' if key_type == 'rsa' else 'ECDSA'}-AES128-GCM-SHA256"
    assert seen["tls_version"] == 0x0303
    assert seen["cipher_suite"] == (0xC02F if key_type == "rsa" else 0xC02B)


def tls11_client() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 has no TLS 1.1 ciphers above level 0
    with pytest.warns(DeprecationWarning):
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def test_tls11_client_is_refused_by_the_server(pki: dict[str, Any]) -> None:
    # Control: this client does complete a TLS 1.1 handshake with a server that allows it.
    lenient = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    lenient.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.warns(DeprecationWarning):
        lenient.minimum_version = ssl.TLSVersion.TLSv1
    lenient.load_cert_chain(pki["cfg"].cert_file, pki["cfg"].key_file)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        accepted = threading.Thread(
            target=lambda: lenient.wrap_socket(listener.accept()[0], server_side=True).close(), daemon=True
        )
        accepted.start()
        with connect(listener.getsockname()[1], tls11_client()) as sock:
            assert sock.version() == "TLSv1.1"
        accepted.join(5)

    with serving(pki["cfg"]) as (port, _):
        # The server hangs up on the ClientHello: asyncio/uvloop close without flushing the alert.
        with pytest.raises(ssl.SSLEOFError):
            connect(port, tls11_client())


def test_min_version_13_refuses_tls12_client(pki: dict[str, Any]) -> None:
    cfg = pki["cfg"].model_copy(update={"min_version": "1.3"})
    with serving(cfg) as (port, _):
        with pytest.raises(ssl.SSLEOFError):  # hung up on the ClientHello, as for TLS 1.1 above
            connect(port, client_context(pki["a"], max_version=ssl.TLSVersion.TLSv1_2))
        with connect(port, client_context(pki["a"])) as sock:
            assert sock.version() == "TLSv1.3"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_sni_callback_swaps_context_with_and_without_sni(pki: dict[str, Any], loop: str) -> None:
    """The listening context keeps certificate A; only the callback can hand out B."""
    with serving(pki["cfg"], loop=loop) as (port, reloader):
        pki["b"].write(pki["cfg"].cert_file, pki["cfg"].key_file)
        assert reloader.reload() is True
        ctx = trust_both(pki["a"], pki["b"])
        for hostname in ("127.0.0.1", "localhost"):  # no SNI, then SNI
            with connect(port, ctx, server_hostname=hostname) as sock:
                assert served_fingerprint(sock) == pki["b"].fingerprint
                get(sock)


# -- certificate chains ----------------------------------------------------------------


@pytest.fixture
def chain(tmp_path: Path) -> dict[str, Any]:
    root = generate_certificate("Edge Test Root", purpose="ca")
    intermediate = generate_certificate("Edge Test Intermediate", purpose="ca", issuer=root)
    leaf = generate_certificate("edge.test", hosts=HOSTS, issuer=intermediate)
    return {"root": root, "intermediate": intermediate, "leaf": leaf, "dir": tmp_path}


def test_chain_file_is_served_after_the_leaf(chain: dict[str, Any]) -> None:
    d: Path = chain["dir"]
    cert, key = chain["leaf"].write(d / "leaf.pem", d / "leaf.key")
    write_atomically(d / "chain.pem", chain["intermediate"].cert_pem)
    with serving(TlsConfig(cert_file=cert, key_file=key, chain_file=d / "chain.pem")) as (port, _):
        # The client trusts only the root: it can verify the leaf only if the intermediate arrives.
        with connect(port, client_context(chain["root"])) as sock:
            assert served_fingerprint(sock) == chain["leaf"].fingerprint
            get(sock)


def test_cert_file_may_hold_the_chain(chain: dict[str, Any]) -> None:
    d: Path = chain["dir"]
    cert, key = chain["leaf"].write(d / "full.pem", d / "leaf.key", chain=[chain["intermediate"]])
    with serving(TlsConfig(cert_file=cert, key_file=key)) as (port, _):
        with connect(port, client_context(chain["root"])) as sock:
            get(sock)


def test_leaf_without_intermediate_fails_verification(chain: dict[str, Any]) -> None:
    """Control for the two tests above: the root alone cannot verify the bare leaf."""
    d: Path = chain["dir"]
    cert, key = chain["leaf"].write(d / "leaf.pem", d / "leaf.key")
    with serving(TlsConfig(cert_file=cert, key_file=key)) as (port, _):
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            connect(port, client_context(chain["root"]))


# -- reloading -----------------------------------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_replaced_files_serve_new_handshakes_and_spare_open_connections(pki: dict[str, Any], loop: str) -> None:
    cfg: TlsConfig = pki["cfg"]
    ctx = trust_both(pki["a"], pki["b"])
    with serving(cfg, loop=loop) as (port, reloader):
        with connect(port, ctx) as old:
            get(old)
            assert served_fingerprint(old) == pki["a"].fingerprint

            pki["b"].write(cfg.cert_file, cfg.key_file)
            assert reloader.reload() is True
            assert reloader.current_fingerprint == pki["b"].fingerprint

            get(old)  # the open connection still works after the swap
            get(old)
            with connect(port, ctx) as new:
                assert served_fingerprint(new) == pki["b"].fingerprint
                get(new)
            assert served_fingerprint(old) == pki["a"].fingerprint


def _garbage(pki: dict[str, Any]) -> None:
    write_atomically(pki["cfg"].cert_file, b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")


def _mismatched_key(pki: dict[str, Any]) -> None:
    write_atomically(pki["cfg"].cert_file, pki["b"].cert_pem)  # key still A's


def _missing_key(pki: dict[str, Any]) -> None:
    pki["cfg"].key_file.unlink()


def _expired(pki: dict[str, Any]) -> None:
    old = generate_certificate(
        "old.edge.test",
        hosts=HOSTS,
        valid_from=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10),
        valid_for=dt.timedelta(days=1),
    )
    old.write(pki["cfg"].cert_file, pki["cfg"].key_file)


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        (_garbage, "not a PEM certificate"),
        (_mismatched_key, "does not match the certificate"),
        (_missing_key, "No such file"),
        (_expired, "expired"),
    ],
)
def test_bad_replacement_is_refused_and_old_certificate_keeps_serving(
    pki: dict[str, Any], breakage: Any, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg: TlsConfig = pki["cfg"]
    ctx = trust_both(pki["a"], pki["b"])
    with serving(cfg) as (port, reloader):
        breakage(pki)
        with caplog.at_level(logging.WARNING, logger="edge.tls"):
            assert reloader.reload() is False
        assert reason in caplog.text and reason in (reloader.last_error or "")
        assert reloader.current_fingerprint == pki["a"].fingerprint
        with connect(port, ctx) as sock:
            assert served_fingerprint(sock) == pki["a"].fingerprint
            get(sock)
        assert reloader.reload_if_changed() is None  # the refused files are not retried until they change

        pki["b"].write(cfg.cert_file, cfg.key_file)  # a good replacement then goes through
        assert reloader.reload_if_changed() is True
        with connect(port, ctx) as sock:
            assert served_fingerprint(sock) == pki["b"].fingerprint


def test_watcher_picks_up_changed_files(pki: dict[str, Any]) -> None:
    cfg = pki["cfg"].model_copy(update={"reload_interval": 0.02})
    reloader = CertificateReloader(cfg)
    assert reloader.reload_if_changed() is None

    async def watch_until_swapped() -> str:
        stop = asyncio.Event()
        task = asyncio.create_task(reloader.run(stop))
        pki["b"].write(cfg.cert_file, cfg.key_file)
        deadline = time.monotonic() + 5
        while reloader.current_fingerprint != pki["b"].fingerprint and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)  # run() returns promptly once stop is set
        return reloader.current_fingerprint

    assert asyncio.run(watch_until_swapped()) == pki["b"].fingerprint


def test_touching_files_without_changing_them_is_a_reload_not_a_swap(
    pki: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    reloader = CertificateReloader(pki["cfg"])
    write_atomically(pki["cfg"].cert_file, pki["a"].cert_pem)
    with caplog.at_level(logging.INFO, logger="edge.tls"):
        assert reloader.reload_if_changed() is True
    assert "unchanged" in caplog.text
    assert reloader.current_fingerprint == pki["a"].fingerprint


# -- startup errors and keys -------------------------------------------------------------


def test_unservable_files_at_startup_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match=r"certificate file .*nope\.pem"):
        server_ssl_context(TlsConfig(cert_file=tmp_path / "nope.pem", key_file=tmp_path / "nope.key"))


def test_encrypted_key_needs_its_password(tmp_path: Path) -> None:
    leaf = generate_certificate("edge.test", hosts=HOSTS, key_type="rsa")
    cert, key = leaf.write(tmp_path / "c.pem", tmp_path / "k.pem", password=b"s3cret")
    with pytest.raises(CertificateError, match="k.pem: encrypted, and key_password is not set"):
        server_ssl_context(TlsConfig(cert_file=cert, key_file=key))  # an error, not a tty prompt
    with pytest.raises(CertificateError, match="k.pem: .*[Ii]ncorrect password"):
        server_ssl_context(TlsConfig(cert_file=cert, key_file=key, key_password="wrong"))
    with serving(TlsConfig(cert_file=cert, key_file=key, key_password="s3cret")) as (port, _):
        with connect(port, client_context(leaf)) as sock:
            get(sock)


def test_config_rejects_inconsistent_settings(tmp_path: Path) -> None:
    files = {"cert_file": tmp_path / "c.pem", "key_file": tmp_path / "k.pem"}
    with pytest.raises(pydantic.ValidationError, match="needs client_ca_file"):
        TlsConfig(**files, client_cert="required")
    with pytest.raises(pydantic.ValidationError, match="client_cert is 'none'"):
        TlsConfig(**files, client_ca_file=tmp_path / "ca.pem")
    with pytest.raises(pydantic.ValidationError, match="no cipher"):
        TlsConfig(**files, ciphers="NOT-A-CIPHER")
    with pytest.raises(pydantic.ValidationError, match="min_version"):
        TlsConfig(**files, min_version="1.1")
    with pytest.raises(pydantic.ValidationError, match="extra"):
        TlsConfig(**files, certfile="x")


# -- client certificates -------------------------------------------------------------


@pytest.fixture
def mtls(tmp_path: Path) -> dict[str, Any]:
    server_ca = generate_certificate("Server CA", purpose="ca")
    client_ca = generate_certificate("Client CA", purpose="ca")
    rogue_ca = generate_certificate("Rogue CA", purpose="ca")
    server = generate_certificate("edge.test", hosts=HOSTS, issuer=server_ca)
    cert, key = server.write(tmp_path / "server.pem", tmp_path / "server.key")
    write_atomically(tmp_path / "client-ca.pem", client_ca.cert_pem)
    alice = generate_certificate("alice", purpose="client", issuer=client_ca, key_type="rsa")
    mallory = generate_certificate("mallory", purpose="client", issuer=rogue_ca)
    return {
        "server_ca": server_ca,
        "alice": alice,
        "alice_files": alice.write(tmp_path / "alice.pem", tmp_path / "alice.key"),
        "mallory_files": mallory.write(tmp_path / "mallory.pem", tmp_path / "mallory.key"),
        "cfg": dict(cert_file=cert, key_file=key, client_ca_file=tmp_path / "client-ca.pem"),
    }


def _refused_after_handshake(port: int, ctx: ssl.SSLContext) -> None:
    """TLS 1.3 clients learn of a refused certificate on their first read."""
    with pytest.raises((ssl.SSLError, ConnectionError)):  # RemoteDisconnected is one
        with connect(port, ctx) as sock:
            get(sock)


@pytest.mark.parametrize("http_impl", ["h11", "httptools"])
def test_required_client_certificate(mtls: dict[str, Any], http_impl: str) -> None:
    cfg = TlsConfig(**mtls["cfg"], client_cert="required")
    with serving(cfg, http=http_impl) as (port, _):
        _refused_after_handshake(port, client_context(mtls["server_ca"]))
        _refused_after_handshake(port, client_context(mtls["server_ca"], cert=mtls["mallory_files"]))
        with connect(port, client_context(mtls["server_ca"], cert=mtls["alice_files"])) as sock:
            seen = get(sock)
            assert get(sock)["peer"] == "CN=alice"  # every request on the connection sees it
    assert seen["peer"] == "CN=alice"
    assert seen["peer_sha256"] == mtls["alice"].fingerprint


def test_optional_client_certificate(mtls: dict[str, Any]) -> None:
    cfg = TlsConfig(**mtls["cfg"], client_cert="optional")
    with serving(cfg) as (port, _):
        with connect(port, client_context(mtls["server_ca"])) as sock:
            assert get(sock)["peer"] is None
        with connect(port, client_context(mtls["server_ca"], cert=mtls["alice_files"])) as sock:
            assert get(sock)["peer"] == "CN=alice"
        _refused_after_handshake(port, client_context(mtls["server_ca"], cert=mtls["mallory_files"]))


def test_rotated_client_ca_applies_to_new_handshakes(mtls: dict[str, Any], tmp_path: Path) -> None:
    """Client verification uses the swapped-in context's CA store, so CA rotation reloads too."""
    cfg = TlsConfig(**mtls["cfg"], client_cert="required")
    new_ca = generate_certificate("Client CA 2", purpose="ca")
    bob = generate_certificate("bob", purpose="client", issuer=new_ca).write(tmp_path / "bob.pem", tmp_path / "bob.key")
    with serving(cfg) as (port, reloader):
        _refused_after_handshake(port, client_context(mtls["server_ca"], cert=bob))
        write_atomically(cfg.client_ca_file, new_ca.cert_pem)  # type: ignore[arg-type]
        assert reloader.reload_if_changed() is True
        with connect(port, client_context(mtls["server_ca"], cert=bob)) as sock:
            assert get(sock)["peer"] == "CN=bob"
        _refused_after_handshake(port, client_context(mtls["server_ca"], cert=mtls["alice_files"]))


def test_apply_to_an_already_loaded_config(mtls: dict[str, Any]) -> None:
    with serving(TlsConfig(**mtls["cfg"], client_cert="required"), preload=True) as (port, _):
        with connect(port, client_context(mtls["server_ca"], cert=mtls["alice_files"])) as sock:
            seen = get(sock)
    assert seen["peer"] == "CN=alice" and seen["tls_version"] == 0x0304


def test_peer_certificate_without_tls_extension_is_none() -> None:
    assert peer_certificate({"type": "http"}) is None
    assert peer_certificate({"type": "http", "extensions": {"tls": {"client_cert_chain": []}}}) is None


# -- development certificate -----------------------------------------------------------


def test_dev_certificate_is_created_kept_and_renewed(tmp_path: Path) -> None:
    directory = tmp_path / "dev"
    cert_path, key_path = ensure_dev_certificate(directory)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=29) < lifetime < dt.timedelta(days=31)

    first = cert_path.read_bytes()
    assert ensure_dev_certificate(directory) == (cert_path, key_path)
    assert cert_path.read_bytes() == first  # still good: kept

    expiring = generate_certificate("localhost", hosts=("localhost", "127.0.0.1", "::1"), valid_for=dt.timedelta(hours=12))
    expiring.write(cert_path, key_path)
    ensure_dev_certificate(directory)
    assert cert_path.read_bytes() not in (first, expiring.cert_pem)


def test_dev_certificate_serves_verified_https(tmp_path: Path) -> None:
    cert_path, key_path = ensure_dev_certificate(tmp_path)
    trust = ssl.create_default_context(cafile=cert_path)
    with serving(TlsConfig(cert_file=cert_path, key_file=key_path)) as (port, _):
        for hostname in ("127.0.0.1", "localhost"):
            with connect(port, trust, server_hostname=hostname) as sock:
                get(sock)

"""Development and test certificates, made with `cryptography`.

`ensure_dev_certificate` gives a local gateway a working HTTPS listener without an
operator-supplied certificate; `generate_certificate` builds the CA/intermediate/leaf/
client/expired certificates the TLS tests need, so no fixture files go stale.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "DEV_CERT_NAME",
    "DEV_KEY_NAME",
    "GeneratedCertificate",
    "ensure_dev_certificate",
    "generate_certificate",
    "write_atomically",
]

logger = logging.getLogger("edge.devcert")

DEV_CERT_NAME = "dev-cert.pem"
DEV_KEY_NAME = "dev-key.pem"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock skew between client and server


@dataclass(frozen=True)
class GeneratedCertificate:
    """A certificate with its private key, ready to write out or to sign others."""

    certificate: x509.Certificate
    private_key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, password: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, hex; the value `CertificateReloader` reports."""
        return hashlib.sha256(self.certificate.public_bytes(serialization.Encoding.DER)).hexdigest()

    def write(
        self,
        cert_path: Path,
        key_path: Path,
        *,
        password: bytes | None = None,
        chain: Sequence[GeneratedCertificate] = (),
    ) -> tuple[Path, Path]:
        """Write cert (followed by `chain`, if any) and key (0600), each file replaced atomically."""
        write_atomically(key_path, self.key_pem(password), mode=0o600)
        write_atomically(cert_path, self.cert_pem + b"".join(c.cert_pem for c in chain), mode=0o644)
        return cert_path, key_path


def generate_certificate(
    common_name: str = "localhost",
    *,
    hosts: Sequence[str] = (),
    key_type: Literal["ec", "rsa"] = "ec",
    purpose: Literal["server", "client", "ca"] = "server",
    issuer: GeneratedCertificate | None = None,
    valid_from: dt.datetime | None = None,
    valid_for: dt.timedelta = dt.timedelta(days=30),
) -> GeneratedCertificate:
    """Make a certificate: self-signed unless `issuer` (a `purpose="ca"` result) signs it.

    `hosts` become DNS/IP subjectAltNames. An already expired certificate is
    `valid_from=now - 10 days, valid_for=1 day`.
    """
    key: PrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if key_type == "ec"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = valid_from or (dt.datetime.now(dt.timezone.utc) - _BACKDATE)
    signer_key: PrivateKey = issuer.private_key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + valid_for)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False
        )
    )
    if purpose == "ca":
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(_key_usage(signature=True, cert_sign=True), critical=True)
    else:
        eku = ExtendedKeyUsageOID.SERVER_AUTH if purpose == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        builder = builder.add_extension(
            _key_usage(signature=True, key_encipherment=key_type == "rsa"), critical=True
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False
        )
    return GeneratedCertificate(builder.sign(signer_key, hashes.SHA256()), key)


def ensure_dev_certificate(
    directory: Path, hosts: Sequence[str] = ("localhost", "127.0.0.1", "::1")
) -> tuple[Path, Path]:
    """Return (cert, key) of a self-signed ECDSA P-256 development certificate in `directory`.

    A new one is made when the files are missing, unreadable, expire within a day, or do
    not cover `hosts`; otherwise the existing pair is kept so browsers' exceptions stick.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = directory / DEV_CERT_NAME, directory / DEV_KEY_NAME
    reason = _dev_certificate_problem(cert_path, key_path, hosts)
    if reason is None:
        return cert_path, key_path
    logger.info("generating development certificate in %s (%s)", directory, reason)
    generated = generate_certificate(hosts[0] if hosts else "localhost", hosts=hosts, purpose="server")
    return generated.write(cert_path, key_path)


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace `path` in one rename so a watcher never reads a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _dev_certificate_problem(cert_path: Path, key_path: Path, hosts: Sequence[str]) -> str | None:
    if not cert_path.exists() or not key_path.exists():
        return "missing"
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        return f"unreadable: {exc}"
    if key.public_key() != cert.public_key():
        return "key does not match certificate"
    if cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) < dt.timedelta(days=1):
        return "expires within a day"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "no subjectAltName"
    if not set(map(_general_name, hosts)) <= set(san):
        return "hosts changed"
    return None


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_usage(*, signature: bool, key_encipherment: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )

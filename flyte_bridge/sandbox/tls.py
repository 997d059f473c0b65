"""TLS for the sandbox: a certificate and key for the gRPC port and the token endpoint.

Clients' TLS settings (a CA file, skipping verification) can then be tested against the
sandbox. :func:`generate_self_signed` writes a throwaway certificate for the loopback names,
for tests; it needs the ``cryptography`` package.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flyte_bridge.errors import FlyteConfigError

if TYPE_CHECKING:
    import grpc

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """A PEM certificate (chain) and its private key, checked to be readable.

    Args:
        cert_path: PEM file with the server certificate, optionally followed by its chain.
        key_path: PEM file with the unencrypted private key of the certificate.

    Raises:
        FlyteConfigError: A file is missing, or the two do not form a usable pair.
    """

    cert_path: Path
    key_path: Path

    def __post_init__(self) -> None:
        for name in ("cert_path", "key_path"):
            path = Path(getattr(self, name)).expanduser().resolve()
            if not path.is_file():
                raise FlyteConfigError(f"TLS {name.replace('_', ' ')} {path} is not a file")
            object.__setattr__(self, name, path)
        try:
            self.server_ssl_context()
        except ssl.SSLError as err:
            raise FlyteConfigError(
                f"TLS certificate {self.cert_path} and key {self.key_path} are not a usable PEM "
                f"pair (the key must be unencrypted and match the certificate): {err}"
            ) from None

    def server_credentials(self) -> grpc.ServerCredentials:
        """gRPC server credentials; clients are not asked for a certificate."""
        import grpc

        return grpc.ssl_server_credentials(
            [(self.key_path.read_bytes(), self.cert_path.read_bytes())]
        )

    def server_ssl_context(self) -> ssl.SSLContext:
        """An ``ssl`` server context for HTTPS endpoints."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def generate_self_signed(
    directory: str | os.PathLike[str],
    hosts: Sequence[str] = LOOPBACK_NAMES,
    *,
    valid_days: int = 7,
) -> TlsFiles:
    """Writes a self-signed certificate and key for ``hosts`` into ``directory``.

    The certificate is its own CA, so clients trust it by using ``cert.pem`` as their CA file
    (flytekit's ``ca_cert_file_path``). For tests only: the key is written unencrypted.

    Args:
        directory: Where ``cert.pem`` and ``key.pem`` are written (created if missing).
        hosts: DNS names and IP addresses the certificate is valid for.
        valid_days: How long the certificate is valid, from an hour ago.

    Returns:
        The written pair.

    Raises:
        FlyteConfigError: ``cryptography`` is not installed, or ``hosts`` is empty.
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise FlyteConfigError(
            "generating a certificate needs the 'cryptography' package (pip install cryptography)"
        ) from None
    if not hosts:
        raise FlyteConfigError("a certificate needs at least one host name or address")

    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # What strict verifiers (Python 3.13's default context) ask of a self-signed CA.
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = target / "cert.pem", target / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key_bytes)
    return TlsFiles(cert_path, key_path)


def tls_files(
    cert: str | os.PathLike[str] | None, key: str | os.PathLike[str] | None
) -> TlsFiles | None:
    """The pair from start options: both given, or neither (no TLS)."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise FlyteConfigError(
            "TLS needs both a certificate and its key (tls_cert and tls_key); got only the "
            + ("key" if cert is None else "certificate")
        )
    return TlsFiles(Path(cert), Path(key))

"""The cluster's certificates: one authority (CA) and one certificate per process, all made
here with the `cryptography` package (`bazaar certs`, and `bazaar up`/`demo` when missing).

Files, in the configured folder (`[tls] dir`): `ca.pem` (the authority every process trusts),
`ca.key` (needed only to make more certificates: keep it off the hosts that run services),
and `<name>.pem`/`<name>.key` per process, the name being its certificate's common name
(identity.py). Every certificate serves both ends of a link (server and client auth): a
replica both answers and calls.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bazaar.tls.identity import dns_name

CA_NAME = "ca"
CA_DAYS = 3650
CERT_DAYS = 825


def certificate_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.pem"


def key_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.key"


class AuthorityKeyMissing(Exception):
    """Certificates are missing, and the authority that must sign them is here without its key."""


def make_certificates(directory: Path, names: list[str], force: bool = False) -> list[str]:
    """Make the authority (unless it exists) and a certificate for each name that has none
    (`force`: a new authority and new certificates for all). Returns the names written.

    An authority whose key is not here (kept off the service hosts, as it should be) is never
    replaced unasked: with every certificate present nothing is made; with some missing,
    AuthorityKeyMissing says where to make them."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    has_ca, has_ca_key = certificate_path(directory, CA_NAME).exists(), key_path(directory, CA_NAME).exists()
    if has_ca and not has_ca_key and not force:
        missing = [n for n in names if not (certificate_path(directory, n).exists() and key_path(directory, n).exists())]
        if missing:
            raise AuthorityKeyMissing(
                f"{directory} lacks certificates for {', '.join(missing)}, and the authority's key (ca.key) "
                "that would sign them is not here: make them where ca.key is kept and copy them here "
                "(--force would replace the authority, and every process would need new certificates)"
            )
        return []
    if force or not (has_ca and has_ca_key):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _authority(ca_key)
        _write(directory, CA_NAME, ca_cert, ca_key)
        written.append(CA_NAME)
        force = True  # certificates of an older authority are no longer trusted
    ca_cert = x509.load_pem_x509_certificate(certificate_path(directory, CA_NAME).read_bytes())
    ca_key = serialization.load_pem_private_key(key_path(directory, CA_NAME).read_bytes(), password=None)
    for name in names:
        if not force and certificate_path(directory, name).exists() and key_path(directory, name).exists():
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        _write(directory, name, _issue(name, key, ca_cert, ca_key), key)  # type: ignore[arg-type]
        written.append(name)
    return written


def _authority(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bazaar cluster CA")])
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False,
        ), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _issue(
    name: str, key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name(name))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _write(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    key_file = key_path(directory, name)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Readable by the owner only, from the moment it exists.
    fd = os.open(key_file.with_suffix(".key.tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(key_file.with_suffix(".key.tmp"), key_file)
    certificate_path(directory, name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)

"""A process's credentials on disk: the cluster's authority and its own certificate and key,
read once at start. A process given none refuses to start, naming the command that makes them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from bazaar.config import Config
from bazaar.tls.certs import CA_NAME, certificate_path, key_path


class TlsError(Exception):
    """The credentials cannot be used; the message says what to run."""


@dataclass(frozen=True)
class Credentials:
    name: str
    authority: bytes
    certificate: bytes
    key: bytes


def load_credentials(config: Config, name: str) -> Credentials | None:
    """`name`'s credentials (None when the configuration turns TLS off)."""
    if config.tls.insecure:
        return None
    directory = config.tls_dir
    files = [certificate_path(directory, CA_NAME), certificate_path(directory, name), key_path(directory, name)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise TlsError(
            f"no TLS credentials for {name} in {directory} (missing {', '.join(missing)}): "
            f"make them with `bazaar certs{_where(config)}`"
        )
    try:
        authority, certificate, key = (f.read_bytes() for f in files)
    except OSError as e:
        raise TlsError(f"cannot read the TLS credentials for {name}: {e}") from None
    if files[2].stat().st_mode & 0o077:
        raise TlsError(f"{files[2]} may be read by others than its owner: `chmod 600` it")
    _check(name, files, authority, certificate, key, config)
    return Credentials(name, authority, certificate, key)


def _check(name: str, files: list[Path], authority: bytes, certificate: bytes, key: bytes, config: Config) -> None:
    """Refuses at start what would fail at the first handshake, with a message naming the file."""
    ca_file, cert_file, key_file = files
    remake = f"make new ones with `bazaar certs --force{_where(config)}`"
    try:
        ca = x509.load_pem_x509_certificate(authority)
    except ValueError:
        raise TlsError(f"{ca_file} is not a PEM certificate: {remake}") from None
    try:
        own = x509.load_pem_x509_certificate(certificate)
    except ValueError:
        raise TlsError(f"{cert_file} is not a PEM certificate: {remake}") from None
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError):
        raise TlsError(f"{key_file} is not an unencrypted PEM private key: {remake}") from None
    names = own.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [n.value for n in names] != [name]:
        raise TlsError(f"{cert_file} is not {name}'s certificate (it names {', '.join(str(n.value) for n in names) or 'no one'})")
    try:
        own.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise TlsError(f"{cert_file} was not issued by the authority of {ca_file}: {remake}") from None
    if private.public_key().public_bytes(*_SPKI) != own.public_key().public_bytes(*_SPKI):
        raise TlsError(f"{key_file} is not the key of {cert_file}: {remake}")


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _where(config: Config) -> str:
    return f" --config {config.source}" if config.source is not None else ""

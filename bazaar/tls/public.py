"""HTTPS on the front end's public port (docs/api.md): the server's TLS settings from
`[frontend] certificate` and `key`, and the trust of those who connect to it.

A client trusts the certificates of one PEM file: a CA's, or the front end's own self-signed
certificate. (The cluster's own links use the cluster's authority instead: certs.py, web.py.)
"""

from __future__ import annotations

import ssl as stdlib_ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet import ssl
from twisted.web.client import BrowserLikePolicyForHTTPS

from bazaar.config import Config, ConfigError


class TlsFileError(ValueError):
    """A certificate or key file that cannot be used; the message names the file."""


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise TlsFileError(f"cannot read {str(path)!r}: {e.strerror}") from None


def certificates(path: Path) -> list[x509.Certificate]:
    """The PEM certificates of `path`, in order (a server's own first, then its chain)."""
    data = _read(path)
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TlsFileError(f"{str(path)!r} holds no valid PEM certificate") from None


def server_options(certificate: Path, key: Path) -> ssl.CertificateOptions:
    """The front end's TLS settings; ConfigError naming the key when a file cannot serve."""
    try:
        chain = certificates(certificate)
    except TlsFileError as e:
        raise ConfigError(f"frontend.certificate: {e}") from None
    try:
        private_key = serialization.load_pem_private_key(_read(key), password=None)
    except (TlsFileError, ValueError, TypeError) as e:  # TypeError: the key is encrypted
        raise ConfigError(f"frontend.key: {str(key)!r} is not an unencrypted PEM private key ({e})") from None
    options = ssl.CertificateOptions(privateKey=private_key, certificate=chain[0], extraCertChain=chain[1:])
    try:
        options.getContext()  # a key that is not the certificate's fails here, not at the first client
    except Exception as e:
        raise ConfigError(f"frontend.key: not the private key of frontend.certificate ({e})") from None
    return options


def client_policy(trusted: Path) -> BrowserLikePolicyForHTTPS:
    """For a Twisted Agent: HTTPS trusting only the certificates of `trusted`."""
    roots = [ssl.Certificate.loadPEM(c.public_bytes(serialization.Encoding.PEM)) for c in certificates(trusted)]
    return BrowserLikePolicyForHTTPS(trustRoot=ssl.trustRootFromCertificates(roots))


def stdlib_context(trusted: Path) -> stdlib_ssl.SSLContext:
    """For urllib and http.client: HTTPS trusting only the certificates of `trusted`."""
    certificates(trusted)  # the same check and message as for Twisted
    return stdlib_ssl.create_default_context(cafile=str(trusted))


def frontend_scheme(config: Config) -> str:
    return "https" if config.frontend.certificate is not None else "http"

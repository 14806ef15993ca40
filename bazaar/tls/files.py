"""A process's credentials on disk: the cluster's authority and its own certificate and key,
read once at start. A process given none refuses to start, naming the command that makes them."""

from __future__ import annotations

from dataclasses import dataclass

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
        where = f" --config {config.source}" if config.source is not None else ""
        raise TlsError(
            f"no TLS credentials for {name} in {directory} (missing {', '.join(missing)}): "
            f"make them with `bazaar certs{where}`"
        )
    try:
        authority, certificate, key = (f.read_bytes() for f in files)
    except OSError as e:
        raise TlsError(f"cannot read the TLS credentials for {name}: {e}") from None
    return Credentials(name, authority, certificate, key)

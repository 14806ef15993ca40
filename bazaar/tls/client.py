"""A blocking HTTPS client with the cluster's credentials (the integration tests read the front
end's internal listener with it): it shows its own certificate and expects the peer's, by
name, whatever its address."""

from __future__ import annotations

import http.client
import socket
import ssl

from bazaar.config import Address, Config
from bazaar.tls.certs import CA_NAME, certificate_path, key_path
from bazaar.tls.identity import dns_name


def cluster_context(config: Config, name: str) -> ssl.SSLContext:
    directory = config.tls_dir
    context = ssl.create_default_context(cafile=str(certificate_path(directory, CA_NAME)))
    context.load_cert_chain(str(certificate_path(directory, name)), str(key_path(directory, name)))
    return context


class ClusterHTTPSConnection(http.client.HTTPSConnection):
    """To `peer` (a process name) at `address`, as `name`."""

    def __init__(self, config: Config, name: str, peer: str, address: Address, timeout: float = 10.0) -> None:
        super().__init__(address.host.strip("[]"), address.port, timeout=timeout,
                         context=cluster_context(config, name))
        self._peer = peer

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=dns_name(self._peer))  # type: ignore[attr-defined]

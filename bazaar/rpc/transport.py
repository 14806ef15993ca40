"""How a process listens and dials on the cluster's links: mutual TLS with the cluster's
authority (every peer shows a certificate it signed), or plaintext when the configuration says
`insecure` (loopback only). A channel expects its peer's own name (its certificate's DNS name),
so a replica dialling replica 2 is sure to reach replica 2, not any holder of a certificate.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import grpc

from bazaar.config import Config
from bazaar.rpc.roles import RoleInterceptor
from bazaar.tls.files import Credentials, load_credentials
from bazaar.tls.identity import dns_name


class Transport:
    def __init__(
        self, credentials: Credentials | None, peers: dict[str, str] | None = None,
        roles: grpc.ServerInterceptor | None = None,
    ) -> None:
        """`peers`: address -> the name of the process there; `roles`: the check of every call
        a server takes (with no credentials there are no identities to check). Nothing of
        gRPC is made before the first listen or dial: twistd may fork after the process is
        built."""
        self.credentials = credentials
        self._peers = peers or {}
        self.interceptors = [roles] if roles is not None and credentials is not None else []

    @functools.cached_property
    def _server(self) -> grpc.ServerCredentials:
        assert self.credentials is not None
        return grpc.ssl_server_credentials(
            [(self.credentials.key, self.credentials.certificate)],
            root_certificates=self.credentials.authority,
            require_client_auth=True,
        )

    @functools.cached_property
    def _client(self) -> grpc.ChannelCredentials:
        assert self.credentials is not None
        return grpc.ssl_channel_credentials(
            root_certificates=self.credentials.authority,
            private_key=self.credentials.key,
            certificate_chain=self.credentials.certificate,
        )

    @classmethod
    def for_process(cls, config: Config, name: str) -> "Transport":
        """Raises TlsError when the process's credentials are missing."""
        return cls(load_credentials(config, name), peer_names(config), RoleInterceptor(config))

    def observed(self, interceptor: grpc.ServerInterceptor) -> "Transport":
        """This transport, with `interceptor` (the metrics' CallObserver) first on every call
        its servers take: before the role check, so refused calls are seen too."""
        observed = copy.copy(self)
        observed.interceptors = [interceptor, *self.interceptors]
        return observed

    @property
    def secure(self) -> bool:
        return self.credentials is not None

    def listen(self, server: grpc.Server, address: str) -> None:
        if self.credentials is None:
            server.add_insecure_port(address)
        else:
            server.add_secure_port(address, self._server)

    def dial(self, address: str, options: list[tuple[str, Any]]) -> grpc.Channel:
        if self.credentials is None:
            return grpc.insecure_channel(address, options=options)
        name = self._peers.get(address)
        if name is None:
            raise ValueError(f"{address} is no address of the configured cluster")
        return grpc.secure_channel(
            address, self._client, options=[*options, ("grpc.ssl_target_name_override", dns_name(name))],
        )


def peer_names(config: Config) -> dict[str, str]:
    return {str(address): name for name, address in config.addresses_of().items()}


INSECURE = Transport(None)

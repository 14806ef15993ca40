"""The cluster's credentials on Twisted's TLS: the front end's internal listener (client
certificate required) and the HTTPS agent the leader and the operator's tools call it with."""

from __future__ import annotations

from typing import Any, Collection

from twisted.internet import ssl
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from bazaar.config import Config
from bazaar.tls.files import Credentials
from bazaar.tls.identity import Identity, cluster_identity, dns_name


def _own(credentials: Credentials) -> ssl.PrivateCertificate:
    return ssl.PrivateCertificate.loadPEM(credentials.certificate + b"\n" + credentials.key)


def server_options(credentials: Credentials) -> Any:
    """A listener that takes only clients with a certificate of the cluster's authority."""
    authority = ssl.Certificate.loadPEM(credentials.authority)
    return _own(credentials).options(authority)  # verify=True, requireCertificate=True


@implementer(IPolicyForHTTPS)
class ClusterPolicy(BrowserLikePolicyForHTTPS):
    """Dials `peer` (a process name) whatever address it is at: its certificate must name it."""

    def __init__(self, credentials: Credentials, peer: str) -> None:
        self._options = ssl.optionsForClientTLS(
            dns_name(peer), trustRoot=ssl.Certificate.loadPEM(credentials.authority),
            clientCertificate=_own(credentials),
        )

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return self._options


def internal_url(config: Config, credentials: Credentials | None, frontend_id: int = 1) -> str:
    """A front end's internal listener: HTTPS, or plaintext when TLS is off (no credentials)."""
    return f"{'http' if credentials is None else 'https'}://{config.frontend_address(frontend_id).internal}"


def cluster_agent(reactor: Any, credentials: Credentials, peer: str, pool: Any = None) -> Agent:
    return Agent(reactor, contextFactory=ClusterPolicy(credentials, peer), pool=pool)


def peer_identity(request: Any, replicas: Collection[int], frontends: Collection[int] = (1,)) -> Identity | None:
    """Who made an HTTP request over the internal listener, from its client certificate: its
    one common name, a process of this cluster (`replicas`, `frontends`: the configured ids)."""
    transport = getattr(request.channel, "transport", None)
    get = getattr(transport, "getPeerCertificate", None)
    certificate = get() if get is not None else None
    if certificate is None:
        return None
    names = [value.decode("utf-8", "replace") for key, value in certificate.get_subject().get_components()
             if key == b"CN"]
    return cluster_identity(names, replicas, frontends)

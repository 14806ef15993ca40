"""twistd tap for the front end: `twistd -n bazaar-frontend [--config PATH]`.

Everything is built here but nothing touches gRPC until the services start (twistd forks after
makeService): the backend clients open their channels through `Channels` on first use.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import SSLServer, TCPServer
from twisted.application.service import MultiService, Service
from twisted.web.server import Site

from bazaar.config import Config
from bazaar.core.lru import LRUCache
from bazaar.frontend.app import FrontEnd
from bazaar.frontend.backends import CatalogClient, ReplicaClient
from bazaar.frontend.internal import CacheControl
from bazaar.frontend.leader import LeaderTracker
from bazaar.frontend.trading import TradePlacer
from bazaar.plugins.options import ConfigOptions
from bazaar.rpc.services import Channels
from bazaar.tls.identity import FRONTEND
from bazaar.tls.web import peer_identity, server_options


class Options(ConfigOptions):
    synopsis = "[--config PATH] [--access-log PATH]"
    longdesc = "Serve the Bazaar HTTP API at the front end address of the configuration."
    optParameters = [
        ["access-log", None, None, "Log each HTTP request to this file (default: no access log)."],
    ]

    def postOptions(self) -> None:
        super().postOptions()
        self.identify(FRONTEND)


class ApiSite(Site):
    """The API's site: JSON bodies only, and an access log only when asked for one."""

    def __init__(self, resource: Any, access_log: str | None) -> None:
        # Bodies are JSON: parsing each POST's Content-Type for form fields (with the email
        # package) would cost more CPU than the rest of the request's HTTP handling.
        super().__init__(resource, logPath=access_log, parsePOSTFormSubmission=False)
        self.displayTracebacks = False

    def log(self, request: Any) -> None:
        # Without a path, Site would send a line per request through the process log.
        if self.logPath is not None:
            super().log(request)


class SelectLeaderAtStart(Service):
    """Looks for the order leader once the channels are up; finding none is not fatal."""

    def __init__(self, leaders: LeaderTracker) -> None:
        self.leaders = leaders

    def startService(self) -> None:
        super().startService()
        self.leaders.start()


def build_front_end(reactor: Any, config: Config, channels: Channels) -> FrontEnd:
    timeouts = config.timeouts
    replicas = {
        replica_id: ReplicaClient(reactor, channels, replica_id, address, timeouts)
        for replica_id, address in config.replicas.items()
    }
    leaders = LeaderTracker(
        replicas, reactor, probe_timeout=timeouts.probe, assign_timeout=timeouts.rpc
    )
    catalog = CatalogClient(reactor, channels, config.catalog, timeouts)
    cache = LRUCache(config.frontend.cache_size, now=reactor.seconds) if config.frontend.cache else None
    trades = TradePlacer(leaders, reactor, rpc_timeout=timeouts.rpc, request_timeout=timeouts.request)
    return FrontEnd(catalog, leaders, cache, trades)


def makeService(options: Options) -> MultiService:
    from twisted.internet import reactor

    config = options.cluster
    root = MultiService()
    channels = Channels(options.transport)
    channels.setServiceParent(root)  # first: started before and stopped after its users

    front_end = build_front_end(reactor, config, channels)
    site = ApiSite(front_end.app.resource(), options["access-log"])
    address = config.frontend.address
    TCPServer(address.port, site, interface=_interface(address)).setServiceParent(root)
    SelectLeaderAtStart(front_end.leaders).setServiceParent(root)
    internal_server(config, options.transport.credentials, front_end).setServiceParent(root)
    return root


def internal_server(config: Config, credentials: Any, front_end: FrontEnd) -> Service:
    """The internal listener: only clients with a cluster certificate (with TLS off, a
    plaintext one, on loopback only)."""
    address = config.frontend.internal
    control = CacheControl(front_end.cache, peer_identity if credentials is not None else None)
    site = ApiSite(control.app.resource(), None)
    if credentials is None:
        return TCPServer(address.port, site, interface=_interface(address))
    return SSLServer(address.port, site, server_options(credentials), interface=_interface(address))


def _interface(address: Any) -> str:
    return address.host.strip("[]")  # "[::1]" in the config, "::1" to listen on

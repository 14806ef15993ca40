"""twistd tap for the front end: `twistd -n bazaar-frontend [--config PATH]`.

Everything is built here but nothing touches gRPC until the services start (twistd forks after
makeService): the backend clients open their channels through `Channels` on first use.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import TCPServer
from twisted.application.service import MultiService, Service
from twisted.web.server import Site

from bazaar.config import Config
from bazaar.core.lru import LRUCache
from bazaar.frontend.app import FrontEnd
from bazaar.frontend.backends import CatalogClient, ReplicaClient
from bazaar.frontend.leader import LeaderTracker
from bazaar.frontend.trading import TradePlacer
from bazaar.plugins.options import ConfigOptions
from bazaar.rpc.services import Channels


class Options(ConfigOptions):
    synopsis = "[--config PATH] [--access-log PATH]"
    longdesc = "Serve the Bazaar HTTP API at the front end address of the configuration."
    optParameters = [
        ["access-log", None, None, "Log each HTTP request to this file (default: no access log)."],
    ]


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
    channels = Channels()
    channels.setServiceParent(root)  # first: started before and stopped after its users

    front_end = build_front_end(reactor, config, channels)
    site = ApiSite(front_end.app.resource(), options["access-log"])
    address = config.frontend.address
    interface = address.host.strip("[]")  # "[::1]" in the config, "::1" to listen on
    TCPServer(address.port, site, interface=interface).setServiceParent(root)
    SelectLeaderAtStart(front_end.leaders).setServiceParent(root)
    return root

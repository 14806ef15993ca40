"""twistd tap for the front end: `twistd -n bazaar-frontend [--config PATH]`.

Everything is built here but nothing touches gRPC until the services start (twistd forks after
makeService): the backend clients open their channels through `Channels` on first use.
"""

from __future__ import annotations

import dataclasses
import functools
import resource
from typing import Any

from twisted.application.internet import SSLServer, TCPServer
from twisted.application.service import MultiService, Service
from twisted.logger import Logger
from twisted.python import usage

from bazaar.config import Config, ConfigError, FrontendConfig
from bazaar.core.lru import LRUCache
from bazaar.frontend.app import FrontEnd
from bazaar.frontend.backends import CatalogClient, ReplicaClient
from bazaar.frontend.internal import CacheControl
from bazaar.frontend.leader import LeaderTracker
from bazaar.frontend.readiness import ReadinessCheck
from bazaar.frontend.site import MAX_LINGERING, ApiSite
from bazaar.frontend.trading import TradePlacer
from bazaar.metrics.frontend import register_frontend
from bazaar.metrics.registry import process_registry
from bazaar.metrics.server import METRICS_DESCRIPTORS, metrics_service
from bazaar.plugins.options import ConfigOptions
from bazaar.rpc.services import Channels
from bazaar.tls.identity import frontend_name
from bazaar.tls.public import server_options as public_server_options
from bazaar.tls.web import peer_identity, server_options

log = Logger()

# Connections waiting to be accepted: a burst of clients beyond the cap is answered 503 at once
# rather than left to retry their SYN.
BACKLOG = 1024
# File descriptors the front end needs besides its listeners' connections: gRPC channels, logs.
SPARE_DESCRIPTORS = 100
# The internal listener's connections at once (and its refusals lingering at once), and the
# time one has to send its request (its TLS handshake first).
INTERNAL_CONNECTIONS = 64
INTERNAL_READ_TIMEOUT = 3.0


class Options(ConfigOptions):
    synopsis = "[--id N] [--config PATH] [--access-log PATH]"
    longdesc = "Serve the Bazaar HTTP API at front end N's address of the configuration."
    optParameters = [
        ["id", "i", 1, "This front end's id (a key of [frontends]; 1 for [frontend]'s address).", int],
        ["access-log", None, None, "Log each HTTP request to this file (default: no access log)."],
    ]

    def postOptions(self) -> None:
        super().postOptions()
        try:
            self.cluster.frontend_address(self["id"])
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None
        self.identify(frontend_name(self["id"]))
        frontend = self.cluster.frontend
        self["tls"] = None
        if frontend.certificate is not None and frontend.key is not None:
            try:  # a certificate or key that cannot serve stops the front end before it starts
                self["tls"] = public_server_options(frontend.certificate, frontend.key)
            except ConfigError as e:
                raise usage.UsageError(f"{self.cluster.source}: {e}") from None


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
    readiness = ReadinessCheck(leaders, catalog, reactor, deadline=timeouts.rpc)
    return FrontEnd(catalog, leaders, cache, trades, readiness, config.frontend.order_cache_size)


def makeService(options: Options) -> MultiService:
    from twisted.internet import reactor

    config = options.cluster
    root = options.root()
    channels = Channels(options.transport)
    channels.setServiceParent(root)  # first: started before and stopped after its users

    front_end = build_front_end(reactor, config, channels)
    site = ApiSite(front_end.app.resource(), config.frontend, options["access-log"])
    name = frontend_name(options["id"])
    address = config.bind(name, config.frontend_address(options["id"]).address)
    interface = _interface(address)
    _make_room_for(config.frontend)
    if options["tls"] is not None:
        server: Any = SSLServer(address.port, site, options["tls"], backlog=BACKLOG, interface=interface)
    else:
        server = TCPServer(address.port, site, backlog=BACKLOG, interface=interface)
    server.setServiceParent(root)
    SelectLeaderAtStart(front_end.leaders).setServiceParent(root)
    internal_server(config, options.transport.credentials, front_end, options["id"]).setServiceParent(root)
    registry = process_registry()
    register_frontend(registry, front_end, site)
    metrics = metrics_service(config, name, registry)
    if metrics is not None:
        metrics.setServiceParent(root)  # last: started once the rest is, stopped first
    return root


def internal_server(config: Config, credentials: Any, front_end: FrontEnd, frontend_id: int = 1) -> Service:
    """The internal listener: only clients with a cluster certificate (with TLS off, a
    plaintext one, on loopback only)."""
    address = config.bind(frontend_name(frontend_id), config.frontend_address(frontend_id).internal)
    who = functools.partial(peer_identity, replicas=set(config.replicas), frontends=set(config.frontends))
    control = CacheControl(front_end.cache, who if credentials is not None else None)
    # Its own small limits: a few cluster processes call it, and connections that never finish
    # their handshake must neither crowd the leader's push out for long nor take the public
    # port's descriptors.
    limits = dataclasses.replace(
        config.frontend, max_connections=INTERNAL_CONNECTIONS, max_connections_per_peer=INTERNAL_CONNECTIONS,
        read_timeout=min(config.frontend.read_timeout, INTERNAL_READ_TIMEOUT),
    )
    site = ApiSite(control.app.resource(), limits, None, max_lingering=INTERNAL_CONNECTIONS)
    if credentials is None:
        return TCPServer(address.port, site, interface=_interface(address))
    return SSLServer(address.port, site, server_options(credentials), interface=_interface(address))


def _interface(address: Any) -> str:
    return address.host.strip("[]")  # "[::1]" in the config, "::1" to listen on


def descriptors_needed(frontend: FrontendConfig) -> int:
    """The file descriptors a front end may hold at once: each listener's connections at its
    cap and its refused connections lingering (the public port's, the internal listener's,
    the metrics listener's), and SPARE_DESCRIPTORS."""
    public = frontend.max_connections + MAX_LINGERING
    return public + 2 * INTERNAL_CONNECTIONS + METRICS_DESCRIPTORS + SPARE_DESCRIPTORS


def _make_room_for(frontend: FrontendConfig) -> None:
    """Raise the soft file descriptor limit to what the front end needs if it is lower and the
    hard limit allows; say so when even the hard limit is lower, since the caps then cannot
    protect."""
    descriptors = descriptors_needed(frontend)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= descriptors:
        return
    wanted = descriptors if hard == resource.RLIM_INFINITY else min(descriptors, hard)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < descriptors:
        log.warn("the file descriptor limit {limit} is below frontend.max_connections plus {spare}: "
                 "lower max_connections", limit=wanted, spare=descriptors - frontend.max_connections)

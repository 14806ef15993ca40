"""The metrics endpoint: GET /metrics on plain HTTP where the config says (metrics_address).

prometheus_client's MetricsResource serves the registry (on the reactor's thread pool); every
other path is a 404, and the site writes no log line per scrape.

The listener is an ApiSite (bazaar/frontend/site.py, with its HTTP channel): the public
port's machinery with small limits of its own, since a scraper or two and `bazaar status` are
all that call it. At most METRICS_CONNECTIONS connections at once (METRICS_PER_PEER from one
address; beyond, a 503), each request whole within METRICS_READ_TIMEOUT of its first byte (the
first within that of the connection's start; else a 408), a kept-alive connection closed after
METRICS_IDLE_TIMEOUT without a request: connections that never finish a request cannot take
the process's descriptors.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from twisted.application.internet import TCPServer
from twisted.application.service import Service
from twisted.web.resource import Resource

from bazaar.config import Config, FrontendConfig
from bazaar.frontend.site import ApiSite

PATH = [b"metrics"]
METRICS_CONNECTIONS = 16
METRICS_PER_PEER = 8  # one address cannot keep another scraper out
METRICS_READ_TIMEOUT = 5.0
METRICS_IDLE_TIMEOUT = 30.0
METRICS_LIMITS = FrontendConfig(
    max_connections=METRICS_CONNECTIONS, max_connections_per_peer=METRICS_PER_PEER,
    read_timeout=METRICS_READ_TIMEOUT, idle_timeout=METRICS_IDLE_TIMEOUT,
)
# Refused connections left to read their 503 at once; beyond, refusals are closed at once.
METRICS_LINGERING = METRICS_CONNECTIONS
# The most descriptors the listener's connections hold at once (in the front end's budget).
METRICS_DESCRIPTORS = METRICS_CONNECTIONS + METRICS_LINGERING


class MetricsPage(Resource):
    """The whole site: /metrics, and 404 for anything else (prometheus_client's resource
    would answer any path with the metrics)."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        # Imported here: prometheus_client.twisted imports the global reactor, which must be
        # the one twistd installed.
        from prometheus_client.twisted import MetricsResource

        self._metrics = MetricsResource(registry)

    def render(self, request: Any) -> Any:
        if request.postpath != PATH:
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"not found: the metrics are at /metrics\n"
        return self._metrics.render(request)


class MetricsSite(ApiSite):
    noisy = False  # no "starting factory" lines either
    serving = "the metrics endpoint"

    def __init__(self, registry: CollectorRegistry, reactor: Any = None) -> None:
        # No access log, and no request timed: Prometheus scrapes every few seconds, and the
        # process log gets no line per scrape.
        super().__init__(MetricsPage(registry), METRICS_LIMITS, None, reactor, max_lingering=METRICS_LINGERING)
        assert self.descriptors == METRICS_DESCRIPTORS


def metrics_service(config: Config, name: str, registry: CollectorRegistry) -> Service | None:
    """Process `name`'s endpoint, or None when its config turns metrics off."""
    address = config.metrics_address(name)
    if address is None:
        return None
    return TCPServer(address.port, MetricsSite(registry), interface=address.host.strip("[]"))

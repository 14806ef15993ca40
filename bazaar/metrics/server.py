"""The metrics endpoint: GET /metrics on plain HTTP where the config says (metrics_address).

prometheus_client's MetricsResource serves the registry (on the reactor's thread pool); every
other path is a 404, and the site writes no log line per scrape.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from twisted.application.internet import TCPServer
from twisted.application.service import Service
from twisted.web.resource import Resource
from twisted.web.server import Site

from bazaar.config import Config

PATH = [b"metrics"]


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


class MetricsSite(Site):
    noisy = False  # no "starting factory" lines either

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(MetricsPage(registry))
        self.displayTracebacks = False

    def log(self, request: Any) -> None:
        pass  # Prometheus scrapes every few seconds: no line per scrape in the process log


def metrics_service(config: Config, name: str, registry: CollectorRegistry) -> Service | None:
    """Process `name`'s endpoint, or None when its config turns metrics off."""
    address = config.metrics_address(name)
    if address is None:
        return None
    return TCPServer(address.port, MetricsSite(registry), interface=address.host.strip("[]"))

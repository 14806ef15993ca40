"""twistd tap for the catalog: `twistd -n bazaar-catalog [--config PATH]`."""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.python import usage

from bazaar.catalog.service import CatalogService
from bazaar.catalog.store import CatalogStore
from bazaar.core.stock import table_id
from bazaar.metrics.catalog import register_catalog
from bazaar.metrics.registry import process_registry
from bazaar.metrics.rpc import GrpcServerMetrics
from bazaar.metrics.server import metrics_service
from bazaar.plugins.options import ConfigOptions
from bazaar.storefile import StoreError, check_file
from bazaar.tls.identity import CATALOG


class Options(ConfigOptions):
    synopsis = "[--config PATH]"
    longdesc = "Serve the Bazaar stock table over gRPC at the catalog address of the configuration."

    def postOptions(self) -> None:
        super().postOptions()
        try:
            check_file(self.cluster.service_dir("catalog") / CatalogStore.FILENAME, table_id(self.cluster.stocks))
        except StoreError as e:
            raise usage.UsageError(str(e)) from None
        self.identify(CATALOG)


def makeService(options: Options) -> MultiService:
    from twisted.internet import reactor

    root = options.root()
    registry = process_registry()
    transport = options.transport.observed(GrpcServerMetrics(registry).interceptor())
    service = CatalogService(reactor, options.cluster, transport)
    service.setServiceParent(root)
    register_catalog(registry, service)
    metrics = metrics_service(options.cluster, CATALOG, registry)
    if metrics is not None:
        metrics.setServiceParent(root)  # last: started once the rest is, stopped first
    return root

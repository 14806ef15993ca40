"""twistd tap for an order replica: `twistd -n bazaar-order --id N [--config PATH]`."""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.python import usage

from bazaar.config import ConfigError
from bazaar.core.stock import table_id
from bazaar.metrics.order import register_replica
from bazaar.metrics.registry import process_registry
from bazaar.metrics.rpc import GrpcServerMetrics
from bazaar.metrics.server import metrics_service
from bazaar.order.service import OrderReplicaService
from bazaar.order.store import OrderStore
from bazaar.plugins.options import ConfigOptions
from bazaar.storefile import StoreError, check_file
from bazaar.tls.identity import replica_name


class Options(ConfigOptions):
    synopsis = "--id N [--config PATH]"
    longdesc = "Run order replica N of the configuration (its address is replicas.N)."
    optParameters = [["id", "i", None, "This replica's id (a key of [replicas]).", int]]

    def postOptions(self) -> None:
        super().postOptions()
        if self["id"] is None:
            raise usage.UsageError("--id is required (one of the ids under [replicas])")
        try:
            self.cluster.replica_address(self["id"])
            check_file(self.cluster.replica_dir(self["id"]) / OrderStore.FILENAME, table_id(self.cluster.stocks))
        except (ConfigError, StoreError) as e:
            raise usage.UsageError(str(e)) from None
        self.identify(replica_name(self["id"]))


def makeService(options: Options) -> MultiService:
    from twisted.internet import reactor

    root = options.root()
    registry = process_registry()
    transport = options.transport.observed(GrpcServerMetrics(registry).interceptor())
    service = OrderReplicaService(reactor, options.cluster, options["id"], transport)
    service.setServiceParent(root)
    register_replica(registry, service)
    metrics = metrics_service(options.cluster, replica_name(options["id"]), registry)
    if metrics is not None:
        metrics.setServiceParent(root)  # last: started once the rest is, stopped first
    return root

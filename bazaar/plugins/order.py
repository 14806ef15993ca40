"""twistd tap for an order replica: `twistd -n bazaar-order --id N [--config PATH]`."""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.python import usage

from bazaar.config import ConfigError
from bazaar.core.stock import table_id
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
    OrderReplicaService(reactor, options.cluster, options["id"], options.transport).setServiceParent(root)
    return root

"""twistd tap for an order replica: `twistd -n bazaar-order --id N [--config PATH]`."""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.python import usage

from bazaar.config import ConfigError
from bazaar.order.service import OrderReplicaService
from bazaar.plugins.options import ConfigOptions


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
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None


def makeService(options: Options) -> MultiService:
    from twisted.internet import reactor

    root = MultiService()
    OrderReplicaService(reactor, options.cluster, options["id"]).setServiceParent(root)
    return root

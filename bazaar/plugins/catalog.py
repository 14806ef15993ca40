"""twistd tap for the catalog: `twistd -n bazaar-catalog [--config PATH]`."""

from __future__ import annotations

from twisted.application.service import MultiService

from bazaar.catalog.service import CatalogService
from bazaar.plugins.options import ConfigOptions


class Options(ConfigOptions):
    synopsis = "[--config PATH]"
    longdesc = "Serve the Bazaar stock table over gRPC at the catalog address of the configuration."


def makeService(options: Options) -> MultiService:
    from twisted.internet import reactor

    root = MultiService()
    CatalogService(reactor, options.cluster).setServiceParent(root)
    return root

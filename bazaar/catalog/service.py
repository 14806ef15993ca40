"""The catalog process: its store, its writer thread and its gRPC server, started in that order."""

from __future__ import annotations

from typing import Any

import grpc
from twisted.application.service import MultiService
from twisted.python.failure import Failure

from bazaar.catalog.servicer import CatalogServicer
from bazaar.catalog.store import CatalogStore
from bazaar.config import Config
from bazaar.rpc.bridge import ReactorHop
from bazaar.reactor.fatal import give_up
from bazaar.reactor.group_commit import GroupCommitter
from bazaar.rpc.names import CATALOG_SERVICE
from bazaar.rpc.services import GrpcServerService
from bazaar.rpc.transport import Transport
from bazaar.tls.identity import CATALOG
from bazaar.v1 import catalog_pb2_grpc

SERVICE_NAME = CATALOG_SERVICE


class CatalogService(MultiService):
    def __init__(self, reactor: Any, config: Config, transport: Transport) -> None:
        super().__init__()
        self.config = config
        self.store: CatalogStore | None = None
        self._hop = ReactorHop(reactor, timeout=config.timeouts.rpc)
        self.committer = GroupCommitter(reactor, self._apply, name="catalog", broken=self._write_failed)
        self.committer.setServiceParent(self)
        self.grpc = GrpcServerService(config.bind(CATALOG, config.catalog), self._register, [SERVICE_NAME], transport)
        self.grpc.setServiceParent(self)
        self._reactor = reactor

    def _apply(self, batches: list[Any]) -> list[Any]:
        assert self.store is not None
        return self.store.apply(batches)

    def _write_failed(self, failure: Failure) -> None:
        # The transaction was rolled back (nothing half-applied), but the store may refuse
        # every later write (a full disk): a restart finds out, and reloads what is on disk.
        give_up(self._reactor, "a catalog write", failure.getErrorMessage(), self.grpc.stop_serving)

    def _register(self, server: grpc.Server) -> None:
        assert self.store is not None
        servicer = CatalogServicer(self.store, self.committer, self._hop, self.config.timeouts.rpc)
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server(servicer, server)

    def startService(self) -> None:
        # Opened here, not in __init__: twistd forks after makeService when daemonizing.
        self.store = CatalogStore(self.config.service_dir("catalog"), self.config.stocks)
        super().startService()

    def stopService(self) -> Any:
        self._hop.stop()
        d = super().stopService()

        def close(result: Any) -> Any:
            if self.store is not None:
                self.store.close()
            return result

        return d.addBoth(close)

"""One order replica process: log, writer thread, channels, gRPC server, then the rejoin attempt."""

from __future__ import annotations

import time
from typing import Any, Callable

import grpc
from twisted.application.service import MultiService
from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger

from bazaar.config import Config
from bazaar.core.stock import table_id
from bazaar.rpc.bridge import ReactorHop
from bazaar.reactor.group_commit import GroupCommitter
from bazaar.order.invalidation import CacheInvalidator
from bazaar.order.reach import PeerWatch
from bazaar.order.rejoin import rejoin
from bazaar.order.replica import Replica
from bazaar.order.servicer import OrderServicer
from bazaar.order.store import Operation, OrderStore
from bazaar.rpc.names import ORDER_SERVICE
from bazaar.rpc.services import Channels, GrpcServerService
from bazaar.rpc.transport import Transport
from bazaar.tls.identity import replica_name
from bazaar.v1 import order_pb2_grpc

SERVICE_NAME = ORDER_SERVICE

log = Logger()


class OrderReplicaService(MultiService):
    def __init__(self, reactor: Any, config: Config, replica_id: int, transport: Transport) -> None:
        super().__init__()
        self.reactor = reactor
        self.config = config
        self.replica_id = replica_id
        self.address = config.replica_address(replica_id)
        self.store: OrderStore | None = None
        self.replica: Replica | None = None
        self.hop = ReactorHop(reactor, timeout=config.timeouts.rpc)
        self._transport = transport
        self.channels = Channels(transport)
        self.channels.setServiceParent(self)
        self.committer = GroupCommitter(reactor, self._append, name=replica_name(replica_id))
        self.committer.setServiceParent(self)
        self.grpc = GrpcServerService(config.bind(replica_name(replica_id), self.address), self._register, [SERVICE_NAME], transport, serving=False)
        self.grpc.setServiceParent(self)
        self._invalidator: CacheInvalidator | None = None
        self._peers: PeerWatch | None = None
        self.rejoined: Any = None
        # Given to the replica when it is made (bazaar/metrics/order.py sets it): told each
        # trade's seconds from its arrival to its commit.
        self.observe_commit: Callable[[float], None] | None = None

    @property
    def invalidator(self) -> CacheInvalidator | None:
        return self._invalidator

    def _append(self, operations: list[Operation]) -> list[int]:
        assert self.store is not None
        return self.store.write(operations)

    def _register(self, server: grpc.Server) -> None:
        assert self.replica is not None
        servicer = OrderServicer(self.replica, self.hop, self.config.timeouts.rpc)
        order_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server)

    def startService(self) -> None:
        # Files, pools and sockets are made here, after twistd has forked.
        self.store = OrderStore(self.config.replica_dir(self.replica_id), table_id(self.config.stocks))
        self._invalidator = CacheInvalidator(self.reactor, self.config, self._transport.credentials)
        self.replica = Replica(
            self.reactor, self.config, self.replica_id, self.store, self.committer,
            self.channels, self._invalidator, time.monotonic, self.observe_commit,
        )
        self.replica.not_serving = self.grpc.stop_serving
        log.info("replica {id} at {address}: {count} log entries on disk",
                 id=self.replica_id, address=str(self.address), count=self.store.last_index + 1)
        super().startService()
        self._peers = PeerWatch(
            self.reactor, self.channels, self.replica.reachability, self.replica.now, self.replica.tick,
        )
        self._peers.start()
        # Not electable until it has caught up from the current leader (or found none).
        self.rejoined = ensureDeferred(rejoin(self.replica, self.hop))
        self.rejoined.addErrback(lambda f: log.failure("rejoin failed", f))
        self.rejoined.addBoth(lambda _: self._ready())

    def _ready(self) -> None:
        assert self.replica is not None
        self.replica.ready = True
        self.grpc.set_serving(True)

    def stopService(self) -> Any:
        self.hop.stop()
        if self._peers is not None:
            self._peers.stop()
        if self.replica is not None:
            # Before the channels close: the leader's links must not retry into them.
            self.replica.step_down("shutting down")
            self.replica.log.stop()
        d = super().stopService()

        def close(result: Any) -> Any:
            if self.store is not None:
                self.store.close()
            if self._invalidator is not None:
                return self._invalidator.close().addBoth(lambda _: result)
            return result

        return d.addBoth(close)

"""The front end's gRPC peers (catalog and order replicas), as calls returning Deferreds.

Every call carries a deadline from the configuration. Any way a call can fail to produce an
answer (refused, timed out, cancelled, the peer's handler crashed) becomes PeerUnavailable:
the front end's only question is whether this peer can serve it right now. Stubs are made on
first use, so building these objects touches no gRPC state (twistd forks after makeService).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from bazaar.rpc.names import CATALOG_SERVICE, ORDER_SERVICE
from bazaar.rpc import bridge
from bazaar.reactor.batcher import Batcher
from bazaar.config import Address, Timeouts
from bazaar.core.leader_selection import ReplicaView
from bazaar.rpc.convert import order_from_proto
from bazaar.core.orders import Order
from bazaar.rpc.services import Channels
from bazaar.rpc.peers import PeerUnavailable, never_sent
from bazaar.v1 import catalog_pb2, catalog_pb2_grpc, order_pb2, order_pb2_grpc

ORDER_SERVICE_NAME = ORDER_SERVICE


class NotLeader(Exception):
    """The replica answered, but it does not lead: select again."""


class _CatchingUp:
    """A probe's answer from a replica that is up but not ready to lead yet (it is catching
    up after a start). False, like any unhealthy answer, to whoever only asks "healthy?"."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "CATCHING_UP"


CATCHING_UP = _CatchingUp()


@dataclass(frozen=True)
class StockInfo:
    name: str
    price: float
    quantity: int


@dataclass(frozen=True)
class PlacedOrder:
    """The leader's verdict on a trade: a RequestStatus and, when OK, the transaction number."""

    status: int
    transaction_number: int


def _as_peer_unavailable(peer: str) -> Callable[[Failure], Failure]:
    def convert(failure: Failure) -> Failure:
        error = failure.value
        if isinstance(error, grpc.RpcError):
            code = error.code() if callable(getattr(error, "code", None)) else None
            name = code.name if isinstance(code, grpc.StatusCode) else "RPC error"
            return Failure(PeerUnavailable(peer, name, sent=not never_sent(error)))
        if isinstance(error, defer.TimeoutError):
            # Only a batch's wait to be sent times out this way (calls have gRPC deadlines).
            return Failure(PeerUnavailable(peer, "not sent within its deadline", sent=False))
        # A CancelledError is our own doing (the client hung up): it says nothing about the
        # peer, and must not trigger a leader selection or a redo.
        return failure

    return convert


class _Peer:
    def __init__(
        self,
        reactor: Any,
        channels: Channels,
        address: Address,
        timeouts: Timeouts,
        stub_class: Any,
    ) -> None:
        self._reactor = reactor
        self._channels = channels
        self.address = address
        self._timeouts = timeouts
        self._stub_class = stub_class
        self._stub: Any = None
        self._health_stub: Any = None

    def _health(self, service: str) -> Deferred:
        """Fires with the peer's health status for `service`, or None when it does not answer
        within the probe deadline."""
        if self._health_stub is None:
            self._health_stub = health_pb2_grpc.HealthStub(self._channels.get(self.address))
        d = bridge.call(
            self._reactor, self._health_stub.Check, health_pb2.HealthCheckRequest(service=service),
            self._timeouts.probe,
        )
        d.addCallback(lambda response: response.status)
        return d.addErrback(_unreachable_is_none)

    def _call(self, method_name: str, request: Any, timeout: float) -> Deferred:
        if self._stub is None:
            self._stub = self._stub_class(self._channels.get(self.address))
        d = bridge.call(self._reactor, getattr(self._stub, method_name), request, timeout)
        return d.addErrback(_as_peer_unavailable(str(self.address)))


class CatalogClient(_Peer):
    def __init__(
        self, reactor: Any, channels: Channels, address: Address, timeouts: Timeouts
    ) -> None:
        super().__init__(reactor, channels, address, timeouts, catalog_pb2_grpc.CatalogServiceStub)

    def lookup(self, name: str, min_applied: int | None = None) -> Deferred:
        """Fires with a StockInfo, or None when the catalog has no such stock; given
        `min_applied`, the catalog answers once it has applied every trade numbered up to it."""

        def convert(response: catalog_pb2.LookupStockResponse) -> StockInfo | None:
            if not response.found:
                return None
            return StockInfo(name, response.price, response.quantity)

        request = catalog_pb2.LookupStockRequest(name=name, min_applied=min_applied)
        return self._call("Lookup", request, self._timeouts.rpc).addCallback(convert)

    def probe(self) -> Deferred:
        """True if the catalog reports SERVING within the probe deadline."""
        return self._health(CATALOG_SERVICE).addCallback(lambda status: status == health_pb2.HealthCheckResponse.SERVING)


class ReplicaClient(_Peer):
    def __init__(
        self,
        reactor: Any,
        channels: Channels,
        replica_id: int,
        address: Address,
        timeouts: Timeouts,
    ) -> None:
        super().__init__(reactor, channels, address, timeouts, order_pb2_grpc.OrderServiceStub)
        self.id = replica_id
        # Concurrent trades share RPCs: the per-call cost of gRPC in Python is what limits them.
        # One batch in flight, not two: the leader replicates one batch at a time anyway, and
        # two split the same trades into more calls (measured against two: 25 % more trades a
        # second at 16 connections, 20 % less CPU a trade at 64, about 10 % fewer at 4).
        self._orders: Batcher[Any, Any] = Batcher(self._send_orders, reactor, max_in_flight=1)

    @property
    def orders(self) -> Batcher[Any, Any]:
        """The batcher trades to this replica leave through (its counts are metrics)."""
        return self._orders

    def request(self, name: str, quantity: int, trade_type: int, key: str, timeout: float) -> Deferred:
        """Fires with a PlacedOrder within `timeout` seconds; fails with NotLeader if this
        replica does not lead (it logged nothing). `key` makes the trade happen once however
        often it is sent (idempotency key)."""

        def convert(response: order_pb2.PlaceOrderResponse) -> PlacedOrder:
            if response.status == order_pb2.REQUEST_STATUS_NOT_LEADER:
                raise NotLeader(f"replica {self.id} does not lead")
            return PlacedOrder(response.status, response.transaction_number)

        request = order_pb2.PlaceOrderRequest(
            name=name, quantity=quantity, type=trade_type, idempotency_key=key
        )
        # The deadline covers the wait for a batch to leave as well as the batch's call.
        d = self._orders.submit(request, timeout)
        return d.addErrback(_as_peer_unavailable(str(self.address))).addCallback(convert)

    def _send_orders(self, requests: list[order_pb2.PlaceOrderRequest], timeout: float) -> Deferred:
        batch = order_pb2.RequestBatchRequest(orders=requests)
        return self._call("RequestBatch", batch, timeout).addCallback(lambda response: list(response.results))

    def lookup(self, number: int) -> Deferred:
        """Fires with the committed Order numbered `number`, or None."""

        def convert(response: order_pb2.LookupOrderResponse) -> Order | None:
            return order_from_proto(response.order) if response.found else None

        request = order_pb2.LookupOrderRequest(number=number)
        return self._call("Lookup", request, self._timeouts.rpc).addCallback(convert)

    def assign_followers(self, followers: list[str]) -> Deferred:
        """Tell this replica it leads, with these follower addresses. Fires with its last number."""
        request = order_pb2.AssignFollowersRequest(followers=followers)
        d = self._call("AssignFollowers", request, self._timeouts.rpc)
        return d.addCallback(lambda response: response.last_index)

    def describe(self, wait_for_ready: bool = True) -> Deferred:
        """Fires with the replica's ReplicaView, or None when it does not answer within the
        probe deadline. With `wait_for_ready`, a channel that is still connecting (the replica
        just started) is waited for within that deadline; without, a replica that refuses
        connections is reported at once."""

        def view(response: order_pb2.DescribeResponse) -> ReplicaView:
            return ReplicaView(
                replica_id=self.id,
                ready=response.role != order_pb2.REPLICA_ROLE_STARTING,
                leading=response.role == order_pb2.REPLICA_ROLE_LEADER,
                taking_over=response.role == order_pb2.REPLICA_ROLE_CANDIDATE,
                epoch=response.leader_epoch or response.epoch,
                leader_id=response.leader_id if response.leader_id != self.id else 0,
                reachable=frozenset(response.reachable),
            )

        if self._stub is None:
            self._stub = self._stub_class(self._channels.get(self.address))
        d = bridge.call(
            self._reactor, self._stub.Describe, order_pb2.DescribeRequest(), self._timeouts.probe, wait_for_ready,
        )
        return d.addCallbacks(view, _unreachable_is_none)

    def probe(self) -> Deferred:
        """True if the order service reports SERVING, CATCHING_UP (which is false too) if it
        answers NOT_SERVING, False if it is unreachable."""
        return self._health(ORDER_SERVICE_NAME).addCallback(lambda status: _HEALTH.get(status, False))


_HEALTH = {
    health_pb2.HealthCheckResponse.SERVING: True,
    health_pb2.HealthCheckResponse.NOT_SERVING: CATCHING_UP,
}


def _unreachable_is_none(failure: Failure) -> None:
    failure.trap(grpc.RpcError, defer.CancelledError, defer.TimeoutError)
    return None


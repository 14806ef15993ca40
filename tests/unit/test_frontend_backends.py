"""The gRPC adapters, against a fake channel: requests, deadlines, answers, failure mapping."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2
from twisted.internet.defer import Deferred
from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from bazaar.config import Address, Timeouts
from bazaar.core.orders import Order
from bazaar.frontend.backends import (
    CATCHING_UP,
    CatalogClient,
    NotLeader,
    PeerUnavailable,
    PlacedOrder,
    ReplicaClient,
    StockInfo,
)
from bazaar.v1 import catalog_pb2, order_pb2, trade_pb2

TIMEOUTS = Timeouts(rpc=1.5, probe=0.25, http=2.0)
# A trade's deadline is what is left of its POST /orders: the caller passes it, not TIMEOUTS.rpc.
TRADE_TIMEOUT = 0.8
CATALOG = Address("10.0.0.1", 6000)
REPLICA = Address("10.0.0.1", 7003)


class RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class Future:
    """Just enough of grpc.Future for bridge."""

    def __init__(self) -> None:
        self._callbacks: list = []
        self._done = False
        self._cancelled = False
        self._result = None
        self._exception: BaseException | None = None

    def add_done_callback(self, callback) -> None:
        self._callbacks.append(callback)

    def cancel(self) -> bool:
        self._cancelled = True
        self._finish()
        return True

    def cancelled(self) -> bool:
        return self._cancelled

    def result(self):
        return self._result

    def exception(self):
        return self._exception

    def succeed(self, result) -> None:
        self._result = result
        self._finish()

    def fail(self, exception: BaseException) -> None:
        self._exception = exception
        self._finish()

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            for callback in self._callbacks:
                callback(self)


class Method:
    def __init__(self, calls: list, path: str) -> None:
        self._calls = calls
        self.path = path

    def future(self, request, timeout=None):
        future = Future()
        self._calls.append((self.path, request, timeout, future))
        return future


class Channel:
    def __init__(self, calls: list) -> None:
        self._calls = calls

    def unary_unary(self, path, *args, **kwargs):
        return Method(self._calls, path)

    unary_stream = stream_unary = stream_stream = unary_unary


class Channels:
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.calls: list = []

    def get(self, address) -> Channel:
        self.asked.append(str(address))
        return Channel(self.calls)

    def last(self):
        return self.calls[-1]


class ImmediateReactor(Clock):
    def callFromThread(self, f, *args) -> None:
        f(*args)


def outcome(d: Deferred):
    box: list = []
    d.addBoth(box.append)
    assert box, "not fired"
    return box[0]


@pytest.fixture
def channels():
    return Channels()


@pytest.fixture
def catalog(channels):
    return CatalogClient(ImmediateReactor(), channels, CATALOG, TIMEOUTS)


@pytest.fixture
def replica(channels):
    client = ReplicaClient(ImmediateReactor(), channels, 3, REPLICA, TIMEOUTS)
    # Calls leave as they are made, not at the end of the reactor's turn: one RPC per call
    # unless batches are in flight (test_trades_of_one_turn_share_one_call covers the turn).
    client._orders._end_of_turn = False
    return client


def test_no_channel_is_made_before_the_first_call(channels, catalog, replica):
    assert channels.asked == []
    catalog.lookup("tesla")
    replica.lookup(1)
    replica.request("tesla", 1, trade_pb2.TRADE_TYPE_BUY, "k", TRADE_TIMEOUT)
    assert channels.asked == [str(CATALOG), str(REPLICA)]


def test_catalog_lookup_found(channels, catalog):
    d = catalog.lookup("tesla")
    path, request, timeout, future = channels.last()
    assert (path, request, timeout) == (
        "/bazaar.v1.CatalogService/Lookup",
        catalog_pb2.LookupStockRequest(name="tesla"),
        TIMEOUTS.rpc,
    )
    response = catalog_pb2.LookupStockResponse(found=True, price=183.26, quantity=1000, volume=5)
    future.succeed(response)
    assert outcome(d) == StockInfo("tesla", 183.26, 1000)


def test_catalog_lookup_asks_for_the_trades_the_caller_acknowledged(channels, catalog):
    d = catalog.lookup("tesla", 7)
    path, request, timeout, future = channels.last()
    assert request == catalog_pb2.LookupStockRequest(name="tesla", min_applied=7)
    future.succeed(catalog_pb2.LookupStockResponse(found=True, price=1.0, quantity=3))
    assert outcome(d) == StockInfo("tesla", 1.0, 3)


def test_catalog_lookup_not_found(channels, catalog):
    d = catalog.lookup("rivian")
    channels.last()[3].succeed(catalog_pb2.LookupStockResponse(found=False))
    assert outcome(d) is None


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ],
)
def test_rpc_errors_mean_the_peer_is_down(channels, catalog, replica, code):
    calls = [
        lambda: catalog.lookup("tesla"),
        lambda: replica.request("tesla", 1, 1, "k", TRADE_TIMEOUT),
        lambda: replica.lookup(0),
        lambda: replica.assign_followers([]),
    ]
    for call in calls:
        d = call()
        channels.last()[3].fail(RpcError(code))
        failure = outcome(d)
        assert isinstance(failure, Failure) and failure.check(PeerUnavailable)
        assert failure.value.reason == code.name


def test_a_cancelled_rpc_says_nothing_about_the_peer(channels, catalog):
    # Only we cancel RPCs (a client hung up): that must not look like a dead peer.
    d = catalog.lookup("tesla")
    channels.last()[3].cancel()
    failure = outcome(d)
    assert failure.check(CancelledError) and not failure.check(PeerUnavailable)


def trade(replica: ReplicaClient, name: str, key: str = "k", timeout: float = TRADE_TIMEOUT) -> Deferred:
    return replica.request(name, 1, trade_pb2.TRADE_TYPE_BUY, key, timeout)


def batch_of(*responses: order_pb2.PlaceOrderResponse) -> order_pb2.RequestBatchResponse:
    return order_pb2.RequestBatchResponse(results=responses)


def test_a_cancelled_trade_leaves_its_batch_alone(channels, replica):
    # Other trades travel in the same call: a client hanging up must not cancel theirs.
    d = replica.request("tesla", 1, 1, "k", TRADE_TIMEOUT)
    future = channels.last()[3]
    d.cancel()
    assert not future.cancelled()
    assert outcome(d).check(CancelledError)
    future.succeed(batch_of(order_pb2.PlaceOrderResponse(status=order_pb2.REQUEST_STATUS_OK)))


def test_place_order_sends_the_trade_and_its_key_with_the_callers_deadline(channels, replica):
    d = replica.request("tesla", 5, trade_pb2.TRADE_TYPE_SELL, "order-17", 0.7)
    path, request, timeout, future = channels.last()
    assert path == "/bazaar.v1.OrderService/RequestBatch"
    assert list(request.orders) == [order_pb2.PlaceOrderRequest(
        name="tesla", quantity=5, type=trade_pb2.TRADE_TYPE_SELL, idempotency_key="order-17"
    )]
    assert timeout == 0.7  # what is left of the client's request, not TIMEOUTS.rpc
    future.succeed(batch_of(
        order_pb2.PlaceOrderResponse(status=order_pb2.REQUEST_STATUS_OK, transaction_number=41)
    ))
    assert outcome(d) == PlacedOrder(order_pb2.REQUEST_STATUS_OK, 41)


def test_trades_sent_while_a_batch_is_in_flight_share_the_next_call(channels, replica):
    first = trade(replica, "tesla")  # one call in flight
    queued = [trade(replica, "ford"), trade(replica, "apple"), trade(replica, "nike")]
    assert len(channels.calls) == 1
    channels.calls[0][3].succeed(batch_of(order_pb2.PlaceOrderResponse(status=1, transaction_number=0)))
    assert outcome(first) == PlacedOrder(1, 0)
    assert len(channels.calls) == 2
    path, request, _, future = channels.last()
    assert [o.name for o in request.orders] == ["ford", "apple", "nike"]
    future.succeed(batch_of(
        order_pb2.PlaceOrderResponse(status=1, transaction_number=1),
        order_pb2.PlaceOrderResponse(status=5),
        order_pb2.PlaceOrderResponse(status=1, transaction_number=2),
    ))
    assert [outcome(d) for d in queued] == [PlacedOrder(1, 1), PlacedOrder(5, 0), PlacedOrder(1, 2)]


def test_trades_of_one_turn_share_one_call(channels):
    replica = ReplicaClient(ImmediateReactor(), channels, 3, REPLICA, TIMEOUTS)
    ds = [trade(replica, "tesla"), trade(replica, "ford")]
    assert channels.calls == []
    replica._reactor.advance(0)
    [(path, request, _, future)] = channels.calls
    assert [o.name for o in request.orders] == ["tesla", "ford"]
    future.succeed(batch_of(
        order_pb2.PlaceOrderResponse(status=1, transaction_number=0),
        order_pb2.PlaceOrderResponse(status=1, transaction_number=1),
    ))
    assert [outcome(d) for d in ds] == [PlacedOrder(1, 0), PlacedOrder(1, 1)]


def test_a_trade_that_waits_too_long_for_its_batch_times_out_as_peer_failure(channels, replica):
    in_flight = trade(replica, "tesla")
    d = trade(replica, "apple")  # queued behind a call that never answers
    replica._reactor.advance(TRADE_TIMEOUT - 0.01)
    assert not d.called
    replica._reactor.advance(0.01)  # its own deadline, not TIMEOUTS.rpc
    assert outcome(d).check(PeerUnavailable)
    assert channels.calls[-1][2] == TRADE_TIMEOUT and len(channels.calls) == 1  # never sent
    # The one that was sent is bounded by its call's deadline, which gRPC enforces.
    assert not in_flight.called
    channels.calls[0][3].fail(RpcError(grpc.StatusCode.DEADLINE_EXCEEDED))
    assert outcome(in_flight).check(PeerUnavailable)


@pytest.mark.parametrize(
    "status",
    [
        order_pb2.REQUEST_STATUS_STOCK_NOT_FOUND,
        order_pb2.REQUEST_STATUS_INVALID_TYPE,
        order_pb2.REQUEST_STATUS_INVALID_QUANTITY,
        order_pb2.REQUEST_STATUS_NOT_ENOUGH_STOCK,
        order_pb2.REQUEST_STATUS_UNAVAILABLE,
        order_pb2.REQUEST_STATUS_KEY_REUSED,
        order_pb2.REQUEST_STATUS_IN_DOUBT,
    ],
)
def test_refusals_are_answers(channels, replica, status):
    d = replica.request("tesla", 5, 1, "k", TRADE_TIMEOUT)
    channels.last()[3].succeed(batch_of(order_pb2.PlaceOrderResponse(status=status)))
    assert outcome(d) == PlacedOrder(status, 0)


def test_not_leader_is_its_own_failure(channels, replica):
    d = replica.request("tesla", 5, 1, "k", TRADE_TIMEOUT)
    response = order_pb2.PlaceOrderResponse(status=order_pb2.REQUEST_STATUS_NOT_LEADER)
    channels.last()[3].succeed(batch_of(response))
    assert outcome(d).check(NotLeader)


def test_order_lookup(channels, replica):
    d = replica.lookup(7)
    path, request, timeout, future = channels.last()
    assert path == "/bazaar.v1.OrderService/Lookup"
    assert (request, timeout) == (order_pb2.LookupOrderRequest(number=7), TIMEOUTS.rpc)
    order = trade_pb2.Order(number=7, name="ford", type=trade_pb2.TRADE_TYPE_BUY, quantity=3)
    future.succeed(order_pb2.LookupOrderResponse(found=True, order=order))
    assert outcome(d) == Order(7, "ford", "buy", 3)


def test_order_lookup_not_found(channels, replica):
    d = replica.lookup(7)
    channels.last()[3].succeed(order_pb2.LookupOrderResponse(found=False))
    assert outcome(d) is None


def test_assign_followers(channels, replica):
    d = replica.assign_followers(["10.0.0.1:7001", "10.0.0.1:7002"])
    path, request, timeout, future = channels.last()
    assert path == "/bazaar.v1.OrderService/AssignFollowers"
    assert list(request.followers) == ["10.0.0.1:7001", "10.0.0.1:7002"]
    assert timeout == TIMEOUTS.rpc
    future.succeed(order_pb2.AssignFollowersResponse(last_index=12))
    assert outcome(d) == 12


def test_assign_followers_to_a_dead_replica(channels, replica):
    d = replica.assign_followers([])
    channels.last()[3].fail(RpcError(grpc.StatusCode.UNAVAILABLE))
    assert outcome(d).check(PeerUnavailable)


@pytest.mark.parametrize(
    "status, healthy",
    [
        (health_pb2.HealthCheckResponse.SERVING, True),
        (health_pb2.HealthCheckResponse.NOT_SERVING, CATCHING_UP),
        (health_pb2.HealthCheckResponse.UNKNOWN, False),
        (health_pb2.HealthCheckResponse.SERVICE_UNKNOWN, False),
    ],
)
def test_probe_asks_for_the_order_service_within_the_probe_deadline(
    channels, replica, status, healthy
):
    d = replica.probe()
    path, request, timeout, future = channels.last()
    assert path == "/grpc.health.v1.Health/Check"
    assert request == health_pb2.HealthCheckRequest(service="bazaar.v1.OrderService")
    assert timeout == TIMEOUTS.probe
    future.succeed(health_pb2.HealthCheckResponse(status=status))
    assert outcome(d) is healthy


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_unreachable_replica_probes_unhealthy(channels, replica, code):
    d = replica.probe()
    channels.last()[3].fail(RpcError(code))
    assert outcome(d) is False


def test_stubs_are_made_once_per_peer(channels, replica):
    for _ in range(3):
        replica.request("tesla", 1, 1, "k", TRADE_TIMEOUT)
        replica.probe()
    assert channels.asked == [str(REPLICA), str(REPLICA)]  # the order stub and the health stub


@pytest.mark.parametrize(
    "error, sent",
    [
        (RpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: UNKNOWN: "
                                               "ipv4:127.0.0.1:1: Failed to connect to remote host"), False),
        (RpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed"), True),
        (RpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"), True),
    ],
)
def test_a_trade_call_that_never_left_is_told_apart_from_one_that_may_have_arrived(channels, replica, error, sent):
    d = replica.request("tesla", 1, trade_pb2.TRADE_TYPE_BUY, "k", 1.0)
    channels.last()[3].fail(error)
    failure = outcome(d)
    assert isinstance(failure.value, PeerUnavailable) and failure.value.sent is sent

"""The leader's RequestBatch: one slow order does not hold its batch past the caller's deadline."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from bazaar.order.servicer import OrderServicer
from bazaar.v1 import order_pb2


class SlowForOneStock:
    """place_order answers at once, except for "slow", which waits until released."""

    def __init__(self) -> None:
        self.reactor = Clock()
        self.release: Deferred = Deferred()

    async def place_order(self, name: str, quantity: int, type_: int, key: str = "") -> tuple[int, int]:
        if name == "slow":
            return await self.release
        if name == "broken":
            raise RuntimeError("a bug")
        return order_pb2.REQUEST_STATUS_OK, quantity


def outcome(d: Deferred):
    box: list = []
    d.addBoth(box.append)
    assert box, "not fired"
    return box[0]


def orders(*names: str) -> list[order_pb2.PlaceOrderRequest]:
    return [order_pb2.PlaceOrderRequest(name=n, quantity=i + 1) for i, n in enumerate(names)]


def test_a_slow_order_is_answered_unavailable_at_the_budget_and_the_rest_as_they_are():
    replica = SlowForOneStock()
    servicer = OrderServicer(replica, hop=None, timeout=2.0)  # type: ignore[arg-type]
    d = servicer._place_all(orders("tesla", "slow", "ford"), budget=0.9)
    assert not d.called
    replica.reactor.advance(0.9)
    assert outcome(d) == [(order_pb2.REQUEST_STATUS_OK, 1), (order_pb2.REQUEST_STATUS_UNAVAILABLE, -1),
                          (order_pb2.REQUEST_STATUS_OK, 3)]
    replica.release.callback((order_pb2.REQUEST_STATUS_OK, 9))  # finishing late changes nothing


def test_a_batch_whose_orders_all_finish_is_answered_at_once_and_no_timer_is_left():
    replica = SlowForOneStock()
    servicer = OrderServicer(replica, hop=None, timeout=2.0)  # type: ignore[arg-type]
    d = servicer._place_all(orders("tesla", "broken"), budget=0.9)
    assert outcome(d) == [(order_pb2.REQUEST_STATUS_OK, 1), (order_pb2.REQUEST_STATUS_UNAVAILABLE, -1)]
    assert replica.reactor.getDelayedCalls() == []

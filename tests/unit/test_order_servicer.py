"""The leader's RequestBatch: every order gets the caller's budget, and an order whose outcome
is not known within it is answered IN_DOUBT while the others get their answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock

from bazaar.config import Config
from bazaar.core.stock import table_id
from bazaar.order.replica import Replica
from bazaar.order.servicer import ANSWER_MARGIN, OrderServicer
from bazaar.order.store import OrderStore
from bazaar.v1 import order_pb2, trade_pb2
from tests.unit.test_order_log import ManualCommitter, fired as outcome

BUY = trade_pb2.TRADE_TYPE_BUY


def orders(*names: str, key: str = "") -> list[order_pb2.PlaceOrderRequest]:
    return [order_pb2.PlaceOrderRequest(name=n, quantity=i + 1, type=BUY, idempotency_key=key and f"{key}{i}")
            for i, n in enumerate(names)]


# ---- with a stand-in replica ------------------------------------------------------------------


class SlowForOneStock:
    """place_order answers at once, except for "slow", which waits until released, and
    "broken", which fails; it records the budget each order was given."""

    ids = {"127.0.0.1:56894": 1, "127.0.0.1:56895": 2, "127.0.0.1:56896": 3}
    peers = ["127.0.0.1:56895", "127.0.0.1:56896"]

    def __init__(self) -> None:
        self.reactor = Clock()
        self.release: Deferred = Deferred()
        self.placed: list[tuple[str, str, float]] = []

    async def place_order(self, name: str, quantity: int, type_: int, key: str, budget: float) -> tuple[int, int]:
        self.placed.append((name, key, budget))
        if name == "slow":
            return await self.release
        if name == "broken":
            raise RuntimeError("a bug")
        return order_pb2.REQUEST_STATUS_OK, quantity


class Context:
    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining

    def time_remaining(self) -> float | None:
        return self.remaining

    def abort(self, code: Any, details: str) -> None:
        raise AssertionError(f"aborted: {code} {details}")


class InlineHop:
    """Runs the call at once; the answer must be there by then."""

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def call(self, f: Any, *args: Any, timeout: float | None = None) -> Any:
        self.timeouts.append(timeout)
        return outcome(maybeDeferred(f, *args))


def test_every_order_gets_the_callers_deadline_less_a_margin_and_its_key():
    replica, hop = SlowForOneStock(), InlineHop()
    servicer = OrderServicer(replica, hop, timeout=2.0)  # type: ignore[arg-type]
    response = servicer.RequestBatch(order_pb2.RequestBatchRequest(orders=orders("tesla", "ford", key="k")),
                                     Context(remaining=1.5))
    assert [(r.status, r.transaction_number) for r in response.results] == [
        (order_pb2.REQUEST_STATUS_OK, 1), (order_pb2.REQUEST_STATUS_OK, 2)
    ]
    assert replica.placed == [("tesla", "k0", 1.5 - ANSWER_MARGIN), ("ford", "k1", 1.5 - ANSWER_MARGIN)]
    assert hop.timeouts == [1.5]
    servicer.RequestBatch(order_pb2.RequestBatchRequest(orders=orders("amc")), Context(remaining=None))
    assert replica.placed[-1][2] == 2.0 - ANSWER_MARGIN, "without a deadline, the servicer's own timeout"


def test_a_single_request_is_a_batch_of_one():
    replica = SlowForOneStock()
    servicer = OrderServicer(replica, InlineHop(), timeout=2.0)  # type: ignore[arg-type]
    response = servicer.Request(orders("nike")[0], Context(remaining=1.0))
    assert (response.status, response.transaction_number) == (order_pb2.REQUEST_STATUS_OK, 1)


def test_a_failing_order_is_in_doubt_and_the_others_are_answered():
    replica = SlowForOneStock()
    servicer = OrderServicer(replica, hop=None, timeout=2.0)  # type: ignore[arg-type]
    d = servicer._place_all(orders("tesla", "broken", "ford"), budget=0.9)
    assert outcome(d) == [(order_pb2.REQUEST_STATUS_OK, 1), (order_pb2.REQUEST_STATUS_IN_DOUBT, -1),
                          (order_pb2.REQUEST_STATUS_OK, 3)]


def test_the_batch_is_answered_when_its_last_order_is():
    replica = SlowForOneStock()
    servicer = OrderServicer(replica, hop=None, timeout=2.0)  # type: ignore[arg-type]
    d = servicer._place_all(orders("tesla", "slow"), budget=0.9)
    assert not d.called
    replica.release.callback((order_pb2.REQUEST_STATUS_NOT_ENOUGH_STOCK, -1))
    assert outcome(d) == [(order_pb2.REQUEST_STATUS_OK, 1), (order_pb2.REQUEST_STATUS_NOT_ENOUGH_STOCK, -1)]


# ---- with a real replica leading alone --------------------------------------------------------


class Call:
    """A gRPC call that never finishes (the catalog is down)."""

    def add_done_callback(self, callback: Any) -> None:
        pass

    def cancel(self) -> bool:
        return True


class Channels:
    def get(self, address: Any) -> Any:
        return self

    def unary_unary(self, *args: Any, **kwargs: Any) -> Any:
        return self

    unary_stream = unary_unary

    def future(self, *args: Any, **kwargs: Any) -> Call:
        return Call()


def leading_replica(tmp_path: Path) -> tuple[Replica, ManualCommitter]:
    """A replica leading with no followers, its leader entry committed; writes reach its
    disk only when the test flushes them."""
    config = Config(data_dir=tmp_path)
    store = OrderStore(tmp_path, table_id(config.stocks))
    committer = ManualCommitter(store)
    replica = Replica(Clock(), config, 1, store, committer, Channels(), lambda name: None)  # type: ignore[arg-type]
    assert replica.core.promise(1)
    leadership = replica.begin_leading([])
    committer.flush()
    assert leadership.serving
    return replica, committer


def test_an_order_not_committed_within_its_budget_is_in_doubt_and_a_retry_gets_the_answer(tmp_path: Path):
    replica, committer = leading_replica(tmp_path)
    servicer = OrderServicer(replica, hop=None, timeout=2.0)  # type: ignore[arg-type]
    d = servicer._place_all(orders("tesla", "nope", key="k"), budget=0.9)
    assert not d.called, "the trade waits for its entry to be on disk"
    replica.reactor.advance(0.89)
    assert not d.called
    replica.reactor.advance(0.01)
    assert outcome(d) == [(order_pb2.REQUEST_STATUS_IN_DOUBT, -1), (order_pb2.REQUEST_STATUS_STOCK_NOT_FOUND, -1)]
    committer.flush()  # it commits after all
    retry = servicer._place_all(orders("tesla", key="k"), budget=0.9)
    assert outcome(retry) == [(order_pb2.REQUEST_STATUS_OK, 0)]
    assert replica.core.last_number == 0, "the retry executed nothing twice"


def test_orders_committed_within_the_budget_are_answered_and_leave_no_timer(tmp_path: Path):
    replica, committer = leading_replica(tmp_path)
    servicer = OrderServicer(replica, hop=None, timeout=2.0)  # type: ignore[arg-type]
    d = servicer._place_all(orders("tesla", "ford", "amc"), budget=0.9)
    replica.reactor.advance(0.5)
    committer.flush()
    assert outcome(d) == [(order_pb2.REQUEST_STATUS_OK, 0), (order_pb2.REQUEST_STATUS_OK, 1),
                          (order_pb2.REQUEST_STATUS_OK, 2)]
    replica.reactor.advance(0)  # the end of the turn: the followers' kick
    replica.log.stop()  # its own timer: writing the commit point when idle
    replica.step_down("the test is over")  # the heartbeats' timer
    assert replica.reactor.getDelayedCalls() == [], "no timer is left waiting for the answered orders"

"""The handler-to-reactor hop drops a call whose caller has given up, and the order servicer
drops a request whose deadline has passed before it acts."""

from __future__ import annotations

import threading
from typing import Any

import grpc
import pytest

from bazaar.order.servicer import OrderServicer
from bazaar.rpc.bridge import ReactorHop, ReactorUnavailable
from bazaar.v1 import order_pb2


class HeldReactor:
    """Runs what is handed to it only when the test says so (a frozen or busy reactor)."""

    def __init__(self) -> None:
        self.queued: list[Any] = []

    def callFromThread(self, f: Any, *args: Any) -> None:
        self.queued.append((f, args))

    def run_queued(self) -> None:
        for f, args in self.queued:
            f(*args)
        self.queued.clear()


def test_a_call_the_reactor_takes_after_its_caller_gave_up_is_not_run():
    reactor = HeldReactor()
    hop = ReactorHop(reactor, timeout=1.0)
    ran = []
    with pytest.raises(ReactorUnavailable):
        hop.call(ran.append, "acted", timeout=0.01)
    reactor.run_queued()  # the reactor thaws
    assert ran == [], "the caller was told it failed: acting now would surprise it"


def test_a_call_taken_in_time_runs_and_answers():
    reactor = HeldReactor()
    hop = ReactorHop(reactor, timeout=1.0)
    box = []
    worker = threading.Thread(target=lambda: box.append(hop.call(lambda: "answer", timeout=5.0)))
    worker.start()
    for _ in range(500):
        if reactor.queued:
            break
        worker.join(0.01)
    reactor.run_queued()
    worker.join(5)
    assert box == ["answer"]


class Aborted(Exception):
    pass


class ExpiredContext:
    def time_remaining(self) -> float:
        return -0.2

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


class NoReplica:
    ids: dict[str, int] = {}
    peers: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def called(*args: Any) -> Any:
            raise AssertionError(f"the replica was asked to {name}")

        return called


@pytest.mark.parametrize("method, request_", [
    ("Propagate", order_pb2.PropagateRequest(epoch=1, prev_chain=bytes(16))),
    ("AssignFollowers", order_pb2.AssignFollowersRequest()),
    ("Lookup", order_pb2.LookupOrderRequest(number=1)),
    ("RequestBatch", order_pb2.RequestBatchRequest(orders=[order_pb2.PlaceOrderRequest(name="tesla")])),
    ("Describe", order_pb2.DescribeRequest()),
])
def test_a_request_whose_deadline_passed_is_dropped_before_anything_happens(method, request_):
    servicer = OrderServicer(NoReplica(), ReactorHop(HeldReactor(), timeout=1.0), timeout=2.0)  # type: ignore[arg-type]
    with pytest.raises(Aborted) as aborted:
        getattr(servicer, method)(request_, ExpiredContext())
    assert aborted.value.args[0] == grpc.StatusCode.DEADLINE_EXCEEDED

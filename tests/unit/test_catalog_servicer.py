"""The catalog's gRPC face over a real store, writer thread and reactor hop: batches of
committed trades applied in number order, and lookups that wait for a trade to be applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import maybeDeferred
from twisted.internet.threads import deferToThread

from bazaar.catalog.servicer import CatalogServicer
from bazaar.catalog.store import CatalogStore, read_applied
from bazaar.core.learner import CommittedTrade
from bazaar.core.stock import Stock
from bazaar.reactor.group_commit import GroupCommitter
from bazaar.rpc.bridge import ReactorHop
from bazaar.v1 import catalog_pb2, trade_pb2
from tests.unit.polling import reactor_until

STOCKS = (Stock("tesla", 183.26, 10, 100), Stock("ford", 11.93, 5, 0))
BUY, SELL = trade_pb2.TRADE_TYPE_BUY, trade_pb2.TRADE_TYPE_SELL
OK, GAP, INCONSISTENT = (catalog_pb2.TRADE_STATUS_OK, catalog_pb2.TRADE_STATUS_GAP,
                         catalog_pb2.TRADE_STATUS_INCONSISTENT)


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code


class Context:
    def __init__(self, remaining: float = 5.0) -> None:
        self.remaining = remaining

    def time_remaining(self) -> float:
        return self.remaining

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


class Catalog:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.store = CatalogStore(directory, STOCKS)
        self.committer = GroupCommitter(reactor, self.store.apply, name="catalog-test")
        self.committer.startService()
        self.servicer = CatalogServicer(self.store, self.committer, ReactorHop(reactor, timeout=5.0), timeout=5.0)

    def batch(self, *trades: tuple) -> Any:
        """TradeBatch, called from a handler thread as gRPC does; a Deferred of the response."""
        request = catalog_pb2.TradeBatchRequest(trades=[trade(*t) for t in trades])
        return deferToThread(self.servicer.TradeBatch, request, Context())

    def lookup(self, name: str, min_applied: int | None = None, remaining: float = 5.0) -> Any:
        request = catalog_pb2.LookupStockRequest(name=name, min_applied=min_applied)
        return deferToThread(self.servicer.Lookup, request, Context(remaining))

    def held(self, name: str) -> tuple[int, int]:
        stock = self.store.lookup(name)
        return stock.quantity, stock.volume


def trade(number: int, name: str, type_: int, quantity: int) -> catalog_pb2.TradeStockRequest:
    return catalog_pb2.TradeStockRequest(number=number, name=name, type=type_, quantity=quantity)


@pytest.fixture
def catalog(tmp_path: Path):
    catalog = Catalog(tmp_path)
    yield catalog
    pytest_twisted.blockon(maybeDeferred(catalog.committer.stopService))
    catalog.store.close()


def answer(response: Any) -> tuple[int, int]:
    return response.status, response.applied_through


@pytest_twisted.inlineCallbacks
def test_a_batch_is_applied_in_order_and_reports_how_far(catalog: Catalog):
    response = yield catalog.batch((0, "tesla", BUY, 6), (1, "tesla", BUY, 4), (2, "ford", SELL, 1))
    assert answer(response) == (OK, 2)
    assert catalog.held("tesla") == (0, 110) and catalog.held("ford") == (6, 1)
    assert read_applied(catalog.directory) == 2, "on disk before the answer"
    response = yield catalog.batch((1, "tesla", BUY, 4), (2, "ford", SELL, 1), (3, "ford", BUY, 6))
    assert answer(response) == (OK, 3), "a resend: 1 and 2 are skipped"
    assert catalog.held("tesla") == (0, 110) and catalog.held("ford") == (0, 7)


@pytest_twisted.inlineCallbacks
def test_an_empty_batch_reports_how_far_it_has_applied(catalog: Catalog):
    assert answer((yield catalog.batch())) == (OK, -1)
    yield catalog.batch((0, "ford", BUY, 1))
    assert answer((yield catalog.batch())) == (OK, 0)


@pytest_twisted.inlineCallbacks
def test_a_trade_beyond_the_next_one_is_a_gap(catalog: Catalog):
    yield catalog.batch((0, "ford", BUY, 1))
    response = yield catalog.batch((2, "ford", BUY, 1), (3, "ford", BUY, 1))
    assert answer(response) == (GAP, 0)
    assert catalog.held("ford") == (4, 1) and read_applied(catalog.directory) == 0


@pytest_twisted.inlineCallbacks
def test_a_trade_that_does_not_fit_is_inconsistent_and_nothing_after_it_applies(catalog: Catalog):
    response = yield catalog.batch((0, "ford", BUY, 2), (1, "ford", BUY, 4), (2, "tesla", BUY, 1))
    assert answer(response) == (INCONSISTENT, 0)
    assert catalog.held("ford") == (3, 2) and catalog.held("tesla") == (10, 100)
    response = yield catalog.batch((1, "nope", BUY, 1))
    assert answer(response) == (INCONSISTENT, 0)


@pytest_twisted.inlineCallbacks
def test_a_single_trade_is_applied_like_a_batch_of_one(catalog: Catalog):
    response = yield deferToThread(catalog.servicer.Trade, trade(0, "tesla", SELL, 5), Context())
    assert answer(response) == (OK, 0) and catalog.held("tesla") == (15, 105)
    response = yield deferToThread(catalog.servicer.Trade, trade(2, "tesla", SELL, 5), Context())
    assert answer(response) == (GAP, 0)


def test_a_lookup_whose_trades_are_applied_answers_at_once(tmp_path: Path):
    class NoHop:
        def call(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no need to wait in the reactor")

    store = CatalogStore(tmp_path, STOCKS)
    servicer = CatalogServicer(store, None, NoHop(), timeout=5.0)  # type: ignore[arg-type]
    response = servicer.Lookup(catalog_pb2.LookupStockRequest(name="tesla"), Context())
    assert (response.found, response.price, response.quantity, response.volume, response.applied_through) == (
        True, 183.26, 10, 100, -1)
    store.apply([[CommittedTrade(0, "ford", "buy", 2)]])
    response = servicer.Lookup(catalog_pb2.LookupStockRequest(name="ford", min_applied=0), Context())
    assert (response.found, response.quantity, response.volume, response.applied_through) == (True, 3, 2, 0)
    response = servicer.Lookup(catalog_pb2.LookupStockRequest(name="nope", min_applied=0), Context())
    assert (response.found, response.quantity, response.applied_through) == (False, 0, 0)
    store.close()


@pytest_twisted.inlineCallbacks
def test_a_lookup_waits_for_the_trade_it_needs(catalog: Catalog):
    looking = catalog.lookup("ford", min_applied=1)
    waiting = catalog.servicer._applied._waiting
    yield reactor_until(lambda: waiting or looking.called)  # until the lookup waits in the reactor
    assert waiting and not looking.called
    yield catalog.batch((0, "ford", BUY, 1))
    assert not looking.called
    yield catalog.batch((1, "ford", BUY, 3))
    response = yield looking
    assert (response.found, response.quantity, response.volume, response.applied_through) == (True, 1, 4, 1)


@pytest_twisted.inlineCallbacks
def test_a_lookup_whose_trade_is_not_applied_in_time_is_unavailable(catalog: Catalog):
    with pytest.raises(Aborted) as aborted:
        yield catalog.lookup("ford", min_applied=0, remaining=0.2)
    assert aborted.value.code is grpc.StatusCode.UNAVAILABLE
    assert "through -1" in str(aborted.value)


# ---- bounds: requests the order leader and the front end never send ---------------------------


@pytest.mark.parametrize("trades", [
    [(i, "ford", SELL, 1) for i in range(1001)],  # more than a leader sends at once
    [(0, "f" * 101, SELL, 1)],
    [(0, "", SELL, 1)],
    [(0, "ford", SELL, 0)],
    [(0, "ford", SELL, -3)],
    [(0, "ford", SELL, 10**12)],
    [(0, "ford", 0, 1)],
    [(0, "ford", 9, 1)],
    [(-1, "ford", SELL, 1)],
    [(2**63 - 1, "ford", SELL, 1)],
    [(0, "ford", SELL, 1), (2, "ford", SELL, 1)],  # not consecutive
], ids=["too many", "a huge name", "no name", "no quantity", "a negative quantity", "a quantity beyond any trade",
        "no type", "an unknown type", "a negative number", "a number at the top", "a hole"])
@pytest_twisted.inlineCallbacks
def test_trades_no_leader_sends_are_invalid_and_nothing_is_applied(catalog: Catalog, trades):
    with pytest.raises(Aborted) as aborted:
        yield catalog.batch(*trades)
    assert aborted.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert catalog.held("ford") == (5, 0) and read_applied(catalog.directory) == -1
    assert answer((yield catalog.batch((0, "ford", SELL, 1)))) == (OK, 0), "the leader's next batch applies"


@pytest_twisted.inlineCallbacks
def test_a_far_number_is_a_gap_and_blocks_nothing(catalog: Catalog):
    """Attack: a catalog call with epoch 10^18 made every trade 503 from then on. The catalog
    takes no epoch now; a far number in range is only a gap, and the next trades apply."""
    assert answer((yield catalog.batch((10**18, "ford", SELL, 1)))) == (GAP, -1)
    assert answer((yield catalog.batch((0, "ford", SELL, 1), (1, "tesla", BUY, 1)))) == (OK, 1)
    assert catalog.held("ford") == (6, 1) and read_applied(catalog.directory) == 1


@pytest.mark.parametrize("request_", [
    catalog_pb2.LookupStockRequest(name="t" * 101),
    catalog_pb2.LookupStockRequest(name="tesla", min_applied=2**63 - 1),
    catalog_pb2.LookupStockRequest(name="tesla", min_applied=-2),
])
def test_a_lookup_no_front_end_sends_is_invalid(tmp_path: Path, request_):
    store = CatalogStore(tmp_path, STOCKS)
    servicer = CatalogServicer(store, None, None, timeout=5.0)  # type: ignore[arg-type]
    with pytest.raises(Aborted) as aborted:
        servicer.Lookup(request_, Context())
    assert aborted.value.code is grpc.StatusCode.INVALID_ARGUMENT
    store.close()

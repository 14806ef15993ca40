"""A new leader's catalog feed: once the catalog has applied everything committed when it first
answered, every front end's cache is dropped, once."""

from __future__ import annotations

from bazaar.order.feeds import CatalogFeed
from bazaar.v1 import catalog_pb2


class Leader:
    def __init__(self, committed_number: int) -> None:
        self.committed_number = committed_number
        self.committed_index = committed_number
        self.caught_up = 0
        self.applied: list[int] = []

    def now(self) -> float:
        return 0.0

    def trades_after(self, number: int, limit: int) -> list:
        return []

    def catalog_applied(self, trades: list) -> None:
        self.applied += [e.number for e in trades]

    def catalog_caught_up(self) -> None:
        self.caught_up += 1


def answer(applied: int) -> catalog_pb2.TradeBatchResponse:
    return catalog_pb2.TradeBatchResponse(status=catalog_pb2.TRADE_STATUS_OK, applied_through=applied)


def test_the_caches_are_dropped_once_the_catalog_has_applied_what_earlier_leaders_committed():
    leader = Leader(committed_number=7)
    feed = CatalogFeed(leader)
    assert feed.next_request() == catalog_pb2.TradeBatchRequest()  # how far have you applied?
    feed.answered(answer(5))  # trades 6 and 7 of an earlier leader are still to apply
    assert leader.caught_up == 0
    leader.committed_number = 9  # this leader's own trades commit meanwhile
    feed.answered(answer(7))
    assert leader.caught_up == 1
    feed.answered(answer(9))
    assert leader.caught_up == 1, "once per leadership"


def test_a_catalog_that_is_up_to_date_at_once_drops_the_caches_at_once():
    leader = Leader(committed_number=3)
    feed = CatalogFeed(leader)
    feed.answered(answer(3))
    assert leader.caught_up == 1

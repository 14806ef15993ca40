"""What the leader's catalog feed sends: committed trades in number order, each batch after what
the catalog says it applied; found by number on the leader's disk until an answer tells where
they start, then read by index from the leader's memory; under load, at most one batch every
CATALOG_SPACING seconds."""

from __future__ import annotations

import pytest

from bazaar.core.chain import Kind, Record, chained
from bazaar.order.feeds import BATCH_LIMIT, CATALOG_SPACING, CatalogFeed
from bazaar.v1 import catalog_pb2


def _log():
    """Trades 0..9 with a leader entry first and a refused trade in between."""
    records, number = [Record(0, 1, Kind.LEADER, -1)], 0
    for i in range(1, 12):
        if i == 5:
            records.append(Record(i, 1, Kind.REFUSED, number - 1, "tesla", "sell", 99, f"k{i}"))
        else:
            records.append(Record(i, 1, Kind.TRADE, number, "tesla", "buy", 1, f"k{i}"))
            number += 1
    return chained(records)


class Leader:
    def __init__(self, committed_index: int) -> None:
        self.log = _log()
        self.committed_index = committed_index
        self.disk_reads = 0
        self.memory_reads = 0
        self.applied: list[int] = []
        self.clock = 100.0

    def now(self) -> float:
        return self.clock

    @property
    def committed_number(self) -> int:
        return self.log[self.committed_index].number

    def trades_after(self, number: int, limit: int) -> list:
        self.disk_reads += 1
        return [e for e in self.log if e.kind is Kind.TRADE and e.number > number][:limit]

    def entries_in(self, indexes: range) -> list:
        self.memory_reads += 1
        return self.log[indexes.start:indexes.stop]

    def catalog_applied(self, trades: list) -> None:
        self.applied += [e.number for e in trades]

    def catalog_caught_up(self) -> None:
        pass


def answer(applied: int) -> catalog_pb2.TradeBatchResponse:
    return catalog_pb2.TradeBatchResponse(status=catalog_pb2.TRADE_STATUS_OK, applied_through=applied)


def numbers(request: catalog_pb2.TradeBatchRequest) -> list[int]:
    return [t.number for t in request.trades]


def test_after_the_first_batch_the_trades_come_from_memory_in_number_order():
    leader = Leader(committed_index=6)  # trades 0..4 and the refused entry
    feed = CatalogFeed(leader)
    feed.next_request()
    feed.answered(answer(1))  # it had applied 0 and 1 already
    assert numbers(feed.next_request()) == [2, 3, 4] and leader.disk_reads == 1
    feed.answered(answer(4))
    leader.committed_index = 11
    assert numbers(feed.next_request()) == [5, 6, 7, 8, 9]  # past the refused entry
    assert (leader.disk_reads, leader.memory_reads) == (1, 1)
    feed.answered(answer(9))
    assert leader.applied == [2, 3, 4, 5, 6, 7, 8, 9]
    assert feed.next_request() is None


def test_a_batch_applied_in_part_goes_on_after_the_part_at_once():
    leader = Leader(committed_index=11)
    feed = CatalogFeed(leader)
    feed.next_request()
    feed.answered(answer(-1))
    assert numbers(feed.next_request()) == list(range(10))
    assert feed.answered(answer(3)) is None, "not spaced"
    assert numbers(feed.next_request()) == [4, 5, 6, 7, 8, 9]
    assert leader.memory_reads == 1


def test_a_catalog_ahead_of_what_it_was_sent_is_served_by_number_again():
    leader = Leader(committed_index=4)  # trades 0..3
    feed = CatalogFeed(leader)
    feed.next_request()
    feed.answered(answer(-1))
    assert numbers(feed.next_request()) == [0, 1, 2, 3]
    feed.answered(answer(3))
    leader.committed_index = 8  # trades up to 6
    assert numbers(feed.next_request()) == [4, 5, 6] and leader.memory_reads == 1
    reads = leader.disk_reads
    feed.answered(answer(8))  # 7 and 8 too: as if an earlier leader's batch had reached it
    leader.committed_index = 11
    assert numbers(feed.next_request()) == [9] and leader.disk_reads == reads + 1


def test_the_next_batch_waits_until_the_spacing_has_passed_since_the_last_one_left():
    leader = Leader(committed_index=4)  # trades 0..3
    feed = CatalogFeed(leader)
    feed.next_request()
    assert feed.answered(answer(-1)) is None, "the question how far it applied is not spaced"
    assert numbers(feed.next_request()) == [0, 1, 2, 3]  # sent at 100.0
    leader.clock += 0.01
    assert feed.answered(answer(3)) == pytest.approx(CATALOG_SPACING - 0.01)
    leader.committed_index = 8
    leader.clock += CATALOG_SPACING
    assert numbers(feed.next_request()) == [4, 5, 6]
    leader.clock += CATALOG_SPACING + 0.001  # a slow answer: the spacing has passed already
    assert feed.answered(answer(6)) is None


def test_a_catalog_catching_up_is_sent_the_next_batch_at_once():
    # A long run of trades with a refusal every tenth entry: every batch leaves committed
    # trades behind it, the full one read from disk and the window read from memory alike.
    records, number = [Record(0, 1, Kind.LEADER, -1)], 0
    for i in range(1, 2 * BATCH_LIMIT + 500):
        if i % 10 == 0:
            records.append(Record(i, 1, Kind.REFUSED, number - 1, "tesla", "sell", 99, f"k{i}"))
        else:
            records.append(Record(i, 1, Kind.TRADE, number, "tesla", "buy", 1, f"k{i}"))
            number += 1
    leader = Leader(committed_index=len(records) - 1)
    leader.log = chained(records)
    feed = CatalogFeed(leader)
    feed.next_request()
    feed.answered(answer(-1))
    sent = feed.next_request().trades
    assert len(sent) == BATCH_LIMIT and leader.disk_reads == 1
    assert feed.answered(answer(sent[-1].number)) is None
    sent = feed.next_request().trades
    assert 0 < len(sent) < BATCH_LIMIT and leader.memory_reads == 1, "a window of entries, refusals among them"
    assert feed.answered(answer(sent[-1].number)) is None
    last = feed.next_request().trades[-1].number
    assert last == number - 1, "everything committed is sent now"
    assert feed.answered(answer(last)) == pytest.approx(CATALOG_SPACING)


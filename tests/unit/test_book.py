"""The stock book: the stock table a log implies (the initial table plus every trade entry)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bazaar.core.book import StockBook
from bazaar.core.chain import Kind, Record
from bazaar.core.orders import MAX_TRADE_QUANTITY
from bazaar.core.stock import Stock, TradeCheck

INITIAL = (Stock("tesla", 183.26, 10, 100), Stock("ford", 11.93, 3, 0), Stock("amc", 4.78, 0, 7))


def trade(name: str, type_: str, quantity: int, number: int = 0) -> Record:
    return Record(number, 1, Kind.TRADE, number, name, type_, quantity, f"k{number}")


def random_trades(rng: random.Random, count: int) -> list[Record]:
    """Trades as a leader would log them: each one fits the table the ones before it left."""
    book = StockBook(INITIAL)
    trades: list[Record] = []
    while len(trades) < count:
        record = trade(rng.choice(["tesla", "ford", "amc"]), rng.choice(["buy", "sell"]), rng.randint(1, 6),
                       len(trades))
        if book.check(record.name, record.type, record.quantity) is TradeCheck.OK:
            book.apply(record)
            trades.append(record)
    return trades


def test_a_buy_takes_shares_out_a_sell_puts_them_back_and_both_add_volume() -> None:
    book = StockBook(INITIAL)
    book.apply(trade("tesla", "buy", 4))
    book.apply(trade("ford", "sell", 2))
    assert book.stock("tesla") == Stock("tesla", 183.26, 6, 104)
    assert book.stock("ford") == Stock("ford", 11.93, 5, 2)
    assert book.stock("amc") == INITIAL[2]
    assert book.stock("nope") is None


def test_the_stocks_are_listed_by_name() -> None:
    assert [s.name for s in StockBook(INITIAL).stocks()] == ["amc", "ford", "tesla"]


def test_entries_that_are_not_trades_move_nothing() -> None:
    book = StockBook(INITIAL)
    book.apply(Record(0, 1, Kind.LEADER, -1))
    book.apply(Record(1, 1, Kind.REFUSED, -1, "ford", "buy", 50, "k"))
    book.unapply(Record(1, 1, Kind.REFUSED, -1, "ford", "buy", 50, "k"))
    assert book.stocks() == StockBook(INITIAL).stocks()


def test_unapply_undoes_apply_in_reverse_order() -> None:
    rng = random.Random(8)
    trades = random_trades(rng, 60)
    book = StockBook(INITIAL)
    seen = []
    for record in trades:
        seen.append(book.stocks())
        book.apply(record)
    assert book.stocks() != seen[0]
    for record, before in zip(reversed(trades), reversed(seen), strict=True):
        book.unapply(record)
        assert book.stocks() == before


def test_totals_equal_applying_the_trades_one_by_one() -> None:
    rng = random.Random(3)
    for _ in range(20):
        trades = random_trades(rng, rng.randint(0, 40))
        one_by_one = StockBook(INITIAL)
        for record in trades:
            one_by_one.apply(record)
        sums: Counter[tuple[str, str]] = Counter()
        for record in trades:
            sums[record.name, record.type] += record.quantity
        totals = StockBook(INITIAL)
        totals.apply_totals([(name, type_, quantity) for (name, type_), quantity in sums.items()])
        assert totals.stocks() == one_by_one.stocks()


@pytest.mark.parametrize(
    "name, type_, quantity, expected",
    [
        # The seed's order: stock, then type, then quantity, then what the stock holds.
        ("nope", "steal", 0, TradeCheck.STOCK_NOT_FOUND),
        ("nope", "buy", 1, TradeCheck.STOCK_NOT_FOUND),
        ("ford", "steal", 0, TradeCheck.INVALID_TYPE),
        ("ford", None, 1, TradeCheck.INVALID_TYPE),
        ("ford", "buy", 0, TradeCheck.INVALID_QUANTITY),
        ("ford", "buy", -1, TradeCheck.INVALID_QUANTITY),
        ("ford", "sell", True, TradeCheck.INVALID_QUANTITY),
        ("ford", "sell", MAX_TRADE_QUANTITY + 1, TradeCheck.INVALID_QUANTITY),
        ("ford", "buy", 4, TradeCheck.NOT_ENOUGH_STOCK),
        ("amc", "buy", 1, TradeCheck.NOT_ENOUGH_STOCK),
        ("ford", "buy", 3, TradeCheck.OK),  # every share it holds
        ("amc", "sell", MAX_TRADE_QUANTITY, TradeCheck.OK),  # a sell needs no stock held
    ],
)
def test_checks_run_in_the_seeds_order(name, type_, quantity, expected) -> None:
    book = StockBook(INITIAL)
    assert book.check(name, type_, quantity) is expected
    assert book.stocks() == StockBook(INITIAL).stocks(), "a check moves nothing"


def test_checks_see_the_trades_applied_and_unapplied() -> None:
    book = StockBook(INITIAL)
    buy = trade("ford", "buy", 3)
    book.apply(buy)
    assert book.check("ford", "buy", 1) is TradeCheck.NOT_ENOUGH_STOCK
    book.unapply(buy)
    assert book.check("ford", "buy", 3) is TradeCheck.OK

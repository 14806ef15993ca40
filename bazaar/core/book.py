"""The stock table a log implies: the initial table plus every trade in the log, in order.

The leader checks each new trade against its book, which counts the trades it has logged but
not yet committed too: each of them either commits or is lost together with the leadership,
and the next leader's book comes from the next leader's own log. So the check never depends
on the catalog, and the catalog, applying the committed log to the same initial table, ends up
with exactly the same numbers.
"""

from __future__ import annotations

from typing import Iterable

from bazaar.core.chain import Kind, Record
from bazaar.core.orders import BUY
from bazaar.core.stock import Stock, TradeCheck, apply_trade


class StockBook:
    def __init__(self, initial: Iterable[Stock]) -> None:
        self._stocks = {s.name: s for s in initial}

    def stock(self, name: str) -> Stock | None:
        return self._stocks.get(name)

    def stocks(self) -> list[Stock]:
        return sorted(self._stocks.values(), key=lambda s: s.name)

    def check(self, name: str, type_: str | None, quantity: int) -> TradeCheck:
        """What a trade would meet now, in the order of checks: stock, type, quantity, stock held."""
        return apply_trade(self._stocks.get(name), type_, quantity)[0]

    def apply(self, record: Record) -> None:
        """A trade entry moves its stock; other entries change nothing."""
        self._move(record, 1)

    def unapply(self, record: Record) -> None:
        """Undo `apply` (a follower dropping a dead leader's tail)."""
        self._move(record, -1)

    def misfit(self, dropped: Iterable[Record], added: Iterable[Record]) -> Record | None:
        """The first of `added` that no leader could have logged after this book's log less
        `dropped` (its tail, to be replaced): a trade must pass every check against the stock
        it moves, a refusal must be one for lack of stock, as `ReplicaCore.place` logs them.
        None when every entry fits. Changes nothing."""
        stocks: dict[str, Stock] = {}

        def held(name: str) -> Stock | None:
            return stocks[name] if name in stocks else self._stocks.get(name)

        for record in dropped:
            stock = held(record.name)
            if record.is_trade and stock is not None:
                stocks[record.name] = _moved(stock, record.type, record.quantity, -1)
        for record in added:
            if record.kind is Kind.LEADER:
                continue
            check, after = apply_trade(held(record.name), record.type, record.quantity)
            if record.is_trade and check is TradeCheck.OK and after is not None:
                stocks[record.name] = after
            elif record.is_trade or check is not TradeCheck.NOT_ENOUGH_STOCK:
                return record
        return None

    def reset(self, stocks: Iterable[Stock]) -> None:
        """The book becomes `stocks` (a snapshot's, installed in place of the log)."""
        self._stocks = {s.name: s for s in stocks}

    def apply_totals(self, totals: Iterable[tuple[str, str, int]]) -> None:
        """Add (name, type, total quantity) sums, as a store reads them from a whole log."""
        for name, type_, quantity in totals:
            stock = self._stocks.get(name)
            if stock is not None:
                self._stocks[name] = _moved(stock, type_, quantity, 1)

    def _move(self, record: Record, sign: int) -> None:
        if not record.is_trade:
            return
        stock = self._stocks.get(record.name)
        if stock is not None:
            self._stocks[record.name] = _moved(stock, record.type, record.quantity, sign)


def _moved(stock: Stock, type_: str, quantity: int, sign: int) -> Stock:
    """A buy takes `quantity` out, a sell puts it back; both add it to the volume. sign -1 undoes."""
    held = -quantity if type_ == BUY else quantity
    return Stock(stock.name, stock.price, stock.quantity + sign * held, stock.volume + sign * quantity)

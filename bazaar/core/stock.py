"""The stock table's rules: what a trade does to a stock, and the default table (docs/api.md)."""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from typing import Iterable

from bazaar.core.orders import BUY, SELL, valid_quantity


@dataclass(frozen=True)
class Stock:
    name: str
    price: float
    quantity: int
    volume: int


class TradeCheck(enum.Enum):
    """Why a trade is refused, in the order the checks run (docs/api.md)."""

    OK = "ok"
    STOCK_NOT_FOUND = "stock not found"
    INVALID_TYPE = "invalid request type"
    INVALID_QUANTITY = "invalid number of stocks"
    NOT_ENOUGH_STOCK = "not enough stocks available to buy"


def apply_trade(stock: Stock | None, type_: str | None, quantity: int) -> tuple[TradeCheck, Stock | None]:
    """Check a trade against `stock` and return the stock as it would be after it."""
    if stock is None:
        return TradeCheck.STOCK_NOT_FOUND, None
    if type_ not in (BUY, SELL):
        return TradeCheck.INVALID_TYPE, stock
    if not valid_quantity(quantity):
        return TradeCheck.INVALID_QUANTITY, stock
    # The constructor, not dataclasses.replace: this runs for every trade on every replica.
    if type_ == BUY:
        if quantity > stock.quantity:
            return TradeCheck.NOT_ENOUGH_STOCK, stock
        return TradeCheck.OK, Stock(stock.name, stock.price, stock.quantity - quantity, stock.volume + quantity)
    return TradeCheck.OK, Stock(stock.name, stock.price, stock.quantity + quantity, stock.volume + quantity)


DEFAULT_STOCKS = tuple(
    Stock(name, price, 1000, 100)
    for name, price in [
        ("tesla", 183.26),
        ("ford", 11.93),
        ("apple", 152.59),
        ("amazon", 94.88),
        ("nvidia", 240.63),
        ("intel", 28.01),
        ("meta", 194.02),
        ("nike", 126.13),
        ("amc", 4.78),
        ("gamestop", 20.00),
    ]
)
# The one list of the default names, for clients that trade without reading the config.
STOCK_NAMES = tuple(s.name for s in DEFAULT_STOCKS)


def table_id(stocks: Iterable[Stock]) -> str:
    """A fingerprint of a stock table: equal exactly when the tables hold the same stocks.

    A store records it so that it will not be opened with another table. Sorted, so the
    order the file gives does not matter; float() and int() so that price 183 and 183.0,
    which compare equal, fingerprint alike.
    """
    rows = sorted([s.name, float(s.price), int(s.quantity), int(s.volume)] for s in stocks)
    encoded = json.dumps(rows, separators=(",", ":")).encode()
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()

"""The catalog's apply rule, with no I/O: committed trades, each exactly once, in number order.

The catalog has applied every trade numbered up to `applied` and nothing after. A trade numbered
`applied + 1` is applied next; one already applied is skipped (a leader resending after a lost
answer, or a replaced leader sending what the new one sends too: committed trades are the same
in every leader's log); one further on waits until the trades before it come. So the table
always equals the initial table plus the committed log up to `applied`: stock moves only for a
committed order, and for each exactly once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping, Sequence

from bazaar.core.stock import Stock, TradeCheck, apply_trade


@dataclass(frozen=True)
class CommittedTrade:
    number: int
    name: str
    type: str | None
    quantity: int


class Progress(enum.Enum):
    OK = "ok"  # every trade given is applied, now or before
    GAP = "gap"  # a trade's number is beyond the next one needed
    INCONSISTENT = "inconsistent"  # a committed trade does not fit this table


@dataclass(frozen=True)
class Learned:
    """The stocks that changed (their new state), how far the catalog has now applied, and
    whether it stopped early."""

    changed: dict[str, Stock]
    applied: int
    progress: Progress


def learn(stocks: Mapping[str, Stock], applied: int, trades: Sequence[CommittedTrade]) -> Learned:
    changed: dict[str, Stock] = {}
    for trade in trades:
        if trade.number <= applied:
            continue
        if trade.number != applied + 1:
            return Learned(changed, applied, Progress.GAP)
        stock = changed.get(trade.name) or stocks.get(trade.name)
        check, after = apply_trade(stock, trade.type, trade.quantity)
        if check is not TradeCheck.OK or after is None:
            # The leader checked this trade against the same table: a catalog made from
            # another table, or a bug. Stop here rather than apply anything out of order.
            return Learned(changed, applied, Progress.INCONSISTENT)
        changed[trade.name] = after
        applied = trade.number
    return Learned(changed, applied, Progress.OK)

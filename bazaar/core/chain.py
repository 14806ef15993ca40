"""The hash chain that lets two replicas tell whether their logs agree.

chain(n) = H(chain(n-1), order n) and chain(-1) = GENESIS. Replicas that share an order's
chain value hold identical logs up to and including that order, so comparing one value
replaces comparing a whole prefix (Raft's log-matching property, with hashes for terms).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from bazaar.core.orders import Order

GENESIS = bytes(16)


@dataclass(frozen=True)
class Entry:
    """An order as the log holds it: with its chain value."""

    order: Order
    chain: bytes

    @property
    def number(self) -> int:
        return self.order.number


def link(prev: bytes, order: Order) -> bytes:
    digest = hashlib.blake2b(prev, digest_size=16)
    digest.update(json.dumps([order.number, order.name, order.type, order.quantity]).encode())
    return digest.digest()


def checkpoint_numbers(last: int) -> list[int]:
    """last, last-1, last-2, last-4, ... then -1: O(log n) probes to find where two logs part."""
    numbers = []
    step = 1
    n = last
    while n >= 0:
        numbers.append(n)
        n = last - step
        step *= 2
    numbers.append(-1)
    return numbers


def chained(orders: list[Order], prev: bytes = GENESIS) -> list[Entry]:
    """Orders as consecutive log entries following a log whose last chain value is `prev`."""
    entries = []
    for order in orders:
        prev = link(prev, order)
        entries.append(Entry(order, prev))
    return entries

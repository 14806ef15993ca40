"""Log entries, and the hash chain that lets two replicas tell whether their logs agree.

Every entry records the leadership *epoch* that numbered it. chain(n) = H(chain(n-1), epoch,
order n) and chain(-1) = GENESIS. Replicas that share an entry's chain value hold identical
logs up to and including that entry, so comparing one value replaces comparing a whole prefix
(Raft's log-matching property). Epochs also rank logs: the one whose last entry has the higher
(epoch, number) is the more up to date (Raft's election rule).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from bazaar.core.orders import Order

GENESIS = bytes(16)


@dataclass(frozen=True)
class Record:
    """An order as leaders send it: with the epoch that numbered it and the idempotency key
    it was placed under ("" for none)."""

    order: Order
    epoch: int
    key: str = ""

    @property
    def number(self) -> int:
        return self.order.number


@dataclass(frozen=True)
class Entry:
    """An order as the log holds it: a record and its chain value."""

    order: Order
    epoch: int
    key: str
    chain: bytes

    @property
    def number(self) -> int:
        return self.order.number


def link(prev: bytes, record: Record | Entry) -> bytes:
    o = record.order
    digest = hashlib.blake2b(prev, digest_size=16)
    digest.update(json.dumps([o.number, record.epoch, o.name, o.type, o.quantity, record.key]).encode())
    return digest.digest()


def entry_of(record: Record | Entry, chain: bytes) -> Entry:
    return Entry(record.order, record.epoch, record.key, chain)


def chained(records: list[Record], prev: bytes = GENESIS) -> list[Entry]:
    """Records as consecutive log entries following a log whose last chain value is `prev`."""
    entries = []
    for record in records:
        prev = link(prev, record)
        entries.append(entry_of(record, prev))
    return entries


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

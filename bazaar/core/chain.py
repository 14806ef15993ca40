"""Log entries, and the hash chain that lets two replicas tell whether their logs agree.

The replicated log is a sequence of entries indexed 0, 1, 2, ... Most are executed trades;
some record a trade refused for lack of stock (so that its idempotency key keeps that answer),
and each leader's epoch begins with a `leader` entry (Raft's no-op: entries of older epochs
count as committed only once one of the leader's own epoch is on a majority).

Every entry records the leadership *epoch* that appended it. chain(i) = H(chain(i-1), entry i)
and chain(-1) = GENESIS. Replicas that share an entry's chain value hold identical logs up to
and including that entry, so comparing one value replaces comparing a whole prefix (Raft's
log-matching property). Epochs also rank logs: the one whose last entry has the higher
(epoch, index) is the more up to date (Raft's election rule).
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass

from bazaar.core.orders import Order

GENESIS = bytes(16)


class Kind(enum.Enum):
    TRADE = "trade"  # an executed trade, numbered
    REFUSED = "refused"  # refused for lack of stock
    LEADER = "leader"  # the first entry of a leader's epoch


@dataclass(frozen=True)
class Record:
    """An entry as leaders send it. `number` is a trade's transaction number; for the other
    kinds it is the latest transaction number before the entry (-1 for none), so the number
    of trades in any prefix of the log is its last entry's `number` + 1."""

    index: int
    epoch: int
    kind: Kind
    number: int
    name: str = ""
    type: str = ""
    quantity: int = 0
    key: str = ""

    @property
    def is_trade(self) -> bool:
        return self.kind is Kind.TRADE

    @property
    def order(self) -> Order:
        """The executed trade (trades only)."""
        if self.kind is not Kind.TRADE:
            raise ValueError(f"entry {self.index} is not a trade")
        return Order(self.number, self.name, self.type, self.quantity)

    def same_request(self, name: str, type_: str | None, quantity: int) -> bool:
        """Whether a request for (name, type, quantity) is the one this entry answered."""
        return (self.name, self.type, self.quantity) == (name, type_, quantity)


@dataclass(frozen=True)
class Entry(Record):
    """An entry as the log holds it: a record and its chain value."""

    chain: bytes = GENESIS

    def record(self) -> Record:
        return Record(self.index, self.epoch, self.kind, self.number, self.name, self.type, self.quantity, self.key)


# The fields of an entry, in a fixed binary layout: index, epoch, number, quantity (signed
# 64-bit), the kind's code, then the lengths and UTF-8 bytes of name, type and key. Any change
# to it changes every chain value on disk, so it goes with a new store format.
_FIXED = struct.Struct(">qqqqBIII")
_KIND_CODES = {Kind.TRADE: 1, Kind.REFUSED: 2, Kind.LEADER: 3}
KIND_CODES_BY_NAME = {kind.value: code for kind, code in _KIND_CODES.items()}


def link(prev: bytes, record: Record) -> bytes:
    return link_fields(prev, record.index, record.epoch, _KIND_CODES[record.kind], record.number, record.name,
                       record.type, record.quantity, record.key)


def link_fields(prev: bytes, index: int, epoch: int, kind_code: int, number: int, name: str, type_: str,
                quantity: int, key: str) -> bytes:
    """`link` of an entry given field by field (a snapshot's rows are checked without making
    a Record of each)."""
    name_bytes, type_bytes, key_bytes = name.encode(), type_.encode(), key.encode()
    fixed = _FIXED.pack(index, epoch, number, quantity, kind_code, len(name_bytes), len(type_bytes), len(key_bytes))
    return hashlib.blake2b(prev + fixed + name_bytes + type_bytes + key_bytes, digest_size=16).digest()


def entry_of(record: Record, chain: bytes) -> Entry:
    return Entry(record.index, record.epoch, record.kind, record.number, record.name, record.type,
                 record.quantity, record.key, chain)


def chained(records: list[Record], prev: bytes = GENESIS) -> list[Entry]:
    """Records as consecutive log entries following a log whose last chain value is `prev`."""
    entries = []
    for record in records:
        prev = link(prev, record)
        entries.append(entry_of(record, prev))
    return entries


def follows(record: Record, prev_number: int) -> bool:
    """Whether `record` may follow an entry whose `number` is `prev_number`: a trade takes the
    next transaction number, anything else keeps it. This is what keeps numbers 0..n-1."""
    return record.number == prev_number + (1 if record.kind is Kind.TRADE else 0)


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

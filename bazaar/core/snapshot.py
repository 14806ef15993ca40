"""A leader's snapshot, checked row by row before a replica far behind installs it; no I/O.

A replica that missed many entries (at least `SNAPSHOT_GAP` below the leader's commit point)
reads the leader's committed log as one file, SQLite's own pages, indexes and all (Raft's
InstallSnapshot): a stream of entries costs Python and SQLite work per entry, about 35 µs,
so a million would take half a minute.

The file is taken on trust no more than a batch is. Every row is checked as
`ReplicaCore.accept` checks an entry: consecutive indexes from 0, transaction numbers that run
on, epochs that never go back nor pass the leader's, well-formed trades of configured stocks,
each one a leader could log against the stock it moves (a buy needs the stock; a refusal is
one for lack of it), and a chain value that is the link of the one before, ending at the
value the leader announced. Keys are checked by the log's unique index when the rows are
copied in (store.py): a set of a million keys here would cost a hundred megabytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Iterable

from bazaar.core.bounds import MAX_EPOCH, MAX_INDEX, valid_key
from bazaar.core.chain import GENESIS, KIND_CODES_BY_NAME, Entry, Kind, link_fields
from bazaar.core.orders import BUY, MAX_TRADE_QUANTITY, TRADE_TYPES
from bazaar.core.stock import Stock

# Missed entries from which a rejoining replica asks for a snapshot instead of a stream: the
# stream takes about 35 µs an entry, a snapshot about 7 µs plus a second or so to make and
# send the file (docs/design.md, "Snapshots").
SNAPSHOT_GAP = 50_000

# A row of the log table: idx, epoch, kind, number, name, type, quantity, key, chain.
Row = tuple[int, int, str, int, str, str, int, str, bytes]


class MalformedSnapshot(ValueError):
    """A snapshot no correct leader sends: nothing of it is installed."""


@dataclass(frozen=True)
class CheckedSnapshot:
    """What a snapshot holds, once every row passed: its last entry, and the stock table its
    log implies (the initial table plus every trade in it)."""

    last: Entry
    stocks: list[Stock]
    epoch: int


class SnapshotCheck:
    """Fed a snapshot's rows in index order (`feed`, as often as the reader likes), then asked
    for the verdict (`finish`). Raises MalformedSnapshot at the first row that does not pass."""

    def __init__(self, initial: Iterable[Stock], last_index: int, last_chain: bytes, epoch: int) -> None:
        if not 0 <= last_index <= MAX_INDEX:
            raise MalformedSnapshot(f"last index {last_index} is out of range")
        if len(last_chain) != len(GENESIS):
            raise MalformedSnapshot("the last chain value is not one")
        if not 1 <= epoch <= MAX_EPOCH:
            raise MalformedSnapshot(f"epoch {epoch} is out of range")
        self._initial = {s.name: s for s in initial}
        # Per stock: quantity held and volume traded, as plain integers (a row costs a few
        # dictionary operations, not a Stock).
        self._held = {name: [s.quantity, s.volume] for name, s in self._initial.items()}
        self._last_index, self._last_chain, self._epoch = last_index, last_chain, epoch
        self._next = 0
        self._chain = GENESIS
        self._number = -1
        self._entry_epoch = 0
        self._last_row: Row | None = None

    def feed(self, rows: Iterable[Row]) -> None:
        held, link, kinds = self._held, link_fields, KIND_CODES_BY_NAME
        expected, chain, number, entry_epoch = self._next, self._chain, self._number, self._entry_epoch
        row: Row | None = None
        for row in rows:
            index, epoch, kind, row_number, name, type_, quantity, key, row_chain = row
            if not (type(index) is type(row_number) is type(quantity) is int
                    and type(name) is type(type_) is type(key) is str and type(row_chain) is bytes):
                raise MalformedSnapshot(f"entry {expected} has a field of the wrong type")
            if index != expected:
                raise MalformedSnapshot(f"entry {index} where entry {expected} was due")
            if index > self._last_index:
                raise MalformedSnapshot(f"entry {index} is beyond the announced last entry {self._last_index}")
            code = kinds.get(kind)
            if code is None:
                raise MalformedSnapshot(f"entry {index} has no kind")
            if type(epoch) is not int or not entry_epoch <= epoch <= self._epoch:
                raise MalformedSnapshot(f"entry {index} has epoch {epoch!r}, out of order")
            trade = code == 1
            if row_number != number + trade:
                raise MalformedSnapshot(f"entry {index} is numbered {row_number!r} after {number}")
            if code == 3:
                if name or type_ or quantity or key:
                    raise MalformedSnapshot(f"leader entry {index} carries a trade")
            else:
                stock = held.get(name)
                if (stock is None or type_ not in TRADE_TYPES
                        or not 1 <= quantity <= MAX_TRADE_QUANTITY or (key and not valid_key(key))):
                    raise MalformedSnapshot(f"entry {index} is not a well-formed trade")
                short = type_ == BUY and quantity > stock[0]
                if trade and short:
                    raise MalformedSnapshot(f"entry {index} buys {quantity} {name!r}, more than is held")
                if not trade and (type_ != BUY or not short):
                    raise MalformedSnapshot(f"entry {index} is a refusal no leader logs")
                if trade:
                    stock[0] += -quantity if type_ == BUY else quantity
                    stock[1] += quantity
            try:
                chain = link(chain, index, epoch, code, row_number, name, type_, quantity, key)
            except (UnicodeEncodeError, OverflowError, struct.error):  # a lone surrogate; out of range
                raise MalformedSnapshot(f"entry {index} has a field out of range") from None
            if chain != row_chain:
                raise MalformedSnapshot(f"entry {index} does not chain onto the entry before it")
            expected, number, entry_epoch = index + 1, row_number, epoch
        self._next, self._chain, self._number, self._entry_epoch = expected, chain, number, entry_epoch
        if row is not None:
            self._last_row = row

    def finish(self) -> CheckedSnapshot:
        row = self._last_row
        if row is None or row[0] != self._last_index:
            raise MalformedSnapshot(f"the snapshot ends before its announced last entry {self._last_index}")
        if self._chain != self._last_chain:
            raise MalformedSnapshot("the snapshot's last chain value is not the one announced")
        index, epoch, kind, number, name, type_, quantity, key, chain = row
        last = Entry(index, epoch, Kind(kind), number, name, type_, quantity, key, bytes(chain))
        stocks = [replace(s, quantity=self._held[s.name][0], volume=self._held[s.name][1])
                  for s in self._initial.values()]
        return CheckedSnapshot(last, stocks, self._epoch)

"""One replica's numbering, role and log matching, with no I/O.

`last_accepted` is the highest order number this replica has taken for writing (durable or on
its way to disk), `last_chain` and `last_epoch` those of that entry; `last_durable` the
highest one on disk. Numbers are handed out and accepted strictly in sequence, so the log is
always 0..n-1. `epoch` is the highest leadership epoch this replica has taken part in.

A follower takes the leader's log as the truth: a batch is accepted only where the follower's
chain at `prev_number` matches the leader's; an entry that differs from the one held replaces
it and everything after it, and nothing is kept beyond the leader's last order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

from bazaar.core.chain import GENESIS, Entry, Record, entry_of, link
from bazaar.core.orders import Order


class Role(enum.Enum):
    FOLLOWER = "follower"
    LEADER = "leader"


class NotLeader(Exception):
    """Only the leader numbers new orders."""


class MalformedBatch(ValueError):
    """A batch that no correct leader sends (numbers out of sequence or beyond its last)."""


@dataclass(frozen=True)
class Accepted:
    """Drop the log after `truncate_after` (when set), then write `entries`; the log then
    matches the sender's through `through`."""

    entries: list[Entry]
    through: int
    truncate_after: int | None = None


@dataclass(frozen=True)
class Gap:
    """No order `prev_number` here: the sender must start from `last` instead."""

    last: int


@dataclass(frozen=True)
class Conflict:
    """Order `prev_number` here differs from the sender's: it must start further back."""

    last: int


@dataclass(frozen=True)
class Stale:
    """The sender leads in an epoch older than one this replica has seen: it was replaced."""

    epoch: int


@dataclass(frozen=True, order=True)
class LogPosition:
    """How up to date a log is: compared by the last entry's epoch, then its number."""

    epoch: int
    number: int


ChainAt = Callable[[int], bytes]
EntryAt = Callable[[int], Entry]


class ReplicaCore:
    def __init__(self, last: Entry | None = None, epoch: int = 0) -> None:
        self.role = Role.FOLLOWER
        self.last_accepted = last.number if last else -1
        self.last_chain = last.chain if last else GENESIS
        self.last_epoch = last.epoch if last else 0
        self.last_durable = self.last_accepted
        self.epoch = max(epoch, self.last_epoch)

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def position(self) -> LogPosition:
        return LogPosition(self.last_epoch, self.last_accepted)

    def next_epoch(self, seen: int = 0) -> int:
        """An epoch to stand for: above every epoch this replica has seen or been told of."""
        return max(self.epoch, seen) + 1

    def promise(self, epoch: int) -> bool:
        """Promise `epoch` to a candidate (or to ourselves, standing): granted only if it is
        above every epoch promised before. From then on, leaders of older epochs are refused,
        and no other candidate gets this epoch: two leaders never share one."""
        if epoch <= self.epoch:
            return False
        self.epoch = epoch
        self.role = Role.FOLLOWER
        return True

    def lead(self) -> None:
        """Lead in the epoch this replica promised itself (and at least one other replica)."""
        self.role = Role.LEADER

    def follow(self) -> None:
        self.role = Role.FOLLOWER

    def number(self, name: str, type_: str, quantity: int, key: str = "") -> Entry:
        """The next order in the log (leader only), numbered in this replica's epoch."""
        if not self.is_leader:
            raise NotLeader()
        record = Record(Order(self.last_accepted + 1, name, type_, quantity), self.epoch, key)
        entry = entry_of(record, link(self.last_chain, record))
        self._set_last(entry)
        return entry

    def accept(
        self,
        prev_number: int,
        prev_chain: bytes,
        records: list[Record],
        entry_at: EntryAt,
        leader_last: int | None = None,
        leader_epoch: int | None = None,
    ) -> Accepted | Gap | Conflict | Stale:
        """A leader's batch (propagation or a rejoin stream). `entry_at(n)` is this replica's
        entry n <= last_accepted; `leader_last`, when given, is the sender's last order, and
        `leader_epoch` the epoch it leads in (a batch from an older epoch is refused)."""
        if any(r.number != prev_number + 1 + i for i, r in enumerate(records)) or prev_number < -1:
            raise MalformedBatch(f"orders do not follow {prev_number} in sequence")
        through = prev_number + len(records)
        if leader_last is not None and through > leader_last:
            raise MalformedBatch(f"orders up to {through} beyond the leader's last {leader_last}")
        if leader_epoch is not None:
            if leader_epoch < self.epoch or (leader_epoch == self.epoch and self.is_leader):
                return Stale(self.epoch)
            self.epoch = leader_epoch
            self.role = Role.FOLLOWER
        if prev_number > self.last_accepted:
            return Gap(self.last_accepted)
        if self._chain_at(prev_number, entry_at) != prev_chain:
            return Conflict(self.last_accepted)
        chain = prev_chain
        truncate_after: int | None = None
        entries: list[Entry] = []
        for record in records:
            chain = link(chain, record)
            if truncate_after is None and record.number <= self.last_accepted:
                if entry_at(record.number).chain == chain:
                    continue  # already held
                truncate_after = record.number - 1
            entries.append(entry_of(record, chain))
        if (
            truncate_after is None
            and leader_last is not None
            and self.last_accepted > leader_last
            and (leader_epoch is None or entry_at(leader_last + 1).epoch < leader_epoch)
        ):
            # A tail this leader never numbered: a dead leader's leftovers. (A tail of the
            # leader's own epoch means this batch is a late duplicate: keep it.)
            truncate_after = leader_last
        if truncate_after is not None:
            if truncate_after >= 0:
                self._set_last(entry_at(truncate_after))
            else:
                self.last_accepted, self.last_chain, self.last_epoch = -1, GENESIS, 0
            self.last_durable = min(self.last_durable, truncate_after)
        if entries:
            self._set_last(entries[-1])
            self.epoch = max(self.epoch, entries[-1].epoch)
        return Accepted(entries, through, truncate_after)

    def durable(self, number: int) -> None:
        """The log on disk now ends at `number` (writes and truncations finish in order)."""
        self.last_durable = number

    def _set_last(self, entry: Entry) -> None:
        self.last_accepted, self.last_chain, self.last_epoch = entry.number, entry.chain, entry.epoch

    @staticmethod
    def _chain_at(number: int, entry_at: EntryAt) -> bytes:
        return GENESIS if number == -1 else entry_at(number).chain

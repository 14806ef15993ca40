"""One replica's numbering, role and log matching, with no I/O.

`last_accepted` is the highest order number this replica has taken for writing (durable or on
its way to disk), `last_chain` its chain value; `last_durable` the highest one on disk. Numbers
are handed out and accepted strictly in sequence, so the log is always 0..n-1.

A follower takes the leader's log as the truth: a batch is accepted only where the follower's
chain at `prev_number` matches the leader's; an order that differs from the one held replaces
it and everything after it, and nothing is kept beyond the leader's last order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

from bazaar.core.chain import GENESIS, Entry, link
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


ChainAt = Callable[[int], bytes]


class ReplicaCore:
    def __init__(self, last_durable: int, last_chain: bytes = GENESIS) -> None:
        self.role = Role.FOLLOWER
        self.last_accepted = last_durable
        self.last_chain = last_chain
        self.last_durable = last_durable

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def lead(self) -> None:
        self.role = Role.LEADER

    def follow(self) -> None:
        self.role = Role.FOLLOWER

    def number(self, name: str, type_: str, quantity: int) -> Entry:
        """The next order in the log (leader only)."""
        if not self.is_leader:
            raise NotLeader()
        order = Order(self.last_accepted + 1, name, type_, quantity)
        entry = Entry(order, link(self.last_chain, order))
        self.last_accepted, self.last_chain = order.number, entry.chain
        return entry

    def accept(
        self,
        prev_number: int,
        prev_chain: bytes,
        orders: list[Order],
        chain_at: ChainAt,
        leader_last: int | None = None,
    ) -> Accepted | Gap | Conflict:
        """A leader's batch (propagation or a rejoin stream). `chain_at(n)` is this replica's
        chain value at n <= last_accepted; `leader_last`, when given, is the sender's last order."""
        if any(o.number != prev_number + 1 + i for i, o in enumerate(orders)) or prev_number < -1:
            raise MalformedBatch(f"orders do not follow {prev_number} in sequence")
        through = prev_number + len(orders)
        if leader_last is not None and through > leader_last:
            raise MalformedBatch(f"orders up to {through} beyond the leader's last {leader_last}")
        if prev_number > self.last_accepted:
            return Gap(self.last_accepted)
        if chain_at(prev_number) != prev_chain:
            return Conflict(self.last_accepted)
        chain = prev_chain
        truncate_after: int | None = None
        entries: list[Entry] = []
        for order in orders:
            chain = link(chain, order)
            if truncate_after is None and order.number <= self.last_accepted:
                if chain_at(order.number) == chain:
                    continue  # already held
                truncate_after = order.number - 1
            entries.append(Entry(order, chain))
        if truncate_after is None and leader_last is not None and self.last_accepted > leader_last:
            truncate_after = leader_last  # a tail no leader numbered: a dead leader's leftovers
        if truncate_after is not None:
            self.last_accepted = truncate_after
            self.last_chain = chain_at(truncate_after)
            self.last_durable = min(self.last_durable, truncate_after)
        if entries:
            self.last_accepted, self.last_chain = entries[-1].number, entries[-1].chain
        return Accepted(entries, through, truncate_after)

    def durable(self, number: int) -> None:
        """The log on disk now ends at `number` (writes and truncations finish in order)."""
        self.last_durable = number

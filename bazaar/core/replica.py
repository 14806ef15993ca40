"""One replica's numbering and role, with no I/O.

`last_accepted` is the highest order number this replica has taken for writing (durable or on
its way to disk); `last_durable` the highest one on disk. Numbers are handed out and accepted
strictly in sequence, so the log is always 0..n-1 with no hole and no reuse.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bazaar.core.orders import Order


class Role(enum.Enum):
    FOLLOWER = "follower"
    LEADER = "leader"


class NotLeader(Exception):
    """Only the leader numbers new orders."""


@dataclass(frozen=True)
class Accepted:
    """Orders to write, in number order (those already held are left out)."""

    orders: list[Order]


@dataclass(frozen=True)
class Gap:
    """The batch starts beyond `last_accepted + 1`: the sender must resend from `last + 1`."""

    last: int


class ReplicaCore:
    def __init__(self, last_durable: int) -> None:
        self.role = Role.FOLLOWER
        self.last_accepted = last_durable
        self.last_durable = last_durable

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def lead(self) -> None:
        self.role = Role.LEADER

    def follow(self) -> None:
        self.role = Role.FOLLOWER

    def number(self, name: str, type_: str, quantity: int) -> Order:
        """The next order in the log (leader only)."""
        if not self.is_leader:
            raise NotLeader()
        self.last_accepted += 1
        return Order(self.last_accepted, name, type_, quantity)

    def accept(self, orders: list[Order]) -> Accepted | Gap:
        """Orders from a leader (propagation or a rejoin stream), possibly overlapping ours."""
        fresh = [o for o in orders if o.number > self.last_accepted]
        if not fresh:
            return Accepted([])
        if fresh[0].number != self.last_accepted + 1 or any(
            b.number != a.number + 1 for a, b in zip(fresh, fresh[1:])
        ):
            return Gap(self.last_accepted)
        self.last_accepted = fresh[-1].number
        return Accepted(fresh)

    def durable(self, number: int) -> None:
        """Orders up to `number` are on disk (commits finish in number order)."""
        self.last_durable = max(self.last_durable, number)

"""An in-memory cluster of replica cores for the log-matching protocol, with no I/O.

Messages are delivered by direct calls; a `Network` decides which of them arrive. Each replica
is a ReplicaCore over a list of entries, its "disk". The leader side drives Replication exactly
as bazaar.order.links does: one batch per follower per round.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bazaar.core.chain import GENESIS, Entry, checkpoint_numbers
from bazaar.core.orders import Order
from bazaar.core.replica import Accepted, Conflict, Gap, ReplicaCore
from bazaar.core.replication import Replication


@dataclass
class Network:
    cut: set[frozenset[str]] = field(default_factory=set)
    down: set[str] = field(default_factory=set)

    def delivers(self, a: str, b: str) -> bool:
        return a not in self.down and b not in self.down and frozenset((a, b)) not in self.cut

    def isolate(self, name: str, others: list[str]) -> None:
        self.cut |= {frozenset((name, o)) for o in others}

    def recover(self) -> None:
        self.cut.clear()


class SimReplica:
    def __init__(self, name: str) -> None:
        self.name = name
        self.log: list[Entry] = []
        self.core = ReplicaCore(-1)
        self.replication = Replication()

    # -- as a follower --------------------------------------------------------------------

    def chain_at(self, n: int) -> bytes:
        return GENESIS if n == -1 else self.log[n].chain

    def receive(self, prev: int, prev_chain: bytes, orders: list[Order], leader_last: int | None):
        if self.core.is_leader:
            self.core.follow()
        outcome = self.core.accept(prev, prev_chain, orders, self.chain_at, leader_last)
        if isinstance(outcome, Accepted):
            if outcome.truncate_after is not None:
                del self.log[outcome.truncate_after + 1:]
            self.log += outcome.entries
            self.core.durable(len(self.log) - 1)
            return "ok", outcome.through
        return ("gap" if isinstance(outcome, Gap) else "conflict"), outcome.last

    def restart(self) -> None:
        """Crash and start again: the disk stays, the memory does not."""
        last = self.log[-1] if self.log else None
        self.core = ReplicaCore(last.number if last else -1, last.chain if last else GENESIS)
        self.replication = Replication()

    # -- as a leader ----------------------------------------------------------------------

    def lead(self, followers: list[str]) -> None:
        self.core.lead()
        self.replication.assign(followers, self.core.last_accepted)

    def trade(self, name: str) -> Entry:
        entry = self.core.number(name, "buy", 1)
        self.log.append(entry)
        self.core.durable(entry.number)
        return entry

    def propagate_once(self, peers: dict[str, "SimReplica"], net: Network, limit: int = 3) -> int:
        """One batch to each follower that lacks something; how many batches arrived."""
        arrived = 0
        for address in self.replication.followers:
            batch = self.replication.to_send(address, self.core.last_accepted, limit)
            if batch is None:
                continue
            prev, numbers = batch
            if not net.delivers(self.name, address):
                self.replication.drop(address)  # the link's call fails: dropped until it rejoins
                continue
            orders = [self.log[n].order for n in numbers]
            status, number = peers[address].receive(prev, self.chain_at(prev), orders, self.core.last_accepted)
            arrived += 1
            {"ok": self.replication.matched, "gap": self.replication.gap}.get(
                status, lambda a, _: self.replication.conflict(a)
            )(address, number)
        return arrived

    def acknowledged_through(self) -> int:
        return self.replication.replicated_through(self.core.last_durable)

    # -- rejoin ---------------------------------------------------------------------------

    def synchronize_from(self, leader: "SimReplica", batch: int = 4) -> None:
        """The rejoin stream: checkpoints, then every order after the latest shared one."""
        checkpoints = [(n, self.chain_at(n)) for n in checkpoint_numbers(self.core.last_accepted)]
        cursor = next(
            (n for n, c in checkpoints if n <= leader.core.last_accepted and leader.chain_at(n) == c), -1
        )
        while cursor < leader.core.last_accepted:
            orders = [e.order for e in leader.log[cursor + 1: cursor + 1 + batch]]
            status, _ = self.receive(cursor, leader.chain_at(cursor), orders, None)
            assert status == "ok", status
            cursor += len(orders)
        leader.replication.add(self.name, leader.core.last_accepted)


def settle(leader: SimReplica, peers: dict[str, SimReplica], net: Network, rounds: int = 200) -> None:
    for _ in range(rounds):  # bounded: every round either moves a follower on or ends
        if leader.propagate_once(peers, net) == 0:
            return
    raise AssertionError("propagation did not settle")

"""An in-memory cluster of replica cores for the log-matching protocol, with no I/O.

Messages are delivered by direct calls; a `Network` decides which of them arrive. Each replica
is a ReplicaCore over a list of entries, its "disk". The leader side drives Replication exactly
as bazaar.order.links does (one batch per follower per round) and takes over exactly as
bazaar.order.replica does (adopting the most up-to-date reachable log first).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bazaar.core.chain import GENESIS, Entry, Record, checkpoint_numbers
from bazaar.core.orders import Order
from bazaar.core.replica import Accepted, Conflict, Gap, LogPosition, ReplicaCore
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
        self.core = ReplicaCore()
        self.replication = Replication()
        self.standing_for = 0

    # -- as a follower --------------------------------------------------------------------

    def entry_at(self, n: int) -> Entry:
        return self.log[n]

    def chain_at(self, n: int) -> bytes:
        return GENESIS if n == -1 else self.log[n].chain

    def receive(self, prev: int, prev_chain: bytes, records: list[Record], leader_last: int | None,
                leader_epoch: int | None):
        outcome = self.core.accept(prev, prev_chain, records, self.entry_at, leader_last, leader_epoch)
        if isinstance(outcome, Accepted):
            if outcome.truncate_after is not None:
                del self.log[outcome.truncate_after + 1:]
            self.log += outcome.entries
            self.core.durable(len(self.log) - 1)
            return "ok", outcome.through
        if isinstance(outcome, Gap):
            return "gap", outcome.last
        if isinstance(outcome, Conflict):
            return "conflict", outcome.last
        return "stale", outcome.epoch

    def restart(self) -> None:
        """Crash and start again: the disk (log and epoch) stays, the memory does not."""
        self.core = ReplicaCore(self.log[-1] if self.log else None, self.core.epoch)
        self.replication = Replication()

    # -- as a leader ----------------------------------------------------------------------

    def take_over(self, peers: dict[str, "SimReplica"], followers: list[str], net: Network) -> bool:
        """Stand for a new epoch (promised to ourselves first), collect promises with the
        followers' logs, adopt the most up-to-date promised log, and lead on one promise."""
        return self.finish_takeover(peers, followers, self.stand(peers, followers, net))

    def stand(self, peers: dict[str, "SimReplica"], followers: list[str], net: Network) -> list[str]:
        """The first half of a takeover: which followers promised our new epoch."""
        seen = 0
        for _ in range(3):  # a refusal tells us a newer epoch: stand again above it
            epoch = self.core.next_epoch(seen)
            assert self.core.promise(epoch)
            promised, refused = [], []
            for address in followers:
                if not net.delivers(self.name, address):
                    continue
                (promised if peers[address].core.promise(epoch) else refused).append(address)
            if promised or not refused:
                self.standing_for = epoch
                return promised
            seen = max(peers[a].core.epoch for a in refused)
        return []

    def finish_takeover(self, peers: dict[str, "SimReplica"], followers: list[str], promised: list[str]) -> bool:
        if not promised or self.core.epoch != self.standing_for:
            return False  # nobody promised, or we have since promised a newer candidate
        best: tuple[LogPosition, int, list[Record]] | None = None
        for address in promised:
            shared, tail = peers[address].log_after_checkpoints(self)
            if tail:
                position = LogPosition(tail[-1].epoch, tail[-1].number)
                if position > self.core.position and (best is None or position > best[0]):
                    best = (position, shared, tail)
        if best is not None:
            _, shared, tail = best
            status, _ = self.receive(shared, self.chain_at(shared), tail, None, None)
            assert status == "ok", status
        self.core.lead()
        self.replication.assign(followers, self.core.last_accepted)
        return True

    def lead(self, followers: list[str]) -> None:
        """Become leader without looking at anyone's log."""
        assert self.core.promise(self.core.next_epoch())
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
                self.replication.unreachable(address)  # the link's call fails; it retries later
                continue
            records = [self.log[n] for n in numbers]
            status, number = peers[address].receive(
                prev, self.chain_at(prev), records, self.core.last_accepted, self.core.epoch
            )
            arrived += 1
            if status == "stale":
                self.core.follow()  # replaced: a newer leader exists
                return arrived
            if status == "ok":
                self.replication.matched(address, number)
            elif status == "gap":
                self.replication.gap(address, number)
            else:
                self.replication.conflict(address)
        return arrived

    def acknowledged_through(self) -> int:
        return self.replication.committed_through(self.core.last_durable)

    # -- reading the log: what Synchronize streams -------------------------------------------

    def log_after_checkpoints(self, reader: "SimReplica") -> tuple[int, list[Entry]]:
        """Every entry after the latest of `reader`'s checkpoints that this log shares."""
        checkpoints = [(n, reader.chain_at(n)) for n in checkpoint_numbers(reader.core.last_accepted)]
        shared = next((n for n, c in checkpoints if n <= self.core.last_accepted and self.chain_at(n) == c), -1)
        return shared, self.log[shared + 1:]

    def synchronize_from(self, leader: "SimReplica", batch: int = 4) -> None:
        """The rejoin stream, then the leader adds this replica to its followers."""
        cursor, _ = leader.log_after_checkpoints(self)
        while cursor < leader.core.last_accepted:
            records = leader.log[cursor + 1: cursor + 1 + batch]
            status, _ = self.receive(cursor, leader.chain_at(cursor), records, None, leader.core.epoch)
            assert status == "ok", status
            cursor += len(records)
        leader.replication.add(self.name, leader.core.last_accepted)


def settle(leader: SimReplica, peers: dict[str, SimReplica], net: Network, rounds: int = 200) -> None:
    for _ in range(rounds):  # bounded: every round either moves a follower on or ends
        if leader.propagate_once(peers, net) == 0:
            return
    raise AssertionError("propagation did not settle")

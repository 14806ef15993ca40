"""A simulated cluster that drives the protocol core itself, with no I/O.

Each replica is the real `ReplicaCore` (numbering, log matching, promises, the stock book)
over a list of entries, its "disk"; a leader keeps the real `Replication` (what to send, the
commit rule); a candidate the real `Candidacy` (epochs, promises, whose log to adopt); the
catalog is the real apply rule (`bazaar.core.learner`); a client's answer comes from the real
`TradeAttempts`; leases are the real `LeaderLease` and `FollowerLease`, with steps for seconds.
What this file adds is only the wiring the services do with gRPC: messages
that a `Network` queues, delivers in any order, delays, loses or cuts, and processes that
crash (memory lost, disk kept), freeze (nothing processed, messages wait) and restart.

Checked on every step (`Cluster.check`) and at the end (`Cluster.check_final`):
- committed prefixes agree: two replicas agree on every entry both know to be committed;
- every acknowledged entry is in the log of every leader that serves after it (leader
  completeness), at its index;
- at most one leader serves per epoch;
- a leader that holds its lease has every acknowledged entry (so its own log may answer);
- transaction numbers run 0..n-1 with no gaps in every log, and every book equals the initial
  table plus the trades of its log; a key is in a log at most once;
- the catalog equals the initial table plus the committed trades it applied, in order;
- nothing a client was answered 503 for is in any log, ever; at the end, after healing, every
  log is identical and holds every trade acknowledged to a client, under its number.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from bazaar.core.book import StockBook
from bazaar.core.chain import GENESIS, Entry, Kind, Record, checkpoint_numbers, follows
from bazaar.core.initiative import Initiative
from bazaar.core.learner import CommittedTrade, learn
from bazaar.core.lease import FollowerLease, LeaderLease
from bazaar.core.quorum import followers_needed
from bazaar.core.outcome import Attempt, Final, TradeAttempts
from bazaar.core.replica import Accepted, Gap, ReplicaCore, Stale
from bazaar.core.replication import Replication
from bazaar.core.stock import Stock, TradeCheck
from bazaar.core.takeover import Candidacy, Lost, Promised, Refused, StandAgain, Won
from bazaar.core.trading import Verdict, verdict

NAMES = ("r1", "r2", "r3")
# Small quantities, so that buys are refused for lack of stock now and then.
INITIAL = (Stock("tesla", 10.0, 6, 0), Stock("ford", 2.0, 3, 0))
CALL_TIMEOUT = 12  # steps before a call without an answer counts as failed
COMMIT_WAIT = 25  # steps a client's attempt waits for its entry to commit
CLIENT_DEADLINE = 120  # steps a client's request may take, attempts included
BATCH = 3
LEASE = 30  # steps a follower keeps faith with the leader it heard from
LEASE_MARGIN = 3  # the leader trusts its lease this much less
HEARTBEAT = 5  # steps between a leader's heartbeats
INITIATIVE = 2 * LEASE  # steps between two stands of a replica on its own


@dataclass
class Message:
    src: str
    dst: str
    kind: str  # propagate, propagated, promise, promised
    body: dict[str, Any]
    call: int  # matches a reply to its request


@dataclass
class Network:
    queue: list[Message] = field(default_factory=list)
    cut: set[frozenset[str]] = field(default_factory=set)

    def connected(self, a: str, b: str) -> bool:
        return frozenset((a, b)) not in self.cut


class SimReplica:
    def __init__(self, name: str, clock: Any) -> None:
        self.name = name
        self.clock = clock
        self.log: list[Entry] = []  # in memory; the disk holds the first `durable_len`
        self.durable_len = 0
        self.disk_epoch = 0
        self.disk_floor = 0
        self.disk_committed = -1
        self.down = False
        self.frozen = False
        self._boot()

    def _boot(self) -> None:
        """Start from the disk: what a restarted process knows."""
        book = StockBook(INITIAL)
        for entry in self.log:
            book.apply(entry)
        self.core = ReplicaCore(book, self.log[-1] if self.log else None, self.disk_epoch, self.disk_floor)
        self.committed = self.disk_committed
        # A restarted replica keeps faith for a lease with whatever leader it may have
        # answered just before it went down: that leader may still count on it.
        self.follower_lease = FollowerLease(LEASE)
        self.follower_lease.heard("", 0, self.clock())
        self.lease: LeaderLease | None = None
        self.refusing: dict[str, int] = {}  # follower -> since when it refuses us (leader)
        self.heartbeat_due: set[str] = set()
        self.replication: Replication | None = None
        self.followers: tuple[str, ...] = ()
        self.in_flight: dict[str, tuple[int, int]] = {}  # follower -> (call, sent at)
        self.candidacy: Candidacy | None = None
        self.initiative = Initiative(INITIATIVE)
        self.asked: dict[str, tuple[int, int]] = {}  # follower -> (call, sent at), this attempt

    # -- the disk ------------------------------------------------------------------------------

    def entry_at(self, index: int) -> Entry:
        return self.log[index]

    def chain_at(self, index: int) -> bytes:
        return GENESIS if index == -1 else self.log[index].chain

    def key_holder(self, key: str) -> int | None:
        return next((e.index for e in self.log if e.key == key), None)

    def write(self, accepted: Accepted) -> None:
        """A follower's batch, on disk before it answers."""
        if accepted.truncate_after is not None:
            del self.log[accepted.truncate_after + 1:]
        self.log += accepted.entries
        self.durable_len = len(self.log)
        self.core.durable(len(self.log) - 1)

    def append(self, entry: Entry) -> None:
        """The leader's own entry: on its disk only once `flush` says so, while the followers
        write theirs (a majority may hold it before the leader does)."""
        self.log.append(entry)

    def flush(self) -> bool:
        """The leader's writes reach its disk; whether any was waiting."""
        if self.durable_len == len(self.log):
            return False
        self.durable_len = len(self.log)
        self.core.durable(len(self.log) - 1)
        return True

    def know_committed(self, index: int) -> None:
        if index > self.committed:
            self.committed = self.disk_committed = index

    def promise(self, epoch: int, candidate: str, own: bool = False) -> bool:
        """As Replica.promise: refused while the leader we follow may hold its lease (unless
        it is that leader asking), and by a leader that holds its own."""
        lease = self.follower_lease
        if lease.alive(self.clock()) and lease.leader != candidate and not self.core.is_leader:
            return False
        if self.holds_lease:
            return False
        leading = self.core.is_leader
        granted = self.core.promise(epoch, own, candidate)
        if granted:
            self.disk_epoch = epoch
            if not own:
                self.disk_floor = epoch
                self.initiative.postpone(self.clock())
            if leading:
                self.step_down()
        return granted

    def step_down(self) -> None:
        self.core.follow()
        self.replication = None
        self.lease = None
        self.refusing = {}
        self.in_flight.clear()

    @property
    def serving(self) -> bool:
        """Leads with its epoch established and its lease held: what Replica._leading is."""
        return (self.core.is_leader and self.replication is not None and not self.down
                and self.committed >= self.core.first_own >= 0 and self.holds_lease)

    @property
    def holds_lease(self) -> bool:
        return self.lease is not None and self.core.is_leader and self.lease.holds(self.clock())

    def crash(self) -> None:
        """What was not on the disk yet is lost, the commit point it held included."""
        self.down, self.frozen = True, False
        del self.log[self.durable_len:]
        self.disk_committed = min(self.disk_committed, self.durable_len - 1)
        self._boot()  # what it held in memory is gone with the process

    def restart(self) -> None:
        self.down = False
        self._boot()


@dataclass
class Client:
    """One trade as the front end carries it out: attempts under one key until an answer."""

    key: str
    name: str
    type: str
    quantity: int
    started: int
    attempts: TradeAttempts = field(default_factory=TradeAttempts)
    at: str | None = None  # the replica the current attempt waits on
    epoch: int = 0  # the epoch it leads in
    index: int = -1  # the entry it waits for there
    since: int = 0
    final: Final | None = None
    answer: tuple[Verdict | TradeCheck, int] | None = None


class Cluster:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.step_no = 0
        self.replicas = {name: SimReplica(name, lambda: self.step_no) for name in NAMES}
        self.net = Network()
        self._calls = 0
        self._keys = 0
        self.clients: list[Client] = []
        self.executed: dict[str, tuple[int, Record]] = {}  # key -> (number, entry) answered 200
        self.refused_503: set[str] = set()
        # index -> (entry, epoch of the leader that committed it)
        self.acknowledged: dict[int, tuple[Entry, int]] = {}
        self.submitting = True
        # Settling with no requests left: a front end selects only if no replica would lead
        # on its own.
        self.idle = False
        self.serving_epochs: dict[int, str] = {}
        self.catalog_stocks = {s.name: s for s in INITIAL}
        self.catalog_applied = -1
        self.catalog_down = False
        self.violations: list[str] = []

    # -- the front end: selection and clients -------------------------------------------------

    def select(self, name: str) -> None:
        """The front end assigns `name` the others as followers: it takes over."""
        replica = self.replicas[name]
        if replica.down or replica.frozen:
            return
        if replica.candidacy is not None or replica.serving:
            return  # picked again while taking over, or leading with its lease: carry on
        lease = replica.follower_lease
        if lease.alive(self.step_no) and lease.leader != name:
            return  # it follows a live leader: standing would break its word (take_over)
        replica.step_down()
        replica.initiative.postpone(self.step_no)
        replica.candidacy = Candidacy([n for n in NAMES if n != name])
        self._stand(replica)

    def submit(self) -> None:
        self._keys += 1
        name = self.rng.choice([s.name for s in INITIAL] + ["unknown"])
        self.clients.append(Client(f"k{self._keys}", name, self.rng.choice(["buy", "sell"]),
                                   self.rng.randint(1, 3), self.step_no))

    def _serving_leader(self) -> SimReplica | None:
        """The leader the front end talks to: the newest that serves, or now and then a
        replaced one that does not know it yet (a front end that has not noticed either)."""
        serving = [r for r in self.replicas.values() if r.serving and not r.frozen]
        if len(serving) > 1 and self.rng.random() < 0.3:
            return self.rng.choice(serving)
        return max(serving, key=lambda r: r.core.epoch, default=None)

    def _attempt(self, client: Client) -> None:
        """Start an attempt on the leader the front end would find, as Leadership.place does."""
        leader = self._serving_leader()
        if leader is None:
            self._ended(client, None)
            return
        earlier = next((e for e in leader.log if e.key == client.key), None)
        if earlier is None:
            check = leader.core.book.check(client.name, client.type, client.quantity)
            if check in (TradeCheck.STOCK_NOT_FOUND, TradeCheck.INVALID_TYPE, TradeCheck.INVALID_QUANTITY):
                client.answer = (check, -1)
                self._ended(client, Attempt.DEFINITE)
                return
            assert leader.replication is not None
            if not leader.replication.quorum_reachable:
                self._ended(client, Attempt.UNAVAILABLE)
                return
            placed = leader.core.place(client.name, client.type, client.quantity, client.key)
            assert isinstance(placed, Entry)
            leader.append(placed)
            earlier = placed
        client.at, client.epoch, client.index, client.since = leader.name, leader.core.epoch, earlier.index, self.step_no

    def _poll(self, client: Client) -> None:
        """An attempt waiting for its entry: answered once committed, IN_DOUBT otherwise."""
        replica = self.replicas[client.at]  # type: ignore[index]
        same_leadership = replica.serving and replica.core.epoch == client.epoch
        if same_leadership and replica.committed >= client.index and not replica.frozen:
            entry = replica.log[client.index]
            if entry.key != client.key:
                self.violations.append(f"{client.key}: entry {client.index} changed under a serving leader")
                return
            answer = verdict(entry, client.name, client.type, client.quantity)
            client.answer = (answer, entry.number)
            if answer is Verdict.EXECUTED:
                self.executed[client.key] = (entry.number, entry)
            self._ended(client, Attempt.DEFINITE)
        elif not same_leadership or self.step_no - client.since > COMMIT_WAIT:
            self._ended(client, Attempt.IN_DOUBT)

    def _ended(self, client: Client, attempt: Attempt | None) -> None:
        client.at = None
        final = client.attempts.no_leader() if attempt is None else client.attempts.ended(attempt)
        if final is None and self.step_no - client.started > CLIENT_DEADLINE:
            final = client.attempts.time_is_up()
        if final is not None:
            client.final = final
            if final is Final.UNAVAILABLE:
                self.refused_503.add(client.key)

    def _clients_step(self) -> None:
        for client in self.clients:
            if client.final is not None:
                continue
            if client.at is not None:
                self._poll(client)
            elif self.rng.random() < 0.3:
                self._attempt(client)
        self.clients = [c for c in self.clients if c.final is None]

    # -- messages ------------------------------------------------------------------------------

    def _send(self, src: str, dst: str, kind: str, body: dict[str, Any], call: int | None = None) -> int:
        if call is None:
            self._calls += 1
            call = self._calls
        self.net.queue.append(Message(src, dst, kind, body, call))
        return call

    def _deliver_one(self) -> None:
        ready = [m for m in self.net.queue if not self.replicas[m.dst].frozen]
        if not ready:
            return
        message = self.rng.choice(ready)
        self.net.queue.remove(message)
        target = self.replicas[message.dst]
        if target.down or self.replicas[message.src].down or not self.net.connected(message.src, message.dst):
            return  # lost: the sender's call times out
        getattr(self, "_on_" + message.kind)(target, message)

    def _stand(self, replica: SimReplica) -> None:
        candidacy = replica.candidacy
        assert candidacy is not None
        epoch = candidacy.stand(replica.core)
        if epoch is None or not replica.promise(epoch, replica.name, own=True):
            replica.candidacy = None
            replica.core.withdraw(candidacy.epoch)  # the attempt before, if any
            return
        checkpoints = [(i, replica.chain_at(i)) for i in checkpoint_numbers(replica.core.last_index)]
        replica.asked = {}
        for follower in candidacy.followers:
            call = self._send(replica.name, follower, "promise", {"epoch": epoch, "checkpoints": checkpoints})
            replica.asked[follower] = (call, self.step_no)
        self._decide(replica)

    def _on_promise(self, replica: SimReplica, m: Message) -> None:
        if not replica.promise(m.body["epoch"], m.src):
            alive = replica.follower_lease.alive(self.step_no) or replica.holds_lease
            self._send(replica.name, m.src, "promised", {"refused": replica.core.epoch, "alive": alive}, m.call)
            return
        shared = next((i for i, c in m.body["checkpoints"] if i <= replica.core.last_index and replica.chain_at(i) == c), -1)
        records = [e.record() for e in replica.log[shared + 1:]]
        self._send(replica.name, m.src, "promised", {"shared": shared, "chain": replica.chain_at(shared),
                                                     "records": records}, m.call)

    def _on_promised(self, replica: SimReplica, m: Message) -> None:
        candidacy = replica.candidacy
        if candidacy is None or replica.asked.get(m.src, (None,))[0] != m.call:
            return  # an answer to an earlier attempt, or a takeover since given up
        del replica.asked[m.src]
        if "refused" in m.body:
            candidacy.answered(m.src, Refused(m.body["refused"], m.body["alive"]))
        else:
            candidacy.answered(m.src, Promised(m.body["shared"], m.body["chain"], m.body["records"]))
        self._decide(replica)

    def _decide(self, replica: SimReplica) -> None:
        candidacy = replica.candidacy
        assert candidacy is not None
        outcome = candidacy.outcome(replica.core)
        if isinstance(outcome, StandAgain):
            self._stand(replica)
        elif isinstance(outcome, Lost):
            replica.candidacy = None
            replica.core.withdraw(candidacy.epoch)
        elif isinstance(outcome, Won):
            if outcome.adopt is not None:
                a = outcome.adopt
                accepted = replica.core.accept(a.shared, a.shared_chain, a.records, replica.entry_at, None, None,
                                               key_holder=replica.key_holder)
                assert isinstance(accepted, Accepted), accepted
                replica.write(accepted)
            replica.candidacy = None
            replica.append(replica.core.lead())
            replica.disk_floor = max(replica.disk_floor, replica.core.epoch)
            replica.follower_lease.end()
            replica.initiative.led()
            replica.lease = LeaderLease(candidacy.followers, self.step_no, LEASE - LEASE_MARGIN)
            replica.replication = Replication()
            replica.followers = candidacy.followers
            replica.replication.assign(list(candidacy.followers), replica.core.last_index)
            self._release(replica)

    def _propagate(self, leader: SimReplica) -> None:
        """What FollowerFeed sends: one call in flight per follower."""
        replication = leader.replication
        assert replication is not None
        for follower in replication.followers:
            if follower in leader.in_flight:
                continue
            batch = replication.to_send(follower, leader.core.last_index, self.rng.randint(1, BATCH))
            if batch is None:
                match = replication.match(follower)
                due = follower in leader.heartbeat_due
                if match is None or not due:  # the commit point rides on entries and heartbeats alone
                    continue
                batch = (match, range(match + 1, match + 1))
            leader.heartbeat_due.discard(follower)
            prev, indexes = batch
            body = {"prev": prev, "chain": leader.chain_at(prev), "records": [leader.log[i].record() for i in indexes],
                    "last": leader.core.last_index, "epoch": leader.core.epoch, "commit": leader.committed}
            call = self._send(leader.name, follower, "propagate", body)
            leader.in_flight[follower] = (call, self.step_no)

    def _on_propagate(self, replica: SimReplica, m: Message) -> None:
        b = m.body
        outcome = replica.core.accept(b["prev"], b["chain"], b["records"], replica.entry_at, b["last"], b["epoch"],
                                     key_holder=replica.key_holder)
        if replica.replication is not None and not replica.core.is_leader:
            replica.step_down()
        if not isinstance(outcome, Stale):
            replica.follower_lease.heard(m.src, b["epoch"], self.step_no)
        if isinstance(outcome, Accepted):
            replica.write(outcome)
            replica.know_committed(min(b["commit"], outcome.through))
            reply = {"status": "ok", "index": outcome.through}
        elif isinstance(outcome, Stale):
            reply = {"status": "stale", "epoch": outcome.epoch, "replaced": replica.core.holds_newer_than(b["epoch"])}
        else:
            reply = {"status": "gap" if isinstance(outcome, Gap) else "conflict", "index": outcome.last}
        replica.disk_epoch = max(replica.disk_epoch, replica.core.epoch)
        replica.disk_floor = max(replica.disk_floor, replica.core.floor)
        self._send(replica.name, m.src, "propagated", reply, m.call)

    def _on_propagated(self, leader: SimReplica, m: Message) -> None:
        sent = leader.in_flight.get(m.src)
        if sent is None or sent[0] != m.call or leader.replication is None:
            return  # a late answer to a call that timed out, or we no longer lead
        del leader.in_flight[m.src]
        b, replication = m.body, leader.replication
        if b["status"] == "stale":
            if b["replaced"]:
                leader.step_down()
                leader.initiative.postpone(self.step_no)
                leader.core.epoch = max(leader.core.epoch, b["epoch"])
                leader.disk_epoch = leader.core.epoch
                return
            # Only promised to a candidate: no reason to step down, nor a renewal; refused so
            # for a whole lease (that candidate died), it stands again above that epoch, as
            # Leadership does.
            since = leader.refusing.setdefault(m.src, self.step_no)
            if self.step_no - since >= LEASE:
                leader.step_down()
                leader.core.epoch = max(leader.core.epoch, b["epoch"])
                leader.disk_epoch = leader.core.epoch
                self.select(leader.name)
            return
        leader.refusing.pop(m.src, None)
        assert leader.lease is not None
        leader.lease.acked(m.src, sent[1])
        if b["status"] == "ok":
            replication.matched(m.src, b["index"])
        elif b["status"] == "gap":
            replication.gap(m.src, b["index"])
        else:
            replication.conflict(m.src)
        self._release(leader)

    def _release(self, leader: SimReplica) -> None:
        """The commit rule, and what the leader then knows to be acknowledged."""
        assert leader.replication is not None
        through = leader.replication.committed_through(leader.core.last_durable, leader.core.first_own)
        if through is None or through <= leader.committed:
            return
        leader.know_committed(through)
        for entry in leader.log[: through + 1]:
            held, _ = self.acknowledged.setdefault(entry.index, (entry, leader.core.epoch))
            if held.chain != entry.chain:
                self.violations.append(f"entry {entry.index} committed twice, differently: {held} / {entry}")
        if leader.serving:
            owner = self.serving_epochs.setdefault(leader.core.epoch, leader.name)
            if owner != leader.name:
                self.violations.append(f"epoch {leader.core.epoch} served by {owner} and {leader.name}")

    def _time_out_calls(self) -> None:
        for replica in self.replicas.values():
            if replica.down or replica.frozen:
                continue
            for follower, (call, sent) in list(replica.in_flight.items()):
                if self.step_no - sent > CALL_TIMEOUT:
                    del replica.in_flight[follower]
                    if replica.replication is not None:
                        replica.replication.unreachable(follower)
            if replica.candidacy is not None:
                for follower, (call, sent) in list(replica.asked.items()):
                    if self.step_no - sent > CALL_TIMEOUT:
                        del replica.asked[follower]
                        replica.candidacy.answered(follower, None)
                        self._decide(replica)
                        if replica.candidacy is None:
                            break

    def _catalog_step(self) -> None:
        """The leader's CatalogFeed: committed trades in number order, applied by the learner."""
        leader = self._serving_leader()
        if leader is None or self.catalog_down:
            return
        trades = [CommittedTrade(e.number, e.name, e.type, e.quantity)
                  for e in leader.log[: leader.committed + 1] if e.is_trade and e.number > self.catalog_applied]
        learned = learn(self.catalog_stocks, self.catalog_applied, trades[: self.rng.randint(1, 4)])
        self.catalog_stocks.update(learned.changed)
        self.catalog_applied = learned.applied

    # -- one step ------------------------------------------------------------------------------

    def step(self, faults: bool = True) -> None:
        self.step_no += 1
        roll = self.rng.random()
        if faults and roll < 0.04:
            self._fault()
        elif roll < 0.10:
            self._maybe_select()
        elif roll < 0.25 and self.submitting:
            self.submit()
        for _ in range(self.rng.randint(0, 3)):
            self._deliver_one()
        for replica in self.replicas.values():
            if not replica.down and not replica.frozen and self.rng.random() < 0.4 and replica.flush() \
                    and replica.replication is not None:
                self._release(replica)
        for replica in self.replicas.values():
            if replica.replication is not None and not replica.down and not replica.frozen:
                self._heartbeat(replica)
        for replica in self.replicas.values():
            if replica.replication is not None and not replica.down and not replica.frozen:
                self._propagate(replica)
        self._initiative_step()
        self._time_out_calls()
        self._clients_step()
        if self.rng.random() < 0.3:
            self._catalog_step()
        self.check()

    def _heartbeat(self, leader: SimReplica) -> None:
        """What Leadership._heartbeat does, every HEARTBEAT steps: step down without a
        majority within the lease, else mark every follower due for a (perhaps empty) batch."""
        assert leader.lease is not None
        if leader.lease.lapsed(self.step_no):
            leader.step_down()
        elif self.step_no % HEARTBEAT == 0:
            leader.heartbeat_due = set(leader.followers)

    def _initiative_step(self) -> None:
        """What Replica.tick does: a replica that has led stands again on its own when it no
        longer leads, reaches a majority and hears no leader."""
        for replica in self.replicas.values():
            if replica.down or replica.frozen:
                continue
            reached = [n for n in NAMES if n != replica.name and self._answers(replica.name, n)]
            if replica.initiative.due(
                self.step_no, leading=replica.core.is_leader, standing=replica.candidacy is not None,
                following=replica.follower_lease.alive(self.step_no), reaches_majority=len(reached) >= followers_needed(len(NAMES) - 1),
            ):
                self.select(replica.name)

    def _answers(self, src: str, dst: str) -> bool:
        """Whether `dst` answers `src`'s health checks."""
        target = self.replicas[dst]
        return not target.down and not target.frozen and self.net.connected(src, dst)

    def _maybe_select(self) -> None:
        """The front end selects when it knows no serving leader, highest id first (now and
        then a lower one: a front end that saw the others fail their probes)."""
        if self._serving_leader() is not None and self.rng.random() < 0.9:
            return
        if self.idle and not self.clients and any(r.initiative.held and not r.down for r in self.replicas.values()):
            return  # no request comes to make a front end select: the initiative must do
        alive = [n for n in NAMES if not self.replicas[n].down and not self.replicas[n].frozen]
        if alive:
            self.select(max(alive) if self.rng.random() < 0.7 else self.rng.choice(alive))

    def _fault(self) -> None:
        rng = self.rng
        kind = rng.choice(["crash", "crash2", "restart", "freeze", "thaw", "cut", "heal", "catalog",
                           "crash leader", "isolate leader", "restart all"])
        up = [n for n in NAMES if not self.replicas[n].down]
        leaders = [n for n in up if self.replicas[n].core.is_leader]
        if kind == "crash leader" and leaders:
            # Most often one still establishing its epoch: what it inherited is then on some
            # replicas and not others (Raft's figure 8 is made of such crashes).
            young = [n for n in leaders if not self.replicas[n].serving]
            self.replicas[rng.choice(young if young and rng.random() < 0.7 else leaders)].crash()
        elif kind == "isolate leader" and leaders:
            leader = rng.choice(leaders)
            self.net.cut |= {frozenset((leader, n)) for n in NAMES if n != leader}
        elif kind == "restart all":
            for name in rng.sample(NAMES, len(NAMES)):  # in any order
                if self.replicas[name].down:
                    self.replicas[name].restart()
        elif kind == "crash" and up:
            self.replicas[rng.choice(up)].crash()
        elif kind == "crash2" and len(up) >= 2:
            for name in rng.sample(up, 2):  # two of three at once, the leader perhaps among them
                self.replicas[name].crash()
        elif kind == "restart":
            down = [n for n in NAMES if self.replicas[n].down]
            if down:
                self.replicas[rng.choice(down)].restart()
        elif kind == "freeze" and up:
            self.replicas[rng.choice(up)].frozen = True
        elif kind == "thaw":
            for replica in self.replicas.values():
                replica.frozen = False
        elif kind == "cut":
            a, b = rng.sample(NAMES, 2)
            self.net.cut.add(frozenset((a, b)))
        elif kind == "heal":
            self.net.cut.clear()
        else:
            self.catalog_down = not self.catalog_down

    def heal(self) -> None:
        self.net.cut.clear()
        self.catalog_down = False
        for replica in self.replicas.values():
            replica.frozen = False
            if replica.down:
                replica.restart()

    def settle(self, steps: int = 4000) -> None:
        """Heal everything, let clients finish and logs converge, within a bound."""
        self.heal()
        self.submitting = False
        self.idle = True
        for _ in range(steps):
            self.step(faults=False)
            if self._converged():
                return
        raise AssertionError(f"did not converge in {steps} steps: {self.describe()}")

    def _converged(self) -> bool:
        leader = self._serving_leader()
        if leader is None or any(c.final is None for c in self.clients):
            return False
        logs = [r.log for r in self.replicas.values()]
        return (all(log == logs[0] for log in logs) and self.catalog_applied == leader.log[-1].number
                and all(r.committed == len(r.log) - 1 for r in self.replicas.values()))

    # -- checks --------------------------------------------------------------------------------

    def check(self) -> None:
        replicas = list(self.replicas.values())
        for replica in replicas:
            _check_log(replica, self.violations)
        for a in replicas:
            for b in replicas:
                through = min(a.committed, b.committed)
                if a.name < b.name and through >= 0 and a.log[through].chain != b.log[through].chain:
                    self.violations.append(f"{a.name} and {b.name} differ at committed entry {through}")
        for replica in replicas:
            if replica.holds_lease:
                for index, (entry, _) in self.acknowledged.items():
                    if index >= len(replica.log) or replica.log[index].chain != entry.chain:
                        self.violations.append(
                            f"{replica.name} holds its lease in epoch {replica.core.epoch} without acknowledged entry {index}")
                        break
            if replica.serving:
                for index, (entry, epoch) in self.acknowledged.items():
                    if epoch > replica.core.epoch:
                        continue  # a replaced leader that has not noticed: it cannot commit
                    if index >= len(replica.log) or replica.log[index].chain != entry.chain:
                        self.violations.append(
                            f"{replica.name} serves epoch {replica.core.epoch} without acknowledged entry {index}")
                        break
        for replica in replicas:
            if any(e.key in self.refused_503 for e in replica.log):
                self.violations.append(f"{replica.name} holds a trade answered 503")
        expected = StockBook(INITIAL)
        for entry, _ in sorted(self.acknowledged.values(), key=lambda a: a[0].index):
            if entry.is_trade and entry.number <= self.catalog_applied:
                expected.apply(entry)
        if {s.name: s for s in expected.stocks()} != self.catalog_stocks:
            self.violations.append(f"catalog {self.catalog_stocks} is not the committed log through {self.catalog_applied}")
        if self.violations:
            raise AssertionError(f"step {self.step_no}: {self.violations[:3]}\n{self.describe()}")

    def check_final(self) -> None:
        final = self.replicas["r1"].log
        by_key = {e.key: e for e in final if e.key}
        for key, (number, entry) in self.executed.items():
            held = by_key.get(key)
            if held is None or held.number != number or not held.is_trade or held.chain != entry.chain:
                self.violations.append(f"trade {key} acknowledged as number {number} but the log holds {held}")
        for key in self.refused_503:
            if key in by_key:
                self.violations.append(f"trade {key} was answered 503 but is in the log")
        if self.violations:
            raise AssertionError(f"{self.violations[:3]}\n{self.describe()}")

    def describe(self) -> str:
        lines = []
        for r in self.replicas.values():
            state = "down" if r.down else "frozen" if r.frozen else r.core.role.value
            entries = " ".join(f"{e.index}:{e.kind.value[0]}{e.epoch}" for e in r.log[-8:])
            lines.append(f"  {r.name} {state} epoch {r.core.epoch} committed {r.committed}: ... {entries}")
        return "\n".join(lines)


def _check_log(replica: SimReplica, violations: list[str]) -> None:
    number, keys = -1, set()
    book = StockBook(INITIAL)
    for index, entry in enumerate(replica.log):
        if entry.index != index or not follows(entry, number):
            violations.append(f"{replica.name}: entry {index} is misnumbered ({entry})")
            return
        if entry.key and entry.key in keys:
            violations.append(f"{replica.name}: key {entry.key} twice")
        keys.add(entry.key)
        if entry.kind is Kind.TRADE and book.check(entry.name, entry.type, entry.quantity) is not TradeCheck.OK:
            violations.append(f"{replica.name}: entry {index} trades more than its log held")
        book.apply(entry)
        number = entry.number
    if book.stocks() != replica.core.book.stocks():
        violations.append(f"{replica.name}: its book is not its log")

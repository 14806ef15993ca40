"""One order replica's reactor-side state, by role.

Every replica has a log (log.py: the store, the entries on their way to disk, the core). As a
follower it writes what a leader sends (`receive`) and promises epochs to candidates
(`promise`); picked by the front end it takes over (takeover.py) and, once its leader entry is
committed, leads (leader.py) until it is replaced. Everything here runs in the reactor thread;
gRPC handlers reach it through a ReactorHop.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from bazaar.config import Config
from bazaar.core.book import StockBook
from bazaar.core.chain import Record
from bazaar.core.initiative import Initiative
from bazaar.core.lease import UNKNOWN_LEADER, FollowerLease, Reachability
from bazaar.core.orders import Order
from bazaar.core.replica import ReplicaCore, check_batch
from bazaar.order.leader import Leadership
from bazaar.order.log import ReplicaLog
from bazaar.order.store import OrderStore, SetEpoch
from bazaar.order.takeover import take_over
from bazaar.reactor.fatal import give_up
from bazaar.reactor.group_commit import GroupCommitter
from bazaar.rpc.services import Channels
from bazaar.v1 import order_pb2

log = Logger()

# The answers that come once the trade's entry (or the refusal's) is committed.
_COMMITTED = frozenset({
    order_pb2.REQUEST_STATUS_OK, order_pb2.REQUEST_STATUS_NOT_ENOUGH_STOCK, order_pb2.REQUEST_STATUS_KEY_REUSED,
})


class NotLeading(Exception):
    """A request only the leader can answer reached a replica that does not lead."""


class Replica:
    def __init__(
        self,
        reactor: Any,
        config: Config,
        replica_id: int,
        store: OrderStore,
        committer: GroupCommitter,
        channels: Channels,
        invalidate: Callable[[str | None], None],
        clock: Callable[[], float] | None = None,
        observe_commit: Callable[[float], None] | None = None,
    ) -> None:
        """`clock` times leases and heartbeats: a monotonic clock in a process (the wall clock
        may be stepped), the test's clock by default. `observe_commit` is told, for each trade
        answered from a committed entry, the seconds since the request reached this replica."""
        self.reactor = reactor
        self.now: Callable[[], float] = clock or reactor.seconds
        self.config = config
        self.replica_id = replica_id
        self.address = str(config.replica_address(replica_id))
        self.log = ReplicaLog(
            reactor, store, committer, StockBook(config.stocks), self._durable, self._write_failed
        )
        self._channels = channels
        self._invalidate = invalidate
        self.leadership: Leadership | None = None
        # The leader this replica last accepted a batch from, and the peers it reaches.
        self.follower_lease = FollowerLease()
        # Just started, this replica may have answered a leader just before it went down, and
        # that leader may still count on it: it keeps faith for one lease, with no one in
        # particular, and is not to be selected meanwhile.
        self._started = self.now()
        self.follower_lease.heard(UNKNOWN_LEADER, 0, self._started)
        self.ids = {str(address): i for i, address in config.replicas.items()}
        # Its followers when it leads: every other configured replica, whatever a caller
        # names (the majority is one of all the replicas, never of a shorter list).
        self.peers = sorted(a for a in self.ids if a != self.address)
        self.reachability = Reachability(self.peers)
        # Done starting (its rejoin attempt is over): only then may it be selected.
        self.ready = False
        # Once it has led, it stands again on its own whenever no leader is heard.
        self.initiative = Initiative()
        # Reports NOT_SERVING for every service (the process's gRPC server sets it).
        self.not_serving: Callable[[], None] = lambda: None
        # A takeover in progress (fires True once serving), and its generation: a newer
        # AssignFollowers abandons an older takeover.
        self._takeover: Deferred | None = None
        self.generation = 0
        # Trades answered, by RequestStatus (plain counts the metrics read).
        self.outcomes: Counter[int] = Counter()
        self._observe_commit = observe_commit

    @property
    def core(self) -> ReplicaCore:
        return self.log.core

    @property
    def store(self) -> OrderStore:
        return self.log.store

    def channel(self, address: str) -> Any:
        return self._channels.get(address)

    # -- leader: trades and lookups ------------------------------------------------------------

    async def place_order(self, name: str, quantity: int, type_: int, key: str, budget: float) -> tuple[int, int]:
        """(RequestStatus, transaction number), within `budget` seconds."""
        received = self.now()
        deadline = self.reactor.seconds() + budget
        leadership = await self._serving(deadline)
        if leadership is None:
            # Nothing was logged here: the front end selects again and redoes the trade.
            self.outcomes[order_pb2.REQUEST_STATUS_NOT_LEADER] += 1
            return order_pb2.REQUEST_STATUS_NOT_LEADER, -1
        status, number = await leadership.place(name, quantity, type_, key, deadline)
        self.outcomes[status] += 1
        if status in _COMMITTED and self._observe_commit is not None:
            self._observe_commit(max(0.0, self.now() - received))
        return status, number

    async def lookup(self, number: int) -> Order | None:
        """A committed order. The leader's answer is definite (None: no such order, or not
        committed yet). Another replica answers only for orders it knows to be committed (its
        log may lag, or hold a dead leader's tail), so that committed orders can still be
        read when no leader can be found; for the rest it raises NotLeading."""
        leadership = await self._serving(self.reactor.seconds() + self.config.timeouts.rpc / 2)
        entry = self.log.committed_trade(number)
        if entry is not None:
            return entry.order
        if leadership is not None:
            return None
        raise NotLeading(f"this replica does not lead and knows entries committed only up to {self.log.committed}")

    async def _serving(self, deadline: float) -> Leadership | None:
        """The leadership once it serves, waiting (until `deadline`) for a takeover under way."""
        takeover = self._takeover
        if takeover is not None and not takeover.called:
            waiter = _observe(takeover)
            try:
                await waiter.addTimeout(max(0.0, deadline - self.reactor.seconds()), self.reactor)
            except defer.TimeoutError:
                return None
        return self._leading()

    def _leading(self) -> Leadership | None:
        """The leadership if it serves and holds its lease: then no other leader can exist, and
        its own log answers."""
        leadership = self.leadership
        if leadership is None or not leadership.serving or not leadership.lease.holds(self.now()):
            return None
        return leadership

    # -- follower: the log arriving from a leader ------------------------------------------------

    def receive(
        self, prev_index: int, prev_chain: bytes, records: list[Record],
        leader_last: int | None, leader_epoch: int | None, leader_commit: int = -1, leader_id: int = 0,
        streamed: bool = False,
    ) -> Deferred:
        """A leader's batch; fires with (PropagateStatus, index, epoch, replaced) once it is on
        disk. `replaced`: the batch was refused for an epoch a newer leader was established in
        (our log holds its entries), not one merely promised to a candidate. `streamed`: it
        comes on our rejoin attempt's stream, not from the leader's link."""
        held_back = bool(records) and not self.ready and not streamed
        if held_back:
            # Still rejoining (order/rejoin.py): what we missed comes on that attempt's stream,
            # or as a snapshot when we are far behind. Entries the link sent meanwhile would
            # race it, and a timing would choose between the two (a replica far behind caught
            # up a batch at a time). Its epoch is still checked; the entries are answered as a
            # gap where they would go, as during an install, and sent again once we are ready.
            check_batch(prev_index, records, leader_last, leader_epoch)  # a malformed one is still told so
            records = []
        written, deposed, stale = self.log.receive(
            prev_index, prev_chain, records, leader_last, leader_epoch, leader_commit,
        )
        if held_back:
            written.addCallback(
                lambda r: (order_pb2.PROPAGATE_STATUS_GAP, *r[1:]) if r[0] == order_pb2.PROPAGATE_STATUS_OK else r)
        if deposed:
            self.step_down(f"a leader of epoch {leader_epoch} is propagating to us")
        if leader_epoch is not None and not stale:
            # Not refused as stale (accepted, or answered with where to start): that leader is
            # alive, and counts our answer toward its lease.
            self.follower_lease.heard(leader_id if leader_id > 0 else UNKNOWN_LEADER, leader_epoch, self.now())
        replaced = leader_epoch is not None and self.core.holds_newer_than(leader_epoch)
        return written.addCallback(lambda result: (*result, replaced))

    def promise(self, epoch: int, candidate: int = 0) -> Deferred:
        """A candidate asks for `epoch`; fires with (granted, our epoch, leader alive) once that
        is on disk. Refused while the leader we follow may still hold its lease, unless that
        leader is the candidate."""
        lease = self.follower_lease
        its_leader = candidate > 0 and lease.leader == candidate
        if lease.alive(self.now()) and not its_leader and not self.core.is_leader:
            return defer.succeed((False, self.core.epoch, True))
        if self._leading() is not None:
            return defer.succeed((False, self.core.epoch, True))
        leading, before = self.core.is_leader, self.core.epoch
        promised = self.log.promise(epoch, candidate=candidate)
        if self.core.epoch != before:
            self.initiative.postpone(self.now())  # that candidate may win: give it the time to
        if leading and not self.core.is_leader:
            self.step_down(f"promised epoch {epoch} to a new candidate")
        return promised.addCallback(lambda result: (*result, False))

    def role(self, now: float) -> int:
        """This replica's ReplicaRole at `now` (what Describe says)."""
        if not self.ready or now < self._started + self.follower_lease.duration:
            return order_pb2.REPLICA_ROLE_STARTING
        if self._leading() is not None:
            return order_pb2.REPLICA_ROLE_LEADER
        takeover = self._takeover
        if self.core.is_leader or (takeover is not None and not takeover.called):
            return order_pb2.REPLICA_ROLE_CANDIDATE
        return order_pb2.REPLICA_ROLE_FOLLOWER

    def describe(self) -> order_pb2.DescribeResponse:
        now = self.now()
        leading = self._leading()
        role = self.role(now)
        if leading is not None:
            leader_id, leader_epoch = self.replica_id, leading.epoch
        elif self.follower_lease.alive(now):
            leader_id, leader_epoch = max(0, self.follower_lease.leader), self.follower_lease.epoch
        else:
            leader_id, leader_epoch = 0, 0
        return order_pb2.DescribeResponse(
            replica_id=self.replica_id, role=role, epoch=self.core.epoch,
            leader_id=leader_id, leader_epoch=leader_epoch,
            reachable=sorted(self.ids[a] for a in self.reachability.reachable(now)),
            last_index=self.core.last_index, committed_index=self.log.committed,
            committed_number=leading.committed_number if leading is not None else None,
        )

    # -- leadership ----------------------------------------------------------------------------

    def assign_followers(self, addresses: list[str]) -> int:
        """The front end picked us: take over in the background; trades and lookups wait.
        Raises ValueError when `addresses` are not the other configured replicas."""
        named = sorted({a for a in addresses if a and a != self.address})
        if named != self.peers:
            raise ValueError(f"followers {named} are not the other configured replicas {self.peers}")
        followers = self.peers
        if self._takeover is not None and not self._takeover.called:
            # Picked again while still taking over (its requests timed out while we caught
            # up): restarting would only begin the catch-up anew.
            return self.core.last_durable
        if self._leading() is not None:
            # Leading with its lease: no other leader can have been chosen meanwhile, and
            # taking over afresh would only fail the trades in flight.
            return self.core.last_durable
        if self.core.is_leader:
            # Without its lease this replica cannot tell whether a newer leader was chosen
            # meanwhile (it may have been frozen): standing again finds out.
            self.step_down("assigned again without a lease: taking over afresh")
        self.generation += 1
        self.initiative.postpone(self.now())
        takeover = Deferred.fromCoroutine(take_over(self, followers, self.generation))
        self._takeover = takeover.addErrback(self._takeover_failed)
        return self.core.last_durable

    def begin_leading(self, followers: list[str]) -> Leadership:
        """The takeover won: append our leader entry and feed the followers."""
        entry = self.core.lead()
        self.log.write([SetEpoch(entry.epoch)])  # leading, we refuse older leaders, restarted too
        self.log.append([entry])
        self.follower_lease.end()
        self.initiative.led()
        self.leadership = Leadership(
            self.log, followers, self._channels, self.config, self._invalidate, self._replaced, self.replica_id,
            self.now, self._stand_again, self._majority_lost, self.reachability.answered,
        )
        self.leadership.start()
        return self.leadership

    def streaming_to(self, address: str) -> None:
        """A rejoin stream from our log sent `address` a batch (the servicer's thread says so)."""
        if self.leadership is not None:
            self.leadership.streaming(address)

    def register_follower(self, address: str) -> bool:
        """A rejoining replica finished its catch-up stream; feed it from now on."""
        leadership = self.leadership
        if leadership is None or not self.core.is_leader:
            return False
        log.info("replica at {address} rejoined", address=address)
        leadership.add_follower(address)
        return True

    def step_down(self, reason: str) -> None:
        """Stop leading because of another replica (a newer leader, a candidate we promised)
        or an assignment: our initiative waits, so as not to stand against that replica."""
        self.initiative.postpone(self.now())
        self._stop_leading(reason)

    def _stop_leading(self, reason: str) -> None:
        if self.core.is_leader or self.leadership is not None:
            log.info("no longer leading: {reason}", reason=reason)
        self.core.follow()
        leadership, self.leadership = self.leadership, None
        if leadership is not None:
            leadership.stop(reason)

    def _replaced(self, reason: str, epoch: int) -> None:
        self.step_down(reason)
        self.log.learn_epoch(epoch)

    def _majority_lost(self, reason: str, silent: list[str]) -> None:
        # No other replica made us stop: we stand again as soon as we reach a majority, which
        # the followers that fell silent must show anew (Reachability.forget says why).
        self.reachability.forget(silent, self.now())
        self._stop_leading(reason)

    def tick(self) -> None:
        """Every heartbeat interval, once the peers were checked: a replica that has led
        stands again on its own when it no longer leads, reaches a majority and hears no
        leader (core/initiative.py). Without this, a leader frozen or cut off while no request
        comes, or one whose own attempt to stand again failed, would leave the cluster
        leaderless until the next request made a front end select."""
        now = self.now()
        standing = self._takeover is not None and not self._takeover.called
        if self.initiative.due(
            now, leading=self.core.is_leader, standing=standing, following=self.follower_lease.alive(now),
            reaches_majority=self.reachability.reaches_majority(now),
        ):
            log.info("no leader heard, reaching a majority: standing again on its own")
            self.assign_followers(self.peers)

    def _stand_again(self, reason: str, epoch: int) -> None:
        """A follower keeps refusing us for an epoch it promised to a candidate that never
        led: stand again above it, so that it follows again (the others keep faith with us,
        the candidate, and promise). Should that fail, the initiative tries again."""
        log.info("standing again above epoch {epoch}: {reason}", epoch=epoch, reason=reason)
        self._replaced(reason, epoch)
        self.assign_followers(self.peers)

    def _takeover_failed(self, failure: Any) -> bool:
        log.failure("takeover failed", failure)
        self.step_down("takeover failed")
        return False

    # -- the log's events ------------------------------------------------------------------------

    def _durable(self) -> None:
        if self.leadership is not None:
            self.leadership.durable()

    def _write_failed(self, failure: Any) -> None:
        # The log on disk no longer matches what this process promised; only a restart
        # (which reloads the log) can be trusted now.
        self.step_down("an order log write failed")
        give_up(self.reactor, "an order log write", failure.getErrorMessage(), self.not_serving)


def _observe(d: Deferred) -> Deferred:
    """A new Deferred with `d`'s result, leaving `d` itself untouched for other observers."""
    copy: Deferred = Deferred()

    def relay(result: Any) -> Any:
        if not copy.called:
            copy.callback(result)
        return result

    d.addCallback(relay)
    return copy

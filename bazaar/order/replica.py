"""One order replica's reactor-side state: the leader's trade path, its takeover, and the
follower's log path.

Everything here runs in the reactor thread; gRPC handlers reach it through a ReactorHop. The
numbering, log matching and follower bookkeeping are the no-I/O classes in bazaar.core; this
class wires them to the catalog, the group-committed log, the follower links and the front
end's cache.
"""

from __future__ import annotations

from typing import Any, Callable

import grpc
from twisted.internet import defer
from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from bazaar.reactor.batcher import Batcher
from bazaar.config import Config
from bazaar.rpc.convert import trade_type_from_proto
from bazaar.core.chain import GENESIS, Entry, Record
from bazaar.core.replica import Accepted, Conflict, Gap, LogPosition, ReplicaCore, Stale
from bazaar.core.replication import Replication
from bazaar.rpc.bridge import call
from bazaar.reactor.group_commit import GroupCommitter
from bazaar.order.catchup import RemoteLog, stream_log, synchronize_request
from bazaar.order.links import FollowerLink
from bazaar.order.store import Append, OrderStore, SetEpoch, Truncate
from bazaar.rpc.peers import is_peer_failure
from bazaar.rpc.services import Channels
from bazaar.v1 import catalog_pb2, catalog_pb2_grpc, order_pb2
from bazaar.reactor.waitlist import WaitList

log = Logger()

_TRADE_TO_REQUEST = {
    catalog_pb2.TRADE_STATUS_STOCK_NOT_FOUND: order_pb2.REQUEST_STATUS_STOCK_NOT_FOUND,
    catalog_pb2.TRADE_STATUS_INVALID_TYPE: order_pb2.REQUEST_STATUS_INVALID_TYPE,
    catalog_pb2.TRADE_STATUS_INVALID_QUANTITY: order_pb2.REQUEST_STATUS_INVALID_QUANTITY,
    catalog_pb2.TRADE_STATUS_NOT_ENOUGH_STOCK: order_pb2.REQUEST_STATUS_NOT_ENOUGH_STOCK,
    catalog_pb2.TRADE_STATUS_KEY_REUSED: order_pb2.REQUEST_STATUS_KEY_REUSED,
}
_OUTCOME_STATUS = {
    Gap: order_pb2.PROPAGATE_STATUS_GAP,
    Conflict: order_pb2.PROPAGATE_STATUS_CONFLICT,
    Stale: order_pb2.PROPAGATE_STATUS_STALE_EPOCH,
}


# A new leader far behind its followers streams what it lacks; a follower that sends nothing
# within the peer timeout is frozen and given up on.
CATCH_UP_DEADLINE = 120.0
# Trades a dead leader applied but never logged are among the catalog's latest: at most the
# trades it had under way. The window is far larger than that, and costs one query.
RECONCILE_WINDOW = 10_000


class LostLeadership(Exception):
    """This replica stopped leading while a trade waited for replication."""


class NotLeading(Exception):
    """A request only the leader answers reached a replica that does not lead."""


def observe(d: Deferred) -> Deferred:
    """A new Deferred with `d`'s result, leaving `d` itself untouched for other observers."""
    copy: Deferred = Deferred()

    def relay(result: Any) -> Any:
        copy.callback(result)
        return result

    d.addCallback(relay)
    return copy


class Replica:
    def __init__(
        self,
        reactor: Any,
        config: Config,
        replica_id: int,
        store: OrderStore,
        committer: GroupCommitter,
        channels: Channels,
        invalidate: Callable[[str], None],
    ) -> None:
        self.reactor = reactor
        self.config = config
        self.replica_id = replica_id
        self.address = str(config.replica_address(replica_id))
        self.store = store
        self.core = ReplicaCore(store.last_entry, store.epoch)
        self.replication = Replication()
        self._committer = committer
        self._channels = channels
        self._invalidate = invalidate
        self._links: dict[str, FollowerLink] = {}
        # Accepted entries not yet on disk everywhere: followers are fed from here, not the disk.
        self._recent: dict[int, Entry] = {}
        # Writes queued before a truncation report numbers it is about to undo: until it is
        # on disk, `last_durable` may run ahead, so nothing is pruned from `_recent`.
        self._truncations_pending = 0
        self._committed = WaitList(-1)
        # Leadership: a takeover in progress (fires True once leading) and its generation
        # (a newer AssignFollowers abandons an older takeover).
        self._takeover: Deferred | None = None
        self._takeover_generation = 0
        # Idempotency keys of trades under way here: a concurrent repeat waits for the first.
        self._keys_in_flight: dict[str, Deferred] = {}
        # Trades waiting for a majority of followers to answer.
        self._quorum_waiters: list[Deferred] = []
        # As a follower: the highest order a leader said was committed that our log shares.
        self._known_committed = -1
        # Internal hops get part of the front end's deadline, so a slow peer fails the
        # request before the front end gives up on the whole call.
        self._peer_timeout = config.timeouts.rpc / 2
        self._catalog_trades: Batcher[Any, Any] = Batcher(self._send_trades, reactor)
        self._kick_call: Any = None

    # -- leader: trades -------------------------------------------------------------------

    async def place_order(self, name: str, quantity: int, type_: int, key: str = "") -> tuple[int, int]:
        """Execute a trade on the catalog, log it, replicate it; (RequestStatus, number).

        Under an idempotency key the trade happens once: a repeat (the client's retry, or the
        front end's redo on a new leader) gets the logged number, and the catalog applies the
        key once even if a dead leader had traded it without logging it."""
        if self._takeover is not None and not self._takeover.called:
            await observe(self._takeover)
        if not self.core.is_leader:
            # Also after a failed takeover: the front end selects again, which retries it.
            return order_pb2.REQUEST_STATUS_NOT_LEADER, -1
        if not await self._quorum_reachable():
            # Without a majority nothing can commit: refuse before the catalog moves stock.
            return order_pb2.REQUEST_STATUS_UNAVAILABLE, -1
        if not key:
            return await self._trade(name, quantity, type_, key)
        while key in self._keys_in_flight:  # the same key, concurrently: answer as it did
            await observe(self._keys_in_flight[key])
        done = self._keys_in_flight[key] = Deferred()
        try:
            earlier = self._logged_under(key)
            if earlier is None:
                return await self._trade(name, quantity, type_, key)
            placed = earlier.order
            if (placed.name, placed.type, placed.quantity) != (name, trade_type_from_proto(type_), quantity):
                return order_pb2.REQUEST_STATUS_KEY_REUSED, -1
            if not await self._commit(earlier.number):
                return order_pb2.REQUEST_STATUS_UNAVAILABLE, -1
            return order_pb2.REQUEST_STATUS_OK, earlier.number
        finally:
            del self._keys_in_flight[key]
            done.callback(None)

    def _logged_under(self, key: str) -> Entry | None:
        """The entry this log holds under `key`, on disk or still on its way there."""
        for entry in self._recent.values():  # few: only those not yet committed everywhere
            if entry.key == key:
                return entry
        return self.store.find_key(key)

    async def _quorum_reachable(self) -> bool:
        """Whether a majority is reachable, waiting a little for followers to answer (just
        after a takeover they have not been asked yet)."""
        if self.replication.quorum_reachable:
            return True
        waiter: Deferred = Deferred()
        self._quorum_waiters.append(waiter)
        try:
            return await waiter.addTimeout(self._peer_timeout, self.reactor)
        except Exception:
            return False
        finally:
            if waiter in self._quorum_waiters:
                self._quorum_waiters.remove(waiter)

    def _quorum_changed(self, reachable: bool) -> None:
        waiters, self._quorum_waiters = self._quorum_waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(reachable)

    async def _trade(self, name: str, quantity: int, type_: int, key: str) -> tuple[int, int]:
        request = catalog_pb2.TradeStockRequest(
            name=name, quantity=quantity, type=type_, trade_id=key, epoch=self.core.epoch
        )
        try:
            # The deadline covers the wait for a batch to leave as well as the batch's call.
            traded = await self._catalog_trades.submit(request, self._peer_timeout)
        except Exception as e:
            if not is_peer_failure(e):
                raise
            log.warn("catalog unreachable for a trade of {name}: {error}", name=name, error=e)
            return order_pb2.REQUEST_STATUS_UNAVAILABLE, -1
        if traded.status == catalog_pb2.TRADE_STATUS_STALE_EPOCH:
            self._step_down("the catalog has seen a newer leader")
            return order_pb2.REQUEST_STATUS_NOT_LEADER, -1
        if traded.status != catalog_pb2.TRADE_STATUS_OK:
            return _TRADE_TO_REQUEST.get(traded.status, order_pb2.REQUEST_STATUS_UNAVAILABLE), -1
        if not self.core.is_leader:
            return order_pb2.REQUEST_STATUS_UNAVAILABLE, -1
        type_name = trade_type_from_proto(type_)
        assert type_name is not None  # the catalog refuses unknown types
        entry = self.core.number(name, type_name, quantity, key)
        self._write([Append(entry)])
        self._kick_followers()
        if not await self._commit(entry.number):
            return order_pb2.REQUEST_STATUS_UNAVAILABLE, -1
        self._invalidate(name)
        return order_pb2.REQUEST_STATUS_OK, entry.number

    def _send_trades(self, requests: list[Any], timeout: float) -> Deferred:
        stub = catalog_pb2_grpc.CatalogServiceStub(self._channels.get(self.config.catalog))
        batch = catalog_pb2.TradeBatchRequest(trades=requests)
        d = call(self.reactor, stub.TradeBatch, batch, timeout, wait_for_ready=True)
        return d.addCallback(lambda response: list(response.results))

    async def _commit(self, number: int) -> bool:
        """Wait until order `number` is on a majority; False if that takes longer than a peer
        timeout or leadership is lost. The order stays in the log and may still commit: a
        retry under the same idempotency key then finds it."""
        try:
            await self._committed.wait(number).addTimeout(self._peer_timeout, self.reactor)
        except LostLeadership:
            return False
        except defer.TimeoutError:
            log.warn("order {number} not on a majority within {timeout}s", number=number,
                     timeout=self._peer_timeout)
            return False
        return True

    async def lookup(self, number: int) -> Any:
        """An order. The leader answers once it has caught up. Another replica answers only
        for orders it knows to be committed (its log may lag or hold a dead leader's tail),
        so that committed orders can still be read when no leader can be found."""
        if self._takeover is not None and not self._takeover.called:
            await observe(self._takeover)
        if not self.core.is_leader and number > min(self.committed, self.core.last_durable):
            raise NotLeading(f"this replica does not lead and knows orders committed only up to {self.committed}")
        return self.store.get(number)

    @property
    def committed(self) -> int:
        """The highest order known committed (on a majority): the leader's own count, or the
        last a leader told this follower."""
        return self._committed.reached if self.core.is_leader else self._known_committed

    # -- follower: the log arriving from a leader --------------------------------------------

    def receive(
        self, prev_number: int, prev_chain: bytes, records: list[Record],
        leader_last: int | None, leader_epoch: int | None, leader_commit: int = -1,
    ) -> Deferred:
        """A leader's batch (propagated or streamed); fires with (PropagateStatus, number, epoch)
        once everything it changed is on disk."""
        was_leader, epoch_before = self.core.is_leader, self.core.epoch
        outcome = self.core.accept(prev_number, prev_chain, records, self.entry_at, leader_last, leader_epoch)
        if was_leader and not self.core.is_leader:
            self._step_down(f"a leader of epoch {leader_epoch} is propagating to us")
        if isinstance(outcome, Stale):
            return succeed((order_pb2.PROPAGATE_STATUS_STALE_EPOCH, self.core.last_accepted, self.core.epoch))
        operations: list[Any] = []
        if self.core.epoch > epoch_before:
            operations.append(SetEpoch(self.core.epoch))
        if isinstance(outcome, Accepted):
            status, number = order_pb2.PROPAGATE_STATUS_OK, outcome.through
            operations += self._operations(outcome)
            # Orders up to `through` now match the leader's log: those it has committed are ours
            # to answer lookups for.
            self._known_committed = max(self._known_committed, min(leader_commit, outcome.through))
        else:
            status, number = _OUTCOME_STATUS[type(outcome)], outcome.last
        self._write(operations)
        return self._committer.barrier().addCallback(lambda _: (status, number, self.core.epoch))

    def _operations(self, accepted: Accepted) -> list[Any]:
        operations: list[Any] = []
        if accepted.truncate_after is not None:
            log.warn("dropping orders after {after}: they differ from the leader's log",
                     after=accepted.truncate_after)
            for number in [n for n in self._recent if n > accepted.truncate_after]:
                del self._recent[number]
            operations.append(Truncate(accepted.truncate_after))
        return operations + [Append(e) for e in accepted.entries]

    # -- leadership ---------------------------------------------------------------------------

    def promise(self, epoch: int) -> Deferred:
        """A candidate asks for `epoch`; fires with (granted, our epoch) once that is on disk."""
        was_leader = self.core.is_leader
        if not self.core.promise(epoch):
            return succeed((False, self.core.epoch))
        if was_leader:
            self._step_down(f"promised epoch {epoch} to a new candidate")
        self._write([SetEpoch(epoch)])
        return self._committer.barrier().addCallback(lambda _: (True, epoch))

    def assign_followers(self, addresses: list[str]) -> int:
        """The front end picked us: take over in the background; trades and lookups wait."""
        followers = sorted({a for a in addresses if a and a != self.address})
        if self._takeover is not None and not self._takeover.called:
            # Picked again while still taking over (its requests timed out while we caught
            # up): restarting would only begin the catch-up anew.
            return self.core.last_durable
        if self.core.is_leader:
            self._step_down("assigned again: taking over afresh")
        self._takeover_generation += 1
        takeover = Deferred.fromCoroutine(self._take_over(followers, self._takeover_generation))
        self._takeover = takeover.addErrback(self._takeover_failed)
        return self.core.last_durable

    async def _take_over(self, followers: list[str], generation: int) -> bool:
        """Stand for a new epoch: promise it to ourselves, ask the followers for the same
        promise together with their logs, adopt the most up-to-date promised log, and lead on
        one promise: two of three replicas agree, so no two leaders ever share an epoch, and
        an old leader is refused by the promised follower from the moment it promised."""
        seen = 0
        needed = (len(followers) + 1) // 2  # promises that, with ours, make a majority
        for _ in range(3):  # a refusal names a newer epoch: stand again above it
            epoch = self.core.next_epoch(seen)
            granted, _ = await self.promise(epoch)
            if not granted or generation != self._takeover_generation:
                return False
            request = synchronize_request(self, epoch=epoch)
            answers = await self._read_followers(followers, request, needed)
            if generation != self._takeover_generation or self.core.epoch != epoch:
                return False  # assigned again, or we promised a newer candidate meanwhile
            promised = [a for a in answers if not a.refused]
            if len(promised) >= needed:
                break
            if len(answers) < needed:
                return self._cannot(f"no follower of {followers} answered: too few replicas to lead")
            seen = max(a.epoch for a in answers)
        else:
            return self._cannot("followers kept promising newer epochs to others")
        best = max(promised, key=self._position_of, default=None)
        if best is not None and self._position_of(best) > self.core.position:
            log.info("adopting {count} orders after {shared} from a follower's log",
                     count=len(best.records), shared=best.shared)
            status, _, _ = await self.receive(best.shared, best.shared_chain, best.records, None, None)
            if status != order_pb2.PROPAGATE_STATUS_OK:
                return self._cannot(f"a follower's log did not fit ours (status {status})")
        if generation != self._takeover_generation or self.core.epoch != epoch:
            return False
        self.core.lead()
        # Known committed only as followers match: what we inherited may be ours alone.
        self._committed = WaitList(-1)
        self.replication.assign(followers, self.core.last_accepted)
        for address in followers:
            self._link(address)
        await self._reconcile(epoch)
        log.info("leading in epoch {epoch} from order {last}, followers {followers}",
                 epoch=epoch, last=self.core.last_accepted, followers=followers)
        return True

    async def _reconcile(self, epoch: int) -> None:
        """Log the trades the catalog applied but no log holds: a leader died between the two
        and nobody retried its key. The catalog is fenced at our epoch first, so no replaced
        leader can apply another trade after the list is taken."""
        channel = self.channel(str(self.config.catalog))
        request = catalog_pb2.ListAppliedRequest(last=RECONCILE_WINDOW, epoch=epoch)

        def read() -> list[Any]:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            return [t for r in stub.ListApplied(request, timeout=self._peer_timeout, wait_for_ready=True) for t in r.trades]

        try:
            applied = await deferToThread(read)
        except grpc.RpcError as e:
            log.warn("could not reconcile with the catalog ({code}): trades it applied but no log "
                     "holds stay unlogged until the next takeover", code=e.code().name)
            return
        logged = self.store.recent_keys(2 * RECONCILE_WINDOW)
        orphans = [t for t in applied if t.trade_id not in logged and self._logged_under(t.trade_id) is None]
        for trade in orphans:
            type_name = trade_type_from_proto(trade.type)
            assert type_name is not None
            entry = self.core.number(trade.name, type_name, trade.quantity, trade.trade_id)
            self._write([Append(entry)])
        if orphans:
            log.warn("logged {count} trades the catalog had applied but no log held", count=len(orphans))
            self._kick_followers()

    def _read_followers(self, followers: list[str], request: Any, needed: int) -> Deferred:
        """The followers' answers to a takeover's Synchronize: all of them, or as soon as
        `needed` have promised. Any majority holds every committed order, so a frozen old
        leader need not be waited for."""
        answers: list[RemoteLog] = []
        enough: Deferred = Deferred()
        remaining = len(followers)

        def answered(remote: RemoteLog) -> None:
            answers.append(remote)
            if sum(not a.refused for a in answers) >= needed and not enough.called:
                enough.callback(list(answers))

        def done(_: Any) -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0 and not enough.called:
                enough.callback(list(answers))

        if not followers:
            return succeed([])
        for address in followers:
            read = deferToThread(
                stream_log, self.channel(address), request, CATCH_UP_DEADLINE, None, self._peer_timeout
            )
            read.addCallbacks(answered, lambda f: None).addBoth(done)
        return enough

    @staticmethod
    def _position_of(remote: RemoteLog) -> LogPosition:
        if not remote.records:
            return LogPosition(-1, -1)  # nothing beyond the shared point: not ahead of us
        return LogPosition(remote.records[-1].epoch, remote.records[-1].number)

    def _cannot(self, reason: str) -> bool:
        log.warn("cannot lead: {reason}", reason=reason)
        return False

    def _takeover_failed(self, failure: Any) -> bool:
        log.failure("takeover failed", failure)
        self._step_down("takeover failed")
        return False

    def register_follower(self, address: str) -> bool:
        """A rejoining replica finished its catch-up stream; feed it from now on."""
        if not self.core.is_leader:
            return False
        log.info("replica at {address} rejoined", address=address)
        self.replication.add(address, self.core.last_accepted)
        old = self._links.pop(address, None)
        if old is not None:
            old.close()
        self._link(address)
        return True

    def follower_answered(self, address: str, status: int, number: int, epoch: int) -> None:
        if status == order_pb2.PROPAGATE_STATUS_STALE_EPOCH:
            log.warn("follower {address} has seen epoch {epoch}: we were replaced", address=address, epoch=epoch)
            self._step_down(f"replaced by a leader of epoch {epoch}")
            if epoch > self.core.epoch:
                self.core.epoch = epoch
                self._write([SetEpoch(epoch)])
            return
        if status == order_pb2.PROPAGATE_STATUS_OK:
            self.replication.matched(address, number)
        elif status == order_pb2.PROPAGATE_STATUS_GAP:
            self.replication.gap(address, number)
        else:
            self.replication.conflict(address)
        if self.replication.quorum_reachable:
            self._quorum_changed(True)
        self._release()

    def follower_unreachable(self, address: str) -> None:
        self.replication.unreachable(address)
        self._release()

    # -- reading the log ---------------------------------------------------------------------

    def channel(self, address: str) -> Any:
        return self._channels.get(address)

    def entry_at(self, number: int) -> Entry:
        """This replica's entry `number` (<= last_accepted), from memory when recent."""
        entry = self._recent.get(number) or self.store.entry(number)
        assert entry is not None, f"order {number} is neither recent nor on disk"
        return entry

    def chain_at(self, number: int) -> bytes:
        return GENESIS if number == -1 else self.entry_at(number).chain

    def entries_in(self, numbers: range) -> list[Entry]:
        """The entries numbered `numbers`, from memory when recent, else from the disk."""
        if all(n in self._recent for n in numbers):
            return [self._recent[n] for n in numbers]
        return self.store.after(numbers.start - 1, len(numbers))

    # -- internals ------------------------------------------------------------------------------

    def _link(self, address: str) -> None:
        link = self._links.get(address)
        if link is None or link.closed:
            link = self._links[address] = FollowerLink(self, address, self.channel(address), self._peer_timeout)
        link.kick()

    def _kick_followers(self) -> None:
        """At the end of the reactor's turn: the orders of one incoming batch of trades then
        travel to each follower in one Propagate, not the first alone and the rest later."""
        if self._kick_call is None:
            self._kick_call = self.reactor.callLater(0, self._kick_now)

    def _kick_now(self) -> None:
        self._kick_call = None
        for link in list(self._links.values()):
            link.kick()

    def _step_down(self, reason: str) -> None:
        if self.core.is_leader:
            log.info("no longer leading: {reason}", reason=reason)
        self.core.follow()
        for link in self._links.values():
            link.close()
        self._links.clear()
        self.replication.assign([], self.core.last_accepted)
        self._committed.fail_all(LostLeadership(reason))
        self._quorum_changed(False)

    def _write(self, operations: list[Any]) -> None:
        if not operations:
            return
        truncations = 0
        for op in operations:
            if isinstance(op, Truncate):
                truncations += 1
            elif isinstance(op, Append):
                self._recent[op.entry.number] = op.entry
        self._truncations_pending += truncations
        self._committer.submit_all(operations).addCallbacks(self._written, self._write_failed, (truncations,))

    def _written(self, last: int, truncations: int) -> None:
        self._truncations_pending -= truncations
        self.core.durable(last)
        self._release()

    def _write_failed(self, failure: Any) -> None:
        # The log on disk no longer matches what this process promised; only a restart
        # (which reloads the log) can be trusted now.
        log.critical("order log write failed: {error}; stopping", error=failure.getErrorMessage())
        if self.reactor.running:
            self.reactor.stop()

    def _release(self) -> None:
        if self.core.is_leader:
            through = self.replication.committed_through(self.core.last_durable)
            if through > self._committed.reached:
                self._committed.advance(through)
                self._kick_followers()  # their next batch (or a notice) carries the commit point
        else:
            through = self.core.last_durable
        if self._truncations_pending:
            return
        for number in [n for n in self._recent if n <= through]:
            del self._recent[number]

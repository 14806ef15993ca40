"""One order replica's reactor-side state: the leader's trade path and the follower's log path.

Everything here runs in the reactor thread; gRPC handlers reach it through a ReactorHop. The
numbering, log matching and follower bookkeeping are the no-I/O classes in bazaar.core; this
class wires them to the catalog, the group-committed log, the follower links and the front
end's cache.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from bazaar.config import Config
from bazaar.convert import trade_type_from_proto
from bazaar.core.chain import Entry
from bazaar.core.replica import Accepted, Conflict, Gap, ReplicaCore
from bazaar.core.replication import Replication
from bazaar.grpc_bridge import call
from bazaar.group_commit import GroupCommitter
from bazaar.order.links import FollowerLink
from bazaar.order.store import Append, OrderStore, Truncate
from bazaar.peers import is_peer_failure
from bazaar.rpc import Channels
from bazaar.v1 import catalog_pb2, catalog_pb2_grpc, order_pb2
from bazaar.waitlist import WaitList

log = Logger()

_TRADE_TO_REQUEST = {
    catalog_pb2.TRADE_STATUS_STOCK_NOT_FOUND: order_pb2.REQUEST_STATUS_STOCK_NOT_FOUND,
    catalog_pb2.TRADE_STATUS_INVALID_TYPE: order_pb2.REQUEST_STATUS_INVALID_TYPE,
    catalog_pb2.TRADE_STATUS_INVALID_QUANTITY: order_pb2.REQUEST_STATUS_INVALID_QUANTITY,
    catalog_pb2.TRADE_STATUS_NOT_ENOUGH_STOCK: order_pb2.REQUEST_STATUS_NOT_ENOUGH_STOCK,
}


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
        self.core = ReplicaCore(store.last_number, store.last_chain)
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
        self._replicated = WaitList(store.last_number)
        # Internal hops get part of the front end's deadline, so a slow peer fails the
        # request before the front end gives up on the whole call.
        self._peer_timeout = config.timeouts.rpc / 2

    # -- leader: trades -------------------------------------------------------------------

    async def place_order(self, name: str, quantity: int, type_: int) -> tuple[int, int]:
        """Execute a trade on the catalog, log it, replicate it; (RequestStatus, number)."""
        if not self.core.is_leader:
            return order_pb2.REQUEST_STATUS_NOT_LEADER, -1
        stub = catalog_pb2_grpc.CatalogServiceStub(self._channels.get(self.config.catalog))
        request = catalog_pb2.TradeStockRequest(name=name, quantity=quantity, type=type_)
        try:
            traded = await call(self.reactor, stub.Trade, request, self._peer_timeout, wait_for_ready=True)
        except Exception as e:
            if not is_peer_failure(e):
                raise
            log.warn("catalog unreachable for a trade of {name}: {error}", name=name, error=e)
            return order_pb2.REQUEST_STATUS_UNAVAILABLE, -1
        if traded.status != catalog_pb2.TRADE_STATUS_OK:
            return _TRADE_TO_REQUEST.get(traded.status, order_pb2.REQUEST_STATUS_UNAVAILABLE), -1
        type_name = trade_type_from_proto(type_)
        assert type_name is not None  # the catalog refuses unknown types
        entry = self.core.number(name, type_name, quantity)
        self._write([Append(entry)])
        self._kick_followers()
        await self._replicated.wait(entry.number)
        self._invalidate(name)
        return order_pb2.REQUEST_STATUS_OK, entry.number

    # -- follower: the log arriving from a leader --------------------------------------------

    def receive(self, prev_number: int, prev_chain: bytes, orders: list, leader_last: int | None) -> Deferred:
        """A leader's batch (propagated or streamed); fires with (PropagateStatus, number)."""
        if self.core.is_leader:
            log.info("another leader is propagating to us; following it")
            self._step_down()
        outcome = self.core.accept(prev_number, prev_chain, orders, self.chain_at, leader_last)
        if isinstance(outcome, Gap):
            return succeed((order_pb2.PROPAGATE_STATUS_GAP, outcome.last))
        if isinstance(outcome, Conflict):
            return succeed((order_pb2.PROPAGATE_STATUS_CONFLICT, outcome.last))
        self._apply(outcome)
        # Answer only once all of it is on disk, including earlier writes it relies on.
        return self._committer.barrier().addCallback(
            lambda _: (order_pb2.PROPAGATE_STATUS_OK, outcome.through)
        )

    def _apply(self, accepted: Accepted) -> None:
        operations: list[Any] = []
        if accepted.truncate_after is not None:
            log.warn("dropping orders after {after}: they differ from the leader's log",
                     after=accepted.truncate_after)
            for number in [n for n in self._recent if n > accepted.truncate_after]:
                del self._recent[number]
            operations.append(Truncate(accepted.truncate_after))
        operations += [Append(e) for e in accepted.entries]
        self._write(operations)

    # -- leadership and the follower set -------------------------------------------------------

    def assign_followers(self, addresses: list[str]) -> int:
        followers = sorted({a for a in addresses if a and a != self.address})
        log.info("leading, with followers {followers}", followers=followers)
        self.core.lead()
        for address in set(self._links) - set(followers):
            self._links.pop(address).close()
        self.replication.assign(followers, self.core.last_accepted)
        for address in followers:
            self._link(address)
        self._release()
        return self.core.last_durable

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
        self._release()
        return True

    def drop_follower(self, address: str) -> None:
        link = self._links.pop(address, None)
        if link is not None:
            link.close()
        self.replication.drop(address)
        self._release()

    def follower_answered(self, address: str, status: int, number: int) -> None:
        if status == order_pb2.PROPAGATE_STATUS_OK:
            self.replication.matched(address, number)
        elif status == order_pb2.PROPAGATE_STATUS_GAP:
            self.replication.gap(address, number)
        else:
            self.replication.conflict(address)
        self._release()

    # -- reading the log ---------------------------------------------------------------------

    def channel(self, address: str) -> Any:
        return self._channels.get(address)

    def chain_at(self, number: int) -> bytes:
        """This replica's chain value at `number` (<= last_accepted)."""
        entry = self._recent.get(number)
        if entry is not None:
            return entry.chain
        chain = self.store.chain(number)
        assert chain is not None, f"order {number} is neither recent nor on disk"
        return chain

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
        for link in list(self._links.values()):
            link.kick()

    def _step_down(self) -> None:
        self.core.follow()
        for link in self._links.values():
            link.close()
        self._links.clear()
        self.replication.assign([], self.core.last_accepted)

    def _write(self, operations: list[Any]) -> None:
        for op in operations:
            truncation = isinstance(op, Truncate)
            if truncation:
                self._truncations_pending += 1
            else:
                self._recent[op.entry.number] = op.entry
            self._committer.submit(op).addCallbacks(self._written, self._write_failed, (truncation,))

    def _written(self, last: int, truncation: bool) -> None:
        if truncation:
            self._truncations_pending -= 1
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
            through = self.replication.replicated_through(self.core.last_durable)
            self._replicated.advance(through)
        else:
            through = self.core.last_durable
        if self._truncations_pending:
            return
        for number in [n for n in self._recent if n <= through]:
            del self._recent[number]

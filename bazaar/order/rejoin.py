"""A restarted replica asks its peers who leads and streams every order it missed.

No peer may lead yet (a cluster starting from scratch): then there is nothing to rejoin, and
the front end's leader selection will hand this replica its role.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import grpc
from twisted.internet import defer, threads
from twisted.logger import Logger

from bazaar.core.chain import Record
from bazaar.rpc.bridge import ReactorHop, ReactorUnavailable, call
from bazaar.order.catchup import stream_log, synchronize_request
from bazaar.order.replica import Replica
from bazaar.order.snapshot import install_snapshot
from bazaar.v1 import order_pb2, order_pb2_grpc

log = Logger()

# Generous: a replica that missed 100k orders must get them all in one stream.
SYNC_DEADLINE = 120.0


class RejoinRefused(Exception):
    """The leader's stream does not fit this replica's log."""


@dataclass(frozen=True)
class FoundLeader:
    address: str
    # The highest index it said was on a majority; when it did not answer, the highest its
    # followers said (they learn it from its batches: at most a little behind). -1: not known.
    committed: int


async def find_leader(replica: Replica) -> FoundLeader | None:
    """The replica that leads, as its peers describe themselves: one that says it leads, else
    the leader a follower keeps faith with; None when none is known."""

    def ask(address: str) -> Any:
        stub = order_pb2_grpc.OrderServiceStub(replica.channel(address))
        d = call(replica.reactor, stub.Describe, order_pb2.DescribeRequest(), replica.config.timeouts.probe, True)
        return d.addErrback(lambda _: None)

    views = await defer.gatherResults([ask(a) for a in replica.peers])
    by_id = {i: a for a, i in replica.ids.items()}
    leading = [v for v in views if v is not None and v.role == order_pb2.REPLICA_ROLE_LEADER]
    if leading:
        view = max(leading, key=lambda v: v.leader_epoch)
        address = by_id.get(view.replica_id)
        return None if address is None else FoundLeader(address, view.committed_index)
    followed = [v for v in views if v is not None and v.leader_id and v.leader_id != replica.replica_id]
    if not followed:
        log.info("no peer leads or follows a leader; not rejoining")
        return None
    leader_id = followed[0].leader_id
    address = by_id.get(leader_id)
    # The leader's own answer may have missed its probe deadline (a busy machine): how far
    # behind we are still decides between a snapshot and the stream.
    committed = max(v.committed_index for v in followed if v.leader_id == leader_id)
    return None if address is None else FoundLeader(address, committed)


class StreamWriter:
    """Writes each batch of the rejoin stream to the replica's log (called on the stream's
    thread), and counts the entries."""

    def __init__(self, replica: Replica, hop: ReactorHop) -> None:
        # Taken while the replica is not ready yet, as the link's entries are not (Replica.receive).
        self._receive = partial(replica.receive, streamed=True)
        self._hop = hop
        self.count = 0

    def __call__(self, prev: int, prev_chain: bytes, records: list[Record], epoch: int, leader_commit: int) -> None:
        # Each batch is committed before the next is read: a crash mid-stream keeps a prefix.
        # With the leader's commit point, what it covers leaves memory once on disk.
        status, *_ = self._hop.call(self._receive, prev, prev_chain, records, None, epoch, leader_commit,
                                    timeout=SYNC_DEADLINE)
        if status != order_pb2.PROPAGATE_STATUS_OK:
            raise RejoinRefused(f"the leader's stream does not fit this log (status {status})")
        self.count += len(records)


async def rejoin(replica: Replica, hop: ReactorHop) -> bool:
    """Catch up from the current leader and become its follower; False if there is none."""
    found = await find_leader(replica)
    if found is None or found.address == replica.address:
        return False
    leader = found.address
    if found.committed - replica.core.last_index >= replica.config.snapshot_gap:
        # Far behind: the committed log as one file, then the stream for what came since.
        log.info("{missed} or more entries behind leader {leader}: fetching a snapshot",
                 missed=found.committed - replica.core.last_index, leader=leader)
        await install_snapshot(replica, leader, SYNC_DEADLINE, replica.config.timeouts.rpc / 2)
    request = synchronize_request(replica.log, caller=replica.address)
    write = StreamWriter(replica, hop)

    log.info("rejoining: streaming entries after {last} from leader {leader}",
             last=replica.core.last_index, leader=leader)
    channel = replica.channel(leader)
    try:
        # A leader that falls silent (frozen, cut off) is given up on: this replica then starts
        # as it is, and the leader's link catches it up once it can.
        await threads.deferToThread(stream_log, channel, request, SYNC_DEADLINE, write, replica.config.timeouts.rpc / 2)
    except grpc.RpcError as e:
        log.warn("rejoin stream from {leader} failed: {code} {details}",
                 leader=leader, code=e.code().name, details=e.details())
        return False
    except (RejoinRefused, ValueError, ReactorUnavailable) as e:
        log.error("rejoin from {leader} failed: {error}", leader=leader, error=str(e))
        return False
    log.info("rejoined leader {leader} after receiving {count} entries", leader=leader, count=write.count)
    return True

"""Reading another replica's log from where ours parts from it: the client side of Synchronize.

Used by a rejoining replica (which writes each batch as it arrives) and by a new leader (which
reads its followers' logs to adopt the most up-to-date one). The stream is blocking, so it runs
on a worker thread, never on the reactor.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from bazaar.rpc.convert import record_from_proto
from bazaar.core.chain import GENESIS, Record, checkpoint_numbers
from bazaar.v1 import order_pb2, order_pb2_grpc


@dataclass
class RemoteLog:
    """What a replica streamed: every record after `shared`, the last entry both logs hold."""

    shared: int = -1
    shared_chain: bytes = GENESIS
    records: list[Record] = field(default_factory=list)
    epoch: int = 0
    refused: bool = False  # the promise of the requested epoch was refused
    leader_alive: bool = False  # refused because it follows a leader within its lease


def synchronize_request(
    replica_log: Any, caller: str = "", epoch: int = 0, candidate_id: int = 0,
) -> order_pb2.SynchronizeRequest:
    """Our chain values at exponentially spaced entries, so the other side finds where we part;
    with `epoch`, a candidate's request for a promise of that epoch."""
    checkpoints = [
        order_pb2.Checkpoint(index=i, chain=replica_log.chain_at(i))
        for i in checkpoint_numbers(replica_log.core.last_index)
    ]
    return order_pb2.SynchronizeRequest(checkpoints=checkpoints, caller=caller, epoch=epoch, candidate_id=candidate_id)


Batch = Callable[[int, bytes, list[Record], int, int], None]


class IdleWatch:
    """Cancels a stream (`cancel`) whose sender sends nothing for `within` seconds between
    `watch` and `unwatch` (None: never)."""

    def __init__(self, cancel: Callable[[], Any], within: float | None) -> None:
        self._cancel, self._within = cancel, within
        self._timer: threading.Timer | None = None

    def watch(self) -> None:
        if self._within is not None:
            self._timer = threading.Timer(self._within, self._cancel)
            self._timer.daemon = True
            self._timer.start()

    def unwatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def stream_log(channel: Any, request: order_pb2.SynchronizeRequest, deadline: float,
               on_batch: Batch | None = None, idle_within: float | None = None) -> RemoteLog:
    """Blocking: read the whole stream within `deadline`. With `idle_within`, a replica that
    sends nothing for that long (frozen, cut off) is given up on, while a long stream that
    keeps coming may take its time.
    With `on_batch`, each batch is handed over as it comes (prev index, prev chain, records,
    epoch, the streaming replica's commit point) instead of being kept. A failed or abandoned
    stream raises grpc.RpcError; a stream carrying an entry no leader writes raises ValueError."""
    stub = order_pb2_grpc.OrderServiceStub(channel)
    responses = stub.Synchronize(request, timeout=deadline)
    idle = IdleWatch(responses.cancel, idle_within)
    log = RemoteLog()
    first = True
    idle.watch()
    try:
        for response in responses:
            idle.unwatch()
            if response.refused:
                log.refused, log.epoch, log.leader_alive = True, response.epoch, response.leader_alive
                return log
            records = [record_from_proto(o) for o in response.entries]
            if first:
                log.shared, log.shared_chain, first = response.prev_index, response.prev_chain, False
            log.epoch = max(log.epoch, response.epoch)
            if on_batch is not None:
                on_batch(response.prev_index, response.prev_chain, records, response.epoch, response.leader_commit)
            else:
                log.records += records
            idle.watch()  # the wait for the next message, not our own work on this one
    finally:
        idle.unwatch()
    return log

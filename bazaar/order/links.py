"""The leader's sender to one follower: one Propagate in flight, carrying every order the
follower lacks (up to a batch), so a follower that falls behind catches up in large batches.

Batches are sent in order and one at a time, which is what lets a follower trust that nothing
beyond the leader's last order (as the batch states it) belongs to this leader. A failed call
detaches the follower (trades stop waiting for it) and the link tries again with backoff, so a
follower that was frozen or restarted is caught up as soon as it answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from bazaar.rpc.convert import record_to_proto
from bazaar.rpc.bridge import call
from bazaar.rpc.peers import is_peer_failure
from bazaar.v1 import order_pb2, order_pb2_grpc

if TYPE_CHECKING:
    from bazaar.order.replica import Replica

log = Logger()

BATCH_LIMIT = 1000
# A follower that answers GAP without progress is still writing an earlier batch: retry soon.
GAP_RETRY_DELAY = 0.02
# After a failed call: 50 ms, doubling to at most 2 s between attempts.
RETRY_FIRST, RETRY_MAX = 0.05, 2.0


class FollowerLink:
    def __init__(self, replica: "Replica", address: str, channel: Any, timeout: float) -> None:
        self._replica = replica
        self.address = address
        self._stub = order_pb2_grpc.OrderServiceStub(channel)
        self._timeout = timeout
        self._sending = False
        self._retry: Any = None
        # Until the follower answers, its channel may still be reconnecting after a restart:
        # such a call waits for it (within its deadline) instead of failing at once.
        self._reachable = False
        self._failures = 0
        self._last_gap: int | None = None
        self._told_committed = -1
        self.closed = False

    def kick(self) -> None:
        """Send what the follower lacks, unless a send or a retry is already under way."""
        if self._sending or self.closed or self._retry is not None:
            return
        replica = self._replica
        batch = replica.replication.to_send(self.address, replica.core.last_accepted, BATCH_LIMIT)
        if batch is None:
            # Up to date: tell it how far the log is committed if that moved (an empty batch),
            # so it can answer lookups of those orders even when no leader can be reached.
            match = replica.replication.match(self.address)
            if match is None or replica.committed <= self._told_committed:
                return
            batch = (match, range(match + 1, match + 1))
        prev, numbers = batch
        self._sending = True
        self._told_committed = replica.committed
        request = order_pb2.PropagateRequest(
            prev_number=prev,
            prev_chain=replica.chain_at(prev),
            orders=[record_to_proto(e) for e in replica.entries_in(numbers)],
            leader_last=replica.core.last_accepted,
            epoch=replica.core.epoch,
            leader_commit=replica.committed,
        )
        d = call(replica.reactor, self._stub.Propagate, request, self._timeout,
                 wait_for_ready=not self._reachable)
        d.addCallbacks(self._answered, self._failed)

    def close(self) -> None:
        self.closed = True
        self._cancel_retry()

    def _answered(self, response: order_pb2.PropagateResponse) -> None:
        self._sending = False
        self._reachable, self._failures = True, 0
        if self.closed:
            return
        self._replica.follower_answered(self.address, response.status, response.last_number, response.epoch)
        gap = response.status == order_pb2.PROPAGATE_STATUS_GAP
        stalled = gap and self._last_gap == response.last_number
        self._last_gap = response.last_number if gap else None
        if stalled:
            self._retry_in(GAP_RETRY_DELAY)
        else:
            self.kick()

    def _failed(self, failure: Any) -> None:
        self._sending = False
        self._reachable = False
        if self.closed:
            return
        if is_peer_failure(failure.value):
            if self._failures == 0:
                log.warn("follower {address} unreachable ({error}); trades no longer wait for it",
                         address=self.address, error=_short(failure.value))
        else:
            log.failure("propagation to {address} failed", failure, address=self.address)
        self._replica.follower_unreachable(self.address)
        self._retry_in(min(RETRY_MAX, RETRY_FIRST * 2 ** self._failures))
        self._failures += 1

    def _retry_in(self, delay: float) -> None:
        self._retry = self._replica.reactor.callLater(delay, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self.kick()

    def _cancel_retry(self) -> None:
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None


def _short(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return code().name if callable(code) else type(exc).__name__

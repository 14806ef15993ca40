"""A replica taking over as leader: the I/O around bazaar.core.takeover.Candidacy.

Promises are asked through Synchronize with the candidate's epoch; each follower's answer
(its promise and its log from where it parts from ours) is read on a worker thread, and the
candidacy decides once enough promises are in. A follower that sends nothing for the peer
timeout, at the start or between two batches, is frozen or cut off and given up on; a long
stream that keeps coming may take its time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from bazaar.core.replica import MalformedBatch
from bazaar.core.takeover import Candidacy, Lost, Promised, Refused, Waiting, Won
from bazaar.order.catchup import RemoteLog, stream_log, synchronize_request
from bazaar.v1 import order_pb2

if TYPE_CHECKING:
    from bazaar.order.replica import Replica

log = Logger()

# A new leader far behind its followers streams what it lacks.
CATCH_UP_DEADLINE = 120.0


async def take_over(replica: "Replica", followers: list[str], generation: int) -> bool:
    """Stand, collect promises, adopt the most up-to-date promised log, then lead; True once
    the leader entry is on a majority and this replica serves. A candidacy that ends before
    leading is withdrawn: it unseats no one."""
    stood: list[int] = []
    try:
        return await _take_over(replica, followers, generation, stood)
    finally:
        if stood and not replica.core.is_leader and replica.leadership is None:
            replica.log.withdraw(stood[-1])


async def _take_over(replica: "Replica", followers: list[str], generation: int, stood: list[int]) -> bool:
    core = replica.log.core
    candidacy = Candidacy(followers)
    lease = replica.follower_lease
    if lease.alive(replica.now()) and lease.leader != replica.replica_id:
        # Our answers renew that leader's lease: standing now would break our word to it.
        return _cannot(f"still following leader {lease.leader} of epoch {lease.epoch} within its lease")
    while True:
        epoch = candidacy.stand(core)
        if epoch is None:
            return _cannot("out of attempts, or of epochs")
        granted, _ = await replica.log.promise(epoch, own=True)
        if granted:
            stood.append(epoch)
        if not granted or generation != replica.generation:
            return False
        request = synchronize_request(replica.log, epoch=epoch, candidate_id=replica.replica_id)
        outcome = await _collect(replica, candidacy, request)
        if generation != replica.generation:
            return False  # assigned again meanwhile
        if isinstance(outcome, Lost):
            return _cannot(outcome.reason)
        if isinstance(outcome, Won):
            break
        # StandAgain: refused for a newer epoch; the next stand is above it.
    if outcome.adopt is not None:
        adopt = outcome.adopt
        if any(r.epoch >= epoch for r in adopt.records):
            # A leader newer than our candidacy wrote to that follower while it streamed.
            return _cannot(f"a follower's log holds entries of epoch {epoch} or later")
        log.info("adopting {count} entries after {shared} from a follower's log",
                 count=len(adopt.records), shared=adopt.shared)
        try:
            written, _, _ = replica.log.receive(adopt.shared, adopt.shared_chain, adopt.records, None, None)
        except MalformedBatch as e:
            return _cannot(f"a follower's log is not one a leader could have written: {e}")
        status, _, _ = await written
        if status != order_pb2.PROPAGATE_STATUS_OK:
            return _cannot(f"a follower's log did not fit ours (status {status})")
    if generation != replica.generation or core.epoch != epoch:
        return False
    leadership = replica.begin_leading(followers)
    timeout = replica.config.timeouts.rpc
    try:
        serving = await leadership.established.addTimeout(timeout, replica.reactor)
    except defer.TimeoutError:
        serving = False
    if not serving:
        replica.step_down(f"the leader entry of epoch {epoch} did not reach a majority within {timeout:g}s")
        return False
    log.info("leading in epoch {epoch} from entry {last}, followers {followers}",
             epoch=epoch, last=core.last_index, followers=followers)
    return True


def _collect(replica: "Replica", candidacy: Candidacy, request: Any) -> Deferred:
    """Fires with the candidacy's outcome once it is no longer Waiting."""
    decided: Deferred = Deferred()
    core = replica.log.core

    def settle() -> None:
        if decided.called:
            return
        outcome = candidacy.outcome(core)
        if not isinstance(outcome, Waiting):
            decided.callback(outcome)

    def answered(remote: RemoteLog, address: str) -> None:
        if remote.refused:
            candidacy.answered(address, Refused(remote.epoch, remote.leader_alive))
        else:
            candidacy.answered(address, Promised(remote.shared, remote.shared_chain, remote.records))
        settle()

    def failed(_: Any, address: str) -> None:
        candidacy.answered(address, None)
        settle()

    peer_timeout = replica.config.timeouts.rpc / 2
    for address in candidacy.followers:
        read = deferToThread(stream_log, replica.channel(address), request, CATCH_UP_DEADLINE, None, peer_timeout)
        read.addCallbacks(answered, failed, callbackArgs=(address,), errbackArgs=(address,))
    settle()  # no followers: decided at once
    return decided


def _cannot(reason: str) -> bool:
    log.warn("cannot lead: {reason}", reason=reason)
    return False


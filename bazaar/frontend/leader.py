"""The front end's view of the order leader: LeaderSelection driven with real descriptions.

One selection runs at a time and every request that needs the leader meanwhile waits on it;
each waiter gets its own Deferred, so a client hanging up cancels only its own wait, never the
selection. Descriptions are asked of all replicas at once, so replicas that hang cost one probe
deadline in total rather than one each.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Awaitable, Callable, Mapping, Protocol, TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from bazaar.config import Address
from bazaar.core.leader_selection import Assign, Leader, LeaderSelection, NoLeader, ProbeAgain
from bazaar.frontend.backends import NotLeader, PeerUnavailable

T = TypeVar("T")
log = Logger()

# Between rounds of descriptions while a lease lapses or a higher replica starts.
REPROBE_DELAY = 0.05

# Why a selection round started (the metrics' causes): the front end had no leader yet; a
# request could not reach the leader (a failed call or health check); the leader said it does
# not lead; the previous round found no leader.
START, UNREACHABLE, NOT_LEADER, NO_LEADER = "start", "unreachable", "not_leader", "no_leader"
# How a round ended: a replica already leading (or taking over) was adopted, one accepted
# leadership when offered, or none could lead.
ADOPTED, ASSIGNED, NONE = "adopted", "assigned", "none"


class NoLeaderAvailable(Exception):
    """No order replica can lead right now."""


class Replica(Protocol):
    """What the tracker needs of a replica (ReplicaClient, or a fake in tests)."""

    id: int
    address: Address

    def probe(self) -> Deferred: ...

    def describe(self, wait_for_ready: bool = True) -> Deferred: ...

    def assign_followers(self, followers: list[str]) -> Deferred: ...


class LeaderTracker:
    def __init__(
        self,
        replicas: Mapping[int, Replica],
        clock: IReactorTime,
        probe_timeout: float,
        assign_timeout: float,
    ) -> None:
        self.replicas = dict(replicas)
        self._state = LeaderSelection(self.replicas)
        self._clock = clock
        self._probe_timeout = probe_timeout
        self._assign_timeout = assign_timeout
        self._waiters: list[Deferred] = []
        self._just_failed_probe: set[int] = set()
        self._waiting_logged = ""
        # Replicas a request just failed to reach: asked without waiting for a connection.
        self._unreachable: set[int] = set()
        self.selections = 0  # rounds started, for tests and diagnostics
        # Rounds by why they started and by how they ended (plain counts the metrics read).
        self.selection_causes: Counter[str] = Counter()
        self.selection_results: Counter[str] = Counter()
        self._cause = START  # of the next round

    @property
    def current(self) -> Leader | None:
        return self._state.current

    def leader(self) -> Deferred:
        """Fires with the current Leader, selecting one first if there is none.

        Fails with NoLeaderAvailable when a selection finds none.
        """
        current = self._state.current
        if current is not None:
            return defer.succeed(current)
        waiter: Deferred = Deferred(canceller=self._forget)
        self._waiters.append(waiter)
        if not self._state.selecting:
            self._start_selection()
        return waiter

    def _forget(self, waiter: Deferred) -> None:
        # The waiter may already be out of the list: fired waiters can cancel later ones.
        if waiter in self._waiters:
            self._waiters.remove(waiter)

    def address_of(self, leader: Leader) -> Address:
        return self.replicas[leader.replica_id].address

    def failed(self, leader: Leader, unreachable: bool = False) -> None:
        """A request found `leader` down (`unreachable`) or not leading; the next leader()
        selects again."""
        if unreachable:
            self._unreachable.add(leader.replica_id)
        if self._state.failed(leader):
            self._cause = UNREACHABLE if unreachable else NOT_LEADER
            log.warn("order leader {id} failed; a new one will be selected", id=leader.replica_id)

    def start(self) -> Deferred:
        """Select at start-up; having no leader yet is logged, not an error."""

        def none_yet(failure: Failure) -> None:
            failure.trap(NoLeaderAvailable)
            log.warn(
                "no order leader at start ({why}); requests will select again", why=failure.value
            )

        return self.leader().addErrback(none_yet)

    async def call_leader(self, operation: Callable[[Any], Awaitable[T]]) -> T:
        """Run `operation(replica)` on the leader; if the leader is down or no longer leads,
        select again and redo it on the new one, so the caller never sees the change."""
        # Every retry follows a selection; a bound stops a replica that is healthy yet keeps
        # refusing from looping forever.
        for _ in range(len(self.replicas) + 1):
            leader = await self.leader()
            replica = self.replicas[leader.replica_id]
            try:
                return await self.watched(replica, defer.ensureDeferred(operation(replica)))
            except (PeerUnavailable, NotLeader) as e:
                log.warn("leader {id} failed a request: {error}", id=leader.replica_id, error=e)
                self.failed(leader, unreachable=isinstance(e, PeerUnavailable))
        raise NoLeaderAvailable("the order leader kept failing; giving up on this request")

    async def watched(self, replica: Replica, pending: Deferred) -> Any:
        """`pending`'s result. While it takes longer than a probe deadline, the replica is
        probed: a frozen leader (SIGSTOP, a partition) is given up on within about two probe
        deadlines instead of the call's whole deadline, and the request redone elsewhere, which
        idempotency keys make safe. A healthy but slow leader keeps its full deadline."""
        box: list[Any] = []
        finished: Deferred = Deferred()

        def settle(result: Any) -> None:
            box.append(result)
            finished.callback(None)

        pending.addBoth(settle)
        while not box:
            if await self._fires_within(finished, pending, self._probe_timeout):
                break
            if not await self._cancelling(pending, self._probe(replica)) and not box:
                pending.cancel()
                self._just_failed_probe.add(replica.id)
                raise PeerUnavailable(str(replica.address), "failed its health check mid-request")
        result = box[0]
        if isinstance(result, Failure):
            result.raiseException()
        return result

    @staticmethod
    def _cancelling(pending: Deferred, waited: Deferred) -> Deferred:
        """`waited`'s result; cancelling it (a client hanging up during a probe) cancels
        `pending`, the call itself, and fails with CancelledError: the probe's own answer to
        being cancelled (unreachable, so False) is no verdict on the leader."""

        def cancel(_: Deferred) -> None:
            pending.cancel()
            waited.cancel()

        outcome: Deferred = Deferred(canceller=cancel)
        waited.addBoth(lambda result: None if outcome.called else outcome.callback(result))
        return outcome

    def _fires_within(self, finished: Deferred, pending: Deferred, seconds: float) -> Deferred:
        """Fires True once `finished` has fired, False after `seconds`. Cancelling it (a client
        hanging up) cancels `pending`, the call itself."""
        cancelled = False

        def cancel(_: Deferred) -> None:
            nonlocal cancelled
            cancelled = True  # `outcome` then fails with CancelledError, as cancelling requires
            if timer.active():
                timer.cancel()
            pending.cancel()

        outcome: Deferred = Deferred(canceller=cancel)
        timer = self._clock.callLater(seconds, lambda: outcome.called or outcome.callback(False))

        def fired(result: Any) -> Any:
            if not outcome.called and not cancelled:
                timer.cancel()
                outcome.callback(True)
            return result

        finished.addBoth(fired)
        return outcome

    def _start_selection(self) -> None:
        self.selections += 1
        self.selection_causes[self._cause] += 1
        Deferred.fromCoroutine(self._select()).addBoth(self._selection_done)

    async def _select(self) -> Leader:
        try:
            ids = self._state.start(self._clock.seconds())
            # A replica that has just failed its health check is not asked again this round.
            down, self._just_failed_probe = self._just_failed_probe, set()
            silent, self._unreachable = self._unreachable, set()
            while True:
                views = await defer.gatherResults([
                    defer.succeed(None) if i in down else self._describe(self.replicas[i], i not in silent)
                    for i in ids
                ])
                # Asked again, a replica that did not answer is not waited for: one that is
                # down would cost every round the whole probe deadline.
                silent = {i for i, view in zip(ids, views) if view is None}
                decision = self._state.probed(dict(zip(ids, views)), self._clock.seconds())
                if not isinstance(decision, ProbeAgain):
                    break
                if self._waiting_logged != decision.reason:
                    self._waiting_logged = decision.reason
                    log.info("selecting an order leader: waiting, {why}", why=decision.reason)
                await deferLater(self._clock, REPROBE_DELAY)
                down = set()
            result = ADOPTED
            while isinstance(decision, Assign):
                for why in decision.skipped:
                    log.info("not offered leadership: {why}", why=why)
                accepted = await self._offer(decision)
                decision = self._state.assigned(accepted)
                result = ASSIGNED
        except BaseException as e:
            # Keep the tracker usable after a bug in a step: end the round, report no leader.
            if self._state.selecting:
                self._state.abort(f"selection failed: {e!r}")
            raise
        self._waiting_logged = ""
        if isinstance(decision, NoLeader):
            raise NoLeaderAvailable(decision.reason)
        self.selection_results[result] += 1
        log.info(
            "order leader is replica {id} at {address}",
            id=decision.replica_id,
            address=str(self.replicas[decision.replica_id].address),
        )
        return decision

    def _describe(self, replica: Replica, wait_for_ready: bool) -> Deferred:
        def broken(failure: Failure) -> None:
            if not failure.check(defer.TimeoutError):
                log.failure("describing replica {id} failed", failure, id=replica.id)
            return None

        d = defer.maybeDeferred(replica.describe, wait_for_ready)
        d.addTimeout(self._probe_timeout, self._clock)
        return d.addErrback(broken)

    def _probe(self, replica: Replica) -> Deferred:
        def broken(failure: Failure) -> bool:
            if not failure.check(defer.TimeoutError):
                log.failure("probe of replica {id} failed", failure, id=replica.id)
            return False

        d = defer.maybeDeferred(replica.probe)
        d.addTimeout(self._probe_timeout, self._clock)
        return d.addErrback(broken)

    async def _offer(self, assign: Assign) -> bool:
        replica = self.replicas[assign.leader_id]
        followers = [str(self.replicas[i].address) for i in assign.follower_ids]
        d = defer.maybeDeferred(replica.assign_followers, followers)
        d.addTimeout(self._assign_timeout, self._clock)
        try:
            await d
        except (PeerUnavailable, defer.TimeoutError) as e:
            log.warn("replica {id} did not take leadership: {error}", id=replica.id, error=e)
            return False
        return True

    def _selection_done(self, result: Leader | Failure) -> None:
        if isinstance(result, Failure) and not result.check(NoLeaderAvailable):
            log.failure("leader selection failed", result)
            result = Failure(NoLeaderAvailable(f"leader selection failed: {result.value!r}"))
        if isinstance(result, Failure):
            self.selection_results[NONE] += 1
            self._cause = NO_LEADER
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.called:  # cancelled by an earlier waiter's callbacks
                continue
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)

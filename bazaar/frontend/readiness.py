"""Whether this front end can serve trades (GET /readyz): it knows an order leader that still
leads with a majority (its lease held), and the catalog answers its health check.

Asked of the backends, both at once, each within the probe deadline: the answer is about now,
not about the last request. Checks that arrive while one is under way share it, and its answer
serves for KEEP seconds: however often /readyz is asked, the leader and the catalog are asked at
most a few times a second. A leader that answers that it no longer leads is reported as failed
to the tracker, so the next request (or readiness check) selects again; one that does not answer
in time is only not ready (the trade path's own probes decide whether it is gone). With no
leader known, a selection is started as a request would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from bazaar.frontend.leader import LeaderTracker, NoLeaderAvailable

log = Logger()

LEADER, CATALOG = "leader", "catalog"
KEEP = 0.2  # seconds an answer serves the checks after it
WHY = {
    LEADER: "no order leader with a majority",
    CATALOG: "the catalog does not answer",
}


@dataclass(frozen=True)
class Readiness:
    leader: int | None  # the replica id that leads, when it does
    missing: tuple[str, ...]  # LEADER, CATALOG: what is not there

    @property
    def ready(self) -> bool:
        return not self.missing

    @property
    def message(self) -> str:
        return "not ready: " + "; ".join(WHY[part] for part in self.missing)


class ReadinessCheck:
    def __init__(self, leaders: LeaderTracker, catalog: Any, reactor: Any, deadline: float) -> None:
        """`deadline`: seconds a selection may take before the leader counts as missing."""
        self._leaders = leaders
        self._catalog = catalog
        self._reactor = reactor
        self._deadline = deadline
        self._waiters: list[defer.Deferred] = []  # the checks waiting for the one under way
        self._answered: tuple[float, Readiness] | None = None  # when, and what

    def check(self) -> defer.Deferred:
        """Fires with a Readiness: a recent one, the one under way, or a new one."""
        now = self._reactor.seconds()
        if self._answered is not None and now - self._answered[0] < KEEP:
            return defer.succeed(self._answered[1])
        waiter: defer.Deferred = defer.Deferred()  # a caller that goes away cancels only its own
        self._waiters.append(waiter)
        if len(self._waiters) == 1:
            defer.ensureDeferred(self._ask()).addBoth(self._done)
        return waiter

    def _done(self, result: Any) -> None:
        if isinstance(result, Readiness):
            self._answered = (self._reactor.seconds(), result)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.called:  # cancelled: its request went away
                waiter.callback(result)

    async def _ask(self) -> Readiness:
        leading, serving = await defer.gatherResults(
            [defer.ensureDeferred(self._leader()).addErrback(_not_ready, LEADER),
             defer.maybeDeferred(self._catalog.probe).addErrback(_not_ready, CATALOG)],
        )
        missing = tuple(part for part, ok in ((LEADER, leading is not None), (CATALOG, serving)) if not ok)
        return Readiness(leading, missing)

    async def _leader(self) -> int | None:
        found = self._leaders.leader()
        found.addTimeout(self._deadline, self._reactor)
        try:
            leader = await found
        except (NoLeaderAvailable, defer.TimeoutError):
            return None
        described = self._leaders.replicas[leader.replica_id].describe(wait_for_ready=False)
        try:  # it answers within the probe deadline; this bounds it all the same
            view = await described.addTimeout(self._deadline, self._reactor)
        except defer.TimeoutError:
            view = None
        if view is not None and view.leading:
            return leader.replica_id
        if view is None or view.taking_over:
            return None  # silent for now, or serving once its takeover is on a majority: not yet ready
        log.info("readiness: replica {id} no longer leads; a new leader will be selected", id=leader.replica_id)
        self._leaders.failed(leader)
        return None


def _not_ready(failure: Any, part: str) -> None:
    """An unexpected error asking a part: it is missing (and the error is logged), never a 500."""
    log.failure("readiness: asking the {part} failed", failure, part=part)
    return None

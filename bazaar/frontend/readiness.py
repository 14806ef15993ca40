"""Whether this front end can serve trades (GET /readyz): it knows an order leader that still
leads with a majority (its lease held), and the catalog answers its health check.

Asked of the backends each time, both at once, each within the probe deadline: the answer is
about now, not about the last request. A leader that no longer leads is reported as failed to
the tracker, so the next request (or readiness check) selects again; with no leader known, a
selection is started as a request would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from bazaar.frontend.leader import LeaderTracker, NoLeaderAvailable

log = Logger()

LEADER, CATALOG = "leader", "catalog"
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

    async def check(self) -> Readiness:
        leading, serving = await defer.gatherResults(
            [defer.ensureDeferred(self._leader()), self._catalog.probe()], consumeErrors=True,
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
        view = await self._leaders.replicas[leader.replica_id].describe(wait_for_ready=False)
        if view is not None and view.leading:
            return leader.replica_id
        if view is not None and view.taking_over:
            return None  # it will serve once its takeover is on a majority: not yet ready
        log.info("readiness: replica {id} no longer leads; a new leader will be selected", id=leader.replica_id)
        self._leaders.failed(leader, unreachable=view is None)
        return None

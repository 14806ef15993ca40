"""Which order replica leads, as the front end sees it: decisions only, no I/O.

A selection round probes every replica, then offers leadership to the healthy ones from the
highest id down; the first that accepts (AssignFollowers succeeds) leads, and every other
replica is its follower: one that is down or slow now is caught up by the leader once it
answers, instead of being left out until it restarts. The caller performs each step and
reports the outcome back.

Each elected leader carries a generation. A request that fails against a leader reports that
leader (with its generation); only if it is still the current one is it dropped. Requests that
failed against an older leader just retry on the newer one, so one crash costs one selection
however many requests noticed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Leader:
    replica_id: int
    generation: int


@dataclass(frozen=True)
class Assign:
    """Offer leadership to `leader_id`, with these followers; report back with `assigned`."""

    leader_id: int
    follower_ids: tuple[int, ...]


@dataclass(frozen=True)
class NoLeader:
    """The round ended without a leader."""

    reason: str


@dataclass(frozen=True)
class ProbeAgain:
    """Some replica above the best healthy one is up but still catching up: probe again
    (after a pause) and report with `probed` once more."""

    replica_ids: tuple[int, ...]


# Before the first leader of a front end is chosen, a replica that is up but still catching
# up (it has just started) is waited for this many probe rounds, so that when every replica
# is starting the highest id leads. Later selections never wait: that would slow failover.
PATIENT_ROUNDS = 10


class SelectionError(Exception):
    """A step was reported out of order (a bug in the caller, not a replica failure)."""


class LeaderSelection:
    def __init__(self, replica_ids: Iterable[int]) -> None:
        self.replica_ids: tuple[int, ...] = tuple(sorted(set(replica_ids), reverse=True))
        if not self.replica_ids:
            raise ValueError("at least one replica id is needed")
        self._current: Leader | None = None
        self._generation = 0
        # During a round: the healthy candidates not yet offered leadership, highest first.
        self._selecting = False
        self._probed = False
        self._candidates: list[int] = []
        self._offered: int | None = None
        self._ever_led = False
        self._patience = PATIENT_ROUNDS

    @property
    def current(self) -> Leader | None:
        return self._current

    @property
    def generation(self) -> int:
        """Bumped whenever the current leader changes (elected or dropped)."""
        return self._generation

    @property
    def selecting(self) -> bool:
        return self._selecting

    def start(self) -> tuple[int, ...]:
        """Begin a round: the current leader (if any) is dropped. Returns the ids to probe."""
        if self._selecting:
            raise SelectionError("a selection round is already under way")
        self._set_current(None)
        self._selecting = True
        self._probed = False
        self._candidates = []
        self._offered = None
        return self.replica_ids

    def probed(self, healthy: Iterable[int], catching_up: Iterable[int] = ()) -> Assign | NoLeader | ProbeAgain:
        """The probes are done; `healthy` are the ids that answered SERVING, `catching_up`
        those that answered NOT_SERVING (up, but not ready to lead yet)."""
        if not self._selecting or self._probed:
            raise SelectionError("probe results reported outside a round's probing step")
        answered = set(healthy)
        waiting = sorted(set(catching_up) - answered, reverse=True)
        best = max(answered, default=0)
        if not self._ever_led and self._patience > 0 and waiting and waiting[0] > best:
            self._patience -= 1
            return ProbeAgain(self.replica_ids)
        self._probed = True
        self._candidates = [i for i in self.replica_ids if i in answered]
        if not self._candidates:
            return self.abort("no order replica answered its health check")
        return self._offer_next()

    def assigned(self, accepted: bool) -> Leader | Assign | NoLeader:
        """The offered replica accepted leadership (True) or could not be reached (False)."""
        if self._offered is None:
            raise SelectionError("no leadership offer is outstanding")
        offered, self._offered = self._offered, None
        if not accepted:
            return self._offer_next()
        self._selecting = False
        self._candidates = []
        self._ever_led = True
        return self._set_current(offered)

    def abort(self, reason: str) -> NoLeader:
        """End the round without a leader (the caller's step failed unexpectedly)."""
        self._end_round()
        return NoLeader(reason)

    def failed(self, leader: Leader) -> bool:
        """A request failed against `leader`. True if that dropped the current leader."""
        if self._current is None or self._current != leader:
            return False
        self._set_current(None)
        return True

    def _offer_next(self) -> Assign | NoLeader:
        if not self._candidates:
            return self.abort("no healthy order replica accepted leadership")
        self._offered = self._candidates.pop(0)
        return Assign(self._offered, tuple(i for i in self.replica_ids if i != self._offered))

    def _end_round(self) -> None:
        self._selecting = False
        self._probed = False
        self._candidates = []
        self._offered = None

    def _set_current(self, replica_id: int | None) -> Leader | None:
        if replica_id is None and self._current is None:
            return None
        self._generation += 1
        self._current = None if replica_id is None else Leader(replica_id, self._generation)
        return self._current

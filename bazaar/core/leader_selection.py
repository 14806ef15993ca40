"""Which order replica leads, as the front end sees it: decisions only, no I/O.

A selection round asks every replica to describe itself, then:

1. A replica that leads (its epoch established, its lease held), or is taking over, is
   adopted as it is: a front end that starts, restarts, or runs beside another never deposes
   a working leader, and requests wait for a takeover under way instead of starting another.
2. While some replica still hears from a leader this front end cannot use (one that does not
   answer it: dying, frozen, or cut off from this front end alone), the round waits and asks
   again, for a bounded number of rounds: the followers' faith in a dead leader lapses within
   a lease. A leader that keeps its majority but does not answer this front end is not
   deposed: no leader can be had here until it answers or fails. Likewise, for the same
   bounded time, while the first candidate reaches a majority only through replicas that do
   not answer this front end (their channels from here may still be reconnecting after a
   heal): one of them may still follow a leader this round cannot see, and would refuse the
   candidate's promise.
3. Otherwise leadership is offered to the replicas that can lead, highest id first: ready
   (done starting) and reaching a majority of the replicas, itself included, so a replica cut
   off from the others is never picked. Before this front end's first leader, a higher replica
   that is still starting is waited for (bounded), so that the highest id leads when all start
   together. The first that accepts (AssignFollowers succeeds) leads; every other replica is
   its follower.

Each leader carries a generation. A request that fails against a leader reports that leader
(with its generation); only if it is still the current one is it dropped. Requests that
failed against an older leader just retry on the newer one, so one crash costs one selection
however many requests noticed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from bazaar.core.quorum import majority


@dataclass(frozen=True)
class Leader:
    replica_id: int
    generation: int


@dataclass(frozen=True)
class ReplicaView:
    """What a replica says of itself (Describe)."""

    replica_id: int
    ready: bool = True  # done starting (its rejoin attempt is over)
    leading: bool = False  # leads: its epoch is established and it holds its lease
    taking_over: bool = False
    epoch: int = 0
    leader_id: int = 0  # the leader it heard from within a lease (0: none; itself when leading)
    reachable: frozenset[int] = frozenset()  # the other replicas it reached within a lease


@dataclass(frozen=True)
class Assign:
    """Offer leadership to `leader_id`, with these followers; report back with `assigned`."""

    leader_id: int
    follower_ids: tuple[int, ...]
    # Why each replica that cannot lead was passed over (for the log, not the decision).
    skipped: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class NoLeader:
    """The round ended without a leader."""

    reason: str
    skipped: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class ProbeAgain:
    """Describe every replica again (after a pause) and report with `probed` once more."""

    reason: str


# Seconds a selection waits, asking again and again, for a dead leader's followers' faith to
# lapse (half a second) or, before the first leader, a higher replica to start.
PATIENCE = 1.0


class SelectionError(Exception):
    """A step was reported out of order (a bug in the caller, not a replica failure)."""


@dataclass
class _Round:
    candidates: list[int] = field(default_factory=list)
    offered: int | None = None
    probed: bool = False
    started: float = 0.0


class LeaderSelection:
    def __init__(self, replica_ids: Iterable[int]) -> None:
        self.replica_ids: tuple[int, ...] = tuple(sorted(set(replica_ids), reverse=True))
        if not self.replica_ids:
            raise ValueError("at least one replica id is needed")
        self.majority = majority(len(self.replica_ids))
        self._current: Leader | None = None
        self._generation = 0
        self._round: _Round | None = None
        self._ever_led = False

    @property
    def current(self) -> Leader | None:
        return self._current

    @property
    def generation(self) -> int:
        """Bumped whenever the current leader changes (elected or dropped)."""
        return self._generation

    @property
    def selecting(self) -> bool:
        return self._round is not None

    def start(self, now: float = 0.0) -> tuple[int, ...]:
        """Begin a round at time `now`: the current leader (if any) is dropped. Returns the ids
        to describe."""
        if self._round is not None:
            raise SelectionError("a selection round is already under way")
        self._set_current(None)
        self._round = _Round(started=now)
        return self.replica_ids

    def probed(
        self, views: Mapping[int, ReplicaView | None], now: float = 0.0,
    ) -> Leader | Assign | NoLeader | ProbeAgain:
        """Every replica's description (None: it did not answer), read by time `now`."""
        round_ = self._round
        if round_ is None or round_.probed:
            raise SelectionError("descriptions reported outside a round's probing step")
        answered = {i: v for i, v in views.items() if v is not None and i in self.replica_ids}
        leading = [v for v in answered.values() if v.leading or v.taking_over]
        if leading:
            return self._elected(max(leading, key=lambda v: (v.leading, v.epoch, v.replica_id)).replica_id)
        skipped = tuple(self._why_not(i, answered.get(i)) for i in self.replica_ids
                        if not self._can_lead(answered.get(i)))
        heard = self._live_leader(answered)
        patient = now - round_.started < PATIENCE
        if heard is not None and not patient:
            return self.abort(heard + ", which does not answer this front end", skipped)
        wait = heard or self._starting(answered) or self._through_silent(answered)
        if wait is not None and patient:
            return ProbeAgain(wait)
        round_.probed = True
        round_.candidates = [i for i in self.replica_ids if self._can_lead(answered.get(i))]
        if not round_.candidates:
            return self.abort("no order replica can lead: " + "; ".join(skipped), skipped)
        return self._offer_next(skipped)

    def assigned(self, accepted: bool) -> Leader | Assign | NoLeader:
        """The offered replica accepted leadership (True) or could not be reached (False)."""
        round_ = self._round
        if round_ is None or round_.offered is None:
            raise SelectionError("no leadership offer is outstanding")
        offered, round_.offered = round_.offered, None
        if not accepted:
            return self._offer_next((f"replica {offered} did not take leadership",))
        return self._elected(offered)

    def abort(self, reason: str, skipped: tuple[str, ...] = ()) -> NoLeader:
        """End the round without a leader (the caller's step failed unexpectedly)."""
        self._round = None
        return NoLeader(reason, skipped)

    def failed(self, leader: Leader) -> bool:
        """A request failed against `leader`. True if that dropped the current leader."""
        if self._current is None or self._current != leader:
            return False
        self._set_current(None)
        return True

    # -- internals --------------------------------------------------------------------------

    def _can_lead(self, view: ReplicaView | None) -> bool:
        return view is not None and view.ready and len(view.reachable & set(self.replica_ids)) + 1 >= self.majority

    def _why_not(self, replica_id: int, view: ReplicaView | None) -> str:
        if view is None:
            return f"replica {replica_id} did not answer"
        if not view.ready:
            return f"replica {replica_id} is starting (catching up)"
        reached = ", ".join(str(i) for i in sorted(view.reachable)) or "none"
        return f"replica {replica_id} reaches too few replicas to lead (reaches {reached})"

    @staticmethod
    def _live_leader(answered: Mapping[int, ReplicaView]) -> str | None:
        for view in sorted(answered.values(), key=lambda v: -v.replica_id):
            if view.leader_id:
                return f"replica {view.replica_id} still follows leader {view.leader_id}"
        return None

    def _through_silent(self, answered: Mapping[int, ReplicaView]) -> str | None:
        first = next((answered[i] for i in self.replica_ids if self._can_lead(answered.get(i))), None)
        if first is None or len(first.reachable & set(answered)) + 1 >= self.majority:
            return None
        silent = sorted(first.reachable - set(answered))
        return (f"replica {first.replica_id} reaches a majority only through replica {silent[-1]}, "
                "which does not answer this front end")

    def _starting(self, answered: Mapping[int, ReplicaView]) -> str | None:
        if self._ever_led:
            return None  # waiting for a restarted replica would slow failover
        best = max((i for i, v in answered.items() if self._can_lead(v)), default=0)
        starting = [i for i, v in answered.items() if not v.ready and i > best]
        return f"replica {max(starting)} is starting" if starting else None

    def _offer_next(self, skipped: tuple[str, ...]) -> Assign | NoLeader:
        round_ = self._round
        assert round_ is not None
        if not round_.candidates:
            return self.abort("no order replica that could lead accepted leadership", skipped)
        round_.offered = round_.candidates.pop(0)
        followers = tuple(i for i in self.replica_ids if i != round_.offered)
        return Assign(round_.offered, followers, skipped)

    def _elected(self, replica_id: int) -> Leader:
        self._round = None
        self._ever_led = True
        leader = self._set_current(replica_id)
        assert leader is not None
        return leader

    def _set_current(self, replica_id: int | None) -> Leader | None:
        if replica_id is None and self._current is None:
            return None
        self._generation += 1
        self._current = None if replica_id is None else Leader(replica_id, self._generation)
        return self._current

"""Standing for leadership, with no I/O: which epoch to stand for, when enough promises are in,
and whose log the new leader adopts. The caller makes the promises durable, asks the
followers, and reports each answer back.

1. Stand: an epoch above every epoch seen; the candidate promises it to itself, on disk.
2. Ask every follower for the same promise, with its log from where it parts from ours. A
   follower promises an epoch only above every one it promised before, and from then on
   refuses leaders of older epochs.
3. With promises from enough followers to make a majority with the candidate, adopt the most
   up-to-date promised log (by its last entry's epoch, then index: Raft's election rule) if it
   is ahead of ours. Any majority shares a replica with the majority that holds a committed
   entry, and the most up-to-date log of a majority holds every committed entry; so the new
   leader has them all (leader completeness).
4. A refusal names a newer epoch: stand again above it, a few times at most. A refusal from
   a follower that still hears from a live leader (within its lease) is final: that leader
   keeps its majority, and standing again would not change it.

The leader then appends its leader entry and serves nothing until that entry is on a majority
(`ReplicaCore.lead`, `Replication.committed_through`): only then is its whole history
acknowledged under its epoch (Zab's NEWLEADER), so an entry absent from its log can never
commit anywhere, and an answer "not logged" is definite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from bazaar.core.bounds import MAX_EPOCH
from bazaar.core.chain import GENESIS, Record
from bazaar.core.quorum import followers_needed
from bazaar.core.replica import LogPosition, ReplicaCore

ATTEMPTS = 3


@dataclass(frozen=True)
class Promised:
    """A follower promised the epoch; `records` is its log after `shared`, the last entry
    its log and the candidate's hold alike."""

    shared: int = -1
    shared_chain: bytes = GENESIS
    records: list[Record] = field(default_factory=list)

    @property
    def position(self) -> LogPosition | None:
        """How up to date the follower's log is; None when it holds nothing beyond ours."""
        if not self.records:
            return None
        return LogPosition(self.records[-1].epoch, self.records[-1].index)


@dataclass(frozen=True)
class Refused:
    """A follower refused: it has promised `epoch`, which is not below ours, or (`leader_alive`)
    it follows a leader that may still hold its lease."""

    epoch: int
    leader_alive: bool = False


@dataclass(frozen=True)
class Waiting:
    """Not every answer that could decide is in yet."""


@dataclass(frozen=True)
class Won:
    """Lead, after adopting `adopt` (a follower's log ahead of ours) when it is set."""

    adopt: Promised | None


@dataclass(frozen=True)
class StandAgain:
    """Refused for a newer epoch: stand again (call `stand`)."""


@dataclass(frozen=True)
class Lost:
    reason: str


Outcome = Waiting | Won | StandAgain | Lost


class Candidacy:
    def __init__(self, followers: Sequence[str], attempts: int = ATTEMPTS) -> None:
        self.followers = tuple(followers)
        # Promises that, with the candidate's own, make a majority of all the replicas.
        self.needed = followers_needed(len(self.followers))
        self._attempts = attempts
        self.attempt = 0
        self.epoch = 0
        self._seen = 0
        self._answers: dict[str, Promised | Refused | None] = {}

    def stand(self, core: ReplicaCore) -> int | None:
        """The epoch to stand for now (promise it to ourselves, then ask each follower), or
        None when the attempts, or the epochs (MAX_EPOCH), are used up."""
        epoch = core.next_epoch(self._seen)
        if self.attempt >= self._attempts or epoch > MAX_EPOCH:
            return None
        self.attempt += 1
        self.epoch = epoch
        self._answers = {}
        return self.epoch

    def answered(self, follower: str, answer: Promised | Refused | None) -> None:
        """A follower's answer to this attempt; None when it could not be read (down, frozen)."""
        if follower in self.followers and follower not in self._answers:
            self._answers[follower] = answer

    def outcome(self, core: ReplicaCore) -> Outcome:
        if core.epoch != self.epoch:
            return Lost(f"promised epoch {core.epoch} to another candidate while standing for {self.epoch}")
        promised = [a for a in self._answers.values() if isinstance(a, Promised)]
        if len(promised) >= self.needed:
            return Won(self._most_up_to_date(promised, core))
        if len(self._answers) < len(self.followers):
            return Waiting()
        refusals = [a for a in self._answers.values() if isinstance(a, Refused)]
        if any(a.leader_alive for a in refusals):
            return Lost("a follower still follows a leader within its lease")
        refused = [a.epoch for a in refusals]
        if refused and self.attempt < self._attempts:
            self._seen = max(refused)
            return StandAgain()
        if refused:
            return Lost(f"followers kept promising newer epochs (up to {max(refused)})")
        return Lost(f"only {len(promised)} of the {self.needed} promises needed: too few replicas to lead")

    @staticmethod
    def _most_up_to_date(promised: list[Promised], core: ReplicaCore) -> Promised | None:
        ahead = [p for p in promised if p.position is not None and p.position > core.position]
        return max(ahead, key=lambda p: p.position, default=None)  # type: ignore[arg-type, return-value]

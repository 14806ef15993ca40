"""The leader's view of its followers, with no I/O: where each one's log is known to match the
leader's, what to send it next, and how far the log is replicated.

Per follower: `match`, the last order known to be identical and durable there (None until it
first answers), and `prev`, the order after which the next batch starts. A conflicting answer
moves `prev` back by a step that doubles each time, so the point where two logs part is found
in O(log n) round trips.

Only *attached* followers hold back acknowledgements. A follower is attached once it has caught
up (within REATTACH_LAG orders of the leader) and detached when a call to it fails; the leader
keeps feeding a detached follower, which attaches again as soon as it has caught up. So a dead
or frozen follower costs one failed call, never a stalled trade, and a follower that comes
back is never left out until it restarts.
"""

from __future__ import annotations

from dataclasses import dataclass

# A follower this close behind catches up within one batch: waiting for it costs little.
REATTACH_LAG = 100


@dataclass
class Follower:
    prev: int
    match: int | None = None
    step: int = 1
    attached: bool = False


class Replication:
    def __init__(self) -> None:
        self._followers: dict[str, Follower] = {}

    @property
    def followers(self) -> list[str]:
        return sorted(self._followers)

    @property
    def attached(self) -> list[str]:
        return sorted(a for a, f in self._followers.items() if f.attached)

    def assign(self, addresses: list[str], leader_last: int) -> None:
        """A new follower set: each is first offered the leader's last order to match."""
        self._followers = {a: Follower(prev=leader_last) for a in addresses}

    def add(self, address: str, leader_last: int) -> None:
        self._followers[address] = Follower(prev=leader_last)

    def drop(self, address: str) -> None:
        self._followers.pop(address, None)

    def match(self, address: str) -> int | None:
        follower = self._followers.get(address)
        return None if follower is None else follower.match

    def to_send(self, address: str, last_accepted: int, limit: int) -> tuple[int, range] | None:
        """(prev, order numbers) for the next batch to `address`, or None when it is up to date."""
        follower = self._followers.get(address)
        if follower is None:
            return None
        if follower.match is not None and follower.match >= last_accepted:
            return None
        prev = min(follower.prev, last_accepted)
        return prev, range(prev + 1, min(last_accepted, prev + limit) + 1)

    def matched(self, address: str, through: int, last_accepted: int) -> None:
        follower = self._followers.get(address)
        if follower is not None:
            follower.match = follower.prev = through
            follower.step = 1
            if through >= last_accepted - REATTACH_LAG:
                follower.attached = True

    def gap(self, address: str, follower_last: int) -> None:
        follower = self._followers.get(address)
        if follower is not None:
            follower.prev = min(follower.prev, follower_last)
            if follower.match is not None and follower.match > follower_last:
                follower.match = follower_last

    def conflict(self, address: str) -> None:
        follower = self._followers.get(address)
        if follower is not None:
            follower.prev = max(-1, follower.prev - follower.step)
            follower.step *= 2

    def unreachable(self, address: str) -> None:
        """A call failed: stop waiting for this follower until it has caught up again."""
        follower = self._followers.get(address)
        if follower is not None:
            follower.attached = False

    def replicated_through(self, last_durable: int) -> int:
        """Highest number durable here and known identical on every attached follower."""
        positions = [last_durable]
        positions += [f.match for f in self._followers.values() if f.attached and f.match is not None]
        return min(positions)

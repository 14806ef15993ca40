"""The leader's view of its followers, with no I/O: where each one's log is known to match the
leader's, what to send it next, and how far the log is replicated.

Per follower: `match`, the last order known to be identical and durable there (None until it
first answers), and `prev`, the order after which the next batch starts. A conflicting answer
moves `prev` back by a step that doubles each time, so the point where two logs part is found
in O(log n) round trips.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Follower:
    prev: int
    match: int | None = None
    step: int = 1


class Replication:
    def __init__(self) -> None:
        self._followers: dict[str, Follower] = {}

    @property
    def followers(self) -> list[str]:
        return sorted(self._followers)

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

    def matched(self, address: str, through: int) -> None:
        follower = self._followers.get(address)
        if follower is not None:
            follower.match = follower.prev = through
            follower.step = 1

    def gap(self, address: str, follower_last: int) -> None:
        follower = self._followers.get(address)
        if follower is not None:
            follower.prev = min(follower.prev, follower_last)

    def conflict(self, address: str) -> None:
        follower = self._followers.get(address)
        if follower is not None:
            follower.prev = max(-1, follower.prev - follower.step)
            follower.step *= 2

    def replicated_through(self, last_durable: int) -> int:
        """Highest number durable here and known identical on every current follower."""
        positions = [last_durable]
        positions += [-1 if f.match is None else f.match for f in self._followers.values()]
        return min(positions)

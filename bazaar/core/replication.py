"""The leader's view of its followers, with no I/O: what each holds, what to send it next, and
how far the log is replicated.

A follower whose position is not known yet (just assigned) holds `None` until it answers; it
holds back acknowledgements until then, or until it is dropped.
"""

from __future__ import annotations


class Replication:
    def __init__(self) -> None:
        self._acked: dict[str, int | None] = {}

    @property
    def followers(self) -> list[str]:
        return sorted(self._acked)

    def assign(self, addresses: list[str]) -> None:
        """A new follower set from the front end; positions unknown until each answers."""
        self._acked = {a: None for a in addresses}

    def add(self, address: str, last: int) -> None:
        """A rejoined follower that holds every order up to `last`."""
        self._acked[address] = last

    def drop(self, address: str) -> None:
        self._acked.pop(address, None)

    def position(self, address: str) -> int | None:
        return self._acked.get(address)

    def acknowledged(self, address: str, last: int) -> None:
        """The follower reports `last` as its last durable order."""
        if address in self._acked:
            self._acked[address] = last

    def to_send(self, address: str, last_accepted: int, limit: int) -> range | None:
        """Order numbers to send next to `address`: empty to ask its position, None for nothing."""
        if address not in self._acked:
            return None
        acked = self._acked[address]
        if acked is None:
            return range(0)
        if acked >= last_accepted:
            return None
        return range(acked + 1, min(last_accepted, acked + limit) + 1)

    def replicated_through(self, last_durable: int) -> int:
        """Highest number durable here and on every current follower."""
        positions = [last_durable]
        positions += [-1 if acked is None else acked for acked in self._acked.values()]
        return min(positions)

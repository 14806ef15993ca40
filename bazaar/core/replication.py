"""The leader's view of its followers, with no I/O: where each one's log is known to match the
leader's, what to send it next, and how far the log is committed (the commit rule).

Per follower: `match`, the last order known to be identical and durable there (None until it
first answers), and `prev`, the order after which the next batch starts. A conflicting answer
moves `prev` back by a step that doubles each time, so the point where two logs part is found
in O(log n) round trips.

An entry is committed once an entry at or after it *of the leader's own epoch* is durable on a
majority of the replicas: for three, any two of them, the leader's own copy counted once it is
on its disk, so a slow fsync of the leader's is masked by the two followers' (unless they share
its disk, and its stall). Counting a majority for an older epoch's entry alone is not enough:
a later leader may still replace it (Raft's figure 8), so a new leader's first entry, its
leader entry, is what commits what it inherited. A follower that lags or cannot be reached
costs nothing; a leader cut off from its followers commits nothing. The takeover needs a
majority's promise too, so every committed entry is on a replica that any later leader
either is or reads from.

A follower is *reachable* once it answers and until a call to it fails; the leader takes a
trade only while a majority is reachable, so a trade it cannot commit is refused up front.
"""

from __future__ import annotations

from dataclasses import dataclass

from bazaar.core.quorum import followers_needed


@dataclass
class Follower:
    prev: int
    match: int | None = None
    step: int = 1
    reachable: bool = False
    # Until when it reads our log on a rejoin stream, as far as we know (-inf: it does not).
    streaming_until: float = float("-inf")


class Replication:
    def __init__(self) -> None:
        self._followers: dict[str, Follower] = {}

    @property
    def followers(self) -> list[str]:
        return sorted(self._followers)

    @property
    def reachable(self) -> list[str]:
        return sorted(a for a, f in self._followers.items() if f.reachable)

    @property
    def needed(self) -> int:
        """Followers that, with the leader, make a majority of the replicas."""
        return followers_needed(len(self._followers))

    @property
    def quorum_reachable(self) -> bool:
        return len(self.reachable) >= self.needed

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

    def to_send(self, address: str, last_index: int, limit: int) -> tuple[int, range] | None:
        """(prev, order numbers) for the next batch to `address`, or None when it is up to date."""
        follower = self._followers.get(address)
        if follower is None:
            return None
        if follower.match is not None and follower.match >= last_index:
            return None
        prev = min(follower.prev, last_index)
        return prev, range(prev + 1, min(last_index, prev + limit) + 1)

    def matched(self, address: str, through: int) -> None:
        follower = self._followers.get(address)
        if follower is not None:
            follower.match = follower.prev = through
            follower.step = 1
            follower.reachable = True

    def gap(self, address: str, follower_last: int) -> None:
        follower = self._followers.get(address)
        if follower is not None:
            follower.reachable = True
            follower.prev = min(follower.prev, follower_last)
            if follower.match is not None and follower.match > follower_last:
                follower.match = follower_last

    def conflict(self, address: str) -> None:
        follower = self._followers.get(address)
        if follower is not None:
            follower.reachable = True
            follower.prev = max(-1, follower.prev - follower.step)
            follower.step *= 2

    def heard(self, address: str) -> None:
        """It answered, and the answer says nothing of where its log matches ours."""
        follower = self._followers.get(address)
        if follower is not None:
            follower.reachable = True

    def stream(self, address: str, until: float) -> None:
        """`address` reads our log on a rejoin stream; with no more word of it, until `until`.
        A follower added afresh (its stream ended) starts without."""
        follower = self._followers.get(address)
        if follower is not None:
            follower.streaming_until = until

    def streaming(self, address: str, now: float) -> bool:
        """Whether `address` should get heartbeats only: it reads our log on a stream (entries
        sent besides would race it), and the other reachable followers make a majority without
        it. Else its entries may be what commits trades, and it is fed as usual."""
        follower = self._followers.get(address)
        if follower is None or follower.streaming_until <= now:
            return False
        return len([a for a in self.reachable if a != address]) >= self.needed

    def spare(self, address: str, passed_over: set[str]) -> bool:
        """Whether `address`'s next entries may wait a little (the leader's thrift): other
        followers, reachable, as far along as it and not in `passed_over` (the leader does not
        count on them: frozen, cut off, slow, reading a rejoin stream, or refusing its
        entries), make a majority with the leader without it. They are the ones before it in
        address order, so of two followers that can both be counted on, the first is always fed
        at once. Only a matched follower is spared: one catching up, or not heard yet, is fed
        at once."""
        me = self._followers.get(address)
        if me is None or me.match is None:
            return False
        ahead = [
            a for a, f in self._followers.items()
            if a < address and a not in passed_over and f.reachable and f.match is not None and f.match >= me.match
        ]
        return len(ahead) >= self.needed

    def unreachable(self, address: str) -> None:
        follower = self._followers.get(address)
        if follower is not None:
            follower.reachable = False

    def committed_through(self, last_durable: int, first_own: int) -> int | None:
        """The highest index committed: durable on a majority of the replicas (the leader up to
        `last_durable`, each follower up to its match, which is known identical to ours), and
        at or after `first_own`, the leader's first entry of its epoch. None while no entry of
        the epoch is on a majority yet. The leader need not be one of that majority: it writes
        its own copy while the followers write theirs, and a trade waits for the second
        fastest of three fsyncs, not for the leader's (Raft's parallel leader write)."""
        durable = sorted([last_durable, *(-1 if f.match is None else f.match for f in self._followers.values())],
                         reverse=True)
        through = durable[self.needed]
        return through if first_own >= 0 and through >= first_own else None

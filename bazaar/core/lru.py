"""The front end's stock cache: least-recently-used, with fills that an invalidation can void.

A cache miss looks the stock up in the catalog, which takes a while. If a trade's invalidation
arrives during that lookup, the value on its way back may predate the trade; storing it would
serve the old quantity until the next trade. So a fill is opened before the lookup
(`begin_fill`) and closed after it (`complete_fill`), and an invalidation voids every fill of
that name that is still open: its value is dropped instead of stored.

Only open fills are remembered, never names that were merely invalidated, so names a client
makes up cannot grow the cache's memory beyond its capacity plus the lookups in flight.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")

# The event log keeps this many of the latest events: enough to plot an evaluation run's
# replacements, bounded whatever clients do.
EVENTS_KEPT = 10_000


@dataclass(frozen=True)
class CacheEvent:
    """Something that changed what the cache holds: insert, evict or invalidate."""

    seq: int
    time: float
    kind: str
    name: Hashable


class FillToken:
    """Identifies one open fill; compared by identity only."""

    __slots__ = ()


class LRUCache(Generic[V]):
    def __init__(self, capacity: int, now: Callable[[], float] = lambda: 0.0) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a whole number >= 1, got {capacity!r}")
        self.capacity = capacity
        self._now = now
        self._events: deque[CacheEvent] = deque(maxlen=EVENTS_KEPT)
        self._next_seq = 0
        self._entries: OrderedDict[Hashable, V] = OrderedDict()  # oldest use first
        self._open_fills: dict[Hashable, set[FillToken]] = {}
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.invalidations = 0  # invalidate() calls: trades this front end saw, and pushes
        self.invalidated = 0  # of those, the ones that dropped a cached entry

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: Hashable) -> bool:
        """Whether `name` is cached, without counting a hit or miss or refreshing it."""
        return name in self._entries

    def get(self, name: Hashable) -> V | None:
        """The cached value (now the most recently used), or None on a miss."""
        try:
            value = self._entries[name]
        except KeyError:
            self.misses += 1
            return None
        self._entries.move_to_end(name)
        self.hits += 1
        return value

    def begin_fill(self, name: Hashable) -> FillToken:
        """Call before looking `name` up elsewhere; pass the token to complete or abandon."""
        token = FillToken()
        self._open_fills.setdefault(name, set()).add(token)
        return token

    def complete_fill(self, name: Hashable, token: FillToken, value: V) -> bool:
        """Store `value` unless `name` was invalidated since the token; True if stored."""
        if not self._close(name, token):
            return False
        if name not in self._entries:
            self._record("insert", name)
        self._entries[name] = value
        self._entries.move_to_end(name)
        while len(self._entries) > self.capacity:
            evicted, _ = self._entries.popitem(last=False)
            self.evictions += 1
            self._record("evict", evicted)
        return True

    def abandon_fill(self, name: Hashable, token: FillToken) -> None:
        """The lookup failed or found nothing: close the fill without storing anything."""
        self._close(name, token)

    def invalidate(self, name: Hashable) -> None:
        """Drop `name` and void its open fills."""
        self.invalidations += 1
        if self._entries.pop(name, None) is not None:
            self.invalidated += 1
            self._record("invalidate", name)
        self._open_fills.pop(name, None)

    def invalidate_all(self) -> None:
        """Drop every entry and void every open fill (a new leader cannot tell which names
        its predecessor's pushes missed)."""
        for name in list(self._entries):
            self.invalidate(name)
        self._open_fills.clear()

    def names(self) -> list[Hashable]:
        """What is cached, least recently used first."""
        return list(self._entries)

    def events(self, since: int = -1) -> list[CacheEvent]:
        """The kept events numbered above `since`, oldest first."""
        return [e for e in self._events if e.seq > since]

    def _record(self, kind: str, name: Hashable) -> None:
        self._events.append(CacheEvent(self._next_seq, self._now(), kind, name))
        self._next_seq += 1

    def open_fills(self) -> int:
        """How many fills are open (for tests and diagnostics)."""
        return sum(len(tokens) for tokens in self._open_fills.values())

    def _close(self, name: Hashable, token: FillToken) -> bool:
        tokens = self._open_fills.get(name)
        if tokens is None or token not in tokens:
            return False
        tokens.discard(token)
        if not tokens:
            del self._open_fills[name]
        return True

"""What the bench measured, as plain data: one load (the same whichever loader ran it), one
failover, and everything together."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.keys import KeyCost
from bench.profile import Profile


@dataclass(frozen=True)
class LoadResult:
    loader: str
    seconds: float
    requests: int  # complete answers, any status
    failures: int  # answers >= 400 and connection errors
    p50: float | None  # seconds
    p99: float | None
    loader_cpu: float | None = None  # CPU seconds the loader used

    @property
    def successes(self) -> int:
        return max(0, self.requests - self.failures)

    @property
    def per_second(self) -> float:
        """Successful requests per second."""
        return self.successes / self.seconds if self.seconds > 0 else 0.0

    @property
    def loader_share(self) -> float | None:
        """The loader's CPU use as a fraction of one core over the run."""
        if self.loader_cpu is None or self.seconds <= 0:
            return None
        return self.loader_cpu / self.seconds


def combined(parts: list[LoadResult]) -> LoadResult:
    """Loads of one kind run in turns with another, as one: counts and times add up, the median
    is the request-weighted mean of the parts' medians and the p99 the worst part's (percentiles
    do not combine exactly; this errs on the slow side)."""
    requests = sum(p.requests for p in parts)
    medians = [(p.p50, p.requests) for p in parts if p.p50 is not None]
    cpu = [p.loader_cpu for p in parts if p.loader_cpu is not None]
    return LoadResult(
        loader=parts[0].loader,
        seconds=sum(p.seconds for p in parts),
        requests=requests,
        failures=sum(p.failures for p in parts),
        p50=sum(m * n for m, n in medians) / requests if medians and requests else None,
        p99=max((p.p99 for p in parts if p.p99 is not None), default=None),
        loader_cpu=sum(cpu) if len(cpu) == len(parts) else None,
    )


@dataclass(frozen=True)
class Pair:
    """A load on Bazaar and the same load on its bare baseline, run in turns."""
    measured: LoadResult
    baseline: LoadResult

    @property
    def ratio(self) -> float | None:
        return self.measured.per_second / self.baseline.per_second if self.baseline.per_second else None


@dataclass(frozen=True)
class TradeCpu:
    """What the cluster's processes spent over the trade loads at one number of connections:
    user plus system CPU seconds by role, the trades answered, and the front end's batches to
    the leader with the orders they carried."""
    seconds: dict[str, float]  # by ROLES
    trades: int
    batches: float
    orders: float

    def per_trade(self, role: str) -> float | None:
        """CPU seconds a trade of `role` (or of them all: "all")."""
        spent = sum(self.seconds.values()) if role == "all" else self.seconds.get(role)
        return spent / self.trades if spent is not None and self.trades else None

    @property
    def orders_per_batch(self) -> float | None:
        return self.orders / self.batches if self.batches else None


# The processes of a trade load by what they do in it; of the followers, the one that spent more
# first (the one the leader counts on; the other is spared: order/feeds.py).
ROLES = ("front end", "leader", "busier follower", "other follower", "catalog")


@dataclass(frozen=True)
class Failover:
    signal_name: str
    leader: int
    gap: float | None  # seconds from the signal to the first success sent after it
    requests: int
    errors: int
    error_kinds: tuple[str, ...]


@dataclass(frozen=True)
class CallFloor:
    """Seconds one internal call takes with no Bazaar code (bench/call_floor.py): answered in
    the server's handler thread, and after a hop into its reactor thread."""
    direct: float
    hop: float


@dataclass(frozen=True)
class Settings:
    seconds: float  # of each load
    connections: int  # of the GET loads
    history: int  # the largest history seeded for the history, memory and catch-up measures
    profile_seconds: float  # 0: no profile
    curve: tuple[int, ...] = (1, 4, 16, 64, 256)  # connections of the trade loads
    floor_calls: int = 2000  # calls of each kind in a turn of bench/call_floor.py
    floor_turns: int = 3

    @property
    def histories(self) -> list[int]:
        """The histories measured: the standard ones up to `history`, and `history` itself."""
        return sorted({*(h for h in HISTORIES if h < self.history), self.history})


HISTORIES = (10_000, 100_000, 1_000_000)


@dataclass
class HistoryLevel:
    """A cluster on a seeded history of `orders`, beside an empty one started with it."""
    orders: int
    seeding: float | None = None  # seconds to write it offline (not a measure of the product)
    catch_up: float | None = None  # from the lagging replica's start until its log is full
    catch_up_listening: float | None = None  # from its start until it listened
    trades: LoadResult | None = None  # on the seeded cluster, in turns with...
    empty: LoadResult | None = None  # ...the same load on the empty one
    resident: dict[str, int | None] = field(default_factory=dict)  # per process, bytes, after the loads
    empty_resident: dict[str, int | None] = field(default_factory=dict)
    keys: KeyCost | None = None  # on the seeded log
    empty_keys: KeyCost | None = None  # on an empty log, measured just before


@dataclass
class Results:
    cached: Pair | None = None  # cached GET /stocks/<name> and the bare GET route
    same_answer: list[str] = field(default_factory=list)  # how the bare routes' answers compare
    trades: dict[int, Pair] = field(default_factory=dict)  # by connections: trades and the bare POST route
    trade_cpu: dict[int, TradeCpu] = field(default_factory=dict)  # by connections, over those trade loads
    trades_plaintext: LoadResult | None = None  # trades with TLS off: what mutual TLS costs
    plaintext_connections: int = 0
    lookups: Pair | None = None  # GET /orders/<n> and the bare GET /orders route
    lookup_numbers: range = range(0)  # the orders the lookups cycled through
    # Per load profiled: per process, its profile or why there is none.
    profiles: dict[str, dict[str, Profile | str]] = field(default_factory=dict)
    failovers: list[Failover] = field(default_factory=list)
    history: list[HistoryLevel] = field(default_factory=list)  # by orders, ascending
    checks: list[str] = field(default_factory=list)  # consistency checks passed, for the notes
    call_floor: CallFloor | str | None = None  # what one internal call costs, or why it is unknown

    def largest_history(self) -> HistoryLevel | None:
        return self.history[-1] if self.history else None

    def at_history(self, orders: int) -> HistoryLevel | None:
        return next((h for h in self.history if h.orders == orders), None)

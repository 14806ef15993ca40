"""What the bench measured, as plain data: one load (the same whichever loader ran it), one
failover, and everything together."""

from __future__ import annotations

from dataclasses import dataclass, field

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
class Failover:
    signal_name: str
    leader: int
    gap: float | None  # seconds from the signal to the first success sent after it
    requests: int
    errors: int
    error_kinds: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    seconds: float  # of each load
    connections: int
    history: int  # orders seeded for the history and catch-up measures
    profile_seconds: float  # 0: no profile


@dataclass
class Results:
    cached: LoadResult | None = None
    bare: LoadResult | None = None
    same_answer: str = ""  # how the bare server's answer compares with the front end's
    trades: LoadResult | None = None
    trades_alone: LoadResult | None = None  # one connection: the latency of one trade
    trades_plaintext: LoadResult | None = None  # the same load with TLS off: what mutual TLS costs
    lookups: LoadResult | None = None
    lookups_over: int = 0  # orders the lookups drew from
    # Per load profiled: per process, its profile or why there is none.
    profiles: dict[str, dict[str, Profile | str]] = field(default_factory=dict)
    failovers: list[Failover] = field(default_factory=list)
    seeding: float | None = None
    catch_up: float | None = None  # from the lagging replica's start until its log is full
    catch_up_listening: float | None = None  # from its start until it listened
    history_trades: LoadResult | None = None
    checks: list[str] = field(default_factory=list)  # consistency checks passed, for the notes

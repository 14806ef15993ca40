"""When the clients trade: bursts separated by idle pauses, one seeded timeline for all of them.

All clients share the timeline, so a pause is a pause of the whole cluster: no client starts a
trade in it (a trade already under way, or its retries, may finish in it). Some pauses are
long (LONG_PAUSE), so that a fault can hit a cluster with nothing to do, and the next trade
finds whatever the fault left behind.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

BURST = (1.5, 5.0)  # seconds of trading
SHORT_PAUSE = (0.1, 0.6)
LONG_PAUSE = (1.2, 2.5)
LONG_SHARE = 0.35  # of the pauses


@dataclass(frozen=True)
class Pause:
    start: float  # seconds since the run started
    end: float

    @property
    def long(self) -> bool:
        return self.end - self.start >= LONG_PAUSE[0]


class Traffic:
    def __init__(self, pauses: list[Pause]) -> None:
        self.pauses = pauses

    @classmethod
    def seeded(cls, rng: random.Random, duration: float) -> Traffic:
        """Bursts and pauses from 0 to `duration` (the run starts with a burst)."""
        pauses, t = [], 0.0
        while True:
            t += rng.uniform(*BURST)
            if t >= duration:
                return cls(pauses)
            length = rng.uniform(*(LONG_PAUSE if rng.random() < LONG_SHARE else SHORT_PAUSE))
            pauses.append(Pause(t, t + length))
            t += length

    @classmethod
    def none(cls) -> Traffic:
        """Trading all the time."""
        return cls([])

    def pause_at(self, t: float) -> Pause | None:
        """The pause `t` falls in, if any."""
        return next((p for p in self.pauses if p.start <= t < p.end), None)

    def next_long_pause(self, t: float) -> Pause | None:
        """The first long pause starting at or after `t`."""
        return next((p for p in self.pauses if p.long and p.start >= t), None)

"""The fault injector: one fault at a time, chosen by a seeded generator.

A fault is either a SIGKILL followed (after a short random pause) by a restart with the same
command, or a SIGSTOP for 0.5-3 s followed by SIGCONT. The next fault waits until the faulted
process is back (listening again, or continued). The current leader (asked from GET /leader)
is the target of at least every other fault.
"""

from __future__ import annotations

import random
import signal
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from twisted.internet.task import deferLater

from bazaar.chaos.processes import (
    CATALOG, FRONTEND, POLL, REPLICA_IDS, STARTUP_DEADLINE, ChaosCluster, ChaosError, replica_name,
)

KILL = "kill+restart"
FREEZE = "stop+cont"
KINDS = (KILL, FREEZE)
LEADER_SHARE = 0.4  # chance of the leader after a fault that was the leader
KILL_PAUSE = (0.1, 1.5)  # seconds between SIGKILL and restart
FREEZE_TIME = (0.5, 3.0)
MIN_GAP = 0.5  # seconds between one fault's recovery and the next fault


@dataclass(frozen=True)
class FaultPlan:
    kind: str
    target: str  # a process name: catalog, frontend, order-N
    was_leader: bool
    pause: float  # the kill's pause before restart, or the freeze's length


@dataclass(frozen=True)
class Fault:
    at: float  # seconds since the run started
    kind: str
    target: str
    was_leader: bool
    pause: float
    back: float  # when the process was back (listening again, or continued)


def choose_fault(rng: random.Random, leader: int | None, previous_hit_leader: bool) -> FaultPlan:
    """The next fault. The leader is chosen whenever the previous fault missed it."""
    kind = rng.choice(KINDS)
    pause = rng.uniform(*(KILL_PAUSE if kind == KILL else FREEZE_TIME))
    replicas = [replica_name(i) for i in REPLICA_IDS]
    if leader is not None and (not previous_hit_leader or rng.random() < LEADER_SHARE):
        return FaultPlan(kind, replica_name(leader), True, pause)
    others = [r for r in replicas if leader is None or r != replica_name(leader)]
    if leader is None:
        # Nobody could say who leads: any replica, leader or not.
        return FaultPlan(kind, rng.choice(replicas), False, pause)
    return FaultPlan(kind, rng.choice([*others, CATALOG, FRONTEND]), False, pause)


class FaultInjector:
    def __init__(
        self,
        reactor: Any,
        cluster: ChaosCluster,
        rng: random.Random,
        every: float,
        clock: Callable[[], float],
        leader: Callable[[], Awaitable[int | None]],
        say: Callable[[str], None],
    ) -> None:
        self._reactor = reactor
        self._cluster = cluster
        self._rng = rng
        self._every = every
        self._clock = clock
        self._leader = leader
        self._say = say
        self.faults: list[Fault] = []

    async def run(self, end: float) -> None:
        """Inject faults until `end`; returns once the last faulted process is back."""
        previous_hit_leader = True  # so the first fault may go anywhere
        next_at = self._clock() + self._every
        while True:
            await self._sleep(min(next_at, end) - self._clock())
            if self._clock() >= end:
                return
            await self.restart_crashed()
            plan = choose_fault(self._rng, await self._leader(), previous_hit_leader)
            started = self._clock()
            await self._inject(plan)
            fault = Fault(started, plan.kind, plan.target, plan.was_leader, plan.pause, self._clock())
            self.faults.append(fault)
            self._say(
                f"  t={fault.at:6.1f}s {fault.kind:<12} {fault.target:<9}"
                f"{' (leader)' if fault.was_leader else '         '} back after {fault.back - fault.at:.1f} s"
            )
            previous_hit_leader = plan.was_leader
            next_at = max(started + self._every, self._clock() + MIN_GAP)

    async def _inject(self, plan: FaultPlan) -> None:
        cluster, name = self._cluster, plan.target
        if plan.kind == FREEZE:
            cluster.send(name, signal.SIGSTOP)
            try:
                await self._sleep(plan.pause)
            finally:
                cluster.send(name, signal.SIGCONT)
            return
        cluster.send(name, signal.SIGKILL)
        await self._until(lambda: cluster.exited(name), 10.0, f"{name} to die after SIGKILL")
        await self._sleep(plan.pause)
        await self._start(name)

    async def restart_crashed(self) -> None:
        """Restart any process that exited without being killed (it is reported at the end)."""
        for name in self._cluster.reap_unexpected():
            self._say(f"  {name} exited on its own; restarting it")
            await self._start(name)

    async def _start(self, name: str) -> None:
        cluster = self._cluster
        cluster.spawn(name)
        await self._until(lambda: cluster.is_up(name), STARTUP_DEADLINE, f"{name} to listen again")

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            await deferLater(self._reactor, seconds)

    async def _until(self, condition: Callable[[], bool], deadline: float, what: str) -> None:
        end = self._clock() + deadline
        while not condition():
            if self._clock() > end:
                raise ChaosError(f"timed out after {deadline:g} s waiting for {what}")
            await self._sleep(POLL)

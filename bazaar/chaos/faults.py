"""The fault injector: a seeded schedule of faults, each hitting one process or two at once.

A hit is either a SIGKILL followed (after a random pause) by a restart with the same command,
or a SIGSTOP followed (after a random time) by SIGCONT: 0.1-1.5 s and 0.5-3 s alone, 1-7 s
and 2-8 s when two processes are hit at once. A fault is one of three classes:

- single: one process, the current leader (asked from GET /leader) whenever the previous fault
  missed it, and with probability LEADER_SHARE otherwise; else a follower, the catalog or the
  front end;
- two replicas: two of the three at once, so no majority is left; the leader is among them
  whenever the previous fault missed it, and with probability TWO_REPLICAS_LEADER_SHARE
  otherwise;
- leader+catalog: the leader and the catalog at once.

The classes come from a shuffled deck (DECK): every round of four faults holds two single
faults and one of each double class. The hits of one fault start together or within
MAX_OFFSET of each other, each has a kind and a length of its own and ends on its own time;
the next fault waits until every process is back (listening again, or continued). With
probability IDLE_SHARE a fault waits for the clients' next long pause (traffic.py), so that it
hits an idle cluster.
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
from bazaar.chaos.traffic import Traffic

KILL = "kill+restart"
FREEZE = "stop+cont"
KINDS = (KILL, FREEZE)
SINGLE = "single"
TWO_REPLICAS = "two replicas"
LEADER_CATALOG = "leader+catalog"
CLASSES = (SINGLE, TWO_REPLICAS, LEADER_CATALOG)
DECK = (SINGLE, SINGLE, TWO_REPLICAS, LEADER_CATALOG)  # one round of faults, shuffled
LEADER_SHARE = 0.4  # chance of the leader in a single fault after a fault that was the leader
TWO_REPLICAS_LEADER_SHARE = 0.6  # likewise, of the leader among two replicas
KILL_PAUSE = (0.1, 1.5)  # seconds between SIGKILL and restart
FREEZE_TIME = (0.5, 3.0)
# The hits of a fault of two processes last longer, often beyond the front end's request
# deadline (4 s): trades then meet a cluster without a majority, not just a slow one.
DOUBLE_KILL_PAUSE = (1.0, 7.0)
DOUBLE_FREEZE_TIME = (2.0, 8.0)
MAX_OFFSET = 0.5  # seconds between the first and a later hit of one fault
MIN_GAP = 0.5  # seconds between one fault's recovery and the next fault
IDLE_SHARE = 0.25  # chance that a fault waits for the clients' next long pause
IDLE_MARGIN = 0.3  # seconds into the pause, for the trades under way to finish


@dataclass(frozen=True)
class HitPlan:
    kind: str
    target: str  # a process name: catalog, frontend, order-N
    was_leader: bool
    pause: float  # the kill's pause before restart, or the freeze's length
    offset: float  # seconds after the fault's start


@dataclass(frozen=True)
class FaultPlan:
    fault_class: str
    hits: tuple[HitPlan, ...]

    @property
    def was_leader(self) -> bool:
        return any(h.was_leader for h in self.hits)


@dataclass(frozen=True)
class Hit:
    kind: str
    target: str
    was_leader: bool
    at: float  # seconds since the run started
    pause: float
    back: float  # when the process was back (listening again, or continued)


@dataclass(frozen=True)
class Fault:
    at: float  # the first hit's start
    fault_class: str
    hits: tuple[Hit, ...]
    back: float  # when every process hit was back
    idle: bool = False  # whether it started in a pause of the clients

    @property
    def was_leader(self) -> bool:
        return any(h.was_leader for h in self.hits)

    @property
    def leader_at(self) -> float | None:
        """When the leader was hit (None: it was not)."""
        return min((h.at for h in self.hits if h.was_leader), default=None)

    @property
    def kind(self) -> str:
        return " & ".join(dict.fromkeys(h.kind for h in self.hits))

    @property
    def target(self) -> str:
        return "+".join(h.target for h in self.hits)

    @property
    def pause(self) -> float:
        return max((h.pause for h in self.hits), default=0.0)


def _hit(rng: random.Random, target: str, was_leader: bool, double: bool) -> HitPlan:
    kind = rng.choice(KINDS)
    if kind == KILL:
        pause = rng.uniform(*(DOUBLE_KILL_PAUSE if double else KILL_PAUSE))
    else:
        pause = rng.uniform(*(DOUBLE_FREEZE_TIME if double else FREEZE_TIME))
    return HitPlan(kind, target, was_leader, pause, 0.0)


def _targets(
    rng: random.Random, leader: int | None, previous_hit_leader: bool, fault_class: str
) -> list[tuple[str, bool]]:
    replicas = [replica_name(i) for i in REPLICA_IDS]
    if leader is None:
        # Nobody could say who leads: replicas picked blindly, none counted as the leader.
        if fault_class == SINGLE:
            return [(rng.choice(replicas), False)]
        if fault_class == TWO_REPLICAS:
            return [(r, False) for r in rng.sample(replicas, 2)]
        return [(rng.choice(replicas), False), (CATALOG, False)]
    lead = replica_name(leader)
    others = [r for r in replicas if r != lead]
    if fault_class == LEADER_CATALOG:
        return [(lead, True), (CATALOG, False)]
    if fault_class == TWO_REPLICAS:
        if not previous_hit_leader or rng.random() < TWO_REPLICAS_LEADER_SHARE:
            return [(lead, True), (rng.choice(others), False)]
        return [(r, False) for r in rng.sample(others, 2)]
    if not previous_hit_leader or rng.random() < LEADER_SHARE:
        return [(lead, True)]
    return [(rng.choice([*others, CATALOG, FRONTEND]), False)]


def choose_fault(
    rng: random.Random, leader: int | None, previous_hit_leader: bool, fault_class: str = SINGLE
) -> FaultPlan:
    """The next fault of `fault_class`. The leader is hit whenever the previous fault missed it
    (and a leader is known)."""
    if fault_class not in CLASSES:
        raise ValueError(f"unknown fault class {fault_class!r}")
    targets = _targets(rng, leader, previous_hit_leader, fault_class)
    hits = [_hit(rng, target, was_leader, len(targets) > 1) for target, was_leader in targets]
    offsets = [0.0] + [rng.uniform(0.0, MAX_OFFSET) for _ in hits[1:]]
    rng.shuffle(offsets)
    return FaultPlan(fault_class, tuple(
        HitPlan(h.kind, h.target, h.was_leader, h.pause, offset) for h, offset in zip(hits, offsets)
    ))


class Schedule:
    """The seeded choices: the class of each fault (a shuffled DECK, from a stream of its own,
    so the classes depend on the seed alone), its targets and lengths, and whether it waits for
    an idle pause."""

    def __init__(self, seed: int) -> None:
        self._deck_rng = random.Random(f"{seed}/fault-classes")
        self._rng = random.Random(f"{seed}/faults")
        self._timing_rng = random.Random(f"{seed}/fault-timing")
        self._deck: list[str] = []

    def next_class(self) -> str:
        if not self._deck:
            self._deck = list(DECK)
            self._deck_rng.shuffle(self._deck)
        return self._deck.pop()

    def plan(self, leader: int | None, previous_hit_leader: bool) -> FaultPlan:
        return choose_fault(self._rng, leader, previous_hit_leader, self.next_class())

    def start_time(self, due: float, every: float, traffic: Traffic) -> float:
        """When the fault due at `due` starts: then, or, by IDLE_SHARE, in the clients' next long
        pause if that begins before the fault after it would be due."""
        if self._timing_rng.random() >= IDLE_SHARE:
            return due
        pause = traffic.next_long_pause(due)
        if pause is None or pause.start >= due + every:
            return due
        return pause.start + IDLE_MARGIN


def fault_classes(seed: int, count: int) -> list[str]:
    """The classes of a run's first `count` faults."""
    schedule = Schedule(seed)
    return [schedule.next_class() for _ in range(count)]


class Injector:
    """What both injectors share: waits on the reactor against the run's clock, and restarting a
    process that exited on its own."""

    def __init__(self, reactor: Any, cluster: ChaosCluster, clock: Callable[[], float],
                 say: Callable[[str], None]) -> None:
        self._reactor = reactor
        self._cluster = cluster
        self._clock = clock
        self._say = say

    async def restart_crashed(self) -> None:
        """Restart any process that exited without being killed (it is reported at the end),
        each until it listens again."""
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


class FaultInjector(Injector):
    def __init__(
        self,
        reactor: Any,
        cluster: ChaosCluster,
        schedule: Schedule,
        every: float,
        clock: Callable[[], float],
        leader: Callable[[], Awaitable[int | None]],
        say: Callable[[str], None],
        traffic: Traffic | None = None,
    ) -> None:
        super().__init__(reactor, cluster, clock, say)
        self._schedule = schedule
        self._every = every
        self._leader = leader
        self._traffic = traffic if traffic is not None else Traffic.none()
        self.faults: list[Fault] = []

    async def run(self, end: float) -> None:
        """Inject faults until `end`; returns once every process of the last fault is back."""
        from twisted.internet.defer import Deferred, DeferredList

        previous_hit_leader = True  # so the first fault may go anywhere
        due = self._clock() + self._every
        while True:
            due = self._schedule.start_time(due, self._every, self._traffic)
            await self._sleep(min(due, end) - self._clock())
            if self._clock() >= end:
                return
            await self.restart_crashed()
            plan = self._schedule.plan(await self._leader(), previous_hit_leader)
            started = self._clock()
            idle = self._traffic.pause_at(started) is not None
            results = await DeferredList(
                [Deferred.fromCoroutine(self._hit(h, started)) for h in plan.hits], consumeErrors=True
            )
            for ok, value in results:
                if not ok:
                    value.raiseException()
            hits = tuple(sorted((value for _, value in results), key=lambda h: h.at))
            fault = Fault(hits[0].at, plan.fault_class, hits, self._clock(), idle)
            self.faults.append(fault)
            self._say(f"  t={fault.at:6.1f}s {describe(fault)}")
            previous_hit_leader = plan.was_leader
            due = max(started + self._every, self._clock() + MIN_GAP)

    async def _hit(self, plan: HitPlan, started: float) -> Hit:
        await self._sleep(started + plan.offset - self._clock())
        at = self._clock()
        await self._inject(plan)
        return Hit(plan.kind, plan.target, plan.was_leader, at, plan.pause, self._clock())

    async def _inject(self, plan: HitPlan) -> None:
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


def describe(fault: Fault) -> str:
    """One line: the class, each process hit (as in the report), and whether the clients were idle."""
    from bazaar.chaos.report import hits_text

    return f"{fault.fault_class:<14} {hits_text(fault)}{'  [clients idle]' if fault.idle else ''}"

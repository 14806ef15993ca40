"""Network faults for `bazaar chaos --network`: plans, the iptables rules they make, a seeded
schedule, the applier that runs iptables inside the test hosts (hosts.py), and the injector.

Four classes, dealt from a shuffled deck (NET_DECK) so that every round of four faults holds
one of each:

- isolate: one host (the leader whenever the previous fault missed it, and with probability
  ISOLATE_LEADER_SHARE otherwise; else a follower, the catalog or the front end) loses every
  packet in and out but on its loopback;
- leader cut: the leader and both followers lose every packet between them; the front end and
  the catalog still reach the leader, and the followers each other;
- one-way: packets from one replica to another are dropped, the other direction passes (the
  leader is one end whenever the previous fault missed it, and with probability
  ONE_WAY_LEADER_SHARE otherwise);
- slow link: the link between the leader and a follower or the front end loses a share of its
  packets each way (`-m statistic --mode random --probability p -j DROP`) and, where the
  delayer works (delayer.py, NFQUEUE), holds every packet for a delay each way.

Every rule drops (never rejects), so a fault looks like a real partition: calls hang to their
deadline. Rules go into two chains of the run's own, BZ-<run>-IN (jumped to from INPUT) and
BZ-<run>-OUT (from OUTPUT), in each service's namespace: a fault is healed by deleting exactly
the rules it added (`iptables -D` with the same spec), and heal-all is one flush per chain.

Plans and rules are plain data (unit-tested without root); Firewall runs the commands.
"""

from __future__ import annotations

import random
import select
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Sequence

from bazaar.chaos.faults import Injector
from bazaar.chaos.hosts import run_command
from bazaar.chaos.processes import (
    CATALOG, FRONTEND, NAMES, POLL, REPLICA_IDS, ChaosCluster, ChaosError, replica_name,
)

ISOLATE = "isolate"
LEADER_CUT = "leader cut"
ONE_WAY = "one-way"
SLOW_LINK = "slow link"
NET_CLASSES = (ISOLATE, LEADER_CUT, ONE_WAY, SLOW_LINK)
NET_DECK = NET_CLASSES  # one round of faults, shuffled: one of each
ISOLATE_LEADER_SHARE = 0.4  # the leader, after a fault that hit it
ONE_WAY_LEADER_SHARE = 0.7  # the leader at one end, likewise
DURATION = (1.0, 4.0)  # seconds a cut lasts
SLOW_DURATION = (2.0, 5.0)  # seconds a slow link lasts
LOSS = (0.05, 0.3)  # share of packets a slow link drops, each way
DELAY_MS = (20.0, 150.0)  # what a slow link adds to each packet, each way
MIN_GAP = 0.5  # seconds between the recovery from one fault and the next
RECOVERY_DEADLINE = 20.0  # seconds after a heal to wait for a trade before the next fault anyway
IN, OUT = "IN", "OUT"
DELAYER_START_DEADLINE = 10.0
FIRST_QUEUE = 100


@dataclass(frozen=True)
class NetPlan:
    fault_class: str
    hosts: tuple[str, ...]  # isolate: (h,); leader cut: (leader, f, f); one-way: (from, to); slow: (a, b)
    was_leader: bool  # whether the leader is one of the hosts it touches
    duration: float
    loss: float = 0.0  # slow link: share dropped each way
    delay_ms: float = 0.0  # slow link: added each way (0: none)

    @property
    def target(self) -> str:
        return target_text(self.fault_class, self.hosts)

    @property
    def detail(self) -> str:
        return detail_text(self.fault_class, self.loss, self.delay_ms)


def target_text(fault_class: str, hosts: Sequence[str], leader: str | None = None) -> str:
    """"order-2", "order-2 | order-1,order-3", "order-1 -> order-3", "order-2 <-> frontend";
    `leader` gets a `*`."""
    names = [f"{h}*" if h == leader else h for h in hosts]
    if fault_class == ISOLATE:
        return names[0]
    if fault_class == LEADER_CUT:
        return f"{names[0]} | {','.join(names[1:])}"
    if fault_class == ONE_WAY:
        return f"{names[0]} -> {names[1]}"
    return f"{names[0]} <-> {names[1]}"


def detail_text(fault_class: str, loss: float, delay_ms: float) -> str:
    """What a fault does to its packets, in a few words."""
    if fault_class == SLOW_LINK:
        delay = f", +{delay_ms:.0f} ms" if delay_ms else ""
        return f"loss {loss:.0%}{delay} each way"
    return "all dropped"


@dataclass(frozen=True)
class Rule:
    host: str  # the service whose namespace holds the rule
    chain: str  # IN or OUT
    spec: tuple[str, ...]  # iptables arguments after `-A <chain>`


@dataclass(frozen=True)
class Delay:
    host: str  # the namespace the delayer runs in
    queue: int
    delay_ms: float


def rules(plan: NetPlan, address: Callable[[str], str], queue: int = FIRST_QUEUE) -> list[Rule]:
    """The rules that make `plan`; `address(name)` is a host's IP. A slow link's packets are
    queued for the delayer on `queue` (in each end's namespace) after the loss rule."""
    drop = ("-j", "DROP")
    kind, hosts = plan.fault_class, plan.hosts
    if kind == ISOLATE:
        (host,) = hosts
        return [Rule(host, IN, ("!", "-i", "lo", *drop)), Rule(host, OUT, ("!", "-o", "lo", *drop))]
    if kind == LEADER_CUT:
        leader, *followers = hosts
        out = []
        for f in followers:
            out += [Rule(leader, IN, ("-s", address(f), *drop)), Rule(leader, OUT, ("-d", address(f), *drop))]
        return out
    if kind == ONE_WAY:
        source, destination = hosts
        return [Rule(source, OUT, ("-d", address(destination), *drop))]
    if kind == SLOW_LINK:
        a, b = hosts
        out = []
        for x, y in ((a, b), (b, a)):
            if plan.loss > 0:
                out.append(Rule(x, OUT, ("-d", address(y), "-m", "statistic", "--mode", "random",
                                         "--probability", f"{plan.loss:.4f}", *drop)))
            if plan.delay_ms > 0:
                out.append(Rule(x, OUT, ("-d", address(y), "-j", "NFQUEUE", "--queue-num", str(queue),
                                         "--queue-bypass")))
        return out
    raise ValueError(f"unknown network fault class {kind!r}")


def delays(plan: NetPlan, queue: int = FIRST_QUEUE) -> list[Delay]:
    """The delayers a plan needs: one per end of a slow link with a delay."""
    if plan.fault_class != SLOW_LINK or plan.delay_ms <= 0:
        return []
    return [Delay(h, queue, plan.delay_ms) for h in plan.hosts]


# ---- the schedule ------------------------------------------------------------------------------


def choose_net_fault(
    rng: random.Random, leader: int | None, previous_hit_leader: bool, fault_class: str, delay: bool = True
) -> NetPlan:
    """The next fault of `fault_class`. With no leader known, replicas are picked blindly and
    none counts as the leader. `delay=False`: slow links lose packets but add no delay."""
    if fault_class not in NET_CLASSES:
        raise ValueError(f"unknown network fault class {fault_class!r}")
    replicas = [replica_name(i) for i in REPLICA_IDS]
    known = leader is not None
    lead = replica_name(leader) if known else rng.choice(replicas)
    followers = [r for r in replicas if r != lead]
    aim = known and not previous_hit_leader
    if fault_class == ISOLATE:
        if not known:
            hosts: tuple[str, ...] = (lead,)
        elif aim or rng.random() < ISOLATE_LEADER_SHARE:
            hosts = (lead,)
        else:
            hosts = (rng.choice([*followers, CATALOG, FRONTEND]),)
    elif fault_class == LEADER_CUT:
        hosts = (lead, *followers)
    elif fault_class == ONE_WAY:
        if not known or aim or rng.random() < ONE_WAY_LEADER_SHARE:
            pair = [lead, rng.choice(followers)]
        else:
            pair = list(followers)
        rng.shuffle(pair)
        hosts = tuple(pair)
    else:
        hosts = (lead, rng.choice([*followers, FRONTEND]))
    if fault_class == SLOW_LINK:
        duration = rng.uniform(*SLOW_DURATION)
        loss = round(rng.uniform(*LOSS), 3)
        delay_ms = round(rng.uniform(*DELAY_MS)) if delay else 0.0
    else:
        duration, loss, delay_ms = rng.uniform(*DURATION), 0.0, 0.0
    return NetPlan(fault_class, hosts, known and replica_name(leader) in hosts, duration, loss, delay_ms)


class NetSchedule:
    """The seeded choices: each fault's class (a shuffled NET_DECK, from a stream of its own,
    so the classes depend on the seed alone), its hosts, its length and its loss and delay."""

    def __init__(self, seed: int, delay: bool = True) -> None:
        self._deck_rng = random.Random(f"{seed}/net-classes")
        self._rng = random.Random(f"{seed}/net-faults")
        self._deck: list[str] = []
        self.delay = delay

    def next_class(self) -> str:
        if not self._deck:
            self._deck = list(NET_DECK)
            self._deck_rng.shuffle(self._deck)
        return self._deck.pop()

    def plan(self, leader: int | None, previous_hit_leader: bool) -> NetPlan:
        return choose_net_fault(self._rng, leader, previous_hit_leader, self.next_class(), self.delay)


def net_fault_classes(seed: int, count: int) -> list[str]:
    """The classes of a run's first `count` network faults."""
    schedule = NetSchedule(seed)
    return [schedule.next_class() for _ in range(count)]


# ---- the applier -------------------------------------------------------------------------------


def chain_names(run_id: str) -> dict[str, str]:
    return {IN: f"BZ-{run_id}-IN", OUT: f"BZ-{run_id}-OUT"}


Runner = Callable[[Sequence[str]], Any]


@dataclass
class Applied:
    """What one fault put in place, to be removed exactly."""

    plan: NetPlan
    rules: list[Rule] = field(default_factory=list)
    delayers: list[Any] = field(default_factory=list)  # subprocess.Popen


class Firewall:
    """iptables inside the test hosts. `netns` maps each service to its namespace, `address`
    to its IP; `run` runs one command (raising ChaosError when it fails)."""

    def __init__(
        self,
        run_id: str,
        netns: Mapping[str, str],
        address: Callable[[str], str],
        run: Runner = run_command,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.chains = chain_names(run_id)
        self._netns = dict(netns)
        self._address = address
        self._run = run
        self._env = dict(env) if env is not None else None
        self._queue = FIRST_QUEUE
        self._delayers: list[Any] = []

    def iptables(self, host: str, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self._netns[host], "iptables", "-w", *args]

    def install_commands(self) -> list[list[str]]:
        """The run's two chains in every service's namespace, each jumped to first."""
        cmds = []
        for host in NAMES:
            for hook, chain in (("INPUT", self.chains[IN]), ("OUTPUT", self.chains[OUT])):
                cmds += [self.iptables(host, "-N", chain), self.iptables(host, "-I", hook, "1", "-j", chain)]
        return cmds

    def install(self) -> None:
        for argv in self.install_commands():
            self._run(argv)

    def add_command(self, rule: Rule) -> list[str]:
        return self.iptables(rule.host, "-A", self.chains[rule.chain], *rule.spec)

    def delete_command(self, rule: Rule) -> list[str]:
        return self.iptables(rule.host, "-D", self.chains[rule.chain], *rule.spec)

    def flush_commands(self) -> list[list[str]]:
        return [self.iptables(host, "-F", chain) for host in NAMES for chain in self.chains.values()]

    def apply(self, plan: NetPlan) -> Applied:
        """Put `plan` in place: delayers first (so no queued packet waits for one), then rules.
        On a failure, what was added is removed again."""
        queue = self._queue
        self._queue += 1
        applied = Applied(plan)
        try:
            for delay in delays(plan, queue):
                applied.delayers.append(self._start_delayer(delay))
            for rule in rules(plan, self._address, queue):
                self._run(self.add_command(rule))
                applied.rules.append(rule)
        except BaseException:
            self.heal(applied)
            raise
        return applied

    def heal(self, applied: Applied) -> None:
        """Remove exactly the rules `applied` added (latest first), then stop its delayers."""
        problems = []
        while applied.rules:
            rule = applied.rules.pop()
            try:
                self._run(self.delete_command(rule))
            except ChaosError as e:
                problems.append(str(e))
        while applied.delayers:
            self._stop_delayer(applied.delayers.pop())
        if problems:
            raise ChaosError("; ".join(problems))

    def heal_all(self) -> None:
        """Flush the run's chains everywhere and stop every delayer: whatever is in place goes."""
        for delayer in list(self._delayers):
            self._stop_delayer(delayer)
        for argv in self.flush_commands():
            self._run(argv)

    def _start_delayer(self, delay: Delay) -> Any:
        argv = ["ip", "netns", "exec", self._netns[delay.host], sys.executable, "-m", "bazaar.chaos.delayer",
                "--queue", str(delay.queue), "--delay-ms", f"{delay.delay_ms:g}"]
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=self._env, text=True)
        self._delayers.append(process)
        ready, _, _ = select.select([process.stdout], [], [], DELAYER_START_DEADLINE)
        line = process.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self._stop_delayer(process)
            error = process.stderr.read().strip().splitlines()[-1:] if process.stderr else []
            raise ChaosError(f"the packet delayer in {delay.host} did not start: "
                             f"{error[0] if error else 'no answer within the deadline'}")
        return process

    def _stop_delayer(self, process: Any) -> None:
        if process in self._delayers:
            self._delayers.remove(process)
        if process.poll() is None:
            try:
                process.stdin.close()
                process.wait(2.0)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def delay_available(firewall: Firewall, host: str) -> tuple[bool, str]:
    """Whether the delayer works in `host`'s namespace: started once and stopped. (ok, reason)."""
    try:
        firewall._stop_delayer(firewall._start_delayer(Delay(host, FIRST_QUEUE - 1, 1.0)))
    except (ChaosError, OSError) as e:
        return False, str(e)
    return True, ""


# ---- the injector ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetFault:
    at: float  # seconds since the run started, once every rule was in place
    fault_class: str
    target: str
    hosts: tuple[str, ...]
    was_leader: bool
    duration: float  # as planned
    back: float  # when its last rule was removed
    recovered: float | None  # the first trade sent after the heal that succeeded, when it completed
    synced: float | None = None  # when every replica's log held what a majority held at the heal
    loss: float = 0.0
    delay_ms: float = 0.0
    leader: str | None = None  # the leader when the fault was planned (None: unknown)
    idle: bool = False  # kept for the shared report helpers: network runs have no idle pauses

    @property
    def leader_at(self) -> float | None:
        return self.at if self.was_leader else None

    @property
    def detail(self) -> str:
        return detail_text(self.fault_class, self.loss, self.delay_ms)

    @property
    def marked_target(self) -> str:
        return target_text(self.fault_class, self.hosts, self.leader)


class NetworkInjector(Injector):
    """Applies one fault at a time from the schedule: in place for its duration, then healed.
    The next waits until its due time (`every` seconds after the previous start), until a
    trade sent after the heal succeeded and every replica holds what a majority of them held at
    the heal (each at most RECOVERY_DEADLINE), and MIN_GAP more.

    `succeeded_since(t)` gives the completion time of the first successful trade sent at or
    after t, or None; `log_ends()` each replica's last log index (-1: empty), read from its
    store; the blocking iptables calls run in the reactor's thread pool (or `in_thread`)."""

    def __init__(
        self,
        reactor: Any,
        firewall: Firewall,
        cluster: ChaosCluster,
        schedule: NetSchedule,
        every: float,
        clock: Callable[[], float],
        leader: Callable[[], Awaitable[int | None]],
        say: Callable[[str], None],
        succeeded_since: Callable[[float], float | None],
        log_ends: Callable[[], Sequence[int]] = lambda: (),
        in_thread: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(reactor, cluster, clock, say)
        self._firewall = firewall
        self._schedule = schedule
        self._every = every
        self._leader = leader
        self._succeeded_since = succeeded_since
        self._log_ends = log_ends
        self._in_thread = in_thread
        self.faults: list[NetFault] = []

    async def _blocking(self, f: Callable[..., Any], *args: Any) -> Any:
        if self._in_thread is None:
            from twisted.internet.threads import deferToThreadPool

            return await deferToThreadPool(self._reactor, self._reactor.getThreadPool(), f, *args)
        return await self._in_thread(f, *args)

    async def run(self, end: float) -> None:
        """Inject faults until `end`; returns with every fault healed."""
        previous_hit_leader = True  # so the first fault may go anywhere
        due = self._clock() + self._every
        while True:
            await self._sleep(min(due, end) - self._clock())
            if self._clock() >= end:
                return
            await self.restart_crashed()
            leader = await self._leader()
            plan = self._schedule.plan(leader, previous_hit_leader)
            lead = None if leader is None else replica_name(leader)
            applied = await self._blocking(self._firewall.apply, plan)
            at = self._clock()
            self._say(f"  t={at:6.1f}s {plan.fault_class:<10} {target_text(plan.fault_class, plan.hosts, lead)} "
                      f"({plan.detail}) for {plan.duration:.1f} s")
            try:
                await self._sleep(plan.duration)
            finally:
                await self._blocking(self._firewall.heal, applied)
            back = self._clock()
            recovered, synced = await self._recovery(back, end)
            fault = NetFault(at, plan.fault_class, plan.target, plan.hosts, plan.was_leader, plan.duration, back,
                             recovered, synced, plan.loss, plan.delay_ms, lead)
            self.faults.append(fault)
            self._say(f"  t={back:6.1f}s   healed; first trade after it "
                      + ("-" if recovered is None else f"{recovered - back:.2f} s")
                      + ", replicas in sync " + ("-" if synced is None else f"{synced - back:.2f} s") + " after it")
            previous_hit_leader = plan.was_leader
            due = max(at + self._every, self._clock() + MIN_GAP)

    async def _recovery(self, back: float, end: float) -> tuple[float | None, float | None]:
        """After a heal at `back`: when the first trade sent after it succeeded, and when every
        replica's log held what a majority of them held at the heal. Polled together, for at most
        RECOVERY_DEADLINE; the trade is not waited for past `end` (no new trades come then)."""
        ends = sorted(self._log_ends())
        # What a majority holds: a cut-off leader's uncommitted tail may be dropped, never reached.
        target = ends[len(ends) - (len(ends) // 2 + 1)] if ends else None
        deadline = self._clock() + RECOVERY_DEADLINE
        recovered = synced = None
        while True:
            if recovered is None:
                recovered = self._succeeded_since(back)
            if synced is None and target is not None and min(self._log_ends()) >= target:
                synced = self._clock()
            now = self._clock()
            waiting = (recovered is None and now < end) or (synced is None and target is not None)
            if not waiting or now >= deadline:
                return recovered, synced
            await self._sleep(POLL * 5)


__all__ = ["NET_CLASSES", "ISOLATE", "LEADER_CUT", "ONE_WAY", "SLOW_LINK", "NetPlan", "Rule", "rules",
           "delays", "choose_net_fault", "NetSchedule", "net_fault_classes", "Firewall", "NetFault",
           "NetworkInjector", "delay_available", "target_text"]

"""`bazaar chaos`: a cluster of its own, trading clients, faults of one or two processes, then the checks.

1. Start catalog, replicas 1-3 and front end in a fresh directory on free loopback ports, with
   an initial stock table drawn from the seed, and wait until GET /leader answers (blocking,
   before the reactor runs).
2. On the reactor: N clients (keyed ones and keyless ones) trade in bursts separated by idle
   pauses, and a seeded injector kills/freezes one process or two at a time until the duration
   ends; faults stop first, then every pending keyed trade is retried to a definite answer
   (drain deadline); then wait until the three replica logs are equal and the catalog has
   applied them through their last trade, and read every acknowledged order back through
   GET /orders/<n>.
3. Stop the cluster, read the logs and the catalog from their SQLite files, check the
   invariants and print the report. Every child is stopped whatever happens.

With `network` (`bazaar chaos --network`) the services run on test hosts of their own
(hosts.py: a network namespace each), the faults are network faults (network.py: isolate a
host, cut the leader from its followers, cut one direction between two replicas, a slow lossy
link) instead of process faults, and the clients trade without idle pauses, so that each
fault's failover gap is the system's and not the clients'. Every fault is healed before the
logs are compared; the test hosts are removed whatever happens.
"""

from __future__ import annotations

import http.client
import json
import random
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bazaar.catalog.store import read_applied, read_stocks
from bazaar.chaos import export, invariants, report
from bazaar.chaos.clients import OK, Records, TradingClient, get_json
from bazaar.chaos.faults import FaultInjector, Schedule
from bazaar.chaos.processes import FRONTEND, REPLICA_IDS, ChaosCluster, ChaosError
from bazaar.chaos.traffic import Pause, Traffic
from bazaar.config import Config, load_config
from bazaar.core.stock import DEFAULT_STOCKS, Stock
from bazaar.order.store import read_entries
from bazaar.reactor.run import run_on_reactor

DRAIN_DEADLINE = 60.0  # seconds after the end for pending trades to get a definite answer
CONVERGENCE_DEADLINE = 60.0  # seconds for the replica logs to become equal, and again for the catalog
READ_BACK_CONCURRENCY = 4
READ_BACK_DEADLINE = 60.0  # seconds for reading every acknowledged order back
PROGRESS_EVERY = 10.0
INTERRUPTED = 130

Say = Callable[[str], None]


CHAOS_SNAPSHOT_GAP = 20


@dataclass(frozen=True)
class ChaosSettings:
    duration: float = 120.0
    clients: int = 4
    fault_every: float = 5.0
    seed: int | None = None
    keep: bool = False
    out: Path | None = None  # where to write attempts.csv and faults.json (export.py)
    keyless: int | None = None  # clients that send no key (default: every other one)
    pauses: bool = True  # idle pauses between the clients' bursts
    network: bool = False  # network faults on test hosts (hosts.py, network.py) instead of process faults
    # A replica that missed this many entries rejoins through a snapshot: small, so that the
    # replicas a run kills or freezes rejoin through snapshots, faults and all, not streams only.
    snapshot_gap: int = CHAOS_SNAPSHOT_GAP


@dataclass
class PhaseResult:
    records: Records
    faults: list
    converged_after: float | None
    served: dict[int, Any]
    caught_up_after: float | None = None
    keyless: int = 0
    pauses: list[Pause] = field(default_factory=list)
    not_converged: str = ""  # how the replica logs differed when the convergence deadline passed


def initial_stocks(seed: int) -> tuple[Stock, ...]:
    """The run's initial stock table: the built-in names and prices, quantities and volumes
    drawn from the seed (so the harness relies on the configured table, not the built-in)."""
    rng = random.Random(f"{seed}/stocks")
    return tuple(Stock(s.name, s.price, rng.randint(200, 3000), rng.randint(0, 1000)) for s in DEFAULT_STOCKS)


def keyless_clients(clients: int, keyless: int | None) -> set[int]:
    """Which clients send no key: `keyless` of them (default half, rounded down), odd ones first."""
    count = clients // 2 if keyless is None else min(max(keyless, 0), clients)
    order = [*range(1, clients, 2), *range(0, clients, 2)]
    return set(order[:count])


def main(settings: ChaosSettings, say: Say = print) -> int:
    """Run the whole thing; 0 only when every invariant holds. With settings.network, raises
    hosts.HostsUnavailable (one line: why) before anything else when test hosts cannot be made."""
    from bazaar.chaos import hosts as test_hosts

    if settings.network:
        test_hosts.check_available()
    seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(1 << 31)
    root = Path(tempfile.mkdtemp(prefix="bazaar-chaos-"))
    say(f"chaos directory: {root}")
    say(f"seed: {seed}")
    code = 1
    cluster: ChaosCluster | None = None
    hosts: test_hosts.TestHosts | None = None
    net: NetworkSetup | None = None
    # A SIGTERM outside the reactor (which handles it itself) must still stop the children.
    previous_handler = signal.signal(signal.SIGTERM, _terminated)
    try:
        if settings.network:
            removed = test_hosts.remove_leftovers()
            if removed:
                say(f"removed the test hosts of earlier runs that are gone: {', '.join(removed)}")
            hosts = test_hosts.TestHosts()
            hosts.create()
            net = NetworkSetup.install(hosts)
            say(f"{hosts.describe()} (run {hosts.run_id}); slow links "
                + ("add delay (NFQUEUE delayer)" if net.delay else f"lose packets only: no delay ({net.why})"))
        cluster = ChaosCluster(root, stocks=initial_stocks(seed), hosts=hosts, snapshot_gap=settings.snapshot_gap)
        cluster.start_all(lambda: _ready(cluster.addresses[FRONTEND], cluster.ports[FRONTEND]))  # type: ignore[union-attr]
        say(f"cluster up: front end {cluster.frontend_url}; trading for {settings.duration:g} s")
        _, phase = run_on_reactor(lambda reactor: _phase(reactor, cluster, settings, seed, say, net))
        signal.signal(signal.SIGTERM, _terminated)
        if phase is None:
            say("interrupted")
            code = INTERRUPTED
            return code
        cluster.stop_all()
        checks = check_all(cluster, phase)
        if net is not None:
            lines = netreport_lines(settings, seed, phase, cluster, checks, hosts)
        else:
            failovers = report.leader_failovers(phase.faults, phase.records.attempts)
            lines = report.render(
                seed=seed, duration=settings.duration, clients=settings.clients,
                fault_every=settings.fault_every, records=phase.records, faults=phase.faults,
                failovers=failovers,
                converged_after=phase.converged_after, unexpected_exits=cluster.unexpected_exits,
                checks=checks, keyless=phase.keyless, caught_up_after=phase.caught_up_after,
                pauses=phase.pauses,
            )
        say("")
        for line in lines:
            say(line)
        if settings.out is not None:
            if net is not None:
                document = export.network_document(settings, seed, phase, checks, net.delay)
                written = export.write(settings.out, phase.records.attempts, document, export.NETWORK_FILE)
            else:
                document = export.faults_document(settings, seed, phase, failovers, checks)
                written = export.write(settings.out, phase.records.attempts, document)
            say(f"written: {', '.join(str(p) for p in written)}")
        code = 0 if all(c.passed for c in checks) else 1
        return code
    finally:
        try:
            if net is not None:
                net.heal_all(say)
            if cluster is not None:
                cluster.stop_all()
        finally:
            if hosts is not None:
                hosts.teardown()
                say(f"test hosts of run {hosts.run_id} removed")
            signal.signal(signal.SIGTERM, previous_handler)
            if code == 0 and not settings.keep:
                shutil.rmtree(root, ignore_errors=True)
            else:
                say(f"directory kept (config, data, logs): {root}")


@dataclass
class NetworkSetup:
    """The firewall of a network run, and whether its slow links can add delay (and if not, why)."""

    firewall: Any  # network.Firewall
    delay: bool
    why: str = ""

    @classmethod
    def install(cls, hosts: Any) -> NetworkSetup:
        from bazaar.chaos import network
        from bazaar.chaos.processes import NAMES
        from bazaar.tools.cluster import child_environment

        firewall = network.Firewall(hosts.run_id, {n: hosts.netns(n) for n in NAMES}, hosts.address,
                                    env=child_environment())
        firewall.install()
        delay, why = network.delay_available(firewall, FRONTEND)
        return cls(firewall, delay, why)

    def heal_all(self, say: Say) -> None:
        try:
            self.firewall.heal_all()
        except ChaosError as e:
            say(f"WARNING: healing every network fault failed: {e}")


def netreport_lines(settings: ChaosSettings, seed: int, phase: PhaseResult, cluster: ChaosCluster,
                    checks: list[invariants.Check], hosts: Any) -> list[str]:
    attempts = phase.records.attempts
    section = report.network_section(phase.faults, attempts)
    if phase.not_converged:
        section.append(f"  {phase.not_converged}")
    return report.render(
        seed=seed, duration=settings.duration, clients=settings.clients, fault_every=settings.fault_every,
        records=phase.records, faults=phase.faults, failovers=[], converged_after=phase.converged_after,
        unexpected_exits=cluster.unexpected_exits, checks=checks, keyless=phase.keyless,
        caught_up_after=phase.caught_up_after, pauses=phase.pauses, fault_section=section,
        title=f"network chaos run: seed {seed}, {settings.duration:g} s, {settings.clients} clients "
              f"({settings.clients - phase.keyless} keyed, {phase.keyless} without keys), a network fault every "
              f"{settings.fault_every:g} s, no idle pauses; {hosts.describe()}",
    )


def log_end(directory: Path) -> int:
    """The last index of the log in `directory` (-1: none yet), read-only by its primary key:
    cheap enough to poll while the replica writes."""
    import sqlite3
    from contextlib import closing

    from bazaar.order.store import OrderStore

    path = directory / OrderStore.FILENAME
    if not path.exists():
        return -1
    try:
        with closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=1.0)) as conn:
            row = conn.execute("SELECT MAX(idx) FROM log").fetchone()
    except sqlite3.Error:
        return -1
    return -1 if row is None or row[0] is None else row[0]


def first_success_since(attempts: list[Any], t: float) -> float | None:
    """When the first successful attempt sent at or after `t` completed (None: none yet).
    Attempts are recorded as they complete, so the scan stops at the first one done before t."""
    best = None
    for a in reversed(attempts):
        if a.done < t:
            break
        if a.outcome == OK and a.sent >= t and (best is None or a.done < best):
            best = a.done
    return best


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _ready(host: str, port: int) -> bool:
    """The front end's GET /readyz: a leader with a majority, and the catalog, answer."""
    try:
        conn = http.client.HTTPConnection(host, port, timeout=2.0)
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except OSError:
        return False


# ---- the reactor phase ----------------------------------------------------------------------


async def _phase(
    reactor: Any, cluster: ChaosCluster, settings: ChaosSettings, seed: int, say: Say,
    net: NetworkSetup | None = None,
) -> PhaseResult:
    import treq.client
    from twisted.internet.defer import Deferred, DeferredList, gatherResults
    from twisted.internet.task import LoopingCall
    from twisted.web.client import Agent, HTTPConnectionPool

    started = time.monotonic()

    def clock() -> float:
        return time.monotonic() - started

    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = settings.clients + 2
    http = treq.client.HTTPClient(Agent(reactor, pool=pool, connectTimeout=2.0))
    records = Records()
    url = cluster.frontend_url

    async def leader() -> int | None:
        status, body = await get_json(http, reactor, url + "/leader", 2.0)
        try:
            return cluster.replica_id_at(body["data"]["leader"]) if status == 200 else None
        except (TypeError, KeyError):
            return None

    config = load_config(cluster.config_path)
    end, drain = settings.duration, settings.duration + DRAIN_DEADLINE
    traffic = (Traffic.seeded(random.Random(f"{seed}/traffic"), settings.duration)
               if settings.pauses and net is None else Traffic.none())
    keyless = keyless_clients(settings.clients, settings.keyless)
    injector: Any
    if net is not None:
        from bazaar.chaos.network import NetSchedule, NetworkInjector

        injector = NetworkInjector(reactor, net.firewall, cluster, NetSchedule(seed, net.delay), settings.fault_every,
                                   clock, leader, say, lambda t: first_success_since(records.attempts, t),
                                   lambda: [log_end(config.replica_dir(i)) for i in REPLICA_IDS])
    else:
        injector = FaultInjector(reactor, cluster, Schedule(seed), settings.fault_every, clock, leader, say,
                                 traffic)
    clients = [
        Deferred.fromCoroutine(
            TradingClient(i, http, reactor, url, random.Random(f"{seed}/client/{i}"), clock, records,
                          keyed=i not in keyless, stocks=config.stocks, traffic=traffic).run(end, drain)
        )
        for i in range(settings.clients)
    ]
    progress = LoopingCall(lambda: say(
        f"  t={clock():6.1f}s {len(records.acknowledged)} acknowledged, {len(records.attempts)} requests"
    ))
    progress.start(PROGRESS_EVERY, now=False)
    try:
        faults = Deferred.fromCoroutine(injector.run(end))
        try:
            await faults
        finally:
            # Faults are over (or failed): let every client finish its pending trade.
            await DeferredList(clients, consumeErrors=True)
        await gatherResults(clients, consumeErrors=True)
        progress.stop()
        say(f"  t={clock():6.1f}s trading over; faults stopped; {len(records.in_doubt)} keys left in doubt, "
            f"{len(records.not_executed)} given up after 503s, {len(records.lost)} keyless trades unanswered")
        await injector.restart_crashed()
        if net is not None:
            from twisted.internet.threads import deferToThread

            await deferToThread(net.heal_all, say)
            say(f"  t={clock():6.1f}s every network fault healed; waiting for the replica logs, no traffic")
        converged_after = await _converge(reactor, config, clock)
        not_converged = "" if converged_after is not None else (
            f"the replica logs still differed {CONVERGENCE_DEADLINE:g} s after the faults ended: "
            + log_difference(config))
        say(f"  t={clock():6.1f}s " + ("replica logs equal" if converged_after is not None
                                       else f"FAILURE: {not_converged}"))
        caught_up_after = await _catch_up(reactor, config, clock)
        say(f"  t={clock():6.1f}s " + ("the catalog applied the log through its last trade"
                                       if caught_up_after is not None
                                       else "the catalog had not caught up at the deadline"))
        served = await _read_back(reactor, http, url, sorted(records.acknowledged.values()))
        return PhaseResult(records, injector.faults, converged_after, served, caught_up_after, len(keyless),
                           traffic.pauses, not_converged)
    finally:
        if progress.running:
            progress.stop()
        await pool.closeCachedConnections()


async def _until_true(reactor: Any, clock: Callable[[], float], done: Callable[[], bool]) -> float | None:
    """Seconds until done() held, polled every 0.2 s, or None after CONVERGENCE_DEADLINE."""
    from twisted.internet.task import deferLater

    start = clock()
    while not done():
        if clock() - start > CONVERGENCE_DEADLINE:
            return None
        await deferLater(reactor, 0.2)
    return clock() - start


def _logs_equal(config: Config) -> bool:
    logs = [[invariants.entry_fields(e) for e in read_entries(config.replica_dir(i))] for i in REPLICA_IDS]
    return all(log == logs[0] for log in logs)


def log_difference(config: Config) -> str:
    """How the replicas' logs differ: each one's length and last epoch, and the first index at
    which they part."""
    logs = {i: [invariants.entry_fields(e) for e in read_entries(config.replica_dir(i))] for i in REPLICA_IDS}
    sizes = ", ".join(f"replica {i} {len(log)} entries (last epoch {log[-1][1] if log else '-'})"
                      for i, log in logs.items())
    shortest = min(len(log) for log in logs.values())
    first = next((k for k in range(shortest) if len({log[k] for log in logs.values()}) > 1), shortest)
    return f"{sizes}; they part at index {first}"


def _last_number(config: Config) -> int:
    return max((e.number for e in invariants.trades_of(read_entries(config.replica_dir(REPLICA_IDS[0])))),
               default=-1)


async def _converge(reactor: Any, config: Config, clock: Callable[[], float]) -> float | None:
    """Seconds until all replica logs were equal, entry by entry, or None at the deadline."""
    return await _until_true(reactor, clock, lambda: _logs_equal(config))


async def _catch_up(reactor: Any, config: Config, clock: Callable[[], float]) -> float | None:
    """Seconds until the catalog had applied the (first replica's) log through its last trade."""
    last = _last_number(config)
    return await _until_true(reactor, clock, lambda: read_applied(config.service_dir("catalog")) >= last)


async def _read_back(reactor: Any, http: Any, url: str, numbers: list[int]) -> dict[int, Any]:
    """GET /orders/<n> for each n: its "data", or a description of what came instead. An
    unanswered or 5xx lookup is retried until a shared deadline."""
    from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults
    from twisted.internet.task import deferLater

    served: dict[int, Any] = {}
    semaphore = DeferredSemaphore(READ_BACK_CONCURRENCY)
    end = time.monotonic() + READ_BACK_DEADLINE

    async def one(number: int) -> None:
        status, body, delay = None, None, 0.05
        while time.monotonic() < end:
            status, body = await get_json(http, reactor, f"{url}/orders/{number}", 5.0)
            if status is not None and status < 500:
                break
            await deferLater(reactor, delay)
            delay = min(delay * 2, 1.0)
        if status == 200 and isinstance(body, dict) and "data" in body:
            served[number] = body["data"]
        elif status is None and time.monotonic() >= end:
            served[number] = "not read back before the deadline"
        else:
            served[number] = f"HTTP {status}: {json.dumps(body)[:200]}" if status else "no answer"

    await gatherResults(
        [semaphore.run(lambda n=n: Deferred.fromCoroutine(one(n))) for n in numbers], consumeErrors=True
    )
    return served


# ---- reading the stopped cluster and checking ------------------------------------------------


def read_catalog(catalog_dir: Path) -> dict[str, tuple[int, int]]:
    return {s.name: (s.quantity, s.volume) for s in read_stocks(catalog_dir)}


def check_all(cluster: ChaosCluster, phase: PhaseResult) -> list[invariants.Check]:
    config = load_config(cluster.config_path)
    records = phase.records
    entries = {i: list(read_entries(config.replica_dir(i))) for i in REPLICA_IDS}
    logs = {i: [e.order for e in invariants.trades_of(log)] for i, log in entries.items()}
    initial = {s.name: (s.quantity, s.volume) for s in config.stocks}
    longest = max(logs.values(), key=len)
    catalog_dir = config.service_dir("catalog")

    i1, by_key = invariants.check_acknowledged(records.acknowledged, records.trades, phase.served, logs)
    i6 = invariants.check_leader_faults(by_key, records.acked_at, [f.leader_at for f in phase.faults if f.was_leader])
    return [
        i1,
        invariants.check_dense(entries),
        invariants.check_exactly_once(records, entries),
        invariants.check_catalog(read_catalog(catalog_dir), longest, initial, read_applied(catalog_dir)),
        invariants.check_identical(entries),
        i6,
        invariants.check_not_executed(records.attempts, entries),
    ]


__all__ = ["ChaosSettings", "ChaosError", "main", "check_all"]

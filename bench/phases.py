"""The bench's clusters and what each measures.

An empty cluster beside the bare Klein routes (bare.tac), each of its loads in turns with the
same load on a baseline: the cached stock lookup against the bare GET route, trades against
the bare POST route at every number of connections of the curve (with the CPU each process
spends a trade), order lookups against the bare GET /orders route; then a profile of the
trade path on every process, and leader failover (SIGKILL, then SIGSTOP). A cluster with TLS
off, for what mutual TLS costs. Then, for each history, a cluster seeded offline beside an empty
one: a replica that missed all of it catching up, the seeded cluster's trades in turns with the
empty one's, and every process's resident memory after. First, before any cluster runs, what
one internal call costs with no Bazaar code (call_floor.py).
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

from bazaar.catalog.store import read_stocks
from bazaar.chaos.processes import CATALOG, FRONTEND, NAMES, REPLICA_IDS, ChaosError, replica_name, wait_for
from bench import call_floor, failover, keys, profile, seed
from bench.cluster import BareServer, BenchCluster, BenchError, http_request
from bench.load import Loader
from bench.result import HistoryLevel, LoadResult, Pair, Results, Settings, TradeCpu, combined

STOCK_PATH = "/stocks/tesla"
TRADE = json.dumps({"name": "tesla", "quantity": 1, "type": "buy"}).encode()
FAILOVER_CLIENTS = 4
COMPARISON_TURNS = 2
# The connections of the loads that are not part of the curve: the 64 of the headline target.
TRADE_CONNECTIONS = 64
LOOKUP_ORDERS = 1_000  # the lookups cycle through this many existing orders
REJOIN_DEADLINE = 60.0
CATCH_UP_DEADLINE = 300.0  # not a target: past it the catch-up is reported as not finished

Say = Callable[[str], None]
Run = Callable[[float], LoadResult]


def internal_call(settings: Settings, results: Results, say: Say) -> None:
    """What one internal call costs at the least, measured while the machine is quiet."""
    say(f"one internal call with no Bazaar code: {settings.floor_calls:,} calls of each kind, "
        f"{settings.floor_turns} turns (bench/call_floor.py)")
    results.call_floor = call_floor.run(settings.floor_calls, settings.floor_turns)


def in_turns(runs: Sequence[Run], seconds: float, turns: int = COMPARISON_TURNS) -> list[LoadResult]:
    """Each load for `seconds` in all, in `turns` turns, one after the other (a change in the
    machine's load then hits them all alike)."""
    parts: list[list[LoadResult]] = [[] for _ in runs]
    for _ in range(turns):
        for part, run in zip(parts, runs):
            part.append(run(seconds / turns))
    return [combined(p) for p in parts]


def _load(loader: Loader, url: str, kind: str, path: str, connections: int, numbers: range = range(1)) -> Run:
    return lambda seconds: loader.run(url, kind, path, connections, seconds, numbers=numbers)


def _counting_cpu(cluster: BenchCluster, run: Run, spent: Counter[str]) -> Run:
    """`run`, adding the CPU seconds each of the cluster's processes spends during it to `spent`
    (only the turns of this load: the bare route's turns between them do not count)."""

    def counted(seconds: float) -> LoadResult:
        before = cluster.cpu()
        result = run(seconds)
        for name, now in cluster.cpu().items():
            was = before.get(name)
            if now is not None and was is not None:
                spent[name] += now - was
        return result

    return counted


def _by_role(cluster: BenchCluster, spent: Counter[str]) -> dict[str, float]:
    leader = replica_name(cluster.wait_leader())
    followers = sorted((n for n in spent if n.startswith("order-") and n != leader), key=lambda n: -spent[n])
    named = {"front end": FRONTEND, "leader": leader, "catalog": CATALOG,
             **dict(zip(("busier follower", "other follower"), followers))}
    return {role: spent[name] for role, name in named.items() if name in spent}


def _batches(cluster: BenchCluster) -> tuple[float, float]:
    """The front end's batches to the order leader so far, and the orders they carried."""
    return (cluster.metric(FRONTEND, "bazaar_frontend_order_batches_total"),
            cluster.metric(FRONTEND, "bazaar_frontend_order_batch_orders_total"))


def _answer(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json", "Idempotency-Key": "bench-compare"} if body else None
    status, answer_headers, answer = http_request(port, method, path, body, headers)
    if status != 200:
        raise BenchError(f"{method} {path} answered {status}: {answer[:200]!r}")
    return status, answer_headers, answer


def empty_cluster(root: Path, loader: Loader, settings: Settings, results: Results, say: Say) -> None:
    cluster = BenchCluster(root)
    bare: BareServer | None = None
    try:
        say("starting a cluster (catalog, 3 replicas, front end) with an empty history")
        cluster.start(list(NAMES))
        cluster.wait_leader()
        if cluster.config.tls.insecure:
            raise BenchError("the measured cluster has TLS off; the targets are for mutual TLS")
        results.checks.append("the measured clusters run mutual TLS on every gRPC link (tls.insecure off)")
        port = cluster.frontend_port
        stock = _answer(port, "GET", STOCK_PATH)  # fills the cache
        trade = _answer(port, "POST", "/orders", TRADE)  # order 0
        order = _answer(port, "GET", "/orders/0")
        bare = BareServer(cluster, stock[2], order[2], stock[1].get("Content-Type", "application/json"))
        results.same_answer = [
            compare(f"GET {STOCK_PATH}", _answer(bare.port, "GET", STOCK_PATH), stock),
            compare("GET /orders/0", _answer(bare.port, "GET", "/orders/0"), order),
            compare("POST /orders", _answer(bare.port, "POST", "/orders", TRADE), trade, numbers=True),
        ]
        n, s = settings.connections, settings.seconds
        say(f"cached GET {STOCK_PATH} and the bare Klein GET route: {s:g} s each at {n} connections, "
            f"in {COMPARISON_TURNS} turns")
        before = _cache_counters(cluster)
        cached, plain = in_turns([_load(loader, cluster.frontend_url, "get", STOCK_PATH, n),
                                  _load(loader, bare.url, "get", STOCK_PATH, n)], s)
        results.cached = Pair(cached, plain)
        hits, misses = (after - was for after, was in zip(_cache_counters(cluster), before))
        results.checks.append(f"the front end's cache answered {hits:,} hits and {misses:,} misses "
                              "during the cached GET loads")
        for c in settings.curve:
            say(f"trades (POST /orders) and the bare Klein POST route: {s:g} s each at {c} connections, "
                f"in {COMPARISON_TURNS} turns")
            spent: Counter[str] = Counter()
            batches_before = _batches(cluster)
            trades, bare_trades = in_turns([_counting_cpu(cluster, _load(loader, cluster.frontend_url, "orders",
                                                                          "/orders", c), spent),
                                            _load(loader, bare.url, "orders", "/orders", c)], s)
            results.trades[c] = Pair(trades, bare_trades)
            batches, orders = (after - was for after, was in zip(_batches(cluster), batches_before))
            results.trade_cpu[c] = TradeCpu(_by_role(cluster, spent), trades.successes, batches, orders)
        _lookups(cluster, bare, loader, settings, results, say)
        bare.stop()
        bare = None
        _profile_trades(cluster, loader, settings, results, "trades on an empty history", say)
        say(f"failover: SIGKILL of the leader under {FAILOVER_CLIENTS} trading clients")
        killed = failover.measure(cluster, signal.SIGKILL, FAILOVER_CLIENTS)
        results.failovers.append(killed)
        say(f"restarting replica {killed.leader} and waiting for it to rejoin")
        _restart_and_rejoin(cluster, killed.leader)
        say(f"failover: SIGSTOP of the leader under {FAILOVER_CLIENTS} trading clients (SIGCONT after)")
        results.failovers.append(failover.measure(cluster, signal.SIGSTOP, FAILOVER_CLIENTS))
    finally:
        if bare is not None:
            bare.stop()
        cluster.stop_all()


def _lookups(cluster: BenchCluster, bare: BareServer, loader: Loader, settings: Settings, results: Results,
             say: Say) -> None:
    """GET /orders/<n> cycling through existing orders, each looked up once first, in turns with
    the bare GET /orders route answering one order's bytes."""
    leader = cluster.wait_leader()
    numbers = range(min(LOOKUP_ORDERS, cluster.order_count(leader)))
    for n in numbers:
        status, _, body = http_request(cluster.frontend_port, "GET", f"/orders/{n}")
        if status != 200:
            raise BenchError(f"GET /orders/{n} answered {status}: {body[:200]!r}")
    results.lookup_numbers = numbers
    n, s = settings.connections, settings.seconds
    say(f"order lookups: GET /orders/<n>, n cycling through the {len(numbers):,} orders {numbers.start}-"
        f"{numbers.stop - 1} (each looked up once before), and the bare Klein GET /orders route: "
        f"{s:g} s each at {n} connections, in {COMPARISON_TURNS} turns")
    first_round = _leader_lookups(cluster, leader)
    lookups, plain = in_turns([_load(loader, cluster.frontend_url, "lookups", "", n, numbers),
                               _load(loader, bare.url, "lookups", "", n, numbers)], s)
    results.lookups = Pair(lookups, plain)
    during = _leader_lookups(cluster, leader) - first_round
    results.checks.append(f"the leader answered {first_round:,.0f} order lookups (by its /metrics) before the "
                          f"lookup loads, and {during:,.0f} during their {lookups.requests:,} GET /orders/<n>")


def _leader_lookups(cluster: BenchCluster, leader: int) -> float:
    return cluster.metric(replica_name(leader), "bazaar_grpc_server_calls_total",
                          service="bazaar.v1.OrderService", method="Lookup")


def plaintext_trades(root: Path, loader: Loader, settings: Settings, results: Results, say: Say) -> None:
    """Trades at TRADE_CONNECTIONS on a cluster with TLS off: what mutual TLS costs."""
    cluster = BenchCluster(root, insecure=True)
    try:
        say("starting a cluster with TLS off (tls.insecure), for what mutual TLS costs")
        cluster.start(list(NAMES))
        cluster.wait_leader()
        n, s = TRADE_CONNECTIONS, settings.seconds
        say(f"trades with TLS off: POST /orders for {s:g} s at {n} connections")
        results.trades_plaintext = loader.run(cluster.frontend_url, "orders", "/orders", n, s)
        results.plaintext_connections = n
    finally:
        cluster.stop_all()


def compare(what: str, bare: tuple[int, dict[str, str], bytes], real: tuple[int, dict[str, str], bytes],
            numbers: bool = False) -> str:
    """Whether the bare route answers as Bazaar does: status, headers but Date, body bytes (with
    `numbers`, every number in the body counts as the same)."""
    def shape(answer: tuple[int, dict[str, str], bytes]) -> tuple:
        status, headers, body = answer
        return (status, sorted((k.lower(), v) for k, v in headers.items() if k.lower() != "date"),
                re.sub(rb"\d+", b"0", body) if numbers else body)

    if shape(bare) == shape(real):
        aside = " (numbers aside)" if numbers else ""
        return f"{what}: the bare route answers the same status, headers (but Date) and body bytes{aside}"
    return f"WARNING: {what}: the bare route's answer differs: {shape(bare)} vs {shape(real)}"


def _cache_counters(cluster: BenchCluster) -> tuple[int, int]:
    status, _, body = http_request(cluster.frontend_port, "GET", "/cache")
    data = json.loads(body)["data"] if status == 200 else {}
    return data.get("hits", 0), data.get("misses", 0)


def _profile_trades(cluster: BenchCluster, loader: Loader, settings: Settings, results: Results,
                    title: str, say: Say) -> None:
    """py-spy on every process (front end, leader, a follower, catalog) under one trade load."""
    if settings.profile_seconds <= 0:
        return
    n = TRADE_CONNECTIONS
    say(f"profiling {title} for {settings.profile_seconds:g} s (py-spy, under trade load at {n} connections)")
    folder = cluster.root / "profile"
    folder.mkdir(parents=True, exist_ok=True)
    leader = cluster.wait_leader()
    follower = min(i for i in REPLICA_IDS if i != leader)
    pids = {
        "front end": cluster.pid(FRONTEND),
        f"order leader (replica {leader})": cluster.pid(replica_name(leader)),
        f"order follower (replica {follower})": cluster.pid(replica_name(follower)),
        "catalog": cluster.pid(CATALOG),
    }
    spies = profile.record(pids, settings.profile_seconds, folder)
    if not spies:
        results.profiles[title] = {"all": "py-spy not found (pip install py-spy); no profile"}
        return
    # The load outlasts the samples a little: py-spy takes a moment to attach.
    loader.run(cluster.frontend_url, "orders", "/orders", n, settings.profile_seconds + 1)
    results.profiles[title] = profile.collect(spies, folder, timeout=settings.profile_seconds + 30)


def _restart_and_rejoin(cluster: BenchCluster, replica_id: int) -> None:
    name = replica_name(replica_id)
    wait_for(lambda: cluster.exited(name), 10.0, f"{name} to exit after SIGKILL")
    cluster.start([name])
    wait_for(lambda: cluster.serving(replica_id), REJOIN_DEADLINE, f"{name} to rejoin")
    leader = cluster.wait_leader()
    wait_for(lambda: cluster.order_count(replica_id) >= cluster.order_count(leader), REJOIN_DEADLINE,
             f"{name} to hold every order of the leader")


def histories(root: Path, loader: Loader, settings: Settings, results: Results, say: Say) -> None:
    for orders in settings.histories:
        level = HistoryLevel(orders)
        results.history.append(level)
        largest = orders == settings.histories[-1]
        history_cluster(root / f"history-{orders}", loader, settings, results, level, say, profiled=largest)


def history_cluster(root: Path, loader: Loader, settings: Settings, results: Results, level: HistoryLevel,
                    say: Say, profiled: bool) -> None:
    """A cluster on `level.orders` seeded orders, replica 1 catching up on all of them, then
    its trades in turns with an empty cluster's, and both clusters' memory."""
    cluster = BenchCluster(root / "seeded")
    empty = BenchCluster(root / "empty")
    count = level.orders
    try:
        say(f"seeding {count:,} orders offline into replicas 2 and 3 and the catalog (replica 1 stays empty)")
        started = time.monotonic()
        records = seed.history(count)
        stocks = cluster.config.stocks
        seed.seed_log(cluster.replica_dir(2), records, stocks)
        seed.copy_log(cluster.replica_dir(2), cluster.replica_dir(3))
        seed.seed_catalog(cluster.catalog_dir(), records, stocks)
        del records
        level.seeding = time.monotonic() - started
        say(f"idempotency-key lookups on the seeded log and on an empty one ({keys.LOOKUPS:,} of each kind, "
            f"best of {keys.REPEATS} in turns)")
        seed.seed_log(root / "keys-empty", seed.history(0), stocks)
        logs = [(root / "keys-empty", 0), (cluster.replica_dir(2), count)]
        level.empty_keys, level.keys = keys.measure(logs, stocks)
        say("starting an empty cluster, then the catalog, replicas 2 and 3 and the front end on the seeded history")
        empty.start(list(NAMES))
        empty.wait_leader()
        cluster.start([CATALOG, replica_name(2), replica_name(3), FRONTEND])
        cluster.wait_leader()
        _check_stocks(cluster, results, count)
        say(f"catch-up: starting replica 1, which missed all {count:,} orders")
        started = time.monotonic()
        cluster.spawn(replica_name(1))
        wait_for(lambda: cluster.is_up(replica_name(1)), CATCH_UP_DEADLINE, "replica 1 to listen")
        level.catch_up_listening = time.monotonic() - started
        try:
            wait_for(lambda: cluster.order_count(1) >= count, CATCH_UP_DEADLINE, f"replica 1 to hold {count} orders")
        except ChaosError:  # reported as no catch-up; the others still trade
            results.checks.append(f"WARNING: replica 1 held {cluster.order_count(1):,} of the {count:,} orders "
                                  f"after {CATCH_UP_DEADLINE:g} s")
        else:
            level.catch_up = time.monotonic() - started
            wait_for(lambda: cluster.serving(1), REJOIN_DEADLINE, "replica 1 to report SERVING")
        _check_numbering(cluster, count, results)
        n, s = TRADE_CONNECTIONS, settings.seconds
        say(f"trades on the {count:,}-order history and on the empty cluster: {s:g} s each at {n} connections, "
            f"in {COMPARISON_TURNS} turns")
        level.empty, level.trades = in_turns([_load(loader, empty.frontend_url, "orders", "/orders", n),
                                              _load(loader, cluster.frontend_url, "orders", "/orders", n)], s)
        level.resident, level.empty_resident = cluster.resident(), empty.resident()
        empty.stop_all()
        if profiled:
            _profile_trades(cluster, loader, settings, results, f"trades on a {count:,}-order history", say)
    finally:
        empty.stop_all()
        cluster.stop_all()


def _check_stocks(cluster: BenchCluster, results: Results, count: int) -> None:
    """The front end's stocks (cache filled now) are the seeded catalog's."""
    for stock in read_stocks(cluster.catalog_dir()):
        status, _, body = http_request(cluster.frontend_port, "GET", f"/stocks/{stock.name}")
        got = json.loads(body)["data"] if status == 200 else body
        want = {"name": stock.name, "price": round(stock.price, 2), "quantity": stock.quantity}
        if got != want:
            raise BenchError(f"GET /stocks/{stock.name} answered {got}, the seeded catalog holds {want}")
    results.checks.append(f"seeded history of {count:,}: every GET /stocks matches the seeded catalog")


def _check_numbering(cluster: BenchCluster, count: int, results: Results) -> None:
    """The seeded orders read back, and the next trade continues their numbering."""
    last = seed.trade(count - 1).order
    status, _, body = http_request(cluster.frontend_port, "GET", f"/orders/{count - 1}")
    if status != 200 or json.loads(body)["data"] != last.as_json():
        raise BenchError(f"GET /orders/{count - 1} answered {status} {body[:200]!r}, seeded {last.as_json()}")
    trade = json.dumps({"name": "tesla", "quantity": 1, "type": "buy"}).encode()
    status, _, body = http_request(cluster.frontend_port, "POST", "/orders", trade,
                                   {"Content-Type": "application/json"})
    if status != 200 or json.loads(body)["data"]["transaction_number"] != count:
        raise BenchError(f"the first trade after {count} seeded orders answered {status} {body[:200]!r}")
    results.checks.append(f"seeded history of {count:,}: order {count - 1} reads back, the next trade is "
                          f"number {count}")

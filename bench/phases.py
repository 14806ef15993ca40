"""The bench's two clusters and what each measures.

An empty cluster: the cached stock lookup against a bare Klein route, trades, order lookups, a
profile of the trade path, and leader failover (SIGKILL, then SIGSTOP). A cluster with a
seeded history: a replica that missed all of it catching up, then trades again.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Callable

from bazaar.catalog.store import read_stocks
from bazaar.chaos.processes import CATALOG, FRONTEND, NAMES, replica_name, wait_for
from bench import failover, profile, seed
from bench.cluster import BareServer, BenchCluster, BenchError, http_request
from bench.load import Loader
from bench.result import Results, Settings, combined

STOCK_PATH = "/stocks/tesla"
FAILOVER_CLIENTS = 4
COMPARISON_TURNS = 2
REJOIN_DEADLINE = 60.0
CATCH_UP_DEADLINE = 120.0

Say = Callable[[str], None]


def empty_cluster(root: Path, loader: Loader, settings: Settings, results: Results, say: Say) -> None:
    cluster = BenchCluster(root)
    bare: BareServer | None = None
    try:
        say("starting a cluster (catalog, 3 replicas, front end) with an empty history")
        cluster.start(list(NAMES))
        cluster.wait_leader()
        base = f"http://127.0.0.1:{cluster.frontend_port}"
        status, headers, body = http_request(cluster.frontend_port, "GET", STOCK_PATH)  # fills the cache
        if status != 200:
            raise BenchError(f"GET {STOCK_PATH} answered {status}: {body[:200]!r}")
        bare = BareServer(cluster, body, headers.get("Content-Type", "application/json"))
        results.same_answer = _compare(http_request(bare.port, "GET", STOCK_PATH), (status, headers, body))
        n, s = settings.connections, settings.seconds
        say(f"cached GET {STOCK_PATH} and the bare Klein route: {s:g} s each at {n} connections, "
            f"in {COMPARISON_TURNS} turns")
        before = _cache_counters(cluster)
        cached, plain = [], []
        for _ in range(COMPARISON_TURNS):  # in turns, so a change in the machine's load hits both
            cached.append(loader.run(base, "get", STOCK_PATH, n, s / COMPARISON_TURNS))
            plain.append(loader.run(f"http://127.0.0.1:{bare.port}", "get", STOCK_PATH, n, s / COMPARISON_TURNS))
        results.cached, results.bare = combined(cached), combined(plain)
        hits, misses = (after - was for after, was in zip(_cache_counters(cluster), before))
        results.checks.append(f"the front end's cache answered {hits:,} hits and {misses:,} misses "
                              "during the cached GET loads")
        bare.stop()
        bare = None
        say(f"trades: POST /orders for {s:g} s at {n} connections, then at 1 connection")
        results.trades = loader.run(base, "orders", "/orders", n, s)
        results.trades_alone = loader.run(base, "orders", "/orders", 1, s)
        leader = cluster.wait_leader()
        results.lookups_over = cluster.order_count(leader)
        say(f"order lookups: GET /orders/<n> for {s:g} s, n random below {results.lookups_over}")
        results.lookups = loader.run(base, "lookups", "", n, s, count=results.lookups_over)
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


def plaintext_trades(root: Path, loader: Loader, settings: Settings, results: Results, say: Say) -> None:
    """The trade load of `empty_cluster` on a cluster with TLS off: what mutual TLS costs."""
    cluster = BenchCluster(root, insecure=True)
    try:
        say("starting a cluster with TLS off (tls.insecure), for what mutual TLS costs")
        cluster.start(list(NAMES))
        cluster.wait_leader()
        n, s = settings.connections, settings.seconds
        say(f"trades with TLS off: POST /orders for {s:g} s at {n} connections")
        results.trades_plaintext = loader.run(f"http://127.0.0.1:{cluster.frontend_port}", "orders", "/orders", n, s)
    finally:
        cluster.stop_all()


def _compare(bare: tuple[int, dict[str, str], bytes], real: tuple[int, dict[str, str], bytes]) -> str:
    def shape(answer: tuple[int, dict[str, str], bytes]) -> tuple:
        status, headers, body = answer
        return status, sorted((k.lower(), v) for k, v in headers.items() if k.lower() != "date"), body

    if shape(bare) == shape(real):
        return "the bare route answers the same status, headers (but Date) and body bytes"
    return f"WARNING: the bare route's answer differs: {shape(bare)} vs {shape(real)}"


def _cache_counters(cluster: BenchCluster) -> tuple[int, int]:
    status, _, body = http_request(cluster.frontend_port, "GET", "/cache")
    data = json.loads(body)["data"] if status == 200 else {}
    return data.get("hits", 0), data.get("misses", 0)


def _profile_trades(cluster: BenchCluster, loader: Loader, settings: Settings, results: Results,
                    title: str, say: Say) -> None:
    """py-spy on the front end, the leader and the catalog under the same trade load."""
    if settings.profile_seconds <= 0:
        return
    say(f"profiling {title} for {settings.profile_seconds:g} s (py-spy, under trade load)")
    folder = cluster.root / "profile"
    folder.mkdir(parents=True, exist_ok=True)
    leader = cluster.wait_leader()
    pids = {
        "front end": cluster.pid(FRONTEND),
        f"order leader (replica {leader})": cluster.pid(replica_name(leader)),
        "catalog": cluster.pid(CATALOG),
    }
    spies = profile.record(pids, settings.profile_seconds, folder)
    if not spies:
        results.profiles[title] = {"all": "py-spy not found (pip install py-spy); no profile"}
        return
    # The load outlasts the samples a little: py-spy takes a moment to attach.
    base = f"http://127.0.0.1:{cluster.frontend_port}"
    loader.run(base, "orders", "/orders", settings.connections, settings.profile_seconds + 1)
    results.profiles[title] = profile.collect(spies, folder, timeout=settings.profile_seconds + 30)


def _restart_and_rejoin(cluster: BenchCluster, replica_id: int) -> None:
    name = replica_name(replica_id)
    wait_for(lambda: cluster.exited(name), 10.0, f"{name} to exit after SIGKILL")
    cluster.start([name])
    wait_for(lambda: cluster.serving(replica_id), REJOIN_DEADLINE, f"{name} to rejoin")
    leader = cluster.wait_leader()
    wait_for(lambda: cluster.order_count(replica_id) >= cluster.order_count(leader), REJOIN_DEADLINE,
             f"{name} to hold every order of the leader")


def history_cluster(root: Path, loader: Loader, settings: Settings, results: Results, say: Say) -> None:
    cluster = BenchCluster(root)
    count = settings.history
    try:
        say(f"seeding {count:,} orders offline into replicas 2 and 3 and the catalog (replica 1 stays empty)")
        started = time.monotonic()
        records = seed.history(count)
        stocks = cluster.config.stocks
        seed.seed_log(cluster.replica_dir(2), records, stocks)
        seed.copy_log(cluster.replica_dir(2), cluster.replica_dir(3))
        seed.seed_catalog(cluster.catalog_dir(), records, stocks)
        del records
        results.seeding = time.monotonic() - started
        say("starting the catalog, replicas 2 and 3 and the front end on the seeded history")
        cluster.start([CATALOG, replica_name(2), replica_name(3), FRONTEND])
        cluster.wait_leader()
        _check_stocks(cluster, results)
        say(f"catch-up: starting replica 1, which missed all {count:,} orders")
        started = time.monotonic()
        cluster.spawn(replica_name(1))
        wait_for(lambda: cluster.is_up(replica_name(1)), CATCH_UP_DEADLINE, "replica 1 to listen")
        results.catch_up_listening = time.monotonic() - started
        wait_for(lambda: cluster.order_count(1) >= count, CATCH_UP_DEADLINE, f"replica 1 to hold {count} orders")
        results.catch_up = time.monotonic() - started
        wait_for(lambda: cluster.serving(1), REJOIN_DEADLINE, "replica 1 to report SERVING")
        _check_numbering(cluster, count, results)
        n, s = settings.connections, settings.seconds
        say(f"trades on top of the {count:,}-order history: POST /orders for {s:g} s at {n} connections")
        results.history_trades = loader.run(f"http://127.0.0.1:{cluster.frontend_port}", "orders", "/orders", n, s)
        _profile_trades(cluster, loader, settings, results, f"trades on a {count:,}-order history", say)
    finally:
        cluster.stop_all()


def _check_stocks(cluster: BenchCluster, results: Results) -> None:
    """The front end's stocks (cache filled now) are the seeded catalog's."""
    for stock in read_stocks(cluster.catalog_dir()):
        status, _, body = http_request(cluster.frontend_port, "GET", f"/stocks/{stock.name}")
        got = json.loads(body)["data"] if status == 200 else body
        want = {"name": stock.name, "price": round(stock.price, 2), "quantity": stock.quantity}
        if got != want:
            raise BenchError(f"GET /stocks/{stock.name} answered {got}, the seeded catalog holds {want}")
    results.checks.append("seeded history: every GET /stocks matches the seeded catalog")


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
    results.checks.append(f"seeded history: order {count - 1} reads back, the next trade is number {count}")

"""Does the front end keep answering its clients while thousands of slow clients hold connections?

    python bench/slowloris.py [--url http://127.0.0.1:PORT] [--slow 5000] [--seconds 30]

Without --url it starts a throwaway cluster on free loopback ports, on the default [frontend]
limits. It measures normal clients (GET /stocks/tesla, each on a new connection, and one
kept-alive connection) for a few seconds alone, then while `--slow` connections trickle a byte
of a request head that never ends, from `--sources` loopback addresses (one address alone meets
frontend.max_connections_per_peer). It prints what each client got (answers by status, latency
p50/p99 of the 200s) and how the front end ended the slow connections. Loopback only; every
loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

sys.path.append(str(Path(__file__).resolve().parent.parent))

from bazaar.chaos.processes import FRONTEND, NAMES  # noqa: E402
from bazaar import tables  # noqa: E402
from bazaar.evaluation.stats import percentile  # noqa: E402
from bench import slow_clients  # noqa: E402
from bench.cluster import BenchCluster  # noqa: E402

PATH = "/stocks/tesla"
REQUEST_TIMEOUT = 5.0
MAX_REQUESTS = 20_000  # per normal client and phase, whatever the time


def _normal_client(host: str, port: int, wait: float, seconds: float, fresh: bool,
                   out: "multiprocessing.Queue") -> None:
    """GET PATH in a loop, counted for `seconds` after `wait`: on a new connection each time, or
    on one kept alive (connected before the wait, as a client already there when the slow
    ones come)."""
    statuses: Counter = Counter()
    latencies: list[float] = []
    counted_from = time.monotonic() + wait
    end = counted_from + seconds
    conn: http.client.HTTPConnection | None = None
    while time.monotonic() < end and sum(statuses.values()) < MAX_REQUESTS:
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
        started = time.perf_counter()
        counted = time.monotonic() >= counted_from
        try:
            conn.request("GET", PATH)
            response = conn.getresponse()
            response.read()
            statuses[response.status] += counted
            if response.status == 200 and counted:
                latencies.append((time.perf_counter() - started) * 1000)
            if fresh or response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            statuses[type(e).__name__] += counted
            conn.close()
            conn = None
            time.sleep(0.01)  # a refused or reset connection: do not spin
    if conn is not None:
        conn.close()
    out.put((fresh, statuses, latencies))


def _slow(host: str, port: int, sources: list[str], count: int, trickle: float, seconds: float,
          out: "multiprocessing.Queue") -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 200)), hard))
    stats = slow_clients.run(host, port, sources, count, trickle, seconds)
    out.put(stats)


def _frontend_descriptors(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def measure(host: str, port: int, seconds: float, slow: int, sources: list[str], trickle: float,
            ramp: float, pid: int | None) -> dict:
    out: multiprocessing.Queue = multiprocessing.Queue()
    clients = [multiprocessing.Process(target=_normal_client, args=(host, port, ramp, seconds, fresh, out))
               for fresh in (True, False)]
    for c in clients:
        c.start()
    attacker = None
    if slow:  # the slow connections take their places for `ramp` before the clients are counted
        attacker = multiprocessing.Process(target=_slow, args=(host, port, sources, slow, trickle,
                                                               ramp + seconds, out))
        attacker.start()
    peak_fds = 0
    end = time.monotonic() + ramp + seconds
    while time.monotonic() < end:
        peak_fds = max(peak_fds, _frontend_descriptors(pid) or 0)
        time.sleep(0.2)
    results = [out.get(timeout=seconds + 60) for _ in range(len(clients) + (1 if attacker else 0))]
    for process in [*clients, *([attacker] if attacker else [])]:
        process.join(timeout=30)
    normal = sorted((r for r in results if isinstance(r, tuple)), key=lambda r: not r[0])  # fresh first
    attack = next((r for r in results if isinstance(r, slow_clients.SlowStats)), None)
    return {"normal": normal, "attack": attack, "peak_fds": peak_fds}


def _row(label: str, statuses: Counter, latencies: list[float], seconds: float) -> tuple[object, ...]:
    answered = sum(n for s, n in statuses.items() if isinstance(s, int))
    ok = statuses.get(200, 0)
    shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items(), key=lambda kv: str(kv[0])) if n)
    if latencies:
        timing = f"{percentile(latencies, 50):.1f} ms", f"{percentile(latencies, 99):.1f} ms"
    else:
        timing = "no 200", "-"
    return (label, answered, f"{ok / seconds:,.0f}", shown, *timing)


def report(title: str, result: dict, seconds: float) -> list[str]:
    lines = [title]
    rows = [_row("new connection per request" if fresh else "one kept-alive connection", statuses, latencies, seconds)
            for fresh, statuses, latencies in result["normal"]]
    lines += tables.table(("client", "answered", "200/s", "answers by status", "p50 (200s)", "p99 (200s)"), rows,
                          align="lrrlrr", indent="  ")
    attack = result["attack"]
    if attack is not None:
        lifetimes = attack.lifetimes
        cut = f", cut off after {percentile(lifetimes, 50):.1f} s (p50)" if lifetimes else ""
        lines.append(f"  slow connections: {attack.opened} opened, at most {attack.peak_open} open at once; "
                     f"ended by the front end: {dict(attack.closes)}{cut}")
    if result["peak_fds"]:
        lines.append(f"  front end: at most {result['peak_fds']} file descriptors open")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running front end (default: a throwaway cluster)")
    parser.add_argument("--slow", type=int, default=5000, help="slow connections to keep open (default 5000)")
    parser.add_argument("--sources", type=int, default=20,
                        help="loopback addresses they come from, 127.0.0.2 and up (default 20)")
    parser.add_argument("--trickle", type=float, default=1.0, help="seconds between two bytes (default 1)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds under attack (default 20)")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds the slow clients get first (default 5)")
    args = parser.parse_args(argv)
    if not 0 <= args.slow <= 10_000 or not 1 <= args.sources <= 200 or not 0 < args.seconds <= 120:
        parser.error("--slow is at most 10000, --sources 1 to 200, --seconds at most 120")
    sources = [f"127.0.0.{2 + i}" for i in range(args.sources)]
    cluster = None
    pid = None
    try:
        if args.url:
            parts = urlsplit(args.url)
            host, port = parts.hostname or "", parts.port or 80
            if not host.startswith("127.") and host != "localhost":
                parser.error("the bench only targets loopback addresses")
        else:
            cluster = BenchCluster(Path(tempfile.mkdtemp(prefix="bazaar-slowloris-")))
            print(f"starting a throwaway cluster in {cluster.root}")
            cluster.start(list(NAMES))
            cluster.wait_leader()
            host, port, pid = "127.0.0.1", cluster.frontend_port, cluster.pid(FRONTEND)
        baseline_seconds = min(5.0, args.seconds)
        base = measure(host, port, baseline_seconds, 0, sources, args.trickle, 0, pid)
        for line in report(f"alone, {baseline_seconds:g} s:", base, baseline_seconds):
            print(line)
        attacked = measure(host, port, args.seconds, args.slow, sources, args.trickle, args.ramp, pid)
        addresses = f"{len(sources)} addresses" if len(sources) > 1 else "one address"
        title = (f"with {args.slow} slow connections from {addresses} "
                 f"(a byte every {args.trickle:g} s), {args.seconds:g} s:")
        for line in report(title, attacked, args.seconds):
            print(line)
    finally:
        if cluster is not None:
            cluster.stop_all()
            shutil.rmtree(cluster.root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The fallback load generator when wrk is not installed: several processes, each with a few
keep-alive http.client connections on threads, all bounded by a deadline.

It is much slower than wrk and may itself be the bottleneck on a small machine: the report
names the loader, so a reader knows which numbers to trust.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from bazaar.chaos.clients import STOCK_NAMES
from bazaar.evaluation.stats import percentile
from bench.result import LoadResult

REQUEST_TIMEOUT = 5.0


def request_for(kind: str, path: str, sent: int, tag: str, numbers: range
                ) -> tuple[str, str, bytes | None, dict[str, str]]:
    """(method, path, body, headers) of request number `sent` of a load of `kind`; the same
    requests as the wrk scripts make (lookups cycle through `numbers`)."""
    if kind == "orders":
        name = STOCK_NAMES[sent % len(STOCK_NAMES)]
        side = "buy" if (sent // len(STOCK_NAMES)) % 2 == 0 else "sell"
        body = json.dumps({"name": name, "quantity": 1, "type": side}).encode()
        return "POST", "/orders", body, {"Content-Type": "application/json",
                                         "Idempotency-Key": f"{tag}-{sent}"}
    if kind == "lookups":
        return "GET", f"/orders/{numbers[sent % len(numbers)]}", None, {}
    return "GET", path, None, {}


def _connection_loop(host: str, port: int, kind: str, path: str, deadline: float, tag: str,
                     numbers: range, start: int, out: list[Any]) -> None:
    requests = failures = 0
    latencies: list[float] = []
    conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
    sent = start
    while time.monotonic() < deadline:
        sent += 1
        method, url, body, headers = request_for(kind, path, sent, tag, numbers)
        start = time.monotonic()
        try:
            conn.request(method, url, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            failures += 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
            continue
        requests += 1
        latencies.append(time.monotonic() - start)
        if response.status >= 400:
            failures += 1
    conn.close()
    out.append((requests, failures, latencies))


def _worker(base_url: str, kind: str, path: str, connections: int, seconds: float, tag: str,
            numbers: range) -> tuple[int, int, list[float]]:
    parts = urlsplit(base_url)
    deadline = time.monotonic() + seconds
    out: list[Any] = []
    threads = [
        threading.Thread(target=_connection_loop, args=(
            parts.hostname, parts.port, kind, path, deadline, f"{tag}-{i}", numbers, 7919 * i, out))
        for i in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 2 * REQUEST_TIMEOUT)
    latencies = [x for _, _, lat in out for x in lat]
    return sum(r for r, _, _ in out), sum(f for _, f, _ in out), latencies


def run(base_url: str, kind: str, path: str, connections: int, seconds: float, processes: int,
        tag: str, numbers: range = range(1)) -> LoadResult:
    processes = max(1, min(processes, connections))
    shares = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    context = multiprocessing.get_context("spawn")  # no fork of a process that has gRPC threads
    with context.Pool(processes) as pool:
        results = pool.starmap(_worker, [
            (base_url, kind, path, share, seconds, f"{tag}-p{i}", numbers) for i, share in enumerate(shares)
        ])
    latencies = [x for _, _, lat in results for x in lat]
    return LoadResult(
        loader="python", seconds=seconds,
        requests=sum(r for r, _, _ in results), failures=sum(f for _, f, _ in results),
        p50=percentile(latencies, 50), p99=percentile(latencies, 99),
    )

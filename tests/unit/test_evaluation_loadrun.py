"""One `bazaar load` run against an in-memory stand-in for the front end (no sockets): what the
clients send, what they record, and when they stop."""

import io
import json
from urllib.parse import unquote, urlsplit

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock

from bazaar.tools.client import STOCK_NAMES, UNKNOWN_STOCK
from bazaar.evaluation.cachewatch import CacheWatch
from bazaar.evaluation.loadrun import MAX_SILENT_IN_A_ROW, RunPlan, run_once
from bazaar.evaluation.progress import Progress
from bazaar.evaluation.workload import OK

URL = "http://127.0.0.1:1"


class Response:
    def __init__(self, code, body):
        self.code = code
        self._content = json.dumps(body).encode()

    def content(self):
        return succeed(self._content)


class FakeFrontend:
    """Just enough of the API: stocks, orders (with keys), and GET /cache's counters and events."""

    def __init__(self, cache=True):
        self.stock = {name: 1000 for name in STOCK_NAMES}
        self.orders = []
        self.keys = []
        self.cache = cache
        self.hits = 0
        self.events = []

    def request(self, method, url, headers=None, json=None):
        parts = urlsplit(url)
        path = unquote(parts.path)
        if method == "GET" and path.startswith("/stocks/"):
            name = path.removeprefix("/stocks/")
            if name not in self.stock:
                return succeed(Response(404, {"error": {"code": 404, "message": "stock not found"}}))
            self.hits += 1
            self.events.append({"seq": len(self.events), "time": 5.0, "kind": "insert", "name": name})
            return succeed(Response(200, {"data": {"name": name, "price": 1.5, "quantity": self.stock[name]}}))
        if method == "POST" and path == "/orders":
            self.keys.append(headers["Idempotency-Key"][0])
            if json["name"] not in self.stock:
                return succeed(Response(404, {"error": {"code": 404, "message": "stock not found"}}))
            self.stock[json["name"]] += json["quantity"] if json["type"] == "sell" else -json["quantity"]
            self.orders.append({"number": len(self.orders), **json})
            return succeed(Response(200, {"data": {"transaction_number": len(self.orders) - 1}}))
        if method == "GET" and path.startswith("/orders/"):
            return succeed(Response(200, {"data": self.orders[int(path.removeprefix("/orders/"))]}))
        if method == "GET" and path == "/cache":
            if not self.cache:
                return succeed(Response(200, {"data": {"enabled": False}}))
            since = int(parts.query.removeprefix("since="))
            return succeed(Response(200, {"data": {
                "enabled": True, "capacity": 8, "hits": self.hits, "misses": 0, "evictions": 0,
                "names": ["tesla"], "events": [e for e in self.events if e["seq"] > since]}}))
        raise AssertionError(f"unexpected {method} {url}")


def run(frontend, p=0.5, clients=3, iterations=40, watch=True):
    clock = Clock()
    progress = Progress(io.StringIO(), clients * iterations, live=False)
    plan = RunPlan("on" if watch else "off", p, clients, iterations, seed=5, token="tok")
    cache_watch = CacheWatch(frontend, clock, URL) if watch else None
    d = Deferred.fromCoroutine(run_once(clock, frontend, URL, plan, cache_watch, progress))
    return progress, d.result if d.called else None


def test_every_iteration_looks_up_and_every_accepted_trade_is_queried_back():
    frontend = FakeFrontend()
    progress, result = run(frontend)
    kinds = [r.type for r in result.requests]
    assert kinds.count("lookup") == 3 * 40
    assert kinds.count("trade") == len(frontend.keys) > 0
    assert kinds.count("query") == len(frontend.orders) > 0
    assert all(r.ok for r in result.requests), [r.outcome for r in result.requests if not r.ok]
    assert {r.client for r in result.requests} == {0, 1, 2}
    assert all(r.latency_ms >= 0 and r.start >= 0 and (r.cache, r.p) == ("on", 0.5) for r in result.requests)
    assert [r.start for r in result.requests] == sorted(r.start for r in result.requests)
    assert result.duration_s > 0
    assert progress.fraction == 1.0 and progress.iterations == progress.total


def test_the_unknown_stock_answers_404_and_counts_as_ok():
    frontend = FakeFrontend()
    _, result = run(frontend, p=1.0)
    unknown = [r for r in result.requests if r.status == 404]
    assert unknown and all(r.ok for r in unknown)
    assert UNKNOWN_STOCK not in {o["name"] for o in frontend.orders}


def test_keys_are_distinct_and_carry_the_token():
    frontend = FakeFrontend()
    run(frontend, p=1.0)
    assert len(set(frontend.keys)) == len(frontend.keys)
    assert all(k.startswith("load-tok-on-1.0-") for k in frontend.keys)


def test_no_stock_ends_below_its_start():
    frontend = FakeFrontend()
    run(frontend, p=0.9, iterations=200)
    assert min(frontend.stock.values()) >= 1000


def test_the_cache_report_and_events_of_the_run():
    frontend = FakeFrontend()
    frontend.hits = 7  # before the run
    _, result = run(frontend, p=0.0, clients=1, iterations=5)
    assert (result.cache_before["hits"], result.cache_after["hits"]) == (7, 12)
    assert len(result.events) == 5 and result.dropped_events == 0
    assert all(set(e) == {"t", "kind", "name"} for e in result.events)


def test_without_the_cache_nothing_is_watched():
    _, result = run(FakeFrontend(cache=False), watch=False)
    assert result.cache_before is None and result.events == []


def test_a_silent_front_end_stops_each_client_after_a_few_requests():
    class Gone:
        def request(self, *args, **kwargs):
            return fail(ConnectionRefusedError())

    progress, result = run(Gone(), clients=2, iterations=100, watch=False)
    assert len(result.requests) == 2 * MAX_SILENT_IN_A_ROW
    assert {(r.status, r.outcome) for r in result.requests} == {(0, "connection error")}
    assert not any(r.outcome == OK for r in result.requests)
    assert progress.fraction == 1.0 and progress.iterations == progress.total

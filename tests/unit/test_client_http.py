"""The client against an in-process fake front end on a loopback port."""

import json
import random

import pytest
import pytest_twisted
from klein import Klein
from twisted.internet import defer, reactor
from twisted.web.server import Site

from bazaar.tools import client
from bazaar.tools.client import (
    ACCEPTED,
    FAILED,
    MATCHED,
    MISMATCHED,
    NOT_ENOUGH,
    QUERY,
    STOCK_NAMES,
    TRADE,
    ClientSettings,
)


class FakeFrontend:
    """Just enough of the HTTP API (docs/api.md) to exercise the client, with knobs to make it misbehave."""

    app = Klein()

    def __init__(self, quantity: int = 1000) -> None:
        self.stocks = {name: quantity for name in STOCK_NAMES}
        self.orders: list[dict] = []
        self.trades_received: list[dict] = []
        self.client_ports: set[int] = set()
        self.corrupt_order_queries = False
        self.trade_status: int | None = None  # answer every trade with this status instead
        self.hang = False  # never answer

    @staticmethod
    def _answer(request, status, payload):
        request.setResponseCode(status)
        request.setHeader("Content-Type", "application/json")
        return json.dumps(payload)

    def _error(self, request, status, message):
        return self._answer(request, status, {"error": {"code": status, "message": message}})

    def _seen(self, request):
        self.client_ports.add(request.getClientAddress().port)
        return defer.Deferred() if self.hang else None

    @app.route("/stocks/<name>", methods=["GET"])
    def lookup(self, request, name):
        if (pending := self._seen(request)) is not None:
            return pending
        if name not in self.stocks:
            return self._error(request, 404, "stock not found")
        return self._answer(request, 200, {"data": {"name": name, "price": 1.5, "quantity": self.stocks[name]}})

    @app.route("/orders", methods=["POST"])
    def trade(self, request):
        if (pending := self._seen(request)) is not None:
            return pending
        body = json.loads(request.content.read())
        self.trades_received.append(body)
        if self.trade_status is not None:
            return self._error(request, self.trade_status, "no leader reachable")
        name, kind, quantity = body["name"], body["type"], body["quantity"]
        if name not in self.stocks:
            return self._error(request, 404, "stock not found")
        if kind == "buy" and self.stocks[name] < quantity:
            return self._error(request, 400, "not enough stocks available to buy")
        self.stocks[name] += quantity if kind == "sell" else -quantity
        number = len(self.orders)
        self.orders.append({"number": number, "name": name, "type": kind, "quantity": quantity})
        return self._answer(request, 200, {"data": {"transaction_number": number}})

    @app.route("/orders/<int:number>", methods=["GET"])
    def query(self, request, number):
        if (pending := self._seen(request)) is not None:
            return pending
        if number >= len(self.orders):
            return self._error(request, 404, "transaction not found")
        order = dict(self.orders[number])
        if self.corrupt_order_queries and number == len(self.orders) - 1:
            order["quantity"] += 1
        return self._answer(request, 200, {"data": order})


@pytest.fixture
def frontend():
    fake = FakeFrontend()
    port = reactor.listenTCP(0, Site(fake.app.resource()), interface="127.0.0.1")
    fake.url = f"http://127.0.0.1:{port.getHost().port}"
    yield fake
    pytest_twisted.blockon(port.stopListening())


async def run_main(settings: ClientSettings) -> tuple[list[str], int]:
    """client.main as react would run it: its printed lines and exit status."""
    lines: list[str] = []
    try:
        await client.main(reactor, settings, lines.append)
    except SystemExit as e:
        return lines, e.code
    return lines, 0


@pytest_twisted.ensureDeferred
async def test_all_orders_verified(frontend):
    settings = ClientSettings(frontend.url, iterations=60, probability=0.6, seed=11)
    lines, status = await run_main(settings)

    assert status == 0, lines
    assert "ALL ORDERS VERIFIED" in lines
    assert len(frontend.orders) > 10
    assert f"Successful trades: {len(frontend.orders)}" in lines
    # The requests are the seeded plan's, whatever the answers were.
    planned = [s.trade.body() for s in client.plan(60, 0.6, random.Random(11)) if s.trade]
    assert frontend.trades_received == planned
    # One persistent connection carried every request.
    assert len(frontend.client_ports) == 1
    latency_lines = [line for line in lines if " ms over " in line]
    assert len(latency_lines) == 3


@pytest_twisted.ensureDeferred
async def test_a_wrong_order_is_a_non_match(frontend):
    frontend.corrupt_order_queries = True
    report = await _run(frontend, ClientSettings(frontend.url, iterations=30, probability=1.0, seed=2))

    assert report.outcomes[QUERY][MISMATCHED] == 1
    assert report.outcomes[QUERY][MATCHED] == len(frontend.orders) - 1
    assert not report.all_verified and not report.succeeded
    assert "A NON-MATCH WAS FOUND" in report.summary()
    lines, status = await run_main(ClientSettings(frontend.url, iterations=5, probability=1.0, seed=2))
    assert status == 1 and "A NON-MATCH WAS FOUND" in lines


@pytest_twisted.ensureDeferred
async def test_server_errors_are_counted_and_fail_the_run(frontend):
    frontend.trade_status = 503
    settings = ClientSettings(frontend.url, iterations=20, probability=1.0, seed=4)
    report = await _run(frontend, settings)

    assert report.outcomes[TRADE][FAILED] == 20
    assert report.outcomes[TRADE][ACCEPTED] == 0
    assert any("503" in p for p in report.problems)
    assert not report.succeeded
    lines, status = await run_main(settings)
    assert status == 1 and "trade: 20 sent: 0 accepted, 0 unknown stock, 0 not enough stocks, 20 failed" in lines


@pytest_twisted.ensureDeferred
async def test_running_out_of_stock_is_an_expected_answer(frontend):
    frontend.stocks = {name: 0 for name in STOCK_NAMES}
    report = await _run(frontend, ClientSettings(frontend.url, iterations=40, probability=1.0, seed=5))

    assert report.outcomes[TRADE][NOT_ENOUGH] > 0
    assert report.outcomes[TRADE][ACCEPTED] > 0  # the sells
    assert report.succeeded, report.summary()


@pytest_twisted.ensureDeferred
async def test_a_silent_front_end_times_out_and_the_client_gives_up(frontend):
    frontend.hang = True
    settings = ClientSettings(frontend.url, iterations=50, probability=0.0, seed=6, timeout=0.05)
    report = await _run(frontend, settings)

    assert report.gave_up and "timed out" in report.gave_up
    assert report.outcomes["lookup"][FAILED] == client.MAX_CONSECUTIVE_NO_ANSWER
    assert not report.succeeded


@pytest_twisted.ensureDeferred
async def test_verbose_prints_each_request_and_answer(frontend):
    settings = ClientSettings(frontend.url, iterations=1, probability=1.0, seed=1, verbose=True)
    lines, status = await run_main(settings)

    step = next(client.plan(1, 1.0, random.Random(1)))
    assert lines[0].startswith("> GET /stocks/")
    assert lines[1].startswith("< 200 ") or lines[1].startswith("< 404 ")
    assert lines[2] == f"> POST /orders {json.dumps(step.trade.body())}"
    assert status == 0


async def _run(frontend: FakeFrontend, settings: ClientSettings) -> client.ClientReport:
    from twisted.web.client import Agent, HTTPConnectionPool
    import treq.client

    pool = HTTPConnectionPool(reactor, persistent=True)
    try:
        return await client.run(reactor, treq.client.HTTPClient(Agent(reactor, pool=pool)), settings, print)
    finally:
        await pool.closeCachedConnections()

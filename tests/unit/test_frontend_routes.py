"""The front end's HTTP API (docs/api.md) through StubTreq, with in-memory backends.

The fakes keep one shared book (stocks and committed orders), so the fake leader applies the
seed's checks in the seed's order and the fake catalog sees the trades: the tests check what a
client observes, not which calls were made, wherever that is possible.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field

import pytest
from treq.testing import StubTreq
from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.logger import capturedLogs
from twisted.python.failure import Failure

from bazaar.config import Address
from bazaar.core.lru import LRUCache
from bazaar.core.orders import BUY, MAX_TRADE_QUANTITY, SELL, Order
from bazaar.frontend.app import MAX_NAME_LENGTH, FrontEnd
from bazaar.frontend.internal import CacheControl
from bazaar.frontend.backends import NotLeader, PeerUnavailable, PlacedOrder, StockInfo
from bazaar.frontend.leader import LeaderTracker
from bazaar.frontend.readiness import ReadinessCheck
from bazaar.frontend.trading import TradePlacer
from bazaar.v1 import order_pb2, trade_pb2
from tests.unit.replica_views import view_of

PROBE_TIMEOUT = 0.3
RPC_TIMEOUT = 1.0
REQUEST_TIMEOUT = 2.5  # a whole POST /orders
GENERATED_KEY = re.compile(r"fe-[0-9a-f]{32}")
TESLA_BUY = {"name": "tesla", "quantity": 1, "type": "buy"}
_TYPES = {trade_pb2.TRADE_TYPE_BUY: BUY, trade_pb2.TRADE_TYPE_SELL: SELL}


@dataclass
class Book:
    """What the catalog and the order log hold, shared by the fakes."""

    stocks: dict[str, list] = field(
        default_factory=lambda: {
            "tesla": [183.256, 1000],
            "ford": [11.93, 5],
            "gamestop": [20.0, 7],
        }
    )
    orders: list[Order] = field(default_factory=list)
    keys: dict[str, Order] = field(default_factory=dict)  # idempotency key -> the order it placed


class FakeCatalog:
    def __init__(self, book: Book) -> None:
        self.book = book
        self.down = False
        self.hold = False  # answer only when the test releases
        self.applied: int | None = None  # the trades it has applied through; None: all of them
        self.held: list[tuple[Deferred, StockInfo | None]] = []
        self.asked: list[tuple[str, int | None]] = []  # (name, min_applied) of each lookup

    @property
    def lookups(self) -> list[str]:
        return [name for name, _ in self.asked]

    def lookup(self, name: str, min_applied: int | None = None) -> Deferred:
        self.asked.append((name, min_applied))
        if self.down:
            return defer.fail(PeerUnavailable("catalog", "UNAVAILABLE"))
        if self.applied is not None and min_applied is not None and min_applied > self.applied:
            # A real catalog waits to have applied it, within the deadline, then gives up.
            return defer.fail(PeerUnavailable("catalog", "UNAVAILABLE"))
        stock = self.book.stocks.get(name)
        info = StockInfo(name, stock[0], stock[1]) if stock else None
        if self.hold:
            d: Deferred = Deferred()
            self.held.append((d, info))
            return d
        return defer.succeed(info)

    def probe(self) -> Deferred:
        return defer.succeed(not self.down)

    def release(self) -> None:
        held, self.held = self.held, []
        for d, info in held:
            d.callback(info)


class FakeReplica:
    """An order replica: leads once assigned, checks trades in the seed's order."""

    def __init__(self, book: Book, replica_id: int, clock: task.Clock) -> None:
        self.book = book
        self.id = replica_id
        self.clock = clock
        self.address = Address("10.0.0.1", 7000 + replica_id)
        self.up = True
        self.hang_probes = False
        self.leads = False
        self.refuse_leadership = False
        self.status_override: int | None = None
        self.followers: list[str] | None = None
        self.probes = 0
        self.requests: list[tuple] = []
        self.keys: list[str] = []
        self.timeouts: list[float] = []
        self.known_committed = -1  # as a follower: orders it may answer lookups for
        self.lookups: list[int] = []

    def _down(self) -> Deferred:
        return defer.fail(PeerUnavailable(str(self.address), "UNAVAILABLE"))

    def probe(self) -> Deferred:
        self.probes += 1
        return Deferred() if self.hang_probes else defer.succeed(self.up)

    def describe(self, wait_for_ready: bool = True) -> Deferred:
        def view(healthy: object):
            found = view_of(self.id, healthy)
            return found and dataclasses.replace(found, leading=self.leads)

        return self.probe().addCallback(view)

    def assign_followers(self, followers: list[str]) -> Deferred:
        if not self.up or self.refuse_leadership:
            return self._down()
        self.leads, self.followers = True, followers
        return defer.succeed(len(self.book.orders) - 1)

    def request(self, name: str, quantity: int, trade_type: int, key: str, timeout: float) -> Deferred:
        self.requests.append((name, quantity, trade_type))
        self.keys.append(key)
        self.timeouts.append(timeout)
        if not self.up:
            return self._down()
        if not self.leads:
            return defer.fail(NotLeader(f"replica {self.id}"))
        if self.status_override == order_pb2.REQUEST_STATUS_IN_DOUBT:
            # As a real leader: it logs the trade, waits for a majority until the call's
            # deadline, then says it cannot tell.
            self._trade(name, quantity, trade_type, key)
            return task.deferLater(self.clock, timeout, PlacedOrder, self.status_override, 0)
        if self.status_override is not None:
            return defer.succeed(PlacedOrder(self.status_override, 0))
        return defer.succeed(self._trade(name, quantity, trade_type, key))

    def _trade(self, name: str, quantity: int, trade_type: int, key: str) -> PlacedOrder:
        earlier = self.book.keys.get(key)
        if earlier is not None:
            if (earlier.name, earlier.quantity, earlier.type) != (name, quantity, _TYPES.get(trade_type)):
                return PlacedOrder(order_pb2.REQUEST_STATUS_KEY_REUSED, 0)
            return PlacedOrder(order_pb2.REQUEST_STATUS_OK, earlier.number)
        stock = self.book.stocks.get(name)
        if stock is None:
            return PlacedOrder(order_pb2.REQUEST_STATUS_STOCK_NOT_FOUND, 0)
        if trade_type not in _TYPES:
            return PlacedOrder(order_pb2.REQUEST_STATUS_INVALID_TYPE, 0)
        if quantity < 1:
            return PlacedOrder(order_pb2.REQUEST_STATUS_INVALID_QUANTITY, 0)
        if trade_type == trade_pb2.TRADE_TYPE_BUY and quantity > stock[1]:
            return PlacedOrder(order_pb2.REQUEST_STATUS_NOT_ENOUGH_STOCK, 0)
        stock[1] += quantity if trade_type == trade_pb2.TRADE_TYPE_SELL else -quantity
        order = Order(len(self.book.orders), name, _TYPES[trade_type], quantity)
        self.book.orders.append(order)
        self.book.keys[key] = order
        return PlacedOrder(order_pb2.REQUEST_STATUS_OK, order.number)

    def lookup(self, number: int) -> Deferred:
        self.lookups.append(number)
        if not self.up:
            return self._down()
        if not self.leads and number > self.known_committed:
            # A real replica refuses what it does not know to be committed (FAILED_PRECONDITION).
            return defer.fail(PeerUnavailable(str(self.address), "FAILED_PRECONDITION"))
        found = [o for o in self.book.orders if o.number == number]
        return defer.succeed(found[0] if found else None)


@dataclass
class Reply:
    code: int
    content_type: list[str] | None
    raw: bytes
    headers: object = None

    @property
    def json(self):
        return json.loads(self.raw)

    @property
    def error(self):
        body = self.json
        assert set(body) == {"error"}
        assert body["error"]["code"] == self.code  # body code and status always agree
        return body["error"]["message"]


class World:
    def __init__(self, cache: bool = True, replica_ids=(1, 2, 3), order_cache_size: int = 100) -> None:
        self.book = Book()
        self.catalog = FakeCatalog(self.book)
        self.clock = task.Clock()
        self.replicas = {i: FakeReplica(self.book, i, self.clock) for i in replica_ids}
        self.leaders = LeaderTracker(self.replicas, self.clock, PROBE_TIMEOUT, assign_timeout=2.0)
        self.cache = LRUCache(2) if cache else None
        trades = TradePlacer(self.leaders, self.clock, RPC_TIMEOUT, REQUEST_TIMEOUT)
        readiness = ReadinessCheck(self.leaders, self.catalog, self.clock, deadline=RPC_TIMEOUT)
        self.front_end = FrontEnd(self.catalog, self.leaders, self.cache, trades, readiness, order_cache_size)
        self.http = StubTreq(self.front_end.app.resource())
        # The internal listener's endpoints, with TLS off (no client certificate to check).
        self.internal = StubTreq(CacheControl(self.cache, None).app.resource())

    def start(self, method: str, path: str, body=None, headers=None, internal: bool = False) -> Deferred:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        http = self.internal if internal else self.http
        d = http.request(method, "http://frontend.test" + path, data=body, headers=headers)
        http.flush()
        self.http.flush()
        return d

    def finish(self, d: Deferred) -> Reply:
        self.http.flush()
        self.internal.flush()
        results: list = []
        d.addBoth(results.append)
        assert results, "no response yet"
        response = results[0]
        if isinstance(response, Failure):
            response.raiseException()
        raw: list = []
        self.http.content(response).addBoth(raw.append)
        self.http.flush()
        self.internal.flush()
        content_type = response.headers.getRawHeaders("content-type")
        return Reply(response.code, content_type, raw[0], response.headers)

    def call(self, method: str, path: str, body=None, headers=None, internal: bool = False) -> Reply:
        reply = self.finish(self.start(method, path, body, headers, internal))
        assert reply.content_type == ["application/json"]
        assert b"Traceback" not in reply.raw
        return reply

    def order(self, body, headers=None) -> Reply:
        return self.call("POST", "/orders", body, headers)

    def order_in_time(self, body, headers=None, answered_at: float | None = None) -> Reply:
        """POST /orders while the request's time runs out; `answered_at`: when the answer must
        come (give or take a step), and not before."""
        d = self.start("POST", "/orders", body, headers)
        if answered_at is not None:
            self.run(answered_at - 0.01)
            assert pending(d)
        self.run(REQUEST_TIMEOUT if answered_at is None else 0.02)
        reply = self.finish(d)
        assert reply.content_type == ["application/json"]
        return reply

    def run(self, seconds: float) -> None:
        """Let `seconds` pass in small steps, so that what each step schedules runs in time."""
        until = self.clock.seconds() + seconds
        while self.clock.seconds() < until:
            self.clock.advance(min(0.05, until - self.clock.seconds()))


def key_header(reply: Reply) -> list[str] | None:
    return reply.headers.getRawHeaders("idempotency-key")


def pending(d: Deferred) -> bool:
    """Whether `d` has no result yet (`called` is also true while it waits on another)."""
    seen: list = []

    def look(result):
        seen.append(result)
        return result

    d.addBoth(look)
    return not seen


@pytest.fixture
def world() -> World:
    return World()


# GET /stocks/<name>


def test_stock_lookup(world):
    reply = world.call("GET", "/stocks/tesla")
    assert reply.code == 200
    assert reply.json == {"data": {"name": "tesla", "price": 183.26, "quantity": 1000}}


def test_stock_price_is_rounded_to_two_places(world):
    world.book.stocks["amc"] = [4.7799999, 3]
    assert world.call("GET", "/stocks/amc").json["data"]["price"] == 4.78
    assert world.call("GET", "/stocks/gamestop").json["data"]["price"] == 20.0


def test_unknown_stock(world):
    reply = world.call("GET", "/stocks/rivian")
    assert (reply.code, reply.error) == (404, "stock not found")


@pytest.mark.parametrize(
    "path",
    ["/stocks/" + "x" * (MAX_NAME_LENGTH + 1), "/stocks/" + "é" * (MAX_NAME_LENGTH + 1)],
)
def test_overlong_stock_name_is_not_found_without_asking_the_catalog(world, path):
    reply = world.call("GET", path)
    assert (reply.code, reply.error) == (404, "stock not found")
    assert world.catalog.lookups == []


def test_empty_stock_name_is_an_unknown_path(world):
    assert world.call("GET", "/stocks/").code == 404


def test_url_that_is_not_utf8_gets_a_json_400(world):
    reply = world.call("GET", "/stocks/%FF%FE")
    assert reply.code == 400
    assert "UTF-8" in reply.error


def test_catalog_down_is_503(world):
    world.catalog.down = True
    reply = world.call("GET", "/stocks/tesla")
    assert reply.code == 503
    assert "catalog" in reply.error


def test_stock_lookup_never_waits_for_leader_selection(world):
    for replica in world.replicas.values():
        replica.hang_probes = True
    selecting = world.start("POST", "/orders", {"name": "tesla", "quantity": 1, "type": "buy"})
    assert pending(selecting)
    assert world.call("GET", "/stocks/tesla").code == 200
    world.clock.advance(PROBE_TIMEOUT)
    assert world.finish(selecting).code == 503


# The stock cache


def test_second_lookup_is_served_from_the_cache(world):
    world.call("GET", "/stocks/tesla")
    world.book.stocks["tesla"][1] = 1  # changed behind the front end's back: no invalidation
    assert world.call("GET", "/stocks/tesla").json["data"]["quantity"] == 1000
    assert world.catalog.lookups == ["tesla"]
    assert (world.cache.hits, world.cache.misses) == (1, 1)


def test_cache_hit_needs_no_catalog(world):
    world.call("GET", "/stocks/tesla")
    world.catalog.down = True
    assert world.call("GET", "/stocks/tesla").code == 200


def test_invalidation_endpoint_drops_the_stock(world):
    world.call("GET", "/stocks/tesla")
    world.book.stocks["tesla"][1] = 990
    reply = world.call("GET", "/cache/tesla", internal=True)
    assert (reply.code, reply.json) == (200, {"data": {}})
    assert world.call("GET", "/stocks/tesla").json["data"]["quantity"] == 990
    assert world.catalog.lookups == ["tesla", "tesla"]


def test_one_push_drops_every_stock_it_names(world):
    world.call("GET", "/stocks/tesla")
    world.call("GET", "/stocks/ford")
    world.book.stocks["tesla"][1] = 990
    world.book.stocks["ford"][1] = 1
    reply = world.call("POST", "/cache/invalidations", {"names": ["tesla", "ford", "never-looked-up"]}, internal=True)
    assert (reply.code, reply.json) == (200, {"data": {}})
    assert world.call("GET", "/stocks/tesla").json["data"]["quantity"] == 990
    assert world.call("GET", "/stocks/ford").json["data"]["quantity"] == 1


@pytest.mark.parametrize("body", [
    b"", b"{", b"[]", b'{"names": []}', b'{"names": "tesla"}', b'{"names": ["tesla", 3]}',
    b'{"names": ["tesla"], "more": 1}', b'{"name": ["tesla"]}', b'{"names": [' + b'"a",' * 1000 + b'"a"]}',
    b'[' * 100000 + b']' * 100000,
])
def test_a_push_that_is_not_a_list_of_names_is_refused_and_changes_nothing(world, body):
    world.call("GET", "/stocks/tesla")
    world.book.stocks["tesla"][1] = 990
    reply = world.call("POST", "/cache/invalidations", body, internal=True)
    assert reply.code == 400 and "names" in reply.json["error"]["message"]
    assert world.call("GET", "/stocks/tesla").json["data"]["quantity"] != 990, "still cached"


def test_invalidating_an_uncached_name_is_fine(world):
    assert world.call("GET", "/cache/never-looked-up", internal=True).json == {"data": {}}


def test_unknown_stocks_are_not_cached(world):
    world.call("GET", "/stocks/rivian")
    world.call("GET", "/stocks/rivian")
    assert world.catalog.lookups == ["rivian", "rivian"]
    assert len(world.cache) == 0


def test_cache_evicts_beyond_its_capacity(world):
    for name in ("tesla", "ford", "gamestop", "tesla"):
        world.call("GET", f"/stocks/{name}")
    assert world.catalog.lookups == ["tesla", "ford", "gamestop", "tesla"]
    assert world.cache.evictions >= 1


def test_lookup_in_flight_during_invalidation_does_not_refill_the_cache(world):
    """The stale-refill race: the held answer predates the trade that invalidated it."""
    world.catalog.hold = True
    lookup = world.start("GET", "/stocks/tesla")
    assert pending(lookup)
    world.book.stocks["tesla"][1] = 900  # the trade lands in the catalog ...
    world.call("GET", "/cache/tesla", internal=True)  # ... and its invalidation arrives
    world.catalog.release()  # then the lookup's old answer comes back
    assert world.finish(lookup).json["data"]["quantity"] == 1000
    world.catalog.hold = False
    assert world.call("GET", "/stocks/tesla").json["data"]["quantity"] == 900


def test_failed_lookup_leaves_no_open_fill(world):
    world.catalog.down = True
    world.call("GET", "/stocks/tesla")
    world.call("GET", "/stocks/rivian")
    assert world.cache.open_fills() == 0


def test_trade_drops_the_stock_from_the_cache_before_replying(world):
    world.call("GET", "/stocks/tesla")
    world.call("GET", "/stocks/ford")
    assert world.order({"name": "tesla", "quantity": 10, "type": "buy"}).code == 200
    assert "tesla" not in world.cache and "ford" in world.cache  # only the traded stock
    assert world.call("GET", "/stocks/tesla").json["data"]["quantity"] == 990
    assert world.catalog.asked == [("tesla", None), ("ford", None), ("tesla", 0)]


def test_a_refused_trade_leaves_the_cache_alone(world):
    world.call("GET", "/stocks/ford")
    assert world.order({"name": "ford", "quantity": 6, "type": "buy"}).code == 400
    assert "ford" in world.cache


def test_without_a_cache_every_lookup_asks_the_catalog():
    world = World(cache=False)
    world.call("GET", "/stocks/tesla")
    world.call("GET", "/stocks/tesla")
    assert world.catalog.lookups == ["tesla", "tesla"]
    assert world.call("GET", "/cache/tesla", internal=True).json == {"data": {}}
    assert world.order({"name": "tesla", "quantity": 1, "type": "sell"}).code == 200
    assert world.call("GET", "/stocks/tesla").json["data"]["quantity"] == 1001


# POST /orders


def test_buy_and_sell_get_consecutive_transaction_numbers(world):
    first = world.order({"name": "tesla", "quantity": 10, "type": "buy"})
    second = world.order({"name": "ford", "quantity": 3, "type": "sell"})
    assert (first.code, first.json) == (200, {"data": {"transaction_number": 0}})
    assert (second.code, second.json) == (200, {"data": {"transaction_number": 1}})
    assert world.book.stocks["tesla"][1] == 990 and world.book.stocks["ford"][1] == 8


def test_highest_replica_leads_with_the_others_as_followers(world):
    world.order({"name": "tesla", "quantity": 1, "type": "buy"})
    assert world.replicas[3].requests == [("tesla", 1, trade_pb2.TRADE_TYPE_BUY)]
    assert sorted(world.replicas[3].followers) == ["10.0.0.1:7001", "10.0.0.1:7002"]


def test_the_clients_key_goes_to_the_leader_verbatim(world):
    body = {"name": "tesla", "quantity": 1, "type": "buy"}
    reply = world.order(body, headers={"Idempotency-Key": "k1"})
    assert reply.code == 200
    assert world.replicas[3].keys == ["k1"]


# The leader's refusals: (body, status, message).
REFUSALS = [
    ({"name": "rivian", "quantity": 1, "type": "buy"}, 404, "stock not found"),
    ({"name": "tesla", "quantity": 1, "type": "hold"}, 400, "invalid request type"),
    ({"name": "tesla", "quantity": 0, "type": "buy"}, 400, "invalid number of stocks"),
    ({"name": "ford", "quantity": 6, "type": "buy"}, 400, "not enough stocks available to buy"),
    # The seed's order of checks: stock, then type, then quantity, then availability.
    ({"name": "rivian", "quantity": "x", "type": "hold"}, 404, "stock not found"),
    ({"name": "tesla", "quantity": "x", "type": "hold"}, 400, "invalid request type"),
    ({"name": "ford", "quantity": -6, "type": "buy"}, 400, "invalid number of stocks"),
]


@pytest.mark.parametrize("body, code, message", REFUSALS)
def test_refused_orders(world, body, code, message):
    reply = world.order(body)
    assert (reply.code, reply.error) == (code, message)
    assert world.book.orders == []


def test_selling_more_than_the_stock_holds_is_fine(world):
    assert world.order({"name": "ford", "quantity": 6, "type": "sell"}).code == 200


@pytest.mark.parametrize(
    "quantity",
    ["5", 5.0, 1.5, True, False, None, 0, -1, 10**30, MAX_TRADE_QUANTITY + 1, [], {}, "NaN"],
)
def test_invalid_quantities_reach_the_leader_as_zero(world, quantity):
    reply = world.order({"name": "tesla", "quantity": quantity, "type": "buy"})
    assert (reply.code, reply.error) == (400, "invalid number of stocks")
    assert world.replicas[3].requests == [("tesla", 0, trade_pb2.TRADE_TYPE_BUY)]


@pytest.mark.parametrize("digits", [31, 5000])
def test_a_quantity_with_too_many_digits_is_an_invalid_number(world, digits):
    # Past 4300 digits Python refuses to parse an int at all: still a quantity error, in order.
    body = b'{"name": "tesla", "type": "buy", "quantity": ' + b"9" * digits + b"}"
    reply = world.order(body)
    assert (reply.code, reply.error) == (400, "invalid number of stocks")
    assert world.replicas[3].requests == [("tesla", 0, trade_pb2.TRADE_TYPE_BUY)]


@pytest.mark.parametrize("trade_type", ["BUY", "Sell", "", None, 1, True, ["buy"], {"buy": 1}])
def test_invalid_types_reach_the_leader_as_unspecified(world, trade_type):
    reply = world.order({"name": "tesla", "quantity": 1, "type": trade_type})
    assert (reply.code, reply.error) == (400, "invalid request type")
    assert world.replicas[3].requests == [("tesla", 1, trade_pb2.TRADE_TYPE_UNSPECIFIED)]


@pytest.mark.parametrize(
    "name", [5, None, "", True, ["tesla"], "x" * (MAX_NAME_LENGTH + 1), "\ud800"]
)
def test_names_no_stock_can_have_are_not_found(world, name):
    reply = world.order({"name": name, "quantity": 1, "type": "buy"})
    assert (reply.code, reply.error) == (404, "stock not found")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe\xfa",
        b'{"name": "tesla", "quantity": 1, "type": "buy"',
        b"[]",
        b'["tesla", 1, "buy"]',
        b'"tesla"',
        b"42",
        b"null",
        b"true",
        b"[" * 100_000 + b"]" * 100_000,
        '{"name": "tésla"}'.encode("latin-1"),
    ],
)
def test_bodies_that_are_not_json_objects(world, body):
    reply = world.order(body)
    assert reply.code == 400
    assert "not a JSON object" in reply.error
    assert world.replicas[3].requests == []


@pytest.mark.parametrize(
    "body, missing",
    [
        ({}, "name"),
        ({"quantity": 1, "type": "buy"}, "name"),
        ({"name": "tesla", "type": "buy"}, "quantity"),
        ({"name": "tesla", "quantity": 1}, "type"),
    ],
)
def test_missing_fields_are_named(world, body, missing):
    reply = world.order(body)
    assert reply.code == 400
    assert f'"{missing}"' in reply.error


def test_extra_fields_are_ignored(world):
    assert world.order({"name": "tesla", "quantity": 1, "type": "buy", "x": [1]}).code == 200


def test_leader_that_cannot_trade_now_is_503(world):
    world.order({"name": "tesla", "quantity": 1, "type": "buy"})
    world.replicas[3].status_override = order_pb2.REQUEST_STATUS_UNAVAILABLE
    reply = world.order({"name": "tesla", "quantity": 1, "type": "buy"})  # at once: no clock
    assert reply.code == 503
    assert reply.error == "no order leader with a majority is available: nothing was executed"
    assert world.leaders.selections == 1  # unavailable is not a leader failure
    assert len(world.replicas[3].requests) == 2  # and it is definite: not asked again


def test_a_trade_in_doubt_until_the_deadline_is_504(world):
    world.replicas[3].status_override = order_pb2.REQUEST_STATUS_IN_DOUBT
    reply = world.order_in_time(TESLA_BUY, answered_at=REQUEST_TIMEOUT)
    assert (reply.code, reply.error) == (504, "outcome unknown: retry with the same Idempotency-Key")
    replica = world.replicas[3]
    assert len(replica.requests) == 3 and len(set(replica.keys)) == 1  # asked again, same key
    assert sum(replica.timeouts) == pytest.approx(REQUEST_TIMEOUT)  # each got what was left
    assert world.leaders.selections == 1  # in doubt is not a leader failure


def test_a_trade_in_doubt_then_settled_is_answered(world):
    world.replicas[3].status_override = order_pb2.REQUEST_STATUS_IN_DOUBT
    d = world.start("POST", "/orders", {"name": "tesla", "quantity": 4, "type": "buy"})
    world.replicas[3].status_override = None  # the entry commits: asking again tells
    world.clock.advance(RPC_TIMEOUT)
    reply = world.finish(d)
    assert (reply.code, reply.json) == (200, {"data": {"transaction_number": 0}})
    assert len(world.replicas[3].keys) == 2 and len(set(world.replicas[3].keys)) == 1
    assert world.book.stocks["tesla"][1] == 996


def test_unexpected_leader_status_is_504_not_500(world):
    # Not known to be "nothing executed": the client is told to retry under its key.
    world.order({"name": "tesla", "quantity": 1, "type": "buy"})
    world.replicas[3].status_override = order_pb2.REQUEST_STATUS_UNSPECIFIED
    reply = world.order({"name": "tesla", "quantity": 1, "type": "buy"}, {"Idempotency-Key": ["k"]})
    assert reply.code == 504
    assert "Idempotency-Key" in reply.error
    assert key_header(reply) == ["k"]


# Leader failover


def test_leader_crash_is_invisible_to_the_client(world):
    first = world.order({"name": "tesla", "quantity": 1, "type": "buy"})
    assert first.json == {"data": {"transaction_number": 0}}
    world.replicas[3].up = False
    reply = world.order({"name": "tesla", "quantity": 2, "type": "buy"})
    assert (reply.code, reply.json) == (200, {"data": {"transaction_number": 1}})
    assert len(world.replicas[3].requests) == 2  # the failed attempt
    assert world.replicas[2].requests == [("tesla", 2, trade_pb2.TRADE_TYPE_BUY)]
    # The crashed one too: the new leader catches it up once it answers again.
    assert world.replicas[2].followers == ["10.0.0.1:7003", "10.0.0.1:7001"]
    assert world.leaders.selections == 2


def test_replica_that_no_longer_leads_makes_the_front_end_select_again(world):
    world.order({"name": "tesla", "quantity": 1, "type": "buy"})
    world.replicas[3].leads = False  # e.g. it restarted and lost its assignment
    reply = world.order({"name": "tesla", "quantity": 1, "type": "buy"})
    assert reply.code == 200
    assert world.leaders.selections == 2
    assert world.leaders.current.replica_id == 3  # healthy, so assigned again


def test_failover_of_an_order_lookup(world):
    world.order({"name": "ford", "quantity": 2, "type": "sell"})
    world.replicas[3].up = False
    reply = world.call("GET", "/orders/0")
    assert reply.json == {"data": {"number": 0, "name": "ford", "type": "sell", "quantity": 2}}
    assert world.replicas[2].lookups == [0]


def test_selection_skips_a_replica_that_refuses_leadership(world):
    world.replicas[3].refuse_leadership = True
    assert world.order({"name": "tesla", "quantity": 1, "type": "buy"}).code == 200
    assert world.leaders.current.replica_id == 2
    assert world.replicas[2].followers == ["10.0.0.1:7003", "10.0.0.1:7001"]


def test_no_healthy_replica_is_503(world):
    for replica in world.replicas.values():
        replica.up = False
    reply = world.order({"name": "tesla", "quantity": 1, "type": "buy"})
    assert reply.code == 503
    assert "leader" in reply.error
    assert world.call("GET", "/orders/0").code == 503


def test_last_leader_dying_mid_request_is_504_at_the_deadline(world):
    # The failed call may have reached the leader and logged the trade: not a 503.
    world.order({"name": "tesla", "quantity": 1, "type": "buy"})
    for replica in world.replicas.values():
        replica.up = False
    reply = world.order_in_time(TESLA_BUY, answered_at=REQUEST_TIMEOUT)
    assert (reply.code, reply.error) == (504, "outcome unknown: retry with the same Idempotency-Key")


def test_frozen_replicas_cost_one_probe_deadline_in_total(world):
    for replica in world.replicas.values():
        replica.hang_probes = True
    d = world.start("POST", "/orders", {"name": "tesla", "quantity": 1, "type": "buy"})
    world.clock.advance(PROBE_TIMEOUT * 0.99)
    assert pending(d)
    world.clock.advance(PROBE_TIMEOUT * 0.01)
    assert world.finish(d).code == 503
    assert [r.probes for r in world.replicas.values()] == [1, 1, 1]


def test_frozen_higher_replica_does_not_block_a_healthy_lower_one(world):
    world.replicas[3].hang_probes = True
    d = world.start("POST", "/orders", {"name": "tesla", "quantity": 1, "type": "buy"})
    world.clock.advance(PROBE_TIMEOUT)
    assert world.finish(d).code == 200
    assert world.leaders.current.replica_id == 2


def test_concurrent_requests_share_one_selection(world):
    for replica in world.replicas.values():
        replica.hang_probes = True
    requests = [
        world.start("POST", "/orders", {"name": "tesla", "quantity": 1, "type": "buy"}),
        world.start("GET", "/orders/0"),
        world.start("GET", "/leader"),
    ]
    world.clock.advance(PROBE_TIMEOUT)
    assert [world.finish(d).code for d in requests] == [503, 503, 503]
    assert world.leaders.selections == 1
    assert [r.probes for r in world.replicas.values()] == [1, 1, 1]


def test_selection_is_retried_by_later_requests(world):
    for replica in world.replicas.values():
        replica.up = False
    assert world.order({"name": "tesla", "quantity": 1, "type": "buy"}).code == 503
    world.replicas[1].up = True
    # Replica 1 says it reaches the others, which do not answer here: a bounded wait first.
    assert world.order_in_time({"name": "tesla", "quantity": 1, "type": "buy"}).code == 200
    assert world.leaders.current.replica_id == 1


# GET /orders/<number>


def test_order_lookup(world):
    world.order({"name": "tesla", "quantity": 10, "type": "buy"})
    reply = world.call("GET", "/orders/0")
    order = {"number": 0, "name": "tesla", "type": "buy", "quantity": 10}
    assert (reply.code, reply.json) == (200, {"data": order})


def test_unknown_order(world):
    reply = world.call("GET", "/orders/7")
    assert (reply.code, reply.error) == (404, "transaction not found")
    assert world.replicas[3].lookups == [7]


@pytest.mark.parametrize(
    "number",
    ["-1", "abc", "1.5", "1e3", "+1", "%201", "0x1", "%D9%A3", "9" * 30, str(2**63), "1" * 5000],
)
def test_order_numbers_that_cannot_exist_are_not_found_without_asking(world, number):
    reply = world.call("GET", f"/orders/{number}")
    assert (reply.code, reply.error) == (404, "transaction not found")
    assert world.replicas[3].lookups == []


def test_largest_int64_order_number_is_asked_for(world):
    assert world.call("GET", f"/orders/{2**63 - 1}").code == 404
    assert world.replicas[3].lookups == [2**63 - 1]


# GET /leader


def test_leader_address(world):
    reply = world.call("GET", "/leader")
    assert (reply.code, reply.json) == (200, {"data": {"leader": "10.0.0.1:7003"}})


def test_leader_in_the_seed_form_with_the_callers_address(world):
    assert world.call("GET", "/leader/10.0.0.1:7001").json == {"data": {"leader": "10.0.0.1:7003"}}


def test_asking_for_the_leader_does_not_select_again(world):
    world.call("GET", "/leader")
    world.call("GET", "/leader")
    assert world.leaders.selections == 1


def test_no_leader_is_503(world):
    for replica in world.replicas.values():
        replica.up = False
    reply = world.call("GET", "/leader")
    assert reply.code == 503


# Paths and methods


@pytest.mark.parametrize(
    "path", ["/", "/stocks", "/orders/", "/nothing/here", "/stocks/tesla/extra", "/cache/"]
)
def test_unknown_paths_are_json_404(world, path):
    reply = world.call("GET", path)
    assert reply.code == 404
    assert reply.error


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/stocks/tesla"),
        ("DELETE", "/stocks/tesla"),
        ("GET", "/orders"),
        ("PUT", "/orders"),
        ("POST", "/orders/0"),
        ("POST", "/leader"),
    ],
)
def test_wrong_methods_are_json_405(world, method, path):
    reply = world.call(method, path, b"{}")
    assert reply.code == 405
    assert reply.error
    assert reply.headers.getRawHeaders("allow")


def test_on_the_public_port_the_invalidation_push_is_not_found_and_the_cache_shows_counters_only(world):
    world.call("GET", "/stocks/tesla")
    assert world.call("GET", "/cache/tesla").code == 404
    assert "tesla" in world.cache, "nothing dropped"
    assert world.call("GET", "/cache").json == {"data": {"enabled": True, "capacity": 2, "hits": 0, "misses": 1,
                                                         "evictions": 0}}
    assert world.call("POST", "/cache/tesla", internal=True).code == 405


def test_unexpected_backend_errors_are_a_json_500_without_traceback(world):
    world.catalog.lookup = lambda name, min_applied=None: defer.fail(ZeroDivisionError("a bug"))
    with capturedLogs() as events:
        reply = world.call("GET", "/stocks/tesla")
    assert (reply.code, reply.error) == (500, "internal error")
    assert b"ZeroDivisionError" not in reply.raw
    logged = [e["log_failure"] for e in events if "log_failure" in e]
    assert [f.type for f in logged] == [ZeroDivisionError]  # the operator gets the traceback


# -- idempotency keys ----------------------------------------------------------------------


def test_every_trade_gets_its_own_key_when_the_client_sends_none(world):
    for _ in range(2):
        assert world.order({"name": "tesla", "quantity": 1, "type": "buy"}).code == 200
    keys = world.replicas[3].keys
    assert len(set(keys)) == 2 and all(GENERATED_KEY.fullmatch(k) for k in keys)


def test_a_retry_under_the_clients_key_gets_the_same_number_and_trades_once(world):
    headers = {"Idempotency-Key": ["order-17"]}
    body = {"name": "tesla", "quantity": 4, "type": "buy"}
    first = world.order(body, headers)
    again = world.order(body, headers)
    assert first.json == again.json == {"data": {"transaction_number": 0}}
    assert world.replicas[3].keys == ["order-17", "order-17"]  # verbatim: no prefix
    assert len(world.book.orders) == 1 and world.book.stocks["tesla"][1] == 996


def test_a_key_reused_for_another_order_is_422_and_changes_nothing(world):
    headers = {"Idempotency-Key": ["k"]}
    assert world.order({"name": "tesla", "quantity": 4, "type": "buy"}, headers).code == 200
    reply = world.order({"name": "tesla", "quantity": 5, "type": "buy"}, headers)
    assert (reply.code, reply.json["error"]["code"]) == (422, 422)
    assert "Idempotency-Key" in reply.error
    assert key_header(reply) == ["k"]
    assert len(world.book.orders) == 1 and world.book.stocks["tesla"][1] == 996


@pytest.mark.parametrize("value", [b"", b"del\x7f", b"x" * 129, b"caf\xc3\xa9", b"tab\there"])
def test_a_malformed_idempotency_key_is_400_before_the_leader_is_asked(world, value):
    reply = world.order({"name": "nothing", "quantity": 1, "type": "buy"}, {b"Idempotency-Key": [value]})
    assert (reply.code, reply.json["error"]["code"]) == (400, 400)
    assert "Idempotency-Key" in reply.error
    assert key_header(reply) is None  # nothing to echo
    assert world.replicas[3].requests == []


@pytest.mark.parametrize(
    "body, message",
    [(b"not json", "request body is not a JSON object"), ({"name": "tesla"}, 'missing the field "quantity"')],
)
def test_the_bodys_shape_is_checked_before_the_key_header(world, body, message):
    reply = world.order(body, {b"Idempotency-Key": [b"tab\there"]})
    assert reply.code == 400 and message in reply.error
    assert key_header(reply) is None


@pytest.mark.parametrize("value", [b"k", b"x" * 128, b"~!@# $%^&*()", b"fe-not-generated"])
def test_keys_of_1_to_128_printable_ascii_characters_are_taken_as_they_are(world, value):
    reply = world.order({"name": "tesla", "quantity": 1, "type": "buy"}, {b"Idempotency-Key": [value]})
    assert reply.code == 200
    assert world.replicas[3].keys == [value.decode()]
    assert key_header(reply) == [value.decode()]


def test_the_redo_on_a_new_leader_carries_the_same_key(world):
    world.order({"name": "tesla", "quantity": 1, "type": "buy"})
    world.replicas[3].up = False
    assert world.order({"name": "tesla", "quantity": 2, "type": "buy"}).code == 200
    assert world.replicas[3].keys[-1] == world.replicas[2].keys[-1]


def test_with_no_leader_a_committed_order_is_still_read_from_a_replica(world):
    assert world.order({"name": "tesla", "quantity": 1, "type": "buy"}).code == 200
    for replica in world.replicas.values():
        replica.refuse_leadership = True
        replica.leads = False
    world.replicas[3].up = False
    world.replicas[1].known_committed = 0  # the leader had told it order 0 is committed
    world.leaders.failed(world.leaders.current)
    reply = world.call("GET", "/orders/0")
    assert reply.code == 200 and reply.json["data"]["number"] == 0
    assert world.call("GET", "/orders/1").code == 503  # nobody can vouch for it: not a 404


# -- the Idempotency-Key response header -------------------------------------------------


def _leader_unavailable(world: World) -> None:
    world.replicas[3].status_override = order_pb2.REQUEST_STATUS_UNAVAILABLE


def _leader_in_doubt(world: World) -> None:
    world.replicas[3].status_override = order_pb2.REQUEST_STATUS_IN_DOUBT


def _no_replica_up(world: World) -> None:
    for replica in world.replicas.values():
        replica.up = False


# Every kind of answer to POST /orders: (how the world is made to give it, body, status).
ANSWERS = {
    "executed": (None, TESLA_BUY, 200),
    **{f"refused {i}: {message}": (None, body, code) for i, (body, code, message) in enumerate(REFUSALS)},
    "not a JSON object": (None, b"[]", 400),
    "a missing field": (None, {"name": "tesla"}, 400),
    "a name no stock can have": (None, {"name": 5, "quantity": 1, "type": "buy"}, 404),
    "no majority": (_leader_unavailable, TESLA_BUY, 503),
    "no leader": (_no_replica_up, TESLA_BUY, 503),
    "in doubt": (_leader_in_doubt, TESLA_BUY, 504),
}


# With no leader to look a client's key up, an earlier request under it may still commit.
KEYED_CODES = {"no leader": 504}


@pytest.mark.parametrize("case", ANSWERS)
def test_every_answer_to_an_order_carries_the_clients_key(world, case):
    prepare, body, code = ANSWERS[case]
    if prepare is not None:
        prepare(world)
    reply = world.order_in_time(body, {"Idempotency-Key": ["order-17"]})
    assert reply.code == KEYED_CODES.get(case, code)
    assert key_header(reply) == ["order-17"]


@pytest.mark.parametrize("case", ANSWERS)
def test_every_answer_to_an_order_without_a_key_carries_the_generated_one(world, case):
    prepare, body, code = ANSWERS[case]
    if prepare is not None:
        prepare(world)
    reply = world.order_in_time(body)
    assert reply.code == code
    [key] = key_header(reply)
    assert GENERATED_KEY.fullmatch(key)
    asked = {k for r in world.replicas.values() for k in r.keys}
    assert asked <= {key}  # the key the client is told is the one its trade travelled under


def test_the_generated_key_is_the_one_the_leader_got_and_fresh_each_time(world):
    replies = [world.order(TESLA_BUY) for _ in range(2)]
    told = [key_header(reply) for reply in replies]
    assert told == [[k] for k in world.replicas[3].keys]
    assert told[0] != told[1]


def test_a_504_retried_under_the_key_it_carries_gets_the_answer(world):
    _leader_in_doubt(world)
    first = world.order_in_time(TESLA_BUY)
    assert first.code == 504
    world.replicas[3].status_override = None  # its entry commits after all
    again = world.order(TESLA_BUY, {"Idempotency-Key": key_header(first)})
    assert (again.code, again.json) == (200, {"data": {"transaction_number": 0}})
    assert len(world.book.orders) == 1


# -- read your writes ----------------------------------------------------------------------


def test_after_a_200_lookups_ask_the_catalog_for_that_trade(world):
    for _ in range(7):
        assert world.order({"name": "ford", "quantity": 1, "type": "sell"}).code == 200
    assert world.order(TESLA_BUY).json["data"]["transaction_number"] == 7
    for name in ("tesla", "ford", "gamestop"):
        assert world.call("GET", f"/stocks/{name}").code == 200
    assert world.catalog.asked == [("tesla", 7), ("ford", 6), ("gamestop", None)]


def test_a_stock_never_traded_is_looked_up_with_minus_one(world):
    world.call("GET", "/stocks/tesla")
    assert world.catalog.asked == [("tesla", None)]


def test_an_older_trade_acknowledged_again_does_not_lower_what_is_asked(world):
    first = {"Idempotency-Key": ["first"]}
    assert world.order(TESLA_BUY, first).json["data"]["transaction_number"] == 0
    assert world.order(TESLA_BUY).json["data"]["transaction_number"] == 1
    assert world.order(TESLA_BUY, first).json["data"]["transaction_number"] == 0  # a retry
    world.call("GET", "/stocks/tesla")
    assert world.catalog.asked == [("tesla", 1)]


@pytest.mark.parametrize("case", [c for c in ANSWERS if ANSWERS[c][2] != 200])
def test_an_order_not_answered_200_acknowledges_nothing(world, case):
    prepare, body, _ = ANSWERS[case]
    if prepare is not None:
        prepare(world)
    world.order_in_time(body)
    world.call("GET", "/stocks/tesla")
    world.call("GET", "/stocks/ford")
    assert world.catalog.asked == [("tesla", None), ("ford", None)]


def test_without_a_cache_lookups_ask_for_the_acknowledged_trade_too():
    world = World(cache=False)
    world.order(TESLA_BUY)
    world.order(TESLA_BUY)
    world.call("GET", "/stocks/tesla")
    world.call("GET", "/stocks/tesla")
    assert world.catalog.asked == [("tesla", 1), ("tesla", 1)]


def test_a_catalog_that_has_not_applied_the_acknowledged_trade_is_503_never_the_old_value(world):
    assert world.call("GET", "/stocks/tesla").json["data"]["quantity"] == 1000  # cached
    assert world.order({"name": "tesla", "quantity": 10, "type": "buy"}).code == 200
    world.catalog.applied = -1  # it has not applied the trade yet ...
    world.book.stocks["tesla"][1] = 1000  # ... and still holds the old quantity
    reply = world.call("GET", "/stocks/tesla")
    assert (reply.code, reply.error) == (503, "the catalog is unavailable")
    world.catalog.applied = 0  # caught up
    world.book.stocks["tesla"][1] = 990
    assert world.call("GET", "/stocks/tesla").json["data"]["quantity"] == 990


# -- the cache report (GET /cache) ---------------------------------------------------------


def test_the_cache_report_shows_counters_contents_and_events(world):
    for name in ("tesla", "ford", "tesla", "gamestop"):  # capacity 2: ford is evicted
        assert world.call("GET", f"/stocks/{name}").code == 200
    world.call("GET", "/cache/tesla", internal=True)
    report = world.call("GET", "/cache", internal=True).json["data"]
    assert report["enabled"] is True and report["capacity"] == 2
    assert (report["hits"], report["misses"], report["evictions"]) == (1, 3, 1)
    assert report["names"] == ["gamestop"]
    assert [(e["kind"], e["name"]) for e in report["events"]] == [
        ("insert", "tesla"), ("insert", "ford"), ("insert", "gamestop"), ("evict", "ford"),
        ("invalidate", "tesla"),
    ]
    later = world.call("GET", f"/cache?since={report['events'][2]['seq']}", internal=True).json["data"]["events"]
    assert [e["kind"] for e in later] == ["evict", "invalidate"]


@pytest.mark.parametrize("since", ["x", "1.5", "--1", "9" * 40, ""])
def test_a_bad_since_is_a_400(world, since):
    reply = world.call("GET", f"/cache?since={since}", internal=True)
    assert (reply.code, reply.json["error"]["code"]) == (400, 400)


def test_the_cache_report_without_a_cache():
    assert World(cache=False).call("GET", "/cache", internal=True).json == {"data": {"enabled": False}}

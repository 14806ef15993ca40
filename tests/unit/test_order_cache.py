"""GET /orders/<n> from the front end's committed orders: asked of a replica once, then kept."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from bazaar.config import MAX_ORDER_CACHE, MAX_STOCK_NAME, ConfigError, parse_config
from bazaar.core.orders import MAX_TRADE_QUANTITY, Order
from tests.unit.test_frontend_routes import World

TESLA_BUY = {"name": "tesla", "quantity": 2, "type": "buy"}


def asked(world: World) -> int:
    return sum(len(r.lookups) for r in world.replicas.values())


def test_a_committed_order_is_asked_once_then_answered_from_the_front_end():
    world = World()
    assert world.order(TESLA_BUY).code == 200
    first = world.call("GET", "/orders/0")
    assert asked(world) == 1
    for replica in world.replicas.values():
        replica.up = False  # even with no replica to ask, a committed order is known
    again = world.call("GET", "/orders/0")
    assert (again.code, again.json, again.content_type) == (200, first.json, ["application/json"])
    assert first.json == {"data": {"number": 0, "name": "tesla", "type": "buy", "quantity": 2}}
    assert asked(world) == 1


def test_a_number_not_found_is_asked_again_since_it_may_be_used_later():
    world = World()
    assert world.call("GET", "/orders/0").code == 404
    assert world.order(TESLA_BUY).code == 200
    assert world.call("GET", "/orders/0").code == 200
    assert asked(world) == 2


def test_the_kept_orders_are_bounded_least_recently_used_first():
    world = World(order_cache_size=2)
    for _ in range(3):
        assert world.order(TESLA_BUY | {"quantity": 1}, {"Idempotency-Key": f"k{_}"}).code == 200
    for number in (0, 1, 2):
        world.call("GET", f"/orders/{number}")
    assert sorted(world.front_end.orders) == [1, 2]
    world.call("GET", "/orders/0")
    assert asked(world) == 4


def test_size_zero_keeps_none():
    world = World(order_cache_size=0)
    world.order(TESLA_BUY)
    world.call("GET", "/orders/0")
    world.call("GET", "/orders/0")
    assert asked(world) == 2 and len(world.front_end.orders) == 0


@pytest.mark.parametrize("value", [-1, 10_000_001, "many", True, 1.5])
def test_a_bad_order_cache_size_is_refused(tmp_path, value):
    with pytest.raises(ConfigError, match="frontend.order_cache_size"):
        parse_config(f"[frontend]\norder_cache_size = {value!r}".replace("'", '"').replace("True", "true"), tmp_path)


def test_the_order_cache_size_is_read(tmp_path):
    assert parse_config("[frontend]\norder_cache_size = 0", tmp_path).frontend.order_cache_size == 0
    assert parse_config("", tmp_path).frontend.order_cache_size == 10_000


def test_the_largest_order_cache_allowed_stays_below_a_gigabyte():
    """frontend.order_cache_size's maximum, at the bytes one kept answer costs in the front
    end's own cache (measured here, with the longest stock name and quantity allowed)."""
    n = 10_000
    world = World(order_cache_size=n)
    kept = world.front_end.orders
    first = 10**9  # a long-running cluster's transaction numbers
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(first, first + n):
            order = Order(number, "x" * MAX_STOCK_NAME, "sell", MAX_TRADE_QUANTITY)
            kept[number] = json.dumps({"data": order.as_json()}).encode("utf-8")  # as GET /orders/<n> keeps it
        per_order = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert len(kept) == n
    assert 200 < per_order < 600, "what docs/api.md says of frontend.order_cache_size"
    assert MAX_ORDER_CACHE * per_order < 2**30

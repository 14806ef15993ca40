"""`bazaar load`'s plan (seeded, stock-preserving) and how it judges answers."""

from collections import Counter

import pytest

from bazaar.tools.client import LOOKUP_NAMES, UNKNOWN_STOCK, Answer, TradeRequest
from bazaar.evaluation.workload import (
    MAX_QUANTITY, OK, client_plan, client_rng, idempotency_key, lookup_outcome, query_outcome,
    trade_outcome,
)


def plan(seed=1, p=0.5, client=0, iterations=500):
    return client_plan(iterations, p, client_rng(seed, p, client))


def test_same_seed_same_plan():
    assert plan(seed=7) == plan(seed=7)


def test_other_seed_client_or_p_other_plan():
    assert plan(seed=7) != plan(seed=8)
    assert plan(client=0) != plan(client=1)
    assert plan(p=0.4) != plan(p=0.6)


def test_p_0_never_trades_and_p_1_always_does():
    assert all(step.trade is None for step in plan(p=0.0))
    assert all(step.trade is not None and step.trade.name == step.name for step in plan(p=1.0))


def test_the_share_of_trades_follows_p():
    steps = plan(p=0.4, iterations=5000)
    share = sum(step.trade is not None for step in steps) / len(steps)
    assert 0.37 < share < 0.43


def test_every_name_is_looked_up_the_unknown_one_too():
    assert set(step.name for step in plan(iterations=2000)) == set(LOOKUP_NAMES)


def test_per_stock_a_sell_comes_first_and_the_same_quantity_is_bought_back():
    held: Counter[str] = Counter()  # what this client has added to each stock
    previous: dict[str, TradeRequest] = {}
    for step in plan(p=0.8, iterations=3000):
        trade = step.trade
        if trade is None:
            continue
        assert 1 <= trade.quantity <= MAX_QUANTITY
        if trade.type == "buy":
            assert previous[trade.name].type == "sell"
            assert previous[trade.name].quantity == trade.quantity
            held[trade.name] -= trade.quantity
        else:
            assert trade.name not in previous or previous[trade.name].type == "buy"
            held[trade.name] += trade.quantity
        assert held[trade.name] >= 0  # so the catalog never drops below its start
        previous[trade.name] = trade


def test_keys_are_distinct_and_fit_the_header_limit():
    keys = {idempotency_key("abc123", cache, p, client, step)
            for cache in ("on", "off") for p in (0.0, 0.2) for client in range(3) for step in range(50)}
    assert len(keys) == 2 * 2 * 3 * 50
    assert all(len(k) <= 128 and k.isprintable() and k.isascii() for k in keys)


# ---- judging ---------------------------------------------------------------------------------

STOCK = {"data": {"name": "tesla", "price": 183.26, "quantity": 1000}}
NOT_FOUND = {"error": {"code": 404, "message": "stock not found"}}


def test_lookups():
    assert lookup_outcome("tesla", Answer(200, STOCK)) == OK
    assert lookup_outcome(UNKNOWN_STOCK, Answer(404, NOT_FOUND)) == OK
    assert lookup_outcome("tesla", Answer(404, NOT_FOUND)) == "404 stock not found"
    assert lookup_outcome("ford", Answer(200, STOCK)) == "200 unexpected answer"
    assert lookup_outcome("tesla", Answer(error="timeout")) == "timeout"
    assert lookup_outcome("tesla", Answer(503, None)) == "503 unexpected answer"


def test_trades():
    sell = TradeRequest("tesla", "sell", 3)
    assert trade_outcome(sell, Answer(200, {"data": {"transaction_number": 4}})) == (OK, 4)
    assert trade_outcome(TradeRequest(UNKNOWN_STOCK, "sell", 3), Answer(404, NOT_FOUND)) == (OK, None)
    out_of_stock = {"error": {"code": 400, "message": "not enough stocks available to buy"}}
    assert trade_outcome(TradeRequest("tesla", "buy", 3), Answer(400, out_of_stock)) == (
        "400 not enough stocks available to buy", None)
    assert trade_outcome(sell, Answer(error="connection error")) == ("connection error", None)


def test_queries():
    expected = {"number": 4, "name": "tesla", "type": "sell", "quantity": 3}
    assert query_outcome(expected, Answer(200, {"data": expected})) == OK
    assert query_outcome(expected, Answer(200, {"data": {**expected, "quantity": 2}})) == "200 did not match"
    missing = {"error": {"code": 404, "message": "transaction not found"}}
    assert query_outcome(expected, Answer(404, missing)) == "404 transaction not found"


def test_a_long_problem_is_cut_short():
    long = {"error": {"code": 500, "message": "x" * 500}}
    assert len(lookup_outcome("tesla", Answer(500, long))) <= 80


@pytest.mark.parametrize("iterations", [0, 1])
def test_tiny_plans(iterations):
    assert len(plan(iterations=iterations)) == iterations

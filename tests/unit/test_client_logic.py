"""The client's network-free parts: the seeded plan, judging answers, recording, statistics."""

import random

import pytest

from bazaar.tools.client import (
    ACCEPTED,
    FAILED,
    FOUND,
    LOOKUP,
    LOOKUP_NAMES,
    MATCHED,
    MISMATCHED,
    NOT_ENOUGH,
    QUERY,
    TRADE,
    UNKNOWN,
    UNKNOWN_STOCK,
    Answer,
    ClientReport,
    LatencyStats,
    OrderBook,
    TradeRequest,
    judge_lookup,
    judge_query,
    judge_trade,
    plan,
)

NO_ANSWER = Answer(error="ConnectionRefusedError")


def error(status: int, message: str) -> Answer:
    return Answer(status, {"error": {"code": status, "message": message}})


# ---- the plan ---------------------------------------------------------------------------


def test_same_seed_same_plan():
    assert list(plan(200, 0.5, random.Random(7))) == list(plan(200, 0.5, random.Random(7)))


def test_different_seeds_different_plans():
    assert list(plan(200, 0.5, random.Random(7))) != list(plan(200, 0.5, random.Random(8)))


def test_plan_draws_only_valid_requests_and_visits_every_name():
    steps = list(plan(1000, 0.5, random.Random(1)))
    assert len(steps) == 1000
    assert {s.name for s in steps} == set(LOOKUP_NAMES)
    trades = [s.trade for s in steps if s.trade]
    assert all(t.type in ("buy", "sell") and 1 <= t.quantity <= 100 for t in trades)
    assert {t.type for t in trades} == {"buy", "sell"}
    assert {t.quantity for t in trades} >= {1, 100}
    assert all(s.trade.name == s.name for s in steps if s.trade)


@pytest.mark.parametrize("probability, expected", [(0.0, 0), (1.0, 300)])
def test_probability_bounds(probability, expected):
    steps = plan(300, probability, random.Random(3))
    assert sum(1 for s in steps if s.trade) == expected


def test_probability_is_roughly_respected():
    trades = sum(1 for s in plan(10_000, 0.3, random.Random(5)) if s.trade)
    assert 2700 < trades < 3300


def test_unknown_stock_is_in_the_lookup_names():
    assert UNKNOWN_STOCK in LOOKUP_NAMES and len(LOOKUP_NAMES) == 11


# ---- judging answers --------------------------------------------------------------------


def test_lookup_found():
    answer = Answer(200, {"data": {"name": "tesla", "price": 183.26, "quantity": 1000}})
    assert judge_lookup("tesla", answer) == FOUND


@pytest.mark.parametrize(
    "name, answer",
    [
        ("tesla", error(404, "stock not found")),  # a real stock must exist
        ("tesla", Answer(200, {"data": {"name": "ford", "price": 1.0, "quantity": 1}})),
        ("tesla", Answer(200, {"data": {"name": "tesla", "price": "1", "quantity": 1}})),
        ("tesla", Answer(200, None)),  # not JSON
        ("tesla", error(503, "no leader")),
        ("tesla", NO_ANSWER),
        (UNKNOWN_STOCK, Answer(200, {"data": {"name": UNKNOWN_STOCK, "price": 1, "quantity": 1}})),
        (UNKNOWN_STOCK, error(500, "oops")),
    ],
)
def test_lookup_failures(name, answer):
    assert judge_lookup(name, answer) == FAILED


def test_lookup_of_the_unknown_stock_expects_404():
    assert judge_lookup(UNKNOWN_STOCK, error(404, "stock not found")) == UNKNOWN


def test_trade_accepted_returns_the_number():
    answer = Answer(200, {"data": {"transaction_number": 12}})
    assert judge_trade(TradeRequest("ford", "sell", 3), answer) == (ACCEPTED, 12)


def test_expected_refusals():
    buy = TradeRequest("ford", "buy", 100)
    assert judge_trade(buy, error(400, "not enough stocks available to buy")) == (NOT_ENOUGH, None)
    unknown = TradeRequest(UNKNOWN_STOCK, "sell", 1)
    assert judge_trade(unknown, error(404, "stock not found")) == (UNKNOWN, None)


@pytest.mark.parametrize(
    "trade, answer",
    [
        (TradeRequest("ford", "sell", 1), error(400, "not enough stocks available to buy")),
        (TradeRequest("ford", "buy", 1), error(400, "invalid number of stocks")),
        (TradeRequest("ford", "buy", 1), error(404, "stock not found")),
        (TradeRequest("ford", "buy", 1), Answer(200, {"data": {"transaction_number": True}})),
        (TradeRequest("ford", "buy", 1), Answer(200, {"data": {"transaction_number": -1}})),
        (TradeRequest("ford", "buy", 1), Answer(200, {"data": {}})),
        (TradeRequest("ford", "buy", 1), error(503, "no leader reachable")),
        (TradeRequest("ford", "buy", 1), NO_ANSWER),
    ],
)
def test_trade_failures(trade, answer):
    assert judge_trade(trade, answer) == (FAILED, None)


EXPECTED = {"number": 4, "name": "nike", "type": "buy", "quantity": 9}


def test_query_match():
    assert judge_query(EXPECTED, Answer(200, {"data": dict(EXPECTED)})) == MATCHED


@pytest.mark.parametrize(
    "data",
    [
        {**EXPECTED, "quantity": 10},
        {**EXPECTED, "quantity": "9"},
        {**EXPECTED, "type": "sell"},
        {**EXPECTED, "name": "amc"},
        {**EXPECTED, "number": 5},
        {k: v for k, v in EXPECTED.items() if k != "type"},
    ],
)
def test_query_mismatch(data):
    assert judge_query(EXPECTED, Answer(200, {"data": data})) == MISMATCHED


def test_query_of_a_lost_order_is_a_mismatch():
    assert judge_query(EXPECTED, error(404, "transaction not found")) == MISMATCHED


@pytest.mark.parametrize("answer", [error(503, "busy"), NO_ANSWER])
def test_query_without_an_answer_fails(answer):
    assert judge_query(EXPECTED, answer) == FAILED


# ---- recording and statistics -----------------------------------------------------------


def test_order_book_records_and_refuses_a_reused_number():
    book = OrderBook()
    assert book.record(0, TradeRequest("amc", "buy", 5))
    assert not book.record(0, TradeRequest("ford", "sell", 1))
    assert book.orders == {0: {"number": 0, "name": "amc", "type": "buy", "quantity": 5}}
    assert book.duplicates == [0]


def test_latency_averages_per_kind():
    stats = LatencyStats()
    for seconds in (0.1, 0.2, 0.6):
        stats.add(LOOKUP, seconds)
    stats.add(TRADE, 0.5)
    assert stats.average(LOOKUP) == pytest.approx(0.3)
    assert stats.count(LOOKUP) == 3
    assert stats.average(TRADE) == pytest.approx(0.5)
    assert stats.average(QUERY) is None and stats.count(QUERY) == 0


def _report_with_one_order() -> ClientReport:
    report = ClientReport()
    report.book.record(0, TradeRequest("amc", "buy", 5))
    report.note(TRADE, ACCEPTED)
    return report


def test_report_verified_when_every_order_matched():
    report = _report_with_one_order()
    report.note(LOOKUP, UNKNOWN)
    report.note(TRADE, NOT_ENOUGH)
    report.note(QUERY, MATCHED)
    report.latency.add(LOOKUP, 0.002)
    assert report.all_verified and report.succeeded
    lines = report.summary()
    assert "ALL ORDERS VERIFIED" in lines
    assert "lookup: 2.00 ms over 1 requests" in lines
    assert "order query: N/A over 0 requests" in lines


def test_report_mismatch():
    report = _report_with_one_order()
    report.note(QUERY, MISMATCHED, "GET /orders/0: ...")
    assert not report.all_verified and not report.succeeded
    assert "A NON-MATCH WAS FOUND" in report.summary()


def test_report_verified_but_a_request_failed_is_not_a_success():
    report = _report_with_one_order()
    report.note(QUERY, MATCHED)
    report.note(LOOKUP, FAILED, "GET /stocks/ford: 503")
    assert report.all_verified and not report.succeeded
    assert "GET /stocks/ford: 503" in report.summary()


def test_report_with_a_reused_number_is_not_verified():
    report = _report_with_one_order()
    report.book.record(0, TradeRequest("ford", "sell", 1))
    report.note(QUERY, MATCHED)
    assert not report.all_verified
    assert "transaction numbers handed out twice: 0" in report.summary()


def test_report_of_orders_never_checked():
    report = _report_with_one_order()
    report.gave_up = "3 requests in a row got no answer"
    assert not report.succeeded
    summary = report.summary()
    assert "A NON-MATCH WAS FOUND" in summary and "orders never checked: 1" in summary

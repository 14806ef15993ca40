"""What each load client sends, and how its answers are judged. Plain code, no I/O.

Each iteration looks up a random name of `bazaar.tools.client.LOOKUP_NAMES` (the unknown one must be
a 404), then with probability p trades it. Every accepted trade is queried back at once with
GET /orders/<n>, which must return that very order: so queries = accepted trades.

Trades never run a stock out: per stock, a client sells a small quantity first and buys the
same quantity back with its next trade of that stock, so its share of any stock is 0 or +q and
the catalog never drops below its starting level, whatever the clients' interleaving.

The plan is drawn up front from a generator seeded with (seed, p, client), so the same seed
sends the same requests, with the cache on and off alike.
"""

from __future__ import annotations

import random

from bazaar.tools.client import (
    ACCEPTED, FOUND, LOOKUP_NAMES, MATCHED, UNKNOWN, Answer, Step, TradeRequest,
    judge_lookup, judge_query, judge_trade,
)
from bazaar.core.orders import BUY, SELL

LOOKUP = "lookup"
TRADE = "trade"
QUERY = "query"
TYPES = (LOOKUP, TRADE, QUERY)

MAX_QUANTITY = 5
OK = "ok"
OUTCOME_CHARS = 80


def client_rng(seed: int, p: float, client: int) -> random.Random:
    return random.Random(f"bazaar-load/{seed}/{float(p)!r}/{client}")


def client_plan(iterations: int, p: float, rng: random.Random) -> list[Step]:
    """The lookups and trades of one client. The draws per step are fixed (name, coin, and a
    quantity when trading), so the plan depends only on the generator's seed."""
    sold: dict[str, int] = {}  # stock -> quantity sold and not yet bought back
    steps = []
    for _ in range(iterations):
        name = rng.choice(LOOKUP_NAMES)
        trade = None
        if rng.random() < p:
            quantity = rng.randint(1, MAX_QUANTITY)
            if name in sold:
                trade = TradeRequest(name, BUY, sold.pop(name))
            else:
                sold[name] = quantity
                trade = TradeRequest(name, SELL, quantity)
        steps.append(Step(name, trade))
    return steps


def idempotency_key(token: str, cache: str, p: float, client: int, step: int) -> str:
    """Unique per trade; `token` is fresh per invocation so that runs against the same front
    end never reuse a key (a reused key would answer with the old trade)."""
    return f"load-{token}-{cache}-{float(p)!r}-{client}-{step}"


# ---- judging ------------------------------------------------------------------------------


def _problem(answer: Answer, fallback: str) -> str:
    if answer.status is None:
        return (answer.error or "no answer")[:OUTCOME_CHARS]
    error = answer.body.get("error") if isinstance(answer.body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    text = f"{answer.status} {message}" if isinstance(message, str) and message else f"{answer.status} {fallback}"
    return text[:OUTCOME_CHARS]


def lookup_outcome(name: str, answer: Answer) -> str:
    """OK for the stock's data, or the expected 404 for the unknown name; else what went wrong."""
    return OK if judge_lookup(name, answer) in (FOUND, UNKNOWN) else _problem(answer, "unexpected answer")


def trade_outcome(trade: TradeRequest, answer: Answer) -> tuple[str, int | None]:
    """OK with the transaction number, OK without one for the unknown stock's 404, else the
    problem; running out of stock is a problem too (the plan is meant to prevent it)."""
    outcome, number = judge_trade(trade, answer)
    if outcome in (ACCEPTED, UNKNOWN):
        return OK, number
    return _problem(answer, "unexpected answer"), None


def query_outcome(expected: dict[str, object], answer: Answer) -> str:
    return OK if judge_query(expected, answer) == MATCHED else _problem(answer, "did not match")

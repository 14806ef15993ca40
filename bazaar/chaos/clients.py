"""The harness's trading clients: treq on the reactor, one shared connection pool.

Each client places random trades, every one under a fresh Idempotency-Key. An answer that leaves
the trade in doubt (503, a timeout, a broken connection, any 5xx) is retried with the same
request and the same key until a definite answer comes or the drain deadline passes. Every
attempt is recorded with its times and outcome; the records are plain data (see report.py).
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

STOCK_NAMES = (
    "tesla", "ford", "apple", "amazon", "nvidia", "intel", "meta", "nike", "amc", "gamestop",
)
MAX_QUANTITY = 20
REQUEST_TIMEOUT = 5.0  # seconds for one whole exchange, body included
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 0.5

# Outcomes of one attempt. OK and the 4xx ones are definite; the rest leave the trade in doubt.
OK = "200 ok"
TIMEOUT = "timeout"
NO_CONNECTION = "connection error"


@dataclass(frozen=True)
class Trade:
    name: str
    type: str
    quantity: int

    def body(self) -> dict[str, object]:
        return {"name": self.name, "type": self.type, "quantity": self.quantity}


@dataclass(frozen=True)
class Attempt:
    client: int
    key: str
    sent: float  # seconds since the run started
    done: float
    outcome: str  # OK, "<status> <message>", TIMEOUT, NO_CONNECTION, ...
    number: int | None = None

    @property
    def latency(self) -> float:
        return self.done - self.sent

    @property
    def definite(self) -> bool:
        return self.outcome == OK or self.outcome[:1] == "4"


@dataclass
class Records:
    """Everything the clients saw."""

    attempts: list[Attempt] = field(default_factory=list)
    trades: dict[str, Trade] = field(default_factory=dict)  # every key sent -> its trade
    acknowledged: dict[str, int] = field(default_factory=dict)  # key -> transaction number
    acked_at: dict[str, float] = field(default_factory=dict)  # key -> time of the 200
    refused: dict[str, str] = field(default_factory=dict)  # key -> the definite 4xx outcome
    in_doubt: set[str] = field(default_factory=set)  # keys given up at the drain deadline


def outcome_of(status: int, body: Any) -> tuple[str, int | None]:
    """Classify one HTTP answer to POST /orders: (outcome, transaction number or None)."""
    if status == 200:
        try:
            number = body["data"]["transaction_number"]
        except (TypeError, KeyError):
            number = None
        if isinstance(number, int) and not isinstance(number, bool) and number >= 0:
            return OK, number
        return "200 without a transaction number", None
    try:
        message = str(body["error"]["message"])
    except (TypeError, KeyError):
        message = ""
    if status == 400 and "not enough" in message:
        return "400 not enough stocks", None
    return (f"{status} {message}" if message else str(status)), None


def describe_failure(e: BaseException) -> str:
    from twisted.internet.defer import CancelledError, TimeoutError

    reasons = getattr(e, "reasons", None)
    if reasons:
        e = reasons[0].value
    if isinstance(e, (TimeoutError, CancelledError)):
        return TIMEOUT
    return NO_CONNECTION


class TradingClient:
    def __init__(
        self,
        number: int,
        http: Any,  # treq.client.HTTPClient
        reactor: Any,
        url: str,
        rng: random.Random,
        clock: Callable[[], float],
        records: Records,
    ) -> None:
        self.number = number
        self._http = http
        self._reactor = reactor
        self._url = url.rstrip("/") + "/orders"
        self._rng = rng
        self._clock = clock
        self._records = records
        self._owed: dict[str, int] = {}  # stock -> quantity sold and not yet bought back

    def _next_trade(self) -> Trade:
        """A sale, then the purchase of what was sold: whatever the clients' interleaving and
        however many trades a run makes, no stock falls below its start, so no trade is
        refused for want of stock (a refusal the invariants would have to explain)."""
        name = self._rng.choice(STOCK_NAMES)
        owed = self._owed.pop(name, None)
        if owed is not None:
            return Trade(name, "buy", owed)
        quantity = self._rng.randint(1, MAX_QUANTITY)
        self._owed[name] = quantity
        return Trade(name, "sell", quantity)

    async def run(self, end: float, drain_deadline: float) -> None:
        """Trade until `end`; the trade pending then is retried until `drain_deadline`."""
        sequence = 0
        while self._clock() < end:
            trade = self._next_trade()
            key = f"chaos-{self.number}-{sequence}-{uuid.uuid4().hex[:12]}"
            sequence += 1
            await self.place(key, trade, drain_deadline)

    async def place(self, key: str, trade: Trade, drain_deadline: float) -> None:
        records = self._records
        records.trades[key] = trade
        backoff = BACKOFF_FIRST
        while True:  # bounded by drain_deadline
            sent = self._clock()
            outcome, number = await self._post(key, trade)
            attempt = Attempt(self.number, key, sent, self._clock(), outcome, number)
            records.attempts.append(attempt)
            if outcome == OK:
                records.acknowledged[key] = number  # type: ignore[assignment]
                records.acked_at[key] = attempt.done
                return
            if attempt.definite:
                records.refused[key] = outcome
                return
            if self._clock() + backoff > drain_deadline:
                records.in_doubt.add(key)
                return
            await deferLater(self._reactor, backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _post(self, key: str, trade: Trade) -> tuple[str, int | None]:
        exchange = Deferred.fromCoroutine(self._exchange(key, trade))
        # Cancels the whole exchange, so a front end frozen mid-answer is caught too.
        exchange.addTimeout(REQUEST_TIMEOUT, self._reactor)
        try:
            return await exchange
        except Exception as e:
            return describe_failure(e), None

    async def _exchange(self, key: str, trade: Trade) -> tuple[str, int | None]:
        response = await self._http.post(
            self._url, json=trade.body(), headers={"Idempotency-Key": [key]}
        )
        content = await response.content()
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        return outcome_of(response.code, body)


async def get_json(http: Any, reactor: Any, url: str, timeout: float) -> tuple[int | None, Any]:
    """(status, decoded body) of GET url, or (None, None) when no answer came in time."""

    async def exchange() -> tuple[int, Any]:
        response = await http.get(url)
        content = await response.content()
        try:
            return response.code, json.loads(content)
        except ValueError:
            return response.code, None

    d = Deferred.fromCoroutine(exchange())
    d.addTimeout(timeout, reactor)
    try:
        return await d
    except Exception:
        return None, None

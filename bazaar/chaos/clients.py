"""The harness's trading clients: treq on the reactor, one shared connection pool.

Two kinds of client trade side by side, as real clients would:

- keyed: every trade under a fresh Idempotency-Key of its own. An answer that leaves the trade
  in doubt (503, 504, any other 5xx, a timeout, a broken connection) is retried with the same
  body and key until a definite answer (200 or 4xx) comes or the drain deadline passes. Now and
  then (REPEAT_SHARE) a trade already answered is sent once more under its key: the answer must
  be the same.
- keyless: sends no key, and reads the one the front end made from the `Idempotency-Key` header
  of the answer. A 503 ends the trade (nothing was executed). After a 504, another 5xx, a
  timeout or a broken connection it either retries later under the header's key or gives up
  (GIVE_UP_SHARE, seeded); when no answer ever named a key (its first attempt got none) it can
  only give up, and the trade is "lost": it may have been executed under a key nobody knows.

A trade given up without a definite answer leaves its key in doubt (reported, not a failure).
Every attempt is recorded with its times, its outcome and the key it ended up under (the one
sent, else the response header's); the records are plain data (see invariants.py, report.py).
Clients start trades only in the bursts of the shared Traffic timeline (traffic.py).
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from bazaar.chaos.traffic import Traffic
from bazaar.core.stock import DEFAULT_STOCKS, STOCK_NAMES, Stock

__all__ = ["STOCK_NAMES", "OK", "TIMEOUT", "NO_CONNECTION", "Attempt", "Records", "Trade", "TradingClient",
           "outcome_of", "describe_failure", "get_json"]

MAX_QUANTITY = 20
REQUEST_TIMEOUT = 5.0  # seconds for one whole exchange, body included (the front end's own is 4 s)
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 0.5
RETRY_LATER = (0.2, 1.0)  # seconds a keyless client waits before retrying under the header's key
GIVE_UP_SHARE = 0.5  # chance that a keyless client gives up on a trade left in doubt
REFUSE_SHARE = 0.02  # chance of a buy no stock can ever cover (refused for lack of stock)
IMPOSSIBLE_EXTRA = 1_000_000  # shares beyond the initial quantity such a buy asks for
REPEAT_SHARE = 0.03  # chance that a keyed client sends an answered trade once more
KEY_HEADER = b"Idempotency-Key"

# Outcomes of one attempt. OK and the 4xx ones are definite; the rest leave the trade in doubt.
OK = "200 ok"
TIMEOUT = "timeout"
NO_CONNECTION = "connection error"
NOT_ENOUGH = "400 not enough stocks"


@dataclass(frozen=True)
class Trade:
    name: str
    type: str
    quantity: int

    def body(self) -> dict[str, object]:
        return {"name": self.name, "type": self.type, "quantity": self.quantity}


def status_of(outcome: str) -> int | None:
    """The HTTP status an outcome records; None for an attempt that got no HTTP answer."""
    head = outcome[:3]
    return int(head) if head.isdigit() else None


@dataclass(frozen=True)
class Attempt:
    client: int
    key: str  # the key sent, else the one the answer's header named, else "" (no answer)
    sent: float  # seconds since the run started
    done: float
    outcome: str  # OK, "<status> <message>", TIMEOUT, NO_CONNECTION, ...
    number: int | None = None
    sent_key: str | None = None  # None: sent without an Idempotency-Key
    header: str | None = None  # the answer's Idempotency-Key header (None: no answer, or none)

    @property
    def latency(self) -> float:
        return self.done - self.sent

    @property
    def status(self) -> int | None:
        return status_of(self.outcome)

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def definite(self) -> bool:
        return self.outcome == OK or self.outcome[:1] == "4"


@dataclass
class Records:
    """Everything the clients saw."""

    attempts: list[Attempt] = field(default_factory=list)
    trades: dict[str, Trade] = field(default_factory=dict)  # every key sent or given -> its trade
    acknowledged: dict[str, int] = field(default_factory=dict)  # key -> transaction number
    acked_at: dict[str, float] = field(default_factory=dict)  # key -> time of the 200
    refused: dict[str, str] = field(default_factory=dict)  # key -> the definite 4xx outcome
    in_doubt: set[str] = field(default_factory=set)  # keys given up without a definite answer
    not_executed: set[str] = field(default_factory=set)  # keys given up after 503s alone
    lost: list[Trade] = field(default_factory=list)  # keyless trades no answer gave a key to


@dataclass(frozen=True)
class Answer:
    outcome: str
    number: int | None = None
    header: str | None = None


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
        return NOT_ENOUGH, None
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
        keyed: bool = True,
        stocks: Sequence[Stock] = DEFAULT_STOCKS,
        traffic: Traffic | None = None,
    ) -> None:
        self.number = number
        self.keyed = keyed
        self._http = http
        self._reactor = reactor
        self._url = url.rstrip("/") + "/orders"
        self._rng = rng
        self._clock = clock
        self._records = records
        self._initial = {s.name: s.quantity for s in stocks}
        self._names = [s.name for s in stocks]
        self._traffic = traffic if traffic is not None else Traffic.none()
        self._owed: dict[str, int] = {}  # stock -> quantity sold and not yet bought back

    def _next_trade(self) -> Trade:
        """A sale, then the purchase of what was sold: whatever the clients' interleaving and
        however many trades a run makes, no stock falls below its start, so no trade is
        refused for want of stock, but for the rare buy asking for more than the table could
        ever hold (IMPOSSIBLE_EXTRA beyond its start), which always is. A trade whose outcome
        stays unknown counts as done; drifts that leaves stay far below IMPOSSIBLE_EXTRA."""
        name = self._rng.choice(self._names)
        if self._rng.random() < REFUSE_SHARE:
            return Trade(name, "buy", self._initial[name] + IMPOSSIBLE_EXTRA)
        owed = self._owed.pop(name, None)
        if owed is not None:
            return Trade(name, "buy", owed)
        quantity = self._rng.randint(1, MAX_QUANTITY)
        self._owed[name] = quantity
        return Trade(name, "sell", quantity)

    async def run(self, end: float, drain_deadline: float) -> None:
        """Trade in bursts until `end`; the trade pending then is retried until `drain_deadline`."""
        sequence = 0
        while True:
            pause = self._traffic.pause_at(self._clock())
            if pause is not None:
                await self._sleep(min(pause.end, end) - self._clock())
            if self._clock() >= end:
                return
            trade = self._next_trade()
            if not self.keyed:
                await self.place_keyless(trade, drain_deadline)
                continue
            key = f"chaos-{self.number}-{sequence}-{uuid.uuid4().hex[:12]}"
            sequence += 1
            await self.place(key, trade, drain_deadline)
            answered = key in self._records.acknowledged or key in self._records.refused
            if answered and self._rng.random() < REPEAT_SHARE:
                # Once more under an answered key: I3 checks that the answer is the same.
                self._settle(await self._attempt(key, trade))

    async def place(self, key: str, trade: Trade, drain_deadline: float) -> None:
        """A keyed trade: retried under `key` until a definite answer or `drain_deadline`."""
        records = self._records
        records.trades[key] = trade
        backoff, only_503 = BACKOFF_FIRST, True
        while True:  # bounded by drain_deadline
            attempt = await self._attempt(key, trade)
            if self._settle(attempt):
                return
            only_503 = only_503 and attempt.status == 503
            if self._clock() + backoff > drain_deadline:
                (records.not_executed if only_503 else records.in_doubt).add(key)
                return
            await self._sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def place_keyless(self, trade: Trade, drain_deadline: float) -> None:
        """A trade sent without a key: see the module's docstring."""
        records = self._records
        key: str | None = None
        only_503 = True
        while True:
            attempt = await self._attempt(key, trade)
            if key is None and attempt.header is not None:
                key = attempt.header
                records.trades.setdefault(key, trade)
            if self._settle(attempt):
                return
            only_503 = only_503 and attempt.status == 503
            if key is None:
                # No answer named a key (none came, or it lacked the header): nothing to retry.
                if not attempt.answered:
                    records.lost.append(trade)
                return
            if attempt.status == 503:
                (records.not_executed if only_503 else records.in_doubt).add(key)
                return
            delay = self._rng.uniform(*RETRY_LATER)
            if self._rng.random() < GIVE_UP_SHARE or self._clock() + delay > drain_deadline:
                records.in_doubt.add(key)
                return
            await self._sleep(delay)

    def _settle(self, attempt: Attempt) -> bool:
        """Record a definite answer; False when the attempt left the trade in doubt. An answer
        that named no key for a keyless trade is recorded only as an attempt (I3 fails it)."""
        records, key = self._records, attempt.key
        if not key:
            return attempt.definite
        if attempt.outcome == OK:
            if key not in records.acknowledged:
                records.acknowledged[key] = attempt.number  # type: ignore[assignment]
                records.acked_at[key] = attempt.done
            return True
        if attempt.definite:
            records.refused.setdefault(key, attempt.outcome)
            return True
        return False

    async def _attempt(self, key: str | None, trade: Trade) -> Attempt:
        sent = self._clock()
        answer = await self._post(key, trade)
        resolved = key if key is not None else (answer.header or "")
        attempt = Attempt(self.number, resolved, sent, self._clock(), answer.outcome, answer.number, key,
                          answer.header)
        self._records.attempts.append(attempt)
        return attempt

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            await deferLater(self._reactor, seconds)

    async def _post(self, key: str | None, trade: Trade) -> Answer:
        exchange = Deferred.fromCoroutine(self._exchange(key, trade))
        # Cancels the whole exchange, so a front end frozen mid-answer is caught too.
        exchange.addTimeout(REQUEST_TIMEOUT, self._reactor)
        try:
            return await exchange
        except Exception as e:
            return Answer(describe_failure(e))

    async def _exchange(self, key: str | None, trade: Trade) -> Answer:
        headers = {} if key is None else {KEY_HEADER: [key.encode("ascii")]}
        response = await self._http.post(self._url, json=trade.body(), headers=headers)
        content = await response.content()
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        outcome, number = outcome_of(response.code, body)
        return Answer(outcome, number, header_key(response.headers.getRawHeaders(KEY_HEADER)))


def header_key(values: Sequence[bytes] | None) -> str | None:
    """The key an answer's Idempotency-Key header names (its last value), or None."""
    if not values:
        return None
    return values[-1].decode("ascii", "replace")


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

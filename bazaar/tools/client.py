"""`bazaar client` (docs/api.md): a load generator that checks what the front end remembers.

Each iteration looks up a random stock, then with probability p trades it; every accepted
trade is recorded and, at the end, read back with GET /orders/<n> and compared.

The plan (which stock, whether to trade, buy or sell, how many) is drawn up front from a
seeded generator, so a given seed always sends the same requests whatever the answers.
Judging answers, recording orders and latency statistics are plain code; only `run` and
`Frontend` touch the network.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote

from twisted.internet.defer import Deferred

from bazaar.core.orders import BUY, TRADE_TYPES
from bazaar.core.stock import STOCK_NAMES

# Not in the catalog: the front end must answer 404 for it, for lookups and trades alike.
UNKNOWN_STOCK = "imagine company"
LOOKUP_NAMES = STOCK_NAMES + (UNKNOWN_STOCK,)
MAX_QUANTITY = 100

LOOKUP = "lookup"
TRADE = "trade"
QUERY = "order query"
KINDS = (LOOKUP, TRADE, QUERY)

# Outcomes, by kind, in the order the summary prints them. FAILED is the only one that is
# a fault of the service (a 5xx, no answer, or an answer the contract does not allow).
FOUND = "found"
UNKNOWN = "unknown stock"
ACCEPTED = "accepted"
NOT_ENOUGH = "not enough stocks"
MATCHED = "matched"
MISMATCHED = "did not match"
FAILED = "failed"
OUTCOMES = {
    LOOKUP: (FOUND, UNKNOWN, FAILED),
    TRADE: (ACCEPTED, UNKNOWN, NOT_ENOUGH, FAILED),
    QUERY: (MATCHED, MISMATCHED, FAILED),
}

# A front end that does not answer this many requests in a row is down; waiting out a
# timeout for each of thousands of remaining requests would tell nothing more.
MAX_CONSECUTIVE_NO_ANSWER = 3
PROBLEMS_SHOWN = 10


# ---- the plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TradeRequest:
    name: str
    type: str
    quantity: int

    def body(self) -> dict[str, object]:
        return {"name": self.name, "type": self.type, "quantity": self.quantity}

    def as_order(self, number: int) -> dict[str, object]:
        """The order GET /orders/<number> must return once this trade got `number`."""
        return {"number": number, "name": self.name, "type": self.type, "quantity": self.quantity}


@dataclass(frozen=True)
class Step:
    """One iteration: look up `name`, then place `trade` if there is one."""

    name: str
    trade: TradeRequest | None


def plan(iterations: int, probability: float, rng: random.Random) -> Iterator[Step]:
    """The iterations' random choices. Draws happen in a fixed order per step, so the plan
    depends only on the generator's seed."""
    for _ in range(iterations):
        name = rng.choice(LOOKUP_NAMES)
        trade = None
        if rng.random() < probability:
            trade = TradeRequest(name, rng.choice(TRADE_TYPES), rng.randint(1, MAX_QUANTITY))
        yield Step(name, trade)


# ---- judging answers --------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What came back for one request: a status and decoded JSON body, or a transport error."""

    status: int | None = None
    body: Any = None
    error: str | None = None  # set when there was no HTTP answer at all

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        return f"{self.status} {json.dumps(self.body) if self.body is not None else '(not JSON)'}"


def _data(answer: Answer) -> Any:
    return answer.body.get("data") if isinstance(answer.body, dict) else None


def _error_message(answer: Answer) -> str:
    error = answer.body.get("error") if isinstance(answer.body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else ""


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_price(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def judge_lookup(name: str, answer: Answer) -> str:
    """FOUND, UNKNOWN (the expected 404 for the made-up name) or FAILED."""
    if name == UNKNOWN_STOCK:
        return UNKNOWN if answer.status == 404 else FAILED
    data = _data(answer)
    if (
        answer.status == 200
        and isinstance(data, dict)
        and data.get("name") == name
        and _is_price(data.get("price"))
        and _is_count(data.get("quantity"))
    ):
        return FOUND
    return FAILED


def judge_trade(trade: TradeRequest, answer: Answer) -> tuple[str, int | None]:
    """The outcome and, when ACCEPTED, the transaction number."""
    if answer.status == 200:
        data = _data(answer)
        number = data.get("transaction_number") if isinstance(data, dict) else None
        return (ACCEPTED, number) if _is_count(number) else (FAILED, None)
    if trade.name == UNKNOWN_STOCK and answer.status == 404:
        return UNKNOWN, None
    # Running out of stock is a legitimate answer to a buy, never to a sell.
    if (
        trade.type == BUY
        and answer.status == 400
        and _error_message(answer).startswith("not enough stocks")
    ):
        return NOT_ENOUGH, None
    return FAILED, None


def judge_query(expected: dict[str, object], answer: Answer) -> str:
    """MATCHED, MISMATCHED (a different order, or none: a recorded trade was lost) or FAILED."""
    if answer.status == 200:
        return MATCHED if _data(answer) == expected else MISMATCHED
    if answer.status == 404:
        return MISMATCHED
    return FAILED


# ---- recording and statistics -----------------------------------------------------------


class OrderBook:
    """The trades the front end accepted, by transaction number."""

    def __init__(self) -> None:
        self.orders: dict[int, dict[str, object]] = {}
        self.duplicates: list[int] = []

    def record(self, number: int, trade: TradeRequest) -> bool:
        """Remember an accepted trade; False if `number` was already handed out, which the
        contract forbids (numbers are never reused)."""
        if number in self.orders:
            self.duplicates.append(number)
            return False
        self.orders[number] = trade.as_order(number)
        return True

    def __len__(self) -> int:
        return len(self.orders)


class LatencyStats:
    """Seconds per request kind, for requests that got an HTTP answer."""

    def __init__(self) -> None:
        self._total: Counter[str] = Counter()
        self._count: Counter[str] = Counter()

    def add(self, kind: str, seconds: float) -> None:
        self._total[kind] += seconds
        self._count[kind] += 1

    def count(self, kind: str) -> int:
        return self._count[kind]

    def average(self, kind: str) -> float | None:
        count = self._count[kind]
        return self._total[kind] / count if count else None


@dataclass
class ClientReport:
    book: OrderBook = field(default_factory=OrderBook)
    latency: LatencyStats = field(default_factory=LatencyStats)
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: {k: Counter() for k in KINDS})
    problems: list[str] = field(default_factory=list)
    gave_up: str | None = None

    def note(self, kind: str, outcome: str, problem: str | None = None) -> None:
        self.outcomes[kind][outcome] += 1
        if problem is not None:
            self.problems.append(problem)

    @property
    def all_verified(self) -> bool:
        return self.outcomes[QUERY][MATCHED] == len(self.book) and not self.book.duplicates

    @property
    def failures(self) -> int:
        return sum(self.outcomes[k][FAILED] for k in KINDS)

    @property
    def succeeded(self) -> bool:
        return self.all_verified and self.failures == 0 and self.gave_up is None

    def summary(self) -> list[str]:
        lines = ["---- Order Query Verification ----", f"Successful trades: {len(self.book)}"]
        lines.append("ALL ORDERS VERIFIED" if self.all_verified else "A NON-MATCH WAS FOUND")
        if self.failures or self.gave_up is not None:
            # The verdict covers only the orders placed; a failed request fails the run too.
            lines.append(f"BUT {self.failures} REQUESTS FAILED: the run did not succeed")
        if self.book.duplicates:
            numbers = ", ".join(str(n) for n in self.book.duplicates)
            lines.append(f"transaction numbers handed out twice: {numbers}")
        lines.append("---- Requests ----")
        for kind in KINDS:
            counts = self.outcomes[kind]
            parts = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES[kind])
            lines.append(f"{kind}: {sum(counts.values())} sent: {parts}")
        unchecked = len(self.book) - sum(self.outcomes[QUERY].values())
        if unchecked:
            lines.append(f"orders never checked: {unchecked}")
        if self.gave_up:
            lines.append(f"gave up: {self.gave_up}")
        if self.problems:
            lines.append(f"---- Problems ({len(self.problems)}) ----")
            lines.extend(self.problems[:PROBLEMS_SHOWN])
            if len(self.problems) > PROBLEMS_SHOWN:
                lines.append(f"... and {len(self.problems) - PROBLEMS_SHOWN} more")
        lines.append("---- Average Latency ----")
        for kind in KINDS:
            average = self.latency.average(kind)
            shown = "N/A" if average is None else f"{average * 1000:.2f} ms"
            lines.append(f"{kind}: {shown} over {self.latency.count(kind)} requests")
        return lines


# ---- the network ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSettings:
    url: str  # the front end, e.g. http://127.0.0.1:56893
    iterations: int
    probability: float
    seed: int | None = None
    verbose: bool = False
    timeout: float = 10.0  # seconds for a whole request, answer body included
    ca_file: Path | None = None  # for https: trust only these certificates (else the system's)


class Frontend:
    """The front end's API over one treq client, timing each request."""

    def __init__(
        self,
        http: Any,  # treq.client.HTTPClient
        reactor: Any,
        settings: ClientSettings,
        say: Callable[[str], None],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._http = http
        self._reactor = reactor
        self._base = settings.url.rstrip("/")
        self._timeout = settings.timeout
        self._verbose = settings.verbose
        self._say = say
        self._clock = clock
        self._no_answer_in_a_row = 0
        # Why the client stopped early, if it did.
        self.gave_up: str | None = None

    async def request(
        self, kind: str, method: str, path: str, latency: LatencyStats, body: object = None
    ) -> Answer:
        if self._verbose:
            self._say(f"> {method} {path}" + (f" {json.dumps(body)}" if body is not None else ""))
        started = self._clock()
        # addTimeout cancels the whole exchange, so a server that sends headers and then
        # stalls the body is caught too (treq's own timeout stops at the headers).
        exchange = Deferred.fromCoroutine(self._exchange(method, path, body))
        exchange.addTimeout(self._timeout, self._reactor)
        try:
            answer = await exchange
        except Exception as e:  # any transport failure is an answer of its own kind
            answer = Answer(error=_describe_failure(e, self._timeout))
        elapsed = self._clock() - started
        if answer.status is not None:
            latency.add(kind, elapsed)
        if self._verbose:
            self._say(f"< {answer.describe()} ({elapsed * 1000:.2f} ms)")
        self._count_silence(answer)
        return answer

    async def _exchange(self, method: str, path: str, body: object) -> Answer:
        return await http_answer(self._http, method, self._base + path, body)

    def _count_silence(self, answer: Answer) -> None:
        if answer.status is not None:
            self._no_answer_in_a_row = 0
            return
        self._no_answer_in_a_row += 1
        if self._no_answer_in_a_row >= MAX_CONSECUTIVE_NO_ANSWER:
            self.gave_up = (
                f"{self._no_answer_in_a_row} requests in a row got no answer from "
                f"{self._base} (last: {answer.error})"
            )


async def http_answer(http: Any, method: str, url: str, body: object = None,
                      headers: dict[str, list[str]] | None = None) -> Answer:
    """One exchange on a treq client, answer body read and decoded (None when not JSON).
    Transport failures raise; the caller decides what they mean."""
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    if headers is not None:
        kwargs["headers"] = headers
    response = await http.request(method, url, **kwargs)
    content = await response.content()
    try:
        decoded = json.loads(content)
    except ValueError:
        decoded = None
    return Answer(status=response.code, body=decoded)


def _describe_failure(e: Exception, timeout: float) -> str:
    from twisted.internet.defer import CancelledError, TimeoutError

    # treq wraps the real cause (refused, reset, cancelled ...) in ResponseNeverReceived or
    # ResponseFailed.
    reasons = getattr(e, "reasons", None)
    if reasons:
        e = reasons[0].value
    if isinstance(e, (TimeoutError, CancelledError)):
        return f"timed out after {timeout:g} s"
    return f"{type(e).__name__}: {e}".rstrip(": ")


async def run(
    reactor: Any, http: Any, settings: ClientSettings, say: Callable[[str], None] = print
) -> ClientReport:
    """Run the iterations, then verify every recorded order; never raises for the service's
    faults, which all end up in the report."""
    report = ClientReport()
    frontend = Frontend(http, reactor, settings, say)
    for step in plan(settings.iterations, settings.probability, random.Random(settings.seed)):
        await _lookup(frontend, step.name, report)
        if step.trade is not None and not frontend.gave_up:
            await _trade(frontend, step.trade, report)
        if frontend.gave_up:
            break
    for number, expected in sorted(report.book.orders.items()):
        if frontend.gave_up:
            break
        await _query(frontend, number, expected, report)
    report.gave_up = frontend.gave_up
    return report


async def _lookup(frontend: Frontend, name: str, report: ClientReport) -> None:
    path = f"/stocks/{quote(name, safe='')}"
    answer = await frontend.request(LOOKUP, "GET", path, report.latency)
    outcome = judge_lookup(name, answer)
    report.note(LOOKUP, outcome, f"GET {path}: {answer.describe()}" if outcome == FAILED else None)


async def _trade(frontend: Frontend, trade: TradeRequest, report: ClientReport) -> None:
    answer = await frontend.request(TRADE, "POST", "/orders", report.latency, trade.body())
    outcome, number = judge_trade(trade, answer)
    problem = None
    if outcome == FAILED:
        problem = f"POST /orders {json.dumps(trade.body())}: {answer.describe()}"
    elif number is not None and not report.book.record(number, trade):
        problem = f"POST /orders {json.dumps(trade.body())}: number {number} was already used"
    report.note(TRADE, outcome, problem)


async def _query(
    frontend: Frontend, number: int, expected: dict[str, object], report: ClientReport
) -> None:
    path = f"/orders/{number}"
    answer = await frontend.request(QUERY, "GET", path, report.latency)
    outcome = judge_query(expected, answer)
    problem = None
    if outcome != MATCHED:
        problem = f"GET {path}: expected {json.dumps(expected)}, got {answer.describe()}"
    report.note(QUERY, outcome, problem)


async def main(reactor: Any, settings: ClientSettings, say: Callable[[str], None] = print) -> None:
    """Entry point for twisted.internet.task.react: exits 0 only when everything checked out."""
    import treq.client
    from twisted.web.client import Agent, HTTPConnectionPool

    # One persistent connection, reused for every request (keep-alive).
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 1
    if settings.ca_file is None:
        agent = Agent(reactor, pool=pool)
    else:
        from bazaar.tls.public import client_policy

        agent = Agent(reactor, contextFactory=client_policy(settings.ca_file), pool=pool)
    http = treq.client.HTTPClient(agent)
    try:
        report = await run(reactor, http, settings, say)
    finally:
        await pool.closeCachedConnections()
    for line in report.summary():
        say(line)
    if not report.succeeded:
        raise SystemExit(1)

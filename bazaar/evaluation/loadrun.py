"""One (cache, p) run: N clients on one reactor follow their plans against the front end while
the cache's events are polled; every request is timed and judged (see workload.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from twisted.internet.defer import Deferred, gatherResults

from bazaar.tools.client import Answer, Step
from bazaar.evaluation.cachewatch import CacheWatch
from bazaar.evaluation.exchange import exchange
from bazaar.evaluation.progress import Progress
from bazaar.evaluation.results import RequestRecord, RunResult, relative_events
from bazaar.evaluation.workload import (
    LOOKUP, QUERY, TRADE, client_plan, client_rng, idempotency_key, lookup_outcome,
    query_outcome, trade_outcome,
)

# A front end that does not answer this many requests in a row is gone; waiting out a timeout
# for each remaining request would tell nothing more.
MAX_SILENT_IN_A_ROW = 3


@dataclass(frozen=True)
class RunPlan:
    cache: str  # "on" | "off": what the front end does, for the records
    p: float
    clients: int
    iterations: int
    seed: int
    token: str  # fresh per invocation, in every Idempotency-Key


class LoadClient:
    def __init__(self, number: int, http: Any, reactor: Any, url: str, plan: RunPlan,
                 started: float, records: list[RequestRecord], progress: Progress) -> None:
        self.number = number
        self._http = http
        self._reactor = reactor
        self._url = url.rstrip("/")
        self._plan = plan
        self._started = started  # perf_counter() at the run's start
        self._records = records
        self._progress = progress
        self._silent = 0
        self.gave_up: str | None = None

    async def run(self, steps: list[Step]) -> None:
        for index, step in enumerate(steps):
            await self._step(index, step)
            self._progress.iterations_done()
            if self.gave_up:
                self._progress.iterations_done(len(steps) - index - 1)
                return

    async def _step(self, index: int, step: Step) -> None:
        answer = await self._send(LOOKUP, "GET", f"/stocks/{quote(step.name, safe='')}",
                                  lambda a: lookup_outcome(step.name, a))
        trade = step.trade
        if trade is None or self.gave_up:
            return
        key = idempotency_key(self._plan.token, self._plan.cache, self._plan.p, self.number, index)
        numbers: list[int] = []

        def judge_trade(a: Answer) -> str:
            outcome, number = trade_outcome(trade, a)
            if number is not None:
                numbers.append(number)
            return outcome

        await self._send(TRADE, "POST", "/orders", judge_trade, trade.body(), {"Idempotency-Key": [key]})
        if numbers and not self.gave_up:
            expected = trade.as_order(numbers[0])
            await self._send(QUERY, "GET", f"/orders/{numbers[0]}", lambda a: query_outcome(expected, a))

    async def _send(self, type_: str, method: str, path: str, judge: Any, body: object = None,
                    headers: dict[str, list[str]] | None = None) -> Answer:
        sent = time.perf_counter()
        answer = await exchange(self._http, self._reactor, method, self._url + path, body, headers)
        latency_ms = (time.perf_counter() - sent) * 1000
        outcome = judge(answer)
        self._records.append(RequestRecord(
            self._plan.cache, self._plan.p, self.number, type_, sent - self._started, latency_ms,
            answer.status or 0, outcome,
        ))
        self._progress.request_done()
        self._silent = 0 if answer.status is not None else self._silent + 1
        if self._silent >= MAX_SILENT_IN_A_ROW:
            self.gave_up = f"{self._silent} requests in a row got no answer (last: {answer.error})"
        return answer


async def run_once(reactor: Any, http: Any, url: str, plan: RunPlan, watch: CacheWatch | None,
                   progress: Progress) -> RunResult:
    """Run every client's plan to its end; the cache's report before and after when `watch`."""
    steps = [client_plan(plan.iterations, plan.p, client_rng(plan.seed, plan.p, c)) for c in range(plan.clients)]
    progress.start_run(f"p={plan.p:g} cache={plan.cache}")
    before = await watch.begin() if watch is not None else None
    records: list[RequestRecord] = []
    wall_start, started = time.time(), time.perf_counter()
    clients = [LoadClient(c, http, reactor, url, plan, started, records, progress) for c in range(plan.clients)]
    await gatherResults([Deferred.fromCoroutine(c.run(s)) for c, s in zip(clients, steps)], consumeErrors=True)
    duration = time.perf_counter() - started
    result = RunResult(plan.cache, plan.p, duration, sorted(records, key=lambda r: r.start))
    for c in clients:
        if c.gave_up:
            progress.say(f"client {c.number} stopped early: {c.gave_up}")
    if watch is not None:
        result.cache_after = await watch.end()
        result.cache_before = before
        result.events = relative_events(watch.events, wall_start)
        result.dropped_events = watch.lost
    return result


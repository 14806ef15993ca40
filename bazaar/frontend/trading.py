"""How the front end carries out one trade: attempts on the current leader under one key,
until a definite answer or the request's deadline (bazaar.core.outcome says which).

A leader that fails or stops leading mid-call is replaced (LeaderTracker) and the trade is
redone on the new one under the same key; a leader that answers IN_DOUBT is asked again. So
a client sees a leader change only as a slower answer, and sees 504 only when no leader could
tell within the deadline whether its trade committed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.task import deferLater
from twisted.logger import Logger

from bazaar.core.outcome import Attempt, Final, TradeAttempts
from bazaar.frontend.backends import NotLeader, PeerUnavailable, PlacedOrder
from bazaar.frontend.leader import LeaderTracker, NoLeaderAvailable
from bazaar.rpc.convert import request_status_name
from bazaar.v1 import order_pb2

log = Logger()

# Between two attempts that could not reach a leader able to tell: let a selection or a
# follower's return happen instead of asking again at once.
RETRY_PAUSE = 0.1
_NOT_DEFINITE = {
    order_pb2.REQUEST_STATUS_UNAVAILABLE: Attempt.UNAVAILABLE,
    order_pb2.REQUEST_STATUS_IN_DOUBT: Attempt.IN_DOUBT,
}
# A trade's outcome as the metrics count it: executed, the leader's reason for refusing it,
# or, with no definite answer, unavailable (503: nothing executed) or unknown (504).
_FINAL_OUTCOME = {Final.UNAVAILABLE: "unavailable", Final.UNKNOWN: "unknown"}


def outcome_name(result: "TradeResult") -> str:
    if result.placed is None or result.final is not Final.ANSWERED:
        return _FINAL_OUTCOME.get(result.final, "unknown")
    if result.placed.status == order_pb2.REQUEST_STATUS_OK:
        return "executed"
    return request_status_name(result.placed.status)


@dataclass(frozen=True)
class TradeResult:
    final: Final
    placed: PlacedOrder | None = None  # the leader's definite answer (Final.ANSWERED)


class TradePlacer:
    def __init__(self, leaders: LeaderTracker, clock: Any, rpc_timeout: float, request_timeout: float) -> None:
        self._leaders = leaders
        self._clock = clock
        self._rpc_timeout = rpc_timeout
        self._request_timeout = request_timeout
        self.outcomes: Counter[str] = Counter()  # trades placed, by outcome_name

    async def place(self, name: str, quantity: int, trade_type: int, key: str, fresh_key: bool = False) -> TradeResult:
        """`fresh_key`: the key was made for this request (the client sent none)."""
        result = await self._place(name, quantity, trade_type, key, fresh_key)
        self.outcomes[outcome_name(result)] += 1
        return result

    async def _place(self, name: str, quantity: int, trade_type: int, key: str, fresh_key: bool) -> TradeResult:
        attempts = TradeAttempts(fresh_key=fresh_key)
        deadline = self._clock.seconds() + self._request_timeout
        refusals = 0  # replicas in a row that did not lead after being selected
        while True:
            left = deadline - self._clock.seconds()
            if left <= 0:
                return TradeResult(attempts.time_is_up())
            final, placed, led = await self._attempt(attempts, name, quantity, trade_type, key, deadline)
            if final is not None:
                return TradeResult(final, placed)
            refusals = 0 if led else refusals + 1
            if refusals > len(self._leaders.replicas):
                # Every selection picks a replica that then does not lead (it cannot take over).
                final = attempts.no_leader()
                if final is not None:
                    return TradeResult(final)
                await self._pause(deadline)

    async def _attempt(
        self, attempts: TradeAttempts, name: str, quantity: int, trade_type: int, key: str, deadline: float,
    ) -> tuple[Final | None, PlacedOrder | None, bool]:
        """(final outcome or None, the definite answer, whether a leader took the attempt)."""
        try:
            found = self._leaders.leader()
            if not found.called:  # a selection: no timer when the leader is known, as it mostly is
                found.addTimeout(deadline - self._clock.seconds(), self._clock)
            leader = await found
        except (NoLeaderAvailable, TimeoutError) as e:
            final = attempts.no_leader()
            if final is None:
                why = "none found within the request's time" if isinstance(e, TimeoutError) else str(e)
                log.info("no order leader ({why}); trade {key} may be logged: trying again", why=why, key=key)
                await self._pause(deadline)
            return final, None, True
        # The selection took time: the call gets only what is left of the request's.
        left = deadline - self._clock.seconds()
        if left <= 0:
            return None, None, True  # the caller finds the time up
        replica = self._leaders.replicas[leader.replica_id]
        started = self._clock.seconds()
        call: Deferred = replica.request(name, quantity, trade_type, key, min(self._rpc_timeout, left))
        try:
            placed: PlacedOrder = await self._leaders.watched(replica, call)
        except NotLeader:
            self._leaders.failed(leader)
            return attempts.ended(Attempt.NOT_LOGGED), None, False
        except PeerUnavailable as e:
            log.warn("leader {id} failed trade {key}: {error}", id=leader.replica_id, key=key, error=e)
            self._leaders.failed(leader, unreachable=True)
            # A call that never left cannot have logged anything; nor did a leader take it.
            return attempts.ended(Attempt.IN_DOUBT if e.sent else Attempt.NOT_LOGGED), None, e.sent
        attempt = _NOT_DEFINITE.get(placed.status, Attempt.DEFINITE)
        final = attempts.ended(attempt)
        if final is None and (attempt is Attempt.UNAVAILABLE or self._clock.seconds() - started < RETRY_PAUSE):
            # Asking again at once would get the same answer: a leader without a majority, or
            # one whose time for this trade had nearly run out.
            await self._pause(deadline)
        return final, placed if final is Final.ANSWERED else None, True

    async def _pause(self, deadline: float) -> None:
        """Wait RETRY_PAUSE, but never past the deadline."""
        await deferLater(self._clock, min(RETRY_PAUSE, max(0.0, deadline - self._clock.seconds())))

"""Which peers this replica reaches: a health check to each one, every heartbeat interval,
unless it answered another call sent within the interval (a leader's followers answer its
heartbeats: checking them too would double the calls of an idle cluster's leader).

The front end picks a new leader only among replicas that reach a majority (see
bazaar.core.lease.Reachability), and a replica's description carries what this finds.
"""

from __future__ import annotations

import math
from typing import Any

from grpc_health.v1 import health_pb2, health_pb2_grpc
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from bazaar.core.lease import HEARTBEAT_INTERVAL, Reachability
from bazaar.rpc.bridge import call
from bazaar.rpc.services import Channels

log = Logger()


class PeerWatch:
    def __init__(
        self, reactor: Any, channels: Channels, reachability: Reachability, clock: Any, tick: Any = None,
    ) -> None:
        """`tick()` is called after each round of checks is sent."""
        self._reactor = reactor
        self._clock = clock
        self._tick = tick
        self._channels = channels
        self._reachability = reachability
        self._in_flight: set[str] = set()
        self._checked_at: dict[str, float] = {}  # when each peer's latest check was sent
        self._loop = LoopingCall(self._check_all)
        self._loop.clock = reactor

    def start(self) -> None:
        self._loop.start(HEARTBEAT_INTERVAL, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def _check_all(self) -> None:
        now = self._clock()
        for peer in self._reachability.peers:
            if peer not in self._in_flight and not self._heard_otherwise(peer, now):
                self._check(peer)
        if self._tick is not None:
            try:
                self._tick()
            except Exception:  # the watch must go on: it is what makes a replica reachable
                log.failure("after checking the peers")

    def _heard_otherwise(self, peer: str, now: float) -> bool:
        """Whether `peer` answered another call than our checks, sent within the interval."""
        latest = self._reachability.answered_at(peer)
        return latest > self._checked_at.get(peer, -math.inf) and now - latest < HEARTBEAT_INTERVAL

    def _check(self, peer: str) -> None:
        self._in_flight.add(peer)
        sent = self._checked_at[peer] = self._clock()
        stub = health_pb2_grpc.HealthStub(self._channels.get(peer))
        # Waits for a reconnecting channel within the deadline: a peer that just restarted
        # counts as soon as it listens.
        d = call(self._reactor, stub.Check, health_pb2.HealthCheckRequest(), self._reachability.window, True)
        d.addCallbacks(lambda _: self._reachability.answered(peer, sent), lambda _: None)
        d.addBoth(lambda _: self._in_flight.discard(peer))

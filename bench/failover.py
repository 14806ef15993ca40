"""Leader failover as clients see it: keyed trading clients on threads, a signal to the leader,
and the gap until a trade sent after the signal succeeds (bazaar.chaos.report.failover_times).

The clients do not retry: every request that is not a 200 counts as a client-visible error,
since the front end is meant to hide a leader change entirely.
"""

from __future__ import annotations

import http.client
import itertools
import json
import signal
import socket
import threading
import time

from bazaar.chaos.clients import NO_CONNECTION, OK, STOCK_NAMES, TIMEOUT, Attempt, outcome_of
from bazaar.chaos.processes import ChaosError, replica_name, wait_for
from bazaar.chaos.report import failover_times
from bench.cluster import BenchCluster
from bench.result import Failover

REQUEST_TIMEOUT = 5.0
WARM_UP_SUCCESSES = 20
RECOVERY_DEADLINE = 10.0
AFTER_RECOVERY = 1.0  # keep trading this long after the first success, to count late errors


class TradingThreads:
    """`count` threads, each placing keyed trades over one keep-alive connection until stopped."""

    def __init__(self, port: int, count: int, tag: str) -> None:
        self.port = port
        self.tag = tag
        self.attempts: list[Attempt] = []  # appended from several threads: list.append is atomic
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(count)]

    def __enter__(self) -> "TradingThreads":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(REQUEST_TIMEOUT + 1)

    def successes(self, sent_after: float = float("-inf")) -> int:
        return sum(1 for a in list(self.attempts) if a.outcome == OK and a.sent >= sent_after)

    def _run(self, client: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        for sent_count in itertools.count():
            if self._stop.is_set():
                break
            name = STOCK_NAMES[sent_count % len(STOCK_NAMES)]
            side = "buy" if (sent_count // len(STOCK_NAMES)) % 2 == 0 else "sell"
            key = f"{self.tag}-{client}-{sent_count}"
            body = json.dumps({"name": name, "quantity": 1, "type": side})
            sent = time.monotonic()
            try:
                conn.request("POST", "/orders", body=body,
                             headers={"Content-Type": "application/json", "Idempotency-Key": key})
                response = conn.getresponse()
                content = response.read()
                try:
                    decoded = json.loads(content)
                except ValueError:
                    decoded = None
                outcome, number = outcome_of(response.status, decoded)
            except (OSError, http.client.HTTPException) as e:
                outcome, number = (TIMEOUT if isinstance(e, socket.timeout) else NO_CONNECTION), None
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            self.attempts.append(Attempt(client, key, sent, time.monotonic(), outcome, number))
        conn.close()


def measure(cluster: BenchCluster, sig: signal.Signals, clients: int) -> Failover:
    """Signal the leader under `clients` trading clients; SIGSTOP is undone with SIGCONT."""
    leader = cluster.wait_leader()
    name = replica_name(leader)
    with TradingThreads(cluster.frontend_port, clients, f"failover-{sig.name}-{time.time_ns()}") as load:
        wait_for(lambda: load.successes() >= WARM_UP_SUCCESSES, RECOVERY_DEADLINE, "trades before the fault")
        at = time.monotonic()
        cluster.send(name, sig)
        try:
            wait_for(lambda: load.successes(sent_after=at) > 0, RECOVERY_DEADLINE,
                     f"a trade to succeed after {sig.name} of the leader")
        except ChaosError:
            pass  # reported as no recovery: the gap is None
        time.sleep(AFTER_RECOVERY)  # a measuring window, not a synchronisation
    if sig == signal.SIGSTOP:
        cluster.send(name, signal.SIGCONT)
    attempts = list(load.attempts)
    errors = [a.outcome for a in attempts if a.outcome != OK]
    return Failover(
        signal_name=sig.name, leader=leader, gap=failover_times([at], attempts)[0],
        requests=len(attempts), errors=len(errors), error_kinds=tuple(sorted(set(errors))),
    )

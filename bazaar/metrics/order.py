"""An order replica's metrics: its place in the cluster (epoch, role, log indexes), its trades,
and, while it leads, where each follower and the catalog stand."""

from __future__ import annotations

from typing import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from bazaar.metrics.registry import ObjectCollector
from bazaar.metrics.writer import observe_group_commit
from bazaar.order.replica import Replica
from bazaar.order.service import OrderReplicaService
from bazaar.rpc.convert import ROLE_NAMES, request_status_name
from bazaar.v1 import order_pb2

# Every answer a replica gives a trade, shown from the start at 0 (a rate needs the series).
STATUSES = tuple(s for s in order_pb2.RequestStatus.values() if s != order_pb2.REQUEST_STATUS_UNSPECIFIED)
# Seconds: a commit takes a round trip to one follower and an fsync on each side; a trade has
# at most the front end's rpc timeout (2 s by default).
COMMIT_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class ReplicaCollector(ObjectCollector):
    def __init__(self, service: OrderReplicaService) -> None:
        self._service = service

    def families(self) -> Iterator[Metric]:
        replica = self._service.replica
        if replica is None:
            return  # not started yet
        core = replica.core
        yield GaugeMetricFamily("bazaar_replica_epoch", "The highest epoch this replica knows of (promised or led).",
                                value=core.epoch)
        role = replica.role(replica.now())
        roles = GaugeMetricFamily("bazaar_replica_role", "1 for the role this replica has now (Describe's), 0 for the others.",
                                  labels=["role"])
        for value, name in ROLE_NAMES.items():
            roles.add_metric([name], 1 if value == role else 0)
        yield roles
        yield GaugeMetricFamily("bazaar_replica_last_index", "The index of the last entry in this replica's log (-1: none).",
                                value=core.last_index)
        yield GaugeMetricFamily("bazaar_replica_committed_index",
                                "The highest log index this replica knows to be committed (-1: none).",
                                value=replica.log.committed)
        trades = CounterMetricFamily("bazaar_replica_trades", "Trades this replica answered, by its answer (RequestStatus).",
                                     labels=["outcome"])
        counts = dict.fromkeys(STATUSES, 0)
        counts.update(list(replica.outcomes.items()))
        for status, count in sorted(counts.items()):
            trades.add_metric([request_status_name(status)], count)
        yield trades
        yield from self._invalidations()
        yield from self._leadership(replica)

    def _invalidations(self) -> Iterator[Metric]:
        invalidator = self._service.invalidator
        if invalidator is None:
            return
        pushes = CounterMetricFamily("bazaar_invalidation_pushes", "Cache invalidations pushed to each front end.",
                                     labels=["frontend"])
        failures = CounterMetricFamily("bazaar_invalidation_push_failures",
                                       "Pushes that got no answer (the front end down or too slow).", labels=["frontend"])
        waiting = GaugeMetricFamily("bazaar_invalidation_waiting", "Stock names waiting for their push to each front end.",
                                    labels=["frontend"])
        for lane in invalidator.lanes:
            frontend = str(lane.frontend_id)
            pushes.add_metric([frontend], lane.pushes)
            failures.add_metric([frontend], lane.failures)
            waiting.add_metric([frontend], lane.waiting)
        yield from (pushes, failures, waiting)

    def _leadership(self, replica: Replica) -> Iterator[Metric]:
        leadership = replica.leadership
        if leadership is None or leadership.stopped:
            return
        last = leadership.last_index
        match = GaugeMetricFamily("bazaar_replica_follower_match_index",
                                  "Leader only: the last log index known identical and durable on each follower.",
                                  labels=["follower"])
        lag = GaugeMetricFamily("bazaar_replica_follower_lag_entries",
                                "Leader only: log entries the leader holds past each follower's match point.",
                                labels=["follower"])
        replication = leadership.replication
        for address in replication.followers:
            point = replication.match(address)
            if point is None:
                continue  # it has not answered this leader yet
            follower = str(replica.ids.get(address, address))
            match.add_metric([follower], point)
            lag.add_metric([follower], max(0, last - point))
        yield from (match, lag)
        applied = leadership.catalog_feed.applied
        if applied is not None:
            committed = leadership.committed_number
            yield GaugeMetricFamily("bazaar_catalog_acknowledged_through",
                                    "Leader only: the transaction number the catalog last said it applied through.",
                                    value=applied)
            yield GaugeMetricFamily("bazaar_catalog_lag_trades",
                                    "Leader only: committed trades the catalog has not acknowledged applying.",
                                    value=max(0, committed - applied))


def register_replica(registry: CollectorRegistry, service: OrderReplicaService) -> None:
    registry.register(ReplicaCollector(service))
    observe_group_commit(registry, service.committer)
    commits = Histogram(
        "bazaar_replica_commit_latency_seconds",
        "Leader only: seconds from a trade reaching this replica to its answer from a committed entry.",
        buckets=COMMIT_BUCKETS, registry=registry,
    )
    service.observe_commit = commits.observe

"""The catalog's metrics: how far it has applied the order log.

The catalog cannot know its own lag: it learns committed trades only as the leader sends
them, and knows nothing of those not sent yet. The leader does, and exports it
(bazaar_catalog_lag_trades, bazaar/metrics/order.py).
"""

from __future__ import annotations

from typing import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from bazaar.catalog.service import CatalogService
from bazaar.metrics.registry import ObjectCollector
from bazaar.metrics.writer import observe_group_commit


class CatalogCollector(ObjectCollector):
    def __init__(self, service: CatalogService) -> None:
        self._service = service

    def families(self) -> Iterator[Metric]:
        store = self._service.store
        if store is None:
            return  # not started yet: nothing is known
        yield GaugeMetricFamily(
            "bazaar_catalog_applied_through",
            "The transaction number the catalog has applied committed trades through (-1: none yet).",
            value=store.snapshot.applied,
        )


def register_catalog(registry: CollectorRegistry, service: CatalogService) -> None:
    registry.register(CatalogCollector(service))
    observe_group_commit(registry, service.committer)


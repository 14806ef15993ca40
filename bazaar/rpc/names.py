"""The names the cluster's gRPC services go by, for the health service and the role check."""

from __future__ import annotations

from bazaar.v1 import catalog_pb2, order_pb2

ORDER_SERVICE = order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
CATALOG_SERVICE = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name
# A name no server ever sets. grpcio-health's set() (and enter_graceful_shutdown) sends to every
# watcher of the name while holding its lock, blocking until the stream takes the message; a
# watcher whose process is gone then deadlocks the server's shutdown on the reactor thread. A
# hold on a name that is never set is never sent to.
HOLD_SERVICE = "bazaar.ChannelHold"
# What a health check or watch may name: grpcio-health keeps every watched name for good.
HEALTH_NAMES = frozenset({"", ORDER_SERVICE, CATALOG_SERVICE, HOLD_SERVICE})

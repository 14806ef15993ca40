"""The names the cluster's gRPC services go by, for the health service and the role check."""

from __future__ import annotations

from bazaar.v1 import catalog_pb2, order_pb2

ORDER_SERVICE = order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
CATALOG_SERVICE = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name
# A name no server ever sets: a channel's hold (rpc/services.py) gets its first answer and
# nothing more, so the holds of every peer cost the server nothing while they stay open.
HOLD_SERVICE = "bazaar.ChannelHold"
# What a health check or watch may name; anything else is refused before the health service.
HEALTH_NAMES = frozenset({"", ORDER_SERVICE, CATALOG_SERVICE, HOLD_SERVICE})

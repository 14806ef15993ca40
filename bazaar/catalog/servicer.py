"""gRPC face of the catalog. Lookups answer from the committed snapshot on the handler thread;
trades hop into the reactor to join the group commit."""

from __future__ import annotations

from typing import Any

import grpc
from twisted.logger import Logger

from bazaar.catalog.store import CatalogStore, Trade
from bazaar.convert import trade_type_from_proto
from bazaar.core.stock import TradeCheck
from bazaar.grpc_bridge import ReactorHop, ReactorUnavailable, remaining
from bazaar.group_commit import GroupCommitter
from bazaar.v1 import catalog_pb2, catalog_pb2_grpc

log = Logger()

_STATUS = {
    TradeCheck.OK: catalog_pb2.TRADE_STATUS_OK,
    TradeCheck.STOCK_NOT_FOUND: catalog_pb2.TRADE_STATUS_STOCK_NOT_FOUND,
    TradeCheck.INVALID_TYPE: catalog_pb2.TRADE_STATUS_INVALID_TYPE,
    TradeCheck.INVALID_QUANTITY: catalog_pb2.TRADE_STATUS_INVALID_QUANTITY,
    TradeCheck.NOT_ENOUGH_STOCK: catalog_pb2.TRADE_STATUS_NOT_ENOUGH_STOCK,
    None: catalog_pb2.TRADE_STATUS_KEY_REUSED,
}


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, store: CatalogStore, committer: GroupCommitter, hop: ReactorHop) -> None:
        self._store = store
        self._committer = committer
        self._hop = hop

    def Lookup(self, request: catalog_pb2.LookupStockRequest, context: Any) -> catalog_pb2.LookupStockResponse:
        stock = self._store.lookup(request.name)
        if stock is None:
            return catalog_pb2.LookupStockResponse(found=False)
        return catalog_pb2.LookupStockResponse(
            found=True, price=stock.price, quantity=stock.quantity, volume=stock.volume
        )

    def Trade(self, request: catalog_pb2.TradeStockRequest, context: Any) -> catalog_pb2.TradeStockResponse:
        trade = Trade(request.name, trade_type_from_proto(request.type), request.quantity, request.trade_id)
        try:
            outcome = self._hop.call(self._committer.submit, trade, timeout=remaining(context, 5.0))
        except ReactorUnavailable as e:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"catalog busy or stopping: {e}")
        return catalog_pb2.TradeStockResponse(status=_STATUS[outcome.check], quantity=outcome.quantity)

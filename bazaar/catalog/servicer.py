"""gRPC face of the catalog. Lookups answer from the committed snapshot on the handler thread;
trades hop into the reactor to join the group commit, a batch of them in one hop."""

from __future__ import annotations

from typing import Any

import grpc
from twisted.internet.defer import Deferred, FirstError, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure

from bazaar.catalog.store import CatalogStore, Fence, Refusal, Trade
from bazaar.rpc.convert import trade_type_from_proto, trade_type_to_proto
from bazaar.core.stock import TradeCheck
from bazaar.rpc.bridge import ReactorHop, ReactorUnavailable, remaining
from bazaar.reactor.group_commit import GroupCommitter
from bazaar.v1 import catalog_pb2, catalog_pb2_grpc

log = Logger()

_STATUS = {
    TradeCheck.OK: catalog_pb2.TRADE_STATUS_OK,
    TradeCheck.STOCK_NOT_FOUND: catalog_pb2.TRADE_STATUS_STOCK_NOT_FOUND,
    TradeCheck.INVALID_TYPE: catalog_pb2.TRADE_STATUS_INVALID_TYPE,
    TradeCheck.INVALID_QUANTITY: catalog_pb2.TRADE_STATUS_INVALID_QUANTITY,
    TradeCheck.NOT_ENOUGH_STOCK: catalog_pb2.TRADE_STATUS_NOT_ENOUGH_STOCK,
    Refusal.KEY_REUSED: catalog_pb2.TRADE_STATUS_KEY_REUSED,
    Refusal.STALE_EPOCH: catalog_pb2.TRADE_STATUS_STALE_EPOCH,
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

    def ListApplied(self, request: catalog_pb2.ListAppliedRequest, context: Any) -> Any:
        if request.epoch:
            # Through the writer's queue: every trade queued before the fence is applied (and
            # listed below); every later one from an older leader is refused.
            try:
                self._hop.call(self._committer.submit, Fence(request.epoch), timeout=remaining(context, 5.0))
            except ReactorUnavailable as e:
                context.abort(grpc.StatusCode.UNAVAILABLE, f"catalog busy or stopping: {e}")
        rows = self._store.applied_last(request.last)
        for start in range(0, len(rows), 2000):
            yield catalog_pb2.ListAppliedResponse(trades=[
                catalog_pb2.AppliedTrade(seq=r[0], trade_id=r[1], name=r[2], type=trade_type_to_proto(r[3]),
                                         quantity=r[4])
                for r in rows[start:start + 2000]
            ])

    def Trade(self, request: catalog_pb2.TradeStockRequest, context: Any) -> catalog_pb2.TradeStockResponse:
        return self._apply(context, [request])[0]

    def TradeBatch(self, request: catalog_pb2.TradeBatchRequest, context: Any) -> catalog_pb2.TradeBatchResponse:
        return catalog_pb2.TradeBatchResponse(results=self._apply(context, request.trades))

    def _apply(self, context: Any, requests: Any) -> list[catalog_pb2.TradeStockResponse]:
        """The trades in order, through one hop; they join the same group commit."""
        trades = [
            Trade(r.name, trade_type_from_proto(r.type), r.quantity, r.trade_id, r.epoch) for r in requests
        ]
        try:
            outcomes = self._hop.call(self._submit_all, trades, timeout=remaining(context, 5.0))
        except ReactorUnavailable as e:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"catalog busy or stopping: {e}")
        return [
            catalog_pb2.TradeStockResponse(status=_STATUS[o.check], quantity=o.quantity) for o in outcomes
        ]

    def _submit_all(self, trades: list[Trade]) -> Deferred:
        return gatherResults([self._committer.submit(t) for t in trades], consumeErrors=True).addErrback(
            _first_error
        )


def _first_error(failure: Failure) -> Failure:
    failure.trap(FirstError)
    return failure.value.subFailure

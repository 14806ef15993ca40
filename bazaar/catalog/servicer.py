"""gRPC face of the catalog. Each request's bounds are checked first (rpc/limits.py). Lookups
answer from the committed snapshot on the handler thread (waiting in the reactor only when the
caller needs a trade not applied yet); batches of committed trades hop into the reactor to join
the group commit."""

from __future__ import annotations

from typing import Any

import grpc
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from bazaar.catalog.store import BatchResult, CatalogStore
from bazaar.core.learner import CommittedTrade, Progress
from bazaar.reactor.group_commit import GroupCommitter
from bazaar.reactor.waitlist import WaitList
from bazaar.rpc import limits
from bazaar.rpc.bridge import ReactorHop, ReactorUnavailable, remaining
from bazaar.rpc.convert import trade_type_from_proto
from bazaar.v1 import catalog_pb2, catalog_pb2_grpc

log = Logger()

_STATUS = {
    Progress.OK: catalog_pb2.TRADE_STATUS_OK,
    Progress.GAP: catalog_pb2.TRADE_STATUS_GAP,
    Progress.INCONSISTENT: catalog_pb2.TRADE_STATUS_INCONSISTENT,
}
# A lookup that waits for a trade to be applied answers this long before the caller's deadline.
ANSWER_MARGIN = 0.05


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, store: CatalogStore, committer: GroupCommitter, hop: ReactorHop, timeout: float) -> None:
        self._store = store
        self._committer = committer
        self._hop = hop
        self._timeout = timeout
        self._applied = WaitList(store.applied)  # reactor-side: lookups waiting for a number

    def Lookup(self, request: catalog_pb2.LookupStockRequest, context: Any) -> catalog_pb2.LookupStockResponse:
        limits.enforce(context, limits.check_lookup_stock, request)
        snapshot = self._store.snapshot
        if request.HasField("min_applied") and snapshot.applied < request.min_applied:
            wait = remaining(context, self._timeout) - ANSWER_MARGIN
            try:
                reached = self._hop.call(self._until_applied, request.min_applied, wait, timeout=wait + ANSWER_MARGIN)
            except ReactorUnavailable as e:
                context.abort(grpc.StatusCode.UNAVAILABLE, f"catalog busy or stopping: {e}")
            snapshot = self._store.snapshot
            if not reached:
                context.abort(grpc.StatusCode.UNAVAILABLE,
                              f"the catalog has applied trades through {snapshot.applied} only, "
                              f"not yet {request.min_applied}")
        stock = snapshot.stocks.get(request.name)
        if stock is None:
            return catalog_pb2.LookupStockResponse(found=False, applied_through=snapshot.applied)
        return catalog_pb2.LookupStockResponse(
            found=True, price=stock.price, quantity=stock.quantity, volume=stock.volume,
            applied_through=snapshot.applied,
        )

    def Trade(self, request: catalog_pb2.TradeStockRequest, context: Any) -> catalog_pb2.TradeStockResponse:
        result = self._apply(context, [request])
        return catalog_pb2.TradeStockResponse(status=_STATUS[result.progress], applied_through=result.applied)

    def TradeBatch(self, request: catalog_pb2.TradeBatchRequest, context: Any) -> catalog_pb2.TradeBatchResponse:
        result = self._apply(context, request.trades)
        return catalog_pb2.TradeBatchResponse(status=_STATUS[result.progress], applied_through=result.applied)

    def DescribeCatalog(
        self, request: catalog_pb2.DescribeCatalogRequest, context: Any,
    ) -> catalog_pb2.DescribeCatalogResponse:
        return catalog_pb2.DescribeCatalogResponse(applied_through=self._store.snapshot.applied)

    def _apply(self, context: Any, requests: Any) -> BatchResult:
        limits.enforce(context, limits.check_trades, requests)
        trades = [CommittedTrade(r.number, r.name, trade_type_from_proto(r.type), r.quantity) for r in requests]
        try:
            return self._hop.call(self._submit, trades, timeout=remaining(context, self._timeout))
        except ReactorUnavailable as e:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"catalog busy or stopping: {e}")

    # -- in the reactor -------------------------------------------------------------------------

    def _submit(self, trades: list[CommittedTrade]) -> Deferred:
        if not trades:  # a leader asking how far the catalog has applied
            return defer.succeed(BatchResult(self._store.applied, Progress.OK))
        return self._committer.submit(trades).addCallback(self._applied_through)

    def _applied_through(self, result: BatchResult) -> BatchResult:
        if result.progress is Progress.INCONSISTENT:
            log.critical("a committed trade numbered {number} does not fit this stock table: the catalog "
                         "and the order log were made from different tables", number=result.applied + 1)
        self._applied.advance(result.applied)
        return result

    async def _until_applied(self, number: int, wait: float) -> bool:
        try:
            await self._applied.wait(number).addTimeout(max(0.0, wait), self._hop.reactor)
        except defer.TimeoutError:
            return False
        return True

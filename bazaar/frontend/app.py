"""The public HTTP API (docs/api.md), as a Klein app.

The front end checks only the shape of what it forwards; the order leader decides whether a
trade is valid, in the order of checks of docs/api.md. Every failure, expected or not, leaves through
`error_response`, so every client sees a JSON error and never a traceback.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import cachetools
from klein import Klein
from klein._resource import extractURLparts, route_metadata
from klein.resource import KleinResource
from twisted.internet.defer import CancelledError, Deferred, fail, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.server import NOT_DONE_YET
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from bazaar.config import MAX_STOCK_NAME
from bazaar.core.bounds import MAX_KEY_LENGTH, valid_key
from bazaar.core.lru import LRUCache
from bazaar.core.orders import valid_quantity
from bazaar.core.outcome import Final
from bazaar.frontend.backends import PeerUnavailable, StockInfo
from bazaar.frontend.leader import LeaderTracker, NoLeaderAvailable
from bazaar.frontend.readiness import ReadinessCheck
from bazaar.frontend.trading import TradePlacer
from bazaar.rpc.convert import trade_type_to_proto
from bazaar.v1 import order_pb2

log = Logger()

# No stock is named with more characters than this; longer names are not looked up at all, so
# a client cannot push an oversized message at a backend (which could look like a dead peer).
MAX_NAME_LENGTH = MAX_STOCK_NAME
MAX_ORDER_NUMBER = 2**63 - 1  # protobuf int64


class ApiError(Exception):
    """An answer for the client: HTTP status and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def stock_not_found() -> ApiError:
    return ApiError(404, "stock not found")


def transaction_not_found() -> ApiError:
    return ApiError(404, "transaction not found")


# The leader's verdict on a trade it refused.
_REFUSALS = {
    order_pb2.REQUEST_STATUS_STOCK_NOT_FOUND: (404, "stock not found"),
    order_pb2.REQUEST_STATUS_INVALID_TYPE: (400, "invalid request type"),
    order_pb2.REQUEST_STATUS_INVALID_QUANTITY: (400, "invalid number of stocks"),
    order_pb2.REQUEST_STATUS_NOT_ENOUGH_STOCK: (400, "not enough stocks available to buy"),
    order_pb2.REQUEST_STATUS_KEY_REUSED: (422, "the Idempotency-Key was already used for a different order"),
}
_UNEXPECTED_STATUS = (504, "unexpected answer from the order leader: retry with the same Idempotency-Key")
_NOT_EXECUTED = (503, "no order leader with a majority is available: nothing was executed")
_OUTCOME_UNKNOWN = (504, "outcome unknown: retry with the same Idempotency-Key")


def _status_and_message(error: BaseException) -> tuple[int, str]:
    """The one mapping from an exception to what the client is told."""
    if isinstance(error, ApiError):
        return error.code, error.message
    # The API has no redirects: a path werkzeug would redirect (to add or merge slashes) is not
    # one of its routes.
    if isinstance(error, (NotFound, RequestRedirect)):
        return 404, "no such resource"
    if isinstance(error, MethodNotAllowed):
        return 405, "method not allowed"
    if isinstance(error, HTTPException) and error.code is not None and error.code < 500:
        return error.code, error.name.lower()
    if isinstance(error, NoLeaderAvailable):
        return 503, "no order leader is available"
    if isinstance(error, PeerUnavailable):
        return 503, "a backend service is unavailable"
    return 500, "internal error"


def cache_counters(cache: LRUCache[Any] | None) -> dict[str, Any]:
    if cache is None:
        return {"enabled": False}
    return {"enabled": True, "capacity": cache.capacity, "hits": cache.hits, "misses": cache.misses,
            "evictions": cache.evictions}


def json_response(request: IRequest, code: int, body: dict[str, Any]) -> bytes:
    request.setResponseCode(code)
    return json_bytes(request, json.dumps(body).encode("utf-8"))


def json_bytes(request: IRequest, data: bytes) -> bytes:
    """`data`, a JSON document, as the answer. With its length given, Twisted writes it in one
    piece, not as HTTP/1.1 chunks with a closing chunk of their own."""
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Content-Length", b"%d" % len(data))
    return data


def _stock_response(request: IRequest, stock: StockInfo) -> bytes:
    data = {"name": stock.name, "price": round(stock.price, 2), "quantity": stock.quantity}
    return json_response(request, 200, {"data": data})


def error_document(code: int, message: str) -> dict[str, Any]:
    """The body of every error (docs/api.md), also of those the HTTP channel writes itself."""
    return {"error": {"code": code, "message": message}}


def error_response(request: IRequest, error: BaseException) -> bytes:
    code, message = _status_and_message(error)
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        request.setHeader(b"Allow", ", ".join(error.valid_methods).encode("ascii"))
    return json_response(request, code, error_document(code, message))


# The routes found for this many (method, path) pairs are kept at most (then forgotten, and
# found again): every cached stock's and order's path, with room to spare.
ROUTES_KEPT = 4096
# Bytes of a path whose route is kept, at most: the longest a stock's can be (100 characters
# of up to 4 bytes, percent-encoded), so that kept routes cannot pin much memory.
MAX_KEPT_PATH = 1280


class _Utf8CheckedResource(KleinResource):
    """Klein answers a URL that is not UTF-8 with a plain-text 400; this makes it JSON.

    It also refuses an empty path segment ("//stocks/tesla", "/stocks//tesla"): Klein joins the
    segments to match them, which drops a leading empty one, so "//stocks/tesla" would be
    served as "/stocks/tesla". No route has an empty segment.
    """

    def __init__(self, app: Klein) -> None:
        super().__init__(app)
        self._routes: dict[tuple[bytes, bytes], tuple[str, dict[str, Any], int]] = {}

    def render(self, request: IRequest) -> Any:
        if b"" in request.postpath:
            return error_response(request, NotFound())
        try:
            for part in (*request.prepath, *request.postpath):
                part.decode("utf-8")
        except UnicodeDecodeError:
            return error_response(request, ApiError(400, "the request URL is not valid UTF-8"))
        try:
            # Klein's routing encodes the host name as IDNA, and fails (a 500) on one that is
            # not: an empty label ("a..b"), a label of over 63 characters, bytes not UTF-8.
            request.getRequestHostname().decode("utf-8").encode("idna")
        except UnicodeError:
            return error_response(request, ApiError(400, "the Host header is not a valid host name"))
        return self._route(request)

    def _route(self, request: IRequest) -> Any:
        """Klein's own rendering (KleinResource.render) for routes that answer bytes, without
        its reference cycle: its error callback refers to itself, so every request and all it
        held stayed alive until the garbage collector found them, a fifth of the front end's
        time under load. Here each step is a function given what it needs, or a method run
        before this returns."""
        try:
            answer = self._execute(request)
        except Exception:
            d = fail()
        else:
            if answer is None or isinstance(answer, (bytes, str)):
                # Answered at once (a cached lookup): written now, with no Deferred at all.
                try:
                    _write(answer, request)
                except Exception:
                    _unwritten(Failure(), request)
                return NOT_DONE_YET
            d = maybeDeferred(lambda: answer)  # a Deferred, or a coroutine to run as one
        request.notifyFinish().addBoth(_ended, request)
        # A client that goes away cancels its request's work (as Klein does).
        request.notifyFinish().addErrback(_cancel, d)
        d.addErrback(_handle_error, self._app, request)
        d.addCallback(_write, request)
        d.addErrback(_unwritten, request)
        return NOT_DONE_YET

    def _execute(self, request: IRequest) -> Any:
        """The route's answer. A route is found by a request's method and path, which alone
        decide the match here (no host or subdomain rules): the matches of the paths seen
        last are kept, so a hot path (a cached stock's) skips Klein's URL parts, werkzeug's
        binding and its matcher."""
        key = (request.method, request.path)
        route = self._routes.get(key)
        if route is None:
            url_scheme, server_name, _, path_info, script_name = extractURLparts(request)  # UTF-8, checked
            mapper = self._app.url_map.bind(server_name, script_name, path_info=path_info,
                                            default_method=request.method.decode("utf-8"), url_scheme=url_scheme)
            rule, arguments = mapper.match(return_rule=True)
            route = (rule.endpoint, arguments, route_metadata(self._app.endpoints[rule.endpoint]).segment_count)
            if len(request.path) <= MAX_KEPT_PATH:
                if len(self._routes) >= ROUTES_KEPT:
                    self._routes.clear()  # bounded, whatever paths clients send
                self._routes[key] = route
        endpoint, arguments, segments = route
        request.prepath.extend(request.postpath[:segments])
        request.postpath = request.postpath[segments:]
        return self._app.execute_endpoint(endpoint, request, **arguments)


def _ended(_: Any, request: IRequest) -> None:
    request.ended = True  # answered, or its connection lost: nothing more may be written


def _cancel(_: Any, work: Deferred) -> None:
    work.cancel()


def _handle_error(failure: Failure, app: Klein, request: IRequest) -> Any:
    """The app's error handler's answer (each app has one, for every exception)."""
    if getattr(request, "ended", False):
        if not failure.check(CancelledError):
            log.failure("unexpected error answering a request that ended", failure)
        return None
    for types, handler in app._error_handlers:
        if failure.check(*types):
            return app.execute_error_handler(handler, request, failure)
    request.processingFailed(failure)  # Twisted's plain 500 (no error handler matched)
    return None


def _write(body: bytes | str | None, request: IRequest) -> None:
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, bytes):
        request.write(body)
    if not getattr(request, "ended", False):
        request.finish()


def _unwritten(failure: Failure, request: IRequest) -> None:
    log.failure("unexpected error writing the answer to {method} {uri}", failure,
                method=request.method, uri=request.uri)


class JsonKlein(Klein):
    def resource(self) -> KleinResource:
        return _Utf8CheckedResource(self)


def _usable_name(name: object) -> bool:
    """Whether `name` could name a stock at all (else it is not found, without asking)."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
        return False
    try:
        name.encode("utf-8")  # lone surrogates from JSON "\ud800" cannot be sent
    except UnicodeEncodeError:
        return False
    return True


def _order_number(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if number <= MAX_ORDER_NUMBER else None


class _HugeNumber:
    """A JSON integer too long to be a quantity (Python refuses to parse past 4300 digits)."""


def _integer(text: str) -> int | _HugeNumber:
    return int(text) if len(text) <= 30 else _HugeNumber()


def _idempotency_key(request: IRequest) -> str:
    """The client's Idempotency-Key, or a fresh one the client can retry with."""
    raw = request.getHeader(b"idempotency-key")
    if raw is None:
        return f"fe-{uuid.uuid4().hex}"
    try:
        key = raw.decode("ascii")
    except UnicodeDecodeError:
        key = ""
    if not valid_key(key):
        raise ApiError(400, f"the Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return key


def _parse_order(body: bytes) -> dict[str, Any]:
    try:
        order = json.loads(body, parse_int=_integer)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting or digits
        order = None
    if not isinstance(order, dict):
        raise ApiError(400, "request body is not a JSON object")
    for field in ("name", "quantity", "type"):
        if field not in order:
            raise ApiError(400, f"request body is missing the field \"{field}\"")
    return order


class FrontEnd:
    app = JsonKlein()
    # "//stocks/x" is not a stock path: no redirects to a merged path.
    app.url_map.merge_slashes = False

    def __init__(
        self,
        catalog: Any,
        leaders: LeaderTracker,
        cache: LRUCache[StockInfo] | None,
        trades: TradePlacer,
        readiness: ReadinessCheck,
        order_cache_size: int = 0,
    ) -> None:
        self.catalog = catalog
        self.leaders = leaders
        self.cache = cache
        self.trades = trades
        self.readiness = readiness
        # Committed orders looked up, as their answers: a committed order never changes, so it
        # is answered from here the next time, asking no replica. Bounded, least recently used.
        self.orders: cachetools.LRUCache[int, bytes] = cachetools.LRUCache(maxsize=order_cache_size)
        # Per stock, the highest transaction number this front end acknowledged: its lookups
        # ask the catalog to have applied it (read your writes). Only real stocks get a 200,
        # so this holds at most one number per stock.
        self._acknowledged: dict[str, int] = {}

    @app.handle_errors
    def _error(self, request: IRequest, failure: Failure) -> bytes:
        if _status_and_message(failure.value)[0] == 500:
            log.failure(
                "unexpected error answering {method} {uri}",
                failure,
                method=request.method,
                uri=request.uri,
            )
        return error_response(request, failure.value)

    @app.route("/stocks/<name>", methods=["GET"])
    def get_stock(self, request: IRequest, name: str) -> bytes | Deferred:
        # A cache hit is answered synchronously: no coroutine and no Deferred, on the one path
        # that has to keep up with a bare route.
        cached = self.cache.get(name) if self.cache is not None and _usable_name(name) else None
        if cached is not None:
            return _stock_response(request, cached)
        return Deferred.fromCoroutine(self._get_uncached_stock(request, name))

    async def _get_uncached_stock(self, request: IRequest, name: str) -> bytes:
        return _stock_response(request, await self._stock(name))

    @app.route("/orders", methods=["POST"])
    async def place_order(self, request: IRequest) -> bytes:
        # Every trade travels under a key, the client's or a fresh one: the redo of this very
        # request on a new leader is then exactly-once too, and the client, told the key in
        # every answer, can retry once it learns nothing (504).
        # The body's shape is checked before the key header (API order of checks), and its 400
        # carries the key too when the key is valid.
        key_error: ApiError | None = None
        try:
            key = _idempotency_key(request)
            request.setHeader(b"Idempotency-Key", key.encode("ascii"))
        except ApiError as e:
            key_error = e
        order = _parse_order(request.content.read())
        if key_error is not None:
            raise key_error
        name = order["name"]
        if not _usable_name(name):
            raise stock_not_found()
        trade_type = trade_type_to_proto(order["type"])
        # An invalid quantity still goes to the leader, as 0, so that it is refused only after
        # the stock and type checks, in the API's order of checks.
        quantity = order["quantity"] if valid_quantity(order["quantity"]) else 0
        fresh = request.getHeader(b"idempotency-key") is None
        result = await self.trades.place(name, quantity, trade_type, key, fresh_key=fresh)
        if result.final is not Final.ANSWERED or result.placed is None:
            raise ApiError(*(_OUTCOME_UNKNOWN if result.final is Final.UNKNOWN else _NOT_EXECUTED))
        placed = result.placed
        if placed.status != order_pb2.REQUEST_STATUS_OK:
            code, message = _REFUSALS.get(placed.status, _UNEXPECTED_STATUS)
            raise ApiError(code, message)
        number = placed.transaction_number
        if number > self._acknowledged.get(name, -1):
            self._acknowledged[name] = number
        if self.cache is not None:
            # The leader pushes this too, once the catalog has applied it; the client's next
            # GET must already see the new quantity.
            self.cache.invalidate(name)
        data = {"transaction_number": number}
        return json_response(request, 200, {"data": data})

    @app.route("/orders/<number>", methods=["GET"])
    def get_order(self, request: IRequest, number: str) -> bytes | Deferred:
        wanted = _order_number(number)
        if wanted is None:
            raise transaction_not_found()
        known = self.orders.get(wanted)
        if known is not None:  # synchronously, as a cached stock: no coroutine, no Deferred
            return json_bytes(request, known)
        return Deferred.fromCoroutine(self._get_unknown_order(request, wanted))

    async def _get_unknown_order(self, request: IRequest, wanted: int) -> bytes:
        try:
            order = await self.leaders.call_leader(lambda replica: replica.lookup(wanted))
        except NoLeaderAvailable:
            order = await self._look_up_anywhere(wanted)
        if order is None:
            raise transaction_not_found()  # not remembered: the number may be used later
        body = json_response(request, 200, {"data": order.as_json()})
        if self.orders.maxsize:
            self.orders[wanted] = body  # an order a replica answers for is committed: it never changes
        return body

    async def _look_up_anywhere(self, number: int) -> Any:
        """With no leader (too few replicas), a committed order can still be read: each
        replica answers for the orders it knows to be committed, and refuses the others."""
        for replica in sorted(self.leaders.replicas.values(), key=lambda r: -r.id):
            try:
                return await replica.lookup(number)
            except PeerUnavailable:
                continue
        raise NoLeaderAvailable("no replica can answer for this order")

    @app.route("/cache", methods=["GET"])
    def cache_report(self, request: IRequest) -> bytes:
        """The cache's counters only: what is cached, and when, shows other clients' trades
        (the whole report is on the internal listener, frontend/internal.py)."""
        return json_response(request, 200, {"data": cache_counters(self.cache)})

    @app.route("/healthz", methods=["GET"])
    def healthz(self, request: IRequest) -> bytes:
        """The process is up and its event loop turns; it asks no backend."""
        return json_response(request, 200, {"data": {"status": "up"}})

    @app.route("/readyz", methods=["GET"])
    async def readyz(self, request: IRequest) -> bytes:
        state = await self.readiness.check()
        if state.ready:
            return json_response(request, 200, {"data": {"ready": True, "leader": state.leader, "missing": []}})
        body = error_document(503, state.message)
        body["error"]["missing"] = list(state.missing)
        return json_response(request, 503, body)

    @app.route("/leader", methods=["GET"])
    async def get_leader(self, request: IRequest) -> bytes:
        leader = await self.leaders.leader()
        address = self.leaders.address_of(leader)
        return json_response(request, 200, {"data": {"leader": str(address)}})

    @app.route("/leader/<caller>", methods=["GET"])
    async def get_leader_seed_form(self, request: IRequest, caller: str) -> bytes:
        """Older rejoining replicas name themselves; who asks does not change the answer."""
        return await self.get_leader(request)

    async def _stock(self, name: str) -> StockInfo:
        """The stock from the catalog, after get_stock missed in the cache (if there is one),
        filling the cache with it."""
        if not _usable_name(name):
            raise stock_not_found()
        cache = self.cache
        if cache is None:
            return await self._look_up(name)
        token = cache.begin_fill(name)
        try:
            stock = await self._look_up(name)
        except BaseException:
            cache.abandon_fill(name, token)
            raise
        cache.complete_fill(name, token, stock)
        return stock

    async def _look_up(self, name: str) -> StockInfo:
        try:
            stock = await self.catalog.lookup(name, self._acknowledged.get(name))
        except PeerUnavailable as e:
            log.warn("catalog lookup of {name!r} failed: {error}", name=name, error=e)
            raise ApiError(503, "the catalog is unavailable") from None
        if stock is None:
            raise stock_not_found()
        return stock

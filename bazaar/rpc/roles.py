"""Which process may call what, checked once, before any handler runs (a server interceptor).

The caller's identity is its certificate's common name (bazaar/tls/identity.py), which the
cluster's authority vouched for during the TLS handshake. Only replicas replicate, promise and
stream logs; only front ends place orders and assign followers; only replicas (the leader)
ship committed trades to the catalog; the operator's tools may only look. A replica may also
speak only for itself: a batch names its sender as leader, a promise its candidate, a rejoin
stream its own address. Anything else is PERMISSION_DENIED and reaches no handler, so it
changes nothing.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any, Callable

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID

from bazaar.config import Config
from bazaar.rpc.limits import MAX_WATCHES_PER_CALLER
from bazaar.rpc.names import HEALTH_NAMES
from bazaar.tls.identity import Identity, Role, cluster_identity

ANY = frozenset(Role)
REPLICA = frozenset({Role.REPLICA})
FRONTEND = frozenset({Role.FRONTEND})
LOOKERS = frozenset({Role.FRONTEND, Role.REPLICA, Role.OPERATOR})

# What a request may claim about its sender: None when it claims nothing false.
Claim = Callable[[Any, Identity, Config], str | None]


def _leads_itself(request: Any, caller: Identity, config: Config) -> str | None:
    if request.leader_id != caller.replica_id:
        return f"replica {caller.replica_id} cannot send batches as leader {request.leader_id}"
    return None


def _stands_or_rejoins_itself(request: Any, caller: Identity, config: Config) -> str | None:
    if request.epoch and request.candidate_id != caller.replica_id:
        return f"replica {caller.replica_id} cannot ask promises for candidate {request.candidate_id}"
    own = config.replicas.get(caller.replica_id)
    if request.caller and request.caller != str(own):
        return f"replica {caller.replica_id} cannot rejoin as {request.caller!r}"
    return None


def _fetches_for_itself(request: Any, caller: Identity, config: Config) -> str | None:
    if request.caller != str(config.replicas.get(caller.replica_id)):
        return f"replica {caller.replica_id} cannot fetch a snapshot as {request.caller!r}"
    return None


def _known_service(request: Any, caller: Identity, config: Config) -> str | None:
    if request.service not in HEALTH_NAMES:
        return "no such service to check"  # grpcio-health would keep the name for good
    return None


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role]
    claim: Claim | None = None


ORDER = "/bazaar.v1.OrderService/"
CATALOG = "/bazaar.v1.CatalogService/"
HEALTH = "/grpc.health.v1.Health/"
POLICY: dict[str, Rule] = {
    ORDER + "Request": Rule(FRONTEND),
    ORDER + "RequestBatch": Rule(FRONTEND),
    ORDER + "Lookup": Rule(FRONTEND),
    ORDER + "AssignFollowers": Rule(FRONTEND),
    ORDER + "Describe": Rule(LOOKERS),
    ORDER + "Propagate": Rule(REPLICA, _leads_itself),
    ORDER + "Synchronize": Rule(REPLICA, _stands_or_rejoins_itself),
    ORDER + "FetchSnapshot": Rule(REPLICA, _fetches_for_itself),
    CATALOG + "Lookup": Rule(FRONTEND),
    CATALOG + "Trade": Rule(REPLICA),
    CATALOG + "TradeBatch": Rule(REPLICA),
    CATALOG + "DescribeCatalog": Rule(LOOKERS),
    HEALTH + "Check": Rule(ANY, _known_service),
    HEALTH + "Watch": Rule(ANY, _known_service),
}


def caller(context: Any, config: Config) -> Identity | None:
    """The caller's identity, from the certificate the TLS handshake verified."""
    pem = (context.auth_context().get("x509_pem_cert") or [None])[0]
    return cluster_identity(common_names(pem), config.replicas, config.frontends) if pem else None


@functools.lru_cache(maxsize=64)
def common_names(pem: bytes) -> tuple[str, ...]:
    """A certificate's common names (parsed once per certificate, not once per call)."""
    try:
        names = x509.load_pem_x509_certificate(pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return ()
    return tuple(str(n.value) for n in names)


class RoleInterceptor(grpc.ServerInterceptor):
    def __init__(self, config: Config) -> None:
        self._config = config
        self._watching: dict[str, int] = {}  # health watches open, per caller
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        rule = POLICY.get(details.method)
        if handler.request_streaming:
            # No method of ours streams requests: nothing could have granted one.
            def closed(requests: Any, context: Any) -> Any:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{details.method} is not open to any caller")

            make = grpc.stream_stream_rpc_method_handler if handler.response_streaming else grpc.stream_unary_rpc_method_handler
            return make(closed, handler.request_deserializer, handler.response_serializer)

        def check(request: Any, context: Any) -> Identity:
            """The caller, once allowed; aborts the call otherwise."""
            identity = caller(context, self._config)
            if rule is None:
                refused: str | None = f"{details.method} is not open to any caller"
            elif identity is None or identity.role not in rule.roles:
                who = identity.name if identity is not None else "a caller with no cluster identity"
                refused = f"{who} may not call {details.method}"
            else:
                refused = rule.claim(request, identity, self._config) if rule.claim is not None else None
            if refused is not None:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, refused)
            assert identity is not None
            return identity

        if not handler.response_streaming:
            inner = handler.unary_unary

            def unary(request: Any, context: Any) -> Any:
                check(request, context)
                return inner(request, context)

            return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)
        inner = handler.unary_stream
        if getattr(inner, "experimental_non_blocking", False):
            # grpcio-health's Watch: it answers through a callback and holds no thread. The
            # wrapper must say so too, or every watch would keep one of the server's threads.
            def watch(request: Any, context: Any, send_response_callback: Any = None) -> Any:
                self._watch(check(request, context), context)
                return inner(request, context, send_response_callback)

            watch.experimental_non_blocking = True  # type: ignore[attr-defined]
            return grpc.unary_stream_rpc_method_handler(watch, handler.request_deserializer, handler.response_serializer)

        def stream(request: Any, context: Any) -> Any:
            check(request, context)
            yield from inner(request, context)

        return grpc.unary_stream_rpc_method_handler(stream, handler.request_deserializer, handler.response_serializer)

    def _watch(self, identity: Identity, context: Any) -> None:
        """Counts the caller's open watches; beyond its share, RESOURCE_EXHAUSTED."""
        with self._lock:
            open_now = self._watching.get(identity.name, 0)
            if open_now >= MAX_WATCHES_PER_CALLER:
                refused = True
            else:
                refused = False
                self._watching[identity.name] = open_now + 1
        if refused:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"{identity.name} holds {MAX_WATCHES_PER_CALLER} health watches here already")

        def ended() -> None:
            with self._lock:
                left = self._watching.get(identity.name, 1) - 1
                if left > 0:
                    self._watching[identity.name] = left
                else:
                    self._watching.pop(identity.name, None)

        if not context.add_callback(ended):
            ended()  # the call has ended already

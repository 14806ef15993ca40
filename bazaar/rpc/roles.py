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

from dataclasses import dataclass
from typing import Any, Callable

import grpc

from bazaar.config import Config
from bazaar.tls.identity import Identity, Role, identity_of

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
    CATALOG + "Lookup": Rule(FRONTEND),
    CATALOG + "Trade": Rule(REPLICA),
    CATALOG + "TradeBatch": Rule(REPLICA),
    HEALTH + "Check": Rule(ANY),
    HEALTH + "Watch": Rule(ANY),
}


def caller(context: Any) -> Identity | None:
    names = context.auth_context().get("x509_common_name") or []
    if len(names) != 1:
        return None
    try:
        return identity_of(names[0].decode("ascii"))
    except UnicodeDecodeError:
        return None


class RoleInterceptor(grpc.ServerInterceptor):
    def __init__(self, config: Config) -> None:
        self._config = config

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
        inner = handler.unary_stream if handler.response_streaming else handler.unary_unary

        def refusal(request: Any, context: Any) -> str | None:
            identity = caller(context)
            if rule is None:
                return f"{details.method} is not open to any caller"
            if identity is None or identity.role not in rule.roles:
                who = identity.name if identity is not None else "a caller with no cluster identity"
                return f"{who} may not call {details.method}"
            return rule.claim(request, identity, self._config) if rule.claim is not None else None

        if handler.response_streaming:
            def stream(request: Any, context: Any) -> Any:
                refused = refusal(request, context)
                if refused is not None:
                    context.abort(grpc.StatusCode.PERMISSION_DENIED, refused)
                yield from inner(request, context)

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer,
            )

        def unary(request: Any, context: Any) -> Any:
            refused = refusal(request, context)
            if refused is not None:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, refused)
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)

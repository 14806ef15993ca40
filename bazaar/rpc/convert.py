"""Between plain values (bazaar.core) and their protobuf messages."""

from __future__ import annotations

from bazaar.core.chain import Kind, Record
from bazaar.core.orders import BUY, SELL, Order
from bazaar.v1 import order_pb2, trade_pb2

_TO_PROTO = {BUY: trade_pb2.TRADE_TYPE_BUY, SELL: trade_pb2.TRADE_TYPE_SELL}
_FROM_PROTO = {v: k for k, v in _TO_PROTO.items()}
_KIND_TO_PROTO = {
    Kind.TRADE: trade_pb2.ENTRY_KIND_TRADE,
    Kind.REFUSED: trade_pb2.ENTRY_KIND_REFUSED,
    Kind.LEADER: trade_pb2.ENTRY_KIND_LEADER,
}
_KIND_FROM_PROTO = {v: k for k, v in _KIND_TO_PROTO.items()}


def trade_type_to_proto(type_: object) -> int:
    """"buy"/"sell" to the enum; anything else is UNSPECIFIED, which the leader refuses."""
    return _TO_PROTO.get(type_, trade_pb2.TRADE_TYPE_UNSPECIFIED) if isinstance(type_, str) else 0


def trade_type_from_proto(value: int) -> str | None:
    return _FROM_PROTO.get(value)


def request_status_name(status: int) -> str:
    """A RequestStatus in lower case without its prefix: NOT_ENOUGH_STOCK is "not_enough_stock"."""
    try:
        return order_pb2.RequestStatus.Name(status).removeprefix("REQUEST_STATUS_").lower()
    except ValueError:
        return "unexpected"


# A replica's role by the name operators see (bazaar status, the metrics): a replica catching
# up from the leader after its start is a learner, not yet one to select.
ROLE_NAMES = {
    order_pb2.REPLICA_ROLE_STARTING: "learner",
    order_pb2.REPLICA_ROLE_FOLLOWER: "follower",
    order_pb2.REPLICA_ROLE_CANDIDATE: "candidate",
    order_pb2.REPLICA_ROLE_LEADER: "leader",
}


def order_to_proto(order: Order) -> trade_pb2.Order:
    return trade_pb2.Order(number=order.number, name=order.name, type=_TO_PROTO[order.type], quantity=order.quantity)


def order_from_proto(message: trade_pb2.Order) -> Order:
    type_ = _FROM_PROTO.get(message.type)
    if type_ is None:
        raise ValueError(f"order {message.number} has no trade type")
    return Order(message.number, message.name, type_, message.quantity)


def record_to_proto(record: Record) -> trade_pb2.LogEntry:
    return trade_pb2.LogEntry(
        index=record.index, epoch=record.epoch, kind=_KIND_TO_PROTO[record.kind], number=record.number,
        name=record.name, type=_TO_PROTO.get(record.type, trade_pb2.TRADE_TYPE_UNSPECIFIED),
        quantity=record.quantity, key=record.key,
    )


def record_from_proto(message: trade_pb2.LogEntry) -> Record:
    """A log entry from a peer; ValueError when it is not one a leader could have written."""
    kind = _KIND_FROM_PROTO.get(message.kind)
    if kind is None:
        raise ValueError(f"entry {message.index} has no kind")
    type_ = _FROM_PROTO.get(message.type)
    if kind is Kind.LEADER:
        if message.name or message.quantity or message.key or message.type:
            raise ValueError(f"leader entry {message.index} carries a trade")
        return Record(message.index, message.epoch, kind, message.number)
    if type_ is None or message.quantity < 1 or not message.name:
        raise ValueError(f"entry {message.index} is not a well-formed trade")
    return Record(message.index, message.epoch, kind, message.number, message.name, type_, message.quantity, message.key)

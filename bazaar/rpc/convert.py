"""Between plain values (bazaar.core) and their protobuf messages."""

from __future__ import annotations

from bazaar.core.chain import Entry, Record
from bazaar.core.orders import BUY, SELL, Order
from bazaar.v1 import trade_pb2

_TO_PROTO = {BUY: trade_pb2.TRADE_TYPE_BUY, SELL: trade_pb2.TRADE_TYPE_SELL}
_FROM_PROTO = {v: k for k, v in _TO_PROTO.items()}


def trade_type_to_proto(type_: object) -> int:
    """"buy"/"sell" to the enum; anything else is UNSPECIFIED, which the leader refuses."""
    return _TO_PROTO.get(type_, trade_pb2.TRADE_TYPE_UNSPECIFIED) if isinstance(type_, str) else 0


def trade_type_from_proto(value: int) -> str | None:
    return _FROM_PROTO.get(value)


def order_to_proto(order: Order, epoch: int = 0) -> trade_pb2.Order:
    return trade_pb2.Order(
        number=order.number, name=order.name, type=_TO_PROTO[order.type], quantity=order.quantity,
        epoch=epoch,
    )


def order_from_proto(message: trade_pb2.Order) -> Order:
    type_ = _FROM_PROTO.get(message.type)
    if type_ is None:
        raise ValueError(f"order {message.number} has no trade type")
    return Order(message.number, message.name, type_, message.quantity)


def record_to_proto(record: Record | Entry) -> trade_pb2.Order:
    message = order_to_proto(record.order, record.epoch)
    message.key = record.key
    return message


def record_from_proto(message: trade_pb2.Order) -> Record:
    return Record(order_from_proto(message), message.epoch, message.key)

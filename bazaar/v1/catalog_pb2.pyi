from bazaar.v1 import trade_pb2 as _trade_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TradeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRADE_STATUS_UNSPECIFIED: _ClassVar[TradeStatus]
    TRADE_STATUS_OK: _ClassVar[TradeStatus]
    TRADE_STATUS_GAP: _ClassVar[TradeStatus]
    TRADE_STATUS_INCONSISTENT: _ClassVar[TradeStatus]
TRADE_STATUS_UNSPECIFIED: TradeStatus
TRADE_STATUS_OK: TradeStatus
TRADE_STATUS_GAP: TradeStatus
TRADE_STATUS_INCONSISTENT: TradeStatus

class DescribeCatalogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeCatalogResponse(_message.Message):
    __slots__ = ("applied_through",)
    APPLIED_THROUGH_FIELD_NUMBER: _ClassVar[int]
    applied_through: int
    def __init__(self, applied_through: _Optional[int] = ...) -> None: ...

class LookupStockRequest(_message.Message):
    __slots__ = ("name", "min_applied")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_APPLIED_FIELD_NUMBER: _ClassVar[int]
    name: str
    min_applied: int
    def __init__(self, name: _Optional[str] = ..., min_applied: _Optional[int] = ...) -> None: ...

class LookupStockResponse(_message.Message):
    __slots__ = ("found", "price", "quantity", "volume", "applied_through")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    APPLIED_THROUGH_FIELD_NUMBER: _ClassVar[int]
    found: bool
    price: float
    quantity: int
    volume: int
    applied_through: int
    def __init__(self, found: _Optional[bool] = ..., price: _Optional[float] = ..., quantity: _Optional[int] = ..., volume: _Optional[int] = ..., applied_through: _Optional[int] = ...) -> None: ...

class TradeStockRequest(_message.Message):
    __slots__ = ("number", "name", "quantity", "type")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    number: int
    name: str
    quantity: int
    type: _trade_pb2.TradeType
    def __init__(self, number: _Optional[int] = ..., name: _Optional[str] = ..., quantity: _Optional[int] = ..., type: _Optional[_Union[_trade_pb2.TradeType, str]] = ...) -> None: ...

class TradeStockResponse(_message.Message):
    __slots__ = ("status", "applied_through")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_THROUGH_FIELD_NUMBER: _ClassVar[int]
    status: TradeStatus
    applied_through: int
    def __init__(self, status: _Optional[_Union[TradeStatus, str]] = ..., applied_through: _Optional[int] = ...) -> None: ...

class TradeBatchRequest(_message.Message):
    __slots__ = ("trades",)
    TRADES_FIELD_NUMBER: _ClassVar[int]
    trades: _containers.RepeatedCompositeFieldContainer[TradeStockRequest]
    def __init__(self, trades: _Optional[_Iterable[_Union[TradeStockRequest, _Mapping]]] = ...) -> None: ...

class TradeBatchResponse(_message.Message):
    __slots__ = ("status", "applied_through")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_THROUGH_FIELD_NUMBER: _ClassVar[int]
    status: TradeStatus
    applied_through: int
    def __init__(self, status: _Optional[_Union[TradeStatus, str]] = ..., applied_through: _Optional[int] = ...) -> None: ...

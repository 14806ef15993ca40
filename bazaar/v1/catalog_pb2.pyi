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
    TRADE_STATUS_STOCK_NOT_FOUND: _ClassVar[TradeStatus]
    TRADE_STATUS_INVALID_TYPE: _ClassVar[TradeStatus]
    TRADE_STATUS_INVALID_QUANTITY: _ClassVar[TradeStatus]
    TRADE_STATUS_NOT_ENOUGH_STOCK: _ClassVar[TradeStatus]
    TRADE_STATUS_KEY_REUSED: _ClassVar[TradeStatus]
    TRADE_STATUS_STALE_EPOCH: _ClassVar[TradeStatus]
TRADE_STATUS_UNSPECIFIED: TradeStatus
TRADE_STATUS_OK: TradeStatus
TRADE_STATUS_STOCK_NOT_FOUND: TradeStatus
TRADE_STATUS_INVALID_TYPE: TradeStatus
TRADE_STATUS_INVALID_QUANTITY: TradeStatus
TRADE_STATUS_NOT_ENOUGH_STOCK: TradeStatus
TRADE_STATUS_KEY_REUSED: TradeStatus
TRADE_STATUS_STALE_EPOCH: TradeStatus

class LookupStockRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class LookupStockResponse(_message.Message):
    __slots__ = ("found", "price", "quantity", "volume")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    found: bool
    price: float
    quantity: int
    volume: int
    def __init__(self, found: _Optional[bool] = ..., price: _Optional[float] = ..., quantity: _Optional[int] = ..., volume: _Optional[int] = ...) -> None: ...

class TradeStockRequest(_message.Message):
    __slots__ = ("name", "quantity", "type", "trade_id", "epoch")
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    name: str
    quantity: int
    type: _trade_pb2.TradeType
    trade_id: str
    epoch: int
    def __init__(self, name: _Optional[str] = ..., quantity: _Optional[int] = ..., type: _Optional[_Union[_trade_pb2.TradeType, str]] = ..., trade_id: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...

class TradeStockResponse(_message.Message):
    __slots__ = ("status", "quantity")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    status: TradeStatus
    quantity: int
    def __init__(self, status: _Optional[_Union[TradeStatus, str]] = ..., quantity: _Optional[int] = ...) -> None: ...

class TradeBatchRequest(_message.Message):
    __slots__ = ("trades",)
    TRADES_FIELD_NUMBER: _ClassVar[int]
    trades: _containers.RepeatedCompositeFieldContainer[TradeStockRequest]
    def __init__(self, trades: _Optional[_Iterable[_Union[TradeStockRequest, _Mapping]]] = ...) -> None: ...

class TradeBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TradeStockResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[TradeStockResponse, _Mapping]]] = ...) -> None: ...

class ListAppliedRequest(_message.Message):
    __slots__ = ("last", "epoch")
    LAST_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    last: int
    epoch: int
    def __init__(self, last: _Optional[int] = ..., epoch: _Optional[int] = ...) -> None: ...

class AppliedTrade(_message.Message):
    __slots__ = ("seq", "trade_id", "name", "type", "quantity")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    seq: int
    trade_id: str
    name: str
    type: _trade_pb2.TradeType
    quantity: int
    def __init__(self, seq: _Optional[int] = ..., trade_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[_Union[_trade_pb2.TradeType, str]] = ..., quantity: _Optional[int] = ...) -> None: ...

class ListAppliedResponse(_message.Message):
    __slots__ = ("trades",)
    TRADES_FIELD_NUMBER: _ClassVar[int]
    trades: _containers.RepeatedCompositeFieldContainer[AppliedTrade]
    def __init__(self, trades: _Optional[_Iterable[_Union[AppliedTrade, _Mapping]]] = ...) -> None: ...

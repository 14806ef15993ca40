from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TradeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRADE_TYPE_UNSPECIFIED: _ClassVar[TradeType]
    TRADE_TYPE_BUY: _ClassVar[TradeType]
    TRADE_TYPE_SELL: _ClassVar[TradeType]

class EntryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_KIND_UNSPECIFIED: _ClassVar[EntryKind]
    ENTRY_KIND_TRADE: _ClassVar[EntryKind]
    ENTRY_KIND_REFUSED: _ClassVar[EntryKind]
    ENTRY_KIND_LEADER: _ClassVar[EntryKind]
TRADE_TYPE_UNSPECIFIED: TradeType
TRADE_TYPE_BUY: TradeType
TRADE_TYPE_SELL: TradeType
ENTRY_KIND_UNSPECIFIED: EntryKind
ENTRY_KIND_TRADE: EntryKind
ENTRY_KIND_REFUSED: EntryKind
ENTRY_KIND_LEADER: EntryKind

class Order(_message.Message):
    __slots__ = ("number", "name", "type", "quantity")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    number: int
    name: str
    type: TradeType
    quantity: int
    def __init__(self, number: _Optional[int] = ..., name: _Optional[str] = ..., type: _Optional[_Union[TradeType, str]] = ..., quantity: _Optional[int] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("index", "epoch", "kind", "number", "name", "type", "quantity", "key")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    index: int
    epoch: int
    kind: EntryKind
    number: int
    name: str
    type: TradeType
    quantity: int
    key: str
    def __init__(self, index: _Optional[int] = ..., epoch: _Optional[int] = ..., kind: _Optional[_Union[EntryKind, str]] = ..., number: _Optional[int] = ..., name: _Optional[str] = ..., type: _Optional[_Union[TradeType, str]] = ..., quantity: _Optional[int] = ..., key: _Optional[str] = ...) -> None: ...

from bazaar.v1 import trade_pb2 as _trade_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RequestStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_STATUS_UNSPECIFIED: _ClassVar[RequestStatus]
    REQUEST_STATUS_OK: _ClassVar[RequestStatus]
    REQUEST_STATUS_STOCK_NOT_FOUND: _ClassVar[RequestStatus]
    REQUEST_STATUS_INVALID_TYPE: _ClassVar[RequestStatus]
    REQUEST_STATUS_INVALID_QUANTITY: _ClassVar[RequestStatus]
    REQUEST_STATUS_NOT_ENOUGH_STOCK: _ClassVar[RequestStatus]
    REQUEST_STATUS_NOT_LEADER: _ClassVar[RequestStatus]
    REQUEST_STATUS_UNAVAILABLE: _ClassVar[RequestStatus]
    REQUEST_STATUS_KEY_REUSED: _ClassVar[RequestStatus]
    REQUEST_STATUS_IN_DOUBT: _ClassVar[RequestStatus]

class PropagateStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROPAGATE_STATUS_UNSPECIFIED: _ClassVar[PropagateStatus]
    PROPAGATE_STATUS_OK: _ClassVar[PropagateStatus]
    PROPAGATE_STATUS_GAP: _ClassVar[PropagateStatus]
    PROPAGATE_STATUS_CONFLICT: _ClassVar[PropagateStatus]
    PROPAGATE_STATUS_STALE_EPOCH: _ClassVar[PropagateStatus]

class ReplicaRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPLICA_ROLE_UNSPECIFIED: _ClassVar[ReplicaRole]
    REPLICA_ROLE_STARTING: _ClassVar[ReplicaRole]
    REPLICA_ROLE_FOLLOWER: _ClassVar[ReplicaRole]
    REPLICA_ROLE_CANDIDATE: _ClassVar[ReplicaRole]
    REPLICA_ROLE_LEADER: _ClassVar[ReplicaRole]
REQUEST_STATUS_UNSPECIFIED: RequestStatus
REQUEST_STATUS_OK: RequestStatus
REQUEST_STATUS_STOCK_NOT_FOUND: RequestStatus
REQUEST_STATUS_INVALID_TYPE: RequestStatus
REQUEST_STATUS_INVALID_QUANTITY: RequestStatus
REQUEST_STATUS_NOT_ENOUGH_STOCK: RequestStatus
REQUEST_STATUS_NOT_LEADER: RequestStatus
REQUEST_STATUS_UNAVAILABLE: RequestStatus
REQUEST_STATUS_KEY_REUSED: RequestStatus
REQUEST_STATUS_IN_DOUBT: RequestStatus
PROPAGATE_STATUS_UNSPECIFIED: PropagateStatus
PROPAGATE_STATUS_OK: PropagateStatus
PROPAGATE_STATUS_GAP: PropagateStatus
PROPAGATE_STATUS_CONFLICT: PropagateStatus
PROPAGATE_STATUS_STALE_EPOCH: PropagateStatus
REPLICA_ROLE_UNSPECIFIED: ReplicaRole
REPLICA_ROLE_STARTING: ReplicaRole
REPLICA_ROLE_FOLLOWER: ReplicaRole
REPLICA_ROLE_CANDIDATE: ReplicaRole
REPLICA_ROLE_LEADER: ReplicaRole

class PlaceOrderRequest(_message.Message):
    __slots__ = ("name", "quantity", "type", "idempotency_key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    quantity: int
    type: _trade_pb2.TradeType
    idempotency_key: str
    def __init__(self, name: _Optional[str] = ..., quantity: _Optional[int] = ..., type: _Optional[_Union[_trade_pb2.TradeType, str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class PlaceOrderResponse(_message.Message):
    __slots__ = ("status", "transaction_number")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    status: RequestStatus
    transaction_number: int
    def __init__(self, status: _Optional[_Union[RequestStatus, str]] = ..., transaction_number: _Optional[int] = ...) -> None: ...

class RequestBatchRequest(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[PlaceOrderRequest]
    def __init__(self, orders: _Optional[_Iterable[_Union[PlaceOrderRequest, _Mapping]]] = ...) -> None: ...

class RequestBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PlaceOrderResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[PlaceOrderResponse, _Mapping]]] = ...) -> None: ...

class LookupOrderRequest(_message.Message):
    __slots__ = ("number",)
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    number: int
    def __init__(self, number: _Optional[int] = ...) -> None: ...

class LookupOrderResponse(_message.Message):
    __slots__ = ("found", "order")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    found: bool
    order: _trade_pb2.Order
    def __init__(self, found: _Optional[bool] = ..., order: _Optional[_Union[_trade_pb2.Order, _Mapping]] = ...) -> None: ...

class PropagateRequest(_message.Message):
    __slots__ = ("prev_index", "prev_chain", "entries", "leader_last", "epoch", "leader_commit", "leader_id")
    PREV_INDEX_FIELD_NUMBER: _ClassVar[int]
    PREV_CHAIN_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LEADER_LAST_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LEADER_COMMIT_FIELD_NUMBER: _ClassVar[int]
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    prev_index: int
    prev_chain: bytes
    entries: _containers.RepeatedCompositeFieldContainer[_trade_pb2.LogEntry]
    leader_last: int
    epoch: int
    leader_commit: int
    leader_id: int
    def __init__(self, prev_index: _Optional[int] = ..., prev_chain: _Optional[bytes] = ..., entries: _Optional[_Iterable[_Union[_trade_pb2.LogEntry, _Mapping]]] = ..., leader_last: _Optional[int] = ..., epoch: _Optional[int] = ..., leader_commit: _Optional[int] = ..., leader_id: _Optional[int] = ...) -> None: ...

class PropagateResponse(_message.Message):
    __slots__ = ("status", "last_index", "epoch", "replaced")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_INDEX_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    status: PropagateStatus
    last_index: int
    epoch: int
    replaced: bool
    def __init__(self, status: _Optional[_Union[PropagateStatus, str]] = ..., last_index: _Optional[int] = ..., epoch: _Optional[int] = ..., replaced: _Optional[bool] = ...) -> None: ...

class AssignFollowersRequest(_message.Message):
    __slots__ = ("followers",)
    FOLLOWERS_FIELD_NUMBER: _ClassVar[int]
    followers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, followers: _Optional[_Iterable[str]] = ...) -> None: ...

class AssignFollowersResponse(_message.Message):
    __slots__ = ("last_index",)
    LAST_INDEX_FIELD_NUMBER: _ClassVar[int]
    last_index: int
    def __init__(self, last_index: _Optional[int] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("index", "chain")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    index: int
    chain: bytes
    def __init__(self, index: _Optional[int] = ..., chain: _Optional[bytes] = ...) -> None: ...

class SynchronizeRequest(_message.Message):
    __slots__ = ("checkpoints", "caller", "epoch", "candidate_id")
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_ID_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    caller: str
    epoch: int
    candidate_id: int
    def __init__(self, checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ..., caller: _Optional[str] = ..., epoch: _Optional[int] = ..., candidate_id: _Optional[int] = ...) -> None: ...

class SynchronizeResponse(_message.Message):
    __slots__ = ("prev_index", "prev_chain", "entries", "epoch", "refused", "leader_alive", "leader_commit")
    PREV_INDEX_FIELD_NUMBER: _ClassVar[int]
    PREV_CHAIN_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    LEADER_ALIVE_FIELD_NUMBER: _ClassVar[int]
    LEADER_COMMIT_FIELD_NUMBER: _ClassVar[int]
    prev_index: int
    prev_chain: bytes
    entries: _containers.RepeatedCompositeFieldContainer[_trade_pb2.LogEntry]
    epoch: int
    refused: bool
    leader_alive: bool
    leader_commit: int
    def __init__(self, prev_index: _Optional[int] = ..., prev_chain: _Optional[bytes] = ..., entries: _Optional[_Iterable[_Union[_trade_pb2.LogEntry, _Mapping]]] = ..., epoch: _Optional[int] = ..., refused: _Optional[bool] = ..., leader_alive: _Optional[bool] = ..., leader_commit: _Optional[int] = ...) -> None: ...

class FetchSnapshotRequest(_message.Message):
    __slots__ = ("caller",)
    CALLER_FIELD_NUMBER: _ClassVar[int]
    caller: str
    def __init__(self, caller: _Optional[str] = ...) -> None: ...

class FetchSnapshotResponse(_message.Message):
    __slots__ = ("last_index", "last_chain", "epoch", "size", "data", "digest")
    LAST_INDEX_FIELD_NUMBER: _ClassVar[int]
    LAST_CHAIN_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    last_index: int
    last_chain: bytes
    epoch: int
    size: int
    data: bytes
    digest: bytes
    def __init__(self, last_index: _Optional[int] = ..., last_chain: _Optional[bytes] = ..., epoch: _Optional[int] = ..., size: _Optional[int] = ..., data: _Optional[bytes] = ..., digest: _Optional[bytes] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("replica_id", "role", "epoch", "leader_id", "leader_epoch", "reachable", "last_index", "committed_index", "committed_number")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    LEADER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    LAST_INDEX_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_INDEX_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_NUMBER_FIELD_NUMBER: _ClassVar[int]
    replica_id: int
    role: ReplicaRole
    epoch: int
    leader_id: int
    leader_epoch: int
    reachable: _containers.RepeatedScalarFieldContainer[int]
    last_index: int
    committed_index: int
    committed_number: int
    def __init__(self, replica_id: _Optional[int] = ..., role: _Optional[_Union[ReplicaRole, str]] = ..., epoch: _Optional[int] = ..., leader_id: _Optional[int] = ..., leader_epoch: _Optional[int] = ..., reachable: _Optional[_Iterable[int]] = ..., last_index: _Optional[int] = ..., committed_index: _Optional[int] = ..., committed_number: _Optional[int] = ...) -> None: ...

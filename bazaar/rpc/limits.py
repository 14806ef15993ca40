"""What a request between the processes may carry, checked on the handler thread before it
reaches the reactor (docs/api.md, "Bounds").

A request outside these bounds is answered INVALID_ARGUMENT with a message naming the field;
nothing of it is done or written. The bounds sit at or a little above what a correct peer
sends, so no correct request meets them. What a request must also satisfy against a replica's
state (a promise's step, a batch fitting the log) is the core's to decide (bazaar.core.replica).

The sizes of the largest correct messages are computed here from the same bounds, and gRPC
refuses anything larger before it is parsed (rpc/services.py).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sized

import grpc

from bazaar.config import MAX_STOCK_NAME
from bazaar.core.bounds import MAX_EPOCH, MAX_INDEX, MAX_KEY_LENGTH, valid_key
from bazaar.core.chain import GENESIS, checkpoint_numbers
from bazaar.core.orders import MAX_TRADE_QUANTITY
from bazaar.v1 import catalog_pb2, order_pb2, trade_pb2

# Entries per Propagate, trades per TradeBatch, orders per RequestBatch. The leader's feeds
# send at most this many (order/feeds.py), a front end's batcher 512 (reactor/batcher.py).
MAX_BATCH = 1000
# Entries per message of a Synchronize stream, as the streaming replica sends them.
SYNC_BATCH = 2000
# A caller's checkpoints: last, last-1, last-2, last-4, ... -1, for a log as long as any may be.
MAX_CHECKPOINTS = len(checkpoint_numbers(MAX_INDEX))
CHAIN_BYTES = len(GENESIS)
# "host:port": a DNS name is at most 253 characters.
MAX_ADDRESS = 253 + len(":65535")

# Bytes of a snapshot file per FetchSnapshot message (order/snapshot.py).
SNAPSHOT_CHUNK = 1 << 20
# A snapshot no larger than this is received (a terabyte: far beyond any log of a cluster
# of this kind, and well below what a disk would hold).
MAX_SNAPSHOT_BYTES = 1 << 40
# Synchronize streams one replica serves at once. Each holds a handler thread for as long as
# it runs; a correct cluster has at most one per other replica (a rejoin, or a candidate's
# read), and the other handler threads stay free for trades, Propagate, Describe and health.
MAX_STREAMS = 4
# A stream's reader that takes no message for this long has stopped reading: gRPC's send
# would keep the handler thread until it does. A rejoining replica commits each batch in well
# under a second.
STREAM_STALL = 10.0
# No stream runs longer, whatever deadline its caller set (or none): as long as either reader
# waits for one (order/rejoin.py, order/takeover.py).
STREAM_DEADLINE = 120.0
# Handler calls one server runs or queues at once; beyond it gRPC answers RESOURCE_EXHAUSTED
# at once, with no thread. Bounds the queue, each call in it holding a request of up to
# MAX_MESSAGE (at worst about 150 MB in all), far above a correct cluster's peak: a front end
# has at most two order batches out (one in flight, one given up on) and one lookup per
# client request it serves.
MAX_CONCURRENT_RPCS = 128
# Connections one server keeps at once: a cluster needs a few per peer; the rest bounds what
# connections that never authenticate can hold (descriptors), below the process's limit.
MAX_CONNECTIONS = 256
# Health watches one caller may hold open on one server: a process watches once per channel.
MAX_WATCHES_PER_CALLER = 8


class Invalid(ValueError):
    """A request no correct peer sends: INVALID_ARGUMENT, and nothing done."""


class Replicas:
    """The configured replicas, as a replica's checks need them: their ids, and the others'
    addresses (a caller that asks to be fed must be one of them)."""

    def __init__(self, ids: Iterable[int], others: Iterable[str]) -> None:
        self.ids = frozenset(ids)
        self.others = frozenset(others)


def enforce(context: grpc.ServicerContext, check: Callable[..., None], *args: Any) -> None:
    """Run `check` on a request; one out of bounds ends the call INVALID_ARGUMENT."""
    try:
        check(*args)
    except Invalid as e:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))


# -- the checks, one per request type ---------------------------------------------------------------


def check_place_orders(request: order_pb2.RequestBatchRequest) -> None:
    """A quantity or type a trade cannot have is the leader's to refuse, per order and with
    the API's answer (INVALID_QUANTITY, INVALID_TYPE); only sizes are checked here."""
    _count(request.orders, MAX_BATCH, "orders")
    for i, order in enumerate(request.orders):
        _name(order.name, f"orders[{i}].name", empty=True)
        _key(order.idempotency_key, f"orders[{i}].idempotency_key")


def check_propagate(request: order_pb2.PropagateRequest, replicas: Replicas) -> None:
    _count(request.entries, MAX_BATCH, "entries")
    _range(request.prev_index, -1, MAX_INDEX, "prev_index")
    _chain(request.prev_chain, "prev_chain")
    _range(request.leader_last, -1, MAX_INDEX, "leader_last")
    _range(request.leader_commit, -1, request.leader_last, "leader_commit (at most leader_last)")
    _range(request.epoch, 1, MAX_EPOCH, "epoch")
    _replica_id(request.leader_id, replicas, "leader_id")
    for i, entry in enumerate(request.entries):
        check_entry(entry, f"entries[{i}]")


def check_synchronize(request: order_pb2.SynchronizeRequest, replicas: Replicas) -> None:
    """An epoch beyond what this replica has seen is not malformed: a candidate may be that
    far ahead of a follower that lagged. The core refuses it as a promise (a normal answer)."""
    _count(request.checkpoints, MAX_CHECKPOINTS, "checkpoints")
    for i, checkpoint in enumerate(request.checkpoints):
        _range(checkpoint.index, -1, MAX_INDEX, f"checkpoints[{i}].index")
        _chain(checkpoint.chain, f"checkpoints[{i}].chain")
    if request.caller and request.caller not in replicas.others:
        raise Invalid(f"caller {request.caller[:MAX_ADDRESS]!r} is not another configured replica's address")
    _range(request.epoch, 0, MAX_EPOCH, "epoch")
    _replica_id(request.candidate_id, replicas, "candidate_id")


def check_fetch_snapshot(request: order_pb2.FetchSnapshotRequest, replicas: Replicas) -> None:
    if request.caller not in replicas.others:
        raise Invalid(f"caller {request.caller[:MAX_ADDRESS]!r} is not another configured replica's address")


def check_assign(request: order_pb2.AssignFollowersRequest, replicas: Replicas) -> None:
    """Which followers is the replica's to check (every other configured replica); this
    bounds what it has to read to find out."""
    _count(request.followers, len(replicas.ids), "followers")
    for i, follower in enumerate(request.followers):
        _length(follower, MAX_ADDRESS, f"followers[{i}]")


def check_trades(trades: Any) -> None:
    """Committed trades for the catalog: consecutive numbers, each trade one the leader could
    have executed. A stock the catalog does not hold is the learner's to answer
    (INCONSISTENT: the catalog and the log were made from different tables)."""
    _count(trades, MAX_BATCH, "trades")
    for i, trade in enumerate(trades):
        where = f"trades[{i}]"
        _range(trade.number, 0, MAX_INDEX, f"{where}.number")
        if i and trade.number != trades[0].number + i:
            raise Invalid(f"{where}.number: {trade.number} does not follow {trades[i - 1].number}")
        _name(trade.name, f"{where}.name")
        _trade_type(trade.type, f"{where}.type")
        _range(trade.quantity, 1, MAX_TRADE_QUANTITY, f"{where}.quantity")


def check_lookup_stock(request: catalog_pb2.LookupStockRequest) -> None:
    _name(request.name, "name", empty=True)
    if request.HasField("min_applied"):
        _range(request.min_applied, -1, MAX_INDEX, "min_applied")


def check_entry(entry: trade_pb2.LogEntry, where: str) -> None:
    """Sizes, ranges and enums; whether the entry is one a leader could have logged where it
    stands is the core's (ReplicaCore.accept)."""
    _range(entry.index, 0, MAX_INDEX, f"{where}.index")
    _range(entry.epoch, 0, MAX_EPOCH, f"{where}.epoch")
    _enum(entry.kind, trade_pb2.EntryKind, f"{where}.kind")
    _range(entry.number, -1, MAX_INDEX, f"{where}.number")
    _name(entry.name, f"{where}.name", empty=True)
    _enum(entry.type, trade_pb2.TradeType, f"{where}.type")
    _range(entry.quantity, 0, MAX_TRADE_QUANTITY, f"{where}.quantity")
    _key(entry.key, f"{where}.key")


# -- the largest correct messages --------------------------------------------------------------------


def _repeated_size(message_type: Any, field: str, element: Any, count: int, **fields: Any) -> int:
    """The encoded size of a message with `fields` and `count` copies of `element` in its
    repeated field `field`: each copy adds the same bytes (its tag, length and encoding)."""
    return message_type(**fields).ByteSize() + count * message_type(**{field: [element]}).ByteSize()


# Every field at its widest: -1 takes ten bytes as a varint, a character up to four in UTF-8.
_WIDEST_NAME = "\U0001f4c8" * MAX_STOCK_NAME
_WIDEST_KEY = "~" * MAX_KEY_LENGTH
WIDEST_ENTRY = trade_pb2.LogEntry(
    index=MAX_INDEX, epoch=MAX_EPOCH, kind=trade_pb2.ENTRY_KIND_REFUSED, number=-1, name=_WIDEST_NAME,
    type=trade_pb2.TRADE_TYPE_SELL, quantity=MAX_TRADE_QUANTITY, key=_WIDEST_KEY,
)
LARGEST = {
    "SynchronizeResponse": _repeated_size(
        order_pb2.SynchronizeResponse, "entries", WIDEST_ENTRY, SYNC_BATCH,
        prev_index=-1, prev_chain=bytes(CHAIN_BYTES), epoch=MAX_EPOCH, refused=True, leader_alive=True,
        leader_commit=-1,
    ),
    "FetchSnapshotResponse": order_pb2.FetchSnapshotResponse(
        last_index=MAX_INDEX, last_chain=bytes(CHAIN_BYTES), epoch=MAX_EPOCH, size=MAX_SNAPSHOT_BYTES,
        data=bytes(SNAPSHOT_CHUNK), digest=bytes(32),
    ).ByteSize(),
    "PropagateRequest": _repeated_size(
        order_pb2.PropagateRequest, "entries", WIDEST_ENTRY, MAX_BATCH,
        prev_index=-1, prev_chain=bytes(CHAIN_BYTES), leader_last=MAX_INDEX, epoch=MAX_EPOCH,
        leader_commit=-1, leader_id=-1,
    ),
    "RequestBatchRequest": _repeated_size(
        order_pb2.RequestBatchRequest, "orders",
        order_pb2.PlaceOrderRequest(name=_WIDEST_NAME, quantity=-1, type=-1, idempotency_key=_WIDEST_KEY),
        MAX_BATCH,
    ),
    "TradeBatchRequest": _repeated_size(
        catalog_pb2.TradeBatchRequest, "trades",
        catalog_pb2.TradeStockRequest(number=MAX_INDEX, name=_WIDEST_NAME, quantity=MAX_TRADE_QUANTITY, type=-1),
        MAX_BATCH,
    ),
    "SynchronizeRequest": _repeated_size(
        order_pb2.SynchronizeRequest, "checkpoints", order_pb2.Checkpoint(index=-1, chain=bytes(CHAIN_BYTES)),
        MAX_CHECKPOINTS, caller="x" * MAX_ADDRESS, epoch=MAX_EPOCH, candidate_id=-1,
    ),
}
# What gRPC lets through in either direction; every other message (answers, lookups,
# AssignFollowers of a few addresses, health) is a few hundred bytes.
MAX_MESSAGE = max(LARGEST.values())


# -- the rules, field by field ----------------------------------------------------------------------


def _count(items: Sized, most: int, field: str) -> None:
    if len(items) > most:
        raise Invalid(f"{field}: {len(items)} items, at most {most}")


def _range(value: int, low: int, high: int, field: str) -> None:
    if not low <= value <= high:
        raise Invalid(f"{field}: {value} is not in [{low}, {high}]")


def _length(text: str, most: int, field: str) -> None:
    if len(text) > most:
        raise Invalid(f"{field}: {len(text)} characters, at most {most}")


def _name(name: str, field: str, empty: bool = False) -> None:
    """A stock name: 1 to MAX_STOCK_NAME characters (empty where the request may name none)."""
    _length(name, MAX_STOCK_NAME, field)
    if not name and not empty:
        raise Invalid(f"{field}: empty")


def _key(key: str, field: str) -> None:
    """An idempotency key as the front end takes one (core/bounds.py), or none."""
    if key and not valid_key(key):
        raise Invalid(f"{field}: not 1 to {MAX_KEY_LENGTH} printable ASCII characters without spaces at either end")


def _chain(chain: bytes, field: str) -> None:
    if len(chain) != CHAIN_BYTES:
        raise Invalid(f"{field}: {len(chain)} bytes, a chain value has {CHAIN_BYTES}")


_ENUM_VALUES: dict[str, frozenset[int]] = {}


def _enum(value: int, enum: Any, field: str) -> None:
    # The values as a set, made once: `values()` builds a list on every call, and this runs for
    # every entry of every batch.
    values = _ENUM_VALUES.get(enum.DESCRIPTOR.full_name)
    if values is None:
        values = _ENUM_VALUES[enum.DESCRIPTOR.full_name] = frozenset(enum.values())
    if value not in values:
        raise Invalid(f"{field}: {value} is not a {enum.DESCRIPTOR.name}")


def _trade_type(value: int, field: str) -> None:
    if value not in (trade_pb2.TRADE_TYPE_BUY, trade_pb2.TRADE_TYPE_SELL):
        raise Invalid(f"{field}: {value} is neither buy nor sell")


def _replica_id(value: int, replicas: Replicas, field: str) -> None:
    """A configured replica's id, or 0: not named (the replica then trusts nothing to it)."""
    if value and value not in replicas.ids:
        raise Invalid(f"{field}: {value} is not a configured replica's id")

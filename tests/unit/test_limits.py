"""The bounds of internal RPCs (rpc/limits.py): the largest correct messages fit the gRPC size
limit with no room to spare beyond them, and the bounds agree with what the processes send."""

from __future__ import annotations

import inspect

import pytest

from bazaar.config import MAX_STOCK_NAME
from bazaar.core.bounds import MAX_EPOCH, MAX_INDEX, MAX_KEY_LENGTH, valid_key
from bazaar.core.chain import checkpoint_numbers
from bazaar.frontend import app
from bazaar.order import rejoin, takeover
from bazaar.reactor.batcher import Batcher
from bazaar.rpc import limits
from bazaar.rpc.services import CHANNEL_OPTIONS, SERVER_OPTIONS
from bazaar.v1 import order_pb2


def test_the_size_limit_is_the_largest_correct_message_computed_not_guessed():
    widest = order_pb2.SynchronizeResponse(
        prev_index=-1, prev_chain=bytes(16), entries=[limits.WIDEST_ENTRY] * limits.SYNC_BATCH,
        epoch=MAX_EPOCH, refused=True, leader_alive=True, leader_commit=-1,
    )
    assert widest.ByteSize() == limits.LARGEST["SynchronizeResponse"] == limits.MAX_MESSAGE
    assert 1_000_000 < limits.MAX_MESSAGE < 1_300_000, "about 1.1 MB, not gRPC's default 4 MB"
    limits.check_entry(limits.WIDEST_ENTRY, "the widest entry")  # a correct entry, within every bound
    for option in ("grpc.max_receive_message_length", "grpc.max_send_message_length"):
        assert (option, limits.MAX_MESSAGE) in SERVER_OPTIONS and (option, limits.MAX_MESSAGE) in CHANNEL_OPTIONS


def test_what_the_processes_send_is_within_the_bounds():
    assert inspect.signature(Batcher).parameters["max_batch"].default <= limits.MAX_BATCH, "a front end's batch"
    assert max(rejoin.SYNC_DEADLINE, takeover.CATCH_UP_DEADLINE) <= limits.STREAM_DEADLINE


def test_one_definition_of_names_and_keys_with_the_front_end():
    assert app.MAX_NAME_LENGTH is MAX_STOCK_NAME and app.valid_key is valid_key, "the front end's are these"
    assert valid_key("fe-" + "0" * 32) and valid_key("~" * MAX_KEY_LENGTH) and valid_key("a b")
    for key in ["", "k" * (MAX_KEY_LENGTH + 1), " k", "k ", "é", "a\tb", "\x7f"]:
        assert not valid_key(key), key


def test_epochs_and_indexes_leave_room_for_their_successor():
    assert MAX_EPOCH + 1 < 2**63 - 1 and MAX_INDEX + limits.SYNC_BATCH < 2**63 - 1


@pytest.mark.parametrize("check, request_", [
    (limits.check_assign, order_pb2.AssignFollowersRequest(followers=["127.0.0.1:56895", "127.0.0.1:56896"])),
    (limits.check_synchronize, order_pb2.SynchronizeRequest(
        checkpoints=[order_pb2.Checkpoint(index=i, chain=bytes(16)) for i in checkpoint_numbers(MAX_INDEX)],
        caller="127.0.0.1:56895", epoch=MAX_EPOCH, candidate_id=3)),
    (limits.check_fetch_snapshot, order_pb2.FetchSnapshotRequest(caller="127.0.0.1:56896")),
])
def test_correct_requests_at_their_widest_pass(check, request_):
    check(request_, limits.Replicas([1, 2, 3], ["127.0.0.1:56895", "127.0.0.1:56896"]))


@pytest.mark.parametrize("caller", ["", "127.0.0.1:1", "127.0.0.1:56894"])
def test_a_snapshot_goes_only_to_another_configured_replica(caller):
    with pytest.raises(limits.Invalid):
        limits.check_fetch_snapshot(order_pb2.FetchSnapshotRequest(caller=caller),
                                    limits.Replicas([1, 2, 3], ["127.0.0.1:56895", "127.0.0.1:56896"]))

"""A replica still rejoining takes the leader's log from its rejoin attempt only: entries its
link sends meanwhile are answered as a gap and not written (order/rejoin.py decides between a
snapshot and a stream by how far behind it is, and must not be raced)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
from twisted.internet import defer

from bazaar.config import Config
from bazaar.core.chain import GENESIS
from bazaar.core.replica import MalformedBatch
from bazaar.order.rejoin import RejoinRefused, StreamWriter, find_leader
from bazaar.v1 import order_pb2
from tests.unit.test_leader_thrift import Peer
from tests.unit.test_lease import replica_at
from tests.unit.test_order_bounds import FlushingHop
from tests.unit.test_order_log import fired, leader_batch

BATCH = leader_batch(3, None, ("ford", "buy", 1), ("tesla", "buy", 2))


def receive(replica, committer, epoch: int = 3, **kwargs):
    written = replica.receive(-1, GENESIS, [e.record() for e in BATCH], 2, epoch, 1, leader_id=3, **kwargs)
    committer.flush()
    return fired(written)


def test_entries_from_the_link_wait_until_the_rejoin_attempt_is_over(tmp_path: Path):
    replica, committer, _ = replica_at(tmp_path)
    replica.ready = False
    assert receive(replica, committer) == (order_pb2.PROPAGATE_STATUS_GAP, -1, 3, False)
    assert replica.store.last_index == -1, "nothing written"
    assert replica.follower_lease.leader == 3, "its leader is heard all the same"
    replica.ready = True
    assert receive(replica, committer) == (order_pb2.PROPAGATE_STATUS_OK, 2, 3, False)
    assert replica.store.last_index == 2


def test_the_rejoin_stream_itself_is_taken_while_rejoining(tmp_path: Path):
    replica, committer, _ = replica_at(tmp_path)
    replica.ready = False
    assert receive(replica, committer, streamed=True) == (order_pb2.PROPAGATE_STATUS_OK, 2, 3, False)
    assert replica.store.last_index == 2


def test_a_stale_leader_is_still_told_so_while_rejoining(tmp_path: Path):
    replica, committer, _ = replica_at(tmp_path)
    assert receive(replica, committer, epoch=5)[0] == order_pb2.PROPAGATE_STATUS_OK  # learns epoch 5 ...
    replica.ready = False
    assert receive(replica, committer, epoch=3)[0] == order_pb2.PROPAGATE_STATUS_STALE_EPOCH  # ... so 3 is stale


def test_a_malformed_batch_is_still_refused_while_rejoining(tmp_path: Path):
    replica, committer, _ = replica_at(tmp_path)
    replica.ready = False
    out_of_sequence = [e.record() for e in BATCH[1:]]  # entry 1 right after -1
    with pytest.raises(MalformedBatch):
        replica.receive(-1, GENESIS, out_of_sequence, 2, 3, 1, leader_id=3)
    assert replica.store.last_index == -1


def test_the_stream_writer_writes_while_rejoining_and_refuses_what_does_not_fit(tmp_path: Path):
    replica, committer, _ = replica_at(tmp_path)
    replica.ready = False
    write = StreamWriter(replica, FlushingHop(committer))  # type: ignore[arg-type]
    write(-1, GENESIS, [e.record() for e in BATCH], 3, 1)
    assert (write.count, replica.store.last_index) == (3, 2)
    with pytest.raises(RejoinRefused):
        write(7, GENESIS, [], 3, 1)  # past our last entry: a gap
    assert write.count == 3


# ---- finding the leader: how far behind we are, even when the leader is slow to answer --------


def find(tmp_path: Path, answers: dict[int, order_pb2.DescribeResponse | None]):
    """The leader find_leader finds when each peer answers its Describe so (None: the call fails)."""
    replica, _, _ = replica_at(tmp_path)
    peers = {str(replica.config.replicas[i]): Peer() for i in answers}
    replica._channels = SimpleNamespace(get=lambda address: peers[str(address)])
    replica.reactor.callFromThread = lambda f, *args: f(*args)
    found = defer.ensureDeferred(find_leader(replica))
    for i, answer in answers.items():
        (call,) = peers[str(replica.config.replicas[i])].calls["Describe"]
        call.answer(answer) if answer is not None else call.fail(grpc.RpcError())
    return fired(found)


def test_the_leader_found_by_its_own_answer_says_its_commit_point(tmp_path: Path):
    leader = order_pb2.DescribeResponse(replica_id=3, role=order_pb2.REPLICA_ROLE_LEADER, leader_id=3,
                                        leader_epoch=2, committed_index=90)
    follower = order_pb2.DescribeResponse(replica_id=2, role=order_pb2.REPLICA_ROLE_FOLLOWER, leader_id=3,
                                          leader_epoch=2, committed_index=80)
    found = find(tmp_path, {2: follower, 3: leader})
    assert found.address == str(Config(data_dir=tmp_path).replicas[3]) and found.committed == 90


def test_a_leader_that_does_not_answer_in_time_is_found_with_its_followers_commit_point(tmp_path: Path):
    # It must still be told whether to fetch a snapshot: its followers learn the commit point.
    follower = order_pb2.DescribeResponse(replica_id=2, role=order_pb2.REPLICA_ROLE_FOLLOWER, leader_id=3,
                                          leader_epoch=2, committed_index=80)
    found = find(tmp_path, {2: follower, 3: None})
    assert found.address == str(Config(data_dir=tmp_path).replicas[3]) and found.committed == 80

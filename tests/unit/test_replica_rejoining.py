"""A replica still rejoining takes the leader's log from its rejoin attempt only: entries its
link sends meanwhile are answered as a gap and not written (order/rejoin.py decides between a
snapshot and a stream by how far behind it is, and must not be raced)."""

from __future__ import annotations

from pathlib import Path

from bazaar.core.chain import GENESIS
from bazaar.v1 import order_pb2
from tests.unit.test_lease import replica_at
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

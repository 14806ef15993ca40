"""A restarted replica asks the front end for the leader and streams every order it missed.

The front end may not be up yet (a cluster starting from scratch): then there is nothing to
rejoin, and the front end's leader selection will hand this replica its role.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import treq
from twisted.internet import threads
from twisted.logger import Logger

from bazaar.core.chain import Record
from bazaar.rpc.bridge import ReactorHop, ReactorUnavailable
from bazaar.order.catchup import stream_log, synchronize_request
from bazaar.order.replica import Replica
from bazaar.v1 import order_pb2

log = Logger()

# Generous: a replica that missed 100k orders must get them all in one stream.
SYNC_DEADLINE = 120.0


class RejoinRefused(Exception):
    """The leader's stream does not fit this replica's log."""


async def find_leader(config: Any) -> str | None:
    url = f"http://{config.frontend.address}/leader"
    try:
        response = await treq.get(url, timeout=config.timeouts.http, persistent=False)
        body = json.loads(await response.content())
    except Exception as e:  # unreachable, timed out, or not our front end
        log.info("front end at {url} not answering ({error}); not rejoining", url=url, error=e)
        return None
    if response.code != 200:
        log.info("front end knows no leader yet (HTTP {code}); not rejoining", code=response.code)
        return None
    return body.get("data", {}).get("leader")


async def rejoin(replica: Replica, hop: ReactorHop) -> bool:
    """Catch up from the current leader and become its follower; False if there is none."""
    leader = await find_leader(replica.config)
    if leader is None or leader == replica.address:
        return False
    request = synchronize_request(replica.log, caller=replica.address)
    count = 0

    def write(prev: int, prev_chain: bytes, records: list[Record], epoch: int) -> None:
        nonlocal count
        # Each batch is committed before the next is read: a crash mid-stream keeps a prefix.
        status, *_ = hop.call(replica.receive, prev, prev_chain, records, None, epoch, timeout=SYNC_DEADLINE)
        if status != order_pb2.PROPAGATE_STATUS_OK:
            raise RejoinRefused(f"the leader's stream does not fit this log (status {status})")
        count += len(records)

    log.info("rejoining: streaming entries after {last} from leader {leader}",
             last=replica.core.last_index, leader=leader)
    channel = replica.channel(leader)
    try:
        await threads.deferToThread(stream_log, channel, request, SYNC_DEADLINE, write)
    except grpc.RpcError as e:
        log.warn("rejoin stream from {leader} failed: {code} {details}",
                 leader=leader, code=e.code().name, details=e.details())
        return False
    except (RejoinRefused, ValueError, ReactorUnavailable) as e:
        log.error("rejoin from {leader} failed: {error}", leader=leader, error=str(e))
        return False
    log.info("rejoined leader {leader} after receiving {count} entries", leader=leader, count=count)
    return True

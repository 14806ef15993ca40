"""The leader's thrift end to end: a real Replica leading two followers over fake gRPC calls
that the test answers. The first follower in address order is fed each round; the second
gets several rounds' entries in one call at most every FOLLOWER_SPACING; and when the first
stops answering, the second is fed and trades commit without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from twisted.internet.task import Clock

from bazaar.config import Config
from bazaar.core.stock import table_id
from bazaar.order.feeds import FOLLOWER_SPACING
from bazaar.order.replica import Replica
from bazaar.order.servicer import OrderServicer
from bazaar.order.store import OrderStore
from bazaar.v1 import order_pb2
from tests.unit.test_order_log import ManualCommitter, fired
from tests.unit.test_order_servicer import orders

FIRST, SECOND = "127.0.0.1:1", "127.0.0.1:2"  # in address order


class Reactor(Clock):
    """A Clock that also takes calls from gRPC's threads (here: the test's own)."""

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        f(*args)


class Future:
    """A pending unary call: the test finishes it with `answer`."""

    def __init__(self, request: Any) -> None:
        self.request = request
        self._callbacks: list[Callable[[Any], None]] = []
        self._result: Any = None
        self._error: Exception | None = None
        self.done = False

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._callbacks.append(callback)

    def answer(self, response: Any) -> None:
        self._result, self.done = response, True
        for callback in self._callbacks:
            callback(self)

    def fail(self, error: Exception) -> None:
        self._error = error
        self.answer(None)

    def cancel(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def exception(self) -> Exception | None:
        return self._error

    def result(self) -> Any:
        return self._result


class Peer:
    """One peer's channel: every call is kept, unanswered, under its method's name."""

    def __init__(self) -> None:
        self.calls: dict[str, list[Future]] = {}

    def unary_unary(self, path: str, *args: Any, **kwargs: Any) -> Any:
        peer, method = self, path.rsplit("/", 1)[-1]

        class Method:
            def future(self, request: Any, timeout: float | None = None, **kwargs: Any) -> Future:
                call = Future(request)
                peer.calls.setdefault(method, []).append(call)
                return call

        return Method()

    unary_stream = unary_unary
    stream_unary = unary_unary
    stream_stream = unary_unary

    def propagates(self) -> list[Future]:
        return self.calls.get("Propagate", [])


class Follower(Peer):
    """A follower that holds what it was sent: it answers each Propagate as a real one would
    whose log matches the leader's (GAP when the batch starts past its last entry)."""

    def __init__(self) -> None:
        super().__init__()
        self.last = -1

    def answer_all(self) -> int:
        waiting = [call for call in self.propagates() if not call.done]
        for call in waiting:
            request = call.request
            if request.prev_index > self.last:
                status = order_pb2.PROPAGATE_STATUS_GAP
            else:
                status = order_pb2.PROPAGATE_STATUS_OK
                self.last = max(self.last, request.prev_index + len(request.entries))
            call.answer(order_pb2.PropagateResponse(status=status, last_index=self.last, epoch=request.epoch))
        return len(waiting)


class Channels:
    def __init__(self) -> None:
        self.peers: dict[str, Peer] = {FIRST: Follower(), SECOND: Follower()}

    def get(self, address: Any) -> Peer:
        return self.peers.setdefault(str(address), Peer())  # the catalog: never answers


def leading(tmp_path: Path) -> tuple[Replica, ManualCommitter, Follower, Follower]:
    """A replica leading FIRST and SECOND, its leader entry committed, both followers matched."""
    config = Config(data_dir=tmp_path)
    store = OrderStore(tmp_path, table_id(config.stocks))
    committer = ManualCommitter(store)
    channels = Channels()
    replica = Replica(Reactor(), config, 1, store, committer, channels, lambda name: None)  # type: ignore[arg-type]
    assert replica.core.promise(1)
    leadership = replica.begin_leading([FIRST, SECOND])
    committer.flush()
    first, second = channels.peers[FIRST], channels.peers[SECOND]
    for _ in range(5):  # GAP, then the leader entry
        replica.reactor.advance(0)
        first.answer_all()
        second.answer_all()
    assert leadership.serving and first.last == second.last == 0
    return replica, committer, first, second  # type: ignore[return-value]


def round_of_trades(replica: Replica, committer: ManualCommitter, servicer: OrderServicer, *names: str) -> Any:
    placed = servicer._place_all(orders(*names), budget=1.0)
    replica.reactor.advance(0)  # the end of the turn: the followers' kick
    committer.flush()
    return placed


def test_the_second_follower_takes_several_rounds_in_one_call_and_the_first_commits_each(tmp_path: Path):
    replica, committer, first, second = leading(tmp_path)
    servicer = OrderServicer(replica, hop=None, timeout=2.0)  # type: ignore[arg-type]
    sent_before = len(first.propagates()), len(second.propagates())
    rounds = 8
    for i in range(rounds):
        placed = round_of_trades(replica, committer, servicer, "tesla")
        first.answer_all()
        second.answer_all()
        assert fired(placed) == [(order_pb2.REQUEST_STATUS_OK, i)], "committed on the leader's and the first's disks"
        replica.reactor.advance(FOLLOWER_SPACING / 20)
    to_first = len(first.propagates()) - sent_before[0]
    to_second = len(second.propagates()) - sent_before[1]
    assert to_first >= rounds and to_second <= 1, (to_first, to_second)
    assert second.last < replica.core.last_index, "the second lags by what its next call will carry"
    replica.reactor.advance(FOLLOWER_SPACING)
    second.answer_all()
    assert second.last == first.last == replica.core.last_index, "its next call carried every round"
    replica.step_down("the test is over")


def test_when_the_first_stops_answering_the_second_is_fed_and_trades_commit(tmp_path: Path):
    replica, committer, first, second = leading(tmp_path)
    servicer = OrderServicer(replica, hop=None, timeout=2.0)  # type: ignore[arg-type]
    first.answer_all()
    second.answer_all()
    replica.reactor.advance(FOLLOWER_SPACING)  # the second was last sent to long ago
    placed = round_of_trades(replica, committer, servicer, "tesla")
    assert second.answer_all() == 1, "went at once: its spacing had passed"
    assert first.answer_all() == 1
    assert fired(placed) == [(order_pb2.REQUEST_STATUS_OK, 0)]
    # The first freezes: its call stays out from now on.
    placed = round_of_trades(replica, committer, servicer, "ford")
    assert [c for c in first.propagates() if not c.done], "the first's call is out"
    assert second.answer_all() == 0, "the second is spare: it waits for its spacing"
    replica.reactor.advance(FOLLOWER_SPACING)
    assert second.answer_all() == 1
    assert fired(placed) == [(order_pb2.REQUEST_STATUS_OK, 1)], "committed without the first"
    # From now on the first is not counted on: the second is fed at once, each round.
    placed = round_of_trades(replica, committer, servicer, "amc")
    assert second.answer_all() == 1
    assert fired(placed) == [(order_pb2.REQUEST_STATUS_OK, 2)]
    replica.step_down("the test is over")


def test_a_first_follower_whose_call_has_been_out_too_long_is_not_waited_for(tmp_path: Path):
    from bazaar.core.lease import HEARTBEAT_INTERVAL

    replica, committer, first, second = leading(tmp_path)
    servicer = OrderServicer(replica, hop=None, timeout=2.0)  # type: ignore[arg-type]
    replica.reactor.advance(HEARTBEAT_INTERVAL)  # a heartbeat to each; the first freezes on its
    assert second.answer_all() == 1
    replica.reactor.advance(HEARTBEAT_INTERVAL)  # the next goes to the second alone
    assert second.answer_all() == 1 and first.last == second.last
    replica.reactor.advance(FOLLOWER_SPACING / 5)
    # Both hold the same entries and the second was sent to just now; but the first's call has
    # been out for longer than the spacing, so the second's entries go at once.
    placed = round_of_trades(replica, committer, servicer, "tesla")
    assert second.answer_all() == 1
    assert fired(placed) == [(order_pb2.REQUEST_STATUS_OK, 0)]
    replica.step_down("the test is over")

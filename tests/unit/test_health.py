"""The health service: grpc.health.v1's answers; no send while its lock is held (the lock
that the completion-queue thread needs to forget an ended watch), none on the caller's thread
(a handler's, the reactor's), and none that waits for its reader for ever."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bazaar.rpc import health
from bazaar.rpc.health import NOT_SERVING, SERVICE_UNKNOWN, SERVING, HealthServicer
from tests.integration.cluster import wait_for


class Context:
    """What Watch and Check use of a ServicerContext; `end()` runs the call's callbacks, as the
    server's completion-queue thread does when the call ends."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []
        self.code: grpc.StatusCode | None = None
        self.ended = False
        self.cancelled = threading.Event()

    def add_callback(self, callback: Callable[[], None]) -> bool:
        if self.ended:
            return False
        self.callbacks.append(callback)
        return True

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise AssertionError(f"aborted {code}: {details}")

    def cancel(self) -> None:
        self.cancelled.set()

    def end(self) -> None:
        self.ended = True
        for callback in self.callbacks:
            callback()


def watch(servicer: HealthServicer, service: str, send: Callable[[Any], None] | None = None) -> tuple[list, Context]:
    sent: list = []
    context = Context()
    servicer.Watch(health_pb2.HealthCheckRequest(service=service), context,
                   send or (lambda r: sent.append(None if r is None else r.status)))
    return sent, context


def ends_on_another_thread(context: Context) -> bool:
    """Whether `context`'s call can end (its callbacks run) on another thread within 2 s."""
    done = threading.Event()

    def end() -> None:
        context.end()
        done.set()

    threading.Thread(target=end, daemon=True).start()
    return done.wait(2.0)


def test_a_check_answers_the_status_set_and_not_found_for_other_names():
    servicer = HealthServicer()
    servicer.set("svc", NOT_SERVING)
    context = Context()
    assert servicer.Check(health_pb2.HealthCheckRequest(service=""), context).status == SERVING
    assert servicer.Check(health_pb2.HealthCheckRequest(service="svc"), context).status == NOT_SERVING
    assert context.code is None
    assert servicer.Check(health_pb2.HealthCheckRequest(service="other"), context).status == 0
    assert context.code is grpc.StatusCode.NOT_FOUND


def test_a_watch_gets_the_status_then_each_change_and_nothing_once_ended():
    servicer = HealthServicer()
    sent, context = watch(servicer, "svc")
    wait_for(lambda: sent == [SERVICE_UNKNOWN], deadline=2.0)
    servicer.set("svc", NOT_SERVING)
    wait_for(lambda: sent == [SERVICE_UNKNOWN, NOT_SERVING], deadline=2.0)
    servicer.set("svc", NOT_SERVING)  # no change, no answer
    servicer.set("svc", SERVING)
    servicer.set("other", NOT_SERVING)
    wait_for(lambda: sent == [SERVICE_UNKNOWN, NOT_SERVING, SERVING], deadline=2.0)
    context.end()
    assert sent[-1] is None  # the call is ended with its status
    still, _ = watch(servicer, "svc")
    wait_for(lambda: still == [SERVING], deadline=2.0)
    servicer.set("svc", NOT_SERVING)
    wait_for(lambda: still == [SERVING, NOT_SERVING], deadline=2.0)
    assert sent == [SERVICE_UNKNOWN, NOT_SERVING, SERVING, None]


def test_shutting_down_makes_everything_not_serving_for_good():
    servicer = HealthServicer()
    servicer.set("svc", SERVING)
    sent, _ = watch(servicer, "")
    wait_for(lambda: sent == [SERVING], deadline=2.0)
    servicer.enter_graceful_shutdown()
    servicer.set("svc", SERVING)
    servicer.set("", SERVING)
    wait_for(lambda: sent == [SERVING, NOT_SERVING], deadline=2.0)
    assert servicer.Check(health_pb2.HealthCheckRequest(service="svc"), Context()).status == NOT_SERVING


def test_a_watch_can_end_while_another_watch_is_sent_its_first_answer():
    # The send of a watch's first answer waits for the completion-queue thread, which may be
    # ending another watch: that must not need anything the sender holds.
    servicer = HealthServicer()
    _, other = watch(servicer, "svc")
    ended: list[bool] = []
    watch(servicer, "svc", send=lambda response: ended.append(ends_on_another_thread(other)))
    wait_for(lambda: ended == [True], deadline=2.0)


def test_a_watch_can_end_while_a_status_change_is_being_sent():
    servicer = HealthServicer()
    _, other = watch(servicer, "svc")
    ended: list[bool] = []

    def send(response: Any) -> None:
        if response is not None and response.status == NOT_SERVING:
            ended.append(ends_on_another_thread(other))

    watch(servicer, "svc", send=send)
    servicer.set("svc", NOT_SERVING)
    wait_for(lambda: ended == [True], deadline=2.0)


def test_neither_a_watch_nor_a_status_change_waits_for_a_reader():
    # A handler thread (Watch) and the reactor (set) return at once, whatever the reader does;
    # the reader gets the latest status once it reads again.
    servicer = HealthServicer()
    reading = threading.Event()
    sent: list = []

    def send(response: Any) -> None:
        reading.wait(5)
        sent.append(response.status)

    started = time.monotonic()
    _, context = watch(servicer, "svc", send=send)
    for status in (NOT_SERVING, SERVING, NOT_SERVING):
        servicer.set("svc", status)
    assert time.monotonic() - started < 0.5
    reading.set()
    wait_for(lambda: sent[-1:] == [NOT_SERVING], deadline=2.0)
    assert len(sent) <= 2 and not context.cancelled.is_set()  # the first it had, then the latest


def test_a_reader_that_takes_too_long_has_its_watch_cancelled(monkeypatch):
    monkeypatch.setattr(health, "STALL", 0.05)
    servicer = HealthServicer()
    released = threading.Event()
    _, context = watch(servicer, "svc", send=lambda response: released.wait(5))
    assert context.cancelled.wait(2)
    released.set()  # as a cancelled call's send returns
    sent, other = watch(servicer, "")  # the senders are free again
    wait_for(lambda: sent == [SERVING], deadline=2.0)
    servicer.set("", NOT_SERVING)
    wait_for(lambda: sent == [SERVING, NOT_SERVING], deadline=2.0)
    assert not other.cancelled.is_set()


def test_a_watch_that_cannot_be_answered_is_cancelled_and_the_others_still_are():
    servicer = HealthServicer()

    def broken(response: Any) -> None:
        raise RuntimeError("no such call")

    _, context = watch(servicer, "", send=broken)
    assert context.cancelled.wait(2)
    sent, _ = watch(servicer, "")
    wait_for(lambda: sent == [SERVING], deadline=2.0)


def test_a_real_server_keeps_answering_while_watches_end_and_start_together():
    # grpcio-health's servicer stops this server within about a second: its checks then all
    # time out. Bounded: 8 watchers of 60 short watches each, a check every 10 ms meanwhile.
    server = grpc.server(ThreadPoolExecutor(max_workers=16))
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channels = [grpc.insecure_channel(f"127.0.0.1:{port}") for _ in range(9)]
    done = threading.Event()

    def watcher(channel: grpc.Channel) -> None:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(60):
            if done.is_set():
                return
            try:
                for _ in stub.Watch(health_pb2.HealthCheckRequest(service="x"), timeout=0.02):
                    pass
            except grpc.RpcError:
                pass

    threads = [threading.Thread(target=watcher, args=(c,), daemon=True) for c in channels[1:]]
    try:
        for t in threads:
            t.start()
        checker = health_pb2_grpc.HealthStub(channels[0])
        checks = 0
        give_up = time.monotonic() + 30
        while any(t.is_alive() for t in threads) and time.monotonic() < give_up:
            assert checker.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status == SERVING
            checks += 1
            done.wait(0.01)
        assert checks > 10
    except grpc.RpcError as e:
        pytest.fail(f"the server stopped answering after {checks} checks: {e.code()}")
    finally:
        done.set()
        for t in threads:
            t.join(5)
        for c in channels:
            c.close()
        # A stopped (deadlocked) server would hang its own stop: the test fails, not hangs.
        threading.Thread(target=server.stop, args=(None,), daemon=True).start()

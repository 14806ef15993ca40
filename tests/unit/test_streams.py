"""Stream slots and the stream watchdog (rpc/streams.py), on their own."""

from __future__ import annotations

import threading

from bazaar.rpc.streams import StreamSlots, Watchdog


def test_slots_are_bounded_and_each_comes_back_once():
    slots = StreamSlots(2)
    first, second = slots.take(), slots.take()
    assert first is not None and second is not None and slots.take() is None
    first.release()
    first.release()  # the RPC's end and the generator's both give it back: once
    third = slots.take()
    assert third is not None and slots.take() is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_message_its_reader_takes_in_time_cancels_nothing():
    cancelled = threading.Event()
    watchdog = Watchdog(cancelled.set, stall=0.2, limit=60)
    for _ in range(3):
        watchdog.sending()
        watchdog.sent()
    assert not cancelled.wait(0.4)


def test_a_message_that_waits_too_long_cancels_the_stream():
    cancelled = threading.Event()
    watchdog = Watchdog(cancelled.set, stall=0.05, limit=60)
    watchdog.sending()
    assert cancelled.wait(5)


def test_a_stream_is_cancelled_at_its_limit_however_long_the_stall_allowed():
    clock = Clock()
    cancelled = threading.Event()
    watchdog = Watchdog(cancelled.set, stall=60, limit=10, clock=clock)
    watchdog.sending()
    watchdog.sent()
    clock.now = 9.95
    watchdog.sending()  # waits at most what is left of the limit, not the whole stall
    assert cancelled.wait(5)
    cancelled.clear()
    clock.now = 10.5
    watchdog.sending()  # past it: at once
    assert cancelled.wait(5)

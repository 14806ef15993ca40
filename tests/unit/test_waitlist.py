from twisted.internet.defer import CancelledError

from bazaar.reactor.waitlist import WaitList


def test_waiters_fire_in_order_once_the_counter_reaches_them() -> None:
    waits = WaitList(reached=2)
    fired: list[int] = []
    assert waits.wait(2).called
    for value in (5, 3, 4):
        waits.wait(value).addCallback(fired.append)
    waits.advance(4)
    assert fired == [3, 4]
    waits.advance(1)  # never backwards
    waits.advance(5)
    assert fired == [3, 4, 5] and waits.reached == 5


def test_a_waiter_that_gave_up_is_skipped_and_the_rest_still_fire() -> None:
    waits = WaitList(reached=0)
    gave_up = waits.wait(1)
    gave_up.addErrback(lambda f: f.trap(CancelledError))
    gave_up.cancel()
    later: list[int] = []
    waits.wait(1).addCallback(later.append)
    waits.advance(1)
    assert later == [1]


def test_fail_all_fails_only_the_waiting() -> None:
    waits = WaitList(reached=0)
    errors: list = []
    waits.wait(3).addErrback(errors.append)
    gone = waits.wait(4)
    gone.addErrback(lambda f: None)
    gone.cancel()
    waits.fail_all(RuntimeError("stepped down"))
    assert len(errors) == 1 and errors[0].check(RuntimeError)
    assert waits.wait(9).called is False

"""Giving up after a failed write: NOT_SERVING at once, then a stop with a failure status."""

from bazaar.reactor import fatal


class Reactor:
    def __init__(self, running: bool) -> None:
        self.running = running
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


def test_a_failed_write_reports_not_serving_then_stops_with_a_failure_status(monkeypatch):
    registered = []
    monkeypatch.setattr(fatal.atexit, "register", lambda f, *args: registered.append((f, args)))
    reactor, reported = Reactor(running=True), []
    fatal.give_up(reactor, "a catalog write", "database or disk is full", lambda: reported.append(True))
    assert reported == [True] and reactor.stopped
    assert registered == [(fatal.os._exit, (fatal.EXIT_STATUS,))]
    assert fatal.EXIT_STATUS != 0


def test_with_the_reactor_already_stopping_it_only_reports(monkeypatch):
    registered = []
    monkeypatch.setattr(fatal.atexit, "register", lambda f, *args: registered.append((f, args)))
    reactor, reported = Reactor(running=False), []
    fatal.give_up(reactor, "an order log write", "I/O error", lambda: reported.append(True))
    assert reported == [True] and not reactor.stopped and registered == []


def test_it_gives_up_once_however_many_writes_fail(monkeypatch):
    registered = []
    monkeypatch.setattr(fatal.atexit, "register", lambda f, *args: registered.append((f, args)))
    reactor, reported = Reactor(running=True), []
    for _ in range(3):
        fatal.give_up(reactor, "an order log write", "disk full", lambda: reported.append(True))
    assert reported == [True] and len(registered) == 1

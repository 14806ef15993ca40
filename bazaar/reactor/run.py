"""Running one coroutine on the global reactor, from a command that is not a twistd service."""

from __future__ import annotations

from typing import Any, Callable, Coroutine


def run_on_reactor(work: Callable[[Any], Coroutine[Any, Any, Any]]) -> tuple[bool, Any]:
    """Run `work(reactor)` to its end: (True, its result), or (False, None) when a signal
    stopped the reactor first. Its exception, if any, is raised here."""
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    outcome: dict[str, Any] = {}

    def go() -> None:
        d = Deferred.fromCoroutine(work(reactor))
        d.addCallbacks(lambda r: outcome.setdefault("result", r), lambda f: outcome.setdefault("failure", f))
        d.addBoth(lambda _: reactor.stop() if reactor.running else None)

    reactor.callWhenRunning(go)
    reactor.run()
    if "failure" in outcome:
        outcome["failure"].raiseException()
    return "result" in outcome, outcome.get("result")

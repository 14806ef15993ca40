"""TradeAttempts: what a client is told from the attempts of one POST /orders (no I/O).

Each case is a sequence of events, as the front end meets them: an attempt's end (an Attempt),
"no leader" (none could be selected) or "time up" (the request's deadline); and what
TradeAttempts says after each one: a Final to answer with, or None to try again.
"""

from __future__ import annotations

import pytest

from bazaar.core.outcome import Attempt, Final, TradeAttempts

DEFINITE, NOT_LOGGED, UNAVAILABLE, IN_DOUBT = (
    Attempt.DEFINITE, Attempt.NOT_LOGGED, Attempt.UNAVAILABLE, Attempt.IN_DOUBT,
)
NO_LEADER, TIME_UP = "no leader", "time up"
ANSWERED, NOT_EXECUTED, UNKNOWN = Final.ANSWERED, Final.UNAVAILABLE, Final.UNKNOWN


def decisions(events: list) -> list[Final | None]:
    attempts = TradeAttempts()
    said: list[Final | None] = []
    for event in events:
        if event == NO_LEADER:
            said.append(attempts.no_leader())
        elif event == TIME_UP:
            said.append(attempts.time_is_up())
        else:
            said.append(attempts.ended(event))
    return said


@pytest.mark.parametrize(
    "events, expected",
    [
        # A definite answer first: that is the answer.
        ([DEFINITE], [ANSWERED]),
        # A leader that logged nothing, then one that answers.
        ([NOT_LOGGED, DEFINITE], [None, ANSWERED]),
        # In doubt (logged, not known committed), then asked again and answered.
        ([IN_DOUBT, DEFINITE], [None, ANSWERED]),
        ([IN_DOUBT, IN_DOUBT, IN_DOUBT, DEFINITE], [None, None, None, ANSWERED]),
        # No majority and nothing logged anywhere: 503 at once, without waiting for the time.
        ([UNAVAILABLE], [NOT_EXECUTED]),
        ([NOT_LOGGED, NOT_LOGGED, UNAVAILABLE], [None, None, NOT_EXECUTED]),
        # No majority after an attempt that may have logged it: that entry may still commit
        # under another leader, so keep asking; the time up, the outcome is unknown (504).
        ([IN_DOUBT, UNAVAILABLE], [None, None]),
        ([IN_DOUBT, UNAVAILABLE, TIME_UP], [None, None, UNKNOWN]),
        ([IN_DOUBT, UNAVAILABLE, UNAVAILABLE, DEFINITE], [None, None, None, ANSWERED]),
        # Once maybe logged, always maybe logged: a later "not logged" does not undo it.
        ([IN_DOUBT, NOT_LOGGED, UNAVAILABLE, TIME_UP], [None, None, None, UNKNOWN]),
        # No leader before any attempt could have logged it: 503 at once.
        ([NO_LEADER], [NOT_EXECUTED]),
        ([NOT_LOGGED, NO_LEADER], [None, NOT_EXECUTED]),
        # No leader after an ambiguous attempt: try on, 504 when the time is up ...
        ([IN_DOUBT, NO_LEADER], [None, None]),
        ([IN_DOUBT, NO_LEADER, NO_LEADER, TIME_UP], [None, None, None, UNKNOWN]),
        # ... unless a leader is found again and answers.
        ([IN_DOUBT, NO_LEADER, DEFINITE], [None, None, ANSWERED]),
        # The time up with nothing that could have logged it: nothing executed (503).
        ([TIME_UP], [NOT_EXECUTED]),
        ([NOT_LOGGED, NOT_LOGGED, TIME_UP], [None, None, NOT_EXECUTED]),
        ([IN_DOUBT, TIME_UP], [None, UNKNOWN]),
    ],
)
def test_sequences(events, expected):
    assert decisions(events) == expected


@pytest.mark.parametrize("attempt", [NOT_LOGGED, UNAVAILABLE, DEFINITE])
def test_only_an_attempt_in_doubt_marks_the_trade_maybe_logged(attempt):
    attempts = TradeAttempts()
    attempts.ended(attempt)
    assert not attempts.maybe_logged
    attempts.ended(IN_DOUBT)
    assert attempts.maybe_logged


def test_each_request_starts_with_nothing_maybe_logged():
    earlier = TradeAttempts()
    earlier.ended(IN_DOUBT)
    assert TradeAttempts().ended(UNAVAILABLE) is NOT_EXECUTED


def test_with_a_clients_key_no_leader_is_never_a_503():
    """The client may have sent its key before and got a 504: that trade may still commit, and
    with no leader to look the key up the front end cannot say it will not."""
    attempts = TradeAttempts(fresh_key=False)
    assert attempts.no_leader() is None
    assert attempts.time_is_up() is UNKNOWN


def test_with_a_clients_key_a_leader_that_found_nothing_gives_a_503():
    """A serving leader looked the key up, found nothing, and has no majority: definite."""
    assert TradeAttempts(fresh_key=False).ended(UNAVAILABLE) is NOT_EXECUTED

"""When a replica stands on its own (bazaar.core.initiative), as decisions on a fake time."""

from __future__ import annotations

from bazaar.core.initiative import Initiative

IDLE = dict(leading=False, standing=False, following=False, reaches_majority=True)


def test_a_replica_that_never_led_leaves_the_choice_to_the_front_end():
    assert not Initiative().due(100.0, **IDLE)


def test_one_that_led_stands_at_once_when_it_stops_leading_and_reaches_a_majority():
    initiative = Initiative(interval=1.0)
    initiative.led()
    assert not initiative.due(5.0, **{**IDLE, "leading": True})
    assert not initiative.due(5.0, **{**IDLE, "reaches_majority": False}), "cut off: it waits"
    assert initiative.due(5.0, **IDLE)


def test_each_candidacy_gets_an_interval_before_the_next_stand():
    initiative = Initiative(interval=1.0)
    initiative.led()
    initiative.postpone(5.0)  # ours began, or one we promised to
    assert not initiative.due(5.5, **IDLE)
    assert not initiative.due(6.0, **{**IDLE, "standing": True}), "not while ours still runs"
    assert initiative.due(6.0, **IDLE), "it failed: stand again"
    initiative.postpone(6.0)
    initiative.postpone(5.0)
    assert not initiative.due(6.9, **IDLE), "a postponement never shortens an earlier one"


def test_a_live_leader_heard_ends_the_initiative():
    initiative = Initiative()
    initiative.led()
    assert not initiative.due(5.0, **{**IDLE, "following": True})
    assert not initiative.held
    assert not initiative.due(50.0, **IDLE), "that leader leads now, even once it falls silent"
    initiative.led()
    assert initiative.due(50.0, **IDLE)

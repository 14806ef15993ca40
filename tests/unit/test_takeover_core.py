"""Standing for leadership (Candidacy): epochs, counting promises, whose log to adopt."""

from __future__ import annotations

from bazaar.core.book import StockBook
from bazaar.core.chain import Kind, Record, chained
from bazaar.core.replica import ReplicaCore
from bazaar.core.stock import DEFAULT_STOCKS
from bazaar.core.takeover import Candidacy, Lost, Promised, Refused, StandAgain, Waiting, Won


def leader_entries(*epochs: int) -> list:
    """A log whose entry i was appended in epochs[i] (leader entries, for simplicity)."""
    return chained([Record(i, epoch, Kind.LEADER, -1) for i, epoch in enumerate(epochs)])


def candidate(*epochs: int, epoch: int = 0) -> ReplicaCore:
    entries = leader_entries(*epochs)
    return ReplicaCore(StockBook(DEFAULT_STOCKS), entries[-1] if entries else None, epoch)


def promised_beyond(shared: int, *epochs: int) -> Promised:
    """A follower's promise whose log follows ours through `shared`, then holds entries of
    `epochs`."""
    records = [Record(shared + 1 + i, epoch, Kind.LEADER, -1) for i, epoch in enumerate(epochs)]
    return Promised(shared, records=records)


def stand(candidacy: Candidacy, core: ReplicaCore) -> int:
    epoch = candidacy.stand(core)
    assert epoch is not None and core.promise(epoch, own=True)  # the caller promises it to itself
    return epoch


def test_the_epoch_stood_for_is_above_every_one_seen() -> None:
    core = candidate(1, 1, 3, epoch=5)
    candidacy = Candidacy(["b", "c"])
    assert stand(candidacy, core) == 6 == candidacy.epoch


def test_a_majority_of_promises_wins() -> None:
    core = candidate(1, 1)
    candidacy = Candidacy(["b", "c"])
    stand(candidacy, core)
    assert candidacy.outcome(core) == Waiting()
    candidacy.answered("b", Promised(1))
    assert candidacy.outcome(core) == Won(None), "one follower and the candidate are two of three"


def test_with_four_followers_two_promises_are_needed() -> None:
    core = candidate(1)
    candidacy = Candidacy(["b", "c", "d", "e"])
    stand(candidacy, core)
    candidacy.answered("b", Promised(0))
    candidacy.answered("c", None)
    assert candidacy.outcome(core) == Waiting()
    candidacy.answered("d", Promised(0))
    assert candidacy.outcome(core) == Won(None)


def test_no_followers_wins_at_once() -> None:
    core = candidate()
    candidacy = Candidacy([])
    stand(candidacy, core)
    assert candidacy.outcome(core) == Won(None)


def test_it_waits_while_answers_that_could_decide_are_missing() -> None:
    core = candidate(1)
    candidacy = Candidacy(["b", "c"])
    stand(candidacy, core)
    candidacy.answered("b", Refused(9))
    assert candidacy.outcome(core) == Waiting(), "c may still promise"
    candidacy.answered("c", Promised(0))
    assert candidacy.outcome(core) == Won(None)


def test_an_answer_from_a_stranger_or_a_second_one_is_ignored() -> None:
    core = candidate(1)
    candidacy = Candidacy(["b", "c", "d", "e"])
    stand(candidacy, core)
    candidacy.answered("x", Promised(0))
    candidacy.answered("b", Promised(0))
    candidacy.answered("b", Promised(0))
    assert candidacy.outcome(core) == Waiting()


def test_the_most_up_to_date_promised_log_is_adopted_when_ahead_of_ours() -> None:
    core = candidate(1, 1, 1)  # last entry: epoch 1, index 2
    candidacy = Candidacy(["b", "c", "d", "e"])
    stand(candidacy, core)
    longer = promised_beyond(2, 1, 1)  # (1, 4)
    newer = promised_beyond(0, 2)  # (2, 1): shorter, but of a later epoch
    candidacy.answered("b", longer)
    candidacy.answered("c", newer)
    assert candidacy.outcome(core) == Won(newer)


def test_a_longer_log_of_the_same_last_epoch_is_adopted() -> None:
    core = candidate(1, 2)
    candidacy = Candidacy(["b", "c"])
    stand(candidacy, core)
    longer = promised_beyond(1, 2, 2)
    candidacy.answered("b", longer)
    assert candidacy.outcome(core) == Won(longer)


def test_a_log_not_ahead_of_ours_is_not_adopted() -> None:
    core = candidate(1, 2, 2)  # (2, 2)
    for behind in (promised_beyond(1, 1, 1, 1), Promised(1), Promised(2)):  # (1, 4), a prefix, the same
        candidacy = Candidacy(["b", "c"])
        stand(candidacy, core)
        candidacy.answered("b", behind)
        assert candidacy.outcome(core) == Won(None)


def test_refusals_stand_again_above_the_epoch_refused_for() -> None:
    core = candidate(1, epoch=1)
    candidacy = Candidacy(["b", "c"])
    first = stand(candidacy, core)
    candidacy.answered("b", Refused(7))
    candidacy.answered("c", Refused(4))
    assert candidacy.outcome(core) == StandAgain()
    second = stand(candidacy, core)
    assert second == 8 > first
    assert candidacy.outcome(core) == Waiting(), "answers of the last attempt do not count"
    candidacy.answered("c", Promised(0))
    assert candidacy.outcome(core) == Won(None)


def test_out_of_attempts_is_lost() -> None:
    core = candidate(1)
    candidacy = Candidacy(["b", "c"], attempts=2)
    for attempt in range(2):
        stand(candidacy, core)
        candidacy.answered("b", Refused(core.epoch + 1))
        candidacy.answered("c", None)
        outcome = candidacy.outcome(core)
        assert isinstance(outcome, StandAgain if attempt == 0 else Lost)
    assert candidacy.stand(core) is None


def test_too_few_replicas_answering_is_lost() -> None:
    core = candidate(1)
    candidacy = Candidacy(["b", "c"])
    stand(candidacy, core)
    candidacy.answered("b", None)
    candidacy.answered("c", None)
    assert isinstance(candidacy.outcome(core), Lost)


def test_a_candidate_that_promised_another_epoch_meanwhile_has_lost() -> None:
    core = candidate(1)
    candidacy = Candidacy(["b", "c"])
    epoch = stand(candidacy, core)
    assert core.promise(epoch + 1)  # another candidate asked us meanwhile
    candidacy.answered("b", Promised(0))
    candidacy.answered("c", Promised(0))
    assert isinstance(candidacy.outcome(core), Lost)

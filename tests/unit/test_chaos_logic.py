"""The chaos harness's judgement on hand-made records: each invariant check passes on good data
and fails, with a counter-example, on bad; the statistics; the fault choice."""

import random

from bazaar.chaos import invariants as inv
from bazaar.chaos.clients import NO_CONNECTION, OK, TIMEOUT, Attempt, Trade, outcome_of
from bazaar.chaos.faults import FREEZE, KILL, choose_fault
from bazaar.chaos.report import failover_times, percentile, render
from bazaar.core.orders import Order

T = {
    "a": Trade("tesla", "buy", 5),
    "b": Trade("ford", "sell", 3),
    "c": Trade("tesla", "sell", 2),
}
ACKED = {"a": 0, "b": 1, "c": 2}
LOG = [Order(0, "tesla", "buy", 5), Order(1, "ford", "sell", 3), Order(2, "tesla", "sell", 2)]
SERVED = {o.number: o.as_json() for o in LOG}
KEYS = [(0, "client:a"), (1, "client:b"), (2, "client:c")]
INITIAL = {"tesla": (1000, 100), "ford": (1000, 100)}


def logs(*replicas):
    return {i + 1: list(log) for i, log in enumerate(replicas)}


# ---- I1 ----------------------------------------------------------------------------------------


def test_i1_passes_when_everything_reads_back():
    check, by_key = inv.check_acknowledged(ACKED, T, SERVED, logs(LOG, LOG, LOG))
    assert check.passed and by_key == []


def test_i1_fails_for_a_changed_answer():
    served = {**SERVED, 1: {"number": 1, "name": "ford", "type": "buy", "quantity": 3}}
    check, by_key = inv.check_acknowledged(ACKED, T, served, logs(LOG, LOG, LOG))
    assert not check.passed
    assert by_key[0][0] == "b" and "GET /orders/1" in check.problems[0]


def test_i1_fails_for_an_order_missing_from_a_replica():
    check, _ = inv.check_acknowledged(ACKED, T, SERVED, logs(LOG, LOG[:2], LOG))
    assert check.problems == ["order 2 (key c) is missing from replica 2's log"]


def test_i1_fails_for_a_replica_holding_another_order():
    other = LOG[:1] + [Order(1, "ford", "sell", 4)] + LOG[2:]
    check, _ = inv.check_acknowledged(ACKED, T, SERVED, logs(LOG, LOG, other))
    assert len(check.problems) == 1 and "replica 3 holds" in check.problems[0]


def test_i1_fails_for_one_number_given_to_two_keys():
    check, _ = inv.check_acknowledged({"a": 0, "b": 0}, T, SERVED, logs(LOG))
    assert any("acknowledged to two keys" in p for p in check.problems)


def test_i1_fails_for_an_unreadable_order():
    served = {**SERVED, 2: "HTTP 404: ..."}
    check, _ = inv.check_acknowledged(ACKED, T, served, logs(LOG))
    assert not check.passed


# ---- I2 ----------------------------------------------------------------------------------------


def test_i2_dense_logs_pass():
    assert inv.check_dense(logs(LOG, LOG[:1], [])).passed


def test_i2_gap_fails():
    check = inv.check_dense(logs(LOG, [LOG[0], LOG[2]]))
    assert check.problems == ["replica 2: position 1 holds number 2 (after 0)"]


def test_i2_log_not_starting_at_zero_fails():
    assert not inv.check_dense(logs(LOG[1:])).passed


# ---- I3 ----------------------------------------------------------------------------------------


def i3(acked=ACKED, refused=None, in_doubt=frozenset(), sent=T, keys=None):
    keys = keys if keys is not None else {1: KEYS, 2: KEYS, 3: KEYS}
    return inv.check_exactly_once(acked, refused or {}, set(in_doubt), sent, keys)


def test_i3_passes_for_one_key_one_order():
    assert i3().passed


def test_i3_fails_for_a_key_logged_twice():
    check = i3(keys={1: KEYS + [(3, "client:a")]})
    assert any("'client:a' is on orders [0, 3]" in p for p in check.problems)


def test_i3_fails_for_a_key_under_another_number():
    check = i3(acked={"a": 0, "b": 2, "c": 1})
    assert any("acknowledged as 2 but is logged as 1" in p for p in check.problems)


def test_i3_fails_for_an_acknowledged_key_missing_from_a_log():
    check = i3(keys={1: KEYS[:2]})
    assert check.problems == ["replica 1: acknowledged key c (number 2) is not in the log"]


def test_i3_fails_for_a_refused_trade_in_the_log():
    sent = dict(T, d=Trade("ford", "buy", 1))
    check = i3(refused={"d": "400 not enough stocks"}, sent=sent, keys={1: KEYS + [(3, "client:d")]})
    assert any("which was refused" in p for p in check.problems)


def test_i3_fails_for_keys_nobody_sent():
    check = i3(keys={1: KEYS + [(3, "client:zzz"), (4, "fe:1234")]})
    assert len(check.problems) == 2


def test_i3_tolerates_a_logged_trade_left_in_doubt():
    sent = dict(T, d=Trade("ford", "buy", 1))
    check = i3(in_doubt={"d"}, sent=sent, keys={1: KEYS + [(3, "client:d")]})
    assert check.passed and "1 of them logged" in check.note


def test_i3_fails_for_a_422():
    check = i3(refused={"x": "422 key reused"}, sent=dict(T, x=Trade("ford", "buy", 1)))
    assert not check.passed


# ---- I4 ----------------------------------------------------------------------------------------


def test_i4_catalog_matching_the_log_passes():
    catalog = {"tesla": (1000 - 5 + 2, 100 + 7), "ford": (1003, 103)}
    assert inv.check_catalog(catalog, LOG, INITIAL).passed


def test_i4_a_trade_applied_twice_fails():
    catalog = {"tesla": (1000 - 10 + 2, 100 + 12), "ford": (1003, 103)}
    check = inv.check_catalog(catalog, LOG, INITIAL)
    assert check.problems == [
        "tesla: catalog has quantity 992, volume 112; the log says quantity 997, volume 107 (off by -5, +5)"
    ]


def test_i4_negative_quantity_and_unknown_stock_fail():
    catalog = {"tesla": (-1, 100), "ford": (1000, 100)}
    check = inv.check_catalog(catalog, [Order(0, "nope", "buy", 1)], INITIAL)
    assert any("negative" in p for p in check.problems)
    assert any("unknown stock 'nope'" in p for p in check.problems)


# ---- I5 ----------------------------------------------------------------------------------------


def test_i5_identical_logs_pass():
    assert inv.check_identical(logs(LOG, LOG, LOG)).passed


def test_i5_a_shorter_log_fails():
    check = inv.check_identical(logs(LOG, LOG[:2], LOG))
    assert check.problems == ["replica 1 has 3 orders, replica 2 has 2"]


def test_i5_a_different_order_fails():
    other = [LOG[0], Order(1, "ford", "buy", 3), LOG[2]]
    check = inv.check_identical(logs(LOG, LOG, other))
    assert len(check.problems) == 1 and "part at position 1" in check.problems[0]


# ---- I6 ----------------------------------------------------------------------------------------


def test_i6_only_counts_orders_acknowledged_before_a_leader_fault():
    problems = [("a", "order 0 lost"), ("c", "order 2 lost")]
    acked_at = {"a": 1.0, "b": 2.0, "c": 9.0}
    check = inv.check_leader_faults(problems, acked_at, [5.0])
    assert check.problems == ["order 0 lost"]
    assert inv.check_leader_faults([("c", "x")], acked_at, [5.0]).passed


def test_i6_without_leader_faults_passes_and_says_so():
    check = inv.check_leader_faults([("a", "x")], {"a": 1.0}, [])
    assert check.passed and "no leader faults" in check.note


def test_check_lines_show_at_most_five_examples():
    check = inv.Check("I9", "t", problems=[str(i) for i in range(8)])
    lines = check.lines()
    assert lines[0].startswith("I9 FAIL") and len(lines) == 7 and "3 more" in lines[-1]
    assert inv.Check("I9", "t").lines() == ["I9 PASS  t"]


# ---- statistics --------------------------------------------------------------------------------


def test_percentile_nearest_rank():
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) is None


def attempt(sent, done, outcome=OK):
    return Attempt(0, "k", sent, done, outcome, 0 if outcome == OK else None)


def test_failover_is_until_the_first_success_sent_after_the_fault():
    attempts = [
        attempt(9.0, 10.5),  # sent before the fault: does not count even though it ends after
        attempt(10.1, 11.0, "503 no order leader is available"),
        attempt(10.2, 12.5),
        attempt(10.3, 12.0),  # sent later, finished first: this one
        attempt(20.0, 20.1),
    ]
    assert failover_times([10.0, 30.0], attempts) == [2.0, None]


def test_outcome_classification():
    assert outcome_of(200, {"data": {"transaction_number": 7}}) == (OK, 7)
    assert outcome_of(200, {"data": {}})[1] is None
    assert outcome_of(400, {"error": {"code": 400, "message": "not enough stocks available to buy"}}) == (
        "400 not enough stocks", None)
    assert outcome_of(503, None) == ("503", None)
    assert Attempt(0, "k", 0, 1, "400 not enough stocks").definite
    assert not Attempt(0, "k", 0, 1, "503 x").definite
    assert not Attempt(0, "k", 0, 1, TIMEOUT).definite
    assert not Attempt(0, "k", 0, 1, NO_CONNECTION).definite


def test_fault_choice_hits_the_leader_at_least_every_other_time():
    rng = random.Random(3)
    previous = True
    for _ in range(500):
        plan = choose_fault(rng, 2, previous)
        if not previous:
            assert plan.target == "order-2" and plan.was_leader
        assert plan.kind in (KILL, FREEZE)
        assert plan.was_leader == (plan.target == "order-2")
        lo, hi = (0.5, 3.0) if plan.kind == FREEZE else (0.1, 1.5)
        assert lo <= plan.pause <= hi
        previous = plan.was_leader


def test_fault_choice_without_a_known_leader_picks_a_replica():
    plan = choose_fault(random.Random(1), None, False)
    assert plan.target.startswith("order-") and not plan.was_leader


def test_fault_choice_is_reproducible():
    a = [choose_fault(random.Random(5), 1, i % 2 == 0) for i in range(20)]
    b = [choose_fault(random.Random(5), 1, i % 2 == 0) for i in range(20)]
    assert a == b


def test_render_says_pass_only_when_every_check_passes():
    from bazaar.chaos.clients import Records

    records = Records()
    records.attempts.append(attempt(0.0, 0.1))
    good = [inv.Check("I1", "x")]
    lines = render(seed=1, duration=1, clients=1, fault_every=1, records=records, faults=[],
                   failovers=[], converged_after=0.1, unexpected_exits=[], checks=good)
    assert "I1 PASS  x" in lines and lines[-1] == "ALL INVARIANTS PASS"
    bad = [inv.Check("I1", "x", problems=["p"])]
    lines = render(seed=7, duration=1, clients=1, fault_every=1, records=records, faults=[],
                   failovers=[], converged_after=None, unexpected_exits=[("catalog", 1)], checks=bad)
    assert "--seed 7" in lines[-1] and any(line.startswith("WARNING") for line in lines)


def test_a_chaos_client_never_takes_a_stock_below_its_start():
    import random

    from bazaar.chaos.clients import Records, TradingClient

    client = TradingClient(0, None, None, "http://127.0.0.1:1", random.Random(5), lambda: 0.0, Records())
    held: dict[str, int] = {}
    kinds = set()
    for _ in range(5000):
        trade = client._next_trade()
        kinds.add(trade.type)
        held[trade.name] = held.get(trade.name, 0) + (trade.quantity if trade.type == "sell" else -trade.quantity)
        assert held[trade.name] >= 0, trade
    assert kinds == {"buy", "sell"} and len(held) == 10

"""The chaos harness's judgement on hand-made histories: each invariant check passes on good
data and fails, with a counter-example, on a history that violates it; the statistics and the
report's text."""

from bazaar.chaos import invariants as inv
from bazaar.chaos.clients import NO_CONNECTION, NOT_ENOUGH, OK, TIMEOUT, Attempt, Records, Trade, outcome_of
from bazaar.chaos.faults import FREEZE, KILL, LEADER_CATALOG, SINGLE, TWO_REPLICAS, Fault, Hit
from bazaar.chaos.report import answer_class, answer_counts, failover_times, fault_table, render, summary_line
from bazaar.core.chain import Entry, Kind
from bazaar.core.orders import Order

T = {
    "a": Trade("tesla", "buy", 5),
    "b": Trade("ford", "sell", 3),
    "c": Trade("tesla", "sell", 2),
}
ACKED = {"a": 0, "b": 1, "c": 2}
LOG = [Order(0, "tesla", "buy", 5), Order(1, "ford", "sell", 3), Order(2, "tesla", "sell", 2)]
SERVED = {o.number: o.as_json() for o in LOG}
INITIAL = {"tesla": (1000, 100), "ford": (1000, 100)}
BIG = Trade("ford", "buy", 1_001_000)  # refused for lack of stock
FE = "fe-" + "0123456789abcdef" * 2  # a key the front end made


def entries(*items, epoch=1):
    """A log from ("leader",) and (kind, key, trade) items, numbered as the contract says."""
    out, trades = [], 0
    for index, item in enumerate(items):
        if item[0] == "leader":
            out.append(Entry(index, epoch, Kind.LEADER, trades - 1))
            continue
        kind, key, trade = Kind(item[0]), item[1], item[2]
        number = trades if kind is Kind.TRADE else trades - 1
        out.append(Entry(index, epoch, kind, number, trade.name, trade.type, trade.quantity, key))
        trades += kind is Kind.TRADE
    return out


GOOD_ITEMS = (("leader",), ("trade", "a", T["a"]), ("trade", "b", T["b"]), ("refused", "r", BIG),
              ("trade", "c", T["c"]))
GOOD = entries(*GOOD_ITEMS)


def good_and(*items):
    """GOOD with more entries after it."""
    return entries(*GOOD_ITEMS, *items)


def replicas(*logs):
    return {i + 1: list(log) for i, log in enumerate(logs)}


def answered(key, outcome, number=None, sent_key="same", t=0.0):
    """An attempt answered with `outcome`; `sent_key` None for a keyless client."""
    sent = key if sent_key == "same" else sent_key
    return Attempt(0, key, t, t + 0.01, outcome, number, sent, key)


def unanswered(key, outcome=TIMEOUT, t=0.0):
    return Attempt(0, key, t, t + 5.0, outcome, None, key or None, None)


def history(**changes):
    """The records GOOD answers: a, b, c acknowledged; r refused for lack of stock."""
    records = Records()
    records.trades.update(T, r=BIG)
    records.acknowledged.update(ACKED)
    records.acked_at.update(a=1.0, b=2.0, c=3.0)
    records.refused["r"] = NOT_ENOUGH
    records.attempts += [answered(k, OK, n) for k, n in ACKED.items()] + [answered("r", NOT_ENOUGH)]
    for name, value in changes.items():
        setattr(records, name, value)
    return records


# ---- I1 ----------------------------------------------------------------------------------------


def test_i1_passes_when_everything_reads_back():
    check, by_key = inv.check_acknowledged(ACKED, T, SERVED, replicas(LOG, LOG, LOG))
    assert check.passed and by_key == []


def test_i1_fails_for_a_changed_answer():
    served = {**SERVED, 1: {"number": 1, "name": "ford", "type": "buy", "quantity": 3}}
    check, by_key = inv.check_acknowledged(ACKED, T, served, replicas(LOG, LOG, LOG))
    assert not check.passed
    assert by_key[0][0] == "b" and "GET /orders/1" in check.problems[0]


def test_i1_fails_for_an_order_missing_from_a_replica():
    check, _ = inv.check_acknowledged(ACKED, T, SERVED, replicas(LOG, LOG[:2], LOG))
    assert check.problems == ["order 2 (key c) is missing from replica 2's log"]


def test_i1_fails_for_a_replica_holding_another_order():
    other = LOG[:1] + [Order(1, "ford", "sell", 4)] + LOG[2:]
    check, _ = inv.check_acknowledged(ACKED, T, SERVED, replicas(LOG, LOG, other))
    assert len(check.problems) == 1 and "replica 3 holds" in check.problems[0]


def test_i1_fails_for_one_number_given_to_two_keys():
    check, _ = inv.check_acknowledged({"a": 0, "b": 0}, T, SERVED, replicas(LOG))
    assert any("acknowledged to two keys" in p for p in check.problems)


def test_i1_fails_for_an_unreadable_order():
    served = {**SERVED, 2: "HTTP 404: ..."}
    check, _ = inv.check_acknowledged(ACKED, T, served, replicas(LOG))
    assert not check.passed


# ---- I2 ----------------------------------------------------------------------------------------


def test_i2_trades_numbered_densely_among_other_entries_pass():
    check = inv.check_dense(replicas(GOOD, GOOD[:3], []))
    assert check.passed
    assert "replica 1: 3 trades in 5 entries" in check.note


def test_i2_a_gap_in_the_numbers_fails():
    gap = GOOD[:4] + [Entry(4, 1, Kind.TRADE, 3, "tesla", "sell", 2, "c")]
    check = inv.check_dense(replicas(GOOD, gap))
    assert check.problems == ["replica 2: entry 4 (trade 3, epoch 1) has number 3, expected 2 (2 trades before it)"]


def test_i2_a_log_not_starting_at_zero_fails():
    first = Entry(0, 1, Kind.TRADE, 1, "tesla", "buy", 5, "a")
    assert not inv.check_dense(replicas([first])).passed


def test_i2_a_refusal_with_the_wrong_number_fails():
    wrong = GOOD[:3] + [Entry(3, 1, Kind.REFUSED, 2, BIG.name, BIG.type, BIG.quantity, "r")] + GOOD[4:]
    check = inv.check_dense(replicas(wrong))
    assert len(check.problems) == 1 and "refused entry" in check.problems[0]


def test_i2_a_hole_in_the_indexes_fails():
    check = inv.check_dense(replicas(GOOD[:2] + GOOD[3:]))
    assert check.problems == ["replica 1: position 2 holds index 3"]


# ---- I3 ----------------------------------------------------------------------------------------


def i3(records=None, logs=None):
    return inv.check_exactly_once(records or history(), logs if logs is not None else replicas(GOOD, GOOD, GOOD))


def test_i3_passes_for_one_key_one_entry_with_its_answer():
    check = i3()
    assert check.passed, check.problems
    assert "3 acknowledged, 1 refused" in check.note


def test_i3_fails_for_a_key_logged_twice():
    twice = good_and(("trade", "a", T["a"]))
    check = i3(logs=replicas(twice))
    assert any("key 'a' is on entries [1, 5]" in p for p in check.problems)


def test_i3_fails_for_a_key_under_another_number():
    check = i3(history(acknowledged={"a": 0, "b": 2, "c": 1}))
    assert any("key b was acknowledged as 2 but is entry 2 (trade 1" in p for p in check.problems)


def test_i3_fails_for_an_acknowledged_key_missing_from_a_log():
    check = i3(logs=replicas(GOOD[:4]))
    assert check.problems == ["replica 1: acknowledged key c (number 2) is not in the log"]


def test_i3_fails_for_an_acknowledged_key_kept_as_a_refusal():
    refused_c = GOOD[:4] + [Entry(4, 1, Kind.REFUSED, 1, "tesla", "sell", 2, "c")]
    check = i3(logs=replicas(refused_c))
    assert any("acknowledged as 2 but is entry 4 (refused entry" in p for p in check.problems)


def test_i3_fails_for_a_refused_key_that_is_a_trade():
    records = history()
    records.refused["c"] = NOT_ENOUGH
    del records.acknowledged["c"]
    check = i3(records)
    assert any("key c was answered '400 not enough stocks' but is entry 4 (trade 2" in p for p in check.problems)


def test_i3_fails_for_a_lack_of_stock_refusal_the_log_does_not_keep():
    without = entries(*(item for item in GOOD_ITEMS if item[1:2] != ("r",)))
    check = i3(logs=replicas(without))
    assert check.problems == ["replica 1: key r was refused for lack of stock, but the log keeps no entry for it"]


def test_i3_fails_for_keys_nobody_sent_or_was_given():
    extra = good_and(("trade", "zzz", T["a"]), ("trade", "client:a", T["a"]))
    check = i3(logs=replicas(extra))
    assert len(check.problems) == 2 and all("which no client sent or was given" in p for p in check.problems)


def test_i3_accepts_a_keyless_trade_that_got_no_answer_under_a_front_end_key():
    lost = Trade("ford", "sell", 7)
    extra = good_and(("trade", FE, lost))
    check = i3(history(lost=[lost]), replicas(extra))
    assert check.passed and "1 keyless trades without an answer, 1 of them logged" in check.note
    # ...but only as often as such trades were sent, and only with their body.
    twice = good_and(("trade", FE, lost), ("trade", "fe-" + "f" * 32, lost))
    assert not i3(history(lost=[lost]), replicas(twice)).passed
    assert not i3(history(lost=[Trade("ford", "sell", 8)]), replicas(extra)).passed


def test_i3_fails_for_a_key_logged_with_another_body():
    changed = GOOD[:2] + [Entry(2, 1, Kind.TRADE, 1, "ford", "buy", 3, "b")] + GOOD[3:]
    check = i3(logs=replicas(changed))
    assert check.problems == ["replica 1: key b is logged as buy 3 ford, but was sent as sell 3 ford"]


def test_i3_fails_for_an_answer_without_its_key():
    records = history()
    records.attempts.append(Attempt(1, "", 4.0, 4.1, "503 x", None, None, None))
    records.attempts.append(Attempt(1, "a", 5.0, 5.1, OK, 0, "a", "b"))
    check = i3(records)
    assert any("came without an Idempotency-Key header" in p for p in check.problems)
    assert any("sent key a at 5.00 s; the answer named b" in p for p in check.problems)


def test_i3_fails_for_two_different_definite_answers_to_one_key():
    records = history()
    records.attempts.append(answered("a", OK, 7, t=9.0))
    check = i3(records)
    assert check.problems == ["key a got different definite answers: 200 ok #0, 200 ok #7"]


def test_i3_tolerates_a_logged_trade_left_in_doubt():
    records = history(in_doubt={"d"})
    records.trades["d"] = Trade("ford", "buy", 1)
    records.attempts.append(answered("d", "504 outcome unknown"))
    logged = good_and(("trade", "d", records.trades["d"]))
    check = i3(records, replicas(logged))
    assert check.passed and "1 in doubt, 1 of them logged" in check.note


def test_i3_fails_for_a_422():
    records = history()
    records.refused["x"] = "422 key reused"
    records.trades["x"] = Trade("ford", "buy", 1)
    assert not i3(records).passed


def test_i3_fails_for_an_entry_without_a_key():
    keyless = GOOD + [Entry(5, 1, Kind.TRADE, 3, "ford", "buy", 1, "")]
    check = i3(logs=replicas(keyless))
    assert check.problems == ["replica 1: entry 5 (trade 3, epoch 1) has no key"]


# ---- I4 ----------------------------------------------------------------------------------------


CAUGHT_UP = {"tesla": (1000 - 5 + 2, 100 + 7), "ford": (1003, 103)}


def test_i4_catalog_equal_to_the_initial_table_plus_the_log_passes():
    assert inv.check_catalog(CAUGHT_UP, LOG, INITIAL, applied=2).passed


def test_i4_a_catalog_behind_the_log_fails_even_when_it_matches_what_it_applied():
    behind = {"tesla": (995, 105), "ford": (1003, 103)}  # trades 0 and 1
    check = inv.check_catalog(behind, LOG, INITIAL, applied=1)
    assert check.problems == [
        "the catalog applied the log through number 1, but the log's last trade is 2 (it did not catch up)"
    ]


def test_i4_a_catalog_that_does_not_match_what_it_says_it_applied_fails():
    check = inv.check_catalog(CAUGHT_UP, LOG, INITIAL, applied=1)
    assert len(check.problems) == 2 and "trades 0..1 say quantity 995" in check.problems[1]


def test_i4_a_trade_applied_twice_fails():
    catalog = {"tesla": (1000 - 10 + 2, 100 + 12), "ford": (1003, 103)}
    check = inv.check_catalog(catalog, LOG, INITIAL, applied=2)
    assert check.problems == [
        "tesla: catalog has quantity 992, volume 112; the initial table and trades 0..2 say quantity 997, "
        "volume 107 (off by -5, +5)"
    ]


def test_i4_negative_quantity_and_unknown_stock_fail():
    catalog = {"tesla": (-1, 100), "ford": (1000, 100)}
    check = inv.check_catalog(catalog, [Order(0, "nope", "buy", 1)], INITIAL, applied=0)
    assert any("negative" in p for p in check.problems)
    assert any("unknown stock 'nope'" in p for p in check.problems)


def test_i4_uses_the_initial_table_it_is_given():
    other = {"tesla": (300, 0), "ford": (50, 7)}
    catalog = {"tesla": (297, 7), "ford": (53, 10)}
    assert inv.check_catalog(catalog, LOG, other, applied=2).passed
    assert not inv.check_catalog(CAUGHT_UP, LOG, other, applied=2).passed


# ---- I5 ----------------------------------------------------------------------------------------


def test_i5_identical_logs_pass():
    assert inv.check_identical(replicas(GOOD, GOOD, GOOD)).passed


def test_i5_a_shorter_log_fails():
    check = inv.check_identical(replicas(GOOD, GOOD[:4], GOOD))
    assert check.problems == ["replica 1 has 5 entries, replica 2 has 4"]


def test_i5_compares_whole_entries_not_just_orders():
    other_epoch = entries(*GOOD_ITEMS, epoch=2)
    check = inv.check_identical(replicas(GOOD, GOOD, other_epoch))
    assert len(check.problems) == 1 and "part at position 0" in check.problems[0]
    other_key = GOOD[:2] + [Entry(2, 1, Kind.TRADE, 1, "ford", "sell", 3, "b2")] + GOOD[3:]
    assert not inv.check_identical(replicas(GOOD, other_key)).passed


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


# ---- I7 ----------------------------------------------------------------------------------------

REFUSAL_503 = "503 no order leader with a majority is available: nothing was executed"


def test_i7_passes_when_keys_answered_503_alone_are_in_no_log():
    attempts = [answered(FE, REFUSAL_503, sent_key=None), answered("k", REFUSAL_503), answered("k", REFUSAL_503)]
    check = inv.check_not_executed(attempts, replicas(GOOD, GOOD))
    assert check.passed and "2 keys answered 503 alone" in check.note


def test_i7_fails_for_a_503_key_that_was_executed_or_kept():
    attempts = [answered(FE, REFUSAL_503, sent_key=None), answered("k", REFUSAL_503)]
    executed = good_and(("trade", FE, T["a"]), ("refused", "k", BIG))
    check = inv.check_not_executed(attempts, replicas(GOOD, executed))
    assert check.problems == [
        f"replica 2: key {FE} was answered 503 on each of its 1 attempts but is entry 5 (trade 3, epoch 1)",
        "replica 2: key k was answered 503 on each of its 1 attempts but is entry 6 (refused entry, epoch 1)",
    ]


def test_i7_leaves_keys_whose_503s_mix_with_unanswered_attempts_in_doubt():
    attempts = [unanswered("k", NO_CONNECTION), answered("k", REFUSAL_503)]
    executed = good_and(("trade", "k", T["a"]))
    check = inv.check_not_executed(attempts, replicas(executed))
    assert check.passed and "1 more with unanswered attempts, in doubt" in check.note


def test_i7_does_not_judge_keys_with_another_answer():
    attempts = [answered("a", REFUSAL_503), answered("a", "504 outcome unknown"), answered("b", REFUSAL_503),
                answered("b", OK, 1)]
    check = inv.check_not_executed(attempts, replicas(GOOD))
    assert check.passed and check.note.startswith("0 keys")


def test_check_lines_show_at_most_five_examples():
    check = inv.Check("I9", "t", problems=[str(i) for i in range(8)])
    lines = check.lines()
    assert lines[0].startswith("I9 FAIL") and len(lines) == 7 and "3 more" in lines[-1]
    assert inv.Check("I9", "t").lines() == ["I9 PASS  t"]


# ---- statistics and the report -------------------------------------------------------------------


def test_the_report_interpolates_percentiles_linearly():
    values = [float(i) for i in range(100, 0, -1)]
    assert summary_line("x", values) == "x: n=100 p50 50.50 s  p99 99.01 s  max 100.00 s"
    assert summary_line("one", [3.0]) == "one: n=1 p50 3.00 s  p99 3.00 s  max 3.00 s"
    assert summary_line("none", []) == "none: n=0 p50 -  p99 -  max -"


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
        NOT_ENOUGH, None)
    assert outcome_of(503, None) == ("503", None)
    assert Attempt(0, "k", 0, 1, NOT_ENOUGH).definite
    assert not Attempt(0, "k", 0, 1, "503 x").definite
    assert not Attempt(0, "k", 0, 1, TIMEOUT).definite and not Attempt(0, "k", 0, 1, TIMEOUT).answered
    assert not Attempt(0, "k", 0, 1, NO_CONNECTION).definite
    assert Attempt(0, "k", 0, 1, "504 outcome unknown").status == 504
    assert [answer_class(o) for o in (OK, NOT_ENOUGH, "422 x", "503", "504 y", "500 z", TIMEOUT)] == [
        "200", "4xx", "4xx", "503", "504", "other 5xx", "no answer"]


def double_fault():
    hits = (Hit(KILL, "order-2", True, 10.0, 3.0, 14.0), Hit(FREEZE, "order-3", False, 10.25, 5.0, 15.25))
    return Fault(10.0, TWO_REPLICAS, hits, 15.25, idle=True)


def test_the_fault_table_shows_the_processes_hit_failover_and_answers():
    attempts = [attempt(9.0, 9.1), attempt(10.5, 14.5, "504 outcome unknown"), attempt(14.6, 15.6, "503 x"),
                attempt(15.0, 15.1, TIMEOUT), attempt(15.3, 15.4)]
    single = Fault(20.0, SINGLE, (Hit(FREEZE, "catalog", False, 20.0, 1.0, 21.0),), 21.0)
    lines = fault_table([double_fault(), single], [5.4], attempts)
    assert lines[0].split()[:10] == ["at", "class", "back", "failover", "200", "4xx", "503", "504", "5xx", "none"]
    assert lines[1].split()[:7] == ["10.0s", "two", "replicas", "5.2", "s", "5.40", "s"]
    assert "[clients idle]" in lines[1]
    assert "order-2* kill 4.0 s, order-3 stop +0.25 s 5.0 s" in lines[1]
    assert lines[1].split()[7:13] == ["0", "0", "1", "1", "0", "1"]  # 200 4xx 503 504 5xx none
    assert "catalog stop 1.0 s" in lines[2] and " - " in lines[2]
    assert answer_counts(attempts) == {"200": 2, "4xx": 0, "503": 1, "504": 1, "other 5xx": 0, "no answer": 1}


def test_render_says_pass_only_when_every_check_passes():
    records = Records()
    records.attempts.append(attempt(0.0, 0.1))
    good = [inv.Check("I1", "x")]
    lines = render(seed=1, duration=1, clients=1, fault_every=1, records=records, faults=[],
                   failovers=[], converged_after=0.1, unexpected_exits=[], checks=good)
    assert "I1 PASS  x" in lines and lines[-1] == "ALL INVARIANTS PASS"
    bad = [inv.Check("I1", "x", problems=["p"])]
    records.attempts.append(attempt(0.2, 0.3, "500 internal error"))
    lines = render(seed=7, duration=1, clients=2, fault_every=1, records=records, faults=[double_fault()],
                   failovers=[5.4], converged_after=None, unexpected_exits=[("catalog", 1)], checks=bad,
                   keyless=1, caught_up_after=None)
    assert "--seed 7" in lines[-1] and sum(line.startswith("WARNING") for line in lines) == 2
    assert "2 clients (1 keyed, 1 without keys)" in lines[0]
    assert any(line.startswith("faults: 1 (1 two replicas; 1 hit the leader, 1 while the clients were idle)")
               for line in lines)
    assert "catalog caught up: NO (deadline passed)" in lines


def test_a_double_fault_reads_as_one_fault_of_its_processes():
    fault = double_fault()
    assert fault.was_leader and fault.target == "order-2+order-3" and fault.pause == 5.0
    assert fault.kind == f"{KILL} & {FREEZE}"
    assert LEADER_CATALOG != TWO_REPLICAS


def test_failover_of_a_double_fault_counts_from_the_leader_hit():
    from bazaar.chaos.report import leader_failovers

    later = Fault(10.0, TWO_REPLICAS, (Hit(FREEZE, "order-3", False, 10.0, 5.0, 15.0),
                                       Hit(KILL, "order-2", True, 10.4, 3.0, 14.0)), 15.0)
    attempts = [attempt(10.1, 10.2), attempt(10.5, 12.0)]
    assert later.leader_at == 10.4 and leader_failovers([later], attempts) == [12.0 - 10.4]
    assert Fault(1.0, SINGLE, (Hit(KILL, "catalog", False, 1.0, 1.0, 2.0),), 2.0).leader_at is None

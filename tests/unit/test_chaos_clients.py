"""The chaos clients' logic against a scripted front end on a fake clock: keyed clients retry
under their key until a definite answer; keyless ones send no key, read the one the answer's
header names, give up on a 503, retry a 504 under the header's key (or give up: in doubt), and
can do nothing with a first attempt that got no answer (lost)."""

import json
import random

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock, deferLater
from twisted.web.http_headers import Headers

from bazaar.chaos import clients as c
from bazaar.chaos.clients import NO_CONNECTION, NOT_ENOUGH, OK, TIMEOUT, Records, Trade, TradingClient, header_key
from bazaar.chaos.traffic import Pause, Traffic
from bazaar.core.stock import Stock

TRADE = Trade("tesla", "sell", 3)
FE = "fe-" + "ab" * 16
UNKNOWN = (504, {"error": {"message": "outcome unknown: retry with the same Idempotency-Key"}})
NOT_EXECUTED = (503, {"error": {"message": "no order leader with a majority is available: nothing was executed"}})
NO_ANSWER = "no answer"  # the connection is refused
HANG = "hang"  # never answers: the client's timeout


def ok(number):
    return (200, {"data": {"transaction_number": number}})


class Response:
    def __init__(self, code, body, key):
        self.code = code
        self.headers = Headers({b"Idempotency-Key": [key.encode()]} if key is not None else {})
        self._content = json.dumps(body).encode()

    def content(self):
        return succeed(self._content)


class ScriptedFrontEnd:
    """Answers POST /orders from a script; echoes the key sent, or names FE when none was."""

    def __init__(self, *script, header=True, clock=None):
        self.script = list(script)
        self.sent = []  # (body, the key sent or None)
        self.header = header
        self.clock = clock  # answers take 0.05 s on it when given; else they come at once

    def post(self, url, json, headers):
        key = headers.get(b"Idempotency-Key", [None])[0]
        key = key.decode() if key is not None else None
        self.sent.append((json, key))
        step = self.script.pop(0)
        if step == NO_ANSWER:
            return fail(ConnectionRefusedError())
        if step == HANG:
            return Deferred()
        status, body = step
        response = Response(status, body, (key or FE) if self.header else None)
        return succeed(response) if self.clock is None else deferLater(self.clock, 0.05, lambda: response)


class Rng(random.Random):
    """random() fixed (below GIVE_UP_SHARE: give up), uniform() its low end."""

    def __init__(self, value):
        super().__init__(0)
        self.value = value

    def random(self):
        return self.value

    def uniform(self, a, b):
        return a


def run(coroutine_of, front_end, keyed, rng_value=0.9, drain=60.0):
    clock = Clock()
    records = Records()
    client = TradingClient(1, front_end, clock, "http://fe", Rng(rng_value), clock.seconds, records, keyed=keyed)
    done = Deferred.fromCoroutine(coroutine_of(client))
    while not done.called:
        clock.advance(0.05)
    return records, front_end.sent


def keyless(front_end, **kw):
    return run(lambda client: client.place_keyless(TRADE, kw.pop("drain", 60.0)), front_end, False, **kw)


def keyed(front_end, key="k1", **kw):
    return run(lambda client: client.place(key, TRADE, kw.pop("drain", 60.0)), front_end, True, **kw)


def test_a_keyless_client_sends_no_key_and_takes_the_one_the_answer_names():
    records, sent = keyless(ScriptedFrontEnd(ok(4)))
    assert sent == [(TRADE.body(), None)]
    assert records.acknowledged == {FE: 4} and records.trades == {FE: TRADE}
    (attempt,) = records.attempts
    assert attempt.key == FE and attempt.sent_key is None and attempt.header == FE and attempt.outcome == OK


def test_a_keyless_client_gives_up_on_a_503():
    records, sent = keyless(ScriptedFrontEnd(NOT_EXECUTED, ok(0)), rng_value=0.99)
    assert len(sent) == 1
    assert records.not_executed == {FE} and not records.in_doubt and not records.acknowledged
    assert records.attempts[0].status == 503 and records.attempts[0].key == FE


def test_a_keyless_client_retries_a_504_later_under_the_key_the_header_gave():
    records, sent = keyless(ScriptedFrontEnd(UNKNOWN, ok(9)), rng_value=0.99)
    assert sent == [(TRADE.body(), None), (TRADE.body(), FE)]
    assert records.acknowledged == {FE: 9}
    first, second = records.attempts
    assert second.sent - first.done >= c.RETRY_LATER[0] - 1e-9
    assert [a.key for a in records.attempts] == [FE, FE] and second.sent_key == FE


def test_a_keyless_client_may_give_up_on_a_504_leaving_the_key_in_doubt():
    records, sent = keyless(ScriptedFrontEnd(UNKNOWN, ok(9)), rng_value=0.1)
    assert len(sent) == 1 and records.in_doubt == {FE} and not records.acknowledged


def test_a_503_after_a_504_leaves_the_key_in_doubt_not_unexecuted():
    records, _ = keyless(ScriptedFrontEnd(UNKNOWN, NOT_EXECUTED), rng_value=0.99)
    assert records.in_doubt == {FE} and not records.not_executed


def test_a_keyless_trade_whose_first_attempt_got_no_answer_is_lost():
    records, sent = keyless(ScriptedFrontEnd(NO_ANSWER, ok(1)), rng_value=0.99)
    assert len(sent) == 1 and records.lost == [TRADE] and not records.trades
    assert records.attempts[0].key == "" and records.attempts[0].outcome == NO_CONNECTION


def test_a_keyless_client_retries_a_timeout_under_a_key_it_already_has():
    records, sent = keyless(ScriptedFrontEnd(UNKNOWN, HANG, ok(2)), rng_value=0.99)
    assert [k for _, k in sent] == [None, FE, FE]
    assert [a.outcome for a in records.attempts][1] == TIMEOUT and records.acknowledged == {FE: 2}


def test_a_refusal_is_definite_for_both_kinds():
    refusal = (400, {"error": {"message": "not enough stocks available to buy"}})
    records, _ = keyless(ScriptedFrontEnd(refusal))
    assert records.refused == {FE: NOT_ENOUGH}
    records, sent = keyed(ScriptedFrontEnd(refusal))
    assert records.refused == {"k1": NOT_ENOUGH} and len(sent) == 1


def test_a_keyed_client_retries_under_its_key_until_a_definite_answer():
    records, sent = keyed(ScriptedFrontEnd(NOT_EXECUTED, NO_ANSWER, HANG, UNKNOWN, ok(5)))
    assert [k for _, k in sent] == ["k1"] * 5
    assert records.acknowledged == {"k1": 5}
    assert [a.answered for a in records.attempts] == [True, False, False, True, True]


def test_a_keyed_client_at_the_drain_deadline_leaves_503s_unexecuted_and_the_rest_in_doubt():
    records, _ = keyed(ScriptedFrontEnd(*[NOT_EXECUTED] * 50), drain=0.5)
    assert records.not_executed == {"k1"} and not records.in_doubt
    records, _ = keyed(ScriptedFrontEnd(NO_ANSWER, *[NOT_EXECUTED] * 50), drain=0.5)
    assert records.in_doubt == {"k1"} and not records.not_executed


def test_an_answer_without_the_header_is_recorded_as_such():
    records, _ = keyless(ScriptedFrontEnd(ok(3), header=False))
    (attempt,) = records.attempts
    assert attempt.header is None and attempt.key == "" and not records.lost and not records.acknowledged
    assert header_key([b"a", b"b"]) == "b" and header_key(None) is None


def test_clients_start_trades_only_outside_the_pauses():
    clock = Clock()
    records = Records()
    front_end = ScriptedFrontEnd(*[ok(n) for n in range(1000)], clock=clock)
    traffic = Traffic([Pause(0.5, 2.0)])
    client = TradingClient(0, front_end, clock, "http://fe", random.Random(1), clock.seconds, records,
                           traffic=traffic)
    done = Deferred.fromCoroutine(client.run(3.0, 10.0))
    while not done.called:
        clock.advance(0.1)
    sent = [a.sent for a in records.attempts]
    assert sent and not any(0.5 <= t < 2.0 for t in sent) and any(t >= 2.0 for t in sent)


def test_a_chaos_client_never_takes_a_stock_below_its_start_but_for_impossible_buys():
    stocks = [Stock(f"s{i}", 1.0, 100 + i, 0) for i in range(10)]
    client = TradingClient(0, None, None, "http://127.0.0.1:1", random.Random(5), lambda: 0.0, Records(),
                           stocks=stocks)
    start = {s.name: s.quantity for s in stocks}
    held: dict[str, int] = {}
    kinds, impossible = set(), 0
    for _ in range(5000):
        trade = client._next_trade()
        if trade.quantity > c.MAX_QUANTITY:
            assert trade.type == "buy" and trade.quantity == start[trade.name] + c.IMPOSSIBLE_EXTRA
            impossible += 1
            continue
        kinds.add(trade.type)
        held[trade.name] = held.get(trade.name, 0) + (trade.quantity if trade.type == "sell" else -trade.quantity)
        assert held[trade.name] >= 0, trade
    assert kinds == {"buy", "sell"} and set(held) == set(start)
    assert 50 < impossible < 200  # REFUSE_SHARE of 5000
